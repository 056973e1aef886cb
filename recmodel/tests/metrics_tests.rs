//! Ranks and ranking metrics against values computed by hand.

use recmodel::metrics::{hit_at_k, ndcg_at_k, target_rank, RankingMetrics};

#[test]
fn rank_with_ties() {
    let scores = [0.5, 0.9, 0.5, 0.1];
    // Item 0 ties with item 2 and is beaten by item 1: 1 + 2.
    assert_eq!(target_rank(&scores, 0), 3);
    assert_eq!(target_rank(&scores, 2), 3);
    assert_eq!(target_rank(&scores, 1), 1);
    assert_eq!(target_rank(&scores, 3), 4);
}

#[test]
fn rank_item_zero_first() {
    let scores = [2.0, 1.0, -1.0, 1.999];
    assert_eq!(target_rank(&scores, 0), 1);
}

#[test]
fn rank_constant_scores_last() {
    let scores = [0.0; 5];
    assert_eq!(target_rank(&scores, 0), 5);
    assert_eq!(target_rank(&scores, 4), 5);
}

#[test]
fn rank_single_item() {
    assert_eq!(target_rank(&[0.3], 0), 1);
}

#[test]
fn rank_nan_target_last() {
    let scores = [0.1, f32::NAN, 0.3];
    assert_eq!(target_rank(&scores, 1), 3);
}

#[test]
fn rank_ignores_nan_others() {
    let scores = [0.1, f32::NAN, 0.3, f32::NAN];
    assert_eq!(target_rank(&scores, 0), 2);
    assert_eq!(target_rank(&scores, 2), 1);
}

#[test]
fn rank_infinities() {
    let scores = [f32::NEG_INFINITY, f32::INFINITY, 0.0];
    assert_eq!(target_rank(&scores, 1), 1);
    assert_eq!(target_rank(&scores, 0), 3);
}

#[test]
#[should_panic(expected = "target 4 is out of range (4 scores)")]
fn rank_target_out_of_range() {
    target_rank(&[0.0; 4], 4);
}

#[test]
fn hit_by_hand() {
    assert_eq!(hit_at_k(1, 10), 1.0);
    assert_eq!(hit_at_k(10, 10), 1.0);
    assert_eq!(hit_at_k(11, 10), 0.0);
    assert_eq!(hit_at_k(50, 50), 1.0);
    assert_eq!(hit_at_k(51, 50), 0.0);
}

#[test]
fn ndcg_by_hand() {
    // 1 / log2(1 + 1) = 1; 1 / log2(3 + 1) = 1/2; 1 / log2(7 + 1) = 1/3.
    assert_eq!(ndcg_at_k(1, 10), 1.0);
    assert_eq!(ndcg_at_k(3, 10), 0.5);
    assert!((ndcg_at_k(7, 10) - 1.0 / 3.0).abs() < 1e-15);
    // 1 / log2(10 + 1) = 0.289064826...
    assert!((ndcg_at_k(10, 10) - 0.289_064_826_317_888).abs() < 1e-12);
    assert_eq!(ndcg_at_k(11, 10), 0.0);
    // 1 / log2(15 + 1) = 1/4, inside the top 50 but not the top 10.
    assert_eq!(ndcg_at_k(15, 50), 0.25);
    assert_eq!(ndcg_at_k(15, 10), 0.0);
}

#[test]
fn metrics_from_ranks() {
    // Ranks 1, 3, 15, 63, 100:
    // HIT@10 = 2/5, HIT@50 = 3/5;
    // NDCG@10 = (1 + 1/2) / 5 = 0.3;
    // NDCG@50 = (1 + 1/2 + 1/4) / 5 = 0.35 (1 / log2(64) = 1/6 is past 50).
    let metrics = RankingMetrics::from_ranks(&[1, 3, 15, 63, 100]);
    assert_eq!(metrics.users, 5);
    assert_eq!(metrics.hit_10, 0.4);
    assert_eq!(metrics.hit_50, 0.6);
    assert!((metrics.ndcg_10 - 0.3).abs() < 1e-15);
    assert!((metrics.ndcg_50 - 0.35).abs() < 1e-15);
}

#[test]
fn metrics_of_no_users() {
    let metrics = RankingMetrics::from_ranks(&[]);
    assert_eq!(metrics.users, 0);
    assert_eq!(metrics.hit_10, 0.0);
    assert_eq!(metrics.ndcg_50, 0.0);
}

#[test]
#[should_panic(expected = "ranks are 1-based")]
fn metrics_reject_rank_zero() {
    RankingMetrics::from_ranks(&[1, 0]);
}

#[test]
fn metrics_display() {
    let metrics = RankingMetrics { users: 3, hit_10: 0.1234, hit_50: 0.23454, ndcg_10: 0.05671, ndcg_50: 0.0789 };
    assert_eq!(metrics.to_string(), "HIT@10 0.1234  HIT@50 0.2345  NDCG@10 0.0567  NDCG@50 0.0789");
}

#[test]
fn metrics_json_keys() {
    let metrics = RankingMetrics { users: 3, hit_10: 0.5, hit_50: 0.75, ndcg_10: 0.25, ndcg_50: 0.125 };
    let json: serde_json::Value = serde_json::to_value(metrics).unwrap();
    assert_eq!(json["hit@10"], 0.5);
    assert_eq!(json["hit@50"], 0.75);
    assert_eq!(json["ndcg@10"], 0.25);
    assert_eq!(json["ndcg@50"], 0.125);
    assert_eq!(json["users"], 3);
    assert_eq!(json.as_object().unwrap().len(), 5);
}

#[test]
fn metrics_json_round_trip() {
    let metrics = RankingMetrics::from_ranks(&[2, 9, 40]);
    let text = serde_json::to_string(&metrics).unwrap();
    let back: RankingMetrics = serde_json::from_str(&text).unwrap();
    assert_eq!(back, metrics);
}
