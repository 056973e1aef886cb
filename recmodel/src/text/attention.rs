//! Multi-head self-attention of one sequence, for inference.
//!
//! Each head's two products are small: at most 256 x 256 scores from a
//! head width of 32 or 64. A general GEMM spends much of its time packing
//! such operands. On processors with AVX-512 both products therefore run
//! in a register-tiled kernel that reads its operands in place. The keys
//! are the only operand that gets copied: they are transposed, so that 16
//! consecutive keys share one register. Other processors and head widths
//! that are not a multiple of 16 take [`sgemm`].

use autograd::gemm::{sgemm, MatRef};

use super::kernels;

/// Computes `context = softmax(scale * Q K^T) V` for every head of one
/// sequence.
///
/// `qkv` contains the sequence's rows `[Q | K | V]`, each `3 * hidden` wide.
/// The first `len` rows are real tokens, and only they are read. Row `t`
/// of `context` (`hidden` wide) gets the heads' outputs for token `t`,
/// concatenated. Rows of `context` from `len` on are left untouched.
///
/// # Panics
/// Panics if `hidden` is not a multiple of `heads`, if `qkv` holds fewer
/// than `len` rows or if `context` holds fewer than `len` rows.
pub fn self_attention(qkv: &[f32], len: usize, hidden: usize, heads: usize, scale: f32, context: &mut [f32]) {
    assert!(heads > 0, "self_attention: the number of heads is 0");
    assert!(hidden.is_multiple_of(heads), "self_attention: hidden size {hidden} is not a multiple of {heads} heads");
    assert!(qkv.len() >= len * 3 * hidden, "self_attention: qkv has fewer than {len} rows");
    assert!(context.len() >= len * hidden, "self_attention: context has fewer than {len} rows");
    if len == 0 {
        return;
    }
    let head_dim = hidden / heads;

    #[cfg(target_arch = "x86_64")]
    if head_dim.is_multiple_of(16) && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the processor has AVX-512F, the head width is a multiple
        // of 16, and the sizes were checked above.
        unsafe { avx512::self_attention(qkv, len, hidden, heads, scale, context) };
        return;
    }
    portable(qkv, len, hidden, heads, scale, context);
}

/// [`self_attention`] on [`sgemm`].
fn portable(qkv: &[f32], len: usize, hidden: usize, heads: usize, scale: f32, context: &mut [f32]) {
    let head_dim = hidden / heads;
    let mut scores = vec![0.0f32; len * len];
    for head in 0..heads {
        let view = |offset: usize| MatRef {
            data: &qkv[offset + head * head_dim..],
            rows: len,
            cols: head_dim,
            row_stride: 3 * hidden as isize,
            col_stride: 1,
        };
        let (query, key, value) = (view(0), view(hidden), view(2 * hidden));
        sgemm(scale, query, key.t(), 0.0, &mut scores, len);
        scores.chunks_exact_mut(len).for_each(kernels::softmax);
        sgemm(1.0, MatRef::new(&scores, len, len), value, 0.0, &mut context[head * head_dim..], hidden);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use crate::text::aligned::AlignedFloats;
    use super::kernels::avx512::exp;

    /// Lanes of one AVX-512 register.
    const LANES: usize = 16;

    /// See [`super::self_attention`].
    ///
    /// # Safety
    /// The processor must support AVX-512F, `hidden / heads` must be a
    /// multiple of 16, `len` must be positive, and `qkv` and `context` must
    /// hold `len` rows.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn self_attention(qkv: &[f32], len: usize, hidden: usize, heads: usize, scale: f32, context: &mut [f32]) {
        let head_dim = hidden / heads;
        let stride = 3 * hidden;
        // Scores and transposed keys are `padded` wide, so every column
        // block of the score product is whole. The zero keys past `len`
        // give scores that the softmax and the value product never read.
        let padded = len.div_ceil(LANES) * LANES;
        let mut keys = AlignedFloats::zeros(head_dim * padded);
        let mut scores = AlignedFloats::zeros(len * padded);
        let mut inverse_sums = vec![0.0f32; len];
        for head in 0..heads {
            let query = qkv.as_ptr().add(head * head_dim);
            let key = qkv.as_ptr().add(hidden + head * head_dim);
            let value = qkv.as_ptr().add(2 * hidden + head * head_dim);
            transpose_keys(key, stride, len, head_dim, &mut keys, padded);
            let uniform = Scale { data: &scale, stride: 0 };
            product(Operand { data: query, stride }, len, Operand { data: keys.as_ptr(), stride: padded }, head_dim, padded, scores.as_mut_ptr(), padded, uniform);
            // The rows keep exp(s - max) unnormalized; the value product
            // divides by their sums, len x head_dim divisions in place of
            // len x len.
            for (row, inverse) in scores.chunks_exact_mut(padded).zip(&mut inverse_sums) {
                *inverse = 1.0 / exp_in_place(&mut row[..len]);
            }
            let out = context.as_mut_ptr().add(head * head_dim);
            let per_row = Scale { data: inverse_sums.as_ptr(), stride: 1 };
            product(Operand { data: scores.as_ptr(), stride: padded }, len, Operand { data: value, stride }, len, head_dim, out, hidden, per_row);
        }
    }

    /// Writes `keys[d * padded + t] = key[t * stride + d]` for the `len`
    /// tokens and `head_dim` dimensions, and zeros for the tokens from `len`
    /// to `padded`. One gather collects a dimension of 16 tokens.
    ///
    /// # Safety
    /// AVX-512F, `key` readable for `len` rows of `head_dim`, `keys` at
    /// least `head_dim * padded` long, `padded` a multiple of 16 and at
    /// least `len`, and `stride * 15` below `i32::MAX / 4`.
    #[target_feature(enable = "avx512f")]
    unsafe fn transpose_keys(key: *const f32, stride: usize, len: usize, head_dim: usize, keys: &mut [f32], padded: usize) {
        let offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(stride as i32));
        for block in (0..padded).step_by(LANES) {
            let mask = if len >= block + LANES { u16::MAX } else { ((1u32 << len.saturating_sub(block)) - 1) as u16 };
            let rows = key.add(block * stride);
            for d in 0..head_dim {
                let column = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, offsets, rows.add(d).cast());
                _mm512_storeu_ps(keys.as_mut_ptr().add(d * padded + block), column);
            }
        }
    }

    /// Replaces each `x` of `row` by `exp(x - max(row))` and returns their
    /// sum, the softmax of `row` before its division.
    #[target_feature(enable = "avx512f")]
    unsafe fn exp_in_place(row: &mut [f32]) -> f32 {
        let mut chunks = row.chunks_exact_mut(LANES);
        let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
        for chunk in &mut chunks {
            max = _mm512_max_ps(max, _mm512_loadu_ps(chunk.as_ptr()));
        }
        let rest = chunks.into_remainder();
        let mask = ((1u32 << rest.len()) - 1) as __mmask16;
        // Masked-off lanes keep the running maximum.
        max = _mm512_max_ps(max, _mm512_mask_loadu_ps(max, mask, rest.as_ptr()));
        let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));

        let mut sum = _mm512_setzero_ps();
        let mut chunks = row.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            let e = exp(_mm512_sub_ps(_mm512_loadu_ps(chunk.as_ptr()), max));
            _mm512_storeu_ps(chunk.as_mut_ptr(), e);
            sum = _mm512_add_ps(sum, e);
        }
        let rest = chunks.into_remainder();
        let e = exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, rest.as_ptr()), max));
        _mm512_mask_storeu_ps(rest.as_mut_ptr(), mask, e);
        sum = _mm512_mask_add_ps(sum, mask, sum, e);
        _mm512_reduce_add_ps(sum)
    }

    /// Factors of the rows of a product: row `r` is scaled by
    /// `data[r * stride]`, so a stride of 0 scales all rows alike.
    #[derive(Clone, Copy)]
    struct Scale {
        data: *const f32,
        stride: usize,
    }

    /// A row-major matrix read in place: element `(r, c)` is at
    /// `data + r * stride + c`.
    #[derive(Clone, Copy)]
    struct Operand {
        data: *const f32,
        stride: usize,
    }

    /// `C = diag(scale) A B` for `A` `[rows, depth]`, `B` `[depth, cols]`
    /// and `C` `[rows, cols]` with row stride `c_stride`.
    ///
    /// # Safety
    /// AVX-512F, `cols` a multiple of 16, and all three matrices readable
    /// (`C` writable) over their full extent.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn product(a: Operand, rows: usize, b: Operand, depth: usize, cols: usize, c: *mut f32, c_stride: usize, scale: Scale) {
        let mut col = 0;
        while col < cols {
            // Up to four registers of columns; the row tile keeps at most 24
            // accumulators of the 32 registers.
            let registers = ((cols - col) / LANES).min(4);
            let b_block = Operand { data: b.data.add(col), stride: b.stride };
            let c_block = c.add(col);
            match registers {
                4 => row_tiles::<4, 6>(a, rows, b_block, depth, c_block, c_stride, scale),
                3 => row_tiles::<3, 8>(a, rows, b_block, depth, c_block, c_stride, scale),
                2 => row_tiles::<2, 12>(a, rows, b_block, depth, c_block, c_stride, scale),
                _ => row_tiles::<1, 12>(a, rows, b_block, depth, c_block, c_stride, scale),
            }
            col += registers * LANES;
        }
    }

    /// Computes one block of `16 * Q` columns, in tiles of `R` rows and a
    /// last, shorter tile.
    #[target_feature(enable = "avx512f")]
    unsafe fn row_tiles<const Q: usize, const R: usize>(a: Operand, rows: usize, b: Operand, depth: usize, c: *mut f32, c_stride: usize, scale: Scale) {
        let mut row = 0;
        while row + R <= rows {
            let row_scale = Scale { data: scale.data.add(row * scale.stride), stride: scale.stride };
            tile::<R, Q>(a.data.add(row * a.stride), a.stride, b, depth, c.add(row * c_stride), c_stride, row_scale);
            row += R;
        }
        let (a_rest, c_rest) = (a.data.add(row * a.stride), c.add(row * c_stride));
        let scale = Scale { data: scale.data.add(row * scale.stride), stride: scale.stride };
        // The arms above R - 1 never run; they keep the match exhaustive
        // for every R.
        match rows - row {
            0 => {}
            1 => tile::<1, Q>(a_rest, a.stride, b, depth, c_rest, c_stride, scale),
            2 => tile::<2, Q>(a_rest, a.stride, b, depth, c_rest, c_stride, scale),
            3 => tile::<3, Q>(a_rest, a.stride, b, depth, c_rest, c_stride, scale),
            4 => tile::<4, Q>(a_rest, a.stride, b, depth, c_rest, c_stride, scale),
            5 => tile::<5, Q>(a_rest, a.stride, b, depth, c_rest, c_stride, scale),
            6 => tile::<6, Q>(a_rest, a.stride, b, depth, c_rest, c_stride, scale),
            7 => tile::<7, Q>(a_rest, a.stride, b, depth, c_rest, c_stride, scale),
            8 => tile::<8, Q>(a_rest, a.stride, b, depth, c_rest, c_stride, scale),
            9 => tile::<9, Q>(a_rest, a.stride, b, depth, c_rest, c_stride, scale),
            10 => tile::<10, Q>(a_rest, a.stride, b, depth, c_rest, c_stride, scale),
            _ => tile::<11, Q>(a_rest, a.stride, b, depth, c_rest, c_stride, scale),
        }
    }

    /// `R` rows by `Q` registers of `C`, accumulated over the whole depth
    /// in registers and scaled row by row at the store.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const R: usize, const Q: usize>(a: *const f32, a_stride: usize, b: Operand, depth: usize, c: *mut f32, c_stride: usize, scale: Scale) {
        let mut acc = [[_mm512_setzero_ps(); Q]; R];
        for p in 0..depth {
            let b_row = b.data.add(p * b.stride);
            let bv: [__m512; Q] = std::array::from_fn(|q| _mm512_loadu_ps(b_row.add(q * LANES)));
            for (r, lanes) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * a_stride + p));
                for q in 0..Q {
                    lanes[q] = _mm512_fmadd_ps(av, bv[q], lanes[q]);
                }
            }
        }
        for (r, lanes) in acc.iter().enumerate() {
            let factor = _mm512_set1_ps(*scale.data.add(r * scale.stride));
            for (q, lane) in lanes.iter().enumerate() {
                _mm512_storeu_ps(c.add(r * c_stride + q * LANES), _mm512_mul_ps(*lane, factor));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention computed the obvious way, in f64.
    fn naive(qkv: &[f32], len: usize, hidden: usize, heads: usize, scale: f32) -> Vec<f32> {
        let head_dim = hidden / heads;
        let at = |t: usize, part: usize, head: usize, d: usize| qkv[t * 3 * hidden + part * hidden + head * head_dim + d] as f64;
        let mut context = vec![0.0f32; len * hidden];
        for head in 0..heads {
            for t in 0..len {
                let scores: Vec<f64> =
                    (0..len).map(|s| (0..head_dim).map(|d| at(t, 0, head, d) * at(s, 1, head, d)).sum::<f64>() * scale as f64).collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                for d in 0..head_dim {
                    let value: f64 = weights.iter().enumerate().map(|(s, w)| w * at(s, 2, head, d)).sum();
                    context[t * hidden + head * head_dim + d] = (value / total) as f32;
                }
            }
        }
        context
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
            })
            .collect()
    }

    fn check(len: usize, padding_rows: usize, hidden: usize, heads: usize) {
        let rows = len + padding_rows;
        let qkv = pseudo_random(rows * 3 * hidden, (len * 1000 + hidden) as u64);
        let scale = 1.0 / ((hidden / heads) as f32).sqrt();
        let mut context = vec![7.0f32; rows * hidden];
        self_attention(&qkv, len, hidden, heads, scale, &mut context);
        let expected = naive(&qkv, len, hidden, heads, scale);
        for (i, (got, want)) in context[..len * hidden].iter().zip(&expected).enumerate() {
            assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "len {len} hidden {hidden} heads {heads}: element {i} is {got}, expected {want}");
        }
        assert!(context[len * hidden..].iter().all(|&v| v == 7.0), "rows past len were written");
    }

    #[test]
    fn matches_naive_attention_for_every_tile_shape() {
        // Lengths cover partial row tiles (1..12) and partial column blocks
        // of 16, 32 and 48 keys, up to the 256-token limit.
        for len in [1, 2, 5, 11, 12, 13, 16, 17, 33, 49, 64, 70, 100, 256] {
            check(len, 0, 384, 12);
        }
    }

    #[test]
    fn wide_heads_and_padding_rows() {
        // Head width 64 (BERT-base) and 128 (two column blocks per head).
        for len in [3, 40, 129] {
            check(len, 4, 768, 12);
            check(len, 1, 256, 2);
        }
    }

    #[test]
    fn narrow_heads_use_sgemm() {
        for len in [1, 9, 30] {
            check(len, 2, 60, 3);
        }
    }
}
