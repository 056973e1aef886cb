//! Neural-network layers: softmax, LayerNorm, dropout, L2 normalisation and
//! the fused softmax cross-entropy.

use super::{par_chunks, par_rows};
use crate::error::{invalid, Error, Result};
use crate::graph::{Graph, Var};
use rayon::prelude::*;

/// A uniform `u32` from `(seed, index)`: a counter-based generator, so that
/// masks are reproducible, generated in parallel and recomputed in backward
/// instead of stored.
#[inline]
pub(crate) fn hash_u32(seed: u64, index: u64) -> u32 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 32) as u32
}

/// Dropout keep decision for element `index` with drop probability given as
/// a `u32` threshold.
#[inline]
pub(crate) fn keep(seed: u64, index: u64, threshold: u32) -> bool {
    hash_u32(seed, index) >= threshold
}

pub(crate) fn drop_threshold(p: f32) -> u32 {
    ((p as f64) * (u32::MAX as f64 + 1.0)).min(u32::MAX as f64) as u32
}

fn last_dim(g: &Graph<'_>, x: Var, op: &'static str) -> Result<usize> {
    match g.shape(x).last() {
        Some(&d) if d > 0 => Ok(d),
        _ => Err(invalid(op, format!("needs a non-empty last axis, got shape {:?}", g.shape(x)))),
    }
}

impl Graph<'_> {
    /// Softmax over the last axis.
    ///
    /// # Errors
    /// When `x` has no last axis.
    pub fn softmax(&mut self, x: Var) -> Result<Var> {
        let d = last_dim(self, x, "softmax")?;
        let mut out = self.alloc(self.value(x).len());
        {
            let xs = self.value(x);
            par_rows(&mut out, d, |i, r| softmax_row(&xs[i * d..(i + 1) * d], r));
        }
        let shape = self.shape(x).to_vec();
        self.custom_op(&[x], shape, out, move |inp, sink| {
            let (y, g) = (inp.output(), inp.grad_output());
            if let Some(dx) = sink.grad(x) {
                par_rows(dx, d, |i, r| {
                    let (yr, gr) = (&y[i * d..(i + 1) * d], &g[i * d..(i + 1) * d]);
                    let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
                    for j in 0..d {
                        r[j] += yr[j] * (gr[j] - dot);
                    }
                });
            }
        })
    }

    /// Log-softmax over the last axis.
    ///
    /// # Errors
    /// When `x` has no last axis.
    pub fn log_softmax(&mut self, x: Var) -> Result<Var> {
        let d = last_dim(self, x, "log_softmax")?;
        let mut out = self.alloc(self.value(x).len());
        {
            let xs = self.value(x);
            par_rows(&mut out, d, |i, r| {
                let row = &xs[i * d..(i + 1) * d];
                let lse = log_sum_exp(row);
                r.iter_mut().zip(row).for_each(|(o, &v)| *o = v - lse);
            });
        }
        let shape = self.shape(x).to_vec();
        self.custom_op(&[x], shape, out, move |inp, sink| {
            let (y, g) = (inp.output(), inp.grad_output());
            if let Some(dx) = sink.grad(x) {
                par_rows(dx, d, |i, r| {
                    let (yr, gr) = (&y[i * d..(i + 1) * d], &g[i * d..(i + 1) * d]);
                    let total: f32 = gr.iter().sum();
                    for j in 0..d {
                        r[j] += gr[j] - yr[j].exp() * total;
                    }
                });
            }
        })
    }

    /// LayerNorm over the last axis, fused: `(x - mean) / sqrt(var + eps) * weight + bias`
    /// with the biased variance, as PyTorch computes it.
    ///
    /// # Errors
    /// When `weight` or `bias` is not `[d]` for the last axis `d` of `x`.
    pub fn layer_norm(&mut self, x: Var, weight: Var, bias: Var, eps: f32) -> Result<Var> {
        let d = last_dim(self, x, "layer_norm")?;
        for p in [weight, bias] {
            if self.shape(p) != [d] {
                return Err(Error::ShapeMismatch { op: "layer_norm", lhs: self.shape(x).to_vec(), rhs: self.shape(p).to_vec() });
            }
        }
        let n = self.value(x).len();
        let rows = n / d;
        let mut out = self.alloc(n);
        let mut stats = vec![0.0f32; rows * 2];
        {
            let (xs, w, b) = (self.value(x), self.value(weight), self.value(bias));
            let work = |i: usize, r: &mut [f32], st: &mut [f32]| {
                let row = &xs[i * d..(i + 1) * d];
                let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
                let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
                let rstd = 1.0 / (var + eps as f64).sqrt();
                for j in 0..d {
                    r[j] = ((row[j] as f64 - mean) * rstd) as f32 * w[j] + b[j];
                }
                st[0] = mean as f32;
                st[1] = rstd as f32;
            };
            if n >= super::PAR_MIN {
                out.par_chunks_mut(d).zip(stats.par_chunks_mut(2)).enumerate().for_each(|(i, (r, st))| work(i, r, st));
            } else {
                out.chunks_mut(d).zip(stats.chunks_mut(2)).enumerate().for_each(|(i, (r, st))| work(i, r, st));
            }
        }
        let shape = self.shape(x).to_vec();
        self.custom_op(&[x, weight, bias], shape, out, move |inp, sink| {
            let (xs, w, g) = (inp.value(x), inp.value(weight), inp.grad_output());
            let xhat = |i: usize, j: usize| (xs[i * d + j] - stats[2 * i]) * stats[2 * i + 1];
            if let Some(dx) = sink.grad(x) {
                par_rows(dx, d, |i, r| {
                    let gr = &g[i * d..(i + 1) * d];
                    let (mut m1, mut m2) = (0.0f32, 0.0f32);
                    for j in 0..d {
                        let gw = gr[j] * w[j];
                        m1 += gw;
                        m2 += gw * xhat(i, j);
                    }
                    m1 /= d as f32;
                    m2 /= d as f32;
                    let rstd = stats[2 * i + 1];
                    for j in 0..d {
                        r[j] += rstd * (gr[j] * w[j] - m1 - xhat(i, j) * m2);
                    }
                });
            }
            let want_w = sink.wants(weight);
            let want_b = sink.wants(bias);
            if want_w || want_b {
                // Partial sums over fixed row blocks keep the order, and the
                // result, independent of the thread count.
                let parts: Vec<(Vec<f32>, Vec<f32>)> = (0..rows)
                    .into_par_iter()
                    .fold_chunks(256, || (vec![0.0f32; d], vec![0.0f32; d]), |(mut dw, mut db), i| {
                        for j in 0..d {
                            let gv = g[i * d + j];
                            dw[j] += gv * xhat(i, j);
                            db[j] += gv;
                        }
                        (dw, db)
                    })
                    .collect();
                if let Some(dw) = sink.grad(weight) {
                    for (p, _) in &parts {
                        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
                    }
                }
                if let Some(db) = sink.grad(bias) {
                    for (_, p) in &parts {
                        db.iter_mut().zip(p).for_each(|(a, b)| *a += b);
                    }
                }
            }
        })
    }

    /// Inverted dropout: zeroes each element with probability `p` and scales
    /// the rest by `1 / (1 - p)`. The mask comes from a counter-based hash of
    /// `seed` and the element index, so it is recomputed in backward rather
    /// than stored. `p = 0` returns `x` unchanged.
    ///
    /// # Errors
    /// When `p` is outside `[0, 1)`.
    pub fn dropout(&mut self, x: Var, p: f32, seed: u64) -> Result<Var> {
        if !(0.0..1.0).contains(&p) {
            return Err(invalid("dropout", format!("probability {p} is outside [0, 1)")));
        }
        if p == 0.0 {
            return Ok(x);
        }
        let threshold = drop_threshold(p);
        let scale = 1.0 / (1.0 - p);
        let mut out = self.alloc(self.value(x).len());
        {
            let xs = self.value(x);
            par_chunks(&mut out, |s, c| {
                for (k, o) in c.iter_mut().enumerate() {
                    let i = s + k;
                    *o = if keep(seed, i as u64, threshold) { xs[i] * scale } else { 0.0 };
                }
            });
        }
        let shape = self.shape(x).to_vec();
        self.custom_op(&[x], shape, out, move |inp, sink| {
            let g = inp.grad_output();
            if let Some(dx) = sink.grad(x) {
                par_chunks(dx, |s, c| {
                    for (k, d) in c.iter_mut().enumerate() {
                        let i = s + k;
                        if keep(seed, i as u64, threshold) {
                            *d += g[i] * scale;
                        }
                    }
                });
            }
        })
    }

    /// Divides each row of the last axis by its Euclidean norm, floored at
    /// `eps` as `torch.nn.functional.normalize` does.
    ///
    /// # Errors
    /// When `x` has no last axis.
    pub fn l2_normalize(&mut self, x: Var, eps: f32) -> Result<Var> {
        let d = last_dim(self, x, "l2_normalize")?;
        let rows = self.value(x).len() / d;
        let mut norms = vec![0.0f32; rows];
        {
            let xs = self.value(x);
            par_rows(&mut norms, 1, |i, n| {
                n[0] = (xs[i * d..(i + 1) * d].iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt() as f32).max(eps);
            });
        }
        let mut out = self.alloc(rows * d);
        {
            let xs = self.value(x);
            par_rows(&mut out, d, |i, r| {
                let inv = 1.0 / norms[i];
                r.iter_mut().zip(&xs[i * d..(i + 1) * d]).for_each(|(o, &v)| *o = v * inv);
            });
        }
        let shape = self.shape(x).to_vec();
        self.custom_op(&[x], shape, out, move |inp, sink| {
            let (y, g) = (inp.output(), inp.grad_output());
            if let Some(dx) = sink.grad(x) {
                par_rows(dx, d, |i, r| {
                    let (yr, gr) = (&y[i * d..(i + 1) * d], &g[i * d..(i + 1) * d]);
                    let inv = 1.0 / norms[i];
                    if norms[i] > eps {
                        let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
                        for j in 0..d {
                            r[j] += (gr[j] - yr[j] * dot) * inv;
                        }
                    } else {
                        // The floor is active: the output is x / eps, linear in x.
                        for j in 0..d {
                            r[j] += gr[j] * inv;
                        }
                    }
                });
            }
        })
    }

    /// Mean softmax cross-entropy of `logits` `[batch, classes]` against
    /// class indices `targets`, fused so that no probability matrix is kept.
    ///
    /// # Errors
    /// When `logits` is not 2-D, `targets` has the wrong length or a target
    /// is out of range.
    pub fn cross_entropy(&mut self, logits: Var, targets: &[usize]) -> Result<Var> {
        let s = self.shape(logits).to_vec();
        if s.len() != 2 || s[0] != targets.len() {
            return Err(invalid("cross_entropy", format!("logits of shape {s:?} with {} targets", targets.len())));
        }
        let (b, c) = (s[0], s[1]);
        if let Some((row, &t)) = targets.iter().enumerate().find(|(_, &t)| t >= c) {
            return Err(invalid("cross_entropy", format!("target {t} of row {row} is out of range for {c} classes")));
        }
        let mut lse = vec![0.0f32; b];
        {
            let xs = self.value(logits);
            par_rows(&mut lse, 1, |i, o| o[0] = log_sum_exp(&xs[i * c..(i + 1) * c]));
        }
        let xs = self.value(logits);
        let total: f64 = (0..b).map(|i| (lse[i] - xs[i * c + targets[i]]) as f64).sum();
        let mut out = self.alloc(1);
        out[0] = (total / b.max(1) as f64) as f32;
        let targets = targets.to_vec();
        self.custom_op(&[logits], vec![], out, move |inp, sink| {
            let scale = inp.grad_output()[0] / b.max(1) as f32;
            let xs = inp.value(logits);
            if let Some(dx) = sink.grad(logits) {
                par_rows(dx, c, |i, r| {
                    let row = &xs[i * c..(i + 1) * c];
                    for j in 0..c {
                        r[j] += (row[j] - lse[i]).exp() * scale;
                    }
                    r[targets[i]] -= scale;
                });
            }
        })
    }
}

fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    let s: f32 = row.iter().map(|&v| (v - max).exp()).sum();
    max + s.ln()
}

pub(crate) fn softmax_row(row: &[f32], out: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut s = 0.0;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = (v - max).exp();
        s += *o;
    }
    let inv = 1.0 / s;
    out.iter_mut().for_each(|o| *o *= inv);
}

