//! Conversion of interaction logs into UniSRec's processed format.
//!
//! Two inputs are read: a RecBole atomic `NAME.inter` file (columns
//! `user_id`, `item_id` and optionally `timestamp`, each with a `:type`
//! suffix) and an LC-Rec `NAME.inter.json` file (a user index mapped to the
//! item indices in time order). Both become per-user sequences in time
//! order, and [`write_unisrec`] writes them with UniSRec's leave-one-out
//! split.
//!
//! ```no_run
//! use std::path::Path;
//! use recmodel::data::{read_recbole_log, write_unisrec, ConvertOptions};
//!
//! let log = read_recbole_log(Path::new("data/ml-100k/ml-100k.inter"))?;
//! let report = write_unisrec(Path::new("out"), "ml-100k", log, None, &ConvertOptions::default())?;
//! assert!(report.users > 0);
//! # Ok::<(), recmodel::data::DataError>(())
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use super::error::DataError;
use super::read_text;

/// One user's interactions in time order, by the tokens of the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserLog {
    /// The user's token.
    pub user: String,
    /// Item tokens, oldest first.
    pub items: Vec<String>,
}

/// Settings of [`write_unisrec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Most recent items kept in a history (UniSRec keeps 50).
    pub max_history: usize,
    /// k-core filter: users and items with fewer interactions are removed,
    /// repeatedly, until none is left (0 keeps every user and item).
    pub min_interactions: usize,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions { max_history: 50, min_interactions: 0 }
    }
}

/// Counts of the dataset that [`write_unisrec`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertReport {
    /// Users written.
    pub users: usize,
    /// Items written.
    pub items: usize,
    /// Interactions of the written users.
    pub interactions: usize,
    /// Rows of `NAME.train.inter`.
    pub train_rows: usize,
    /// Users removed because they had fewer than three interactions after
    /// filtering (leave-one-out needs a training, a validation and a test item).
    pub dropped_users: usize,
    /// Users removed by the k-core filter.
    pub filtered_users: usize,
    /// Items removed by the k-core filter.
    pub filtered_items: usize,
    /// Written items without text, when texts were given.
    pub items_without_text: usize,
}

/// Reads a RecBole atomic `.inter` file into per-user logs.
///
/// Users appear in the order of their first line. A user's items are
/// sorted by `timestamp` when the file has that column. Interactions with
/// equal timestamps keep file order, and so do all of them without the
/// column.
///
/// # Errors
/// [`DataError::MissingColumn`] for a header without `user_id` or `item_id`,
/// [`DataError::ColumnCount`] for a line with another number of fields,
/// [`DataError::EmptyField`] for an empty user or item, and
/// [`DataError::InvalidValue`] for a timestamp that is not a finite number.
pub fn read_recbole_log(path: &Path) -> Result<Vec<UserLog>, DataError> {
    let text = read_text(path)?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let Some((_, header)) = lines.next() else {
        return Err(DataError::Empty { path: path.to_path_buf() });
    };
    let columns: Vec<&str> = header.split('\t').map(|c| c.split_once(':').map_or(c, |(name, _)| name)).collect();
    let column = |name: &str| columns.iter().position(|&c| c == name);
    let missing = |name: &str| DataError::MissingColumn { path: path.to_path_buf(), column: name.into(), found: header.into() };
    let user_column = column("user_id").ok_or_else(|| missing("user_id"))?;
    let item_column = column("item_id").ok_or_else(|| missing("item_id"))?;
    let time_column = column("timestamp");

    let mut order: HashMap<String, usize> = HashMap::new();
    let mut logs: Vec<(String, Vec<(f64, String)>)> = Vec::new();
    let mut rows = 0usize;
    for (line, content) in lines {
        if content.is_empty() {
            continue;
        }
        let values: Vec<&str> = content.split('\t').collect();
        if values.len() != columns.len() {
            return Err(DataError::ColumnCount {
                path: path.to_path_buf(),
                line,
                expected: columns.len(),
                fields: "the header's columns",
                found: values.len(),
                value: content.chars().take(80).collect(),
            });
        }
        let (user, item) = (values[user_column], values[item_column]);
        for (field, value) in [("user_id", user), ("item_id", item)] {
            if value.is_empty() {
                return Err(DataError::EmptyField { path: path.to_path_buf(), line, field });
            }
        }
        let time = match time_column {
            Some(c) => match values[c].parse::<f64>() {
                Ok(t) if t.is_finite() => t,
                _ => {
                    return Err(DataError::InvalidValue {
                        path: path.to_path_buf(),
                        line,
                        field: "timestamp".into(),
                        value: values[c].into(),
                        expected: "a finite number".into(),
                    })
                }
            },
            None => 0.0,
        };
        let slot = *order.entry(user.to_string()).or_insert_with(|| {
            logs.push((user.to_string(), Vec::new()));
            logs.len() - 1
        });
        logs[slot].1.push((time, item.to_string()));
        rows += 1;
    }
    if rows == 0 {
        return Err(DataError::NoRows { path: path.to_path_buf() });
    }
    Ok(logs
        .into_iter()
        .map(|(user, mut events)| {
            // A stable sort keeps file order among equal timestamps.
            events.sort_by(|a, b| a.0.total_cmp(&b.0));
            UserLog { user, items: events.into_iter().map(|(_, item)| item).collect() }
        })
        .collect())
}

/// Reads an LC-Rec `NAME.inter.json` file: `{"0": [3, 1, 4], ...}`, a user
/// index mapped to item indices in time order. Users come in index order.
///
/// # Errors
/// [`DataError::InvalidValue`] for JSON that is not such an object, a user
/// key that is not an index, or an item that is not a non-negative integer.
pub fn read_lcrec_log(path: &Path) -> Result<Vec<UserLog>, DataError> {
    let text = read_text(path)?;
    let invalid = |field: String, value: String, expected: &str| DataError::InvalidValue {
        path: path.to_path_buf(),
        line: 0,
        field,
        value,
        expected: expected.into(),
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| invalid("(file)".into(), e.to_string(), "valid JSON: an object of user indices to item lists"))?;
    let object = value.as_object().ok_or_else(|| invalid("(file)".into(), "a non-object".into(), "an object of user indices to item lists"))?;
    let mut logs = Vec::with_capacity(object.len());
    for (key, items) in object {
        let index: usize = key.parse().ok().filter(|i: &usize| i.to_string() == *key).ok_or_else(|| invalid(format!("key {key:?}"), key.clone(), "a user index"))?;
        let list = items.as_array().ok_or_else(|| invalid(format!("key {key:?}"), items.to_string(), "a list of item indices"))?;
        let items = list
            .iter()
            .map(|item| item.as_u64().map(|i| i.to_string()).ok_or_else(|| invalid(format!("key {key:?}"), item.to_string(), "an item index")))
            .collect::<Result<Vec<_>, _>>()?;
        logs.push((index, UserLog { user: key.clone(), items }));
    }
    if logs.is_empty() {
        return Err(DataError::NoRows { path: path.to_path_buf() });
    }
    logs.sort_by_key(|(index, _)| *index);
    Ok(logs.into_iter().map(|(_, log)| log).collect())
}

/// Removes users and items with fewer than `k` interactions, repeatedly,
/// and returns how many users and items were removed.
fn k_core(logs: &mut Vec<UserLog>, k: usize) -> (usize, usize) {
    let items_before: std::collections::HashSet<String> = logs.iter().flat_map(|l| l.items.iter().cloned()).collect();
    let users_before = logs.len();
    if k > 1 {
        loop {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for log in logs.iter() {
                for item in &log.items {
                    *counts.entry(item.as_str()).or_default() += 1;
                }
            }
            let rare: std::collections::HashSet<String> = counts.into_iter().filter(|&(_, c)| c < k).map(|(i, _)| i.to_string()).collect();
            let before: usize = logs.iter().map(|l| l.items.len()).sum::<usize>() + logs.len();
            for log in logs.iter_mut() {
                log.items.retain(|item| !rare.contains(item));
            }
            logs.retain(|log| log.items.len() >= k);
            let after: usize = logs.iter().map(|l| l.items.len()).sum::<usize>() + logs.len();
            if after == before {
                break;
            }
        }
    }
    let items_after: std::collections::HashSet<&str> = logs.iter().flat_map(|l| l.items.iter().map(String::as_str)).collect();
    (users_before - logs.len(), items_before.len() - items_after.len())
}

/// Writes `logs` to `out_dir` as the UniSRec dataset `name`.
///
/// After the k-core filter of `options`, users with fewer than three
/// interactions are dropped. For a user with items `s_1 .. s_n` (oldest
/// first), `NAME.test.inter` gets `s_n` after `s_1 .. s_{n-1}`,
/// `NAME.valid.inter` gets `s_{n-1}` after `s_1 .. s_{n-2}`, and
/// `NAME.train.inter` one row for each `s_i`, `2 <= i <= n - 2`, after
/// `s_1 .. s_{i-1}`. Histories keep their last `options.max_history`
/// items. Users and items are indexed from 0 in order of first appearance
/// (users in log order, items as the logs mention them), in
/// `NAME.user2index` and `NAME.item2index`. With `texts` (item token to
/// text), `NAME.text` lists every item's text in index order, and an
/// item without one gets an empty text.
///
/// # Errors
/// [`DataError::NoRows`] when no user is left, and [`DataError::Write`]
/// naming a file that could not be written.
pub fn write_unisrec(
    out_dir: &Path,
    name: &str,
    mut logs: Vec<UserLog>,
    texts: Option<&HashMap<String, String>>,
    options: &ConvertOptions,
) -> Result<ConvertReport, DataError> {
    let (filtered_users, filtered_items) = k_core(&mut logs, options.min_interactions);
    let before = logs.len();
    logs.retain(|log| log.items.len() >= 3);
    let dropped_users = before - logs.len();
    if logs.is_empty() {
        return Err(DataError::NoRows { path: out_dir.join(format!("{name}.train.inter")) });
    }

    let mut item_index: HashMap<&str, usize> = HashMap::new();
    let mut item_tokens: Vec<&str> = Vec::new();
    for log in &logs {
        for item in &log.items {
            item_index.entry(item.as_str()).or_insert_with(|| {
                item_tokens.push(item.as_str());
                item_tokens.len() - 1
            });
        }
    }

    const HEADER: &str = "user_id:token\titem_id_list:token_seq\titem_id:token\n";
    let (mut train, mut valid, mut test) = (HEADER.to_string(), HEADER.to_string(), HEADER.to_string());
    let mut users = String::new();
    let mut train_rows = 0usize;
    let row = |out: &mut String, user: usize, items: &[usize], position: usize| {
        let start = position.saturating_sub(options.max_history);
        let history: Vec<String> = items[start..position].iter().map(usize::to_string).collect();
        let _ = writeln!(out, "{user}\t{}\t{}", history.join(" "), items[position]);
    };
    for (user, log) in logs.iter().enumerate() {
        let items: Vec<usize> = log.items.iter().map(|item| item_index[item.as_str()]).collect();
        let n = items.len();
        for position in 1..n - 2 {
            row(&mut train, user, &items, position);
            train_rows += 1;
        }
        row(&mut valid, user, &items, n - 2);
        row(&mut test, user, &items, n - 1);
        let _ = writeln!(users, "{}\t{user}", log.user);
    }
    let mut items = String::new();
    for (index, token) in item_tokens.iter().enumerate() {
        let _ = writeln!(items, "{token}\t{index}");
    }

    let mut files = vec![
        (format!("{name}.train.inter"), train),
        (format!("{name}.valid.inter"), valid),
        (format!("{name}.test.inter"), test),
        (format!("{name}.user2index"), users),
        (format!("{name}.item2index"), items),
    ];
    let mut items_without_text = 0;
    if let Some(texts) = texts {
        let mut content = String::from("item_id:token\ttext:token_seq\n");
        for token in &item_tokens {
            let text = texts.get(*token).map(String::as_str).unwrap_or_default();
            if text.is_empty() {
                items_without_text += 1;
            }
            // Tabs and line breaks would break the two-column format.
            let text: String = text.chars().map(|c| if c == '\t' || c == '\n' || c == '\r' { ' ' } else { c }).collect();
            let _ = writeln!(content, "{token}\t{text}");
        }
        files.push((format!("{name}.text"), content));
    }
    std::fs::create_dir_all(out_dir).map_err(|source| DataError::Write { path: out_dir.to_path_buf(), source })?;
    for (file, content) in files {
        let path = out_dir.join(file);
        std::fs::write(&path, content).map_err(|source| DataError::Write { path, source })?;
    }

    Ok(ConvertReport {
        users: logs.len(),
        items: item_tokens.len(),
        interactions: logs.iter().map(|l| l.items.len()).sum(),
        train_rows,
        dropped_users,
        filtered_users,
        filtered_items,
        items_without_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(user: &str, items: &[&str]) -> UserLog {
        UserLog { user: user.into(), items: items.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn leave_one_out_rows() {
        let dir = tempfile::tempdir().unwrap();
        let logs = vec![log("u1", &["a", "b", "c", "d", "e"]), log("u2", &["c", "a", "f"]), log("u3", &["a", "b"])];
        let options = ConvertOptions { max_history: 2, min_interactions: 0 };
        let report = write_unisrec(dir.path(), "T", logs, None, &options).unwrap();
        assert_eq!((report.users, report.items, report.interactions), (2, 6, 8));
        assert_eq!((report.train_rows, report.dropped_users), (2, 1));
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        // Items a..e are 0..4, f is 5; histories keep their last 2 items.
        assert_eq!(read("T.train.inter").lines().skip(1).collect::<Vec<_>>(), ["0\t0\t1", "0\t0 1\t2"]);
        assert_eq!(read("T.valid.inter").lines().skip(1).collect::<Vec<_>>(), ["0\t1 2\t3", "1\t2\t0"]);
        assert_eq!(read("T.test.inter").lines().skip(1).collect::<Vec<_>>(), ["0\t2 3\t4", "1\t2 0\t5"]);
        assert_eq!(read("T.user2index"), "u1\t0\nu2\t1\n");
        assert_eq!(read("T.item2index").lines().next(), Some("a\t0"));
    }

    #[test]
    fn k_core_repeats_until_stable() {
        // With k = 3, item z (once) goes first, which leaves u3 with two items.
        let mut logs = vec![log("u1", &["a", "b", "a"]), log("u2", &["a", "b", "b"]), log("u3", &["a", "b", "z"])];
        let (users, items) = k_core(&mut logs, 3);
        assert_eq!((users, items), (1, 1));
        assert_eq!(logs.len(), 2);
    }
}
