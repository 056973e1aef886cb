//! `f32` contraction kernels shared by [`crate::Mpo`] and the autograd ops:
//! the dense matrix from the cores, and the chain application of the cores
//! to an input batch, each with its backward pass.

use crate::gemm_swap::{gemm_swap_middle, SwapProduct};
use crate::linalg::swap_middle;
use crate::shape::MpoShape;
use autograd::gemm::{sgemm, MatRef};
use autograd::{GradSink, Var};

/// Left partial products `L_0, ..., L_n` and their index sizes.
///
/// `L_k` is the contraction of cores `0..k`, laid out `[I_k, J_k, d_k]` with
/// `I_k = i_0 ... i_{k-1}` and `J_k = j_0 ... j_{k-1}` row-major, so `L_n`
/// is the dense `[out, in]` matrix.
pub(crate) struct LeftPartials {
    pub products: Vec<Vec<f32>>,
}

/// `(I_k, J_k)` for every `k` in `0..=n`.
pub(crate) fn prefix_dims(shape: &MpoShape) -> Vec<(usize, usize)> {
    let mut dims = vec![(1, 1)];
    for k in 0..shape.num_cores() {
        let (big_i, big_j) = dims[k];
        dims.push((big_i * shape.rows()[k], big_j * shape.cols()[k]));
    }
    dims
}

/// Extends `L_k` by core `k`: `L_{k+1}[I, i, J, j, d'] = sum_d L_k[I, J, d] T_k[d, i, j, d']`.
///
/// The GEMM gives `[I, J, i, j d']`, stored with the middle axes swapped
/// as the row-major `[I i, J j, d']` layout.
fn extend_left(shape: &MpoShape, k: usize, big_i: usize, big_j: usize, prev: &[f32], core: &[f32]) -> Vec<f32> {
    let [d, i, j, d2] = shape.core_shape(k);
    gemm_swap_middle(prev, core, SwapProduct { outer: big_i, p: big_j, q: i, inner: j * d2, depth: d })
}

/// Extends the right partial product `R_{k+1}` (`[d_{k+1}, I', J']`, the
/// contraction of cores `k+1 ..`) by core `k` to `R_k`, `[d_k, i I', j J']`.
///
/// The GEMM gives `[d_k, i, j, I', J']`, stored with `(j, I')` swapped as
/// the row-major `[d_k, i I', j J']` layout.
fn extend_right(shape: &MpoShape, k: usize, big_i: usize, big_j: usize, next: &[f32], core: &[f32]) -> Vec<f32> {
    let [d, i, j, d2] = shape.core_shape(k);
    gemm_swap_middle(core, next, SwapProduct { outer: d * i, p: j, q: big_i, inner: big_j, depth: d2 })
}

/// Contracts the cores into the dense row-major `[out, in]` matrix.
///
/// The cores left of the largest bond are contracted left to right, those
/// right of it right to left, and one GEMM joins the two halves. Compared
/// with a single left-to-right pass this skips the GEMMs with a small bond
/// dimension at the right end, whose outputs are as large as the matrix.
pub(crate) fn contract_dense(shape: &MpoShape, cores: &[&[f32]]) -> Vec<f32> {
    let n = shape.num_cores();
    let bonds = shape.bond_dims();
    let split = split_bond(shape);
    let dims = prefix_dims(shape);

    let mut left = vec![1.0f32];
    for k in 0..split {
        left = extend_left(shape, k, dims[k].0, dims[k].1, &left, cores[k]);
    }
    if split == n {
        return left;
    }

    let mut right = vec![1.0f32];
    let (mut right_i, mut right_j) = (1usize, 1usize);
    for k in (split..n).rev() {
        right = extend_right(shape, k, right_i, right_j, &right, cores[k]);
        right_i *= shape.rows()[k];
        right_j *= shape.cols()[k];
    }

    // [I_<, J_<, d] x [d, I_>, J_>] -> [I_<, J_<, I_>, J_>], stored as [I_<, I_>, J_<, J_>].
    let (left_i, left_j) = dims[split];
    let product = SwapProduct { outer: left_i, p: left_j, q: right_i, inner: right_j, depth: bonds[split] };
    gemm_swap_middle(&left, &right, product)
}

/// Contracts the cores into the dense matrix and keeps `L_0 .. L_{n-1}` for
/// [`contract_dense_backward`].
pub(crate) fn contract_dense_saving(shape: &MpoShape, cores: &[&[f32]]) -> (Vec<f32>, LeftPartials) {
    let dims = prefix_dims(shape);
    let mut products = vec![vec![1.0f32]];
    for k in 0..shape.num_cores() {
        let next = extend_left(shape, k, dims[k].0, dims[k].1, &products[k], cores[k]);
        products.push(next);
    }
    let dense = products.pop().expect("n >= 1 cores give n + 1 products");
    (dense, LeftPartials { products })
}

/// Adds the gradients of the cores `core_vars`, given the gradient
/// `grad_dense` of the dense matrix, into `sink`.
///
/// Reverse-mode through the left-to-right chain: with `G_{k+1}` the gradient
/// of `L_{k+1}` reordered to `[I, J, i j d']`, the core gradient is
/// `dT_k = L_k^T G_{k+1}` and the gradient passed on is `G_{k+1} T_k^T`.
/// `G_{k+1}` is `dW` contracted with cores `k+1 ..`, the right environment.
pub(crate) fn contract_dense_backward(
    shape: &MpoShape,
    cores: &[&[f32]],
    partials: &LeftPartials,
    grad_dense: &[f32],
    core_vars: &[Var],
    sink: &mut GradSink<'_>,
) {
    let dims = prefix_dims(shape);
    let n = shape.num_cores();
    let first_needed = (0..n).find(|&k| sink.wants(core_vars[k]));
    let Some(first_needed) = first_needed else { return };
    let mut grad_next = grad_dense.to_vec();
    for k in (first_needed..n).rev() {
        let [d, i, j, d2] = shape.core_shape(k);
        let (big_i, big_j) = dims[k];
        let rows = big_i * big_j;
        let cols = i * j * d2;
        let reordered = if big_j == 1 || i == 1 {
            grad_next
        } else {
            let mut buffer = vec![0.0f32; rows * cols];
            swap_middle(&grad_next, big_i, i, big_j, j * d2, &mut buffer);
            buffer
        };
        let g = MatRef::new(&reordered, rows, cols);
        if let Some(grad) = sink.grad(core_vars[k]) {
            sgemm(1.0, MatRef::new(&partials.products[k], rows, d).t(), g, 1.0, grad, cols);
        }
        if k > first_needed {
            let mut grad_prev = vec![0.0f32; rows * d];
            sgemm(1.0, g, MatRef::new(cores[k], d, cols).t(), 0.0, &mut grad_prev, d);
            grad_next = grad_prev;
        } else {
            break;
        }
    }
}

/// Sizes of the chain application state before core `k`:
/// `(P, Q)` with `P = prod_{m>k} i_m` and `Q = prod_{m<k} j_m`.
fn chain_dims(shape: &MpoShape, k: usize) -> (usize, usize) {
    let p = shape.rows()[k + 1..].iter().product();
    let q = shape.cols()[..k].iter().product();
    (p, q)
}

/// Core `k` reordered from `[d, i, j, d']` to `[j, d', d, i]`.
fn chain_core(shape: &MpoShape, k: usize, core: &[f32]) -> Vec<f32> {
    let [d, i, j, d2] = shape.core_shape(k);
    let mut out = vec![0.0f32; core.len()];
    // [d i, j d'] -> [j d', d i] is a plain transpose.
    swap_middle(core, 1, d * i, j * d2, 1, &mut out);
    out
}

/// The states of the chain application, kept for the backward pass.
pub(crate) struct ChainStates {
    /// Input state of each core, indexed by core.
    pub states: Vec<Vec<f32>>,
}

/// Multiplies the batch `x` (`[batch, in]`, row-major) by the matrix of the
/// MPO without forming it: `y = x W^T`, `[batch, out]`.
///
/// Cores are applied right to left. The state before core `k` is
/// `[P, batch, Q, j_k, d_{k+1}]`, and one GEMM with the reordered core
/// contracts `(j_k, d_{k+1})`. Moving `i_k` to the front of the result gives
/// the state before core `k - 1`.
pub(crate) fn chain_apply(shape: &MpoShape, cores: &[&[f32]], x: &[f32], batch: usize, keep: bool) -> (Vec<f32>, ChainStates) {
    let n = shape.num_cores();
    let mut states = Vec::new();
    let mut state = x.to_vec();
    for k in (0..n).rev() {
        let [d, i, j, d2] = shape.core_shape(k);
        let (p, q) = chain_dims(shape, k);
        let rows = p * batch * q;
        let permuted = chain_core(shape, k, cores[k]);
        let mut product = vec![0.0f32; rows * d * i];
        sgemm(1.0, MatRef::new(&state, rows, j * d2), MatRef::new(&permuted, j * d2, d * i), 0.0, &mut product, d * i);
        let mut next = vec![0.0f32; product.len()];
        swap_middle(&product, 1, rows * d, i, 1, &mut next);
        if keep {
            states.push(std::mem::replace(&mut state, next));
        } else {
            state = next;
        }
    }
    states.reverse();
    let out_dim = shape.out_dim();
    let mut y = vec![0.0f32; state.len()];
    swap_middle(&state, 1, out_dim, batch, 1, &mut y);
    (y, ChainStates { states })
}

/// Backward of [`chain_apply`]: adds the gradients of `core_vars` into
/// `sink` and returns the gradient of `x` when `want_x` is set.
#[allow(clippy::too_many_arguments)]
pub(crate) fn chain_apply_backward(
    shape: &MpoShape,
    cores: &[&[f32]],
    saved: &ChainStates,
    grad_y: &[f32],
    batch: usize,
    want_x: bool,
    core_vars: &[Var],
    sink: &mut GradSink<'_>,
) -> Option<Vec<f32>> {
    let n = shape.num_cores();
    let out_dim = shape.out_dim();
    // The output was [out, batch] transposed to [batch, out].
    let mut grad_state = vec![0.0f32; grad_y.len()];
    swap_middle(grad_y, 1, batch, out_dim, 1, &mut grad_state);
    for k in 0..n {
        let [d, i, j, d2] = shape.core_shape(k);
        let (p, q) = chain_dims(shape, k);
        let rows = p * batch * q;
        // Undo the move of i_k to the front: [i, rows d] -> [rows d, i].
        let mut grad_product = vec![0.0f32; grad_state.len()];
        swap_middle(&grad_state, 1, i, rows * d, 1, &mut grad_product);
        let g = MatRef::new(&grad_product, rows, d * i);
        if let Some(grad) = sink.grad(core_vars[k]) {
            let mut grad_permuted = vec![0.0f32; j * d2 * d * i];
            sgemm(1.0, MatRef::new(&saved.states[k], rows, j * d2).t(), g, 0.0, &mut grad_permuted, d * i);
            // [j d', d i] back to [d i, j d'], added into the gradient.
            let mut back = vec![0.0f32; grad_permuted.len()];
            swap_middle(&grad_permuted, 1, j * d2, d * i, 1, &mut back);
            grad.iter_mut().zip(&back).for_each(|(a, b)| *a += b);
        }
        if k + 1 < n || want_x {
            let permuted = chain_core(shape, k, cores[k]);
            let mut grad_prev = vec![0.0f32; rows * j * d2];
            sgemm(1.0, g, MatRef::new(&permuted, j * d2, d * i).t(), 0.0, &mut grad_prev, j * d2);
            grad_state = grad_prev;
        }
    }
    want_x.then_some(grad_state)
}

/// Returns the bond where [`contract_dense`] joins its two halves: the first
/// of the largest internal bonds, or `n` (no right half) for a single core.
fn split_bond(shape: &MpoShape) -> usize {
    let n = shape.num_cores();
    let bonds = shape.bond_dims();
    (1..n).max_by_key(|&b| (bonds[b], std::cmp::Reverse(b))).unwrap_or(n)
}

/// Multiply-adds of the single left-to-right pass of [`contract_dense_saving`].
pub(crate) fn left_to_right_flops(shape: &MpoShape) -> u64 {
    let dims = prefix_dims(shape);
    (0..shape.num_cores())
        .map(|k| {
            let [d, i, j, d2] = shape.core_shape(k);
            (dims[k].0 * dims[k].1 * d * i * j * d2) as u64
        })
        .sum()
}

/// Multiply-adds of [`contract_dense`] for `shape`.
pub(crate) fn dense_flops(shape: &MpoShape) -> u64 {
    let n = shape.num_cores();
    let split = split_bond(shape);
    let dims = prefix_dims(shape);
    let left: u64 = (0..split)
        .map(|k| {
            let [d, i, j, d2] = shape.core_shape(k);
            (dims[k].0 * dims[k].1 * d * i * j * d2) as u64
        })
        .sum();
    if split == n {
        return left;
    }

    // Right half: R_k = T_k R_{k+1} costs d_k i_k j_k * d_{k+1} * I' J'.
    let mut right = 0u64;
    let mut right_size = 1u64;
    for k in (split..n).rev() {
        let [d, i, j, d2] = shape.core_shape(k);
        right += (d * i * j * d2) as u64 * right_size;
        right_size *= (i * j) as u64;
    }
    let (left_i, left_j) = dims[split];
    let join = (left_i * left_j * shape.bond_dims()[split]) as u64 * right_size;
    left + right + join
}

/// Multiply-adds of [`chain_apply`] for `shape` and `batch` rows.
pub(crate) fn chain_flops(shape: &MpoShape, batch: usize) -> u64 {
    (0..shape.num_cores())
        .map(|k| {
            let [d, i, j, d2] = shape.core_shape(k);
            let (p, q) = chain_dims(shape, k);
            (p * batch * q) as u64 * (j * d2 * d * i) as u64
        })
        .sum()
}
