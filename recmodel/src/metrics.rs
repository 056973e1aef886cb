//! Full-ranking metrics: the target's rank among all items, and HIT@K and
//! NDCG@K for K = 10 and 50.
//!
//! Ranks are 1-based. Ties count against the target, so a constant score
//! vector ranks every target last. `HIT@K` is 1 when the rank is at most K,
//! `NDCG@K` is `1 / log2(rank + 1)` when the rank is at most K (one relevant
//! item, so the ideal DCG is 1), and both are 0 otherwise.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Returns the 1-based rank of item `target` under `scores`: 1 plus the
/// number of other items whose score is greater than or equal to the
/// target's.
///
/// NaN ranks below every number and ties with NaN. So a NaN target score
/// gets the worst rank, `scores.len()`, and a NaN score of another item
/// never counts against a numeric target. A model that outputs NaN thus
/// scores 0, never better than it should.
///
/// ```
/// use recmodel::metrics::target_rank;
/// let scores = [0.5, 0.9, 0.5, 0.1];
/// assert_eq!(target_rank(&scores, 1), 1);
/// assert_eq!(target_rank(&scores, 0), 3); // item 1 and the tied item 2
/// assert_eq!(target_rank(&scores, 3), 4);
/// ```
///
/// # Panics
/// Panics if `target >= scores.len()`.
#[track_caller]
pub fn target_rank(scores: &[f32], target: usize) -> usize {
    assert!(target < scores.len(), "target_rank: target {target} is out of range ({} scores)", scores.len());
    let target_score = scores[target];
    if target_score.is_nan() {
        return scores.len();
    }
    let at_least = scores.iter().filter(|&&s| s >= target_score).count();
    // `at_least` includes the target itself.
    at_least
}

/// Returns HIT@K of one rank: 1 if `rank <= k`, else 0.
pub fn hit_at_k(rank: usize, k: usize) -> f64 {
    if rank <= k {
        1.0
    } else {
        0.0
    }
}

/// Returns NDCG@K of one rank: `1 / log2(rank + 1)` if `rank <= k`, else 0.
pub fn ndcg_at_k(rank: usize, k: usize) -> f64 {
    if rank <= k {
        1.0 / ((rank + 1) as f64).log2()
    } else {
        0.0
    }
}

/// HIT@K and NDCG@K for K = 10 and 50, averaged over users.
///
/// Serializes with the lower-case JSON keys `"hit@10"`, `"hit@50"`,
/// `"ndcg@10"`, `"ndcg@50"` and `"users"`, and displays with RecBole's
/// labels:
///
/// ```
/// use recmodel::metrics::RankingMetrics;
/// let metrics = RankingMetrics::from_ranks(&[1, 3, 20, 100]);
/// assert_eq!(metrics.users, 4);
/// assert_eq!(metrics.hit_10, 0.5);
/// assert_eq!(metrics.to_string(), "HIT@10 0.5000  HIT@50 0.7500  NDCG@10 0.3750  NDCG@50 0.4319");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankingMetrics {
    /// Number of users (ranks) averaged over.
    pub users: usize,
    /// Fraction of users whose target ranks in the top 10.
    #[serde(rename = "hit@10")]
    pub hit_10: f64,
    /// Fraction of users whose target ranks in the top 50.
    #[serde(rename = "hit@50")]
    pub hit_50: f64,
    /// Mean NDCG@10.
    #[serde(rename = "ndcg@10")]
    pub ndcg_10: f64,
    /// Mean NDCG@50.
    #[serde(rename = "ndcg@50")]
    pub ndcg_50: f64,
}

impl RankingMetrics {
    /// Averages the metrics of 1-based `ranks`, one per user. An empty slice
    /// gives `users: 0` and every metric 0.
    ///
    /// # Panics
    /// Panics if a rank is 0.
    #[track_caller]
    pub fn from_ranks(ranks: &[usize]) -> Self {
        assert!(ranks.iter().all(|&r| r >= 1), "RankingMetrics::from_ranks: ranks are 1-based, found 0");
        let users = ranks.len();
        if users == 0 {
            return RankingMetrics { users, hit_10: 0.0, hit_50: 0.0, ndcg_10: 0.0, ndcg_50: 0.0 };
        }
        let mean = |metric: fn(usize, usize) -> f64, k: usize| ranks.iter().map(|&r| metric(r, k)).sum::<f64>() / users as f64;
        RankingMetrics {
            users,
            hit_10: mean(hit_at_k, 10),
            hit_50: mean(hit_at_k, 50),
            ndcg_10: mean(ndcg_at_k, 10),
            ndcg_50: mean(ndcg_at_k, 50),
        }
    }
}

impl fmt::Display for RankingMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HIT@10 {:.4}  HIT@50 {:.4}  NDCG@10 {:.4}  NDCG@50 {:.4}",
            self.hit_10, self.hit_50, self.ndcg_10, self.ndcg_50
        )
    }
}
