//! Item texts built from a dataset's fields, in item-index order.
//!
//! Three layouts are recognised by [`load_item_texts`]:
//!
//! - UniSRec's processed datasets: `NAME.item2index` (`ASIN<TAB>index`)
//!   with `NAME.text` (`ASIN<TAB>text`, already built by UniSRec's rule), or
//!   with Amazon 2018 metadata `meta_*.json` (one JSON record per line), from
//!   which the texts are built by [`amazon_item_text`].
//! - LC-Rec's `NAME.item.json`: an object from item index to a record with
//!   `title`, `categories` and `brand`.
//! - RecBole's atomic `NAME.item` file, such as MovieLens's title, release
//!   year and genres.
//!
//! Every field is cleaned by [`clean_field`], and the fields are joined by
//! spaces, each ending in one period: `Title. Category Subcategory. Brand. `
//! (UniSRec's files keep the trailing space).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use serde_json::Value;

use super::error::{Result, TextError};

/// UniSRec drops a cleaned field of this many characters or more.
const MAX_FIELD_CHARS: usize = 2000;

/// Item texts of a dataset, row `i` for item index `i`.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemTexts {
    /// The item identifier (ASIN or token) of each index.
    pub item_ids: Vec<String>,
    /// The text of each index; empty for an item without text.
    pub texts: Vec<String>,
    /// Number of items without text.
    pub missing: usize,
    /// The file the texts came from.
    pub source: PathBuf,
}

/// Cleans one metadata field by UniSRec's rule: HTML entities decoded,
/// double quotes and line breaks removed, trailing periods replaced by
/// exactly one. A result of 2,000 characters or more becomes empty, as
/// UniSRec drops such fields.
///
/// ```
/// use recmodel::text::clean_field;
/// assert_eq!(clean_field("Gorilla &amp; Co \"Glue\"..."), "Gorilla & Co Glue.");
/// assert_eq!(clean_field(""), ".");
/// ```
pub fn clean_field(raw: &str) -> String {
    let decoded = html_escape::decode_html_entities(raw);
    let mut text: String = decoded.chars().filter(|c| !matches!(c, '"' | '\n' | '\r')).collect();
    let kept = text.trim_end_matches('.').len();
    text.truncate(kept);
    text.push('.');
    if text.chars().count() >= MAX_FIELD_CHARS {
        text.clear();
    }
    text
}

/// Converts a JSON metadata value to one string: strings as they are,
/// lists joined by spaces (nested lists flattened), numbers printed, and
/// `None` for null.
fn field_string(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(items.iter().filter_map(field_string).collect::<Vec<_>>().join(" ")),
        other => Some(other.to_string()),
    }
}

/// The text of one Amazon 2018 metadata record by UniSRec's rule: `title`,
/// `category` and `brand`, each present one cleaned by [`clean_field`] and
/// followed by a space. `None` when the record has none of the three.
///
/// ```
/// use recmodel::text::amazon_item_text;
/// let record = serde_json::json!({"title": "Glue", "category": ["Tools", "Adhesives"], "brand": "Gorilla"});
/// assert_eq!(amazon_item_text(&record).unwrap(), "Glue. Tools Adhesives. Gorilla. ");
/// ```
pub fn amazon_item_text(record: &Value) -> Option<String> {
    // UniSRec keeps a present but empty field, which then reads ".".
    let fields = ["title", "category", "brand"].map(|key| record.get(key).and_then(field_string));
    join_fields(fields.iter().map(|f| f.as_deref()), true)
}

/// Joins cleaned fields, each followed by a space; `keep_empty` keeps
/// fields that are empty before cleaning. `None` when no field is left.
fn join_fields<'a>(fields: impl Iterator<Item = Option<&'a str>>, keep_empty: bool) -> Option<String> {
    let mut text = String::new();
    for field in fields.flatten() {
        if !keep_empty && field.trim().is_empty() {
            continue;
        }
        text.push_str(&clean_field(field));
        text.push(' ');
    }
    (!text.is_empty()).then_some(text)
}

/// `text` with each space-separated word dropped with probability `p`, as
/// UniSRec's word-drop augmentation does (a word survives when a uniform
/// draw exceeds `p`).
pub fn word_drop(text: &str, p: f64, rng: &mut impl Rng) -> String {
    text.split(' ').filter(|_| rng.gen::<f64>() > p).collect::<Vec<_>>().join(" ")
}

/// [`word_drop`] applied to every text in order, with a generator seeded
/// by `seed`, so one seed gives one result.
pub fn word_drop_texts(texts: &[String], p: f64, seed: u64) -> Vec<String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    texts.iter().map(|text| word_drop(text, p, &mut rng)).collect()
}

/// Reads the item texts of the dataset in `dir`, in item-index order.
///
/// Items without text get an empty string and are counted in
/// [`ItemTexts::missing`]; a warning reports the count.
///
/// # Errors
/// [`TextError::UnknownDataset`] when `dir` contains none of the layouts above
/// (or several files of one kind), and [`TextError::Io`],
/// [`TextError::InvalidLine`] or [`TextError::Json`] for unreadable or
/// malformed files.
pub fn load_item_texts(dir: &Path) -> Result<ItemTexts> {
    let texts = if let Some(index_path) = find_one(dir, ".item2index")? {
        load_unisrec(dir, &index_path)?
    } else if let Some(path) = find_one(dir, ".item.json")? {
        load_lcrec(&path)?
    } else if let Some(path) = find_one(dir, ".item")? {
        load_recbole(&path)?
    } else {
        return Err(TextError::UnknownDataset {
            dir: dir.to_path_buf(),
            message: "no item texts found: expected NAME.item2index with NAME.text or meta_*.json (UniSRec), NAME.item.json (LC-Rec) or NAME.item (RecBole)".into(),
        });
    };
    if texts.texts.is_empty() {
        return Err(TextError::UnknownDataset { dir: texts.source.clone(), message: "the file lists no items".into() });
    }
    if texts.missing == texts.texts.len() {
        return Err(TextError::UnknownDataset {
            dir: texts.source.clone(),
            message: format!("none of the {} items has text; check that the item ids match the index file", texts.texts.len()),
        });
    }
    if texts.missing > 0 {
        let first: Vec<&str> =
            texts.texts.iter().zip(&texts.item_ids).filter(|(t, _)| t.is_empty()).map(|(_, id)| id.as_str()).take(5).collect();
        tracing::warn!(
            missing = texts.missing,
            items = texts.texts.len(),
            first = ?first,
            source = %texts.source.display(),
            "items without text get the embedding of the empty text"
        );
    }
    Ok(texts)
}

/// Finds the only file in `dir` whose name ends with `suffix`, if any.
fn find_one(dir: &Path, suffix: &str) -> Result<Option<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|source| TextError::Io { path: dir.to_path_buf(), source })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| TextError::Io { path: dir.to_path_buf(), source })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(suffix) && entry.path().is_file() {
            found.push(entry.path());
        }
    }
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(TextError::UnknownDataset {
            dir: dir.to_path_buf(),
            message: format!(
                "several *{suffix} files ({}); pass a folder with one dataset",
                found.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// Reads `path` as UTF-8; an invalid byte is reported with its line.
fn read_text(path: &Path) -> Result<String> {
    Ok(crate::data::read_text(path)?)
}

fn invalid_line(path: &Path, line: usize, message: String) -> TextError {
    TextError::InvalidLine { path: path.to_path_buf(), line, message }
}

/// Reads `NAME.item2index` into ASINs by index, with the checks of the
/// training loader: two fields per line, no empty or repeated ASIN, and
/// indices that cover `0..n` once each.
fn read_item2index(path: &Path) -> Result<Vec<String>> {
    Ok(crate::data::read_index_map(path, "item_id", "item", "an item index")?)
}

fn load_unisrec(dir: &Path, index_path: &Path) -> Result<ItemTexts> {
    let item_ids = read_item2index(index_path)?;
    let index_of: HashMap<&str, usize> = item_ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut texts: Vec<Option<String>> = vec![None; item_ids.len()];

    let text_path = index_path.with_extension("text");
    let source = if text_path.is_file() {
        read_unisrec_text(&text_path, &index_of, &mut texts)?;
        text_path
    } else if let Some(meta_path) = find_meta(dir)? {
        read_amazon_meta(&meta_path, &index_of, &mut texts)?;
        meta_path
    } else {
        return Err(TextError::MissingFile {
            path: text_path,
            hint: "item texts need NAME.text or an Amazon metadata file meta_*.json beside NAME.item2index".into(),
        });
    };
    Ok(finish(item_ids, texts, source))
}

/// Reads `NAME.text`: a header, then `ASIN<TAB>text` per item.
///
/// Rows of items absent from `item2index` are skipped, as UniSRec's loader
/// does, and counted in a warning. An item given twice is an error, because
/// one of its texts would be lost.
fn read_unisrec_text(path: &Path, index_of: &HashMap<&str, usize>, texts: &mut [Option<String>]) -> Result<()> {
    let content = read_text(path)?;
    let mut first_line_of: HashMap<&str, usize> = HashMap::new();
    let mut skipped = Vec::new();
    for (n, line) in content.lines().enumerate() {
        let Some((id, text)) = line.split_once('\t') else {
            if line.is_empty() {
                continue;
            }
            return Err(invalid_line(path, n + 1, format!("expected ASIN<TAB>text, found {line:?}")));
        };
        if n == 0 && id.contains(':') {
            continue;
        }
        if let Some(first_line) = first_line_of.insert(id, n + 1) {
            return Err(invalid_line(path, n + 1, format!("item_id {id:?} appears twice (first on line {first_line})")));
        }
        match index_of.get(id) {
            Some(&index) => texts[index] = Some(text.to_string()),
            None => skipped.push(format!("line {}: {id:?}", n + 1)),
        }
    }
    if !skipped.is_empty() {
        tracing::warn!(
            skipped = skipped.len(),
            first = ?&skipped[..skipped.len().min(5)],
            path = %path.display(),
            "text rows of items absent from item2index were skipped"
        );
    }
    Ok(())
}

fn find_meta(dir: &Path) -> Result<Option<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|source| TextError::Io { path: dir.to_path_buf(), source })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("meta_") && n.ends_with(".json")))
        .collect();
    found.sort();
    if found.len() > 1 {
        let names: Vec<String> = found.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
        return Err(TextError::UnknownDataset {
            dir: dir.to_path_buf(),
            message: format!("several Amazon metadata files ({}); keep the one of this dataset", names.join(", ")),
        });
    }
    Ok(found.pop())
}

/// Reads Amazon 2018 metadata (one JSON record with an `asin` per line);
/// the first record of each item wins, as in UniSRec's preprocessing.
fn read_amazon_meta(path: &Path, index_of: &HashMap<&str, usize>, texts: &mut [Option<String>]) -> Result<()> {
    let content = read_text(path)?;
    for (n, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = serde_json::from_str(line).map_err(|e| invalid_line(path, n + 1, format!("invalid JSON: {e}")))?;
        let Some(asin) = record.get("asin").and_then(Value::as_str) else {
            return Err(invalid_line(path, n + 1, "the record has no \"asin\" string".into()));
        };
        if let Some(&index) = index_of.get(asin) {
            if texts[index].is_none() {
                texts[index] = amazon_item_text(&record);
            }
        }
    }
    Ok(())
}

/// Reads LC-Rec's `NAME.item.json`: `{"0": {"title": ..., "categories": ...,
/// "brand": ...}, ...}`. Indices must run from 0 without gaps; empty fields
/// are left out.
fn load_lcrec(path: &Path) -> Result<ItemTexts> {
    let content = read_text(path)?;
    let records: Vec<(String, Value)> = serde_json::from_str::<OrderedEntries>(&content)
        .map_err(|source| TextError::Json { path: path.to_path_buf(), source })?
        .0;

    let invalid = |key: &str, message: String| TextError::InvalidConfig { path: path.to_path_buf(), field: format!("key {key:?}"), message };
    let mut texts: Vec<Option<String>> = vec![None; records.len()];
    let mut seen = vec![false; records.len()];
    for (key, record) in &records {
        // Only the plain decimal form, so that "00" or "+0" cannot stand for 0.
        let index: usize = key
            .parse()
            .ok()
            .filter(|index: &usize| index.to_string() == *key)
            .ok_or_else(|| invalid(key, "item keys must be the indices 0, 1, 2, ... written in decimal".into()))?;
        let Some(slot) = seen.get_mut(index) else {
            return Err(invalid(key, format!("item index {index} is not below the item count {}", records.len())));
        };
        if std::mem::replace(slot, true) {
            return Err(invalid(key, "the key appears twice".into()));
        }
        if !record.is_object() {
            return Err(invalid(key, format!("expected an object with title, categories and brand, found {record}")));
        }
        let fields = ["title", "categories", "brand"].map(|name| record.get(name).and_then(field_string));
        texts[index] = join_fields(fields.iter().map(|f| f.as_deref()), false);
    }
    let item_ids = (0..texts.len()).map(|i| i.to_string()).collect();
    Ok(finish(item_ids, texts, path.to_path_buf()))
}

/// The entries of a JSON object in file order, repeated keys included,
/// which a map type would silently merge.
struct OrderedEntries(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for OrderedEntries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = OrderedEntries;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("an object of item records keyed by index")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<OrderedEntries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(OrderedEntries(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// Reads a RecBole atomic `NAME.item` file. The text is every `token` and
/// `token_seq` column after the item id, in column order (for MovieLens:
/// title, release year, genres); empty fields are left out.
///
/// NOTE: rows follow the `.item` file's order. A RecBole interaction loader
/// must map item ids to indices in the same order to use these features.
fn load_recbole(path: &Path) -> Result<ItemTexts> {
    let content = read_text(path)?;
    let mut lines = content.lines().enumerate();
    let header = lines.next().map(|(_, line)| line).unwrap_or("");
    let columns: Vec<(&str, &str)> = header.split('\t').map(|c| c.split_once(':').unwrap_or((c, ""))).collect();
    let id_column = columns
        .iter()
        .position(|&(name, _)| name == "item_id")
        .ok_or_else(|| invalid_line(path, 1, format!("the header {header:?} has no item_id column")))?;
    let text_columns: Vec<usize> = (0..columns.len())
        .filter(|&c| c != id_column && matches!(columns[c].1, "token" | "token_seq"))
        .collect();
    if text_columns.is_empty() {
        return Err(invalid_line(
            path,
            1,
            format!("the header {header:?} has no text column: expected columns typed NAME:token or NAME:token_seq besides item_id"),
        ));
    }

    let (mut item_ids, mut texts) = (Vec::new(), Vec::new());
    let mut first_line_of: HashMap<&str, usize> = HashMap::new();
    for (n, line) in lines {
        if line.is_empty() {
            continue;
        }
        let values: Vec<&str> = line.split('\t').collect();
        if values.len() != columns.len() {
            return Err(invalid_line(path, n + 1, format!("expected {} tab-separated fields, found {}", columns.len(), values.len())));
        }
        let id = values[id_column];
        if id.is_empty() {
            return Err(invalid_line(path, n + 1, "the item_id field is empty".into()));
        }
        if let Some(first_line) = first_line_of.insert(id, n + 1) {
            return Err(invalid_line(path, n + 1, format!("item_id {id:?} appears twice (first on line {first_line})")));
        }
        item_ids.push(id.to_string());
        texts.push(join_fields(text_columns.iter().map(|&c| Some(values[c])), false));
    }
    Ok(finish(item_ids, texts, path.to_path_buf()))
}

fn finish(item_ids: Vec<String>, texts: Vec<Option<String>>, source: PathBuf) -> ItemTexts {
    let missing = texts.iter().filter(|t| t.is_none()).count();
    let texts = texts.into_iter().map(Option::unwrap_or_default).collect();
    ItemTexts { item_ids, texts, missing, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_field_rules() {
        assert_eq!(clean_field("A &quot;B&quot; &#38; C"), "A B & C.");
        assert_eq!(clean_field("line\nbreak\r\n"), "linebreak.");
        assert_eq!(clean_field("ends..."), "ends.");
        assert_eq!(clean_field("no period"), "no period.");
        assert_eq!(clean_field(&"x".repeat(1999)), "");
    }

    #[test]
    fn amazon_text_keeps_field_order() {
        let record = serde_json::json!({"brand": "B", "title": "T.", "category": []});
        assert_eq!(amazon_item_text(&record).unwrap(), "T. . B. ");
    }

    #[test]
    fn amazon_text_without_fields() {
        assert_eq!(amazon_item_text(&serde_json::json!({"asin": "X"})), None);
    }

    #[test]
    fn word_drop_extremes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        assert_eq!(word_drop("a b c", 0.0, &mut rng), "a b c");
        assert_eq!(word_drop("a b c", 1.0, &mut rng), "");
    }

    #[test]
    fn word_drop_rate() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let text = vec!["w"; 10_000].join(" ");
        let kept = word_drop(&text, 0.15, &mut rng).split(' ').count();
        // Binomial(10000, 0.85): mean 8500, standard deviation about 36.
        assert!((8350..=8650).contains(&kept), "kept {kept} words");
    }
}
