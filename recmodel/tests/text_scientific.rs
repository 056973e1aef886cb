//! The text encoder against the reference output of Python `transformers`
//! for every Scientific item: token ids and all-MiniLM-L6-v2 features.

use std::path::Path;
use std::time::Instant;

use recmodel::shared::require_shared;
use recmodel::text::{load_item_texts, TextEncoder};

/// Reads the reference token file: a header, then `index<TAB>ids`.
fn reference_tokens(path: &Path) -> Vec<Vec<u32>> {
    let content = std::fs::read_to_string(path).unwrap();
    let mut rows: Vec<(usize, Vec<u32>)> = content
        .lines()
        .skip(1)
        .map(|line| {
            let (index, ids) = line.split_once('\t').unwrap();
            (index.parse().unwrap(), ids.split(' ').map(|id| id.parse().unwrap()).collect())
        })
        .collect();
    rows.sort_by_key(|(index, _)| *index);
    rows.into_iter().enumerate().map(|(i, (index, ids))| {
        assert_eq!(i, index, "the reference token file skips an index");
        ids
    }).collect()
}

fn reference_features(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[test]
fn scientific_tokens_match() {
    let (Some(model), Some(tokens)) = (
        require_shared("models/all-MiniLM-L6-v2/config.json"),
        require_shared("data/scientific/Scientific.minilm-l6.tokens"),
    ) else {
        return;
    };
    let encoder = TextEncoder::load(model.parent().unwrap()).unwrap();
    let items = load_item_texts(tokens.parent().unwrap()).unwrap();
    let expected = reference_tokens(&tokens);
    assert_eq!(items.texts.len(), expected.len());
    assert_eq!(items.missing, 0);

    let actual = encoder.tokenizer().encode_all(&items.texts).unwrap();
    let differing: Vec<usize> = (0..expected.len()).filter(|&i| actual[i] != expected[i]).collect();
    assert!(differing.is_empty(), "{} items differ, first {:?}", differing.len(), &differing[..differing.len().min(10)]);
}

#[test]
fn scientific_features_match() {
    let (Some(model), Some(reference)) = (
        require_shared("models/all-MiniLM-L6-v2/config.json"),
        require_shared("data/scientific/Scientific.minilm-l6.f32"),
    ) else {
        return;
    };
    let encoder = TextEncoder::load(model.parent().unwrap()).unwrap();
    let items = load_item_texts(reference.parent().unwrap()).unwrap();
    let expected = reference_features(&reference);
    let dim = encoder.dim();
    assert_eq!(expected.len(), items.texts.len() * dim);

    let start = Instant::now();
    let actual = encoder.embed(&items.texts, 16, |_| {}).unwrap();
    let seconds = start.elapsed().as_secs_f64();

    let mut min_cosine = f32::INFINITY;
    let mut max_abs_diff = 0.0f32;
    let mut worst_item = 0;
    for (i, (a, e)) in actual.chunks_exact(dim).zip(expected.chunks_exact(dim)).enumerate() {
        let dot: f32 = a.iter().zip(e).map(|(x, y)| x * y).sum();
        let norms = a.iter().map(|x| x * x).sum::<f32>().sqrt() * e.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cosine = dot / norms;
        if cosine < min_cosine {
            min_cosine = cosine;
            worst_item = i;
        }
        max_abs_diff = a.iter().zip(e).map(|(x, y)| (x - y).abs()).fold(max_abs_diff, f32::max);
    }
    println!(
        "{} items in {seconds:.2} s: min cosine {min_cosine:.7} (item {worst_item}), max abs diff {max_abs_diff:.3e}",
        items.texts.len()
    );
    assert!(min_cosine >= 0.9999, "min cosine {min_cosine} at item {worst_item}");
}
