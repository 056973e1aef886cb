//! Property tests that feed the file parsers arbitrary and mutated input:
//! each must return a value or an error, never panic.

use std::path::Path;

use proptest::prelude::*;
use recmodel::checkpoint::{read_checkpoint, write_checkpoint, Checkpoint};
use recmodel::data::{load_features, load_unisrec};
use recmodel::model::{Setting, UniSRec, UniSRecConfig};
use recmodel::text::load_item_texts;

/// Text made of the characters that matter to the parsers: separators,
/// digits, header punctuation, JSON syntax and a few multi-byte ones.
fn parser_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\t", "\n", "\r\n", ":", "token", "token_seq", "item_id", "user_id", "0", "1", "2", "9", "-1", "18446744073709551616", " ",
        "A0", "A1", "{", "}", "[", "]", "\"", ",", "title", "é", "中", "",
    ]);
    prop::collection::vec(pieces, 0..60).prop_map(|parts| parts.concat())
}

/// A small valid UniSRec dataset, the starting point of the mutations.
const VALID: [(&str, &str); 5] = [
    ("T.train.inter", "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t0 1\t2\n1\t1\t0\n"),
    ("T.valid.inter", "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t0 1 2\t1\n1\t1 0\t2\n"),
    ("T.test.inter", "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t0 1 2 1\t0\n1\t1 0 2\t1\n"),
    ("T.item2index", "A0\t0\nA1\t1\nA2\t2\n"),
    ("T.user2index", "U0\t0\nU1\t1\n"),
];

/// Replaces the byte range `at..at + len` of `text` (clamped, on character
/// boundaries) by `insert`.
fn mutate(text: &str, at: usize, len: usize, insert: &str) -> String {
    let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
    let start = boundaries[at % boundaries.len()];
    let end = boundaries.iter().copied().find(|&b| b >= start + len).unwrap_or(text.len());
    format!("{}{}{}", &text[..start], insert, &text[end..])
}

fn write_dataset(dir: &Path, files: &[(&str, String)]) {
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn unisrec_loader_survives_mutations(file in 0usize..5, at in 0usize..400, len in 0usize..8, insert in parser_text()) {
        let dir = tempfile::tempdir().unwrap();
        let mut files: Vec<(&str, String)> = VALID.iter().map(|(n, c)| (*n, c.to_string())).collect();
        files[file].1 = mutate(&files[file].1, at, len, &insert);
        write_dataset(dir.path(), &files);
        let _ = load_unisrec(dir.path());
    }

    #[test]
    fn unisrec_loader_survives_arbitrary_bytes(file in 0usize..5, bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<(&str, String)> = VALID.iter().map(|(n, c)| (*n, c.to_string())).collect();
        write_dataset(dir.path(), &files);
        std::fs::write(dir.path().join(VALID[file].0), &bytes).unwrap();
        let _ = load_unisrec(dir.path());
    }

    #[test]
    fn item_text_loaders_survive_arbitrary_text(layout in 0usize..4, text in parser_text(), index in parser_text()) {
        let dir = tempfile::tempdir().unwrap();
        match layout {
            0 => write_dataset(dir.path(), &[("T.item2index", index), ("T.text", text)]),
            1 => write_dataset(dir.path(), &[("T.item2index", "A0\t0\nA1\t1\n".to_string()), ("meta_T.json", text)]),
            2 => write_dataset(dir.path(), &[("T.item.json", text)]),
            _ => write_dataset(dir.path(), &[("T.item", text)]),
        }
        let _ = load_item_texts(dir.path());
    }

    #[test]
    fn feature_loader_survives_any_size(bytes in prop::collection::vec(any::<u8>(), 0..200), items in 0usize..20) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.f32");
        std::fs::write(&path, &bytes).unwrap();
        let _ = load_features(&path, items);
    }

    #[test]
    fn checkpoint_reader_survives_corruption(at in 0usize..100_000, value in any::<u8>(), cut in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ckpt");
        let mut config = UniSRecConfig::new(5, 4, Setting::Transductive);
        config.hidden_size = 4;
        config.inner_size = 4;
        let (_, params) = UniSRec::init(config.clone(), 1);
        write_checkpoint(&path, &Checkpoint { config, params, epoch: 1, valid_ndcg_10: 0.1, optimizer: None }).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let at = at % bytes.len();
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] ^= value.max(1);
        }
        std::fs::write(&path, &bytes).unwrap();
        // Any change to the bytes is caught by the header or the checksum.
        prop_assert!(read_checkpoint(&path).is_err());
    }
}
