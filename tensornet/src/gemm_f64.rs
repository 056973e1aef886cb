//! `f64` products of the Gram-matrix SVD: `C = op(A) B` with `B` row-major,
//! and the Gram matrix `A A^T` of a wide row-major matrix.
//!
//! On processors with AVX-512 both run on register-tiled kernels: the
//! product copies strips of `B` into an aligned buffer and reads `A` in
//! place, and the Gram kernel reads `A` in place. Other processors take
//! matrixmultiply's dgemm through [`crate::linalg::dgemm`] and
//! [`crate::linalg::gram`].
//!
//! Every output element is a sum over the depth in an order that depends
//! only on the shapes, and threads split the output without splitting any
//! sum, so results do not change with the thread count.

use crate::linalg::{dgemm, gram, View};

/// Products below this many multiply-adds run on the calling thread,
/// because handing work to a rayon worker costs microseconds.
const PARALLEL_MIN_MULTIPLY_ADDS: usize = 1 << 20;

/// Output pointer that rayon tasks can share. Each task writes a disjoint
/// set of elements.
#[derive(Clone, Copy)]
struct OutPtr(*mut f64);
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer; a method call makes closures capture the whole wrapper.
    fn get(self) -> *mut f64 {
        self.0
    }
}

/// Splits `0..len` into at most `parts` contiguous ranges whose lengths
/// differ by at most one.
fn split_range(len: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, len.max(1));
    (0..parts).map(|t| t * len / parts..(t + 1) * len / parts).filter(|r| !r.is_empty()).collect()
}

/// Returns `a * b` (`a.rows x b.cols`, row-major).
///
/// `a` and `b` may have any strides, so a transposed view costs nothing:
/// the AVX-512 kernel reads `a` in place and copies `b` into packed strips
/// anyway. With
/// `lower_only` set, `a * b` must be square and only the elements on and
/// below the diagonal are computed, then mirrored above it: a symmetric
/// product such as `A^T A` for half the multiply-adds.
pub(crate) fn product(a: View<'_>, b: View<'_>, lower_only: bool) -> Vec<f64> {
    product_into(a, b, lower_only, Vec::new())
}

/// Computes [`product`] into the allocation of `buffer`, whose contents are
/// dropped.
pub(crate) fn product_into(a: View<'_>, b: View<'_>, lower_only: bool, mut buffer: Vec<f64>) -> Vec<f64> {
    assert_eq!(a.cols, b.rows, "product: inner dimensions differ");
    let (m, n) = (a.rows, b.cols);
    assert!(!lower_only || m == n, "product: lower_only needs a square product, got {m}x{n}");
    buffer.clear();

    #[cfg(target_arch = "x86_64")]
    if m > 0 && n > 0 && a.cols > 0 && std::arch::is_x86_feature_detected!("avx512f") {
        buffer.reserve(m * n);
        // SAFETY: the processor has AVX-512F, the views cover their shapes
        // (`View::new` checks that), and `buffer` has capacity for `m x n`
        // elements. The kernel writes every element on and below the
        // diagonal, and every element when `lower_only` is off, so after
        // the mirror all `m x n` elements are initialized.
        unsafe {
            avx512::product(a, b, lower_only, buffer.as_mut_ptr());
            if lower_only {
                mirror_lower(buffer.as_mut_ptr(), m);
            }
            buffer.set_len(m * n);
        }
        return buffer;
    }
    buffer.resize(m * n, 0.0);
    dgemm(a, b, 0.0, &mut buffer);
    buffer
}

/// Returns the Gram matrix `a a^T` (`rows x rows`, row-major) of the
/// row-major `rows x cols` matrix `a`.
pub(crate) fn gram_rows(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    assert!(a.len() >= rows * cols, "gram_rows: a has {} elements, fewer than {rows} x {cols}", a.len());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        let mut g = vec![0.0f64; rows * rows];
        // SAFETY: the processor has AVX-512F, `a` covers `rows x cols` and
        // `g` has `rows x rows` elements.
        unsafe {
            avx512::gram_rows(a, rows, cols, &mut g);
            mirror_lower(g.as_mut_ptr(), rows);
        }
        return g;
    }
    gram(View::new(a, rows, cols))
}

/// Copies the strict lower triangle of the row-major `n x n` matrix at `c`
/// onto its upper triangle.
///
/// # Safety
/// `c` must be valid for `n x n` writes, with the lower triangle initialized.
unsafe fn mirror_lower(c: *mut f64, n: usize) {
    for i in 0..n {
        for j in i + 1..n {
            *c.add(i * n + j) = *c.add(j * n + i);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use rayon::prelude::*;

    use super::{split_range, OutPtr, PARALLEL_MIN_MULTIPLY_ADDS};
    use crate::linalg::View;

    /// Rows per register tile of [`product`]: 6 rows x 4 registers = 24
    /// accumulators of the 32 AVX-512 registers, leaving room for a row of
    /// `B` and the broadcast element of `A`.
    const TILE_ROWS: usize = 6;
    /// Registers of 8 columns per tile of [`product`].
    const TILE_VECTORS: usize = 4;
    const TILE_COLS: usize = 8 * TILE_VECTORS;
    /// Rows of `B` per packed strip: 128 x 32 columns is 32 KiB, which
    /// stays in L1 while the row tiles read it.
    const DEPTH_BLOCK: usize = 128;
    /// Columns of `A` per pass of [`gram_rows`] (4 KiB of each row).
    const GRAM_DEPTH_BLOCK: usize = 512;
    /// Rows per tile side of [`gram_rows`]: 4 x 4 accumulators.
    const GRAM_TILE: usize = 4;

    /// Mask of the first `lanes` lanes (1 to 8).
    #[inline(always)]
    fn lane_mask(lanes: usize) -> __mmask8 {
        debug_assert!((1..=8).contains(&lanes));
        (0xffu16 >> (8 - lanes)) as __mmask8
    }

    /// Computes `c` (`a.rows x b.cols`, row-major) `= a * b`; with
    /// `lower_only`, only the tiles that reach the diagonal or below it.
    ///
    /// # Safety
    /// AVX-512F must be available, the views must cover their shapes, and
    /// `c` must be valid for `a.rows x b.cols` writes.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn product(a: View<'_>, b: View<'_>, lower_only: bool, c: *mut f64) {
        let (m, n, k) = (a.rows, b.cols, a.cols);
        let c_ptr = OutPtr(c);
        let tiles = m.div_ceil(TILE_ROWS);
        let threads = rayon::current_num_threads();
        let work = if lower_only { m * n * k / 2 } else { m * n * k };
        let run = |rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
            // SAFETY: the caller's guarantees, and every task writes its own rows or columns.
            unsafe { product_block(a, b, lower_only, rows, cols, c_ptr) }
        };
        if threads <= 1 || work < PARALLEL_MIN_MULTIPLY_ADDS {
            run(0..m, 0..n);
        } else if lower_only {
            // Row tile t of the triangle costs about t + 1 units, so split
            // the tiles where the cumulative cost crosses equal shares.
            let total = tiles * (tiles + 1) / 2;
            let mut bounds = vec![0usize];
            for part in 1..threads {
                let target = total * part / threads;
                let t = (0..tiles).find(|&t| (t + 1) * (t + 2) / 2 > target).unwrap_or(tiles);
                bounds.push(t.max(*bounds.last().unwrap()));
            }
            bounds.push(tiles);
            let ranges: Vec<_> = bounds.windows(2).filter(|w| w[0] < w[1]).map(|w| w[0]..w[1]).collect();
            ranges.into_par_iter().for_each(|t| run(t.start * TILE_ROWS..(t.end * TILE_ROWS).min(m), 0..n));
        } else if tiles >= threads * 2 {
            split_range(tiles, threads)
                .into_par_iter()
                .for_each(|t| run(t.start * TILE_ROWS..(t.end * TILE_ROWS).min(m), 0..n));
        } else {
            let strips = n.div_ceil(TILE_COLS);
            split_range(strips, threads)
                .into_par_iter()
                .for_each(|s| run(0..m, s.start * TILE_COLS..(s.end * TILE_COLS).min(n)));
        }
    }

    /// Computes rows `rows` and columns `cols` of `c = a * b` (row stride
    /// `b.cols`). Each strip of `TILE_COLS` columns of a depth block of `B`
    /// is copied to a contiguous, 64-byte aligned buffer that stays in L1
    /// while every row tile reads it.
    #[target_feature(enable = "avx512f")]
    unsafe fn product_block(
        a: View<'_>,
        b: View<'_>,
        lower_only: bool,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        c: OutPtr,
    ) {
        let (n, k) = (b.cols, a.cols);
        let depth_block = DEPTH_BLOCK.min(k);
        let mut packed = vec![_mm512_setzero_pd(); depth_block * TILE_VECTORS];
        for p0 in (0..k).step_by(depth_block) {
            let depth = depth_block.min(k - p0);
            for j0 in cols.clone().step_by(TILE_COLS) {
                let width = TILE_COLS.min(cols.end - j0);
                let vectors = width.div_ceil(8);
                let last_mask = lane_mask(width - 8 * (vectors - 1));
                // Lower triangle: skip the row tiles that end above column j0.
                let skipped_tiles = if lower_only { j0.saturating_sub(rows.start) / TILE_ROWS } else { 0 };
                let first_row = rows.start + skipped_tiles * TILE_ROWS;
                if first_row >= rows.end {
                    continue;
                }
                pack_strip(b, p0, depth, j0, vectors, last_mask, &mut packed);
                for i0 in (first_row..rows.end).step_by(TILE_ROWS) {
                    let args = TileArgs {
                        depth,
                        a: a.data.as_ptr().offset(i0 as isize * a.row_stride + p0 as isize * a.col_stride),
                        a_row_stride: a.row_stride,
                        a_col_stride: a.col_stride,
                        b: packed.as_ptr() as *const f64,
                        c: c.get().add(i0 * n + j0),
                        c_row_stride: n,
                        vectors,
                        last_mask,
                        accumulate: p0 > 0,
                    };
                    tile_dispatch(TILE_ROWS.min(rows.end - i0), &args);
                }
            }
        }
    }

    /// Copies rows `p0..p0 + depth` and `vectors` registers of columns from
    /// `j0` of `b` into `packed`, `TILE_VECTORS` registers per row, with
    /// zeros past the last column.
    #[target_feature(enable = "avx512f")]
    unsafe fn pack_strip(
        b: View<'_>,
        p0: usize,
        depth: usize,
        j0: usize,
        vectors: usize,
        last_mask: __mmask8,
        packed: &mut [__m512d],
    ) {
        if b.col_stride == 1 {
            for p in 0..depth {
                let row = b.data.as_ptr().offset((p0 + p) as isize * b.row_stride + j0 as isize);
                for v in 0..vectors {
                    let mask = if v + 1 == vectors { last_mask } else { 0xff };
                    packed[p * TILE_VECTORS + v] = _mm512_maskz_loadu_pd(mask, row.add(8 * v));
                }
            }
            return;
        }
        // A transposed or otherwise strided `b`: read each column along the
        // depth (contiguous when `b` is a transposed row-major matrix) and
        // scatter it into its lane.
        let width = 8 * (vectors - 1) + last_mask.count_ones() as usize;
        packed[..depth * TILE_VECTORS].fill(_mm512_setzero_pd());
        let lanes = packed.as_mut_ptr() as *mut f64;
        for col in 0..width {
            let source = b.data.as_ptr().offset((j0 + col) as isize * b.col_stride + p0 as isize * b.row_stride);
            for p in 0..depth {
                *lanes.add(p * TILE_COLS + col) = *source.offset(p as isize * b.row_stride);
            }
        }
    }

    /// Operands of one register tile: `C[r, v] (+)= sum_p A[r, p] B[p, v]`
    /// for `rows` rows and `vectors` registers of 8 columns, with `B`
    /// packed by [`pack_strip`].
    struct TileArgs {
        depth: usize,
        a: *const f64,
        a_row_stride: isize,
        a_col_stride: isize,
        b: *const f64,
        c: *mut f64,
        c_row_stride: usize,
        vectors: usize,
        /// Lanes of the last register that are inside the matrix.
        last_mask: __mmask8,
        /// Adds to `C` instead of overwriting it.
        accumulate: bool,
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn tile_dispatch(rows: usize, t: &TileArgs) {
        macro_rules! by_vectors {
            ($r:literal) => {
                match t.vectors {
                    1 => tile::<$r, 1>(t),
                    2 => tile::<$r, 2>(t),
                    3 => tile::<$r, 3>(t),
                    _ => tile::<$r, 4>(t),
                }
            };
        }
        match rows {
            1 => by_vectors!(1),
            2 => by_vectors!(2),
            3 => by_vectors!(3),
            4 => by_vectors!(4),
            5 => by_vectors!(5),
            _ => by_vectors!(6),
        }
    }

    /// Computes one register tile of `R` rows and `V` registers; see [`TileArgs`].
    #[inline(always)]
    unsafe fn tile<const R: usize, const V: usize>(t: &TileArgs) {
        let mut acc = [[_mm512_setzero_pd(); V]; R];
        let mut a_col = t.a;
        let mut b_row = t.b;
        for _ in 0..t.depth {
            let mut bv = [_mm512_setzero_pd(); V];
            for (v, reg) in bv.iter_mut().enumerate() {
                *reg = _mm512_load_pd(b_row.add(8 * v));
            }
            for (r, acc_row) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_pd(*a_col.offset(r as isize * t.a_row_stride));
                for v in 0..V {
                    acc_row[v] = _mm512_fmadd_pd(x, bv[v], acc_row[v]);
                }
            }
            a_col = a_col.offset(t.a_col_stride);
            b_row = b_row.add(8 * TILE_VECTORS);
        }
        for (r, acc_row) in acc.iter().enumerate() {
            let c_row = t.c.add(r * t.c_row_stride);
            for (v, &sum) in acc_row.iter().enumerate() {
                let mask = if v + 1 == V { t.last_mask } else { 0xff };
                let out = c_row.add(8 * v);
                let value = if t.accumulate { _mm512_add_pd(_mm512_maskz_loadu_pd(mask, out), sum) } else { sum };
                _mm512_mask_storeu_pd(out, mask, value);
            }
        }
    }

    /// Computes the lower triangle (and some elements above it) of
    /// `g = a a^T` for the row-major `rows x cols` matrix `a`.
    ///
    /// # Safety
    /// AVX-512F must be available, `a` must cover `rows x cols` and `g`
    /// must have `rows x rows` elements.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gram_rows(a: &[f64], rows: usize, cols: usize, g: &mut [f64]) {
        let tiles = rows.div_ceil(GRAM_TILE);
        let g_ptr = OutPtr(g.as_mut_ptr());
        let pairs: Vec<(usize, usize)> = (0..tiles).flat_map(|i| (0..=i).map(move |j| (i, j))).collect();
        let run = |chunk: &[(usize, usize)]| {
            for p0 in (0..cols).step_by(GRAM_DEPTH_BLOCK) {
                let depth = GRAM_DEPTH_BLOCK.min(cols - p0);
                for &(ti, tj) in chunk {
                    let (i0, j0) = (ti * GRAM_TILE, tj * GRAM_TILE);
                    let (ri, rj) = (GRAM_TILE.min(rows - i0), GRAM_TILE.min(rows - j0));
                    // SAFETY: rows i0..i0+ri and j0..j0+rj of `a` exist, and
                    // each pair writes its own block of `g`.
                    unsafe { gram_tile_dispatch(a.as_ptr().add(p0), cols, i0, ri, j0, rj, depth, g_ptr.get(), rows, p0 > 0) };
                }
            }
        };
        let threads = rayon::current_num_threads();
        if threads <= 1 || rows * rows * cols / 2 < PARALLEL_MIN_MULTIPLY_ADDS {
            run(&pairs);
        } else {
            let chunks = split_range(pairs.len(), threads);
            chunks.into_par_iter().for_each(|r| run(&pairs[r]));
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn gram_tile_dispatch(
        a: *const f64,
        lda: usize,
        i0: usize,
        ri: usize,
        j0: usize,
        rj: usize,
        depth: usize,
        g: *mut f64,
        ldg: usize,
        accumulate: bool,
    ) {
        macro_rules! by_cols {
            ($r:literal) => {
                match rj {
                    1 => gram_tile::<$r, 1>(a, lda, i0, j0, depth, g, ldg, accumulate),
                    2 => gram_tile::<$r, 2>(a, lda, i0, j0, depth, g, ldg, accumulate),
                    3 => gram_tile::<$r, 3>(a, lda, i0, j0, depth, g, ldg, accumulate),
                    _ => gram_tile::<$r, 4>(a, lda, i0, j0, depth, g, ldg, accumulate),
                }
            };
        }
        match ri {
            1 => by_cols!(1),
            2 => by_cols!(2),
            3 => by_cols!(3),
            _ => by_cols!(4),
        }
    }

    /// `g[i0 + r, j0 + s] (+)= dot(a[i0 + r, ..depth], a[j0 + s, ..depth])`
    /// with 8-lane partial sums, reduced at the end of the block.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    #[inline(always)]
    unsafe fn gram_tile<const RI: usize, const RJ: usize>(
        a: *const f64,
        lda: usize,
        i0: usize,
        j0: usize,
        depth: usize,
        g: *mut f64,
        ldg: usize,
        accumulate: bool,
    ) {
        let mut acc = [[_mm512_setzero_pd(); RJ]; RI];
        let mut p = 0;
        while p < depth {
            let mask = lane_mask((depth - p).min(8));
            let mut x = [_mm512_setzero_pd(); RI];
            for (r, reg) in x.iter_mut().enumerate() {
                *reg = _mm512_maskz_loadu_pd(mask, a.add((i0 + r) * lda + p));
            }
            for s in 0..RJ {
                let y = _mm512_maskz_loadu_pd(mask, a.add((j0 + s) * lda + p));
                for r in 0..RI {
                    acc[r][s] = _mm512_fmadd_pd(x[r], y, acc[r][s]);
                }
            }
            p += 8;
        }
        for (r, acc_row) in acc.iter().enumerate() {
            for (s, &sum) in acc_row.iter().enumerate() {
                let out = g.add((i0 + r) * ldg + j0 + s);
                let value = _mm512_reduce_add_pd(sum);
                *out = if accumulate { *out + value } else { value };
            }
        }
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

    /// Naive triple loop over a strided view and a row-major `b`.
    fn naive(a: View<'_>, b: View<'_>) -> Vec<f64> {
        let mut c = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut sum = 0.0;
                for p in 0..a.cols {
                    let x = a.data[(i as isize * a.row_stride + p as isize * a.col_stride) as usize];
                    sum += x * b.data[p * b.cols + j];
                }
                c[i * b.cols + j] = sum;
            }
        }
        c
    }

    fn assert_close(got: &[f64], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (index, (x, y)) in got.iter().zip(want).enumerate() {
            assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{what}: element {index} is {x}, expected {y}");
        }
    }

    #[test]
    fn product_matches_naive() {
        // Odd sizes give partial row tiles, partial registers and partial
        // depth blocks, and 600 spans five 128-row depth blocks.
        for (m, k, n) in [(1, 1, 1), (7, 5, 9), (13, 300, 33), (50, 600, 70), (6, 17, 32), (1440, 160, 40)] {
            let a = random(m, k, (m + k + n) as u64);
            let b = random(k, n, (m * k * n) as u64);
            let got = product(View::new(&a, m, k), View::new(&b, k, n), false);
            assert_close(&got, &naive(View::new(&a, m, k), View::new(&b, k, n)), &format!("{m}x{k}x{n}"));
        }
    }

    #[test]
    fn product_transposed_a() {
        // c = a^T b with a stored k x m, as for U^T A and A^T A.
        let (m, k, n) = (19, 70, 45);
        let a = random(k, m, 1);
        let b = random(k, n, 2);
        let view = View::new(&a, k, m).t();
        assert_close(&product(view, View::new(&b, k, n), false), &naive(view, View::new(&b, k, n)), "a^T b");
    }

    #[test]
    fn product_transposed_b() {
        // b = x^T with x stored n x k: the packing reads b along its columns.
        for (m, k, n) in [(7, 5, 9), (13, 300, 33), (40, 129, 70)] {
            let a = random(m, k, 3);
            let x = random(n, k, 4);
            let b_view = View::new(&x, n, k).t();
            let b_dense: Vec<f64> = (0..k * n).map(|i| x[(i % n) * k + i / n]).collect();
            let got = product(View::new(&a, m, k), b_view, false);
            assert_close(&got, &naive(View::new(&a, m, k), View::new(&b_dense, k, n)), &format!("{m}x{k}x{n}"));
        }
    }

    #[test]
    fn product_lower_only_is_symmetric() {
        for (rows, n) in [(300, 7), (1440, 160), (97, 61)] {
            let a = random(rows, n, n as u64);
            let view = View::new(&a, rows, n);
            let got = product(view.t(), view, true);
            assert_close(&got, &naive(view.t(), view), &format!("a^T a of {rows}x{n}"));
        }
    }

    #[test]
    fn product_threads_agree() {
        let (m, k, n) = (301, 257, 77);
        let a = random(m, k, 5);
        let b = random(k, n, 6);
        let pool = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let one = pool(1).install(|| product(View::new(&a, m, k), View::new(&b, k, n), false));
        let two = pool(2).install(|| product(View::new(&a, m, k), View::new(&b, k, n), false));
        assert_eq!(one, two);
        let lower_one = pool(1).install(|| product(View::new(&a, m, k).t(), View::new(&a, m, k), true));
        let lower_two = pool(2).install(|| product(View::new(&a, m, k).t(), View::new(&a, m, k), true));
        assert_eq!(lower_one, lower_two);
        let gram_one = pool(1).install(|| gram_rows(&b, k, n));
        let gram_two = pool(2).install(|| gram_rows(&b, k, n));
        assert_eq!(gram_one, gram_two);
    }

    #[test]
    fn gram_rows_matches_naive() {
        // Rows not a multiple of 4, columns not a multiple of 8, and more
        // than one 512-column depth block.
        for (rows, cols) in [(1, 1), (3, 5), (4, 14400), (6, 38400), (13, 1201), (72, 3200)] {
            let a = random(rows, cols, (rows + cols) as u64);
            let mut want = vec![0.0; rows * rows];
            for i in 0..rows {
                for j in 0..rows {
                    want[i * rows + j] = (0..cols).map(|p| a[i * cols + p] * a[j * cols + p]).sum();
                }
            }
            assert_close(&gram_rows(&a, rows, cols), &want, &format!("{rows}x{cols}"));
        }
    }
}
