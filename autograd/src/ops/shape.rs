//! Reshape, permutation, heads, concatenation and stacking.

use crate::error::{invalid, Error, Result};
use crate::graph::{Graph, Var};

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * shape[i + 1];
    }
    st
}

/// For each output position of `shape` permuted by `axes`, the input offset.
fn permute_index(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let in_st = strides(shape);
    let out_shape: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
    let n: usize = shape.iter().product();
    let mut idx = Vec::with_capacity(n);
    let mut counter = vec![0usize; shape.len()];
    for _ in 0..n {
        idx.push(counter.iter().zip(axes).map(|(&c, &a)| c * in_st[a]).sum());
        for d in (0..out_shape.len()).rev() {
            counter[d] += 1;
            if counter[d] < out_shape[d] {
                break;
            }
            counter[d] = 0;
        }
    }
    idx
}

impl Graph<'_> {
    /// Reshapes `x` to another shape of equal size.
    ///
    /// # Errors
    /// When the element counts differ.
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Result<Var> {
        let n: usize = shape.iter().product();
        if n != self.value(x).len() {
            return Err(Error::ShapeMismatch { op: "reshape", lhs: self.shape(x).to_vec(), rhs: shape.to_vec() });
        }
        let mut out = self.alloc(n);
        out.copy_from_slice(self.value(x));
        self.custom_op(&[x], shape.to_vec(), out, move |inp, sink| {
            let g = inp.grad_output();
            if let Some(dx) = sink.grad(x) {
                dx.iter_mut().zip(g).for_each(|(d, &v)| *d += v);
            }
        })
    }

    /// Reorders axes: output axis `i` is input axis `axes[i]`.
    ///
    /// # Errors
    /// When `axes` is not a permutation of the input's axes.
    pub fn permute(&mut self, x: Var, axes: &[usize]) -> Result<Var> {
        let shape = self.shape(x).to_vec();
        let mut seen = vec![false; shape.len()];
        if axes.len() != shape.len() || axes.iter().any(|&a| a >= shape.len() || std::mem::replace(&mut seen[a], true)) {
            return Err(invalid("permute", format!("axes {axes:?} are not a permutation of {} axes", shape.len())));
        }
        let idx = permute_index(&shape, axes);
        let mut out = self.alloc(idx.len());
        {
            let xs = self.value(x);
            out.iter_mut().zip(&idx).for_each(|(o, &i)| *o = xs[i]);
        }
        let out_shape = axes.iter().map(|&a| shape[a]).collect();
        self.custom_op(&[x], out_shape, out, move |inp, sink| {
            let g = inp.grad_output();
            if let Some(dx) = sink.grad(x) {
                idx.iter().zip(g).for_each(|(&i, &v)| dx[i] += v);
            }
        })
    }

    /// Swaps two axes.
    ///
    /// # Errors
    /// When an axis is out of range.
    pub fn transpose(&mut self, x: Var, axis0: usize, axis1: usize) -> Result<Var> {
        let rank = self.shape(x).len();
        if axis0 >= rank || axis1 >= rank {
            return Err(invalid("transpose", format!("axes {axis0} and {axis1} for rank {rank}")));
        }
        let mut axes: Vec<usize> = (0..rank).collect();
        axes.swap(axis0, axis1);
        self.permute(x, &axes)
    }

    /// `[batch, len, heads * d] -> [batch * heads, len, d]`.
    ///
    /// # Errors
    /// When `x` is not 3-D or its last axis is not divisible by `heads`.
    pub fn split_heads(&mut self, x: Var, heads: usize) -> Result<Var> {
        let s = self.shape(x).to_vec();
        if s.len() != 3 || heads == 0 || s[2] % heads != 0 {
            return Err(invalid("split_heads", format!("shape {s:?} with {heads} heads")));
        }
        let (b, l, d) = (s[0], s[1], s[2] / heads);
        let r = self.reshape(x, &[b, l, heads, d])?;
        let p = self.permute(r, &[0, 2, 1, 3])?;
        self.reshape(p, &[b * heads, l, d])
    }

    /// `[batch * heads, len, d] -> [batch, len, heads * d]`, the inverse of
    /// [`Graph::split_heads`].
    ///
    /// # Errors
    /// When `x` is not 3-D or its first axis is not divisible by `heads`.
    pub fn merge_heads(&mut self, x: Var, heads: usize) -> Result<Var> {
        let s = self.shape(x).to_vec();
        if s.len() != 3 || heads == 0 || s[0] % heads != 0 {
            return Err(invalid("merge_heads", format!("shape {s:?} with {heads} heads")));
        }
        let (b, l, d) = (s[0] / heads, s[1], s[2]);
        let r = self.reshape(x, &[b, heads, l, d])?;
        let p = self.permute(r, &[0, 2, 1, 3])?;
        self.reshape(p, &[b, l, heads * d])
    }

    /// Joins tensors along an existing axis.
    ///
    /// # Errors
    /// When `xs` is empty, the axis is out of range or other axes differ.
    pub fn concat(&mut self, xs: &[Var], axis: usize) -> Result<Var> {
        let Some(&first) = xs.first() else {
            return Err(invalid("concat", "no input"));
        };
        let base = self.shape(first).to_vec();
        if axis >= base.len() {
            return Err(invalid("concat", format!("axis {axis} for rank {}", base.len())));
        }
        let mut total = 0;
        for &v in xs {
            let s = self.shape(v);
            if s.len() != base.len() || s.iter().zip(&base).enumerate().any(|(i, (a, b))| i != axis && a != b) {
                return Err(Error::ShapeMismatch { op: "concat", lhs: base.clone(), rhs: s.to_vec() });
            }
            total += s[axis];
        }
        let outer: usize = base[..axis].iter().product();
        let inner: usize = base[axis + 1..].iter().product();
        let widths: Vec<usize> = xs.iter().map(|&v| self.shape(v)[axis] * inner).collect();
        let row = total * inner;
        let mut out = self.alloc(outer * row);
        let mut offset = 0;
        for (&v, &w) in xs.iter().zip(&widths) {
            let vals = self.value(v);
            for o in 0..outer {
                out[o * row + offset..o * row + offset + w].copy_from_slice(&vals[o * w..(o + 1) * w]);
            }
            offset += w;
        }
        let mut shape = base;
        shape[axis] = total;
        let inputs = xs.to_vec();
        self.custom_op(xs, shape, out, move |inp, sink| {
            let g = inp.grad_output();
            let mut offset = 0;
            for (&v, &w) in inputs.iter().zip(&widths) {
                if let Some(dv) = sink.grad(v) {
                    for o in 0..outer {
                        let src = &g[o * row + offset..o * row + offset + w];
                        dv[o * w..(o + 1) * w].iter_mut().zip(src).for_each(|(d, &s)| *d += s);
                    }
                }
                offset += w;
            }
        })
    }

    /// Joins tensors of one shape along a new axis.
    ///
    /// # Errors
    /// When `xs` is empty, shapes differ or the axis is out of range.
    pub fn stack(&mut self, xs: &[Var], axis: usize) -> Result<Var> {
        let Some(&first) = xs.first() else {
            return Err(invalid("stack", "no input"));
        };
        let base = self.shape(first).to_vec();
        if axis > base.len() {
            return Err(invalid("stack", format!("axis {axis} for rank {}", base.len())));
        }
        let mut expanded = base.clone();
        expanded.insert(axis, 1);
        let mut parts = Vec::with_capacity(xs.len());
        for &v in xs {
            if self.shape(v) != base.as_slice() {
                return Err(Error::ShapeMismatch { op: "stack", lhs: base, rhs: self.shape(v).to_vec() });
            }
            parts.push(self.reshape(v, &expanded)?);
        }
        self.concat(&parts, axis)
    }
}
