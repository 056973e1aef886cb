//! Forward values against closed forms and naive references, and
//! reproducibility: the same computation gives the same bits run after run
//! and for any rayon thread count.

mod common;

use autograd::gemm::{sgemm, MatRef};
use autograd::{Graph, ParamId, ParamStore, SequenceOffsets, Tensor};
use common::*;

// ---------------------------------------------------------------------------
// sgemm

/// `alpha * op(a) op(b) + beta * c` in f64 for row-major `a` and `b`, where
/// `op` transposes when the flag is set; `c` is `m x n` with row stride `ldc`.
#[allow(clippy::too_many_arguments)]
fn naive_gemm(alpha: f32, a: &[f32], trans_a: bool, b: &[f32], trans_b: bool, beta: f32, c: &mut [f32], ldc: usize, (m, k, n): (usize, usize, usize)) {
    let at = |i: usize, p: usize| if trans_a { a[p * m + i] } else { a[i * k + p] } as f64;
    let bt = |p: usize, j: usize| if trans_b { b[j * k + p] } else { b[p * n + j] } as f64;
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
            c[i * ldc + j] = (alpha as f64 * dot + beta as f64 * c[i * ldc + j] as f64) as f32;
        }
    }
}

fn operand(data: &[f32], rows: usize, cols: usize, transposed: bool) -> MatRef<'_> {
    if transposed {
        MatRef::new(data, cols, rows).t()
    } else {
        MatRef::new(data, rows, cols)
    }
}

/// `(m, k, n)`: odd sizes, a zero-size inner dimension, and products of more
/// than 2^21 multiply-adds that sgemm splits by rows (tall) or columns (wide).
const GEMM_SHAPES: [(usize, usize, usize); 8] =
    [(1, 1, 1), (7, 5, 3), (33, 17, 65), (1, 300, 9), (129, 257, 31), (3, 0, 4), (257, 129, 301), (45, 391, 301)];

#[test]
fn sgemm_matches_naive() {
    for (m, k, n) in GEMM_SHAPES {
        for trans_a in [false, true] {
            for trans_b in [false, true] {
                // Small integers keep every sum exact, so equality is exact too.
                let a = small_ints(m * k, 6, 1);
                let b = small_ints(k * n, 6, 2);
                let ldc = n + 3;
                let start = small_ints(m * ldc, 6, 3);
                let (mut actual, mut expected) = (start.clone(), start.clone());
                sgemm(0.5, operand(&a, m, k, trans_a), operand(&b, k, n, trans_b), 2.0, &mut actual, ldc);
                naive_gemm(0.5, &a, trans_a, &b, trans_b, 2.0, &mut expected, ldc, (m, k, n));
                assert_eq!(actual, expected, "{m}x{k}x{n}, trans_a {trans_a}, trans_b {trans_b}");
            }
        }
    }
}

#[test]
fn sgemm_beta_zero_ignores_nan() {
    // With beta = 0 the output is overwritten, never read: pooled buffers hold garbage.
    let (m, k, n) = (20, 7, 18);
    let a = small_ints(m * k, 5, 1);
    let b = small_ints(k * n, 5, 2);
    let mut actual = vec![f32::NAN; m * n];
    let mut expected = vec![0.0; m * n];
    sgemm(1.0, MatRef::new(&a, m, k), MatRef::new(&b, k, n), 0.0, &mut actual, n);
    naive_gemm(1.0, &a, false, &b, false, 0.0, &mut expected, n, (m, k, n));
    assert_eq!(actual, expected);

    let mut empty_inner = vec![f32::NAN; 6];
    sgemm(1.0, MatRef::new(&[], 2, 0), MatRef::new(&[], 0, 3), 0.0, &mut empty_inner, 3);
    assert_eq!(empty_inner, vec![0.0; 6]);
}

#[test]
fn sgemm_random_close_to_naive() {
    for (m, k, n) in [(257, 129, 301), (45, 391, 301), (301, 64, 45)] {
        let a = randn(&[m, k], 1).into_data();
        let b = randn(&[k, n], 2).into_data();
        let mut actual = vec![0.0; m * n];
        let mut expected = vec![0.0; m * n];
        sgemm(1.0, MatRef::new(&a, m, k), MatRef::new(&b, k, n), 0.0, &mut actual, n);
        naive_gemm(1.0, &a, false, &b, false, 0.0, &mut expected, n, (m, k, n));
        // Sums of k products of N(0, 1) values: rounding error grows like sqrt(k) ulp.
        assert_close(&actual, &expected, 1e-4, 1e-4);
    }
}

#[test]
fn sgemm_same_bits_any_thread_count() {
    let shapes = [(257, 129, 301), (45, 391, 301), (301, 391, 45), (1000, 300, 300)];
    for (m, k, n) in shapes {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = randn(&[m * k], 1).into_data();
            let b = randn(&[k * n], 2).into_data();
            let run = |threads: usize| {
                with_threads(threads, || {
                    let mut c = vec![0.0; m * n];
                    sgemm(0.7, operand(&a, m, k, trans_a), operand(&b, k, n, trans_b), 0.0, &mut c, n);
                    c
                })
            };
            let (one, two, three) = (run(1), run(2), run(3));
            assert_eq!(bits(&one), bits(&two), "{m}x{k}x{n}, {trans_a} {trans_b}: 1 vs 2 threads");
            assert_eq!(bits(&one), bits(&three), "{m}x{k}x{n}, {trans_a} {trans_b}: 1 vs 3 threads");
        }
    }
}

#[test]
#[should_panic(expected = "sgemm")]
fn sgemm_rejects_short_operand() {
    // The view claims 4 x 4 elements of a 10-element slice.
    let a = vec![1.0; 10];
    let b = vec![1.0; 16];
    let mut c = vec![0.0; 16];
    sgemm(1.0, MatRef { data: &a, rows: 4, cols: 4, row_stride: 4, col_stride: 1 }, MatRef::new(&b, 4, 4), 0.0, &mut c, 4);
}

#[test]
#[should_panic(expected = "sgemm")]
fn sgemm_rejects_negative_offset() {
    // A negative stride from the start of the slice would read before it.
    let a = vec![1.0; 16];
    let b = vec![1.0; 16];
    let mut c = vec![0.0; 16];
    sgemm(1.0, MatRef { data: &a, rows: 4, cols: 4, row_stride: -4, col_stride: 1 }, MatRef::new(&b, 4, 4), 0.0, &mut c, 4);
}

#[test]
fn sgemm_strided_block_view() {
    // The 2 x 3 block at row 1, column 2 of a 4 x 6 matrix, read in place.
    let m: Vec<f32> = (0..24).map(|v| v as f32).collect();
    let block = MatRef { data: &m[6 + 2..], rows: 2, cols: 3, row_stride: 6, col_stride: 1 };
    let identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let mut c = vec![0.0; 6];
    sgemm(1.0, block, MatRef::new(&identity, 3, 3), 0.0, &mut c, 3);
    assert_eq!(c, vec![8.0, 9.0, 10.0, 14.0, 15.0, 16.0]);
}

// ---------------------------------------------------------------------------
// Causal attention

/// Computes multi-head attention in f64 on a right-padded batch
/// `[batch, max_len, width]` and returns the padded output. The mask is
/// `-inf` where the key position is later than the query position or is padding.
fn naive_padded_attention(q: &[f64], k: &[f64], v: &[f64], lengths: &[usize], max_len: usize, heads: usize, width: usize) -> Vec<f64> {
    let dh = width / heads;
    let scale = 1.0 / (dh as f64).sqrt();
    let mut out = vec![0.0; lengths.len() * max_len * width];
    for (b, &len) in lengths.iter().enumerate() {
        let at = |x: &[f64], t: usize, c: usize| x[(b * max_len + t) * width + c];
        for h in 0..heads {
            for i in 0..max_len {
                let mut scores = vec![f64::NEG_INFINITY; max_len];
                for (j, s) in scores.iter_mut().enumerate() {
                    let masked = j > i || j >= len;
                    if !masked {
                        *s = (0..dh).map(|c| at(q, i, h * dh + c) * at(k, j, h * dh + c)).sum::<f64>() * scale;
                    }
                }
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if max == f64::NEG_INFINITY {
                    // A padded query whose keys are all masked: its output is unused.
                    continue;
                }
                let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                for c in 0..dh {
                    let value: f64 = (0..max_len).map(|j| weights[j] / total * at(v, j, h * dh + c)).sum();
                    out[(b * max_len + i) * width + h * dh + c] = value;
                }
            }
        }
    }
    out
}

/// Copies packed rows `[total, width]` into a zero-padded `[batch, max_len, width]`.
fn pad(packed: &[f32], lengths: &[usize], max_len: usize, width: usize) -> Vec<f64> {
    let mut out = vec![0.0; lengths.len() * max_len * width];
    let mut row = 0;
    for (b, &len) in lengths.iter().enumerate() {
        for t in 0..len {
            for c in 0..width {
                out[(b * max_len + t) * width + c] = packed[(row + t) * width + c] as f64;
            }
        }
        row += len;
    }
    out
}

#[test]
fn causal_attention_matches_naive_padded() {
    let cases: [(&[usize], usize, usize); 4] = [(&[3, 1, 5, 2], 2, 4), (&[1], 2, 3), (&[1, 1, 1], 1, 8), (&[50, 17, 33], 2, 150)];
    for (lengths, heads, dh) in cases {
        let width = heads * dh;
        let total: usize = lengths.iter().sum();
        let max_len = *lengths.iter().max().unwrap();
        let store = ParamStore::new();
        let mut g = Graph::new(&store);
        let (qt, kt, vt) = (randn(&[total, width], 1), randn(&[total, width], 2), randn(&[total, width], 3));
        let expected = naive_padded_attention(
            &pad(qt.data(), lengths, max_len, width),
            &pad(kt.data(), lengths, max_len, width),
            &pad(vt.data(), lengths, max_len, width),
            lengths,
            max_len,
            heads,
            width,
        );
        let (q, k, v) = (g.constant(qt), g.constant(kt), g.constant(vt));
        let y = g.causal_attention(q, k, v, &SequenceOffsets::from_lengths(lengths), heads, 0.0, 5).unwrap();
        let packed_expected: Vec<f32> = {
            let mut rows = Vec::new();
            for (b, &len) in lengths.iter().enumerate() {
                rows.extend(expected[b * max_len * width..(b * max_len + len) * width].iter().map(|&x| x as f32));
            }
            rows
        };
        assert_eq!(g.shape(y), &[total, width]);
        assert_close(g.value(y), &packed_expected, 1e-5, 1e-4);
    }
}

#[test]
fn causal_attention_dropout_changes_output() {
    let lengths = [6, 4];
    let offsets = SequenceOffsets::from_lengths(&lengths);
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let (q, k, v) = (g.constant(randn(&[10, 8], 1)), g.constant(randn(&[10, 8], 2)), g.constant(randn(&[10, 8], 3)));
    let plain = g.causal_attention(q, k, v, &offsets, 2, 0.0, 5).unwrap();
    let first = g.causal_attention(q, k, v, &offsets, 2, 0.5, 5).unwrap();
    let again = g.causal_attention(q, k, v, &offsets, 2, 0.5, 5).unwrap();
    let other_seed = g.causal_attention(q, k, v, &offsets, 2, 0.5, 6).unwrap();
    assert_ne!(g.value(plain), g.value(first));
    assert_eq!(bits(g.value(first)), bits(g.value(again)));
    assert_ne!(g.value(first), g.value(other_seed));
}

#[test]
fn causal_attention_rejects_bad_input() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(randn(&[5, 6], 1));
    let narrow = g.constant(randn(&[5, 4], 2));
    let offsets = SequenceOffsets::from_lengths(&[2, 3]);
    assert!(g.causal_attention(x, x, narrow, &offsets, 2, 0.0, 0).is_err());
    assert!(g.causal_attention(x, x, x, &offsets, 4, 0.0, 0).is_err());
    assert!(g.causal_attention(x, x, x, &SequenceOffsets::from_lengths(&[2, 2]), 2, 0.0, 0).is_err());
    assert!(g.causal_attention(x, x, x, &offsets, 2, 1.0, 0).is_err());
}

// ---------------------------------------------------------------------------
// LayerNorm, cross-entropy, dropout

#[test]
fn layer_norm_matches_hand_computation() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(Tensor::new(vec![2, 4], vec![1.0, 2.0, 3.0, 4.0, -2.0, 0.0, 0.0, 6.0]).unwrap());
    let w = g.constant(Tensor::new(vec![4], vec![1.0, 2.0, 0.5, -1.0]).unwrap());
    let b = g.constant(Tensor::new(vec![4], vec![0.0, 1.0, 0.0, 2.0]).unwrap());
    let y = g.layer_norm(x, w, b, 1e-5).unwrap();

    // Row 0: mean 2.5, biased variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
    // Row 1: mean 1, biased variance (9 + 1 + 1 + 25) / 4 = 9.
    let r0 = 1.0 / (1.25f64 + 1e-5).sqrt();
    let r1 = 1.0 / (9.0f64 + 1e-5).sqrt();
    let expected = [
        -1.5 * r0,
        -0.5 * r0 * 2.0 + 1.0,
        0.5 * r0 * 0.5,
        1.5 * r0 * -1.0 + 2.0,
        -3.0 * r1,
        -1.0 * r1 * 2.0 + 1.0,
        -1.0 * r1 * 0.5,
        5.0 * r1 * -1.0 + 2.0,
    ]
    .map(|v| v as f32);
    assert_close(g.value(y), &expected, 1e-6, 1e-6);
}

#[test]
fn layer_norm_constant_row_gives_bias() {
    // Zero variance: xhat = 0 / sqrt(eps) = 0, so the output is the bias.
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(Tensor::full(&[1, 3], 7.0));
    let w = g.constant(Tensor::full(&[3], 2.0));
    let b = g.constant(Tensor::new(vec![3], vec![0.5, -1.0, 3.0]).unwrap());
    let y = g.layer_norm(x, w, b, 1e-12).unwrap();
    assert_eq!(g.value(y), &[0.5, -1.0, 3.0]);
}

#[test]
fn cross_entropy_matches_log_sum_exp() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let logits = g.constant(Tensor::new(vec![3, 3], vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 100.0, -100.0, 50.0]).unwrap());
    let loss = g.cross_entropy(logits, &[2, 1, 2]).unwrap();

    // CE(z, t) = log(sum_j e^z_j) - z_t, averaged over rows.
    let row0 = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln() - 3.0;
    let row1 = 3f64.ln();
    // log(e^100 + e^-100 + e^50) - 50 = 50 + log(1 + e^-200 + e^-50), which overflows if computed naively.
    let row2 = 50.0 + (-50f64).exp().ln_1p();
    let expected = ((row0 + row1 + row2) / 3.0) as f32;
    assert_close(g.value(loss), &[expected], 1e-5, 1e-6);
}

#[test]
fn binary_rejects_incompatible_shapes() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let a = g.constant(randn(&[2, 3], 1));
    let b = g.constant(randn(&[2, 2], 2));
    let err = g.add(a, b).unwrap_err();
    assert_eq!(err.to_string(), "add: shape mismatch between [2, 3] and [2, 2]");
}

#[test]
fn cross_entropy_rejects_bad_targets() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let logits = g.constant(randn(&[2, 3], 1));
    assert!(g.cross_entropy(logits, &[0, 3]).is_err());
    assert!(g.cross_entropy(logits, &[0]).is_err());
}

#[test]
fn log_softmax_matches_log_of_softmax() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(randn(&[5, 9], 1));
    let ls = g.log_softmax(x).unwrap();
    let s = g.softmax(x).unwrap();
    let log_s = g.log(s);
    assert_close(g.value(ls), g.value(log_s), 1e-5, 1e-5);
    for r in 0..5 {
        let total: f32 = g.value(s)[r * 9..(r + 1) * 9].iter().sum();
        assert!((total - 1.0).abs() < 1e-6, "row {r} sums to {total}");
    }
}

#[test]
fn dropout_keep_rate_and_scale() {
    let n = 200_000;
    let p = 0.3;
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(Tensor::full(&[n], 1.0));
    let y = g.dropout(x, p, 2024).unwrap();
    let kept: Vec<f32> = g.value(y).iter().copied().filter(|&v| v != 0.0).collect();
    let rate = kept.len() as f64 / n as f64;
    // The standard deviation of the rate is sqrt(0.21 / n) = 0.001.
    assert!((rate - 0.7).abs() < 0.006, "keep rate {rate}");
    assert!(kept.iter().all(|&v| v == 1.0 / 0.7), "kept values are scaled by 1 / (1 - p)");
}

#[test]
fn dropout_zero_is_identity() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let data = randn(&[4, 5], 1);
    let x = g.constant(data.clone());
    let y = g.dropout(x, 0.0, 1).unwrap();
    assert_eq!(g.value(y), data.data());
}

#[test]
fn dropout_seeds_differ() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(Tensor::full(&[1000], 1.0));
    let a = g.dropout(x, 0.5, 1).unwrap();
    let b = g.dropout(x, 0.5, 2).unwrap();
    let same_seed = g.dropout(x, 0.5, 1).unwrap();
    assert_ne!(g.value(a), g.value(b));
    assert_eq!(g.value(a), g.value(same_seed));
}

#[test]
fn dropout_rejects_bad_probability() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(Tensor::full(&[4], 1.0));
    assert!(g.dropout(x, 1.0, 0).is_err());
    assert!(g.dropout(x, -0.1, 0).is_err());
    assert!(g.dropout(x, f32::NAN, 0).is_err());
}

#[test]
fn l2_normalize_gives_unit_rows() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(Tensor::new(vec![2, 2], vec![3.0, 4.0, 0.0, 0.0]).unwrap());
    let y = g.l2_normalize(x, 1e-12).unwrap();
    // [3, 4] / 5 = [0.6, 0.8], and a zero row divided by eps stays zero.
    assert_eq!(g.value(y), &[0.6, 0.8, 0.0, 0.0]);
}

#[test]
fn gelu_matches_closed_form() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(Tensor::new(vec![4], vec![-2.0, -0.5, 0.0, 1.0]).unwrap());
    let y = g.gelu(x);
    // gelu(x) = x Phi(x) with Phi(-2) = 0.0227501, Phi(-0.5) = 0.3085375, Phi(1) = 0.8413447.
    assert_close(g.value(y), &[-2.0 * 0.022_750_1, -0.5 * 0.308_537_5, 0.0, 0.841_344_7], 1e-6, 1e-5);
}

#[test]
fn softplus_is_stable() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(Tensor::new(vec![3], vec![-100.0, 0.0, 100.0]).unwrap());
    let y = g.softplus(x);
    // ln(1 + e^x): e^-100 rounds to ~3.7e-44, ln 2 at 0, x itself at 100.
    assert_close(g.value(y), &[0.0, std::f32::consts::LN_2, 100.0], 1e-30, 1e-6);
}

// ---------------------------------------------------------------------------
// Shapes and indexing

#[test]
fn split_merge_heads_round_trip() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let data = randn(&[2, 3, 6], 1);
    let x = g.constant(data.clone());
    let split = g.split_heads(x, 3).unwrap();
    assert_eq!(g.shape(split), &[6, 3, 2]);
    // Head h of batch b, position t, channel c is x[b, t, h * 2 + c].
    assert_eq!(g.value(split)[(1 * 3 + 2) * 3 * 2 + 1 * 2 + 0], data.data()[(1 * 3 + 1) * 6 + 2 * 2 + 0]);
    let merged = g.merge_heads(split, 3).unwrap();
    assert_eq!(g.value(merged), data.data());
}

#[test]
fn permute_moves_elements() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(Tensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap());
    let t = g.transpose(x, 0, 1).unwrap();
    assert_eq!(g.shape(t), &[3, 2]);
    assert_eq!(g.value(t), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
}

#[test]
fn concat_and_stack_layout() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let a = g.constant(Tensor::new(vec![2, 1], vec![1.0, 2.0]).unwrap());
    let b = g.constant(Tensor::new(vec![2, 2], vec![3.0, 4.0, 5.0, 6.0]).unwrap());
    let c = g.concat(&[a, b], 1).unwrap();
    assert_eq!(g.value(c), &[1.0, 3.0, 4.0, 2.0, 5.0, 6.0]);
    let s = g.stack(&[a, a], 1).unwrap();
    assert_eq!(g.shape(s), &[2, 2, 1]);
    assert_eq!(g.value(s), &[1.0, 1.0, 2.0, 2.0]);
}

#[test]
fn index_select_picks_middle_axis() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(Tensor::new(vec![2, 3, 1], vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0]).unwrap());
    let y = g.index_select(x, 1, &[2, 2, 0]).unwrap();
    assert_eq!(g.shape(y), &[2, 3, 1]);
    assert_eq!(g.value(y), &[2.0, 2.0, 0.0, 12.0, 12.0, 10.0]);
    assert!(g.index_select(x, 1, &[3]).is_err());
    assert!(g.index_select(x, 3, &[0]).is_err());
}

#[test]
fn embedding_rejects_bad_input() {
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let table = g.constant(randn(&[4, 3], 1));
    assert!(g.embedding(table, &[4]).is_err());
    let not_a_table = g.constant(randn(&[2, 4, 3], 2));
    assert!(g.embedding(not_a_table, &[0]).is_err());
}

#[test]
fn linear_with_empty_input_axis() {
    // x W^T with an inner size of 0 is the bias broadcast over every row.
    let store = ParamStore::new();
    let mut g = Graph::new(&store);
    let x = g.constant(Tensor::zeros(&[3, 0]));
    let w = g.constant(Tensor::zeros(&[2, 0]));
    let b = g.constant(Tensor::new(vec![2], vec![1.0, -1.0]).unwrap());
    let y = g.linear(x, w, Some(b)).unwrap();
    assert_eq!(g.shape(y), &[3, 2]);
    assert_eq!(g.value(y), &[1.0, -1.0, 1.0, -1.0, 1.0, -1.0]);
}

// ---------------------------------------------------------------------------
// Reproducibility

/// Parameters of a small Transformer-like block, sized so that every op
/// with a parallel path takes it (sgemm splits, rayon rows and chunks).
struct Block {
    store: ParamStore,
    ids: Vec<ParamId>,
}

const ROWS: usize = 384;
const WIDTH: usize = 96;
const CLASSES: usize = 40;

fn block() -> Block {
    let mut store = ParamStore::new();
    let specs: [(&str, &[usize]); 10] = [
        ("w1", &[WIDTH, 64]),
        ("b1", &[WIDTH]),
        ("shift", &[WIDTH]),
        ("ln.weight", &[WIDTH]),
        ("ln.bias", &[WIDTH]),
        ("wq", &[WIDTH, WIDTH]),
        ("wk", &[WIDTH, WIDTH]),
        ("wv", &[WIDTH, WIDTH]),
        ("gates", &[ROWS, 2]),
        ("out", &[CLASSES, WIDTH]),
    ];
    let ids = specs
        .iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let value = randn(shape, 20 + i as u64);
            let scaled = Tensor::new(value.shape().to_vec(), value.data().iter().map(|v| v * 0.2).collect()).unwrap();
            store.add(*name, scaled)
        })
        .collect();
    Block { store, ids }
}

/// One forward and backward pass; returns the loss, an intermediate output
/// and every gradient, in parameter order.
fn forward_backward(block: &Block) -> (Vec<f32>, Vec<f32>, Vec<Vec<f32>>) {
    let lengths = [50, 50, 50, 50, 50, 50, 50, 34];
    let offsets = SequenceOffsets::from_lengths(&lengths);
    let targets: Vec<usize> = (0..ROWS).map(|i| (i * 7) % CLASSES).collect();
    let mut g = Graph::new(&block.store);
    let p: Vec<_> = block.ids.iter().map(|&id| g.param(id)).collect();
    let x = g.constant(randn(&[ROWS, 64], 100));
    let column = g.constant(uniform(&[ROWS, 1], 0.5, 1.5, 101));

    let h = g.linear(x, p[0], Some(p[1])).unwrap();
    let h = g.gelu(h);
    let h = g.add(h, p[2]).unwrap();
    let h = g.mul(h, column).unwrap();
    let h = g.layer_norm(h, p[3], p[4], 1e-12).unwrap();
    let h = g.dropout(h, 0.1, 42).unwrap();
    let q = g.linear(h, p[5], None).unwrap();
    let k = g.linear(h, p[6], None).unwrap();
    let v = g.linear(h, p[7], None).unwrap();
    let att = g.causal_attention(q, k, v, &offsets, 2, 0.1, 43).unwrap();
    let gates = g.softmax(p[8]).unwrap();
    let mixed = g.mixture(gates, &[att, h]).unwrap();
    let normed = g.l2_normalize(mixed, 1e-12).unwrap();
    let logits = g.linear(normed, p[9], None).unwrap();
    let logits = g.scale(logits, 1.0 / 0.07);
    let hidden = g.value(mixed).to_vec();
    let loss = g.cross_entropy(logits, &targets).unwrap();
    let loss_value = g.value(loss).to_vec();
    let grads = g.backward(loss).unwrap();
    let all = block.ids.iter().map(|&id| grads.get(id).expect("every parameter gets a gradient").to_vec()).collect();
    (loss_value, hidden, all)
}

#[test]
fn block_same_bits_twice() {
    let block = block();
    let (loss_a, hidden_a, grads_a) = forward_backward(&block);
    let (loss_b, hidden_b, grads_b) = forward_backward(&block);
    assert_eq!(bits(&loss_a), bits(&loss_b));
    assert_eq!(bits(&hidden_a), bits(&hidden_b));
    for (i, (a, b)) in grads_a.iter().zip(&grads_b).enumerate() {
        assert_eq!(bits(a), bits(b), "gradient of parameter {i}");
    }
}

#[test]
fn block_same_bits_any_thread_count() {
    let block = block();
    let (loss_1, hidden_1, grads_1) = with_threads(1, || forward_backward(&block));
    let (loss_2, hidden_2, grads_2) = with_threads(2, || forward_backward(&block));
    assert!(loss_1[0].is_finite());
    assert_eq!(bits(&loss_1), bits(&loss_2));
    assert_eq!(bits(&hidden_1), bits(&hidden_2));
    for (i, (a, b)) in grads_1.iter().zip(&grads_2).enumerate() {
        assert_eq!(bits(a), bits(b), "gradient of parameter {i}");
    }
}

#[test]
fn reductions_same_bits_any_thread_count() {
    // 2^20 elements: sum, sum_last and the bias-row reduction all run in parallel.
    let data = randn(&[1024, 1024], 9);
    let bias = randn(&[1024], 10);
    let run = |threads: usize| {
        with_threads(threads, || {
            let mut store = ParamStore::new();
            let b = store.add("bias", bias.clone());
            let mut g = Graph::new(&store);
            let x = g.constant(data.clone());
            let bv = g.param(b);
            let y = g.add(x, bv).unwrap();
            let rows = g.sum_last(y).unwrap();
            let sq = g.mul(rows, rows).unwrap();
            let total = g.sum(sq);
            let value = g.value(total).to_vec();
            let grads = g.backward(total).unwrap();
            (value, grads.get(b).unwrap().to_vec())
        })
    };
    let (value_1, grad_1) = run(1);
    let (value_2, grad_2) = run(2);
    assert_eq!(bits(&value_1), bits(&value_2));
    assert_eq!(bits(&grad_1), bits(&grad_2));
}
