//! Differentiable operations, one file per family. Each is a method of
//! [`crate::Graph`] that computes its value at once and records a backward
//! function when an input requires a gradient.

mod attention;
mod elementwise;
mod index;
mod matmul;
mod nn;
mod reduce;
mod shape;

pub use attention::SequenceOffsets;
pub use elementwise::{erf, gelu, gelu_grad};

use rayon::prelude::*;

/// Elementwise work below this many elements stays on the calling thread.
pub(crate) const PAR_MIN: usize = 1 << 15;
/// Elements per rayon task for elementwise work.
pub(crate) const PAR_CHUNK: usize = 1 << 13;

/// Applies `f(start, chunk)` to `out` in chunks, in parallel when large.
pub(crate) fn par_chunks(out: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync) {
    if out.len() < PAR_MIN {
        f(0, out);
    } else {
        out.par_chunks_mut(PAR_CHUNK).enumerate().for_each(|(i, c)| f(i * PAR_CHUNK, c));
    }
}

/// Applies `f(row_index, row)` to each row of width `d`, in parallel when large.
pub(crate) fn par_rows(out: &mut [f32], d: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if d == 0 {
        return;
    }
    if out.len() < PAR_MIN {
        out.chunks_mut(d).enumerate().for_each(|(i, r)| f(i, r));
    } else {
        out.par_chunks_mut(d).enumerate().for_each(|(i, r)| f(i, r));
    }
}
