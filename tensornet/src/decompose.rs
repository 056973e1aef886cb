//! Decomposition of a matrix into an MPO by a left-to-right sweep of thin
//! SVDs, with truncation of the bond dimensions.

use crate::error::{check_finite, Axis, Error, Result};
use crate::factor::{check_factors, pad_factor_lists};
use crate::linalg::{matmul, swap_middle, thin_svd, thin_svd_reusing, SvdMethod, ThinSvd, View};
use crate::mpo::Mpo;
use crate::shape::{full_bond_dims, MpoShape};

/// How many singular values each bond keeps.
///
/// Every criterion that is set caps the bond, and the smallest cap wins.
/// A bond always keeps at least one singular value.
///
/// ```
/// use tensornet::Truncation;
/// let t = Truncation { max_bond: Some(64), cutoff: Some(1e-3), ..Truncation::none() };
/// assert!(t.validate().is_ok());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Truncation {
    /// Maximum bond dimension. A value above a bond's full dimension keeps
    /// the full dimension, which the report lists in
    /// [`TruncationReport::max_bond_above_full`].
    pub max_bond: Option<usize>,
    /// Relative singular-value cutoff: singular values below
    /// `cutoff * s_max` of the same bond are dropped.
    pub cutoff: Option<f64>,
    /// Per-bond discarded-weight budget: the most singular values are
    /// dropped whose squares add up to at most this absolute value.
    pub max_discarded_weight: Option<f64>,
}

impl Truncation {
    /// Returns no truncation: every bond keeps all singular values its SVD
    /// returns, zeros included.
    pub fn none() -> Self {
        Truncation::default()
    }

    /// Returns a truncation to at most `max_bond` on every bond.
    pub fn max_bond(max_bond: usize) -> Self {
        Truncation { max_bond: Some(max_bond), ..Truncation::default() }
    }

    /// Checks the ranges of the options.
    ///
    /// # Errors
    /// [`Error::InvalidTruncation`] for `max_bond = 0`, a cutoff outside
    /// `[0, 1]`, or a negative or non-finite discarded-weight budget.
    pub fn validate(&self) -> Result<()> {
        if self.max_bond == Some(0) {
            return Err(Error::InvalidTruncation { option: "max_bond", value: 0.0, reason: "must be at least 1" });
        }
        if let Some(c) = self.cutoff {
            if !(0.0..=1.0).contains(&c) {
                return Err(Error::InvalidTruncation { option: "cutoff", value: c, reason: "must be in [0, 1]" });
            }
        }
        if let Some(w) = self.max_discarded_weight {
            if !w.is_finite() || w < 0.0 {
                return Err(Error::InvalidTruncation {
                    option: "max_discarded_weight",
                    value: w,
                    reason: "must be finite and at least 0",
                });
            }
        }
        Ok(())
    }

    /// Number of leading singular values to keep out of the descending `s`.
    pub(crate) fn keep(&self, s: &[f64]) -> usize {
        let mut keep = s.len();
        if let Some(max_bond) = self.max_bond {
            keep = keep.min(max_bond);
        }
        if let (Some(cutoff), Some(&s_max)) = (self.cutoff, s.first()) {
            keep = keep.min(s.iter().take_while(|&&x| x >= cutoff * s_max).count());
        }
        if let Some(budget) = self.max_discarded_weight {
            let mut dropped = 0.0;
            let mut tail = s.len();
            while tail > 1 && dropped + s[tail - 1] * s[tail - 1] <= budget {
                dropped += s[tail - 1] * s[tail - 1];
                tail -= 1;
            }
            keep = keep.min(tail);
        }
        keep.max(1).min(s.len().max(1))
    }
}

/// Record of the singular values a decomposition or re-compression kept and dropped.
///
/// Bond `k` (from 1 to `n - 1`) joins core `k - 1` and core `k`.
#[derive(Clone, Debug, PartialEq)]
pub struct TruncationReport {
    /// Kept bond dimensions `d_0, ..., d_n`, boundary 1s included.
    pub bond_dims: Vec<usize>,
    /// Full bond dimensions of the factor lists, see [`full_bond_dims`].
    pub full_bond_dims: Vec<usize>,
    /// Discarded weight `eps_k^2` (sum of the dropped squared singular
    /// values) of each internal bond `1 ..= n - 1`, in order.
    pub discarded_weight: Vec<f64>,
    /// Internal bonds where the requested `max_bond` exceeded the full
    /// dimension, so that the full dimension was kept.
    pub max_bond_above_full: Vec<usize>,
    /// Frobenius norm of the matrix before truncation.
    pub norm: f64,
}

impl TruncationReport {
    /// `sqrt(sum_k eps_k^2)`: the Frobenius error `||W - W'||_F` of the
    /// truncated MPO.
    ///
    /// Each SVD of the sweep factorizes what the earlier truncations left,
    /// with orthonormal cores on its left (and, for [`Mpo::truncate`], on its
    /// right). The dropped parts are therefore orthogonal and their weights
    /// add, so the error equals this value up to rounding.
    pub fn error(&self) -> f64 {
        // A fold from +0.0: `Sum` for floats starts at -0.0, which would print as "-0".
        self.discarded_weight.iter().fold(0.0, |acc, w| acc + w).sqrt()
    }

    /// [`TruncationReport::error`] divided by the norm of the matrix
    /// (0 for a zero matrix).
    pub fn relative_error(&self) -> f64 {
        if self.norm > 0.0 {
            self.error() / self.norm
        } else {
            0.0
        }
    }
}

/// [`swap_middle`] from `f32` to `f64`: reorders `[outer, p, q, inner]`
/// into `[outer, q, p, inner]` and widens every element.
fn swap_middle_widen(src: &[f32], outer: usize, p: usize, q: usize, inner: usize, dst: &mut [f64]) {
    assert!(src.len() >= outer * p * q * inner, "swap_middle_widen: source buffer too short");
    assert!(dst.len() >= outer * p * q * inner, "swap_middle_widen: destination buffer too short");
    let mut out = dst.iter_mut();
    for o in 0..outer {
        for qq in 0..q {
            for pp in 0..p {
                let from = ((o * p + pp) * q + qq) * inner;
                // The source goes first: `zip` stops on it without taking an
                // element of `out`.
                for (&y, x) in src[from..from + inner].iter().zip(&mut out) {
                    *x = y as f64;
                }
            }
        }
    }
}

fn narrow(data: &[f64]) -> Vec<f32> {
    data.iter().map(|&x| x as f32).collect()
}

/// Bookkeeping of one sweep: discarded weight and the bonds whose requested
/// maximum exceeded the full dimension.
struct SweepLog {
    discarded: Vec<f64>,
    above_full: Vec<usize>,
    bonds: Vec<usize>,
}

impl SweepLog {
    fn new(n: usize) -> Self {
        SweepLog { discarded: Vec::with_capacity(n.saturating_sub(1)), above_full: Vec::new(), bonds: vec![1] }
    }

    /// Chooses the kept dimension of bond `bond` from its SVD and records it.
    fn record(&mut self, bond: usize, svd: &ThinSvd, truncation: &Truncation, full: usize) -> usize {
        let keep = truncation.keep(&svd.s);
        self.discarded.push(svd.s[keep..].iter().fold(0.0, |acc, x| acc + x * x));
        if truncation.max_bond.is_some_and(|m| m > full) {
            self.above_full.push(bond);
        }
        self.bonds.push(keep);
        keep
    }

    fn finish(mut self, full_bond_dims: Vec<usize>, norm: f64) -> TruncationReport {
        self.bonds.push(1);
        TruncationReport {
            bond_dims: self.bonds,
            full_bond_dims,
            discarded_weight: self.discarded,
            max_bond_above_full: self.above_full,
            norm,
        }
    }
}

impl Mpo {
    /// Decomposes the row-major `out_dim x in_dim` matrix `matrix` into an
    /// MPO with row factors `rows` (splitting `out_dim`) and column factors
    /// `cols` (splitting `in_dim`), truncating each bond by `truncation`.
    ///
    /// The matrix is reshaped to `(i_0..i_{n-1}, j_0..j_{n-1})`, and a
    /// left-to-right sweep unfolds the remainder to
    /// `(d_k i_k j_k, rest)`, takes its thin SVD in `f64`, keeps `U` as core
    /// `k` and carries `S V^T` on. The result is left-canonical: every core
    /// but the last has orthonormal columns as a `[d_k i_k j_k, d_{k+1}]`
    /// matrix, and the last carries the norm. Without truncation the bonds are
    /// the full ones, `min(prod_{m<=k} i_m j_m, prod_{m>k} i_m j_m)`.
    ///
    /// Lists of different lengths are padded with 1s, as
    /// [`crate::pad_factor_lists`] does.
    ///
    /// # Errors
    /// [`Error::Length`] when `matrix.len() != out_dim * in_dim`,
    /// [`Error::FactorProduct`] or [`Error::InvalidFactors`] for a factor
    /// list that does not split its dimension, [`Error::NonFinite`] for a NaN
    /// or infinite entry, [`Error::InvalidTruncation`] for a bad option,
    /// [`Error::SvdFailed`] when an SVD does not converge.
    pub fn decompose(
        matrix: &[f32],
        out_dim: usize,
        in_dim: usize,
        rows: &[usize],
        cols: &[usize],
        truncation: &Truncation,
    ) -> Result<(Mpo, TruncationReport)> {
        Mpo::decompose_with(matrix, out_dim, in_dim, rows, cols, truncation, SvdMethod::Auto)
    }

    /// [`Mpo::decompose`] with a chosen SVD method, for benchmarks.
    ///
    /// # Errors
    /// As [`Mpo::decompose`].
    pub fn decompose_with(
        matrix: &[f32],
        out_dim: usize,
        in_dim: usize,
        rows: &[usize],
        cols: &[usize],
        truncation: &Truncation,
        method: SvdMethod,
    ) -> Result<(Mpo, TruncationReport)> {
        if matrix.len() != out_dim * in_dim {
            return Err(Error::Length {
                what: "matrix".into(),
                shape: vec![out_dim, in_dim],
                expected: out_dim * in_dim,
                len: matrix.len(),
            });
        }
        check_factors(Axis::Rows, rows, out_dim)?;
        check_factors(Axis::Cols, cols, in_dim)?;
        truncation.validate()?;
        check_finite(|| "matrix".to_string(), matrix)?;
        let (rows, cols) = pad_factor_lists(rows, cols);
        // The sweep runs on a rayon worker thread. From a thread outside the
        // pool, every parallel kernel would hand its work, and the data in
        // that thread's cache, to the workers and back at each step.
        rayon::scope(|_| sweep(matrix, out_dim, in_dim, rows, cols, truncation, method))
    }

    /// Re-compresses the MPO, for example after training: brings it to
    /// right-canonical form, then sweeps left to right with truncated SVDs.
    ///
    /// Because the cores right of each SVD are right-orthonormal and those
    /// left of it left-orthonormal, the Frobenius error of the result equals
    /// [`TruncationReport::error`] up to rounding. The result is
    /// left-canonical. With [`Truncation::none`] the matrix is unchanged up
    /// to rounding, but a bond larger than the rank bound of its unfolding
    /// shrinks to that bound, as after identity insertion at a boundary.
    ///
    /// # Errors
    /// [`Error::NonFinite`] for a NaN or infinite core element,
    /// [`Error::InvalidTruncation`] for a bad option,
    /// [`Error::SvdFailed`] when an SVD does not converge.
    pub fn truncate(&self, truncation: &Truncation) -> Result<(Mpo, TruncationReport)> {
        truncation.validate()?;
        self.check_finite()?;
        let right = self.right_canonical_chain();
        let n = self.num_cores();
        let full = full_bond_dims(self.shape.rows(), self.shape.cols());
        let norm = right.cores[0].iter().map(|x| x * x).sum::<f64>().sqrt();

        let mut log = SweepLog::new(n);
        let mut cores = Vec::with_capacity(n);
        let mut carry = right.cores[0].clone();
        for k in 0..n - 1 {
            let d2 = right.bonds[k + 1];
            let m = carry.len() / d2;
            let svd = thin_svd(&carry, m, d2, SvdMethod::Auto)?;
            let keep = log.record(k + 1, &svd, truncation, full[k + 1]);
            let (u, svt) = svd.into_truncated(keep);
            cores.push(narrow(&u));

            let next = &right.cores[k + 1];
            let next_cols = next.len() / d2;
            carry = matmul(View::new(&svt, keep, d2), View::new(next, d2, next_cols));
        }
        cores.push(narrow(&carry));

        let report = log.finish(full, norm);
        let shape = MpoShape::new(self.shape.rows().to_vec(), self.shape.cols().to_vec(), report.bond_dims.clone())?;
        Ok((Mpo { shape, cores }, report))
    }
}

/// Runs the left-to-right sweep of [`Mpo::decompose_with`] on validated
/// input, with factor lists of equal length.
fn sweep(
    matrix: &[f32],
    out_dim: usize,
    in_dim: usize,
    rows: Vec<usize>,
    cols: Vec<usize>,
    truncation: &Truncation,
    method: SvdMethod,
) -> Result<(Mpo, TruncationReport)> {
    let n = rows.len();
    let full = full_bond_dims(&rows, &cols);

    // `rest` is the f64 remainder, laid out [d, I_rest, J_rest], from
    // step 1 on. Step 0 reads the f32 matrix [1, out, in] directly, which
    // saves a widened copy.
    let mut rest: Vec<f64> = Vec::new();
    let norm = matrix.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    let (mut d, mut rows_left, mut cols_left) = (1usize, out_dim, in_dim);
    let mut cores = Vec::with_capacity(n);
    let mut log = SweepLog::new(n);
    // One allocation serves every unfolding, because none is larger than the matrix.
    let mut unfolding = vec![0.0f64; matrix.len()];
    for k in 0..n - 1 {
        let (i, j) = (rows[k], cols[k]);
        rows_left /= i;
        cols_left /= j;

        // [d, i, I', j, J'] -> [d, i, j, I', J'].
        let (m, width) = (d * i * j, rows_left * cols_left);
        let unfolding = &mut unfolding[..m * width];
        if k == 0 {
            swap_middle_widen(matrix, i, rows_left, j, cols_left, unfolding);
        } else {
            swap_middle(&rest, d * i, rows_left, j, cols_left, unfolding);
        }
        // `rest` is consumed, so the SVD may reuse its memory.
        let svd = thin_svd_reusing(unfolding, m, width, method, std::mem::take(&mut rest))?;

        let keep = log.record(k + 1, &svd, truncation, full[k + 1]);
        let (u, svt) = svd.into_truncated(keep);
        cores.push(narrow(&u));
        rest = svt;
        d = keep;
    }
    // With one core the loop never ran, and that core is the matrix.
    cores.push(if n == 1 { matrix.to_vec() } else { narrow(&rest) });

    let report = log.finish(full, norm);
    let shape = MpoShape::new(rows, cols, report.bond_dims.clone())?;
    Ok((Mpo { shape, cores }, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_middle_widen_matches_swap_middle() {
        // Odd sizes, including runs of one element.
        for (outer, p, q, inner) in [(1, 2, 3, 1), (3, 5, 4, 7), (2, 1, 6, 3), (4, 3, 1, 5)] {
            let len = outer * p * q * inner;
            let src: Vec<f32> = (0..len).map(|x| x as f32 * 0.5 - 3.0).collect();
            let mut widened = vec![0.0f64; len];
            swap_middle_widen(&src, outer, p, q, inner, &mut widened);
            let mut expected = vec![0.0f32; len];
            swap_middle(&src, outer, p, q, inner, &mut expected);
            let expected: Vec<f64> = expected.iter().map(|&x| x as f64).collect();
            assert_eq!(widened, expected, "[{outer}, {p}, {q}, {inner}]");
        }
    }
}
