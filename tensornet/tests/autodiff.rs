//! The differentiable contraction and chain application: finite-difference
//! gradient checks and agreement with the dense product.

mod common;

use autograd::gradcheck::{check_gradients, GradCheck};
use autograd::{Graph, ParamStore, Tensor};
use common::{gaussian, relative_error};
use tensornet::{apply_cost, choose_apply, mpo_apply_chain, mpo_linear, mpo_matrix, ApplyPlan, Mpo, MpoShape, Truncation};

/// Decomposes a 12x18 matrix into a small MPO with uneven factors and bonds 1, 4, 6, 1, so that a
/// transposed index in any kernel changes the result.
fn small_mpo() -> Mpo {
    let w = gaussian(12, 18, 1);
    Mpo::decompose(&w, 12, 18, &[2, 3, 2], &[2, 3, 3], &Truncation::none()).unwrap().0
}

/// Central differences in f32 with a step of 1e-2 agree with exact
/// derivatives to about 1e-3 on values of order 1.
fn tolerances() -> GradCheck {
    GradCheck { eps: 1e-2, atol: 5e-3, rtol: 2e-2, max_elements: 64 }
}

#[test]
fn matrix_op_gradients() {
    let mpo = small_mpo();
    assert_eq!(mpo.shape().bond_dims(), &[1, 4, 6, 1]);
    let mut store = ParamStore::new();
    let ids = mpo.add_to_store(&mut store, "w");
    let shape = mpo.shape().clone();
    let mismatches = check_gradients(
        &mut store,
        |g| {
            let cores: Vec<_> = ids.iter().map(|&id| g.param(id)).collect();
            Ok(mpo_matrix(g, &shape, &cores).expect("shapes match"))
        },
        &tolerances(),
    )
    .unwrap();
    assert!(mismatches.is_empty(), "{mismatches:?}");
}

#[test]
fn matrix_op_gradients_frozen_first_core() {
    // A frozen core gets no gradient and the backward pass stops before it.
    let mpo = small_mpo();
    let mut store = ParamStore::new();
    let ids = mpo.add_to_store(&mut store, "w");
    store.set_trainable(ids[0], false);
    let shape = mpo.shape().clone();
    let mismatches = check_gradients(
        &mut store,
        |g| {
            let cores: Vec<_> = ids.iter().map(|&id| g.param(id)).collect();
            Ok(mpo_matrix(g, &shape, &cores).expect("shapes match"))
        },
        &tolerances(),
    )
    .unwrap();
    assert!(mismatches.is_empty(), "{mismatches:?}");
}

#[test]
fn matrix_op_forward_matches_to_dense() {
    let mpo = small_mpo();
    let mut store = ParamStore::new();
    let ids = mpo.add_to_store(&mut store, "w");
    let mut g = Graph::new(&store);
    let cores: Vec<_> = ids.iter().map(|&id| g.param(id)).collect();
    let dense = mpo_matrix(&mut g, mpo.shape(), &cores).unwrap();
    assert_eq!(g.shape(dense), &[12, 18]);
    // Same products in another order: `to_dense` splits at the largest bond.
    assert!(relative_error(g.value(dense), &mpo.to_dense()) < 1e-6);
}

#[test]
fn chain_op_gradients() {
    let mpo = small_mpo();
    let mut store = ParamStore::new();
    let ids = mpo.add_to_store(&mut store, "w");
    let x = store.add("x", Tensor::new(vec![2, 3, 18], gaussian(6, 18, 2)).unwrap());
    let shape = mpo.shape().clone();
    let mismatches = check_gradients(
        &mut store,
        |g| {
            let cores: Vec<_> = ids.iter().map(|&id| g.param(id)).collect();
            let input = g.param(x);
            Ok(mpo_apply_chain(g, &shape, &cores, input).expect("shapes match"))
        },
        &tolerances(),
    )
    .unwrap();
    assert!(mismatches.is_empty(), "{mismatches:?}");
}

#[test]
fn chain_apply_matches_dense_product() {
    // y[b, r] = sum_c W[r, c] x[b, c], computed naively from the dense matrix.
    let w = gaussian(300, 384, 3);
    let (mpo, _) = Mpo::decompose(&w, 300, 384, &[2, 3, 5, 5, 2], &[2, 4, 4, 4, 3], &Truncation::none()).unwrap();
    let dense = mpo.to_dense();
    let batch = 5;
    let x = gaussian(batch, 384, 4);
    let mut expected = vec![0.0f32; batch * 300];
    for b in 0..batch {
        for r in 0..300 {
            expected[b * 300 + r] = (0..384).map(|c| dense[r * 384 + c] as f64 * x[b * 384 + c] as f64).sum::<f64>() as f32;
        }
    }
    let y = mpo.apply(&x).unwrap();
    assert!(relative_error(&y, &expected) < 1e-5);

    let mut store = ParamStore::new();
    let ids = mpo.add_to_store(&mut store, "w");
    let mut g = Graph::new(&store);
    let cores: Vec<_> = ids.iter().map(|&id| g.param(id)).collect();
    let input = g.constant(Tensor::new(vec![batch, 384], x.clone()).unwrap());
    let chained = mpo_apply_chain(&mut g, mpo.shape(), &cores, input).unwrap();
    assert_eq!(g.shape(chained), &[batch, 300]);
    assert!(relative_error(g.value(chained), &expected) < 1e-5);
}

#[test]
fn linear_plans_agree() {
    // One row takes the chain, many rows the dense product; both give x W^T.
    let mpo = small_mpo();
    for (batch, plan) in [(1, ApplyPlan::Chain), (4096, ApplyPlan::Dense)] {
        assert_eq!(choose_apply(mpo.shape(), batch), plan, "batch {batch}");
        let x = gaussian(batch, 18, 5);
        let mut store = ParamStore::new();
        let ids = mpo.add_to_store(&mut store, "w");
        let mut g = Graph::new(&store);
        let cores: Vec<_> = ids.iter().map(|&id| g.param(id)).collect();
        let input = g.constant(Tensor::new(vec![batch, 18], x.clone()).unwrap());
        let y = mpo_linear(&mut g, mpo.shape(), &cores, input).unwrap();
        assert!(relative_error(g.value(y), &mpo.apply(&x).unwrap()) < 1e-5, "batch {batch}");
    }
}

#[test]
fn contraction_cost_literature_shape() {
    // 768x768, bonds 1,12,192,192,12,1, split at bond 2. Left half:
    // 1*12*12 + 12*12*(16*192). Right half, from the end: 12*12*1
    // + 192*16*12*12 + 192*16*192*192. Join: (12*16)*192*3072.
    let shape = MpoShape::full(&[3, 4, 4, 4, 4], &[4, 4, 4, 4, 3]).unwrap();
    let left: u64 = 144 + 442_368;
    let right: u64 = 144 + 442_368 + 113_246_208;
    assert_eq!(shape.contraction_multiply_adds(), left + right + 113_246_208);
}

#[test]
fn apply_cost_literature_shape() {
    // 768x768, bonds 1,12,192,192,12,1. Dense contraction, step by step
    // (I_k J_k d_k * i_k j_k d_{k+1}): 1*1*1*12*12 + 12*12*16*192
    // + 192*192*16*192 + 3072*192*16*12 + 49152*12*12*1.
    let shape = MpoShape::full(&[3, 4, 4, 4, 4], &[4, 4, 4, 4, 3]).unwrap();
    let contraction: u64 = 144 + 442_368 + 113_246_208 + 113_246_208 + 7_077_888;
    assert_eq!(apply_cost(&shape, 1).dense, contraction + 589_824);
    assert_eq!(apply_cost(&shape, 1000).dense, contraction + 589_824_000);
}

#[test]
fn ops_reject_wrong_core_shapes() {
    let mpo = small_mpo();
    let mut store = ParamStore::new();
    let ids = mpo.add_to_store(&mut store, "w");
    let mut g = Graph::new(&store);
    let mut cores: Vec<_> = ids.iter().map(|&id| g.param(id)).collect();
    cores.swap(0, 1);
    let err = mpo_matrix(&mut g, mpo.shape(), &cores).unwrap_err();
    assert_eq!(err.to_string(), "core 0 has shape [4, 3, 3, 6]: expected [1, 2, 2, 4] from the MPO shape");

    cores.swap(0, 1);
    let x = g.constant(Tensor::zeros(&[2, 17]));
    let err = mpo_apply_chain(&mut g, mpo.shape(), &cores, x).unwrap_err();
    assert_eq!(err.to_string(), "mpo_apply_chain: input shape [2, 17] does not end in the MPO input dimension 18");
}
