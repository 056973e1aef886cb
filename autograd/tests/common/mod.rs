//! Helpers shared by the integration tests of `autograd`.
#![allow(dead_code)]

use autograd::gradcheck::{check_gradients, GradCheck};
use autograd::{Graph, ParamStore, Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Samples from `N(0, 1)` with a fixed seed.
pub fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

/// Samples uniformly from `[low, high)` with a fixed seed.
pub fn uniform(shape: &[usize], low: f32, high: f32, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    Tensor::new(shape.to_vec(), (0..n).map(|_| rng.gen_range(low..high)).collect()).unwrap()
}

/// Samples magnitudes from `[low, high)` with random signs, for inputs that
/// must stay away from zero (ReLU's kink, a denominator).
pub fn away_from_zero(shape: &[usize], low: f32, high: f32, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| {
            let magnitude = rng.gen_range(low..high);
            if rng.gen_bool(0.5) {
                magnitude
            } else {
                -magnitude
            }
        })
        .collect();
    Tensor::new(shape.to_vec(), data).unwrap()
}

/// Small integers in `[-range, range]`, whose sums and products stay exact in f32.
pub fn small_ints(len: usize, range: i32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen_range(-range..=range) as f32).collect()
}

/// Runs [`check_gradients`] with `options` and fails the test on any mismatch.
#[track_caller]
pub fn assert_gradients_with(store: &mut ParamStore, options: &GradCheck, build: impl Fn(&mut Graph<'_>) -> Result<Var>) {
    let mismatches = check_gradients(store, build, options).expect("the checked graph builds");
    assert!(mismatches.is_empty(), "backward disagrees with central differences: {mismatches:#?}");
}

/// [`assert_gradients_with`] with the default tolerances.
#[track_caller]
pub fn assert_gradients(store: &mut ParamStore, build: impl Fn(&mut Graph<'_>) -> Result<Var>) {
    assert_gradients_with(store, &GradCheck::default(), build);
}

/// Asserts that two slices agree within `atol + rtol * |expected|` element by element.
#[track_caller]
pub fn assert_close(actual: &[f32], expected: &[f32], atol: f32, rtol: f32) {
    assert_eq!(actual.len(), expected.len(), "lengths differ");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= atol + rtol * e.abs(), "element {i}: got {a}, expected {e}");
    }
}

/// Bit patterns of a slice, for comparisons that must be exact, NaN included.
pub fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Runs `f` inside a fresh rayon pool of `threads` threads.
pub fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("rayon pool").install(f)
}
