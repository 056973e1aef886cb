//! `mporec train`, `evaluate` and `popularity` on the real Scientific data.

mod common;

use common::{mporec, s, scientific, scientific_features, stderr, stdout};

/// The metric line every command prints: RecBole's labels, four decimals.
fn assert_metric_line(line: &str) {
    let parts: Vec<&str> = line.split("  ").collect();
    assert_eq!(parts.len(), 4, "metric line {line:?}");
    for (part, label) in parts.iter().zip(["HIT@10", "HIT@50", "NDCG@10", "NDCG@50"]) {
        let (name, value) = part.split_once(' ').expect("label and value");
        assert_eq!(name, label, "metric line {line:?}");
        let v: f64 = value.parse().expect("a number");
        assert!((0.0..=1.0).contains(&v), "metric line {line:?}");
    }
}

#[test]
fn popularity_on_scientific() {
    let Some(dir) = scientific() else { return };
    let out = mporec(&["popularity", "--data", s(&dir)]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Figures checked by an independent count in Python over the same files.
    assert_eq!(stdout(&out).trim(), "HIT@10 0.0309  HIT@50 0.0919  NDCG@10 0.0171  NDCG@50 0.0298");
}

#[test]
fn train_then_evaluate_agree() {
    let Some(dir) = scientific() else { return };
    let feats = scientific_features(&dir);
    let out_dir = tempfile::tempdir().unwrap();
    let run = out_dir.path().join("run");
    let out = mporec(&[
        "--threads", "2", "train", "--data", s(&dir), "--features", s(&feats), "--epochs", "1", "--out", s(&run),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let last = printed.lines().last().expect("train prints the test metrics");
    assert_metric_line(last);

    // One epoch from UniSRec's initialisation already beats popularity
    // (test NDCG@10 0.0171) on Scientific.
    let test: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("test_metrics.json")).unwrap()).unwrap();
    assert!(test["ndcg@10"].as_f64().unwrap() > 0.0171, "{test}");
    assert_eq!(test["users"].as_u64(), Some(8442));
    assert_eq!(test["best_epoch"].as_u64(), Some(1));

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["epoch"].as_u64(), Some(1));
    assert!(lines[0]["loss"].as_f64().unwrap() > 0.0);
    assert!(lines[0]["seconds"].as_f64().unwrap() > 0.0);
    assert!(lines[0]["valid"]["ndcg@10"].as_f64().is_some());

    let ranks = out_dir.path().join("ranks.tsv");
    let ckpt = run.join("best.ckpt");
    let eval = mporec(&["evaluate", "--checkpoint", s(&ckpt), "--data", s(&dir), "--features", s(&feats), "--ranks", s(&ranks)]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    assert_eq!(stdout(&eval), printed.lines().last().unwrap().to_string() + "\n", "evaluate must print what train printed");

    let tsv = std::fs::read_to_string(&ranks).unwrap();
    let rows: Vec<&str> = tsv.lines().collect();
    assert_eq!(rows[0], "user_id\titem_id\trank");
    assert_eq!(rows.len(), 8442 + 1);
    for row in &rows[1..] {
        let rank: usize = row.split('\t').nth(2).unwrap().parse().unwrap();
        assert!((1..=4385).contains(&rank), "{row}");
    }
}

/// Copies Scientific with the first `users` rows of each split and all
/// items, so that the shared features still fit.
fn scientific_subset(dir: &std::path::Path, users: usize) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".inter") {
            let text = std::fs::read_to_string(&path).unwrap();
            let kept: Vec<&str> = text.lines().take(users + 1).collect();
            std::fs::write(tmp.path().join(&name), kept.join("\n") + "\n").unwrap();
        } else if name.ends_with("2index") {
            std::fs::copy(&path, tmp.path().join(&name)).unwrap();
        }
    }
    tmp
}

/// Reads the epoch reports without their timings, which differ between runs.
fn reports_without_timing(run: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
            let object = value.as_object_mut().unwrap();
            object.remove("seconds");
            object.remove("sequences_per_second");
            value
        })
        .collect()
}

#[test]
fn resumed_run_matches_uninterrupted_run() {
    let Some(dir) = scientific() else { return };
    let feats = scientific_features(&dir);
    let data = scientific_subset(&dir, 1500);
    let out_dir = tempfile::tempdir().unwrap();
    let train = |run: &std::path::Path, epochs: &str, extra: &[&str]| {
        let mut args = vec!["--threads", "2", "train", "--data", s(data.path()), "--features", s(&feats)];
        args.extend(["--batch-size", "256", "--epochs", epochs, "--out", s(run)]);
        args.extend(extra);
        let out = mporec(&args);
        assert!(out.status.success(), "{}", stderr(&out));
    };

    let whole = out_dir.path().join("whole");
    train(&whole, "3", &[]);

    // Stop after one epoch, then continue to three, as after a kill.
    let split = out_dir.path().join("split");
    train(&split, "1", &[]);
    std::fs::write(split.join("metrics.jsonl"), std::fs::read_to_string(split.join("metrics.jsonl")).unwrap() + "{\"cut\": true}\n").unwrap();
    train(&split, "3", &["--resume"]);

    assert_eq!(reports_without_timing(&split), reports_without_timing(&whole));
    assert_eq!(reports_without_timing(&whole).len(), 3);
    assert_eq!(std::fs::read(split.join("best.ckpt")).unwrap(), std::fs::read(whole.join("best.ckpt")).unwrap());
    assert_eq!(std::fs::read(split.join("test_metrics.json")).unwrap(), std::fs::read(whole.join("test_metrics.json")).unwrap());

    // A resume with other settings, or of a folder without a run, is refused.
    let out = mporec(&[
        "train", "--data", s(data.path()), "--features", s(&feats), "--batch-size", "256", "--lr", "0.01", "--out", s(&split), "--resume",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--lr is 0.01, but the run"), "{}", stderr(&out));
    let empty = out_dir.path().join("empty");
    let out = mporec(&["train", "--data", s(data.path()), "--features", s(&feats), "--out", s(&empty), "--resume"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nothing to resume"), "{}", stderr(&out));
    let out = mporec(&["train", "--data", s(data.path()), "--features", s(&feats), "--out", s(&split)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
}

#[test]
fn convert_movielens_and_office_logs() {
    let Some(ml) = recmodel::shared::require_shared("data/ml-100k/ml-100k.inter") else { return };
    let Some(office) = recmodel::shared::require_shared("data/office2014/Office.inter.json") else { return };
    let out_dir = tempfile::tempdir().unwrap();

    let ml_out = out_dir.path().join("ml");
    let out = mporec(&["convert", "--data", s(ml.parent().unwrap()), "--out", s(&ml_out)]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Every MovieLens user has at least 20 ratings: 100,000 - 3 * 943 training rows.
    assert_eq!(stdout(&out).trim(), "943 users, 1682 items, 100000 interactions, 97171 training rows (0 users with fewer than 3 interactions dropped)");
    let text = std::fs::read_to_string(ml_out.join("ml-100k.text")).unwrap();
    assert_eq!(text.lines().count(), 1 + 1682);
    assert!(text.contains("\tToy Story. 1995. Animation Children's Comedy."), "{}", &text[..200]);
    let popularity = mporec(&["popularity", "--data", s(&ml_out)]);
    assert!(popularity.status.success(), "{}", stderr(&popularity));
    assert_metric_line(stdout(&popularity).trim());

    let again = mporec(&["convert", "--data", s(ml.parent().unwrap()), "--out", s(&ml_out)]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));

    let office_out = out_dir.path().join("office");
    let out = mporec(&["convert", "--data", s(office.parent().unwrap()), "--out", s(&office_out), "--min-interactions", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("users,"), "{printed}");
    let users: usize = printed.split(' ').next().unwrap().parse().unwrap();
    assert!(users > 4000, "{printed}");
    assert!(users <= 4905, "{printed}");
}

#[test]
fn convert_rejects_bad_logs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("toy.inter"), "user:token\titem_id:token\n1\t2\n").unwrap();
    let out = mporec(&["convert", "--data", s(dir.path()), "--out", s(&dir.path().join("out"))]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("toy.inter line 1: the header has no user_id column"), "{}", stderr(&out));

    std::fs::write(dir.path().join("toy.inter"), "user_id:token\titem_id:token\ttimestamp:float\n1\t2\tsoon\n").unwrap();
    let out = mporec(&["convert", "--data", s(dir.path()), "--out", s(&dir.path().join("out"))]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("line 2, field timestamp: \"soon\" is not a finite number"), "{}", stderr(&out));
}
