//! Loaders on the shared Scientific files and on malformed files, and the
//! invariants of batching.

use std::path::Path;

use rand_chacha::ChaCha12Rng;
use rand::SeedableRng;
use recmodel::data::{
    load_features, load_features_with_dim, load_item_text, load_unisrec, make_batches, make_batches_in_order, padded_positions, Batch,
    Batching, DataError, Dataset, SequenceExample, Split,
};
use recmodel::shared::require_shared;

fn scientific_dir() -> Option<std::path::PathBuf> {
    let train = require_shared("data/scientific/Scientific.train.inter")?;
    Some(train.parent().expect("a file path has a parent").to_path_buf())
}

// ---------------------------------------------------------------------------
// The real Scientific files. Expected counts come from the data's README,
// which recomputed them from the files.

#[test]
fn scientific_counts() {
    let Some(dir) = scientific_dir() else { return };
    let dataset = load_unisrec(&dir).unwrap();
    assert_eq!(dataset.name, "Scientific");
    assert_eq!(dataset.num_users, 8442);
    assert_eq!(dataset.num_items, 4385);
    assert_eq!(dataset.user_ids.len(), 8442);
    assert_eq!(dataset.item_ids.len(), 4385);
    assert_eq!(dataset.train.len(), 34101);
    assert_eq!(dataset.valid.len(), 8442);
    assert_eq!(dataset.test.len(), 8442);
}

#[test]
fn scientific_first_rows() {
    let Some(dir) = scientific_dir() else { return };
    let dataset = load_unisrec(&dir).unwrap();
    // The first lines of the files, read with `head`.
    assert_eq!(dataset.item_ids[0], "B00TNNWMXI");
    assert_eq!(dataset.user_ids[0], "ABW8NXS7SV55K");
    assert_eq!(dataset.train[0], SequenceExample { user: 0, history: (0..=10).collect(), target: 11 });
    assert_eq!(dataset.valid[0], SequenceExample { user: 0, history: (0..=11).collect(), target: 12 });
    assert_eq!(dataset.test[0], SequenceExample { user: 0, history: (0..=12).collect(), target: 13 });
}

#[test]
fn scientific_keeps_item_zero() {
    let Some(dir) = scientific_dir() else { return };
    let dataset = load_unisrec(&dir).unwrap();
    // Found with awk: user 83's training row "589 49 590 -> 0" and user
    // 4691's test row "2259 2005 49 77 -> 0".
    let in_history = dataset.train.iter().any(|e| e.history.contains(&0));
    let train_target = dataset.train.iter().any(|e| e.user == 83 && e.target == 0 && e.history == [589, 49, 590]);
    let test_target = dataset.test.iter().any(|e| e.user == 4691 && e.target == 0);
    assert!(in_history);
    assert!(train_target);
    assert!(test_target);
}

#[test]
fn scientific_splits_are_leave_one_out() {
    let Some(dir) = scientific_dir() else { return };
    let dataset = load_unisrec(&dir).unwrap();
    let mut checked = 0;
    for (valid, test) in dataset.valid.iter().zip(&dataset.test) {
        assert_eq!(valid.user, test.user);
        // Histories are cut to their last 50 items, so only shorter ones
        // extend exactly.
        if valid.history.len() < 50 {
            let mut expected = valid.history.clone();
            expected.push(valid.target);
            assert_eq!(test.history, expected, "user {}", valid.user);
            checked += 1;
        }
    }
    assert!(checked > 8000);
}

#[test]
fn scientific_split_accessor() {
    let Some(dir) = scientific_dir() else { return };
    let dataset = load_unisrec(&dir).unwrap();
    assert_eq!(dataset.split(Split::Train).len(), 34101);
    assert_eq!(dataset.split(Split::Valid)[0], dataset.valid[0]);
    assert_eq!(dataset.split(Split::Test)[0], dataset.test[0]);
}

#[test]
fn scientific_features() {
    let Some(dir) = scientific_dir() else { return };
    let features = load_features(&dir.join("Scientific.minilm-l6.f32"), 4385).unwrap();
    assert_eq!(features.shape(), &[4385, 384]);
    // The reference embeddings are L2-normalised.
    for row in [0, 1, 4384] {
        let norm: f32 = features.row(row).iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "row {row} has norm {norm}");
    }
    let explicit = load_features_with_dim(&dir.join("Scientific.minilm-l6.f32"), 4385, 384).unwrap();
    assert_eq!(explicit, features);
}

#[test]
fn scientific_features_wrong_item_count() {
    let Some(dir) = scientific_dir() else { return };
    let message = load_features(&dir.join("Scientific.minilm-l6.f32"), 4386).unwrap_err().to_string();
    assert!(message.contains("Scientific.minilm-l6.f32"), "{message}");
    assert!(message.contains("6735360 bytes"), "{message}");
    assert!(message.contains("4386 items"), "{message}");
}

#[test]
fn scientific_item_text() {
    let Some(dir) = scientific_dir() else { return };
    let dataset = load_unisrec(&dir).unwrap();
    let texts = load_item_text(&dir.join("Scientific.text"), &dataset).unwrap();
    assert_eq!(texts.len(), 4385);
    assert!(texts.iter().all(|t| !t.is_empty()));
    // The text file's first line, which is not item 0.
    let porter = dataset.item_ids.iter().position(|id| id == "B0000223SI").unwrap();
    assert!(texts[porter].starts_with("PORTER-CABLE 740000801"), "{}", texts[porter]);
}

// ---------------------------------------------------------------------------
// Malformed files, written to a temporary folder. The base dataset "Tiny"
// has 3 items and 2 users.

const HEADER: &str = "user_id:token\titem_id_list:token_seq\titem_id:token\n";

struct Tiny {
    dir: tempfile::TempDir,
}

impl Tiny {
    fn new() -> Tiny {
        let tiny = Tiny { dir: tempfile::tempdir().unwrap() };
        tiny.write("Tiny.item2index", "A\t0\nB\t1\nC\t2\n");
        tiny.write("Tiny.user2index", "U\t0\nV\t1\n");
        tiny.write("Tiny.train.inter", &format!("{HEADER}0\t0\t1\n1\t2\t0\n"));
        tiny.write("Tiny.valid.inter", &format!("{HEADER}0\t0 1\t2\n1\t2 0\t1\n"));
        tiny.write("Tiny.test.inter", &format!("{HEADER}0\t0 1 2\t0\n1\t2 0 1\t2\n"));
        tiny.write("Tiny.text", "item_id:token\ttext:token_seq\nC\tthird\nA\tfirst\nB\tsecond\n");
        tiny
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, content: &str) {
        std::fs::write(self.path(name), content).unwrap();
    }

    fn load(&self) -> Result<Dataset, DataError> {
        load_unisrec(self.dir.path())
    }

    fn load_error(&self) -> String {
        self.load().unwrap_err().to_string()
    }
}

#[test]
fn tiny_loads() {
    let tiny = Tiny::new();
    let dataset = tiny.load().unwrap();
    assert_eq!(dataset.name, "Tiny");
    assert_eq!(dataset.item_ids, ["A", "B", "C"]);
    assert_eq!(dataset.user_ids, ["U", "V"]);
    assert_eq!(dataset.train[1], SequenceExample { user: 1, history: vec![2], target: 0 });
    assert_eq!(dataset.test[1], SequenceExample { user: 1, history: vec![2, 0, 1], target: 2 });
}

#[test]
fn index_map_in_any_order() {
    let tiny = Tiny::new();
    tiny.write("Tiny.item2index", "C\t2\nA\t0\nB\t1\n");
    let dataset = tiny.load().unwrap();
    assert_eq!(dataset.item_ids, ["A", "B", "C"]);
}

#[test]
fn item_text_by_index() {
    let tiny = Tiny::new();
    let dataset = tiny.load().unwrap();
    let texts = load_item_text(&tiny.path("Tiny.text"), &dataset).unwrap();
    assert_eq!(texts, ["first", "second", "third"]);
}

#[test]
fn not_an_item_index() {
    let tiny = Tiny::new();
    tiny.write("Tiny.train.inter", &format!("{HEADER}0\t0\t1\n1\t2 12x\t0\n"));
    let message = tiny.load_error();
    assert!(message.contains("Tiny.train.inter line 3, field item_id_list: \"12x\" is not an item index"), "{message}");
}

#[test]
fn negative_target() {
    let tiny = Tiny::new();
    tiny.write("Tiny.valid.inter", &format!("{HEADER}0\t0 1\t-1\n"));
    let message = tiny.load_error();
    assert!(message.contains("Tiny.valid.inter line 2, field item_id: \"-1\" is not an item index"), "{message}");
}

#[test]
fn item_out_of_range() {
    let tiny = Tiny::new();
    tiny.write("Tiny.test.inter", &format!("{HEADER}0\t0 1 2\t0\n1\t2 0 1\t5000\n"));
    let message = tiny.load_error();
    assert!(message.contains("Tiny.test.inter line 3, field item_id: item 5000 is out of range (3 items)"), "{message}");
}

#[test]
fn history_item_out_of_range() {
    let tiny = Tiny::new();
    tiny.write("Tiny.train.inter", &format!("{HEADER}0\t0 3\t1\n"));
    let message = tiny.load_error();
    assert!(message.contains("Tiny.train.inter line 2, field item_id_list: item 3 is out of range (3 items)"), "{message}");
}

#[test]
fn user_out_of_range() {
    let tiny = Tiny::new();
    tiny.write("Tiny.train.inter", &format!("{HEADER}2\t0\t1\n"));
    let message = tiny.load_error();
    assert!(message.contains("Tiny.train.inter line 2, field user_id: user 2 is out of range (2 users)"), "{message}");
}

#[test]
fn wrong_column_count() {
    let tiny = Tiny::new();
    tiny.write("Tiny.train.inter", &format!("{HEADER}0\t0\t1\n1\t2\n"));
    let message = tiny.load_error();
    assert!(message.contains("Tiny.train.inter line 3"), "{message}");
    assert!(message.contains("expected 3 tab-separated fields"), "{message}");
    assert!(message.contains("found 2 in \"1\\t2\""), "{message}");
}

#[test]
fn blank_line_rejected() {
    let tiny = Tiny::new();
    tiny.write("Tiny.train.inter", &format!("{HEADER}0\t0\t1\n\n1\t2\t0\n"));
    let message = tiny.load_error();
    assert!(message.contains("Tiny.train.inter line 3"), "{message}");
    assert!(message.contains("found 1 in \"\""), "{message}");
}

#[test]
fn missing_header() {
    let tiny = Tiny::new();
    tiny.write("Tiny.train.inter", "0\t0\t1\n1\t2\t0\n");
    let message = tiny.load_error();
    assert!(message.contains("Tiny.train.inter line 1: expected the header"), "{message}");
    assert!(message.contains("found \"0\\t0\\t1\""), "{message}");
}

#[test]
fn empty_inter_file() {
    let tiny = Tiny::new();
    tiny.write("Tiny.valid.inter", "");
    let message = tiny.load_error();
    assert!(message.contains("Tiny.valid.inter: the file is empty"), "{message}");
}

#[test]
fn empty_history() {
    let tiny = Tiny::new();
    tiny.write("Tiny.train.inter", &format!("{HEADER}0\t0\t1\n1\t \t0\n"));
    let message = tiny.load_error();
    assert!(message.contains("Tiny.train.inter line 3, field item_id_list: the history is empty"), "{message}");
}

#[test]
fn duplicate_item_id() {
    let tiny = Tiny::new();
    tiny.write("Tiny.item2index", "A\t0\nB\t1\nA\t2\n");
    let message = tiny.load_error();
    assert!(message.contains("Tiny.item2index line 3, field item_id: duplicate id \"A\" (first on line 1)"), "{message}");
}

#[test]
fn duplicate_index() {
    let tiny = Tiny::new();
    tiny.write("Tiny.item2index", "A\t0\nB\t1\nC\t1\n");
    let message = tiny.load_error();
    assert!(message.contains("Tiny.item2index line 3, field index: index 1 is already taken by \"B\" on line 2"), "{message}");
}

#[test]
fn index_map_gap() {
    let tiny = Tiny::new();
    tiny.write("Tiny.user2index", "U\t0\nV\t2\n");
    let message = tiny.load_error();
    assert!(message.contains("Tiny.user2index line 2, field index: user 2 is out of range (2 users)"), "{message}");
}

#[test]
fn index_map_bad_index() {
    let tiny = Tiny::new();
    tiny.write("Tiny.item2index", "A\t0\nB\tone\nC\t2\n");
    let message = tiny.load_error();
    assert!(message.contains("Tiny.item2index line 2, field index: \"one\" is not an item index"), "{message}");
}

#[test]
fn index_map_empty_id() {
    let tiny = Tiny::new();
    tiny.write("Tiny.user2index", "U\t0\n\t1\n");
    let message = tiny.load_error();
    assert!(message.contains("Tiny.user2index line 2, field user_id: the value is empty"), "{message}");
}

#[test]
fn index_map_empty() {
    let tiny = Tiny::new();
    tiny.write("Tiny.item2index", "");
    let message = tiny.load_error();
    assert!(message.contains("Tiny.item2index: the file is empty"), "{message}");
}

#[test]
fn missing_file() {
    let tiny = Tiny::new();
    std::fs::remove_file(tiny.path("Tiny.test.inter")).unwrap();
    let error = tiny.load().unwrap_err();
    assert!(matches!(error, DataError::Io { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("failed to read"), "{message}");
    assert!(message.contains("Tiny.test.inter"), "{message}");
}

#[test]
fn invalid_utf8_line() {
    let tiny = Tiny::new();
    let mut bytes = format!("{HEADER}0\t0\t1\n").into_bytes();
    bytes.extend_from_slice(b"1\t2\t\xff\n");
    std::fs::write(tiny.path("Tiny.train.inter"), bytes).unwrap();
    let message = tiny.load_error();
    assert!(message.contains("Tiny.train.inter line 3: not valid UTF-8"), "{message}");
}

#[test]
fn crlf_line_endings() {
    let tiny = Tiny::new();
    tiny.write("Tiny.train.inter", &format!("{}0\t0\t1\r\n", HEADER.replace('\n', "\r\n")));
    let dataset = tiny.load().unwrap();
    assert_eq!(dataset.train, [SequenceExample { user: 0, history: vec![0], target: 1 }]);
}

#[test]
fn no_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let message = load_unisrec(dir.path()).unwrap_err().to_string();
    assert!(message.contains("no *.train.inter file in"), "{message}");
}

#[test]
fn several_datasets() {
    let tiny = Tiny::new();
    tiny.write("Other.train.inter", HEADER);
    let message = tiny.load_error();
    assert!(message.contains("several datasets (Other, Tiny)"), "{message}");
}

#[test]
fn missing_folder() {
    let message = load_unisrec(Path::new("/nonexistent/mporec-data")).unwrap_err().to_string();
    assert!(message.contains("failed to read /nonexistent/mporec-data"), "{message}");
}

#[test]
fn text_unknown_id() {
    let tiny = Tiny::new();
    let dataset = tiny.load().unwrap();
    tiny.write("Tiny.text", "item_id:token\ttext:token_seq\nA\tfirst\nZ\tlast\n");
    let message = load_item_text(&tiny.path("Tiny.text"), &dataset).unwrap_err().to_string();
    assert!(message.contains("Tiny.text line 3, field item_id: \"Z\" is not in item2index"), "{message}");
}

#[test]
fn text_missing_item() {
    let tiny = Tiny::new();
    let dataset = tiny.load().unwrap();
    tiny.write("Tiny.text", "item_id:token\ttext:token_seq\nA\tfirst\nC\tthird\n");
    let message = load_item_text(&tiny.path("Tiny.text"), &dataset).unwrap_err().to_string();
    assert!(message.contains("Tiny.text: no text for item 1 (\"B\")"), "{message}");
}

#[test]
fn text_duplicate_item() {
    let tiny = Tiny::new();
    let dataset = tiny.load().unwrap();
    tiny.write("Tiny.text", "item_id:token\ttext:token_seq\nA\tfirst\nB\tsecond\nA\tagain\n");
    let message = load_item_text(&tiny.path("Tiny.text"), &dataset).unwrap_err().to_string();
    assert!(message.contains("Tiny.text line 4, field item_id: duplicate id \"A\" (first on line 2)"), "{message}");
}

#[test]
fn text_missing_header() {
    let tiny = Tiny::new();
    let dataset = tiny.load().unwrap();
    tiny.write("Tiny.text", "A\tfirst\nB\tsecond\nC\tthird\n");
    let message = load_item_text(&tiny.path("Tiny.text"), &dataset).unwrap_err().to_string();
    assert!(message.contains("Tiny.text line 1: expected the header \"item_id:token\\ttext:token_seq\""), "{message}");
}

// ---------------------------------------------------------------------------
// Feature files.

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn features_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.f32");
    write_f32(&path, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let features = load_features(&path, 3).unwrap();
    assert_eq!(features.shape(), &[3, 2]);
    assert_eq!(features.row(0), &[1.0, 2.0]);
    assert_eq!(features.row(2), &[5.0, 6.0]);
}

#[test]
fn features_not_divisible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.f32");
    write_f32(&path, &[1.0; 7]);
    let message = load_features(&path, 3).unwrap_err().to_string();
    assert!(message.contains("tiny.f32: 28 bytes is not a multiple of 12 bytes for 3 items"), "{message}");
}

#[test]
fn features_odd_byte_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.f32");
    std::fs::write(&path, [0u8; 13]).unwrap();
    let message = load_features(&path, 3).unwrap_err().to_string();
    assert!(message.contains("13 bytes is not a multiple of 12 bytes"), "{message}");
}

#[test]
fn features_smaller_than_one_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.f32");
    write_f32(&path, &[1.0, 2.0]);
    let message = load_features(&path, 3).unwrap_err().to_string();
    assert!(message.contains("8 bytes is not a multiple of 12 bytes"), "{message}");
}

#[test]
fn features_wrong_dim() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.f32");
    write_f32(&path, &[1.0; 6]);
    let message = load_features_with_dim(&path, 3, 4).unwrap_err().to_string();
    assert!(message.contains("24 bytes is not 48 bytes (dimension 4)"), "{message}");
}

#[test]
fn features_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.f32");
    std::fs::write(&path, b"").unwrap();
    let message = load_features(&path, 3).unwrap_err().to_string();
    assert!(message.contains("tiny.f32: the file is empty"), "{message}");
}

#[test]
fn features_zero_items() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.f32");
    write_f32(&path, &[1.0; 6]);
    let message = load_features(&path, 0).unwrap_err().to_string();
    assert!(message.contains("cannot read features for 0 items"), "{message}");
}

#[test]
fn features_non_finite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.f32");
    write_f32(&path, &[1.0, 2.0, 3.0, 4.0, 5.0, f32::NAN]);
    let message = load_features(&path, 2).unwrap_err().to_string();
    assert!(message.contains("tiny.f32 row 1, column 2: NaN is not finite"), "{message}");

    write_f32(&path, &[1.0, f32::INFINITY, 3.0, 4.0]);
    let message = load_features(&path, 2).unwrap_err().to_string();
    assert!(message.contains("tiny.f32 row 0, column 1: inf is not finite"), "{message}");
}

#[test]
fn features_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let message = load_features(&dir.path().join("absent.f32"), 3).unwrap_err().to_string();
    assert!(message.contains("failed to read"), "{message}");
    assert!(message.contains("absent.f32"), "{message}");
}

// ---------------------------------------------------------------------------
// Batching.

/// 23 rows with lengths 1..=7 in a fixed irregular pattern, item values
/// including 0.
fn synthetic_examples() -> Vec<SequenceExample> {
    (0..23u32)
        .map(|n| {
            let len = (n * 5 % 7 + 1) as usize;
            SequenceExample { user: n, history: (0..len as u32).map(|i| (n + i) % 4).collect(), target: n % 3 }
        })
        .collect()
}

/// Checks that `batches` hold every row of `examples` exactly once, with
/// correct padding, and returns the row order.
fn check_batches(examples: &[SequenceExample], batches: &[Batch], batch_size: usize) -> Vec<usize> {
    let mut seen = vec![0usize; examples.len()];
    let mut order = Vec::new();
    for batch in batches {
        assert!(!batch.is_empty());
        assert!(batch.len() <= batch_size);
        assert_eq!(batch.lengths.len(), batch.len());
        assert_eq!(batch.targets.len(), batch.len());
        assert_eq!(batch.items.len(), batch.len() * batch.max_len);
        assert_eq!(batch.max_len, *batch.lengths.iter().max().unwrap());
        for (i, &row) in batch.rows.iter().enumerate() {
            seen[row] += 1;
            order.push(row);
            let example = &examples[row];
            assert_eq!(batch.lengths[i], example.history.len());
            assert_eq!(batch.history(i), example.history.as_slice());
            assert_eq!(batch.targets[i], example.target);
            let padding = &batch.items[i * batch.max_len + batch.lengths[i]..(i + 1) * batch.max_len];
            assert!(padding.iter().all(|&x| x == 0), "row {row} padding {padding:?}");
        }
    }
    assert!(seen.iter().all(|&count| count == 1), "row counts {seen:?}");
    order
}

#[test]
fn random_batches_cover_rows() {
    let examples = synthetic_examples();
    let batches = make_batches(&examples, 5, Batching::Random, &mut ChaCha12Rng::seed_from_u64(3));
    check_batches(&examples, &batches, 5);
    assert_eq!(batches.len(), 5);
    // Only the last batch may be short.
    assert!(batches[..4].iter().all(|b| b.len() == 5));
    assert_eq!(batches[4].len(), 3);
}

#[test]
fn bucketed_batches_cover_rows() {
    let examples = synthetic_examples();
    let batches = make_batches(&examples, 5, Batching::Bucketed, &mut ChaCha12Rng::seed_from_u64(3));
    check_batches(&examples, &batches, 5);
    assert_eq!(batches.len(), 5);
}

#[test]
fn bucketed_lengths_do_not_overlap() {
    let examples = synthetic_examples();
    let mut batches = make_batches(&examples, 5, Batching::Bucketed, &mut ChaCha12Rng::seed_from_u64(3));
    batches.sort_by_key(|b| (b.max_len, *b.lengths.iter().min().unwrap()));
    for pair in batches.windows(2) {
        let min_next = *pair[1].lengths.iter().min().unwrap();
        assert!(pair[0].max_len <= min_next, "{:?} then {:?}", pair[0].lengths, pair[1].lengths);
    }
}

#[test]
fn batches_deterministic_per_seed() {
    let examples = synthetic_examples();
    for mode in [Batching::Random, Batching::Bucketed] {
        let first = make_batches(&examples, 4, mode, &mut ChaCha12Rng::seed_from_u64(11));
        let second = make_batches(&examples, 4, mode, &mut ChaCha12Rng::seed_from_u64(11));
        let other = make_batches(&examples, 4, mode, &mut ChaCha12Rng::seed_from_u64(12));
        assert_eq!(first, second, "{mode}");
        assert_ne!(first, other, "{mode}");
    }
}

#[test]
fn batches_in_order() {
    let examples = synthetic_examples();
    let batches = make_batches_in_order(&examples, 10);
    let order = check_batches(&examples, &batches, 10);
    assert_eq!(order, (0..23).collect::<Vec<_>>());
    assert_eq!(batches.len(), 3);
}

#[test]
fn batches_of_nothing() {
    let batches = make_batches(&[], 4, Batching::Bucketed, &mut ChaCha12Rng::seed_from_u64(0));
    assert!(batches.is_empty());
    assert_eq!(padded_positions(&batches), 0);
}

#[test]
fn padded_positions_by_hand() {
    let examples = vec![
        SequenceExample { user: 0, history: vec![0], target: 1 },
        SequenceExample { user: 1, history: vec![0, 1, 2], target: 3 },
        SequenceExample { user: 2, history: vec![0, 0], target: 1 },
    ];
    let batches = make_batches_in_order(&examples, 2);
    // [len 1, len 3] pads to 2 x 3, [len 2] to 1 x 2.
    assert_eq!(padded_positions(&batches), 8);
    assert_eq!(batches[0].items, [0, 0, 0, 0, 1, 2]);
    assert_eq!(batches[0].lengths, [1, 3]);
}

#[test]
fn batching_names() {
    assert_eq!("bucketed".parse::<Batching>().unwrap(), Batching::Bucketed);
    assert_eq!("random".parse::<Batching>().unwrap(), Batching::Random);
    assert_eq!(Batching::Random.to_string(), "random");
    let message = "sorted".parse::<Batching>().unwrap_err().to_string();
    assert_eq!(message, "invalid batching \"sorted\": expected bucketed or random");
}

#[test]
fn scientific_bucketed_padding() {
    let Some(dir) = scientific_dir() else { return };
    let dataset = load_unisrec(&dir).unwrap();
    let real: usize = dataset.train.iter().map(|e| e.history.len()).sum();
    assert_eq!(real, 135_144);

    let mut rng = ChaCha12Rng::seed_from_u64(2024);
    let random = make_batches(&dataset.train, 2048, Batching::Random, &mut rng);
    let bucketed = make_batches(&dataset.train, 2048, Batching::Bucketed, &mut rng);
    check_batches(&dataset.train, &random, 2048);
    check_batches(&dataset.train, &bucketed, 2048);
    assert_eq!(random.len(), 17);
    assert_eq!(bucketed.len(), 17);

    let random_positions = padded_positions(&random);
    let bucketed_positions = padded_positions(&bucketed);
    eprintln!("Scientific train, batch 2048: {real} real items, {random_positions} padded positions random, {bucketed_positions} bucketed");
    // 17 batches of up to 2048 rows, nearly all holding a row of 50.
    assert!(random_positions > 1_600_000, "random {random_positions}");
    let ratio = random_positions as f64 / bucketed_positions as f64;
    assert!(ratio > 8.0, "random {random_positions} / bucketed {bucketed_positions} = {ratio:.2}");
}
