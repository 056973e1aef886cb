//! A GEMM that writes its product with the two middle axes swapped, the
//! step that every core contraction of [`crate::contract`] ends with.
//!
//! The product `C = A B` of `A` (`[outer p, k]`) and `B` (`[k, q inner]`) is
//! read as `[outer, p, q, inner]` and stored as `[outer, q, p, inner]`, the
//! layout of [`swap_middle`]. On processors with AVX-512 a register-tiled
//! kernel stores each tile straight to its place in that layout, which
//! spares the intermediate product, its zero-fill and the reorder pass.
//! Other processors take [`sgemm`] followed by [`swap_middle`].

use crate::linalg::swap_middle;
use autograd::gemm::{sgemm, MatRef};

/// Sizes of a [`gemm_swap_middle`] product.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SwapProduct {
    /// Leading axis of the product, kept in place.
    pub outer: usize,
    /// Axis that goes with `outer` into the rows of `A`.
    pub p: usize,
    /// Axis that goes with `inner` into the columns of `B`.
    pub q: usize,
    /// Trailing axis of the product, kept in place.
    pub inner: usize,
    /// Contracted dimension: columns of `A`, rows of `B`.
    pub depth: usize,
}

impl SwapProduct {
    fn rows(&self) -> usize {
        self.outer * self.p
    }

    fn cols(&self) -> usize {
        self.q * self.inner
    }
}

/// Multiplies `a` (`[outer p, depth]`, row-major) by `b` (`[depth, q inner]`,
/// row-major) and returns the product as `[outer, q, p, inner]`, row-major.
///
/// Each element is a sum over `depth` in a fixed order, and threads split
/// the output without splitting any sum, so the result is the same for
/// every thread count on a given processor.
///
/// # Panics
/// Panics if `a` or `b` is shorter than its shape.
#[track_caller]
pub(crate) fn gemm_swap_middle(a: &[f32], b: &[f32], dims: SwapProduct) -> Vec<f32> {
    let (m, n, k) = (dims.rows(), dims.cols(), dims.depth);
    assert!(a.len() >= m * k, "gemm_swap_middle: a has {} elements, fewer than {m} x {k}", a.len());
    assert!(b.len() >= k * n, "gemm_swap_middle: b has {} elements, fewer than {k} x {n}", b.len());
    if m == 0 || n == 0 {
        return Vec::new();
    }

    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the processor has AVX-512F, and `a` and `b` cover their shapes.
        return unsafe { avx512::gemm_swap_middle(a, b, dims) };
    }
    gemm_swap_middle_portable(a, b, dims)
}

/// [`sgemm`] into a temporary, then [`swap_middle`]. Processors without
/// AVX-512 take this path.
fn gemm_swap_middle_portable(a: &[f32], b: &[f32], dims: SwapProduct) -> Vec<f32> {
    let (m, n, k) = (dims.rows(), dims.cols(), dims.depth);
    let mut product = vec![0.0f32; m * n];
    sgemm(1.0, MatRef::new(a, m, k), MatRef::new(b, k, n), 0.0, &mut product, n);
    if dims.p == 1 || dims.q == 1 {
        return product;
    }
    let mut out = vec![0.0f32; m * n];
    swap_middle(&product, dims.outer, dims.p, dims.q, dims.inner, &mut out);
    out
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use rayon::prelude::*;

    use super::SwapProduct;

    /// Columns per packed panel of `B`: four 16-lane registers.
    const PANEL: usize = 64;
    /// Rows per register tile: 6 rows x 4 registers = 24 accumulators of the
    /// 32 AVX-512 registers, leaving room for `B` and the broadcast of `A`.
    const TILE_ROWS: usize = 6;
    /// Floats of `A` per pass over the panels (256 KiB), so that the block
    /// of rows stays in L2 while every panel is applied to it.
    const ROW_BLOCK_FLOATS: usize = 1 << 16;
    /// Products below this many multiply-adds run on the calling thread,
    /// because handing work to a rayon worker costs microseconds.
    const PARALLEL_MIN_MULTIPLY_ADDS: usize = 1 << 20;

    /// Output pointer that rayon tasks can share. Each task writes a
    /// disjoint set of elements.
    #[derive(Clone, Copy)]
    struct OutPtr(*mut f32);
    unsafe impl Send for OutPtr {}
    unsafe impl Sync for OutPtr {}

    /// Runs [`super::gemm_swap_middle`] on the AVX-512 kernel.
    ///
    /// # Safety
    /// The processor must support AVX-512F, `a` must have at least
    /// `dims.rows() x dims.depth` elements and `b` at least
    /// `dims.depth x dims.cols()`.
    pub(super) unsafe fn gemm_swap_middle(a: &[f32], b: &[f32], dims: SwapProduct) -> Vec<f32> {
        let (m, n, k) = (dims.rows(), dims.cols(), dims.depth);
        let len = m * n;
        let mut out = Vec::<f32>::with_capacity(len);
        let out_ptr = OutPtr(out.as_mut_ptr());

        let threads = rayon::current_num_threads();
        let panels = n.div_ceil(PANEL);
        let tiles = m.div_ceil(TILE_ROWS);
        if threads <= 1 || m.saturating_mul(n).saturating_mul(k) < PARALLEL_MIN_MULTIPLY_ADDS {
            // SAFETY: the caller guarantees AVX-512F and the lengths of `a`
            // and `b`, and `out` has capacity for all `m n` outputs.
            unsafe { multiply_block(a, b, dims, 0..m, 0..panels, out_ptr) };
        } else if panels >= tiles {
            // Wide products split the panels, so that no thread packs a
            // panel that another one packs too.
            let ranges = split_range(panels, threads);
            ranges.into_par_iter().for_each(|panel_range| {
                // SAFETY: as above, and the tasks write disjoint columns.
                unsafe { multiply_block(a, b, dims, 0..m, panel_range, out_ptr) };
            });
        } else {
            let ranges = split_range(tiles, threads);
            ranges.into_par_iter().for_each(|tile_range| {
                let rows = tile_range.start * TILE_ROWS..(tile_range.end * TILE_ROWS).min(m);
                // SAFETY: as above, and the tasks write disjoint rows.
                unsafe { multiply_block(a, b, dims, rows, 0..panels, out_ptr) };
            });
        }

        // SAFETY: `multiply_block` wrote each of the `len` elements once,
        // because `(row, column) -> (outer, q, p, inner)` is a bijection
        // onto `0..len` and the blocks cover every row and panel.
        unsafe { out.set_len(len) };
        out
    }

    /// Splits `0..count` into `parts` contiguous ranges whose lengths differ
    /// by at most one, leaving out empty ones.
    fn split_range(count: usize, parts: usize) -> Vec<Range<usize>> {
        let parts = parts.min(count).max(1);
        (0..parts).map(|part| count * part / parts..count * (part + 1) / parts).collect()
    }

    /// One masked store of a register: lanes `mask` go to
    /// `row + offset + lane`.
    #[derive(Clone, Copy, Default)]
    struct Store {
        offset: isize,
        mask: __mmask16,
    }

    /// The stores that put one register of a tile row in place: one per run
    /// of lanes whose columns are consecutive in the output.
    #[derive(Clone, Copy, Default)]
    struct RegisterStores {
        stores: [Store; 16],
        count: usize,
    }

    /// Computes rows `rows` of the product against panels `panels` and
    /// writes them to their places in `out`.
    ///
    /// # Safety
    /// The processor must support AVX-512F, `a` and `b` must cover the
    /// shapes of `dims`, and `out` must have room for `dims.rows() x
    /// dims.cols()` elements. Concurrent calls must get disjoint rows or
    /// disjoint panels.
    #[target_feature(enable = "avx512f")]
    unsafe fn multiply_block(a: &[f32], b: &[f32], dims: SwapProduct, rows: Range<usize>, panels: Range<usize>, out: OutPtr) {
        let (n, k) = (dims.cols(), dims.depth);
        let packed = pack_panels(b, n, k, panels.clone());
        let block_rows = (ROW_BLOCK_FLOATS / k.max(1)).max(1).div_ceil(TILE_ROWS) * TILE_ROWS;

        let mut block_start = rows.start;
        while block_start < rows.end {
            let block_end = (block_start + block_rows).min(rows.end);
            for (index, panel) in panels.clone().enumerate() {
                let weights = &packed[index * k * PANEL..][..k * PANEL];
                let columns = PANEL.min(n - panel * PANEL);
                let stores = panel_stores(dims, panel * PANEL, columns);
                let mut row = block_start;
                while row < block_end {
                    let count = TILE_ROWS.min(block_end - row);
                    let tile = Tile { a: &a[row * k..], depth: k, weights, stores: &stores };
                    let row_offsets: [usize; TILE_ROWS] = std::array::from_fn(|r| row_offset(dims, row + r));
                    tile.run(count, columns.div_ceil(16), &row_offsets, out.0);
                    row += count;
                }
            }
            block_start = block_end;
        }
    }

    /// Copies panels `panels` of `b` (`[k, n]`) into `[panel][k][64]`,
    /// padding the last panel's missing columns with zeros.
    fn pack_panels(b: &[f32], n: usize, k: usize, panels: Range<usize>) -> Vec<f32> {
        let mut packed = Vec::with_capacity(panels.len() * k * PANEL);
        for panel in panels {
            let start = panel * PANEL;
            let columns = PANEL.min(n - start);
            for row in b.chunks_exact(n).take(k) {
                packed.extend_from_slice(&row[start..start + columns]);
                packed.resize(packed.len() + PANEL - columns, 0.0);
            }
        }
        packed
    }

    /// Output offset of product row `row`, which is `(o, pp)` of
    /// `[outer, p]`, in the `[outer, q, p, inner]` layout.
    fn row_offset(dims: SwapProduct, row: usize) -> usize {
        let (o, pp) = (row / dims.p, row % dims.p);
        (o * dims.q * dims.p + pp) * dims.inner
    }

    /// Output offset of product column `column`, which is `(qq, r)` of
    /// `[q, inner]`, in the `[outer, q, p, inner]` layout.
    fn column_offset(dims: SwapProduct, column: usize) -> usize {
        let (qq, r) = (column / dims.inner, column % dims.inner);
        qq * dims.p * dims.inner + r
    }

    /// Stores of the four registers of the panel whose first column is
    /// `first` and which has `columns` real columns.
    fn panel_stores(dims: SwapProduct, first: usize, columns: usize) -> [RegisterStores; 4] {
        std::array::from_fn(|register| {
            let mut stores = RegisterStores::default();
            let lanes = columns.saturating_sub(16 * register).min(16);
            let mut lane = 0;
            while lane < lanes {
                let column = first + 16 * register + lane;
                // The run of consecutive output columns ends where `inner` wraps.
                let run = (dims.inner - column % dims.inner).min(lanes - lane);
                let mask = (((1u32 << run) - 1) << lane) as __mmask16;
                let offset = column_offset(dims, column) as isize - lane as isize;
                stores.stores[stores.count] = Store { offset, mask };
                stores.count += 1;
                lane += run;
            }
            stores
        })
    }

    /// Inputs of one register tile: up to 6 rows of `A` against one panel.
    struct Tile<'a> {
        /// `A` from the tile's first row on, rows of `depth` floats.
        a: &'a [f32],
        depth: usize,
        /// The packed panel, `[depth][64]`.
        weights: &'a [f32],
        stores: &'a [RegisterStores; 4],
    }

    impl Tile<'_> {
        /// Runs the kernel for `rows` rows and `registers` registers of columns.
        #[target_feature(enable = "avx512f")]
        unsafe fn run(&self, rows: usize, registers: usize, row_offsets: &[usize; TILE_ROWS], out: *mut f32) {
            // One monomorphised kernel per shape keeps the accumulators in registers.
            macro_rules! dispatch {
                ($($rows:literal),*) => {
                    match (rows, registers) {
                        $(
                            ($rows, 4) => self.kernel::<$rows, 4>(row_offsets, out),
                            ($rows, 3) => self.kernel::<$rows, 3>(row_offsets, out),
                            ($rows, 2) => self.kernel::<$rows, 2>(row_offsets, out),
                            ($rows, 1) => self.kernel::<$rows, 1>(row_offsets, out),
                        )*
                        _ => unreachable!("tile of {rows} rows and {registers} registers"),
                    }
                };
            }
            dispatch!(1, 2, 3, 4, 5, 6)
        }

        /// `ROWS x 16 REGISTERS` outputs: the sum over `depth` in order, one
        /// FMA per step, then masked stores to the output layout.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn kernel<const ROWS: usize, const REGISTERS: usize>(&self, row_offsets: &[usize; TILE_ROWS], out: *mut f32) {
            let mut acc = [[_mm512_setzero_ps(); REGISTERS]; ROWS];
            let w = self.weights.as_ptr();
            let a_rows: [*const f32; ROWS] = std::array::from_fn(|r| self.a.as_ptr().add(r * self.depth));
            for p in 0..self.depth {
                // SAFETY: the panel contains `depth` rows of 64 floats, and
                // each of the ROWS rows of `a` has `depth` elements.
                let wv: [__m512; REGISTERS] = std::array::from_fn(|q| _mm512_loadu_ps(w.add(p * PANEL + 16 * q)));
                for (r, lanes) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*a_rows[r].add(p));
                    for q in 0..REGISTERS {
                        lanes[q] = _mm512_fmadd_ps(av, wv[q], lanes[q]);
                    }
                }
            }

            for (r, lanes) in acc.iter().enumerate() {
                let row = out.wrapping_add(row_offsets[r]);
                for (q, lane) in lanes.iter().enumerate() {
                    let stores = &self.stores[q];
                    for store in &stores.stores[..stores.count] {
                        // SAFETY: the enabled lanes land on the output
                        // positions of this row's columns, which lie inside
                        // `out`. Disabled lanes are not written, so an
                        // address outside `out` (from `wrapping_offset`)
                        // is never accessed.
                        _mm512_mask_storeu_ps(row.wrapping_offset(store.offset), store.mask, *lane);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computes the product from the definition in f64 and reorders it
    /// with [`swap_middle`].
    fn naive(a: &[f32], b: &[f32], dims: SwapProduct) -> Vec<f32> {
        let (m, n, k) = (dims.rows(), dims.cols(), dims.depth);
        let mut product = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let sum: f64 = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
                product[i * n + j] = sum as f32;
            }
        }
        let mut out = vec![0.0f32; m * n];
        swap_middle(&product, dims.outer, dims.p, dims.q, dims.inner, &mut out);
        out
    }

    fn pseudo_random(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0) - 1.0).collect()
    }

    fn check(outer: usize, p: usize, q: usize, inner: usize, depth: usize) {
        let dims = SwapProduct { outer, p, q, inner, depth };
        let a = pseudo_random(dims.rows() * depth, 1);
        let b = pseudo_random(depth * dims.cols(), 2);
        let expected = naive(&a, &b, dims);
        let fast = gemm_swap_middle(&a, &b, dims);
        let portable = gemm_swap_middle_portable(&a, &b, dims);
        assert_eq!(fast.len(), expected.len(), "{dims:?}: output length");
        assert_eq!(portable.len(), expected.len(), "{dims:?}: portable output length");
        for (i, ((&e, &f), &g)) in expected.iter().zip(&fast).zip(&portable).enumerate() {
            let tolerance = 1e-4 * (1.0 + e.abs());
            assert!((e - f).abs() < tolerance, "{dims:?}, element {i}: {f} vs {e}");
            assert!((e - g).abs() < tolerance, "{dims:?}, element {i}: portable {g} vs {e}");
        }
    }

    #[test]
    fn partial_tiles_and_panels() {
        // 3 x 5 = 15 rows: two tiles of 6 and one of 3. 7 x 11 = 77
        // columns: one full panel and one of 13 columns in one register.
        check(3, 5, 7, 11, 9);
        // 40 columns: one panel of three registers, the last one partial.
        check(2, 3, 4, 10, 17);
        check(1, 1, 1, 1, 1);
    }

    #[test]
    fn runs_shorter_than_a_register() {
        // `inner` of 1, 3 and 12 splits each register into several masked
        // stores, up to 16 for `inner` of 1.
        check(4, 7, 20, 1, 5);
        check(5, 2, 30, 3, 8);
        check(30, 32, 10, 12, 120);
    }

    #[test]
    fn no_swap_when_an_axis_is_one() {
        check(6, 1, 9, 70, 13);
        check(6, 9, 1, 70, 13);
    }

    #[test]
    fn zero_depth_gives_zeros() {
        let dims = SwapProduct { outer: 2, p: 3, q: 4, inner: 5, depth: 0 };
        assert_eq!(gemm_swap_middle(&[], &[], dims), vec![0.0; 120]);
        assert_eq!(gemm_swap_middle_portable(&[], &[], dims), vec![0.0; 120]);
    }

    #[test]
    fn several_row_blocks() {
        // Depth 1000 gives row blocks of 66 rows, so 200 rows take four.
        check(20, 10, 3, 22, 1000);
    }

    #[test]
    fn same_result_for_every_thread_count() {
        // 48 x 2400 splits panels and 960 x 120 splits rows.
        for (outer, p, q, inner, depth) in [(6, 8, 5, 480, 48), (30, 32, 10, 12, 120)] {
            let dims = SwapProduct { outer, p, q, inner, depth };
            let a = pseudo_random(dims.rows() * depth, 3);
            let b = pseudo_random(depth * dims.cols(), 4);
            let runs: Vec<Vec<f32>> = [1, 2, 3]
                .iter()
                .map(|&threads| {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    pool.install(|| gemm_swap_middle(&a, &b, dims))
                })
                .collect();
            assert_eq!(runs[0], runs[1], "{dims:?}: 1 and 2 threads differ");
            assert_eq!(runs[0], runs[2], "{dims:?}: 1 and 3 threads differ");
        }
    }
}
