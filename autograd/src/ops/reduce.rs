//! Sums and means.

use crate::error::{invalid, Result};
use crate::graph::{Graph, Var};
use rayon::prelude::*;

/// Rows per partial sum. Fixed, so that the summation order, and with it the
/// result, is the same for every thread count.
const ROWS_PER_PART: usize = 256;

/// Adds the column sums of the row-major `[rows, d]` matrix `x` into `out`.
pub(crate) fn sum_rows_into(x: &[f32], d: usize, out: &mut [f32]) {
    if d == 0 {
        return;
    }
    let parts: Vec<Vec<f32>> = x
        .par_chunks(ROWS_PER_PART * d)
        .map(|block| {
            let mut acc = vec![0.0f32; d];
            for row in block.chunks(d) {
                acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
            }
            acc
        })
        .collect();
    for p in parts {
        out.iter_mut().zip(p).for_each(|(o, v)| *o += v);
    }
}

/// Sum of all elements in f64, in a fixed order.
pub(crate) fn sum_all(x: &[f32]) -> f64 {
    x.par_chunks(1 << 14).map(|c| c.iter().map(|&v| v as f64).sum::<f64>()).collect::<Vec<_>>().into_iter().sum()
}

impl Graph<'_> {
    /// Sum of all elements, as a scalar of shape `[]`.
    pub fn sum(&mut self, x: Var) -> Var {
        let total = sum_all(self.value(x)) as f32;
        let mut out = self.alloc(1);
        out[0] = total;
        self.custom_op(&[x], vec![], out, move |inp, sink| {
            let g = inp.grad_output()[0];
            if let Some(dx) = sink.grad(x) {
                super::par_chunks(dx, |_, c| c.iter_mut().for_each(|d| *d += g));
            }
        })
        .expect("scalar output")
    }

    /// Mean of all elements, as a scalar of shape `[]`.
    pub fn mean(&mut self, x: Var) -> Var {
        let n = self.value(x).len().max(1);
        let s = self.sum(x);
        self.scale(s, 1.0 / n as f32)
    }

    /// Sum over the last axis: `[..., d] -> [...]`.
    ///
    /// # Errors
    /// When `x` is a scalar.
    pub fn sum_last(&mut self, x: Var) -> Result<Var> {
        let shape = self.shape(x).to_vec();
        let Some((&d, lead)) = shape.split_last() else {
            return Err(invalid("sum_last", "input is a scalar"));
        };
        let rows = lead.iter().product::<usize>();
        let mut out = self.alloc(rows);
        {
            let xs = self.value(x);
            super::par_rows(&mut out, 1, |i, o| o[0] = xs[i * d..(i + 1) * d].iter().sum());
        }
        self.custom_op(&[x], lead.to_vec(), out, move |inp, sink| {
            let g = inp.grad_output();
            if let Some(dx) = sink.grad(x) {
                super::par_rows(dx, d, |i, r| r.iter_mut().for_each(|v| *v += g[i]));
            }
        })
    }
}
