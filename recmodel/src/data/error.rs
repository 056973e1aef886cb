//! The error type of the dataset, feature and item-text loaders.

use std::path::PathBuf;

/// Errors raised while reading a UniSRec dataset, a feature file or an
/// item-text file.
///
/// Every variant names the file. Variants about one line of a text file also
/// name the 1-based line, the field (column name) and the offending value, so
/// a message reads like
/// `.../Scientific.train.inter line 17, field item_id_list: "12x" is not an item index`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// Reading a file or listing a folder failed.
    #[error("failed to read {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A line that is not valid UTF-8.
    #[error("{} line {line}: not valid UTF-8", path.display())]
    Encoding {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },

    /// A folder without a `*.train.inter` file.
    #[error("no *.train.inter file in {}: expected a UniSRec dataset (NAME.train.inter, NAME.valid.inter, NAME.test.inter, NAME.item2index, NAME.user2index)", dir.display())]
    NoDataset {
        /// The folder searched.
        dir: PathBuf,
    },

    /// A folder with more than one `*.train.inter` file.
    #[error("{} contains several datasets ({}): pass a folder with exactly one *.train.inter file", dir.display(), names.join(", "))]
    SeveralDatasets {
        /// The folder searched.
        dir: PathBuf,
        /// The dataset names found, sorted.
        names: Vec<String>,
    },

    /// A file with no lines at all.
    #[error("{}: the file is empty", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },

    /// An interaction file with a header but no rows.
    #[error("{}: the file has a header but no rows", path.display())]
    NoRows {
        /// The file.
        path: PathBuf,
    },

    /// A first line that is not the expected header.
    #[error("{} line 1: expected the header {expected:?}, found {found:?}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// The header the format requires.
        expected: String,
        /// The first line of the file.
        found: String,
    },

    /// A line with the wrong number of tab-separated fields.
    #[error("{} line {line}: expected {expected} tab-separated fields ({fields}), found {found} in {value:?}", path.display())]
    ColumnCount {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Number of fields the format requires.
        expected: usize,
        /// Names of the required fields, comma-separated.
        fields: &'static str,
        /// Number of fields found.
        found: usize,
        /// The line, cut to at most 80 characters.
        value: String,
    },

    /// A field that must not be empty but is.
    #[error("{} line {line}, field {field}: the value is empty", path.display())]
    EmptyField {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Column name.
        field: &'static str,
    },

    /// A token that does not parse as a non-negative integer index.
    #[error("{} line {line}, field {field}: {value:?} is not {expected}", path.display())]
    NotAnIndex {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Column name.
        field: &'static str,
        /// The token.
        value: String,
        /// Description of a valid token, with its article: "an item index".
        expected: &'static str,
    },

    /// An index at or past the number of items or users.
    #[error("{} line {line}, field {field}: {kind} {value} is out of range ({count} {kind}s)", path.display())]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Column name.
        field: &'static str,
        /// "item" or "user".
        kind: &'static str,
        /// The index.
        value: u32,
        /// Number of items or users: valid indices are `0..count`.
        count: usize,
    },

    /// A sequence row whose history has no items.
    #[error("{} line {line}, field {field}: the history is empty (every row needs at least one item before its target)", path.display())]
    EmptyHistory {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Column name.
        field: &'static str,
    },

    /// An external id given twice.
    #[error("{} line {line}, field {field}: duplicate id {value:?} (first on line {first_line})", path.display())]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the repeat.
        line: usize,
        /// Column name.
        field: &'static str,
        /// The id.
        value: String,
        /// 1-based line number of the first occurrence.
        first_line: usize,
    },

    /// An index given to two external ids in an index map.
    #[error("{} line {line}, field {field}: index {value} is already taken by {first_id:?} on line {first_line}", path.display())]
    DuplicateIndex {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the repeat.
        line: usize,
        /// Column name.
        field: &'static str,
        /// The index.
        value: u32,
        /// The id that took the index first.
        first_id: String,
        /// 1-based line number of the first occurrence.
        first_line: usize,
    },

    /// An external id missing from the dataset's index map.
    #[error("{} line {line}, field {field}: {value:?} is not in {map}", path.display())]
    UnknownId {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Column name.
        field: &'static str,
        /// The id.
        value: String,
        /// The index map searched, such as "item2index".
        map: &'static str,
    },

    /// An item that has no row in an item-text file.
    #[error("{}: no text for item {index} ({id:?})", path.display())]
    MissingText {
        /// The file.
        path: PathBuf,
        /// The item index.
        index: usize,
        /// The item's external id.
        id: String,
    },

    /// A feature file requested for zero items.
    #[error("{}: cannot read features for 0 items", path.display())]
    NoItems {
        /// The file.
        path: PathBuf,
    },

    /// A feature file whose size is not `4 * num_items * dim` bytes for a
    /// positive `dim` (or for the given `dim`).
    #[error("{}: {bytes} bytes is not {expected} for {num_items} items of f32", path.display())]
    FeatureSize {
        /// The file.
        path: PathBuf,
        /// The file size.
        bytes: u64,
        /// Number of items (rows).
        num_items: usize,
        /// Required size, such as "a multiple of 17540 bytes" or "1684224 bytes (dimension 96)".
        expected: String,
    },

    /// A feature value that is NaN or infinite.
    #[error("{} row {row}, column {column}: {value} is not finite", path.display())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// 0-based row, which is the item index.
        row: usize,
        /// 0-based column.
        column: usize,
        /// The value read.
        value: f32,
    },

    /// A value of an interaction log that the converter cannot use.
    #[error("{} line {line}, field {field}: {value:?} is not {expected}", path.display())]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// 1-based line, or 0 for a value of a JSON file.
        line: usize,
        /// The column or JSON key.
        field: String,
        /// The offending value.
        value: String,
        /// The expected kind of value.
        expected: String,
    },

    /// A header without a column that the converter needs.
    #[error("{} line 1: the header has no {column} column (found {found:?})", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The missing column, such as `user_id`.
        column: String,
        /// The header as read.
        found: String,
    },

    /// Writing a converted dataset failed.
    #[error("failed to write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A tensor that could not be built from the values read.
    #[error("{}: {source}", path.display())]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: autograd::Error,
    },
}
