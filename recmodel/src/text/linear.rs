//! Linear layers for inference, `y = activation(x W^T + b)`, with the
//! weights packed once at load time.
//!
//! On processors with AVX-512 the product runs in a register-tiled kernel
//! that reads the packed weights directly, adds the bias in its
//! accumulators and applies the activation while the output tile is still in
//! L1. That spares the per-call weight packing and the separate bias and
//! activation passes of the general [`sgemm`] path, which other processors
//! take.

use autograd::gemm::{sgemm, MatRef};
use autograd::Tensor;
use rayon::prelude::*;

use super::aligned::AlignedFloats;
use super::config::Activation;
use super::kernels;

/// Output columns per packed panel: four 16-lane AVX-512 registers.
const PANEL: usize = 64;
/// Rows per register tile: 6 rows x 4 registers = 24 accumulators of the
/// 32 AVX-512 registers, leaving room for the weights and the broadcast.
/// Six input rows keep one address register each, so the inner loop needs
/// no address arithmetic.
const TILE_ROWS: usize = 6;
/// Maximum rows per rayon task; their inputs (192 x 384 floats) stay in L2.
const TASK_ROWS: usize = 192;
/// Inputs per pass over the packed panels. A panel's slice (128 x 64
/// floats, 32 KiB) then stays in a 48 KiB L1 cache while every row tile of
/// the task reads it. With 384 inputs per pass, `mporec embed` ran 9 %
/// slower.
const DEPTH_BLOCK: usize = 128;

/// Output panels whose depth blocks are finished before the next panels
/// start: two panels of 192 rows are 96 KiB of outputs, which stay in L2.
const PANEL_GROUP: usize = 2;

/// A linear layer `[out, in]` with its bias, ready for inference.
#[derive(Clone, Debug)]
pub struct PackedLinear {
    weight: Tensor,
    bias: Vec<f32>,
    /// The weight as `[ceil(out / 64)][in][64]`, zero-padded: row `p` of a
    /// panel contains input `p`'s weights for 64 consecutive outputs. Each
    /// panel row fills one cache line.
    panels: AlignedFloats,
}

impl PackedLinear {
    /// Packs `weight` (`[out, in]`) and `bias` (`[out]`).
    ///
    /// # Panics
    /// Panics if `weight` is not 2-D or `bias` does not have `out` elements.
    #[track_caller]
    pub fn new(weight: Tensor, bias: &Tensor) -> Self {
        let &[out, inp] = weight.shape() else {
            panic!("PackedLinear::new: weight shape {:?} is not [out, in]", weight.shape());
        };
        assert_eq!(bias.len(), out, "PackedLinear::new: bias length differs from the output size");

        let mut panels = AlignedFloats::zeros(out.div_ceil(PANEL) * inp * PANEL);
        for (o, row) in weight.data().chunks_exact(inp).enumerate() {
            let panel = &mut panels[(o / PANEL) * inp * PANEL..];
            for (p, &w) in row.iter().enumerate() {
                panel[p * PANEL + o % PANEL] = w;
            }
        }
        PackedLinear { bias: bias.data().to_vec(), weight, panels }
    }

    /// Output size.
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Input size.
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Computes `y = activation(x W^T + b)` for `x` `[rows, in]` into `y`
    /// `[rows, out]`, both row-major.
    ///
    /// # Panics
    /// Panics if `x` or `y` is shorter than `rows` rows.
    #[track_caller]
    pub fn forward(&self, x: &[f32], rows: usize, y: &mut [f32], activation: Option<Activation>) {
        assert!(x.len() >= rows * self.in_features(), "PackedLinear::forward: input shorter than {rows} rows");
        assert!(y.len() >= rows * self.out_features(), "PackedLinear::forward: output shorter than {rows} rows");

        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            self.forward_packed(x, rows, y, activation);
            return;
        }
        self.forward_portable(x, rows, y, activation);
    }

    /// Computes the layer with [`sgemm`], then adds the bias and applies the
    /// activation in one pass. Processors without AVX-512 take this path.
    fn forward_portable(&self, x: &[f32], rows: usize, y: &mut [f32], activation: Option<Activation>) {
        let (out, inp) = (self.out_features(), self.in_features());
        let y = &mut y[..rows * out];
        sgemm(1.0, MatRef::new(x, rows, inp), MatRef::new(self.weight.data(), out, inp).t(), 0.0, y, out);
        y.par_chunks_mut(out * 32).for_each(|block| match activation {
            Some(activation) => kernels::add_bias_activate(block, &self.bias, activation),
            None => block.chunks_exact_mut(out).for_each(|row| row.iter_mut().zip(&self.bias).for_each(|(v, b)| *v += b)),
        });
    }

    #[cfg(target_arch = "x86_64")]
    fn forward_packed(&self, x: &[f32], rows: usize, y: &mut [f32], activation: Option<Activation>) {
        let (out, inp) = (self.out_features(), self.in_features());
        let x = &x[..rows * inp];
        let y = &mut y[..rows * out];
        let task_rows = balanced_task_rows(rows, rayon::current_num_threads());
        y.par_chunks_mut(task_rows * out).zip(x.par_chunks(task_rows * inp)).for_each(|(y_block, x_block)| {
            // SAFETY: the processor has AVX-512 (checked by the caller), and
            // the blocks hold whole rows of `inp` inputs and `out` outputs.
            unsafe { avx512::linear_block(self, x_block, y_block, activation) };
        });
    }
}

/// Rows per task: at most [`TASK_ROWS`], a multiple of the tile height, and
/// an equal number of tasks per thread, so that no thread idles at the end.
fn balanced_task_rows(rows: usize, threads: usize) -> usize {
    let threads = threads.max(1);
    let tasks_per_thread = rows.div_ceil(threads * TASK_ROWS).max(1);
    let rows_per_task = rows.div_ceil(threads * tasks_per_thread);
    rows_per_task.div_ceil(TILE_ROWS).max(1) * TILE_ROWS
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{kernels, Activation, PackedLinear, DEPTH_BLOCK, PANEL, PANEL_GROUP, TILE_ROWS};

    /// Computes the rows of `x` into the matching rows of `y`.
    ///
    /// Output panels are taken [`PANEL_GROUP`] at a time, so that the
    /// group's outputs stay in L2 while depth blocks accumulate onto them.
    /// Within a depth block, every row tile reads one panel's weight slice
    /// from L1. While the tiles of one slice run, the next slice is
    /// prefetched into L2 a few lines per tile, because it usually comes
    /// from L3: the six layers' weights (42 MiB for MiniLM) do not fit in L2.
    ///
    /// # Safety
    /// The processor must support AVX-512F, `x` must hold whole rows of
    /// `in_features` and `y` the same number of rows of `out_features`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn linear_block(layer: &PackedLinear, x: &[f32], y: &mut [f32], activation: Option<Activation>) {
        let (out, inp) = (layer.out_features(), layer.in_features());
        let rows = x.len() / inp;
        let panels = out.div_ceil(PANEL);
        // (panel, first input) of each weight slice, in the order they are read.
        let mut slices = Vec::new();
        for group in (0..panels).step_by(PANEL_GROUP) {
            for depth_start in (0..inp).step_by(DEPTH_BLOCK) {
                for panel in group..panels.min(group + PANEL_GROUP) {
                    slices.push((panel, depth_start));
                }
            }
        }
        let weight_slice = |(panel, depth_start): (usize, usize)| {
            let depth = DEPTH_BLOCK.min(inp - depth_start);
            &layer.panels[(panel * inp + depth_start) * PANEL..][..depth * PANEL]
        };
        let tiles = rows.div_ceil(TILE_ROWS);

        for (index, &(panel, depth_start)) in slices.iter().enumerate() {
            let weights = weight_slice((panel, depth_start));
            let depth = weights.len() / PANEL;
            let first = depth_start == 0;
            let last = depth_start + depth == inp;
            let columns = PANEL.min(out - panel * PANEL);
            let bias = &layer.bias[panel * PANEL..][..columns];
            let next = slices.get(index + 1).map(|&slice| weight_slice(slice)).unwrap_or(&[]);
            let next_lines = next.len().div_ceil(16);
            let lines_per_tile = next_lines.div_ceil(tiles);

            for tile_index in 0..tiles {
                let row = tile_index * TILE_ROWS;
                let count = TILE_ROWS.min(rows - row);
                for line in (tile_index * lines_per_tile..(tile_index + 1) * lines_per_tile).take_while(|&line| line < next_lines) {
                    _mm_prefetch::<_MM_HINT_T1>(next.as_ptr().add(line * 16).cast::<i8>());
                }
                let tile = Tile { x: &x[row * inp + depth_start..], x_stride: inp, weights, depth };
                let target = Target { y: &mut y[row * out + panel * PANEL..], y_stride: out, columns, bias, first };
                tile.run(count, target);
                if let (true, Some(activation)) = (last, activation) {
                    for r in 0..count {
                        let segment = &mut y[(row + r) * out + panel * PANEL..][..columns];
                        kernels::avx512::activate_in_place(segment, activation);
                    }
                }
            }
        }
    }

    /// Inputs of one register tile: up to 6 rows of `x` against one panel.
    struct Tile<'a> {
        x: &'a [f32],
        x_stride: usize,
        weights: &'a [f32],
        depth: usize,
    }

    /// The destination of a tile's result. The first depth block starts from
    /// `bias`, later ones from the partial sums already in `y`.
    struct Target<'a> {
        y: &'a mut [f32],
        y_stride: usize,
        columns: usize,
        bias: &'a [f32],
        first: bool,
    }

    impl Tile<'_> {
        #[target_feature(enable = "avx512f")]
        unsafe fn run(&self, rows: usize, target: Target<'_>) {
            // One monomorphised kernel per row count keeps the accumulators in registers.
            match rows {
                6 => self.kernel::<6>(target),
                5 => self.kernel::<5>(target),
                4 => self.kernel::<4>(target),
                3 => self.kernel::<3>(target),
                2 => self.kernel::<2>(target),
                _ => self.kernel::<1>(target),
            }
        }

        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn kernel<const ROWS: usize>(&self, target: Target<'_>) {
            // Lanes of each of the four registers that hold real output columns.
            let masks: [__mmask16; 4] = std::array::from_fn(|q| {
                let lanes = target.columns.saturating_sub(16 * q).min(16);
                ((1u32 << lanes) - 1) as __mmask16
            });

            let y = target.y.as_mut_ptr();
            let mut acc = [[_mm512_setzero_ps(); 4]; ROWS];
            for (r, lanes) in acc.iter_mut().enumerate() {
                // SAFETY: masked lanes are not read, so loads stay inside the
                // row's `columns` outputs (or the bias), and `wrapping_add`
                // keeps the addresses of fully masked registers harmless.
                let source = if target.first { target.bias.as_ptr() } else { y.add(r * target.y_stride).cast_const() };
                for (q, lane) in lanes.iter_mut().enumerate() {
                    *lane = _mm512_maskz_loadu_ps(masks[q], source.wrapping_add(16 * q));
                }
            }

            let w = self.weights.as_ptr();
            let x_rows: [*const f32; ROWS] = std::array::from_fn(|r| self.x.as_ptr().add(r * self.x_stride));
            for p in 0..self.depth {
                // SAFETY: `weights` contains `depth` rows of 64 floats, and
                // each of the ROWS input rows has at least `depth` inputs left.
                let wv: [__m512; 4] = std::array::from_fn(|q| _mm512_loadu_ps(w.add(p * PANEL + 16 * q)));
                for (r, lanes) in acc.iter_mut().enumerate() {
                    let xv = _mm512_set1_ps(*x_rows[r].add(p));
                    for q in 0..4 {
                        lanes[q] = _mm512_fmadd_ps(xv, wv[q], lanes[q]);
                    }
                }
            }

            for (r, lanes) in acc.iter().enumerate() {
                let row = y.add(r * target.y_stride);
                for (q, lane) in lanes.iter().enumerate() {
                    _mm512_mask_storeu_ps(row.wrapping_add(16 * q), masks[q], *lane);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `activation(x W^T + b)` in f64, straight from the definition.
    fn naive(x: &[f32], rows: usize, weight: &Tensor, bias: &Tensor, activation: Option<Activation>) -> Vec<f32> {
        let (out, inp) = (weight.shape()[0], weight.shape()[1]);
        let mut y = Vec::with_capacity(rows * out);
        for r in 0..rows {
            for o in 0..out {
                let mut sum = bias.data()[o] as f64;
                for p in 0..inp {
                    sum += x[r * inp + p] as f64 * weight.data()[o * inp + p] as f64;
                }
                // The activations' own accuracy is tested in `kernels`.
                let mut value = [sum as f32];
                if let Some(activation) = activation {
                    kernels::activate_in_place(&mut value, activation);
                }
                y.push(value[0]);
            }
        }
        y
    }

    fn pseudo_random(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0) - 1.0).collect()
    }

    fn check(rows: usize, out: usize, inp: usize, activation: Option<Activation>) {
        let weight = Tensor::new(vec![out, inp], pseudo_random(out * inp, 1)).unwrap();
        let bias = Tensor::new(vec![out], pseudo_random(out, 2)).unwrap();
        let x = pseudo_random(rows * inp, 3);
        let expected = naive(&x, rows, &weight, &bias, activation);
        let layer = PackedLinear::new(weight, &bias);

        let mut packed = vec![f32::NAN; rows * out];
        layer.forward(&x, rows, &mut packed, activation);
        let mut portable = vec![f32::NAN; rows * out];
        layer.forward_portable(&x, rows, &mut portable, activation);
        for (i, ((&e, &p), &q)) in expected.iter().zip(&packed).zip(&portable).enumerate() {
            let tolerance = 1e-4 * (1.0 + e.abs());
            assert!((e - p).abs() < tolerance, "{rows}x{inp} -> {out}, element {i}: {p} vs {e}");
            assert!((e - q).abs() < tolerance, "{rows}x{inp} -> {out}, element {i}: portable {q} vs {e}");
        }
    }

    #[test]
    fn panels_start_on_cache_lines() {
        let weight = Tensor::new(vec![1152, 384], pseudo_random(1152 * 384, 3)).unwrap();
        let layer = PackedLinear::new(weight, &Tensor::new(vec![1152], vec![0.0; 1152]).unwrap());
        assert_eq!(layer.panels.as_ptr() as usize % 64, 0);
        assert_eq!(layer.panels.len(), 1152 * 384);
    }

    #[test]
    fn partial_tiles_and_panels() {
        // 13 rows = two tiles of 6 and one of 1; 72 outputs = one full
        // panel and one of 8 columns; 20 outputs = one partial panel only.
        check(13, 72, 20, None);
        check(5, 20, 7, None);
        check(1, 1, 1, None);
    }

    #[test]
    fn deep_input_blocks() {
        // 1000 inputs take eight depth blocks (7 x 128 + 104).
        check(30, 64, 1000, None);
    }

    #[test]
    fn panel_groups_with_depth_blocks() {
        // 300 outputs = five panels (two groups of two and one of one, the
        // last panel partial), each over three depth blocks (128 + 128 + 44).
        check(19, 300, 300, None);
        check(7, 300, 300, Some(Activation::Gelu));
    }

    #[test]
    fn many_tasks() {
        // 400 rows span three rayon tasks of up to 192 rows.
        check(400, 48, 16, None);
    }

    #[test]
    fn task_rows_balance_threads() {
        // 1280 rows on 2 threads: 4 tasks each of 160 rows, rounded up to a
        // multiple of 6. 10,000 rows: 27 tasks each of 186 rows.
        assert_eq!(balanced_task_rows(1280, 2), 162);
        assert_eq!(balanced_task_rows(1280, 2) % TILE_ROWS, 0);
        assert_eq!(balanced_task_rows(100, 2), 54);
        assert_eq!(balanced_task_rows(10_000, 2), 186);
        assert_eq!(balanced_task_rows(1, 8), 6);
    }

    #[test]
    fn fused_activation() {
        check(25, 36, 400, Some(Activation::Relu));
        check(25, 130, 200, Some(Activation::Gelu));
        check(25, 130, 200, Some(Activation::GeluTanh));
    }
}
