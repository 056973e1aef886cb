//! The popularity baseline: score every item by how often it occurs in the
//! users' training sequences, and rank all items by that score for every
//! user alike.

use rayon::prelude::*;

use crate::data::{Dataset, SequenceExample};
use crate::metrics::{target_rank, RankingMetrics};

/// Counts each item over the users' training sequences and returns the
/// counts as scores, one per item index.
///
/// A user's training sequence is the history of that user's validation row.
/// The `.inter` training rows are not counted, because they are all the
/// prefixes of those sequences and would count early items many times.
/// Validation and test targets are not counted either, so the same scores
/// serve both splits without leaking a target.
///
/// ```
/// use recmodel::data::{Dataset, SequenceExample};
/// use recmodel::popularity::popularity_scores;
///
/// let row = |user, history: &[u32], target| SequenceExample { user, history: history.to_vec(), target };
/// let dataset = Dataset {
///     name: "Toy".into(),
///     num_items: 4,
///     num_users: 2,
///     item_ids: vec!["a".into(), "b".into(), "c".into(), "d".into()],
///     user_ids: vec!["u".into(), "v".into()],
///     train: vec![row(0, &[0], 1), row(1, &[2], 1)],
///     valid: vec![row(0, &[0, 1], 3), row(1, &[2, 1], 3)],
///     test: vec![row(0, &[0, 1, 3], 2), row(1, &[2, 1, 3], 0)],
/// };
/// assert_eq!(popularity_scores(&dataset), [1.0, 2.0, 1.0, 0.0]);
/// ```
///
/// # Panics
/// Panics if a history item is not below `dataset.num_items`, which
/// [`crate::data::load_unisrec`] rules out.
pub fn popularity_scores(dataset: &Dataset) -> Vec<f32> {
    let mut counts = vec![0u32; dataset.num_items];
    for example in &dataset.valid {
        for &item in &example.history {
            counts[item as usize] += 1;
        }
    }
    // NOTE: counts above 2^24 (16,777,216) are rounded in f32, so ties may appear there.
    counts.into_iter().map(|c| c as f32).collect()
}

/// The result of ranking a split's targets under one score vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Metrics averaged over the rows.
    pub metrics: RankingMetrics,
    /// Rank of each row's target: `ranks[i]` belongs to `examples[i]`, the
    /// row of user `examples[i].user`.
    pub ranks: Vec<usize>,
}

/// Ranks the target of every row of `examples` among all items under the
/// fixed `scores` (one per item index) and averages the metrics.
///
/// Ranking is over all items, history items included, with ties counted
/// against the target as [`target_rank`] does.
///
/// ```
/// use recmodel::data::SequenceExample;
/// use recmodel::popularity::evaluate_scores;
///
/// let scores = [3.0, 1.0, 2.0];
/// let examples = [
///     SequenceExample { user: 0, history: vec![1], target: 0 },
///     SequenceExample { user: 1, history: vec![0], target: 1 },
/// ];
/// let evaluation = evaluate_scores(&scores, &examples);
/// assert_eq!(evaluation.ranks, [1, 3]);
/// assert_eq!(evaluation.metrics.hit_10, 1.0);
/// ```
///
/// # Panics
/// Panics if a target is not below `scores.len()`.
pub fn evaluate_scores(scores: &[f32], examples: &[SequenceExample]) -> Evaluation {
    let ranks: Vec<usize> = examples.par_iter().map(|example| target_rank(scores, example.target as usize)).collect();
    let metrics = RankingMetrics::from_ranks(&ranks);
    tracing::debug!(users = metrics.users, hit_10 = metrics.hit_10, ndcg_10 = metrics.ndcg_10, "evaluated a fixed score vector");
    Evaluation { metrics, ranks }
}
