//! Causal multi-head self-attention over packed variable-length sequences.
//!
//! Sequences are stored back to back as rows of `[total_len, heads * head_dim]`
//! with no padding. Under a causal mask a position never attends to a later
//! one, so the padded positions of a right-padded batch cannot change the
//! real ones: packing gives the same result without computing them.

use super::nn::{drop_threshold, keep, softmax_row};
use crate::error::{invalid, Error, Result};
use crate::gemm::{sgemm, MatRef};
use crate::graph::{Graph, Var};
use rayon::prelude::*;

/// Row ranges of packed sequences: sequence `b` occupies rows
/// `starts[b]..starts[b + 1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceOffsets {
    starts: Vec<usize>,
}

impl SequenceOffsets {
    /// Offsets from sequence lengths.
    pub fn from_lengths(lengths: &[usize]) -> Self {
        let mut starts = Vec::with_capacity(lengths.len() + 1);
        let mut acc = 0;
        starts.push(0);
        for &l in lengths {
            acc += l;
            starts.push(acc);
        }
        SequenceOffsets { starts }
    }

    /// Number of sequences.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// True when there is no sequence.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total number of rows.
    pub fn total(&self) -> usize {
        *self.starts.last().expect("starts has at least one entry")
    }

    /// Row range of sequence `b`.
    pub fn range(&self, b: usize) -> std::ops::Range<usize> {
        self.starts[b]..self.starts[b + 1]
    }

    /// Row of the last element of each sequence (empty sequences are invalid).
    pub fn last_rows(&self) -> Vec<usize> {
        self.starts[1..].iter().map(|&e| e.saturating_sub(1)).collect()
    }

    /// Offsets into a buffer of one `len x len` block per head and sequence.
    fn score_offsets(&self, heads: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.len() + 1);
        let mut acc = 0;
        out.push(0);
        for b in 0..self.len() {
            let l = self.range(b).len();
            acc += heads * l * l;
            out.push(acc);
        }
        out
    }
}

/// Splits `buf` into consecutive mutable pieces of the given lengths.
fn split_by<'a>(mut buf: &'a mut [f32], lens: impl Iterator<Item = usize>) -> Vec<&'a mut [f32]> {
    let mut parts = Vec::new();
    for l in lens {
        let (head, tail) = buf.split_at_mut(l);
        parts.push(head);
        buf = tail;
    }
    parts
}

impl Graph<'_> {
    /// Causal scaled dot-product attention with `heads` heads over packed
    /// sequences, with dropout `dropout` on the attention probabilities.
    ///
    /// `q`, `k` and `v` are `[total, heads * head_dim]`; the output has the
    /// same shape, heads concatenated as PyTorch's multi-head attention does.
    ///
    /// # Errors
    /// When shapes differ, the width is not divisible by `heads`, the offsets
    /// do not cover the rows, or `dropout` is outside `[0, 1)`.
    #[allow(clippy::too_many_arguments)]
    pub fn causal_attention(&mut self, q: Var, k: Var, v: Var, offsets: &SequenceOffsets, heads: usize, dropout: f32, seed: u64) -> Result<Var> {
        let shape = self.shape(q).to_vec();
        for other in [k, v] {
            if self.shape(other) != shape.as_slice() {
                return Err(Error::ShapeMismatch { op: "causal_attention", lhs: shape, rhs: self.shape(other).to_vec() });
            }
        }
        if shape.len() != 2 || heads == 0 || shape[1] % heads != 0 || shape[0] != offsets.total() {
            return Err(invalid("causal_attention", format!("shape {shape:?} with {heads} heads and {} packed rows", offsets.total())));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(invalid("causal_attention", format!("dropout {dropout} is outside [0, 1)")));
        }
        let width = shape[1];
        let dh = width / heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let threshold = drop_threshold(dropout);
        let keep_scale = 1.0 / (1.0 - dropout);
        let score_off = offsets.score_offsets(heads);
        let nseq = offsets.len();

        let mut probs = self.alloc(score_off[nseq]);
        let mut out = self.alloc(shape[0] * width);
        {
            let (qs, ks, vs) = (self.value(q), self.value(k), self.value(v));
            let out_parts = split_by(&mut out, (0..nseq).map(|b| offsets.range(b).len() * width));
            let prob_parts = split_by(&mut probs, (0..nseq).map(|b| score_off[b + 1] - score_off[b]));
            out_parts.into_par_iter().zip(prob_parts).enumerate().for_each(|(b, (o, p))| {
                let r = offsets.range(b);
                let l = r.len();
                if l == 0 {
                    return;
                }
                let mut dropped = vec![0.0f32; l * l];
                for h in 0..heads {
                    let view = |x| strided_block(x, r.start, l, h * dh, dh, width);
                    let ph = &mut p[h * l * l..(h + 1) * l * l];
                    sgemm(scale, view(qs), view(ks).t(), 0.0, ph, l);
                    for i in 0..l {
                        let row = &mut ph[i * l..(i + 1) * l];
                        softmax_in_place_prefix(row, i + 1);
                    }
                    let base = (score_off[b] + h * l * l) as u64;
                    for (idx, (d, &pv)) in dropped.iter_mut().zip(ph.iter()).enumerate() {
                        *d = if threshold == 0 || keep(seed, base + idx as u64, threshold) { pv * keep_scale } else { 0.0 };
                    }
                    let om = &mut o[h * dh..];
                    sgemm(1.0, MatRef::new(&dropped, l, l), view(vs), 0.0, om, width);
                }
            });
        }
        let offsets = offsets.clone();
        self.custom_op(&[q, k, v], shape, out, move |inp, sink| {
            let (qs, ks, vs, g) = (inp.value(q), inp.value(k), inp.value(v), inp.grad_output());
            let total = offsets.total() * width;
            let (mut dq, mut dk, mut dv) = (sink.scratch(total), sink.scratch(total), sink.scratch(total));
            {
                let lens = |b: usize| offsets.range(b).len() * width;
                let parts = split_by(&mut dq, (0..nseq).map(lens))
                    .into_iter()
                    .zip(split_by(&mut dk, (0..nseq).map(lens)))
                    .zip(split_by(&mut dv, (0..nseq).map(lens)))
                    .collect::<Vec<_>>();
                parts.into_par_iter().enumerate().for_each(|(b, ((dqb, dkb), dvb))| {
                    let r = offsets.range(b);
                    let l = r.len();
                    if l == 0 {
                        return;
                    }
                    let mut dropped = vec![0.0f32; l * l];
                    let mut dp = vec![0.0f32; l * l];
                    for h in 0..heads {
                        let view = |x| strided_block(x, r.start, l, h * dh, dh, width);
                        let ph = &probs[score_off[b] + h * l * l..score_off[b] + (h + 1) * l * l];
                        let base = (score_off[b] + h * l * l) as u64;
                        let kept = |idx: usize| threshold == 0 || keep(seed, base + idx as u64, threshold);
                        for (idx, (d, &pv)) in dropped.iter_mut().zip(ph).enumerate() {
                            *d = if kept(idx) { pv * keep_scale } else { 0.0 };
                        }
                        // dV += P'^T dO
                        sgemm(1.0, MatRef::new(&dropped, l, l).t(), view(g), 1.0, &mut dvb[h * dh..], width);
                        // dP' = dO V^T, then through dropout and softmax.
                        sgemm(1.0, view(g), view(vs).t(), 0.0, &mut dp, l);
                        for i in 0..l {
                            let mut dot = 0.0f32;
                            for j in 0..=i {
                                let idx = i * l + j;
                                dp[idx] = if kept(idx) { dp[idx] * keep_scale } else { 0.0 };
                                dot += dp[idx] * ph[idx];
                            }
                            for j in 0..l {
                                let idx = i * l + j;
                                dp[idx] = if j <= i { ph[idx] * (dp[idx] - dot) } else { 0.0 };
                            }
                        }
                        // dQ += dS K * scale, dK += dS^T Q * scale
                        sgemm(scale, MatRef::new(&dp, l, l), view(ks), 1.0, &mut dqb[h * dh..], width);
                        sgemm(scale, MatRef::new(&dp, l, l).t(), view(qs), 1.0, &mut dkb[h * dh..], width);
                    }
                });
            }
            sink.recycle(probs);
            for (var, buf) in [(q, dq), (k, dk), (v, dv)] {
                if let Some(d) = sink.grad(var) {
                    super::par_chunks(d, |s, c| {
                        let n = c.len();
                        c.iter_mut().zip(&buf[s..s + n]).for_each(|(x, y)| *x += y)
                    });
                }
                sink.recycle(buf);
            }
        })
    }

    /// Mixture of experts: `sum_e gates[:, e] * experts[e]` for gates
    /// `[rows, E]` and `E` expert outputs of shape `[rows, d]`.
    ///
    /// # Errors
    /// When the number of experts differs from the gate width or shapes differ.
    pub fn mixture(&mut self, gates: Var, experts: &[Var]) -> Result<Var> {
        let gs = self.shape(gates).to_vec();
        let e = experts.len();
        if gs.len() != 2 || gs[1] != e || e == 0 {
            return Err(invalid("mixture", format!("gates of shape {gs:?} for {e} experts")));
        }
        let es = self.shape(experts[0]).to_vec();
        if es.len() != 2 || es[0] != gs[0] {
            return Err(Error::ShapeMismatch { op: "mixture", lhs: gs, rhs: es });
        }
        for &x in experts {
            if self.shape(x) != es.as_slice() {
                return Err(Error::ShapeMismatch { op: "mixture", lhs: es, rhs: self.shape(x).to_vec() });
            }
        }
        let (rows, d) = (es[0], es[1]);
        let mut out = self.alloc(rows * d);
        {
            let gv = self.value(gates);
            let ev: Vec<&[f32]> = experts.iter().map(|&x| self.value(x)).collect();
            super::par_rows(&mut out, d, |i, r| {
                r.iter_mut().for_each(|o| *o = 0.0);
                for (k, x) in ev.iter().enumerate() {
                    let w = gv[i * e + k];
                    r.iter_mut().zip(&x[i * d..(i + 1) * d]).for_each(|(o, &v)| *o += w * v);
                }
            });
        }
        let mut inputs = vec![gates];
        inputs.extend_from_slice(experts);
        let experts = experts.to_vec();
        self.custom_op(&inputs, es, out, move |inp, sink| {
            let (gv, g) = (inp.value(gates), inp.grad_output());
            if let Some(dg) = sink.grad(gates) {
                let ev: Vec<&[f32]> = experts.iter().map(|&x| inp.value(x)).collect();
                super::par_rows(dg, e, |i, r| {
                    let gr = &g[i * d..(i + 1) * d];
                    for (k, x) in ev.iter().enumerate() {
                        r[k] += gr.iter().zip(&x[i * d..(i + 1) * d]).map(|(a, b)| a * b).sum::<f32>();
                    }
                });
            }
            for (k, &x) in experts.iter().enumerate() {
                if let Some(dx) = sink.grad(x) {
                    super::par_rows(dx, d, |i, r| {
                        let w = gv[i * e + k];
                        r.iter_mut().zip(&g[i * d..(i + 1) * d]).for_each(|(o, &v)| *o += w * v);
                    });
                }
            }
        })
    }
}

/// The `rows x cols` block at `row0`, `col0` of a row-major matrix of width `width`.
fn strided_block(x: &[f32], row0: usize, rows: usize, col0: usize, cols: usize, width: usize) -> MatRef<'_> {
    MatRef { data: &x[row0 * width + col0..], rows, cols, row_stride: width as isize, col_stride: 1 }
}

/// Softmax over the first `valid` entries of `row`; the rest become 0.
fn softmax_in_place_prefix(row: &mut [f32], valid: usize) {
    let (head, tail) = row.split_at_mut(valid);
    let copy: Vec<f32> = head.to_vec();
    softmax_row(&copy, head);
    tail.iter_mut().for_each(|v| *v = 0.0);
}
