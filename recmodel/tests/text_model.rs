//! The BERT forward pass on a tiny random model written to a temporary
//! folder: agreement with a plain f64 implementation of BERT written out
//! below, padding invariance, weight-file variants, pooling settings, and the
//! errors for broken model folders.

use std::collections::BTreeMap;
use std::path::Path;

use rand::{Rng, SeedableRng};
use recmodel::text::{BertModel, Pooling, TextEncoder, TextError, Workspace};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::json;

const VOCAB: usize = 24;
const HIDDEN: usize = 8;
const HEADS: usize = 2;
const LAYERS: usize = 2;
const INTERMEDIATE: usize = 12;
const POSITIONS: usize = 16;
const EPS: f64 = 1e-12;

type Weights = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn config() -> serde_json::Value {
    json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu",
        "max_position_embeddings": POSITIONS,
        "type_vocab_size": 2,
        "layer_norm_eps": EPS,
    })
}

/// Random weights with BERT's names; LayerNorm scales near 1.
fn random_weights(seed: u64) -> Weights {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut weights = Weights::new();
    let mut add = |name: String, shape: Vec<usize>, center: f32| {
        let data = (0..shape.iter().product()).map(|_| center + rng.gen_range(-0.5f32..0.5)).collect();
        weights.insert(name, (shape, data));
    };
    add("embeddings.word_embeddings.weight".into(), vec![VOCAB, HIDDEN], 0.0);
    add("embeddings.position_embeddings.weight".into(), vec![POSITIONS, HIDDEN], 0.0);
    add("embeddings.token_type_embeddings.weight".into(), vec![2, HIDDEN], 0.0);
    add("embeddings.LayerNorm.weight".into(), vec![HIDDEN], 1.0);
    add("embeddings.LayerNorm.bias".into(), vec![HIDDEN], 0.0);
    for l in 0..LAYERS {
        let base = format!("encoder.layer.{l}");
        for name in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
            add(format!("{base}.{name}.weight"), vec![HIDDEN, HIDDEN], 0.0);
            add(format!("{base}.{name}.bias"), vec![HIDDEN], 0.0);
        }
        add(format!("{base}.intermediate.dense.weight"), vec![INTERMEDIATE, HIDDEN], 0.0);
        add(format!("{base}.intermediate.dense.bias"), vec![INTERMEDIATE], 0.0);
        add(format!("{base}.output.dense.weight"), vec![HIDDEN, INTERMEDIATE], 0.0);
        add(format!("{base}.output.dense.bias"), vec![HIDDEN], 0.0);
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            add(format!("{base}.{norm}.weight"), vec![HIDDEN], 1.0);
            add(format!("{base}.{norm}.bias"), vec![HIDDEN], 0.0);
        }
    }
    weights
}

/// Writes `weights` as f32 (renamed with `prefix`) plus `extra` raw tensors.
fn write_safetensors(path: &Path, weights: &Weights, prefix: &str, extra: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let bytes: BTreeMap<String, (Vec<usize>, Vec<u8>)> = weights
        .iter()
        .map(|(name, (shape, data))| {
            (format!("{prefix}{name}"), (shape.clone(), data.iter().flat_map(|x| x.to_le_bytes()).collect()))
        })
        .collect();
    let mut views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(name, (shape, data))| (name.clone(), TensorView::new(Dtype::F32, shape.clone(), data).unwrap()))
        .collect();
    for (name, dtype, shape, data) in extra {
        views.push((name.to_string(), TensorView::new(*dtype, shape.clone(), data).unwrap()));
    }
    std::fs::write(path, safetensors::serialize(views, &None).unwrap()).unwrap();
}

fn write_model(dir: &Path, config: &serde_json::Value, weights: &Weights) {
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    write_safetensors(&dir.join("model.safetensors"), weights, "", &[]);
}

fn tiny_model(seed: u64) -> (tempfile::TempDir, Weights) {
    let dir = tempfile::tempdir().unwrap();
    let weights = random_weights(seed);
    write_model(dir.path(), &config(), &weights);
    (dir, weights)
}

/// Runs `batch` and returns the final states of sequence `b`, `[len][HIDDEN]`.
fn run(model: &BertModel, batch: &[Vec<u32>], b: usize) -> Vec<Vec<f32>> {
    let mut workspace = Workspace::default();
    let states = model.forward(batch, &mut workspace).unwrap();
    states.sequence(b).chunks(HIDDEN).map(<[f32]>::to_vec).collect()
}

// ---- A plain BERT in f64, straight from the definitions ----

fn erf(x: f64) -> f64 {
    // Taylor series for |x| <= 2.5, continued fraction of erfc beyond.
    let a = x.abs();
    let value = if a <= 2.5 {
        let (mut term, mut sum) = (a, a);
        for n in 1..80 {
            term *= -a * a / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let mut fraction = 0.0;
        for n in (1..200).rev() {
            fraction = (n as f64 / 2.0) / (a + fraction);
        }
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + fraction)
    };
    value.copysign(x)
}

fn layer_norm(x: &[f64], weight: &[f32], bias: &[f32]) -> Vec<f64> {
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64;
    x.iter().zip(weight).zip(bias).map(|((v, &w), &b)| (v - mean) / (var + EPS).sqrt() * w as f64 + b as f64).collect()
}

/// `W x + b` for a `[out, in]` weight.
fn linear(weights: &Weights, name: &str, x: &[f64]) -> Vec<f64> {
    let (shape, w) = &weights[&format!("{name}.weight")];
    let b = &weights[&format!("{name}.bias")].1;
    (0..shape[0]).map(|o| b[o] as f64 + (0..shape[1]).map(|i| w[o * shape[1] + i] as f64 * x[i]).sum::<f64>()).collect()
}

fn reference_forward(weights: &Weights, ids: &[u32]) -> Vec<Vec<f64>> {
    let row = |name: &str, r: usize| -> Vec<f64> { weights[name].1[r * HIDDEN..(r + 1) * HIDDEN].iter().map(|&v| v as f64).collect() };
    let norm = |x: &[f64], base: &str| layer_norm(x, &weights[&format!("{base}.weight")].1, &weights[&format!("{base}.bias")].1);

    let mut x: Vec<Vec<f64>> = ids
        .iter()
        .enumerate()
        .map(|(t, &id)| {
            let word = row("embeddings.word_embeddings.weight", id as usize);
            let position = row("embeddings.position_embeddings.weight", t);
            let token_type = row("embeddings.token_type_embeddings.weight", 0);
            let sum: Vec<f64> = (0..HIDDEN).map(|j| word[j] + position[j] + token_type[j]).collect();
            norm(&sum, "embeddings.LayerNorm")
        })
        .collect();

    let head_dim = HIDDEN / HEADS;
    for l in 0..LAYERS {
        let base = format!("encoder.layer.{l}");
        let q: Vec<Vec<f64>> = x.iter().map(|v| linear(weights, &format!("{base}.attention.self.query"), v)).collect();
        let k: Vec<Vec<f64>> = x.iter().map(|v| linear(weights, &format!("{base}.attention.self.key"), v)).collect();
        let v: Vec<Vec<f64>> = x.iter().map(|v| linear(weights, &format!("{base}.attention.self.value"), v)).collect();
        let mut context = vec![vec![0.0; HIDDEN]; ids.len()];
        for h in 0..HEADS {
            let cols = h * head_dim..(h + 1) * head_dim;
            for t in 0..ids.len() {
                let scores: Vec<f64> = (0..ids.len())
                    .map(|s| cols.clone().map(|j| q[t][j] * k[s][j]).sum::<f64>() / (head_dim as f64).sqrt())
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                for s in 0..ids.len() {
                    let p = (scores[s] - max).exp() / total;
                    for j in cols.clone() {
                        context[t][j] += p * v[s][j];
                    }
                }
            }
        }
        for t in 0..ids.len() {
            let attention = linear(weights, &format!("{base}.attention.output.dense"), &context[t]);
            let sum: Vec<f64> = (0..HIDDEN).map(|j| x[t][j] + attention[j]).collect();
            let hidden = norm(&sum, &format!("{base}.attention.output.LayerNorm"));
            let inner: Vec<f64> = linear(weights, &format!("{base}.intermediate.dense"), &hidden)
                .into_iter()
                .map(|u| 0.5 * u * (1.0 + erf(u / std::f64::consts::SQRT_2)))
                .collect();
            let output = linear(weights, &format!("{base}.output.dense"), &inner);
            let sum: Vec<f64> = (0..HIDDEN).map(|j| hidden[j] + output[j]).collect();
            x[t] = norm(&sum, &format!("{base}.output.LayerNorm"));
        }
    }
    x
}

// ---- Forward pass ----

fn batch() -> Vec<Vec<u32>> {
    vec![vec![1, 5, 9, 2], vec![1, 7, 3, 11, 13, 17, 19, 2], vec![1, 2]]
}

#[test]
fn forward_matches_reference() {
    let (dir, weights) = tiny_model(1);
    let model = BertModel::from_dir(dir.path()).unwrap();
    let batch = batch();
    for (b, ids) in batch.iter().enumerate() {
        let expected = reference_forward(&weights, ids);
        let actual = run(&model, &batch, b);
        assert_eq!(actual.len(), ids.len());
        for (t, (a, e)) in actual.iter().zip(&expected).enumerate() {
            let worst = a.iter().zip(e).map(|(&x, &y)| (x as f64 - y).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-4, "sequence {b}, token {t}: max difference {worst}");
        }
    }
}

#[test]
fn padding_leaves_states_unchanged() {
    let (dir, _) = tiny_model(2);
    let model = BertModel::from_dir(dir.path()).unwrap();
    let short = vec![1, 5, 9, 2];
    let alone = run(&model, std::slice::from_ref(&short), 0);
    let padded = run(&model, &[short, vec![1, 3, 4, 6, 8, 10, 12, 14, 2]], 0);
    for (a, p) in alone.iter().flatten().zip(padded.iter().flatten()) {
        assert!((a - p).abs() < 1e-6, "{a} vs {p}");
    }
}

#[test]
fn workspace_reuse_across_batches() {
    let (dir, _) = tiny_model(3);
    let model = BertModel::from_dir(dir.path()).unwrap();
    let mut workspace = Workspace::default();
    let long = vec![vec![1, 3, 4, 6, 8, 10, 12, 14, 2]; 3];
    model.forward(&long, &mut workspace).unwrap();
    let short = vec![vec![1, 5, 9, 2]];
    let reused: Vec<f32> = model.forward(&short, &mut workspace).unwrap().sequence(0).to_vec();
    let fresh = run(&model, &short, 0).concat();
    assert_eq!(reused, fresh);
}

#[test]
fn empty_batch() {
    let (dir, _) = tiny_model(23);
    let model = BertModel::from_dir(dir.path()).unwrap();
    let mut workspace = Workspace::default();
    let states = model.forward(&Vec::<Vec<u32>>::new(), &mut workspace).unwrap();
    assert!(states.is_empty());
}

// ---- Weight files ----

#[test]
fn bert_prefix_and_unused_tensors() {
    let (plain_dir, weights) = tiny_model(4);
    let plain = BertModel::from_dir(plain_dir.path()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config().to_string()).unwrap();
    let position_ids: Vec<u8> = (0..POSITIONS as i64).flat_map(|i| i.to_le_bytes()).collect();
    let pooler: Vec<u8> = vec![0; HIDDEN * HIDDEN * 4];
    write_safetensors(
        &dir.path().join("model.safetensors"),
        &weights,
        "bert.",
        &[
            ("bert.embeddings.position_ids", Dtype::I64, vec![1, POSITIONS], position_ids),
            ("bert.pooler.dense.weight", Dtype::F32, vec![HIDDEN, HIDDEN], pooler),
        ],
    );
    let prefixed = BertModel::from_dir(dir.path()).unwrap();
    assert_eq!(run(&prefixed, &batch(), 1), run(&plain, &batch(), 1));
}

#[test]
fn layer_norm_gamma_beta_names() {
    let (plain_dir, weights) = tiny_model(5);
    let plain = BertModel::from_dir(plain_dir.path()).unwrap();
    let renamed: Weights = weights
        .iter()
        .map(|(name, value)| {
            let name = if name.contains("LayerNorm") { name.replace(".weight", ".gamma").replace(".bias", ".beta") } else { name.clone() };
            (name, value.clone())
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), &config(), &renamed);
    let model = BertModel::from_dir(dir.path()).unwrap();
    assert_eq!(run(&model, &batch(), 0), run(&plain, &batch(), 0));
}

// ---- Errors name the file and the tensor ----

fn load_error(dir: &Path) -> TextError {
    BertModel::from_dir(dir).err().expect("loading should fail")
}

#[test]
fn missing_config() {
    let dir = tempfile::tempdir().unwrap();
    let message = load_error(dir.path()).to_string();
    assert!(message.contains("config.json"), "{message}");
    assert!(message.contains("not found"), "{message}");
}

#[test]
fn missing_weights() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config().to_string()).unwrap();
    let message = load_error(dir.path()).to_string();
    assert!(message.contains("model.safetensors"), "{message}");
    assert!(message.contains("not found"), "{message}");
}

#[test]
fn other_architecture() {
    let (dir, weights) = tiny_model(6);
    let mut roberta = config();
    roberta["model_type"] = json!("roberta");
    roberta["architectures"] = json!(["RobertaModel"]);
    write_model(dir.path(), &roberta, &weights);
    let error = load_error(dir.path());
    assert!(matches!(error, TextError::UnsupportedArchitecture { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("config.json"), "{message}");
    assert!(message.contains("roberta"), "{message}");
}

#[test]
fn shape_mismatch_names_tensor() {
    let (dir, weights) = tiny_model(7);
    let mut wider = config();
    wider["intermediate_size"] = json!(INTERMEDIATE + 4);
    write_model(dir.path(), &wider, &weights);
    let error = load_error(dir.path());
    let message = error.to_string();
    assert!(matches!(error, TextError::TensorShape { .. }), "{message}");
    assert!(message.contains("model.safetensors"), "{message}");
    assert!(message.contains("encoder.layer.0.intermediate.dense.weight"), "{message}");
    assert!(message.contains("[12, 8]"), "{message}");
    assert!(message.contains("[16, 8]"), "{message}");
}

#[test]
fn missing_tensor_names_tensor() {
    let (dir, mut weights) = tiny_model(8);
    weights.remove("encoder.layer.1.attention.self.value.bias");
    write_model(dir.path(), &config(), &weights);
    let message = load_error(dir.path()).to_string();
    assert!(message.contains("model.safetensors"), "{message}");
    assert!(message.contains("encoder.layer.1.attention.self.value.bias"), "{message}");
}

#[test]
fn fewer_layers_than_config() {
    let (dir, weights) = tiny_model(9);
    let mut deeper = config();
    deeper["num_hidden_layers"] = json!(LAYERS + 1);
    write_model(dir.path(), &deeper, &weights);
    let message = load_error(dir.path()).to_string();
    assert!(message.contains("encoder.layer.2.attention.self.query.weight"), "{message}");
}

#[test]
fn integer_weight_rejected() {
    let (dir, mut weights) = tiny_model(10);
    let (shape, _) = weights.remove("embeddings.LayerNorm.bias").unwrap();
    std::fs::write(dir.path().join("config.json"), config().to_string()).unwrap();
    let zeros = vec![0u8; shape[0] * 4];
    write_safetensors(&dir.path().join("model.safetensors"), &weights, "", &[("embeddings.LayerNorm.bias", Dtype::I32, shape, zeros)]);
    let message = load_error(dir.path()).to_string();
    assert!(message.contains("embeddings.LayerNorm.bias"), "{message}");
    assert!(message.contains("I32"), "{message}");
}

#[test]
fn corrupt_weight_file() {
    let (dir, _) = tiny_model(11);
    std::fs::write(dir.path().join("model.safetensors"), b"not a safetensors file").unwrap();
    let message = load_error(dir.path()).to_string();
    assert!(message.contains("model.safetensors"), "{message}");
    assert!(message.contains("invalid safetensors"), "{message}");
}

#[test]
fn heads_must_divide_hidden() {
    let (dir, weights) = tiny_model(12);
    let mut odd = config();
    odd["num_attention_heads"] = json!(3);
    write_model(dir.path(), &odd, &weights);
    let message = load_error(dir.path()).to_string();
    assert!(message.contains("num_attention_heads"), "{message}");
}

#[test]
fn token_id_out_of_range() {
    let (dir, _) = tiny_model(13);
    let model = BertModel::from_dir(dir.path()).unwrap();
    let error = model.forward(&[vec![1, VOCAB as u32, 2]], &mut Workspace::default()).err().unwrap();
    assert!(matches!(error, TextError::TokenId { id, .. } if id == VOCAB as u32), "{error}");
}

#[test]
fn sequence_longer_than_positions() {
    let (dir, _) = tiny_model(14);
    let model = BertModel::from_dir(dir.path()).unwrap();
    let error = model.forward(&[vec![1; POSITIONS + 1]], &mut Workspace::default()).err().unwrap();
    assert!(error.to_string().contains("max_position_embeddings"), "{error}");
}

// ---- The sentence-transformers files ----

/// Creates a tiny model with a WordPiece vocabulary, so that `TextEncoder` loads.
fn tiny_encoder_dir(seed: u64) -> tempfile::TempDir {
    let (dir, _) = tiny_model(seed);
    let mut vocab = vec!["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", "a", "b", "c", "d", "##s"];
    vocab.extend(["e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r"]);
    assert_eq!(vocab.len(), VOCAB);
    std::fs::write(dir.path().join("vocab.txt"), vocab.join("\n")).unwrap();
    dir
}

fn write_json(path: &Path, value: serde_json::Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, value.to_string()).unwrap();
}

#[test]
fn plain_folder_defaults() {
    let dir = tiny_encoder_dir(15);
    let encoder = TextEncoder::load(dir.path()).unwrap();
    assert_eq!(encoder.pooling(), Pooling::Mean);
    assert!(!encoder.normalize());
    assert_eq!(encoder.tokenizer().max_length(), POSITIONS);
}

#[test]
fn sentence_transformers_settings() {
    let dir = tiny_encoder_dir(16);
    write_json(&dir.path().join("sentence_bert_config.json"), json!({"max_seq_length": 6}));
    write_json(
        &dir.path().join("modules.json"),
        json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        ]),
    );
    write_json(&dir.path().join("1_Pooling/config.json"), json!({"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}));
    let encoder = TextEncoder::load(dir.path()).unwrap();
    assert_eq!(encoder.pooling(), Pooling::Cls);
    assert!(encoder.normalize());
    assert_eq!(encoder.tokenizer().max_length(), 6);
    assert_eq!(encoder.tokenizer().encode("a b c d e f g").unwrap().len(), 6);
}

#[test]
fn pooling_and_normalisation() {
    let dir = tiny_encoder_dir(17);
    let mut encoder = TextEncoder::load(dir.path()).unwrap();
    let ids = encoder.tokenizer().encode("a bs c").unwrap();
    assert_eq!(ids, vec![1, 5, 6, 9, 7, 2]);
    let states = run(encoder.model(), std::slice::from_ref(&ids), 0);

    let mean = encoder.embed(&["a bs c"], 8, |_| {}).unwrap();
    for j in 0..HIDDEN {
        let expected = states.iter().map(|s| s[j]).sum::<f32>() / ids.len() as f32;
        assert!((mean[j] - expected).abs() < 1e-6);
    }

    encoder.set_pooling(Pooling::Cls);
    encoder.set_normalize(true);
    let cls = encoder.embed(&["a bs c"], 8, |_| {}).unwrap();
    let norm = states[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    for j in 0..HIDDEN {
        assert!((cls[j] - states[0][j] / norm).abs() < 1e-6);
    }
}

#[test]
fn embed_keeps_input_order() {
    let dir = tiny_encoder_dir(18);
    let encoder = TextEncoder::load(dir.path()).unwrap();
    let texts = ["a", "b c d e f", "", "g h"];
    let together = encoder.embed(&texts, 2, |_| {}).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let alone = encoder.embed(&[text], 1, |_| {}).unwrap();
        for (x, y) in together[i * HIDDEN..(i + 1) * HIDDEN].iter().zip(&alone) {
            assert!((x - y).abs() < 1e-6, "text {i}: {x} vs {y}");
        }
    }
}

#[test]
fn progress_counts_every_text() {
    let dir = tiny_encoder_dir(19);
    let encoder = TextEncoder::load(dir.path()).unwrap();
    // Batches run in parallel, so the calls may come in any order.
    let calls = std::sync::Mutex::new(Vec::new());
    encoder.embed(&["a", "b", "c", "d", "e"], 2, |n| calls.lock().unwrap().push(n)).unwrap();
    let mut calls = calls.into_inner().unwrap();
    calls.sort();
    assert_eq!(calls, vec![1, 2, 2]);
}

#[test]
fn max_seq_length_beyond_positions() {
    let dir = tiny_encoder_dir(20);
    write_json(&dir.path().join("sentence_bert_config.json"), json!({"max_seq_length": POSITIONS + 1}));
    let message = TextEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(message.contains("sentence_bert_config.json"), "{message}");
    assert!(message.contains("max_seq_length"), "{message}");
}

#[test]
fn unsupported_pooling_mode() {
    let dir = tiny_encoder_dir(21);
    write_json(
        &dir.path().join("modules.json"),
        json!([{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]),
    );
    write_json(&dir.path().join("1_Pooling/config.json"), json!({"pooling_mode_lasttoken": true}));
    let message = TextEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(message.contains("1_Pooling"), "{message}");
    assert!(message.contains("pooling_mode_lasttoken"), "{message}");
}

#[test]
fn missing_pooling_folder() {
    let dir = tiny_encoder_dir(22);
    write_json(
        &dir.path().join("modules.json"),
        json!([{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]),
    );
    let message = TextEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(message.contains("1_Pooling"), "{message}");
    assert!(message.contains("not found"), "{message}");
}

#[test]
fn more_layers_than_config() {
    let (dir, weights) = tiny_model(21);
    let mut shallower = config();
    shallower["num_hidden_layers"] = json!(LAYERS - 1);
    write_model(dir.path(), &shallower, &weights);
    let message = load_error(dir.path()).to_string();
    assert!(message.contains(&format!("encoder.layer.{}", LAYERS - 1)), "{message}");
    assert!(message.contains("num_hidden_layers"), "{message}");
}

#[test]
fn truncated_weight_file() {
    let (dir, _) = tiny_model(22);
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let message = load_error(dir.path()).to_string();
    assert!(message.contains("model.safetensors"), "{message}");
    assert!(message.contains("ends before the data"), "{message}");
    assert!(message.contains("download it again"), "{message}");
}

#[test]
fn dense_module_rejected() {
    let dir = tiny_encoder_dir(23);
    write_json(
        &dir.path().join("modules.json"),
        json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
        ]),
    );
    write_json(&dir.path().join("1_Pooling/config.json"), json!({"pooling_mode_mean_tokens": true}));
    let message = TextEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(message.contains("modules.json"), "{message}");
    assert!(message.contains("sentence_transformers.models.Dense"), "{message}");
}

#[test]
fn pooling_width_must_match_hidden_size() {
    let dir = tiny_encoder_dir(24);
    write_json(
        &dir.path().join("modules.json"),
        json!([{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]),
    );
    write_json(&dir.path().join("1_Pooling/config.json"), json!({"word_embedding_dimension": HIDDEN + 1, "pooling_mode_mean_tokens": true}));
    let message = TextEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(message.contains("word_embedding_dimension"), "{message}");
    assert!(message.contains(&format!("hidden_size {HIDDEN}")), "{message}");
}
