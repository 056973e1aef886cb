//! The popularity baseline on a hand-made dataset and on Scientific.

use recmodel::data::{load_unisrec, Dataset, SequenceExample};
use recmodel::metrics::RankingMetrics;
use recmodel::popularity::{evaluate_scores, popularity_scores};
use recmodel::shared::require_shared;

fn row(user: u32, history: &[u32], target: u32) -> SequenceExample {
    SequenceExample { user, history: history.to_vec(), target }
}

/// Two users over five items. User 0's sequence is 0 1 2 | 3 | 4, user
/// 1's is 2 2 | 0 | 1 (training part | validation | test).
fn toy() -> Dataset {
    Dataset {
        name: "Toy".into(),
        num_items: 5,
        num_users: 2,
        item_ids: (0..5).map(|i| format!("item{i}")).collect(),
        user_ids: vec!["u0".into(), "u1".into()],
        train: vec![row(0, &[0], 1), row(0, &[0, 1], 2), row(1, &[2], 2)],
        valid: vec![row(0, &[0, 1, 2], 3), row(1, &[2, 2], 0)],
        test: vec![row(0, &[0, 1, 2, 3], 4), row(1, &[2, 2, 0], 1)],
    }
}

#[test]
fn scores_count_training_sequences() {
    let scores = popularity_scores(&toy());
    // Item 2 occurs once for user 0 and twice for user 1. Counting the
    // training prefixes instead would give item 0 a count of 2.
    assert_eq!(scores, [1.0, 1.0, 3.0, 0.0, 0.0]);
}

#[test]
fn scores_skip_eval_targets() {
    let scores = popularity_scores(&toy());
    // Item 3 is only a validation target and item 4 only a test target.
    assert_eq!(scores[3], 0.0);
    assert_eq!(scores[4], 0.0);
}

#[test]
fn toy_test_ranks() {
    let dataset = toy();
    let evaluation = evaluate_scores(&popularity_scores(&dataset), &dataset.test);
    // Scores [1, 1, 3, 0, 0]. Target 4 ties with item 3 and is beaten by
    // the other three: rank 5. Target 1 is beaten by item 2 and ties with
    // item 0: rank 3.
    assert_eq!(evaluation.ranks, [5, 3]);
    assert_eq!(evaluation.metrics, RankingMetrics::from_ranks(&[5, 3]));
}

#[test]
fn toy_test_metrics() {
    let dataset = toy();
    let metrics = evaluate_scores(&popularity_scores(&dataset), &dataset.test).metrics;
    // NDCG of ranks 5 and 3: 1 / log2(6) = 0.386853 and 1 / log2(4) = 0.5.
    let expected_ndcg = (1.0 / 6f64.log2() + 0.5) / 2.0;
    assert_eq!(metrics.users, 2);
    assert_eq!(metrics.hit_10, 1.0);
    assert_eq!(metrics.hit_50, 1.0);
    assert!((metrics.ndcg_10 - expected_ndcg).abs() < 1e-12);
    assert!((metrics.ndcg_50 - expected_ndcg).abs() < 1e-12);
}

#[test]
fn evaluate_empty_split() {
    let evaluation = evaluate_scores(&[1.0, 2.0], &[]);
    assert!(evaluation.ranks.is_empty());
    assert_eq!(evaluation.metrics.users, 0);
}

#[test]
fn item_zero_ranked_first() {
    let examples = [row(0, &[1, 2], 0)];
    let evaluation = evaluate_scores(&[5.0, 1.0, 4.0], &examples);
    assert_eq!(evaluation.ranks, [1]);
    assert_eq!(evaluation.metrics.ndcg_10, 1.0);
}

#[test]
fn scientific_popularity() {
    let Some(train) = require_shared("data/scientific/Scientific.train.inter") else { return };
    let dataset = load_unisrec(train.parent().unwrap()).unwrap();
    let scores = popularity_scores(&dataset);
    let total: usize = dataset.valid.iter().map(|e| e.history.len()).sum();
    assert_eq!(scores.len(), 4385);
    assert_eq!(scores.iter().sum::<f32>() as usize, total);

    // Expected values were computed separately in Python from the same
    // files: counts over the validation histories, and rank = the number of
    // items scoring >= the target, the target included.
    let test = evaluate_scores(&scores, &dataset.test);
    assert_eq!(test.ranks.len(), 8442);
    assert_eq!(test.metrics.to_string(), "HIT@10 0.0309  HIT@50 0.0919  NDCG@10 0.0171  NDCG@50 0.0298");

    let valid = evaluate_scores(&scores, &dataset.valid);
    assert_eq!(valid.metrics.to_string(), "HIT@10 0.0378  HIT@50 0.1007  NDCG@10 0.0206  NDCG@50 0.0340");
}
