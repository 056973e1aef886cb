//! UniSRec's processed dataset format: `NAME.{train,valid,test}.inter`,
//! `NAME.item2index`, `NAME.user2index` and `NAME.text`.

use std::collections::HashMap;
use std::path::Path;

use super::{excerpt, read_text, DataError, Dataset, SequenceExample};

/// First line of every `.inter` file.
const INTER_HEADER: &str = "user_id:token\titem_id_list:token_seq\titem_id:token";

/// First line of a `.text` file.
const TEXT_HEADER: &str = "item_id:token\ttext:token_seq";

/// Loads the UniSRec dataset in `dir`.
///
/// The folder must contain exactly one `NAME.train.inter` file, which gives
/// the dataset name, and beside it `NAME.valid.inter`, `NAME.test.inter`,
/// `NAME.item2index` and `NAME.user2index`. The index maps are
/// `id<TAB>index` lines without a header, and their indices must cover
/// `0..lines` exactly once. The `.inter` files start with the header
/// `user_id:token  item_id_list:token_seq  item_id:token` (tab-separated)
/// and hold one row per line: a user index, space-separated item indices
/// (oldest first) and the next item.
///
/// ```no_run
/// let dataset = recmodel::data::load_unisrec("../shared/data/scientific".as_ref())?;
/// assert_eq!(dataset.num_items, 4385);
/// # Ok::<(), recmodel::data::DataError>(())
/// ```
///
/// # Errors
/// [`DataError::NoDataset`] or [`DataError::SeveralDatasets`] when the
/// folder does not contain exactly one `*.train.inter` file,
/// [`DataError::Io`] when a file is missing or unreadable, and a variant
/// naming the file, line, field and value for each kind of malformed line:
/// a missing header, a wrong number of fields, a token that is not an index,
/// an index out of range, an empty history, or an id or index given twice
/// in an index map.
pub fn load_unisrec(dir: &Path) -> Result<Dataset, DataError> {
    let name = find_dataset_name(dir)?;
    let file = |suffix: &str| dir.join(format!("{name}.{suffix}"));

    let item_ids = read_index_map(&file("item2index"), "item_id", "item", "an item index")?;
    let user_ids = read_index_map(&file("user2index"), "user_id", "user", "a user index")?;
    let (num_items, num_users) = (item_ids.len(), user_ids.len());

    let train = read_inter(&file("train.inter"), num_users, num_items)?;
    let valid = read_inter(&file("valid.inter"), num_users, num_items)?;
    let test = read_inter(&file("test.inter"), num_users, num_items)?;

    tracing::info!(
        dataset = %name,
        users = num_users,
        items = num_items,
        train = train.len(),
        valid = valid.len(),
        test = test.len(),
        "loaded UniSRec dataset"
    );
    Ok(Dataset { name, num_items, num_users, item_ids, user_ids, train, valid, test })
}

/// Loads `NAME.text` (header `item_id:token<TAB>text:token_seq`, then
/// `ASIN<TAB>text` per line in any order) and returns the text of each item
/// index of `dataset`.
///
/// ```no_run
/// use recmodel::data::{load_item_text, load_unisrec};
/// let dir = std::path::Path::new("../shared/data/scientific");
/// let dataset = load_unisrec(dir)?;
/// let texts = load_item_text(&dir.join("Scientific.text"), &dataset)?;
/// assert_eq!(texts.len(), dataset.num_items);
/// # Ok::<(), recmodel::data::DataError>(())
/// ```
///
/// # Errors
/// [`DataError::Io`] when the file cannot be read,
/// [`DataError::Header`] when the header is missing,
/// [`DataError::ColumnCount`] for a line without exactly two fields,
/// [`DataError::UnknownId`] for an id that is not in the dataset's
/// `item2index`, [`DataError::DuplicateId`] for an item given twice, and
/// [`DataError::MissingText`] for an item without a line.
pub fn load_item_text(path: &Path, dataset: &Dataset) -> Result<Vec<String>, DataError> {
    let text = read_text(path)?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    check_header(path, lines.next().map(|(_, l)| l), TEXT_HEADER)?;

    let index_of: HashMap<&str, usize> = dataset.item_ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut texts: Vec<Option<(String, usize)>> = vec![None; dataset.num_items];
    for (line, content) in lines {
        let fields = split_fields(path, line, content, 2, "item_id, text")?;
        let id = fields[0];
        let Some(&index) = index_of.get(id) else {
            return Err(DataError::UnknownId { path: path.to_path_buf(), line, field: "item_id", value: id.to_string(), map: "item2index" });
        };
        if let Some((_, first_line)) = &texts[index] {
            return Err(DataError::DuplicateId { path: path.to_path_buf(), line, field: "item_id", value: id.to_string(), first_line: *first_line });
        }
        texts[index] = Some((fields[1].to_string(), line));
    }

    texts
        .into_iter()
        .enumerate()
        .map(|(index, entry)| match entry {
            Some((text, _)) => Ok(text),
            None => Err(DataError::MissingText { path: path.to_path_buf(), index, id: dataset.item_ids[index].clone() }),
        })
        .collect()
}

/// Finds NAME from the single `NAME.train.inter` file in `dir`.
fn find_dataset_name(dir: &Path) -> Result<String, DataError> {
    let io_error = |source| DataError::Io { path: dir.to_path_buf(), source };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let file_name = entry.map_err(io_error)?.file_name();
        if let Some(name) = file_name.to_str().and_then(|f| f.strip_suffix(".train.inter")) {
            if !name.is_empty() {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    match names.len() {
        0 => Err(DataError::NoDataset { dir: dir.to_path_buf() }),
        1 => Ok(names.remove(0)),
        _ => Err(DataError::SeveralDatasets { dir: dir.to_path_buf(), names }),
    }
}

/// Reads an `id<TAB>index` map and returns the id of each index.
///
/// `id_field` names the first column in errors, `kind` ("item" or "user")
/// the indexed entity, and `index_description` a valid index ("an item index").
pub(crate) fn read_index_map(path: &Path, id_field: &'static str, kind: &'static str, index_description: &'static str) -> Result<Vec<String>, DataError> {
    let text = read_text(path)?;
    let field_names = if kind == "item" { "item_id, index" } else { "user_id, index" };

    // Entries are collected first because the valid range, 0..lines, is only
    // known at the end of the file.
    let mut entries: Vec<(String, u32, usize)> = Vec::new();
    let mut first_line_of: HashMap<&str, usize> = HashMap::new();
    for (i, content) in text.lines().enumerate() {
        let line = i + 1;
        let fields = split_fields(path, line, content, 2, field_names)?;
        let id = fields[0];
        if id.is_empty() {
            return Err(DataError::EmptyField { path: path.to_path_buf(), line, field: id_field });
        }
        if let Some(&first_line) = first_line_of.get(id) {
            return Err(DataError::DuplicateId { path: path.to_path_buf(), line, field: id_field, value: id.to_string(), first_line });
        }
        first_line_of.insert(id, line);
        let index = parse_index(path, line, "index", fields[1], index_description)?;
        entries.push((id.to_string(), index, line));
    }
    if entries.is_empty() {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }

    let count = entries.len();
    let mut slots: Vec<Option<(String, usize)>> = vec![None; count];
    for (id, index, line) in entries {
        let Some(slot) = slots.get_mut(index as usize) else {
            return Err(DataError::OutOfRange { path: path.to_path_buf(), line, field: "index", kind, value: index, count });
        };
        if let Some((first_id, first_line)) = slot {
            return Err(DataError::DuplicateIndex {
                path: path.to_path_buf(),
                line,
                field: "index",
                value: index,
                first_id: first_id.clone(),
                first_line: *first_line,
            });
        }
        *slot = Some((id, line));
    }

    // With `count` distinct indices all below `count`, every slot is filled.
    Ok(slots.into_iter().flatten().map(|(id, _)| id).collect())
}

/// Reads one `.inter` file and checks every index against the dataset size.
fn read_inter(path: &Path, num_users: usize, num_items: usize) -> Result<Vec<SequenceExample>, DataError> {
    let text = read_text(path)?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    check_header(path, lines.next().map(|(_, l)| l), INTER_HEADER)?;

    let mut examples = Vec::new();
    for (line, content) in lines {
        let fields = split_fields(path, line, content, 3, "user_id, item_id_list, item_id")?;

        let user = parse_index(path, line, "user_id", fields[0], "a user index")?;
        check_range(path, line, "user_id", "user", user, num_users)?;

        let mut history = Vec::new();
        for token in fields[1].split_ascii_whitespace() {
            let item = parse_index(path, line, "item_id_list", token, "an item index")?;
            check_range(path, line, "item_id_list", "item", item, num_items)?;
            history.push(item);
        }
        if history.is_empty() {
            return Err(DataError::EmptyHistory { path: path.to_path_buf(), line, field: "item_id_list" });
        }

        let target = parse_index(path, line, "item_id", fields[2], "an item index")?;
        check_range(path, line, "item_id", "item", target, num_items)?;

        examples.push(SequenceExample { user, history, target });
    }
    if examples.is_empty() {
        return Err(DataError::NoRows { path: path.to_path_buf() });
    }
    Ok(examples)
}

fn check_header(path: &Path, first_line: Option<&str>, expected: &str) -> Result<(), DataError> {
    match first_line {
        None => Err(DataError::Empty { path: path.to_path_buf() }),
        Some(found) if found == expected => Ok(()),
        Some(found) => Err(DataError::Header { path: path.to_path_buf(), expected: expected.to_string(), found: excerpt(found) }),
    }
}

/// Splits a line at tabs, requiring exactly `expected` fields.
fn split_fields<'a>(path: &Path, line: usize, content: &'a str, expected: usize, fields: &'static str) -> Result<Vec<&'a str>, DataError> {
    let parts: Vec<&str> = content.split('\t').collect();
    if parts.len() != expected {
        return Err(DataError::ColumnCount {
            path: path.to_path_buf(),
            line,
            expected,
            fields,
            found: parts.len(),
            value: excerpt(content),
        });
    }
    Ok(parts)
}

fn parse_index(path: &Path, line: usize, field: &'static str, token: &str, expected: &'static str) -> Result<u32, DataError> {
    token.parse::<u32>().map_err(|_| DataError::NotAnIndex {
        path: path.to_path_buf(),
        line,
        field,
        value: token.to_string(),
        expected,
    })
}

fn check_range(path: &Path, line: usize, field: &'static str, kind: &'static str, value: u32, count: usize) -> Result<(), DataError> {
    if (value as usize) < count {
        Ok(())
    } else {
        Err(DataError::OutOfRange { path: path.to_path_buf(), line, field, kind, value, count })
    }
}
