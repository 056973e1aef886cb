//! Helpers shared by the accuracy tests.
#![allow(dead_code)]

use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// Samples a row-major `rows x cols` matrix with N(0, 1) entries.
pub fn gaussian(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 1.0).unwrap();
    (0..rows * cols).map(|_| normal.sample(&mut rng)).collect()
}

/// Builds `U diag(0.8^k) V` from Gaussian `U` and `V`, a matrix whose
/// singular values decay roughly as `0.8^k`, so that truncation errors
/// spread over several orders of magnitude.
pub fn decaying(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let rank = rows.min(cols);
    let u = gaussian(rows, rank, seed);
    let v = gaussian(rank, cols, seed + 1);
    let mut w = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for k in 0..rank {
            let scale = u[r * rank + k] * 0.8f32.powi(k as i32);
            for c in 0..cols {
                w[r * cols + c] += scale * v[k * cols + c];
            }
        }
    }
    w
}

/// `||a - b||_F` in `f64`.
pub fn frobenius_distance(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>().sqrt()
}

/// `||a||_F` in `f64`.
pub fn frobenius_norm(a: &[f32]) -> f64 {
    a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt()
}

/// `||a - b||_F / ||b||_F`.
pub fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    frobenius_distance(a, b) / frobenius_norm(b)
}
