//! Grouping sequence rows into right-padded batches.

use std::fmt;
use std::str::FromStr;

use rand_chacha::ChaCha12Rng;
use rand::seq::SliceRandom;

use super::SequenceExample;

/// The grouping strategy of [`make_batches`].
///
/// Parses from and prints as "bucketed" and "random", so it works as a
/// clap argument through [`FromStr`].
///
/// ```
/// use recmodel::data::Batching;
/// assert_eq!("random".parse::<Batching>().unwrap(), Batching::Random);
/// assert_eq!(Batching::Bucketed.to_string(), "bucketed");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Batching {
    /// Shuffle the rows, stable-sort them by history length, cut them into
    /// batches and shuffle the batch order. Rows of similar length share a
    /// batch, so little padding is needed.
    Bucketed,
    /// Shuffle the rows and cut them into batches, as UniSRec (RecBole)
    /// does.
    Random,
}

impl fmt::Display for Batching {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Batching::Bucketed => "bucketed",
            Batching::Random => "random",
        })
    }
}

/// The error of parsing a [`Batching`] from a string.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid batching {0:?}: expected bucketed or random")]
pub struct ParseBatchingError(pub String);

impl FromStr for Batching {
    type Err = ParseBatchingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bucketed" => Ok(Batching::Bucketed),
            "random" => Ok(Batching::Random),
            _ => Err(ParseBatchingError(s.to_string())),
        }
    }
}

/// A batch of sequence rows, right-padded to a common length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Index of each row in the examples the batch was made from.
    pub rows: Vec<usize>,
    /// Histories, row-major `[rows.len(), max_len]`, right-padded with 0.
    /// Item 0 is a real item, so only `lengths` separates items from padding.
    pub items: Vec<u32>,
    /// Number of real items in each row, at least 1.
    pub lengths: Vec<usize>,
    /// Maximum history length in the batch, which is the padded row length.
    pub max_len: usize,
    /// Target item of each row.
    pub targets: Vec<u32>,
}

impl Batch {
    /// Builds a batch from the rows `rows` of `examples`.
    ///
    /// # Panics
    /// Panics if a row index is out of bounds for `examples`.
    pub fn from_rows(examples: &[SequenceExample], rows: Vec<usize>) -> Batch {
        let max_len = rows.iter().map(|&r| examples[r].history.len()).max().unwrap_or(0);
        let mut items = vec![0; rows.len() * max_len];
        let mut lengths = Vec::with_capacity(rows.len());
        let mut targets = Vec::with_capacity(rows.len());
        for (i, &r) in rows.iter().enumerate() {
            let example = &examples[r];
            items[i * max_len..i * max_len + example.history.len()].copy_from_slice(&example.history);
            lengths.push(example.history.len());
            targets.push(example.target);
        }
        Batch { rows, items, lengths, max_len, targets }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Returns true if the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Returns the real items of row `i`, without padding.
    ///
    /// # Panics
    /// Panics if `i >= self.len()`.
    pub fn history(&self, i: usize) -> &[u32] {
        let start = i * self.max_len;
        &self.items[start..start + self.lengths[i]]
    }
}

/// Groups `examples` into batches of at most `batch_size` rows, shuffled
/// with `rng` as `mode` selects. Every row lands in exactly one batch, and the
/// same seed gives the same batches.
///
/// ```
/// use rand::SeedableRng;
/// use recmodel::data::{make_batches, Batching, SequenceExample};
///
/// let examples: Vec<SequenceExample> = (0..5)
///     .map(|n| SequenceExample { user: n, history: (0..=n).collect(), target: 9 })
///     .collect();
/// let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(1);
/// let batches = make_batches(&examples, 2, Batching::Bucketed, &mut rng);
/// assert_eq!(batches.len(), 3);
/// assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), 5);
/// ```
///
/// # Panics
/// Panics if `batch_size` is 0.
pub fn make_batches(examples: &[SequenceExample], batch_size: usize, mode: Batching, rng: &mut ChaCha12Rng) -> Vec<Batch> {
    assert!(batch_size > 0, "make_batches: batch_size must be positive");
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(rng);

    match mode {
        Batching::Random => cut(examples, &order, batch_size),
        Batching::Bucketed => {
            // The sort is stable, so rows of equal length keep their shuffled
            // order and a batch of one length differs from epoch to epoch.
            order.sort_by_key(|&r| examples[r].history.len());
            let mut batches = cut(examples, &order, batch_size);
            batches.shuffle(rng);
            batches
        }
    }
}

/// Groups `examples` into batches of at most `batch_size` rows in file order,
/// for evaluation.
///
/// # Panics
/// Panics if `batch_size` is 0.
pub fn make_batches_in_order(examples: &[SequenceExample], batch_size: usize) -> Vec<Batch> {
    assert!(batch_size > 0, "make_batches_in_order: batch_size must be positive");
    let order: Vec<usize> = (0..examples.len()).collect();
    cut(examples, &order, batch_size)
}

/// Total padded positions of `batches`: the sum of `rows * max_len`, which
/// is what a model computes on, padding included.
pub fn padded_positions(batches: &[Batch]) -> usize {
    batches.iter().map(|b| b.len() * b.max_len).sum()
}

fn cut(examples: &[SequenceExample], order: &[usize], batch_size: usize) -> Vec<Batch> {
    order.chunks(batch_size).map(|rows| Batch::from_rows(examples, rows.to_vec())).collect()
}
