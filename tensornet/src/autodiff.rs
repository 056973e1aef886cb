//! Differentiable MPO operations on an autograd [`Graph`]: the dense matrix
//! from the cores, and the cores applied to an input without forming it.

use crate::contract::{chain_apply, chain_apply_backward, chain_flops, contract_dense_backward, contract_dense_saving, left_to_right_flops};
use crate::error::{Error, Result};
use crate::shape::MpoShape;
use autograd::{Graph, Var};

/// Evaluation plan of [`mpo_linear`] for multiplying an input by the MPO's matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyPlan {
    /// Contract the cores into `W` ([`mpo_matrix`]), then one GEMM with the input.
    Dense,
    /// Apply the cores to the input one after another ([`mpo_apply_chain`]).
    Chain,
}

/// Multiply-adds of the two plans for one forward pass over `batch` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyCost {
    /// Contraction of the cores by [`mpo_matrix`] plus `batch * out * in`
    /// for the product.
    pub dense: u64,
    /// Sum over the cores of the GEMMs of the chain application.
    pub chain: u64,
}

/// Counts the multiply-adds of both plans for `batch` input rows.
///
/// ```
/// use tensornet::{apply_cost, MpoShape};
/// let shape = MpoShape::full(&[3, 4, 4, 4, 4], &[4, 4, 4, 4, 3]).unwrap();
/// let one_row = apply_cost(&shape, 1);
/// assert!(one_row.chain < one_row.dense);
/// ```
pub fn apply_cost(shape: &MpoShape, batch: usize) -> ApplyCost {
    let product = (batch as u64) * (shape.out_dim() as u64) * (shape.in_dim() as u64);
    ApplyCost { dense: left_to_right_flops(shape) + product, chain: chain_flops(shape, batch) }
}

/// Picks the plan with fewer multiply-adds for `batch` rows, preferring the
/// dense one on a tie.
///
/// The backward pass of either plan costs about twice its forward pass, so
/// the forward count decides for training too. The count ignores the memory
/// traffic of the reorders between the chain's GEMMs, which favours the
/// chain slightly when the two are close.
///
/// ```
/// use tensornet::{choose_apply, ApplyPlan, MpoShape};
/// let shape = MpoShape::full(&[2, 3, 5, 5, 2], &[3, 4, 4, 4, 4]).unwrap();
/// assert_eq!(choose_apply(&shape, 1), ApplyPlan::Chain);
/// assert_eq!(choose_apply(&shape, 4096), ApplyPlan::Dense);
/// ```
pub fn choose_apply(shape: &MpoShape, batch: usize) -> ApplyPlan {
    let cost = apply_cost(shape, batch);
    if cost.chain < cost.dense {
        ApplyPlan::Chain
    } else {
        ApplyPlan::Dense
    }
}

fn check_cores(g: &Graph<'_>, shape: &MpoShape, cores: &[Var]) -> Result<()> {
    if cores.len() != shape.num_cores() {
        return Err(Error::CoreShape {
            index: cores.len(),
            shape: vec![],
            reason: format!("got {} core variables for {} factor pairs", cores.len(), shape.num_cores()),
        });
    }
    for (k, &core) in cores.iter().enumerate() {
        let expected = shape.core_shape(k);
        if g.shape(core) != expected {
            return Err(Error::CoreShape {
                index: k,
                shape: g.shape(core).to_vec(),
                reason: format!("expected {expected:?} from the MPO shape"),
            });
        }
    }
    Ok(())
}

/// Contracts the cores into the dense `[out, in]` matrix, differentiably.
///
/// Forward: left-to-right partial products, which are kept for the backward
/// pass when a core needs a gradient. Backward: each core's gradient is its
/// left environment (the saved partial product of the cores before it)
/// contracted with its right environment (`dW` contracted with the cores
/// after it), which is built right to left. Forward and backward each cost
/// about the multiply-adds of one contraction.
///
/// ```
/// use autograd::{Graph, ParamStore};
/// use tensornet::{mpo_matrix, Mpo, Truncation};
/// let w: Vec<f32> = (0..16).map(|x| x as f32).collect();
/// let (mpo, _) = Mpo::decompose(&w, 4, 4, &[2, 2], &[2, 2], &Truncation::none()).unwrap();
/// let mut store = ParamStore::new();
/// let ids = mpo.add_to_store(&mut store, "w");
/// let mut g = Graph::new(&store);
/// let cores: Vec<_> = ids.iter().map(|&id| g.param(id)).collect();
/// let dense = mpo_matrix(&mut g, mpo.shape(), &cores).unwrap();
/// let loss = g.sum(dense);
/// let grads = g.backward(loss).unwrap();
/// assert_eq!(grads.get(ids[0]).unwrap().len(), mpo.core(0).len());
/// ```
///
/// # Errors
/// [`Error::CoreShape`] when the number or the shapes of `cores` differ
/// from `shape`.
pub fn mpo_matrix(g: &mut Graph<'_>, shape: &MpoShape, cores: &[Var]) -> Result<Var> {
    check_cores(g, shape, cores)?;
    let (dense, partials) = {
        let values: Vec<&[f32]> = cores.iter().map(|&v| g.value(v)).collect();
        contract_dense_saving(shape, &values)
    };
    let saved_partials = if g.any_requires_grad(cores) { Some(partials) } else { None };
    let shape_saved = shape.clone();
    let core_vars = cores.to_vec();
    let out_shape = vec![shape.out_dim(), shape.in_dim()];
    let var = g.custom_op(cores, out_shape, dense, move |inp, sink| {
        let partials = saved_partials.expect("partials are kept whenever a core needs a gradient");
        let values: Vec<&[f32]> = core_vars.iter().map(|&v| inp.value(v)).collect();
        contract_dense_backward(&shape_saved, &values, &partials, inp.grad_output(), &core_vars, sink);
    })?;
    Ok(var)
}

/// Multiplies `x` (`[..., in]`) by the MPO's matrix without forming it,
/// differentiably in `x` and the cores: `y = x W^T`, shape `[..., out]`.
///
/// The cores are applied right to left with one GEMM each. When an input
/// needs a gradient, the state before every core is kept for the backward pass.
///
/// # Errors
/// [`Error::InputShape`] when the last dimension of `x` is not `in`, and
/// [`Error::CoreShape`] as in [`mpo_matrix`].
pub fn mpo_apply_chain(g: &mut Graph<'_>, shape: &MpoShape, cores: &[Var], x: Var) -> Result<Var> {
    check_cores(g, shape, cores)?;
    let x_shape = g.shape(x).to_vec();
    let in_dim = shape.in_dim();
    if x_shape.last() != Some(&in_dim) {
        return Err(Error::InputShape { op: "mpo_apply_chain", input: x_shape, expected: in_dim });
    }
    let batch = g.value(x).len() / in_dim;
    let mut inputs = cores.to_vec();
    inputs.push(x);
    let keep = g.any_requires_grad(&inputs);
    let (y, states) = {
        let values: Vec<&[f32]> = cores.iter().map(|&v| g.value(v)).collect();
        chain_apply(shape, &values, g.value(x), batch, keep)
    };

    let mut out_shape = x_shape;
    *out_shape.last_mut().expect("x has a last dimension") = shape.out_dim();
    let shape_saved = shape.clone();
    let core_vars = cores.to_vec();
    let var = g.custom_op(&inputs, out_shape, y, move |inp, sink| {
        let values: Vec<&[f32]> = core_vars.iter().map(|&v| inp.value(v)).collect();
        let want_x = sink.wants(x);
        let grad_x = chain_apply_backward(&shape_saved, &values, &states, inp.grad_output(), batch, want_x, &core_vars, sink);
        if let (Some(grad_x), Some(dx)) = (grad_x, sink.grad(x)) {
            dx.iter_mut().zip(&grad_x).for_each(|(a, b)| *a += b);
        }
    })?;
    Ok(var)
}

/// Multiplies `x` (`[..., in]`) by the MPO's matrix, `y = x W^T`, with the
/// cheaper plan of [`choose_apply`] for the number of rows of `x`.
///
/// # Errors
/// As [`mpo_apply_chain`].
pub fn mpo_linear(g: &mut Graph<'_>, shape: &MpoShape, cores: &[Var], x: Var) -> Result<Var> {
    let in_dim = shape.in_dim();
    let x_shape = g.shape(x).to_vec();
    if x_shape.last() != Some(&in_dim) {
        return Err(Error::InputShape { op: "mpo_linear", input: x_shape, expected: in_dim });
    }
    let batch = g.value(x).len() / in_dim;
    match choose_apply(shape, batch) {
        ApplyPlan::Chain => mpo_apply_chain(g, shape, cores, x),
        ApplyPlan::Dense => {
            let w = mpo_matrix(g, shape, cores)?;
            Ok(g.linear(x, w, None)?)
        }
    }
}
