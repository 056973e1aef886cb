//! One UniSRec training step: the adapter on every position of a batch of
//! 2048 rows and on all items, the Transformer, cosine / 0.07 scores over
//! all items, cross-entropy, backward and the Adam update.
//!
//! Two batches: `full`, 2048 rows that all hold 50 items (the padded
//! reference step costs the same whatever the lengths, so this is the fair
//! comparison), and `scientific`, 2048 training rows of Scientific drawn at
//! random, where packing skips the padding.

use autograd::{Adam, AdamConfig, BufferPool, Graph, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand_chacha::ChaCha12Rng;
use rand::{Rng, SeedableRng};
use recmodel::data::{load_features, load_unisrec, make_batches, Batching};
use recmodel::model::{SequenceBatch, Setting, UniSRec, UniSRecConfig};

const ROWS: usize = 2048;
const MAX_LEN: usize = 50;

struct StepInput {
    items: Vec<u32>,
    lengths: Vec<usize>,
    targets: Vec<u32>,
}

fn inputs(num_items: usize, scientific: Option<&recmodel::data::Dataset>) -> StepInput {
    let mut rng = ChaCha12Rng::seed_from_u64(11);
    match scientific {
        Some(ds) => {
            let batch = make_batches(&ds.train, ROWS, Batching::Random, &mut rng).swap_remove(0);
            let mut items = vec![0u32; ROWS * MAX_LEN];
            for r in 0..batch.lengths.len() {
                items[r * MAX_LEN..r * MAX_LEN + batch.lengths[r]].copy_from_slice(batch.history(r));
            }
            StepInput { items, lengths: batch.lengths.clone(), targets: batch.targets.clone() }
        }
        None => StepInput {
            items: (0..ROWS * MAX_LEN).map(|_| rng.gen_range(0..num_items as u32)).collect(),
            lengths: vec![MAX_LEN; ROWS],
            targets: (0..ROWS).map(|_| rng.gen_range(0..num_items as u32)).collect(),
        },
    }
}

fn bench_step(c: &mut Criterion) {
    let Some(dir) = recmodel::shared::require_shared("data/scientific") else { return };
    let dataset = load_unisrec(&dir).expect("Scientific loads");
    let features: Tensor = load_features(&dir.join("Scientific.minilm-l6.f32"), dataset.num_items).expect("features load");
    let config = UniSRecConfig::new(dataset.num_items, features.shape()[1], Setting::Transductive);
    let (model, mut params) = UniSRec::init(config, 2020);
    let mut opt = Adam::new(AdamConfig::default());
    let mut rng = ChaCha12Rng::seed_from_u64(3);
    let mut pool = BufferPool::new();

    let mut group = c.benchmark_group("unisrec_step");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    for (name, input) in [("full", inputs(dataset.num_items, None)), ("scientific", inputs(dataset.num_items, Some(&dataset)))] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let batch = SequenceBatch { items: &input.items, lengths: &input.lengths, max_len: MAX_LEN };
                let (grads, returned) = {
                    let mut g = Graph::with_pool(&params, std::mem::take(&mut pool));
                    let loss = model.training_loss(&mut g, &features, batch, &input.targets, &mut rng).expect("step runs");
                    let grads = g.backward(loss).expect("scalar loss");
                    (grads, g.into_pool())
                };
                pool = returned;
                opt.step(&mut params, &grads);
                for buf in grads.into_buffers() {
                    pool.give(buf);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_step);
criterion_main!(benches);
