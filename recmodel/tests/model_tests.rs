//! UniSRec end to end at the library level: gradients of the whole model,
//! learning on real data, item 0, determinism.

use autograd::gradcheck::{check_gradients, GradCheck};
use autograd::{Adam, AdamConfig, Graph, ParamStore, Tensor};
use rand_chacha::ChaCha12Rng;
use rand::SeedableRng;
use recmodel::data::{load_features, load_unisrec, make_batches, Batching, SequenceExample};
use recmodel::evaluate::evaluate;
use recmodel::model::{SequenceBatch, Setting, UniSRec, UniSRecConfig};
use recmodel::shared::require_shared;

fn tiny_config(num_items: usize, text_dim: usize, setting: Setting) -> UniSRecConfig {
    let mut c = UniSRecConfig::new(num_items, text_dim, setting);
    c.hidden_size = 8;
    c.inner_size = 6;
    c.num_layers = 2;
    c.num_heads = 2;
    c.num_experts = 3;
    c.max_seq_len = 5;
    c
}

/// One optimizer step on `rows`; returns the mean loss before the update.
fn step(model: &UniSRec, params: &mut ParamStore, opt: &mut Adam, features: &Tensor, rows: &[SequenceExample], rng: &mut ChaCha12Rng) -> f32 {
    let batch = recmodel::data::Batch::from_rows(rows, (0..rows.len()).collect());
    let seq = SequenceBatch { items: &batch.items, lengths: &batch.lengths, max_len: batch.max_len };
    let (loss, grads) = {
        let mut g = Graph::new(params);
        let loss = model.training_loss(&mut g, features, seq, &batch.targets, rng).unwrap();
        let value = g.value(loss)[0];
        (value, g.backward(loss).unwrap())
    };
    opt.step(params, &grads);
    loss
}

#[test]
fn unisrec_loss_gradients_match_finite_differences() {
    for setting in [Setting::Transductive, Setting::Inductive] {
        let config = tiny_config(6, 5, setting);
        let (model, mut params) = UniSRec::init(config, 5);
        // Larger weights than the N(0, 0.02) initialisation, so that every
        // path carries a gradient well above the finite-difference noise.
        for (_, p) in params.clone().iter() {
            let id = params.find(&p.name).unwrap();
            let shape = p.value.shape().to_vec();
            params.get_mut(id).value = Tensor::randn(&shape, 0.0, 0.5, &mut ChaCha12Rng::seed_from_u64(id.0 as u64));
        }
        let features = Tensor::randn(&[6, 5], 0.0, 1.0, &mut ChaCha12Rng::seed_from_u64(9));
        let items = [1u32, 0, 4, 0, 2, 3, 5, 1, 2, 0];
        let lengths = [4usize, 1];
        let targets = [0u32, 5];
        let options = GradCheck { eps: 1e-2, atol: 5e-3, rtol: 5e-2, max_elements: 12 };
        let mismatches = check_gradients(
            &mut params,
            |g| {
                let mut rng = ChaCha12Rng::seed_from_u64(21);
                let batch = SequenceBatch { items: &items, lengths: &lengths, max_len: 5 };
                model.training_loss(g, &features, batch, &targets, &mut rng).map_err(|e| match e {
                    recmodel::error::ModelError::Tensor(t) => t,
                    other => panic!("{other}"),
                })
            },
            &options,
        )
        .unwrap();
        assert!(mismatches.is_empty(), "{setting}: {mismatches:#?}");
    }
}

#[test]
fn unisrec_loss_falls_on_scientific_slice() {
    let Some(train) = require_shared("data/scientific/Scientific.train.inter") else { return };
    let dir = train.parent().unwrap();
    let dataset = load_unisrec(dir).unwrap();
    let features = load_features(&dir.join("Scientific.minilm-l6.f32"), dataset.num_items).unwrap();
    let mut config = UniSRecConfig::new(dataset.num_items, features.shape()[1], Setting::Transductive);
    config.hidden_size = 64;
    config.inner_size = 64;
    let (model, mut params) = UniSRec::init(config, 1);
    let mut opt = Adam::new(AdamConfig { lr: 3e-3, ..AdamConfig::default() });
    let mut rng = ChaCha12Rng::seed_from_u64(2);
    let slice = &dataset.train[..1536];
    let mut epoch_losses = Vec::new();
    for _ in 0..4 {
        let batches = make_batches(slice, 256, Batching::Random, &mut rng);
        let mut total = 0.0;
        for b in &batches {
            let rows: Vec<SequenceExample> = b.rows.iter().map(|&r| slice[r].clone()).collect();
            total += step(&model, &mut params, &mut opt, &features, &rows, &mut rng);
        }
        epoch_losses.push(total / batches.len() as f32);
    }
    // Near-uniform scores over 4,385 items give about ln(4385) = 8.39; the
    // temperature of 0.07 spreads random cosines, so the start is higher.
    assert!(epoch_losses[0] > 8.0, "{epoch_losses:?}");
    assert!(epoch_losses[3] < epoch_losses[0] - 0.3, "loss did not fall: {epoch_losses:?}");
    for w in epoch_losses.windows(2) {
        assert!(w[1] < w[0], "loss rose between epochs: {epoch_losses:?}");
    }
}

#[test]
fn item_zero_is_scored_and_ranked_first() {
    let config = tiny_config(12, 6, Setting::Transductive);
    let (model, mut params) = UniSRec::init(config, 3);
    let features = Tensor::randn(&[12, 6], 0.0, 1.0, &mut ChaCha12Rng::seed_from_u64(4));
    let rows: Vec<SequenceExample> = (0..16)
        .map(|u| SequenceExample { user: u, history: vec![1 + u % 11, 1 + (u * 7) % 11], target: 0 })
        .collect();
    let mut opt = Adam::new(AdamConfig { lr: 1e-2, ..AdamConfig::default() });
    let mut rng = ChaCha12Rng::seed_from_u64(5);
    for _ in 0..150 {
        step(&model, &mut params, &mut opt, &features, &rows, &mut rng);
    }
    let eval = evaluate(&model, &params, &features, &rows).unwrap();
    assert!(eval.ranks.iter().all(|&r| r == 1), "ranks of item 0: {:?}", eval.ranks);
    assert_eq!(eval.metrics.hit_10, 1.0);
    assert_eq!(eval.metrics.ndcg_10, 1.0);
}

/// Two steps of training from one seed, as flat parameter bits.
fn two_steps(threads: usize) -> Vec<u32> {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
        let mut config = UniSRecConfig::new(300, 16, Setting::Transductive);
        config.hidden_size = 32;
        config.inner_size = 32;
        let (model, mut params) = UniSRec::init(config, 7);
        let features = Tensor::randn(&[300, 16], 0.0, 1.0, &mut ChaCha12Rng::seed_from_u64(8));
        // Enough rows that the parallel code paths run.
        let rows: Vec<SequenceExample> = (0..400u32)
            .map(|u| SequenceExample { user: u, history: (0..1 + u % 50).map(|i| (u * 31 + i * 7) % 300).collect(), target: (u * 13) % 300 })
            .collect();
        let mut opt = Adam::new(AdamConfig::default());
        let mut rng = ChaCha12Rng::seed_from_u64(9);
        for _ in 0..2 {
            step(&model, &mut params, &mut opt, &features, &rows, &mut rng);
        }
        params.iter().flat_map(|(_, p)| p.value.data().iter().map(|x| x.to_bits()).collect::<Vec<_>>()).collect()
    })
}

#[test]
fn training_is_deterministic_across_threads() {
    let one = two_steps(1);
    let again = two_steps(1);
    let two = two_steps(2);
    assert!(one == again, "same seed, same thread count, different parameters");
    assert!(one == two, "parameters depend on the thread count");
}
