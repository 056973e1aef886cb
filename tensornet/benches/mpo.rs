//! Decomposition and contraction of the weight shapes of the models, at
//! n = 5 cores with the factor lists of `SHAPES`.
//!
//! - `decompose/SHAPE/METHOD`: [`Mpo::decompose_with`] without truncation,
//!   one group per SVD method, which is how the default method was chosen.
//! - `svd/6144x384/METHOD`: the tall unfolding at bond 3 of 3072x768 alone,
//!   as a 2-core MPO whose single SVD is of the matrix itself.
//! - `contract/SHAPE`: [`Mpo::to_dense`]. Criterion's element throughput is
//!   set to the flop count `2 * multiply-adds`, so `elem/s` reads as FLOP/s.
//!
//! The NumPy reference of the same algorithms is `bench/mpo_reference.py`;
//! `docs/benchmarks.md` has the figures and the commands.
//!
//! Run with `RAYON_NUM_THREADS=2 cargo bench -p tensornet --bench mpo`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use std::time::Duration;
use tensornet::{gaussian_matrix, Mpo, SvdMethod, Truncation};

/// `(out, in, rows, cols)`: the MoE expert shapes for 384-d and 768-d text
/// features, and the two BERT shapes of the MPO literature.
const SHAPES: [(usize, usize, [usize; 5], [usize; 5]); 4] = [
    (300, 384, [2, 3, 5, 5, 2], [2, 4, 4, 4, 3]),
    (300, 768, [2, 3, 5, 5, 2], [3, 4, 4, 4, 4]),
    (768, 768, [3, 4, 4, 4, 4], [4, 4, 4, 4, 3]),
    (3072, 768, [4, 4, 8, 6, 4], [3, 4, 4, 4, 4]),
];

const METHODS: [(SvdMethod, &str); 3] = [(SvdMethod::Gram, "gram"), (SvdMethod::Qr, "qr"), (SvdMethod::Direct, "direct")];

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
}

fn bench_decompose(c: &mut Criterion) {
    let mut group = c.benchmark_group("decompose");
    configure(&mut group);
    for &(out_dim, in_dim, rows, cols) in &SHAPES {
        let w = gaussian_matrix(out_dim, in_dim, 1);
        group.throughput(Throughput::Elements((out_dim * in_dim) as u64));
        for (method, name) in METHODS {
            // nalgebra's unblocked SVD takes seconds on the 6144x384 unfolding of 3072x768.
            if out_dim == 3072 && method != SvdMethod::Gram {
                continue;
            }
            let id = BenchmarkId::new(format!("{out_dim}x{in_dim}"), name);
            group.bench_function(id, |b| {
                b.iter(|| Mpo::decompose_with(&w, out_dim, in_dim, &rows, &cols, &Truncation::none(), method).unwrap())
            });
        }
    }
    group.finish();
}

fn bench_tall_svd(c: &mut Criterion) {
    let mut group = c.benchmark_group("svd");
    configure(&mut group);
    let (m, n) = (6144, 384);
    let w = gaussian_matrix(m, n, 2);
    for (method, name) in METHODS {
        group.bench_function(BenchmarkId::new(format!("{m}x{n}"), name), |b| {
            b.iter(|| Mpo::decompose_with(&w, m, n, &[m, 1], &[1, n], &Truncation::none(), method).unwrap())
        });
    }
    group.finish();
}

fn bench_contract(c: &mut Criterion) {
    let mut group = c.benchmark_group("contract");
    configure(&mut group);
    for &(out_dim, in_dim, rows, cols) in &SHAPES {
        let w = gaussian_matrix(out_dim, in_dim, 3);
        let (mpo, _) = Mpo::decompose(&w, out_dim, in_dim, &rows, &cols, &Truncation::none()).unwrap();
        let multiply_adds = mpo.shape().contraction_multiply_adds();
        group.throughput(Throughput::Elements(2 * multiply_adds));
        group.bench_function(format!("{out_dim}x{in_dim}"), |b| b.iter(|| mpo.to_dense()));
    }
    group.finish();
}

criterion_group!(benches, bench_decompose, bench_tall_svd, bench_contract);
criterion_main!(benches);
