//! Matrix products: 2-D, batched, and the linear layer.

use crate::error::{Error, Result};
use crate::gemm::{sgemm, MatRef};
use crate::graph::{Graph, Var};
use rayon::prelude::*;

/// The stored row-major `rows x cols` matrix, transposed when `transposed`.
fn view(data: &[f32], rows: usize, cols: usize, transposed: bool) -> MatRef<'_> {
    if transposed {
        MatRef::new(data, rows, cols).t()
    } else {
        MatRef::new(data, rows, cols)
    }
}

impl Graph<'_> {
    /// `op(a) * op(b)` for 2-D `a` and `b`, where `op` transposes when the
    /// flag is set. Transposes are strides passed to GEMM, never copies.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless both are 2-D with matching inner size.
    pub fn matmul_t(&mut self, a: Var, b: Var, trans_a: bool, trans_b: bool) -> Result<Var> {
        let (sa, sb) = (self.shape(a).to_vec(), self.shape(b).to_vec());
        if sa.len() != 2 || sb.len() != 2 {
            return Err(Error::ShapeMismatch { op: "matmul", lhs: sa, rhs: sb });
        }
        let (m, k) = if trans_a { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
        let (k2, n) = if trans_b { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
        if k != k2 {
            return Err(Error::ShapeMismatch { op: "matmul", lhs: sa, rhs: sb });
        }
        let mut out = self.alloc(m * n);
        sgemm(1.0, view(self.value(a), sa[0], sa[1], trans_a), view(self.value(b), sb[0], sb[1], trans_b), 0.0, &mut out, n);
        self.custom_op(&[a, b], vec![m, n], out, move |inp, sink| {
            let g = MatRef::new(inp.grad_output(), m, n);
            let (va, vb) = (inp.value(a), inp.value(b));
            let opa = view(va, sa[0], sa[1], trans_a);
            let opb = view(vb, sb[0], sb[1], trans_b);
            if let Some(da) = sink.grad(a) {
                if trans_a {
                    // a is [k, m]: da += op(b) g^T
                    sgemm(1.0, opb, g.t(), 1.0, da, m);
                } else {
                    sgemm(1.0, g, opb.t(), 1.0, da, k);
                }
            }
            if let Some(db) = sink.grad(b) {
                if trans_b {
                    // b is [n, k]: db += g^T op(a)
                    sgemm(1.0, g.t(), opa, 1.0, db, k);
                } else {
                    sgemm(1.0, opa.t(), g, 1.0, db, n);
                }
            }
        })
    }

    /// `a * b` for 2-D operands.
    ///
    /// # Errors
    /// See [`Graph::matmul_t`].
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.matmul_t(a, b, false, false)
    }

    /// Batched `op(a[i]) * op(b[i])` for 3-D operands `[batch, rows, cols]`;
    /// batches run in parallel.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless both are 3-D with equal batch and
    /// matching inner size.
    pub fn bmm(&mut self, a: Var, b: Var, trans_a: bool, trans_b: bool) -> Result<Var> {
        let (sa, sb) = (self.shape(a).to_vec(), self.shape(b).to_vec());
        if sa.len() != 3 || sb.len() != 3 || sa[0] != sb[0] {
            return Err(Error::ShapeMismatch { op: "bmm", lhs: sa, rhs: sb });
        }
        let batch = sa[0];
        let (m, k) = if trans_a { (sa[2], sa[1]) } else { (sa[1], sa[2]) };
        let (k2, n) = if trans_b { (sb[2], sb[1]) } else { (sb[1], sb[2]) };
        if k != k2 {
            return Err(Error::ShapeMismatch { op: "bmm", lhs: sa, rhs: sb });
        }
        let (la, lb) = (sa[1] * sa[2], sb[1] * sb[2]);
        let mut out = self.alloc(batch * m * n);
        {
            let (va, vb) = (self.value(a), self.value(b));
            out.par_chunks_mut((m * n).max(1)).enumerate().for_each(|(i, c)| {
                let x = view(&va[i * la..(i + 1) * la], sa[1], sa[2], trans_a);
                let y = view(&vb[i * lb..(i + 1) * lb], sb[1], sb[2], trans_b);
                sgemm(1.0, x, y, 0.0, c, n);
            });
        }
        self.custom_op(&[a, b], vec![batch, m, n], out, move |inp, sink| {
            let (va, vb, g) = (inp.value(a), inp.value(b), inp.grad_output());
            if let Some(da) = sink.grad(a) {
                da.par_chunks_mut(la.max(1)).enumerate().for_each(|(i, d)| {
                    let gi = MatRef::new(&g[i * m * n..(i + 1) * m * n], m, n);
                    let opb = view(&vb[i * lb..(i + 1) * lb], sb[1], sb[2], trans_b);
                    if trans_a {
                        sgemm(1.0, opb, gi.t(), 1.0, d, m);
                    } else {
                        sgemm(1.0, gi, opb.t(), 1.0, d, k);
                    }
                });
            }
            if let Some(db) = sink.grad(b) {
                db.par_chunks_mut(lb.max(1)).enumerate().for_each(|(i, d)| {
                    let gi = MatRef::new(&g[i * m * n..(i + 1) * m * n], m, n);
                    let opa = view(&va[i * la..(i + 1) * la], sa[1], sa[2], trans_a);
                    if trans_b {
                        sgemm(1.0, gi.t(), opa, 1.0, d, k);
                    } else {
                        sgemm(1.0, opa.t(), gi, 1.0, d, n);
                    }
                });
            }
        })
    }

    /// Applies the linear layer `x W^T + bias` on the last axis of `x`, with `w`
    /// stored `[out, in]` as PyTorch stores it.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the last axis of `x` is not `in`, or the
    /// bias is not `[out]`.
    pub fn linear(&mut self, x: Var, w: Var, bias: Option<Var>) -> Result<Var> {
        let sx = self.shape(x).to_vec();
        let sw = self.shape(w).to_vec();
        let d_in = sx.last().copied().unwrap_or(1);
        if sw.len() != 2 || sw[1] != d_in {
            return Err(Error::ShapeMismatch { op: "linear", lhs: sx, rhs: sw });
        }
        let d_out = sw[0];
        if let Some(b) = bias {
            if self.shape(b) != [d_out] {
                return Err(Error::ShapeMismatch { op: "linear bias", lhs: sw, rhs: self.shape(b).to_vec() });
            }
        }
        // The product of the leading axes, not len / d_in, which breaks when d_in = 0.
        let rows: usize = sx[..sx.len().saturating_sub(1)].iter().product();
        let mut out = self.alloc(rows * d_out);
        if let Some(b) = bias {
            let bv = self.value(b);
            super::par_rows(&mut out, d_out, |_, r| r.copy_from_slice(bv));
        }
        let beta = if bias.is_some() { 1.0 } else { 0.0 };
        sgemm(1.0, MatRef::new(self.value(x), rows, d_in), MatRef::new(self.value(w), d_out, d_in).t(), beta, &mut out, d_out);
        let mut shape = sx;
        if let Some(last) = shape.last_mut() {
            *last = d_out;
        } else {
            shape.push(d_out);
        }
        let inputs: Vec<Var> = [Some(x), Some(w), bias].into_iter().flatten().collect();
        self.custom_op(&inputs, shape, out, move |inp, sink| {
            let g = inp.grad_output();
            let gm = MatRef::new(g, rows, d_out);
            if let Some(dx) = sink.grad(x) {
                sgemm(1.0, gm, MatRef::new(inp.value(w), d_out, d_in), 1.0, dx, d_in);
            }
            if let Some(dw) = sink.grad(w) {
                sgemm(1.0, gm.t(), MatRef::new(inp.value(x), rows, d_in), 1.0, dw, d_in);
            }
            if let Some(b) = bias {
                if let Some(db) = sink.grad(b) {
                    super::reduce::sum_rows_into(g, d_out, db);
                }
            }
        })
    }
}

impl Graph<'_> {
    /// `(Dropout_p(x) - offset) W^T`: a linear layer without bias on a
    /// dropped-out and centred input, as in UniSRec's parametric whitening.
    ///
    /// Fused because the unfused chain would materialise the centred input
    /// and, to get the offset's gradient, compute the full input gradient
    /// `dY W` even when `x` is a constant. Here the offset's gradient is
    /// `-W^T colsum(dY)` and the weight's is `dY^T Dropout(x) - colsum(dY) offset^T`.
    /// The dropout mask is the one [`Graph::dropout`] draws for `seed`.
    ///
    /// # Errors
    /// When `x` is not `[rows, in]`, `offset` not `[in]`, `w` not `[out, in]`,
    /// or `dropout` is outside `[0, 1)`.
    pub fn centered_linear(&mut self, x: Var, offset: Var, w: Var, dropout: f32, seed: u64) -> Result<Var> {
        let (sx, so, sw) = (self.shape(x).to_vec(), self.shape(offset).to_vec(), self.shape(w).to_vec());
        if sx.len() != 2 || sw.len() != 2 || sw[1] != sx[1] || so != [sx[1]] {
            return Err(Error::ShapeMismatch { op: "centered_linear", lhs: sx, rhs: sw });
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(crate::error::invalid("centered_linear", format!("dropout {dropout} is outside [0, 1)")));
        }
        let (rows, d_in, d_out) = (sx[0], sx[1], sw[0]);
        let threshold = super::nn::drop_threshold(dropout);
        let scale = 1.0 / (1.0 - dropout);
        let dropped = if dropout > 0.0 {
            let mut buf = self.alloc(rows * d_in);
            let xs = self.value(x);
            super::par_chunks(&mut buf, |s, c| {
                for (k, o) in c.iter_mut().enumerate() {
                    let i = s + k;
                    *o = if super::nn::keep(seed, i as u64, threshold) { xs[i] * scale } else { 0.0 };
                }
            });
            Some(buf)
        } else {
            None
        };
        // Each output row starts as -W offset, then gets + x W^T.
        let shift: Vec<f32> = {
            let (wv, ov) = (self.value(w), self.value(offset));
            (0..d_out).map(|o| -wv[o * d_in..(o + 1) * d_in].iter().zip(ov).map(|(a, b)| a * b).sum::<f32>()).collect()
        };
        let mut out = self.alloc(rows * d_out);
        super::par_rows(&mut out, d_out, |_, r| r.copy_from_slice(&shift));
        {
            let input = dropped.as_deref().unwrap_or(self.value(x));
            sgemm(1.0, MatRef::new(input, rows, d_in), MatRef::new(self.value(w), d_out, d_in).t(), 1.0, &mut out, d_out);
        }
        self.custom_op(&[x, offset, w], vec![rows, d_out], out, move |inp, sink| {
            let g = inp.grad_output();
            let (wv, ov) = (inp.value(w), inp.value(offset));
            let mut colsum = vec![0.0f32; d_out];
            super::reduce::sum_rows_into(g, d_out, &mut colsum);
            if let Some(dw) = sink.grad(w) {
                let input = dropped.as_deref().unwrap_or(inp.value(x));
                sgemm(1.0, MatRef::new(g, rows, d_out).t(), MatRef::new(input, rows, d_in), 1.0, dw, d_in);
                for o in 0..d_out {
                    for i in 0..d_in {
                        dw[o * d_in + i] -= colsum[o] * ov[i];
                    }
                }
            }
            if let Some(doff) = sink.grad(offset) {
                for o in 0..d_out {
                    for i in 0..d_in {
                        doff[i] -= wv[o * d_in + i] * colsum[o];
                    }
                }
            }
            if sink.wants(x) {
                let mut tmp = sink.scratch(rows * d_in);
                sgemm(1.0, MatRef::new(g, rows, d_out), MatRef::new(wv, d_out, d_in), 0.0, &mut tmp, d_in);
                if let Some(dx) = sink.grad(x) {
                    super::par_chunks(dx, |s, c| {
                        for (k, d) in c.iter_mut().enumerate() {
                            let i = s + k;
                            if threshold == 0 || super::nn::keep(seed, i as u64, threshold) {
                                *d += tmp[i] * if dropout > 0.0 { scale } else { 1.0 };
                            }
                        }
                    });
                }
                sink.recycle(tmp);
            }
            if let Some(buf) = dropped {
                sink.recycle(buf);
            }
        })
    }
}
