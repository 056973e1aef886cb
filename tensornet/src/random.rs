//! Seeded random matrices for benchmarks and the command line.

use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// Samples a row-major `rows x cols` matrix with independent N(0, 1) entries.
///
/// The generator is rand 0.8's `StdRng` seeded with `seed`, so one seed
/// gives one matrix on every machine with the same rand version.
///
/// ```
/// let a = tensornet::gaussian_matrix(3, 4, 7);
/// assert_eq!(a.len(), 12);
/// assert_eq!(a, tensornet::gaussian_matrix(3, 4, 7));
/// ```
pub fn gaussian_matrix(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..rows * cols).map(|_| StandardNormal.sample(&mut rng)).collect()
}
