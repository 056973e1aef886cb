//! Datasets, item features and batches for sequential recommendation.
//!
//! [`load_unisrec`] reads a dataset in UniSRec's processed format,
//! [`load_features`] reads an item feature file, [`load_item_text`] reads
//! the item texts, and [`make_batches`] groups training rows into padded
//! batches. [`read_recbole_log`], [`read_lcrec_log`] and [`write_unisrec`]
//! turn raw interaction logs into the processed format.
//!
//! Item indices are kept exactly as in the files: 0-based, and item 0 is a
//! real item (row 0 of the feature file). Padding is therefore never an item
//! value: a [`Batch`] carries each row's length, and code must read those
//! lengths instead of looking for zeros.
//!
//! Loaders reject bad input with a [`DataError`] that names the file, the
//! line, the field and the value. They never skip a line.

mod batching;
mod convert;
mod error;
mod features;
mod unisrec;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

pub use batching::{make_batches, make_batches_in_order, padded_positions, Batch, Batching, ParseBatchingError};
pub use convert::{read_lcrec_log, read_recbole_log, write_unisrec, ConvertOptions, ConvertReport, UserLog};
pub use error::DataError;
pub use features::{load_features, load_features_with_dim};
pub use unisrec::{load_item_text, load_unisrec};
pub(crate) use unisrec::read_index_map;

/// One row of a `.inter` file: a user's history, oldest item first, and the
/// item that came next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceExample {
    /// User index, as in `NAME.user2index`.
    pub user: u32,
    /// Item indices, oldest first, never empty. Item 0 is a real item.
    pub history: Vec<u32>,
    /// The next item, which the model should rank first.
    pub target: u32,
}

/// A dataset with a leave-one-out split: per user, the last item is the test
/// target and the second to last the validation target.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Dataset name taken from the file names, such as "Scientific".
    pub name: String,
    /// Number of items; valid item indices are `0..num_items`.
    pub num_items: usize,
    /// Number of users; valid user indices are `0..num_users`.
    pub num_users: usize,
    /// External id (ASIN for Amazon data) per item index.
    pub item_ids: Vec<String>,
    /// External id (reviewer id for Amazon data) per user index.
    pub user_ids: Vec<String>,
    /// Training rows: every prefix of every user's training sequence.
    pub train: Vec<SequenceExample>,
    /// Validation rows: one per user, the training sequence and the
    /// validation item.
    pub valid: Vec<SequenceExample>,
    /// Test rows: one per user, the history up to the validation item and
    /// the test item.
    pub test: Vec<SequenceExample>,
}

impl Dataset {
    /// Returns the rows of one split.
    pub fn split(&self, split: Split) -> &[SequenceExample] {
        match split {
            Split::Train => &self.train,
            Split::Valid => &self.valid,
            Split::Test => &self.test,
        }
    }
}

/// One of the three parts of a dataset.
///
/// Parses from and prints as "train", "valid" and "test".
///
/// ```
/// use recmodel::data::Split;
/// let split: Split = "valid".parse().unwrap();
/// assert_eq!(split, Split::Valid);
/// assert_eq!(split.to_string(), "valid");
/// assert!("validation".parse::<Split>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// Training rows.
    Train,
    /// Validation rows.
    Valid,
    /// Test rows.
    Test,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        })
    }
}

/// The error of parsing a [`Split`] from a string.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid split {0:?}: expected train, valid or test")]
pub struct ParseSplitError(pub String);

impl FromStr for Split {
    type Err = ParseSplitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Split::Train),
            "valid" => Ok(Split::Valid),
            "test" => Ok(Split::Test),
            _ => Err(ParseSplitError(s.to_string())),
        }
    }
}

/// Reads a whole text file, reporting the first line that is not UTF-8.
pub(crate) fn read_text(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..valid].iter().filter(|&&b| b == b'\n').count();
        DataError::Encoding { path: path.to_path_buf(), line }
    })
}

/// Cuts `line` to at most 80 characters for an error message.
pub(crate) fn excerpt(line: &str) -> String {
    const MAX_CHARS: usize = 80;
    match line.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}...", &line[..end]),
        None => line.to_string(),
    }
}
