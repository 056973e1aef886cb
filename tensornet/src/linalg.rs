//! Dense `f64` kernels on row-major buffers: GEMM, thin SVD, thin QR, and
//! the axis swap that MPO unfoldings need.

use crate::error::{Error, Result};
use crate::eigen::symmetric_eigen;
use crate::gemm_f64::{gram_rows, product, product_into};
use nalgebra::{DMatrix, QR, SVD};
use rayon::prelude::*;

/// A strided `f64` matrix view; a transpose is a swap of strides.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f64],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: isize,
    pub col_stride: isize,
}

impl<'a> View<'a> {
    /// Creates a row-major `rows x cols` view.
    pub fn new(data: &'a [f64], rows: usize, cols: usize) -> Self {
        debug_assert!(data.len() >= rows * cols);
        View { data, rows, cols, row_stride: cols as isize, col_stride: 1 }
    }

    /// Returns the transposed view.
    pub fn t(self) -> Self {
        View { data: self.data, rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride }
    }
}

/// Work below this many multiply-adds runs on the calling thread.
const PARALLEL_MIN_FLOPS: usize = 1 << 20;

struct SendPtr(*mut f64);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer; a method call makes closures capture the whole wrapper.
    fn get(&self) -> *mut f64 {
        self.0
    }
}

/// `c = a * b + beta * c` for row-major `c` of `a.rows x b.cols`, split over
/// rayon threads along the longer side of `c` when the product is large.
pub(crate) fn dgemm(a: View<'_>, b: View<'_>, beta: f64, c: &mut [f64]) {
    assert_eq!(a.cols, b.rows, "dgemm: inner dimensions differ");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(c.len() >= m * n, "dgemm: output buffer too short");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].iter_mut().for_each(|x| *x *= beta);
        return;
    }

    let threads = rayon::current_num_threads();
    let work = m.saturating_mul(n).saturating_mul(k);
    let c_ptr = SendPtr(c.as_mut_ptr());
    let run = |r0: usize, r1: usize, c0: usize, c1: usize| {
        // SAFETY: the caller gives disjoint blocks of `c`, and the views were
        // checked above to cover `a.rows x a.cols` and `b.rows x b.cols`.
        unsafe {
            matrixmultiply::dgemm(
                r1 - r0,
                k,
                c1 - c0,
                1.0,
                a.data.as_ptr().offset(r0 as isize * a.row_stride),
                a.row_stride,
                a.col_stride,
                b.data.as_ptr().offset(c0 as isize * b.col_stride),
                b.row_stride,
                b.col_stride,
                beta,
                c_ptr.get().add(r0 * n + c0),
                n as isize,
                1,
            )
        }
    };
    if threads <= 1 || work < PARALLEL_MIN_FLOPS {
        run(0, m, 0, n);
        return;
    }

    let split_rows = m >= n;
    let len = if split_rows { m } else { n };
    let blocks = threads.min(len.div_ceil(8)).max(1);
    let step = len.div_ceil(blocks).div_ceil(8) * 8;
    let starts: Vec<usize> = (0..len).step_by(step).collect();
    starts.into_par_iter().for_each(|start| {
        let end = (start + step).min(len);
        if split_rows {
            run(start, end, 0, n);
        } else {
            run(0, m, start, end);
        }
    });
}

/// Rows per block of [`gram`]; a multiple of the dgemm kernel's 8-row tile.
const GRAM_BLOCK: usize = 64;

/// Returns the symmetric `a * a^T` (`a.rows x a.rows`, row-major).
///
/// Only the blocks on and below the diagonal are multiplied, in parallel,
/// and then mirrored: about half the multiply-adds of a general product,
/// as BLAS `syrk` does.
pub(crate) fn gram(a: View<'_>) -> Vec<f64> {
    let r = a.rows;
    if r <= 2 * GRAM_BLOCK {
        return matmul(a, a.t());
    }
    let mut g = vec![0.0f64; r * r];
    let blocks = r.div_ceil(GRAM_BLOCK);
    let pairs: Vec<(usize, usize)> = (0..blocks).flat_map(|bi| (0..=bi).map(move |bj| (bi, bj))).collect();
    let g_ptr = SendPtr(g.as_mut_ptr());
    let k = a.cols;
    pairs.into_par_iter().for_each(|(bi, bj)| {
        let (r0, r1) = (bi * GRAM_BLOCK, ((bi + 1) * GRAM_BLOCK).min(r));
        let (c0, c1) = (bj * GRAM_BLOCK, ((bj + 1) * GRAM_BLOCK).min(r));
        // SAFETY: each pair writes its own block of `g`; the views cover
        // rows r0..r1 and c0..c1 of `a`, which has `r` rows.
        unsafe {
            matrixmultiply::dgemm(
                r1 - r0,
                k,
                c1 - c0,
                1.0,
                a.data.as_ptr().offset(r0 as isize * a.row_stride),
                a.row_stride,
                a.col_stride,
                a.data.as_ptr().offset(c0 as isize * a.row_stride),
                a.col_stride,
                a.row_stride,
                0.0,
                g_ptr.get().add(r0 * r + c0),
                r as isize,
                1,
            )
        }
    });
    for i in 0..r {
        for j in i + 1..r {
            g[i * r + j] = g[j * r + i];
        }
    }
    g
}

/// Returns `a * b` as a new row-major buffer.
pub(crate) fn matmul(a: View<'_>, b: View<'_>) -> Vec<f64> {
    let mut c = vec![0.0; a.rows * b.cols];
    dgemm(a, b, 0.0, &mut c);
    c
}

/// Reorders a row-major `[outer, p, q, inner]` array into `[outer, q, p, inner]`.
pub(crate) fn swap_middle<T: Copy + Send + Sync>(src: &[T], outer: usize, p: usize, q: usize, inner: usize, dst: &mut [T]) {
    let block = p * inner;
    if block == 0 || outer * q == 0 {
        return;
    }
    assert!(src.len() >= outer * p * q * inner, "swap_middle: source buffer too short");
    assert!(dst.len() >= outer * q * block, "swap_middle: destination buffer too short");
    let fill = |index: usize, row: &mut [T]| {
        let (o, qq) = (index / q, index % q);
        for pp in 0..p {
            let from = ((o * p + pp) * q + qq) * inner;
            row[pp * inner..(pp + 1) * inner].copy_from_slice(&src[from..from + inner]);
        }
    };
    let dst = &mut dst[..outer * q * block];
    // With one thread, a parallel iterator would only move the work, and
    // the output with it, to the cache of a rayon worker thread.
    if dst.len() < 1 << 15 || rayon::current_num_threads() <= 1 {
        dst.chunks_mut(block).enumerate().for_each(|(i, row)| fill(i, row));
    } else {
        dst.par_chunks_mut(block).enumerate().for_each(|(i, row)| fill(i, row));
    }
}

/// Algorithm for the thin SVD of an unfolding.
///
/// Every method returns the same factorization up to rounding and the signs
/// of singular-vector pairs. [`SvdMethod::Auto`] is the one to use; the
/// others exist so that benchmarks can compare them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SvdMethod {
    /// [`SvdMethod::Gram`] for every shape. It was 6.7 to 12 times faster
    /// than [`SvdMethod::Qr`] and 13 to 23 times faster than
    /// [`SvdMethod::Direct`] on the benchmark shapes (`benches/mpo.rs`, 2
    /// threads, `docs/benchmarks.md`).
    #[default]
    Auto,
    /// nalgebra's one-sided bidiagonalization SVD on the whole unfolding.
    Direct,
    /// nalgebra's Householder QR of the unfolding (or of its transpose when
    /// wide), then nalgebra's SVD of the small triangular factor.
    Qr,
    /// The `f64` Gram matrix of the short side, then the symmetric
    /// eigendecomposition of `crate::eigen` (Householder tridiagonalization
    /// and implicit QL). On processors with AVX-512 the products run on the
    /// kernels of `crate::gemm_f64`, elsewhere on matrixmultiply's dgemm.
    /// For an `m x n` matrix with `m <= n` the left singular vectors are the
    /// eigenvectors of `A A^T` and `S V^T = U^T A` needs no division. For
    /// `m > n`, `U = A V S^-1`, whose columns lose orthogonality in
    /// proportion to `(s_max / s_j)^2 * 1e-16`; `U S V^T` still reproduces
    /// `A` to rounding.
    Gram,
}

/// A thin SVD `A = U S V^T` of an `m x n` matrix, with `k = min(m, n)`.
pub(crate) struct ThinSvd {
    /// `m x k`, row-major.
    pub u: Vec<f64>,
    /// Singular values, descending.
    pub s: Vec<f64>,
    /// `S V^T`, `k x n`, row-major.
    pub svt: Vec<f64>,
    pub m: usize,
    pub n: usize,
}

impl ThinSvd {
    pub fn k(&self) -> usize {
        self.s.len()
    }

    /// Splits into the first `r` columns of `U` (row-major `m x r`) and the
    /// first `r` rows of `S V^T` (row-major `r x n`), copying only when `r < k`.
    pub fn into_truncated(self, r: usize) -> (Vec<f64>, Vec<f64>) {
        let k = self.k();
        let u = if r == k {
            self.u
        } else {
            let mut leading_columns = Vec::with_capacity(self.m * r);
            for row in self.u.chunks(k) {
                leading_columns.extend_from_slice(&row[..r]);
            }
            leading_columns
        };
        let mut svt = self.svt;
        svt.truncate(r * self.n);
        (u, svt)
    }
}

/// Computes the thin SVD of the row-major `m x n` matrix `a`.
pub(crate) fn thin_svd(a: &[f64], m: usize, n: usize, method: SvdMethod) -> Result<ThinSvd> {
    thin_svd_reusing(a, m, n, method, Vec::new())
}

/// [`thin_svd`] that may store `U` or `S V^T` in the allocation of
/// `buffer`, whose contents are dropped. The sweep passes the buffer it no longer needs, so
/// that large unfoldings do not need fresh memory at every step.
pub(crate) fn thin_svd_reusing(a: &[f64], m: usize, n: usize, method: SvdMethod, buffer: Vec<f64>) -> Result<ThinSvd> {
    debug_assert_eq!(a.len(), m * n);
    if m == 0 || n == 0 {
        return Ok(ThinSvd { u: vec![], s: vec![], svt: vec![], m, n });
    }
    match method {
        SvdMethod::Auto | SvdMethod::Gram => gram_svd(a, m, n, buffer),
        SvdMethod::Direct => direct_svd(a, m, n),
        SvdMethod::Qr => qr_svd(a, m, n),
    }
}

fn to_row_major(matrix: &DMatrix<f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(matrix.nrows() * matrix.ncols());
    for r in 0..matrix.nrows() {
        out.extend(matrix.row(r).iter());
    }
    out
}

fn direct_svd(a: &[f64], m: usize, n: usize) -> Result<ThinSvd> {
    let matrix = DMatrix::from_row_slice(m, n, a);
    let svd = SVD::try_new(matrix, true, true, f64::EPSILON, 0).ok_or(Error::SvdFailed { rows: m, cols: n })?;
    let u = to_row_major(svd.u.as_ref().expect("requested U"));
    let vt = svd.v_t.as_ref().expect("requested V^T");
    let s: Vec<f64> = svd.singular_values.iter().copied().collect();
    let mut svt = to_row_major(vt);
    scale_rows(&mut svt, n, &s);
    Ok(ThinSvd { u, s, svt, m, n })
}

fn qr_svd(a: &[f64], m: usize, n: usize) -> Result<ThinSvd> {
    if m >= n {
        // A = Q R and R = Ur S Vt give U = Q Ur.
        let (q, r) = thin_qr(a, m, n);
        let small = direct_svd(&r, n, n)?;
        let u = matmul(View::new(&q, m, n), View::new(&small.u, n, n));
        Ok(ThinSvd { u, s: small.s, svt: small.svt, m, n })
    } else {
        // A^T = Q R, so A = R^T Q^T; with R^T = Ur S Vt, A = Ur S (Q Vt^T)^T.
        let at = transpose(a, m, n);
        let (q, r) = thin_qr(&at, n, m);
        let rt = transpose(&r, m, m);
        let small = direct_svd(&rt, m, m)?;
        let svt = matmul(View::new(&small.svt, m, m), View::new(&q, n, m).t());
        Ok(ThinSvd { u: small.u, s: small.s, svt, m, n })
    }
}

fn gram_svd(a: &[f64], m: usize, n: usize, buffer: Vec<f64>) -> Result<ThinSvd> {
    let view = View::new(a, m, n);
    if m <= n {
        // The rows of Z are the left singular vectors, so S V^T = U^T A = Z A.
        let (s, z) = singular_from_eigen(gram_rows(a, m, n), m)?;
        let svt = product_into(View::new(&z, m, m), view, false, buffer);
        Ok(ThinSvd { u: transpose(&z, m, m), s, svt, m, n })
    } else {
        // The rows of Z are the right singular vectors: S V^T = S Z.
        let (s, z) = singular_from_eigen(product(view.t(), view, true), n)?;
        // Components at rounding level relative to the largest singular
        // value get a zero column in U: A V has no direction there to keep.
        let floor = s[0] * f64::EPSILON * (m.max(n) as f64);
        let inverse: Vec<f64> = s.iter().map(|&x| if x > floor { 1.0 / x } else { 0.0 }).collect();
        // U = A (V S^-1): scaling the n x n factor is cheaper than scaling U.
        let mut v_scaled = transpose(&z, n, n);
        scale_cols(&mut v_scaled, n, &inverse);
        let u = product_into(view, View::new(&v_scaled, n, n), false, buffer);
        let mut svt = z;
        scale_rows(&mut svt, n, &s);
        Ok(ThinSvd { u, s, svt, m, n })
    }
}

/// Eigendecomposition of the symmetric `k x k` Gram matrix `gram`, returned
/// as singular values `sqrt(max(lambda, 0))` in descending order and the
/// matching unit eigenvectors as the rows of a row-major `k x k` buffer.
fn singular_from_eigen(gram: Vec<f64>, k: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let eigen = symmetric_eigen(gram, k)?;
    let s = eigen.values.iter().map(|&x| x.max(0.0).sqrt()).collect();
    Ok((s, eigen.vectors))
}

/// Computes a thin QR of the row-major `m x n` matrix `a` with Householder
/// reflections: `Q` is `m x k` with orthonormal columns and `R` is `k x n`,
/// with `k = min(m, n)`.
pub(crate) fn thin_qr(a: &[f64], m: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
    let qr = QR::new(DMatrix::from_row_slice(m, n, a));
    (to_row_major(&qr.q()), to_row_major(&qr.r()))
}

/// Computes a thin LQ of the row-major `m x n` matrix `a`: `L` is `m x k`
/// and `Q` is `k x n` with orthonormal rows, with `k = min(m, n)`.
pub(crate) fn thin_lq(a: &[f64], m: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
    let (q, r) = thin_qr(&transpose(a, m, n), n, m);
    let k = m.min(n);
    (transpose(&r, k, m), transpose(&q, n, k))
}

pub(crate) fn transpose(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    swap_middle(a, 1, m, n, 1, &mut out);
    out
}

/// Multiplies row `r` of the row-major `? x cols` buffer by `factors[r]`.
pub(crate) fn scale_rows(a: &mut [f64], cols: usize, factors: &[f64]) {
    for (row, &f) in a.chunks_mut(cols).zip(factors) {
        row.iter_mut().for_each(|x| *x *= f);
    }
}

/// Multiplies column `c` of the row-major `? x cols` buffer by `factors[c]`.
pub(crate) fn scale_cols(a: &mut [f64], cols: usize, factors: &[f64]) {
    for row in a.chunks_mut(cols) {
        row.iter_mut().zip(factors).for_each(|(x, &f)| *x *= f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random(m: usize, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..m * n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn svd_methods_reconstruct() {
        for (m, n) in [(7, 40), (40, 7), (13, 13), (300, 20)] {
            let a = random(m, n, (m * n) as u64);
            for method in [SvdMethod::Direct, SvdMethod::Qr, SvdMethod::Gram] {
                let svd = thin_svd(&a, m, n, method).unwrap();
                let k = m.min(n);
                let back = matmul(View::new(&svd.u, m, k), View::new(&svd.svt, k, n));
                assert!(max_abs_diff(&back, &a) < 1e-10, "{method:?} {m}x{n}");
                assert!(svd.s.windows(2).all(|w| w[0] >= w[1]), "{method:?} {m}x{n} order");
            }
        }
    }

    #[test]
    fn svd_methods_agree_on_values() {
        let (m, n) = (50, 30);
        let a = random(m, n, 3);
        let direct = thin_svd(&a, m, n, SvdMethod::Direct).unwrap().s;
        let gram = thin_svd(&a, m, n, SvdMethod::Gram).unwrap().s;
        let qr = thin_svd(&a, m, n, SvdMethod::Qr).unwrap().s;
        assert!(max_abs_diff(&direct, &gram) < 1e-10);
        assert!(max_abs_diff(&direct, &qr) < 1e-10);
    }

    #[test]
    fn gram_svd_rank_deficient() {
        // Rank 1: the outer product of (1..=6) and (1, -1, 2).
        let (m, n) = (6, 3);
        let a: Vec<f64> = (0..m).flat_map(|i| [1.0, -1.0, 2.0].map(|c| c * (i + 1) as f64)).collect();
        let svd = thin_svd(&a, m, n, SvdMethod::Gram).unwrap();
        let back = matmul(View::new(&svd.u, m, n), View::new(&svd.svt, n, n));
        assert!(max_abs_diff(&back, &a) < 1e-10);
        // ||(1..=6)|| * ||(1,-1,2)|| = sqrt(91) * sqrt(6).
        assert!((svd.s[0] - (91.0f64 * 6.0).sqrt()).abs() < 1e-10);
    }

    #[test]
    fn qr_and_lq_are_orthonormal() {
        let a = random(9, 4, 5);
        let (q, r) = thin_qr(&a, 9, 4);
        let qtq = matmul(View::new(&q, 9, 4).t(), View::new(&q, 9, 4));
        let eye: Vec<f64> = (0..16).map(|i| if i % 5 == 0 { 1.0 } else { 0.0 }).collect();
        assert!(max_abs_diff(&qtq, &eye) < 1e-12);
        assert!(max_abs_diff(&matmul(View::new(&q, 9, 4), View::new(&r, 4, 4)), &a) < 1e-12);

        let b = random(4, 9, 6);
        let (l, q) = thin_lq(&b, 4, 9);
        let qqt = matmul(View::new(&q, 4, 9), View::new(&q, 4, 9).t());
        assert!(max_abs_diff(&qqt, &eye) < 1e-12);
        assert!(max_abs_diff(&matmul(View::new(&l, 4, 4), View::new(&q, 4, 9)), &b) < 1e-12);
    }

    #[test]
    fn gram_matches_product() {
        // 300 rows: five blocks of 64, the last one partial.
        let a = random(300, 70, 9);
        let view = View::new(&a, 300, 70);
        assert!(max_abs_diff(&gram(view), &matmul(view, view.t())) < 1e-10);
        assert!(max_abs_diff(&gram(view.t()), &matmul(view.t(), view)) < 1e-10);
    }

    #[test]
    fn swap_middle_small() {
        // [1, 2, 3, 1] -> [1, 3, 2, 1] is a 2x3 transpose.
        let src = [0, 1, 2, 3, 4, 5];
        let mut dst = [0; 6];
        swap_middle(&src, 1, 2, 3, 1, &mut dst);
        assert_eq!(dst, [0, 3, 1, 4, 2, 5]);
    }

    #[test]
    fn dgemm_parallel_matches_serial() {
        let (m, k, n) = (200, 90, 130);
        let a = random(m, k, 1);
        let b = random(k, n, 2);
        let mut serial = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                serial[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        let c = matmul(View::new(&a, m, k), View::new(&b, k, n));
        assert!(max_abs_diff(&c, &serial) < 1e-10);
    }
}
