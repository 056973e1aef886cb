//! Embedding lookup and index selection along an axis.

use crate::error::{invalid, Result};
use crate::graph::{Graph, Var};

impl Graph<'_> {
    /// Rows `ids` of the 2-D `table`: `[vocab, d] -> [ids.len(), d]`.
    /// The backward pass scatter-adds into the rows that were read.
    ///
    /// # Errors
    /// When `table` is not 2-D or an id is out of range (the message names it).
    pub fn embedding(&mut self, table: Var, ids: &[usize]) -> Result<Var> {
        if self.shape(table).len() != 2 {
            return Err(invalid("embedding", format!("table must be 2-D [vocab, dim], got shape {:?}", self.shape(table))));
        }
        self.index_select(table, 0, ids)
    }

    /// Picks entries `indices` along `axis`; the output has
    /// `indices.len()` entries on that axis. Indices may repeat.
    ///
    /// # Errors
    /// When the axis or an index is out of range.
    pub fn index_select(&mut self, x: Var, axis: usize, indices: &[usize]) -> Result<Var> {
        let shape = self.shape(x).to_vec();
        if axis >= shape.len() {
            return Err(invalid("index_select", format!("axis {axis} for shape {shape:?}")));
        }
        let size = shape[axis];
        if let Some((pos, &bad)) = indices.iter().enumerate().find(|(_, &i)| i >= size) {
            return Err(invalid("index_select", format!("index {bad} at position {pos} is out of range for axis {axis} of size {size}")));
        }
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let k = indices.len();
        let mut out = self.alloc(outer * k * inner);
        {
            let xs = self.value(x);
            super::par_rows(&mut out, inner.max(1), |r, row| {
                let (o, j) = (r / k.max(1), r % k.max(1));
                let src = (o * size + indices[j]) * inner;
                row.copy_from_slice(&xs[src..src + inner]);
            });
        }
        let mut out_shape = shape;
        out_shape[axis] = k;
        let idx = indices.to_vec();
        self.custom_op(&[x], out_shape, out, move |inp, sink| {
            let g = inp.grad_output();
            if let Some(dx) = sink.grad(x) {
                // Sequential scatter-add: repeated indices make a parallel one
                // racy or order-dependent.
                for o in 0..outer {
                    for (j, &i) in idx.iter().enumerate() {
                        let src = &g[(o * k + j) * inner..(o * k + j + 1) * inner];
                        let dst = &mut dx[(o * size + i) * inner..(o * size + i + 1) * inner];
                        dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s);
                    }
                }
            }
        })
    }
}
