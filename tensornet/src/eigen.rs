//! Symmetric eigendecomposition for the Gram-matrix SVD: Householder
//! tridiagonalization, then the implicit QL iteration of EISPACK's `tql2`
//! (as published in JAMA), on row-major buffers.
//!
//! nalgebra's `SymmetricEigen` runs the same algorithms but took 1.7 times
//! as long on the Gram matrices of the model's shapes: 3.4 against 2.0 ms
//! at 160 x 160 and 1.56 against 0.91 ms at 120 x 120. Those are one-thread
//! timings on an AVX-512 Xeon, from a scratch program outside the
//! repository. Here every inner loop runs along a contiguous row. The
//! reflector is a row of the reduced matrix, and the eigenvectors are kept
//! as the rows of `Z = Q^T`, so each Givens rotation combines two rows. The row
//! operations ([`RowKernels`]) have AVX-512 versions, chosen at run time,
//! and portable ones. Both sum in an order fixed by the length alone, so a
//! result depends only on the input and the processor's instruction set.

use crate::error::{Error, Result};

/// Maximum QL iterations per eigenvalue before giving up, as in LAPACK's
/// `dsteqr` (30 per eigenvalue).
const MAX_ITERATIONS: usize = 30;

/// Eigenvalues in descending order and the matching unit eigenvectors as
/// the rows of a row-major `n x n` buffer.
pub(crate) struct Eigen {
    pub values: Vec<f64>,
    pub vectors: Vec<f64>,
}

/// Computes the eigendecomposition of the symmetric row-major `n x n`
/// matrix `a` (both triangles must be filled).
///
/// # Errors
/// [`Error::SvdFailed`] when the QL iteration does not converge.
pub(crate) fn symmetric_eigen(a: Vec<f64>, n: usize) -> Result<Eigen> {
    assert_eq!(a.len(), n * n, "symmetric_eigen: a has {} elements, expected {n} x {n}", a.len());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return eigen_with::<avx512::Avx512>(a, n);
    }
    eigen_with::<Portable>(a, n)
}

/// Row operations of the eigensolver, on slices of equal length.
trait RowKernels {
    /// Returns `x . y`.
    fn dot(x: &[f64], y: &[f64]) -> f64;
    /// Returns `[x_0 . y, x_1 . y, x_2 . y, x_3 . y]` for the four rows
    /// `x_r = rows[r * stride..r * stride + y.len()]`.
    fn dot4(rows: &[f64], stride: usize, y: &[f64]) -> [f64; 4] {
        let len = y.len();
        std::array::from_fn(|r| Self::dot(&rows[r * stride..r * stride + len], y))
    }
    /// `row -= a * v + b * w`.
    fn sub_two_scaled(row: &mut [f64], a: f64, v: &[f64], b: f64, w: &[f64]);
    /// `row -= a * v`.
    fn sub_scaled(row: &mut [f64], a: f64, v: &[f64]);
    /// Reflects each of the `count` rows `x = block[r * stride..][..v.len()]`:
    /// `x -= tau (x . v) v`.
    fn reflect_rows(block: &mut [f64], stride: usize, count: usize, v: &[f64], tau: f64) {
        let len = v.len();
        for r in 0..count {
            let row = &mut block[r * stride..r * stride + len];
            let y = tau * Self::dot(row, v);
            Self::sub_scaled(row, y, v);
        }
    }
    /// `row -= a * v + b * w`, then returns `row . y`.
    fn sub_two_scaled_dot(row: &mut [f64], a: f64, v: &[f64], b: f64, w: &[f64], y: &[f64]) -> f64 {
        Self::sub_two_scaled(row, a, v, b, w);
        Self::dot(row, y)
    }
    /// Applies `rotations` in order to the columns `columns` of the
    /// row-major `n x n` matrix at `z`.
    ///
    /// # Safety
    /// `z` must point to `n x n` elements, and no other thread may access
    /// the columns `columns` meanwhile.
    unsafe fn apply_rotations(z: *mut f64, n: usize, columns: std::ops::Range<usize>, rotations: &Rotations);
}

/// Plain Rust row operations for processors without AVX-512.
struct Portable;

impl RowKernels for Portable {
    fn dot(x: &[f64], y: &[f64]) -> f64 {
        // Eight partial sums, which the compiler can keep in vector lanes.
        let mut partial = [0.0f64; 8];
        let (x_chunks, y_chunks) = (x.chunks_exact(8), y.chunks_exact(8));
        let (x_tail, y_tail) = (x_chunks.remainder(), y_chunks.remainder());
        for (xc, yc) in x_chunks.zip(y_chunks) {
            for lane in 0..8 {
                partial[lane] += xc[lane] * yc[lane];
            }
        }
        for (lane, (xv, yv)) in x_tail.iter().zip(y_tail).enumerate() {
            partial[lane] += xv * yv;
        }
        ((partial[0] + partial[4]) + (partial[1] + partial[5])) + ((partial[2] + partial[6]) + (partial[3] + partial[7]))
    }

    fn sub_two_scaled(row: &mut [f64], a: f64, v: &[f64], b: f64, w: &[f64]) {
        for ((x, &vc), &wc) in row.iter_mut().zip(v).zip(w) {
            *x -= a * vc + b * wc;
        }
    }

    fn sub_scaled(row: &mut [f64], a: f64, v: &[f64]) {
        row.iter_mut().zip(v).for_each(|(x, &vc)| *x -= a * vc);
    }

    unsafe fn apply_rotations(z: *mut f64, n: usize, columns: std::ops::Range<usize>, rotations: &Rotations) {
        // Consecutive rotations of a sweep share a row, so each block of
        // columns carries that row from one rotation to the next: one load
        // and one store per element and rotation instead of two of each.
        const BLOCK: usize = 32;
        let mut j0 = columns.start;
        while j0 < columns.end {
            let width = BLOCK.min(columns.end - j0);
            let mut carry = [0.0f64; BLOCK];
            for (l, m, first) in rotations.sweeps() {
                // SAFETY: rows l..=m < n and columns j0..j0 + width lie in
                // the caller's `n x n` matrix and column range.
                let row = |i: usize| unsafe { std::slice::from_raw_parts_mut(z.add(i * n + j0), width) };
                carry[..width].copy_from_slice(row(m));
                for (step, i) in (l..m).rev().enumerate() {
                    let (c, s) = (rotations.cosines[first + step], rotations.sines[first + step]);
                    let x = row(i);
                    let y = row(i + 1);
                    for t in 0..width {
                        let xv = x[t];
                        y[t] = s * xv + c * carry[t];
                        carry[t] = c * xv - s * carry[t];
                    }
                }
                row(l).copy_from_slice(&carry[..width]);
            }
            j0 += width;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Rotations, RowKernels};

    /// AVX-512 row operations. Only [`super::symmetric_eigen`] names this
    /// type, after it has checked that the processor supports AVX-512F.
    pub(super) struct Avx512;

    /// Mask of the first `lanes` lanes (0 to 8).
    #[inline(always)]
    fn lane_mask(lanes: usize) -> __mmask8 {
        ((1u16 << lanes.min(8)) - 1) as __mmask8
    }

    impl RowKernels for Avx512 {
        fn dot(x: &[f64], y: &[f64]) -> f64 {
            assert_eq!(x.len(), y.len());
            // SAFETY: AVX-512F was detected before this type was chosen,
            // and the slices have equal lengths.
            unsafe { dot(x, y) }
        }

        fn dot4(rows: &[f64], stride: usize, y: &[f64]) -> [f64; 4] {
            assert!(rows.len() >= 3 * stride + y.len());
            // SAFETY: as in `dot`, and the four rows lie inside `rows`.
            unsafe { dot4(rows.as_ptr(), stride, y) }
        }

        fn sub_two_scaled(row: &mut [f64], a: f64, v: &[f64], b: f64, w: &[f64]) {
            assert_eq!(v.len(), row.len());
            assert_eq!(w.len(), row.len());
            // SAFETY: as in `dot`.
            unsafe { sub_two_scaled(row, a, v, b, w) }
        }

        fn sub_two_scaled_dot(row: &mut [f64], a: f64, v: &[f64], b: f64, w: &[f64], y: &[f64]) -> f64 {
            assert_eq!(v.len(), row.len());
            assert_eq!(w.len(), row.len());
            assert_eq!(y.len(), row.len());
            // SAFETY: as in `dot`.
            unsafe { sub_two_scaled_dot(row, a, v, b, w, y) }
        }

        fn reflect_rows(block: &mut [f64], stride: usize, count: usize, v: &[f64], tau: f64) {
            assert!(count == 0 || block.len() >= (count - 1) * stride + v.len());
            // SAFETY: as in `dot`, and the rows lie inside `block`.
            unsafe { reflect_rows(block.as_mut_ptr(), stride, count, v, tau) }
        }

        fn sub_scaled(row: &mut [f64], a: f64, v: &[f64]) {
            assert_eq!(v.len(), row.len());
            // SAFETY: as in `dot`.
            unsafe { sub_two_scaled(row, a, v, 0.0, v) }
        }

        unsafe fn apply_rotations(z: *mut f64, n: usize, columns: std::ops::Range<usize>, rotations: &Rotations) {
            // SAFETY: AVX-512F was detected before this type was chosen; the
            // caller guarantees the rest.
            unsafe { apply_rotations(z, n, columns, rotations) }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn dot(x: &[f64], y: &[f64]) -> f64 {
        let len = x.len();
        let (px, py) = (x.as_ptr(), y.as_ptr());
        let mut acc = [_mm512_setzero_pd(); 2];
        let mut i = 0;
        while i + 16 <= len {
            acc[0] = _mm512_fmadd_pd(_mm512_loadu_pd(px.add(i)), _mm512_loadu_pd(py.add(i)), acc[0]);
            acc[1] = _mm512_fmadd_pd(_mm512_loadu_pd(px.add(i + 8)), _mm512_loadu_pd(py.add(i + 8)), acc[1]);
            i += 16;
        }
        while i < len {
            let mask = lane_mask(len - i);
            let product = _mm512_mul_pd(_mm512_maskz_loadu_pd(mask, px.add(i)), _mm512_maskz_loadu_pd(mask, py.add(i)));
            acc[0] = _mm512_add_pd(acc[0], product);
            i += 8;
        }
        _mm512_reduce_add_pd(_mm512_add_pd(acc[0], acc[1]))
    }

    /// Four dot products that share the loads of `y`, with one register of
    /// partial sums per row.
    #[target_feature(enable = "avx512f")]
    unsafe fn dot4(rows: *const f64, stride: usize, y: &[f64]) -> [f64; 4] {
        let len = y.len();
        let py = y.as_ptr();
        let mut acc = [_mm512_setzero_pd(); 4];
        let mut i = 0;
        while i < len {
            let mask = lane_mask(len - i);
            let yv = _mm512_maskz_loadu_pd(mask, py.add(i));
            for (r, sum) in acc.iter_mut().enumerate() {
                *sum = _mm512_fmadd_pd(_mm512_maskz_loadu_pd(mask, rows.add(r * stride + i)), yv, *sum);
            }
            i += 8;
        }
        acc.map(|sum| _mm512_reduce_add_pd(sum))
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn sub_two_scaled(row: &mut [f64], a: f64, v: &[f64], b: f64, w: &[f64]) {
        update_row::<false>(row, a, v, b, w, v);
    }

    /// [`RowKernels::reflect_rows`] four rows at a time: the four dot
    /// products share the loads of `v` and overlap their latencies.
    #[target_feature(enable = "avx512f")]
    unsafe fn reflect_rows(block: *mut f64, stride: usize, count: usize, v: &[f64], tau: f64) {
        let len = v.len();
        let pv = v.as_ptr();
        let mut r = 0;
        while r < count {
            let rows = (count - r).min(4);
            let base = block.add(r * stride);
            let mut acc = [_mm512_setzero_pd(); 4];
            let mut i = 0;
            while i < len {
                let mask = lane_mask(len - i);
                let vv = _mm512_maskz_loadu_pd(mask, pv.add(i));
                for (q, sum) in acc.iter_mut().enumerate().take(rows) {
                    *sum = _mm512_fmadd_pd(_mm512_maskz_loadu_pd(mask, base.add(q * stride + i)), vv, *sum);
                }
                i += 8;
            }
            let mut scales = [_mm512_setzero_pd(); 4];
            for q in 0..rows {
                scales[q] = _mm512_set1_pd(tau * _mm512_reduce_add_pd(acc[q]));
            }
            let mut i = 0;
            while i < len {
                let mask = lane_mask(len - i);
                let vv = _mm512_maskz_loadu_pd(mask, pv.add(i));
                for (q, &scale) in scales.iter().enumerate().take(rows) {
                    let out = base.add(q * stride + i);
                    _mm512_mask_storeu_pd(out, mask, _mm512_fnmadd_pd(scale, vv, _mm512_maskz_loadu_pd(mask, out)));
                }
                i += 8;
            }
            r += rows;
        }
    }

    /// Updates `row` and returns its dot product with `y` in one pass.
    #[target_feature(enable = "avx512f")]
    unsafe fn sub_two_scaled_dot(row: &mut [f64], a: f64, v: &[f64], b: f64, w: &[f64], y: &[f64]) -> f64 {
        update_row::<true>(row, a, v, b, w, y)
    }

    /// `row -= a * v + b * w`; with `DOT`, also returns `row . y` from the
    /// same pass (0 without it).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn update_row<const DOT: bool>(row: &mut [f64], a: f64, v: &[f64], b: f64, w: &[f64], y: &[f64]) -> f64 {
        let len = row.len();
        let (pr, pv, pw, py) = (row.as_mut_ptr(), v.as_ptr(), w.as_ptr(), y.as_ptr());
        let (va, vb) = (_mm512_set1_pd(a), _mm512_set1_pd(b));
        let mut acc = _mm512_setzero_pd();
        let mut i = 0;
        while i < len {
            let mask = lane_mask(len - i);
            let x = _mm512_maskz_loadu_pd(mask, pr.add(i));
            let x = _mm512_fnmadd_pd(va, _mm512_maskz_loadu_pd(mask, pv.add(i)), x);
            let x = _mm512_fnmadd_pd(vb, _mm512_maskz_loadu_pd(mask, pw.add(i)), x);
            _mm512_mask_storeu_pd(pr.add(i), mask, x);
            if DOT {
                acc = _mm512_fmadd_pd(x, _mm512_maskz_loadu_pd(mask, py.add(i)), acc);
            }
            i += 8;
        }
        _mm512_reduce_add_pd(acc)
    }

    /// See [`RowKernels::apply_rotations`]. Columns go in blocks of four
    /// registers, and the row shared by consecutive rotations of a sweep
    /// stays in them. The carried row passes through one FMA per rotation,
    /// so four registers keep both FMA units busy.
    #[target_feature(enable = "avx512f")]
    unsafe fn apply_rotations(z: *mut f64, n: usize, columns: std::ops::Range<usize>, rotations: &Rotations) {
        const VECTORS: usize = 4;
        let mut j0 = columns.start;
        while j0 < columns.end {
            let mut masks = [0 as __mmask8; VECTORS];
            for (v, mask) in masks.iter_mut().enumerate() {
                *mask = lane_mask(columns.end.saturating_sub(j0 + 8 * v));
            }
            for (l, m, first) in rotations.sweeps() {
                let mut carry = [_mm512_setzero_pd(); VECTORS];
                for v in 0..VECTORS {
                    carry[v] = _mm512_maskz_loadu_pd(masks[v], z.add(m * n + j0 + 8 * v));
                }
                for (step, i) in (l..m).rev().enumerate() {
                    let c = _mm512_set1_pd(*rotations.cosines.get_unchecked(first + step));
                    let s = _mm512_set1_pd(*rotations.sines.get_unchecked(first + step));
                    let x_row = z.add(i * n + j0);
                    let y_row = z.add((i + 1) * n + j0);
                    for v in 0..VECTORS {
                        let x = _mm512_maskz_loadu_pd(masks[v], x_row.add(8 * v));
                        let y = _mm512_fmadd_pd(c, carry[v], _mm512_mul_pd(s, x));
                        _mm512_mask_storeu_pd(y_row.add(8 * v), masks[v], y);
                        carry[v] = _mm512_fnmadd_pd(s, carry[v], _mm512_mul_pd(c, x));
                    }
                }
                for v in 0..VECTORS {
                    _mm512_mask_storeu_pd(z.add(l * n + j0 + 8 * v), masks[v], carry[v]);
                }
            }
            j0 += 8 * VECTORS;
        }
    }
}

fn eigen_with<K: RowKernels>(mut a: Vec<f64>, n: usize) -> Result<Eigen> {
    if n == 0 {
        return Ok(Eigen { values: vec![], vectors: vec![] });
    }
    let (mut d, mut e, taus) = tridiagonalize::<K>(&mut a, n);
    let mut z = accumulate_reflectors::<K>(&a, &taus, n);
    tql2::<K>(&mut d, &mut e, &mut z, n)?;

    // Sort descending; the rows of Z follow their eigenvalues.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| d[y].total_cmp(&d[x]));
    let values = order.iter().map(|&i| d[i]).collect();
    let mut vectors = Vec::with_capacity(n * n);
    for &i in &order {
        vectors.extend_from_slice(&z[i * n..(i + 1) * n]);
    }
    Ok(Eigen { values, vectors })
}

/// Reduces `a` to tridiagonal form `T = Q^T A Q` with Householder
/// reflectors `H_k = I - tau_k v_k v_k^T`, `Q = H_0 ... H_{n-3}`.
///
/// Returns the diagonal `d`, the off-diagonal `e` (`e[k] = T[k, k+1]`,
/// `e[n-1] = 0`) and the `tau_k`. Row `k` of `a` keeps `v_k` in columns
/// `k+1..n` (its first element is 1); the diagonal is overwritten. The
/// whole trailing block is updated, both triangles, so that every loop runs
/// along a row, and step `k`'s rank-2 update of each row goes with that
/// row's product with `v_{k+1}`, so each step reads the block once.
fn tridiagonalize<K: RowKernels>(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    let mut taus = vec![0.0; n];
    if n == 0 {
        return (d, e, taus);
    }
    // p = tau_k A22 v_k for the current step; the fused pass fills `p_next`.
    let mut p = vec![0.0; n];
    let mut p_next = vec![0.0; n];
    d[0] = a[0];
    if n > 1 {
        (taus[0], e[0]) = householder::<K>(&mut a[1..n]);
        let (head, trailing) = a.split_at_mut(n);
        if taus[0] != 0.0 {
            matvec::<K>(&trailing[1..], n, &head[1..n], taus[0], &mut p[..n - 1]);
        }
    }
    for k in 0..n.saturating_sub(1) {
        let len = n - k - 1;
        let tau = taus[k];
        let (head, trailing) = a.split_at_mut((k + 1) * n);
        let v = &head[k * n + k + 1..(k + 1) * n];

        // w = p - (tau / 2)(p . v) v, and the update of the block's first row.
        let w = &mut p[..len];
        if tau != 0.0 {
            let correction = 0.5 * tau * K::dot(w, v);
            w.iter_mut().zip(v).for_each(|(pr, vr)| *pr -= correction * vr);
            K::sub_two_scaled(&mut trailing[k + 1..n], v[0], w, w[0], v);
        }
        d[k + 1] = trailing[k + 1];
        if k + 2 >= n {
            break;
        }

        // The next reflector comes from that row, and the other rows are
        // updated and multiplied by it in one pass. With the diagonal set
        // to 0, row k+1 from column k+1 on is (0, v_{k+1}).
        let (tau_next, beta) = householder::<K>(&mut trailing[k + 2..n]);
        (taus[k + 1], e[k + 1]) = (tau_next, beta);
        trailing[k + 1] = 0.0;
        let (first, rest) = trailing.split_at_mut(n);
        let y = &first[k + 1..n];
        for r in 1..len {
            let row = &mut rest[(r - 1) * n + k + 1..r * n];
            let dot = if tau != 0.0 { K::sub_two_scaled_dot(row, v[r], w, w[r], v, y) } else { K::dot(row, y) };
            p_next[r - 1] = tau_next * dot;
        }
        std::mem::swap(&mut p, &mut p_next);
    }
    (d, e, taus)
}

/// Replaces `x` by the Householder vector `v`, with `v[0] = 1`, such that
/// `(I - tau v v^T) x = beta e_1`, and returns `(tau, beta)`. `tau` is 0
/// when `x` is already a multiple of `e_1`.
fn householder<K: RowKernels>(x: &mut [f64]) -> (f64, f64) {
    let alpha = x[0];
    let sigma = K::dot(&x[1..], &x[1..]);
    x[0] = 1.0;
    if sigma == 0.0 {
        return (0.0, alpha);
    }
    let norm = (alpha * alpha + sigma).sqrt();
    let beta = if alpha <= 0.0 { norm } else { -norm };
    let scale = 1.0 / (alpha - beta);
    x[1..].iter_mut().for_each(|value| *value *= scale);
    ((beta - alpha) / beta, beta)
}

/// `out[r] = scale * (row r of the matrix at `rows`, row stride `stride`) . v`
/// for `r < out.len()`, four rows per call of [`RowKernels::dot4`].
fn matvec<K: RowKernels>(rows: &[f64], stride: usize, v: &[f64], scale: f64, out: &mut [f64]) {
    let len = v.len();
    let mut r = 0;
    while r + 4 <= out.len() {
        let sums = K::dot4(&rows[r * stride..], stride, v);
        for (o, sum) in out[r..r + 4].iter_mut().zip(sums) {
            *o = scale * sum;
        }
        r += 4;
    }
    while r < out.len() {
        out[r] = scale * K::dot(&rows[r * stride..r * stride + len], v);
        r += 1;
    }
}

/// Forms `Z = Q^T = H_{n-3} ... H_0` from the reflectors that
/// [`tridiagonalize`] left in `a`, as `Z <- Z H_k` for `k` from the last
/// reflector down, which touches only the trailing block `k+1..n`.
fn accumulate_reflectors<K: RowKernels>(a: &[f64], taus: &[f64], n: usize) -> Vec<f64> {
    let mut z = vec![0.0; n * n];
    for i in 0..n {
        z[i * n + i] = 1.0;
    }
    for k in (0..n.saturating_sub(1)).rev() {
        let tau = taus[k];
        if tau == 0.0 {
            continue;
        }
        let v = &a[k * n + k + 1..(k + 1) * n];
        let len = v.len();
        // Each row of the block is reflected on its own, while it is in L1.
        let block = &mut z[(k + 1) * n + k + 1..];
        K::reflect_rows(block, n, len, v, tau);
    }
    z
}

/// Diagonalizes the symmetric tridiagonal matrix (`d`, `e`) by the implicit
/// QL method with the shifts of EISPACK's `tql2`, applying every rotation
/// to the rows of `z`. On return `d` contains the eigenvalues (unsorted) and
/// row `i` of `z` the eigenvector of `d[i]`.
fn tql2<K: RowKernels>(d: &mut [f64], e: &mut [f64], z: &mut [f64], n: usize) -> Result<()> {
    let eps = f64::EPSILON;
    let mut rotations = Rotations::default();
    let mut f = 0.0f64;
    let mut tst1 = 0.0f64;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            let mut iterations = 0;
            loop {
                iterations += 1;
                if iterations > MAX_ITERATIONS {
                    return Err(Error::SvdFailed { rows: n, cols: n });
                }
                // Shift from the leading 2 x 2 block.
                let g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = hypot(p, 1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let h = g - d[l];
                d[l + 2..n].iter_mut().for_each(|x| *x -= h);
                f += h;

                // Implicit QL transformation from row m up to row l. The
                // rotations are recorded and applied to Z at the end.
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0f64, 1.0f64, 1.0f64);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0f64, 0.0f64);
                rotations.start_sweep(l, m);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    let g = c * e[i];
                    let h = c * p;
                    r = hypot(p, e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    rotations.cosines.push(c);
                    rotations.sines.push(s);
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
    apply_rotations::<K>(z, n, &rotations);
    Ok(())
}

/// The Givens rotations of all QL sweeps, in the order they were made.
/// Sweep `(l, m)` rotates rows `i` and `i + 1` for `i` from `m - 1` down
/// to `l`.
#[derive(Default)]
struct Rotations {
    /// `(l, m, index of the sweep's first rotation)`.
    sweeps: Vec<(usize, usize, usize)>,
    cosines: Vec<f64>,
    sines: Vec<f64>,
}

impl Rotations {
    fn start_sweep(&mut self, l: usize, m: usize) {
        self.sweeps.push((l, m, self.cosines.len()));
    }

    fn sweeps(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.sweeps.iter().copied()
    }
}

/// Columns per block of [`apply_rotations`]: four AVX-512 registers, and
/// 40 KiB of a 160-row `Z`, which stays in L1.
const ROTATION_COLUMNS: usize = 32;

/// Applies all rotations to `z`. A rotation mixes two rows column by column,
/// so blocks of columns are independent, and each block goes through every
/// sweep while it stays in L1.
///
/// NOTE: splitting the blocks over two rayon threads did not measurably
/// speed up the two-thread 300x768 decomposition (5.77 against 5.69 ms),
/// so this stays serial.
fn apply_rotations<K: RowKernels>(z: &mut [f64], n: usize, rotations: &Rotations) {
    assert_eq!(z.len(), n * n);
    for start in (0..n).step_by(ROTATION_COLUMNS) {
        let columns = start..(start + ROTATION_COLUMNS).min(n);
        // SAFETY: `z` has n x n elements and no other reference to it is live.
        unsafe { K::apply_rotations(z.as_mut_ptr(), n, columns, rotations) }
    }
}

/// `sqrt(x^2 + y^2)`, through libm's `hypot` only when the squares could
/// overflow or underflow.
#[inline(always)]
fn hypot(x: f64, y: f64) -> f64 {
    let r = (x * x + y * y).sqrt();
    if (1e-150..=1e150).contains(&r) {
        r
    } else {
        x.hypot(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, SymmetricEigen};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random_symmetric(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let x = rng.gen_range(-1.0..1.0);
                a[i * n + j] = x;
                a[j * n + i] = x;
            }
        }
        a
    }

    /// Checks `A z_i = lambda_i z_i`, `Z Z^T = I` and the descending order.
    fn check(a: &[f64], n: usize, eigen: &Eigen, tolerance: f64) {
        let scale = a.iter().fold(1.0f64, |m, x| m.max(x.abs())) * n as f64;
        for i in 0..n {
            let zi = &eigen.vectors[i * n..(i + 1) * n];
            for r in 0..n {
                let az: f64 = (0..n).map(|c| a[r * n + c] * zi[c]).sum();
                let residual = (az - eigen.values[i] * zi[r]).abs();
                assert!(residual <= tolerance * scale, "n = {n}: residual {residual} at vector {i}, row {r}");
            }
            for j in 0..n {
                let zj = &eigen.vectors[j * n..(j + 1) * n];
                let product: f64 = zi.iter().zip(zj).map(|(x, y)| x * y).sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((product - expected).abs() <= tolerance, "n = {n}: z_{i} . z_{j} = {product}");
            }
        }
        assert!(eigen.values.windows(2).all(|w| w[0] >= w[1]), "n = {n}: eigenvalues not descending");
    }

    #[test]
    fn eigen_random_sizes() {
        for n in [1, 2, 3, 7, 8, 9, 17, 48, 61, 120, 160] {
            let a = random_symmetric(n, n as u64);
            let eigen = symmetric_eigen(a.clone(), n).unwrap();
            check(&a, n, &eigen, 1e-12);
        }
    }

    #[test]
    fn eigen_portable_kernels() {
        // The fallback for processors without AVX-512, run on any processor.
        for n in [1, 5, 33, 70] {
            let a = random_symmetric(n, 100 + n as u64);
            let eigen = eigen_with::<Portable>(a.clone(), n).unwrap();
            check(&a, n, &eigen, 1e-12);
        }
    }

    #[test]
    fn eigen_values_match_nalgebra() {
        let n = 75;
        let a = random_symmetric(n, 11);
        let ours = symmetric_eigen(a.clone(), n).unwrap().values;
        let reference = SymmetricEigen::new(DMatrix::from_row_slice(n, n, &a)).eigenvalues;
        let mut reference: Vec<f64> = reference.iter().copied().collect();
        reference.sort_by(|x, y| y.total_cmp(x));
        for (x, y) in ours.iter().zip(&reference) {
            assert!((x - y).abs() < 1e-12, "eigenvalue {x}, nalgebra {y}");
        }
    }

    #[test]
    fn eigen_rank_deficient_gram() {
        // A^T A of a 5 x 12 matrix: rank 5, seven zero eigenvalues.
        let (rows, n) = (5, 12);
        let mut rng = StdRng::seed_from_u64(4);
        let b: Vec<f64> = (0..rows * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..rows).map(|r| b[r * n + i] * b[r * n + j]).sum();
            }
        }
        let eigen = symmetric_eigen(a.clone(), n).unwrap();
        check(&a, n, &eigen, 1e-12);
        assert!(eigen.values[rows..].iter().all(|x| x.abs() < 1e-13), "zero eigenvalues: {:?}", &eigen.values[rows..]);
    }

    #[test]
    fn eigen_block_diagonal() {
        // Two random blocks: the reflector of some middle step is the
        // identity while later ones are not.
        let n = 23;
        let mut a = vec![0.0; n * n];
        for (start, size, seed) in [(0, 9, 1), (9, 14, 2)] {
            let block = random_symmetric(size, seed);
            for i in 0..size {
                for j in 0..size {
                    a[(start + i) * n + start + j] = block[i * size + j];
                }
            }
        }
        let eigen = symmetric_eigen(a.clone(), n).unwrap();
        check(&a, n, &eigen, 1e-12);
    }

    #[test]
    fn eigen_diagonal_and_repeated() {
        // Already tridiagonal (every reflector is the identity) with a
        // repeated eigenvalue.
        let n = 6;
        let mut a = vec![0.0; n * n];
        for (i, value) in [3.0, -1.0, 3.0, 0.0, 2.0, 3.0].iter().enumerate() {
            a[i * n + i] = *value;
        }
        let eigen = symmetric_eigen(a.clone(), n).unwrap();
        check(&a, n, &eigen, 1e-15);
        assert_eq!(eigen.values, vec![3.0, 3.0, 3.0, 2.0, 0.0, -1.0]);
    }
}
