//! Bad input to the CLI: a clear error naming the file, line and value,
//! a non-zero exit, and never a panic.

mod common;

use common::{mporec, s, scientific, scientific_features, stderr};
use std::fs;

fn assert_clean_failure(out: &std::process::Output, expected: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert!(!err.contains("panicked"), "panic instead of an error: {err}");
    for part in expected {
        assert!(err.contains(part), "stderr lacks {part:?}: {err}");
    }
}

/// Copies Scientific into a temporary folder, replacing line `line` (1-based)
/// of the training file with `text`.
fn corrupt_train_line(line: usize, text: &str) -> Option<tempfile::TempDir> {
    let dir = scientific()?;
    let tmp = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".inter") || name.ends_with("2index") {
            let mut content = fs::read_to_string(&path).unwrap();
            if name.ends_with(".train.inter") {
                let mut lines: Vec<String> = content.lines().map(String::from).collect();
                lines[line - 1] = text.to_string();
                content = lines.join("\n") + "\n";
            }
            fs::write(tmp.path().join(&name), content).unwrap();
        }
    }
    Some(tmp)
}

#[test]
fn train_rejects_bad_item_index() {
    let Some(bad) = corrupt_train_line(5, "0\t1 2 x7\t3") else { return };
    let feats = scientific_features(&scientific().unwrap());
    let out = mporec(&["train", "--data", s(bad.path()), "--features", s(&feats), "--epochs", "1", "--out", s(&bad.path().join("out"))]);
    assert_clean_failure(&out, &["Scientific.train.inter", "line 5", "x7"]);
}

#[test]
fn train_rejects_item_out_of_range() {
    let Some(bad) = corrupt_train_line(7, "0\t1 2 99999\t3") else { return };
    let feats = scientific_features(&scientific().unwrap());
    let out = mporec(&["train", "--data", s(bad.path()), "--features", s(&feats), "--epochs", "1", "--out", s(&bad.path().join("out"))]);
    assert_clean_failure(&out, &["Scientific.train.inter", "line 7", "99999"]);
}

#[test]
fn train_rejects_wrong_feature_size() {
    let Some(dir) = scientific() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let feats = tmp.path().join("short.f32");
    fs::write(&feats, vec![0u8; 4 * 4385 * 3 + 4]).unwrap();
    let out = mporec(&["train", "--data", s(&dir), "--features", s(&feats), "--epochs", "1", "--out", s(&tmp.path().join("out"))]);
    assert_clean_failure(&out, &["short.f32"]);
}

#[test]
fn train_rejects_missing_data() {
    let tmp = tempfile::tempdir().unwrap();
    let out = mporec(&["train", "--data", s(tmp.path()), "--features", s(&tmp.path().join("none.f32")), "--out", s(&tmp.path().join("out"))]);
    assert_clean_failure(&out, &[s(tmp.path())]);
}

#[test]
fn evaluate_rejects_corrupt_checkpoint() {
    let Some(dir) = scientific() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("bad.ckpt");
    fs::write(&ckpt, b"MPORECCK garbage").unwrap();
    let out = mporec(&["evaluate", "--checkpoint", s(&ckpt), "--data", s(&dir), "--features", s(&scientific_features(&dir))]);
    assert_clean_failure(&out, &["bad.ckpt"]);
}

#[test]
fn train_rejects_zero_batch_size() {
    let Some(dir) = scientific() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = mporec(&["train", "--data", s(&dir), "--features", s(&scientific_features(&dir)), "--batch-size", "0", "--out", s(&tmp.path().join("out"))]);
    assert_clean_failure(&out, &["--batch-size", "0"]);
}

#[test]
fn train_rejects_nan_learning_rate() {
    let Some(dir) = scientific() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = mporec(&["train", "--data", s(&dir), "--features", s(&scientific_features(&dir)), "--lr", "NaN", "--out", s(&tmp.path().join("out"))]);
    assert_clean_failure(&out, &["--lr", "NaN"]);
    assert!(!tmp.path().join("out").exists(), "a rejected run must not create its output folder");
}

#[test]
fn train_refuses_existing_run() {
    let Some(dir) = scientific() else { return };
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("metrics.jsonl"), "{}\n").unwrap();
    let out = mporec(&["train", "--data", s(&dir), "--features", s(&scientific_features(&dir)), "--out", s(tmp.path())]);
    assert_clean_failure(&out, &["metrics.jsonl", "already exists"]);
    assert_eq!(fs::read_to_string(tmp.path().join("metrics.jsonl")).unwrap(), "{}\n", "the old run must be left intact");
}

#[test]
fn train_rejects_header_only_test_split() {
    let Some(dir) = scientific() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".inter") || name.ends_with("2index") {
            fs::copy(&path, tmp.path().join(&name)).unwrap();
        }
    }
    fs::write(tmp.path().join("Scientific.test.inter"), "user_id:token\titem_id_list:token_seq\titem_id:token\n").unwrap();
    let out = mporec(&["popularity", "--data", s(tmp.path())]);
    assert_clean_failure(&out, &["Scientific.test.inter", "no rows"]);
}

#[test]
fn embed_rejects_unwritable_output_before_encoding() {
    let Some(model) = recmodel::shared::require_shared("models/all-MiniLM-L6-v2") else { return };
    let Some(dir) = scientific() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let folder = mporec(&["embed", "--model", s(&model), "--data", s(&dir), "--out", s(tmp.path())]);
    assert_clean_failure(&folder, &["is a folder", "--out"]);
    let missing = tmp.path().join("missing").join("x.f32");
    let out = mporec(&["embed", "--model", s(&model), "--data", s(&dir), "--out", s(&missing)]);
    assert_clean_failure(&out, &["does not exist"]);
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0, "nothing may be left behind");
}

#[test]
fn popularity_json_failure_prints_no_metrics() {
    let Some(dir) = scientific() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("missing").join("metrics.json");
    let out = mporec(&["popularity", "--data", s(&dir), "--json", s(&json)]);
    assert_clean_failure(&out, &["failed to write", "metrics.json"]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!printed.contains("HIT@10"), "metrics printed before the failure: {printed}");
}

/// Writes a three-item UniSRec dataset, small enough to embed in a second.
fn tiny_dataset(dir: &std::path::Path) {
    fs::write(dir.join("T.item2index"), "A0\t0\nA1\t1\nA2\t2\n").unwrap();
    fs::write(dir.join("T.text"), "item_id:token\ttext:token_seq\nA0\tGlue.\nA1\tTape.\nA2\tSaw.\n").unwrap();
}

#[test]
fn embed_keeps_inputs_and_special_files() {
    let Some(model) = recmodel::shared::require_shared("models/all-MiniLM-L6-v2") else { return };
    let tmp = tempfile::tempdir().unwrap();
    tiny_dataset(tmp.path());
    let text = tmp.path().join("T.text");
    let before = fs::read(&text).unwrap();

    let out = mporec(&["embed", "--model", s(&model), "--data", s(tmp.path()), "--out", s(&text)]);
    assert_clean_failure(&out, &["T.text", "input file of the dataset"]);
    assert_eq!(fs::read(&text).unwrap(), before, "the dataset's text file was changed");

    let config = model.join("config.json");
    let out = mporec(&["embed", "--model", s(&model), "--data", s(tmp.path()), "--out", s(&config)]);
    assert_clean_failure(&out, &["config.json", "model folder"]);

    let out = mporec(&["embed", "--model", s(&model), "--data", s(tmp.path()), "--out", "/dev/null"]);
    assert_clean_failure(&out, &["/dev/null", "not a regular file"]);

    let out = mporec(&["embed", "--model", s(&model), "--data", s(tmp.path()), "--word-drop", "-0.1"]);
    assert_clean_failure(&out, &["--word-drop", "-0.1"]);
}

#[test]
fn embed_writes_tiny_dataset_without_leftovers() {
    let Some(model) = recmodel::shared::require_shared("models/all-MiniLM-L6-v2") else { return };
    let tmp = tempfile::tempdir().unwrap();
    tiny_dataset(tmp.path());
    let features = tmp.path().join("T.f32");
    // A user's file with the old temporary name must survive.
    fs::write(tmp.path().join("T.f32.tmp"), "keep me").unwrap();
    let out = mporec(&["embed", "--model", s(&model), "--data", s(tmp.path()), "--out", s(&features)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::metadata(&features).unwrap().len(), 3 * 384 * 4);
    assert_eq!(fs::read_to_string(tmp.path().join("T.f32.tmp")).unwrap(), "keep me");
    let names: Vec<String> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 4, "unexpected files: {names:?}");
}

#[test]
fn decompose_rejects_bad_values() {
    let cases: [(&[&str], &[&str]); 8] = [
        (&["--cores", "18446744073709551615"], &["--cores", "from 1 to 32"]),
        (&["--cores", "100000000"], &["--cores", "from 1 to 32"]),
        (&["--cores", "1000000"], &["--cores", "from 1 to 32"]),
        (&["--rows", "18446744073709551615,2"], &["overflows", "dimension 300"]),
        (&["--cutoff", "-0.5"], &["--cutoff", "-0.5", "[0, 1]"]),
        (&["--rows", "-2,150"], &["--rows", "-2", "positive integer"]),
        (&["--seed", "-1"], &["--seed", "-1"]),
        (&["--max-bond", "0"], &["--max-bond", "at least 1"]),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["decompose", "--shape", "300x768"];
        args.extend(flags);
        let out = mporec(&args);
        assert_clean_failure(&out, expected);
        assert!(!stderr(&out).contains("unexpected argument"), "{flags:?}: {}", stderr(&out));
    }
    let out = mporec(&["decompose", "--shape", "-3x4"]);
    assert_clean_failure(&out, &["--shape", "invalid shape \"-3x4\""]);
}

#[test]
fn decompose_text_edge_cases() {
    let out = mporec(&["decompose", "--shape", "300x768", "--cores", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = common::stdout(&out);
    assert!(text.contains("discarded weight none (one core, no internal bond)"), "{text}");

    let out = mporec(&["decompose", "--shape", "300x768", "--max-bond", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = common::stdout(&out);
    assert!(text.contains("total params     66 (0.0286% of the dense 230400)"), "{text}");
    assert!(text.contains("sum of squared discarded singular values, internal bonds 1 to 4"), "{text}");
    assert!(text.contains("||W||_F^2 "), "{text}");
}
