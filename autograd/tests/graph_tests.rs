//! Tape behaviour: the scalar-loss rule, gradient accumulation, release of
//! values during backward, and reuse of buffers across steps.

mod common;

use autograd::{BufferPool, Graph, ParamStore, Tensor};
use common::*;

#[test]
fn backward_rejects_non_scalar_loss() {
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![2], vec![1.0, 2.0]).unwrap());
    let mut g = Graph::new(&store);
    let x = g.param(w);
    let y = g.mul(x, x).unwrap();
    let err = g.backward(y).unwrap_err();
    assert!(err.to_string().contains("backward"), "{err}");
    assert!(err.to_string().contains("[2]"), "{err}");
}

#[test]
fn backward_accepts_one_element_loss() {
    for shape in [vec![], vec![1], vec![1, 1]] {
        let mut store = ParamStore::new();
        let w = store.add("w", Tensor::new(shape.clone(), vec![3.0]).unwrap());
        let mut g = Graph::new(&store);
        let x = g.param(w);
        let y = g.mul(x, x).unwrap();
        let grads = g.backward(y).unwrap();
        // d/dw w^2 = 2w
        assert_eq!(grads.get(w).unwrap(), &[6.0], "shape {shape:?}");
    }
}

#[test]
fn grads_accumulate_over_uses() {
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![3], vec![-1.0, 0.5, 2.0]).unwrap());
    let mut g = Graph::new(&store);
    let x = g.param(w);
    let sq = g.mul(x, x).unwrap();
    let twice = g.add(x, x).unwrap();
    let sum = g.add(sq, twice).unwrap();
    let loss = g.sum(sum);
    let grads = g.backward(loss).unwrap();
    // d/dx (x * x + (x + x)) = 2x + 2
    assert_eq!(grads.get(w).unwrap(), &[0.0, 3.0, 6.0]);
}

#[test]
fn param_returns_one_node() {
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![1], vec![4.0]).unwrap());
    let mut g = Graph::new(&store);
    let a = g.param(w);
    let b = g.param(w);
    assert_eq!(a, b);
    let y = g.mul(a, b).unwrap();
    let loss = g.sum(y);
    let grads = g.backward(loss).unwrap();
    // d/dw w * w = 2w
    assert_eq!(grads.get(w).unwrap(), &[8.0]);
}

#[test]
fn params_stay_readable_after_backward() {
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![2], vec![1.0, 2.0]).unwrap());
    let mut g = Graph::new(&store);
    let x = g.param(w);
    let y = g.exp(x);
    let loss = g.sum(y);
    g.backward(loss).unwrap();
    assert_eq!(g.value(x), &[1.0, 2.0]);
}

#[test]
#[should_panic(expected = "released")]
fn intermediate_released_after_backward() {
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![2], vec![1.0, 2.0]).unwrap());
    let mut g = Graph::new(&store);
    let x = g.param(w);
    let y = g.exp(x);
    let loss = g.sum(y);
    g.backward(loss).unwrap();
    let _ = g.value(y);
}

#[test]
fn constants_get_no_grad() {
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![2], vec![1.0, 2.0]).unwrap());
    let mut g = Graph::new(&store);
    let c = g.constant(Tensor::new(vec![2], vec![5.0, 6.0]).unwrap());
    let x = g.param(w);
    assert!(!g.requires_grad(c));
    let y = g.mul(x, c).unwrap();
    let loss = g.sum(y);
    let grads = g.backward(loss).unwrap();
    assert_eq!(grads.iter().count(), 1);
    assert_eq!(grads.get(w).unwrap(), &[5.0, 6.0]);
}

#[test]
fn inference_graph_records_no_grad() {
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![2], vec![1.0, 2.0]).unwrap());
    let mut g = Graph::inference(&store);
    let x = g.param(w);
    let y = g.mul(x, x).unwrap();
    let loss = g.sum(y);
    assert!(!g.requires_grad(loss));
    assert_eq!(g.value(loss), &[5.0]);
    assert_eq!(g.backward(loss).unwrap().iter().count(), 0);
}

/// Runs one training-like step (a linear layer, GELU, LayerNorm,
/// cross-entropy) and returns the loss, the gradient of `w` and the pool for the next step.
fn step(store: &ParamStore, pool: BufferPool) -> (f32, Vec<f32>, BufferPool) {
    let ids: Vec<_> = ["w", "b", "ln.weight", "ln.bias"].iter().map(|n| store.find(n).unwrap()).collect();
    let mut g = Graph::with_pool(store, pool);
    let x = g.constant_from(&[64, 32], randn(&[64, 32], 5).data()).unwrap();
    let p: Vec<_> = ids.iter().map(|&id| g.param(id)).collect();
    let h = g.linear(x, p[0], Some(p[1])).unwrap();
    let h = g.gelu(h);
    let h = g.layer_norm(h, p[2], p[3], 1e-5).unwrap();
    let targets: Vec<usize> = (0..64).map(|i| i % 16).collect();
    let loss = g.cross_entropy(h, &targets).unwrap();
    let loss_value = g.value(loss)[0];
    let grads = g.backward(loss).unwrap();
    let grad_w = grads.get(ids[0]).unwrap().to_vec();
    let mut pool = g.into_pool();
    for buffer in grads.into_buffers() {
        pool.give(buffer);
    }
    (loss_value, grad_w, pool)
}

#[test]
fn pool_reused_across_steps() {
    let mut store = ParamStore::new();
    store.add("w", randn(&[16, 32], 1));
    store.add("b", randn(&[16], 2));
    store.add("ln.weight", Tensor::full(&[16], 1.0));
    store.add("ln.bias", Tensor::zeros(&[16]));

    let (loss_1, grad_1, pool) = step(&store, BufferPool::new());
    let held_1 = pool.held();
    assert!(held_1 > 0, "the first step returns its buffers");

    let (loss_2, grad_2, pool) = step(&store, pool);
    let held_2 = pool.held();
    let (loss_3, grad_3, pool) = step(&store, pool);

    // Buffers taken from the pool come back: the pool does not grow per step.
    assert_eq!(held_2, held_1);
    assert_eq!(pool.held(), held_1);
    // Stale contents of reused buffers never leak into results.
    assert_eq!(loss_1.to_bits(), loss_2.to_bits());
    assert_eq!(loss_1.to_bits(), loss_3.to_bits());
    assert_eq!(bits(&grad_1), bits(&grad_2));
    assert_eq!(bits(&grad_1), bits(&grad_3));
}

#[test]
fn pool_serves_and_bounds_sizes() {
    let mut pool = BufferPool::new();
    pool.give(Vec::with_capacity(100));
    assert_eq!(pool.held(), 100);
    // Too large for a 100-float buffer: a fresh allocation.
    let big = pool.zeros(101);
    assert_eq!(pool.held(), 100);
    // 100 is at most twice 60, so the held buffer serves it.
    let reused = pool.zeros(60);
    assert_eq!(pool.held(), 0);
    assert_eq!(reused, vec![0.0; 60]);
    assert!(reused.capacity() >= 100);
    // 30 would waste more than half of a 100-float buffer.
    pool.give(reused);
    let small = pool.uninit(30);
    assert_eq!(small.len(), 30);
    assert_eq!(pool.held(), 100);
    drop(big);
}

#[test]
fn pool_zeros_clears_stale_values() {
    let mut pool = BufferPool::new();
    pool.give(vec![7.0; 50]);
    assert_eq!(pool.zeros(40), vec![0.0; 40]);
}

#[test]
fn param_first_used_without_grad_gets_grad_later() {
    let mut store = autograd::ParamStore::new();
    let w = store.add("w", autograd::Tensor::new(vec![2], vec![3.0, -1.0]).unwrap());
    let mut g = autograd::Graph::new(&store);
    g.set_grad_enabled(false);
    let frozen = g.param(w);
    assert!(!g.requires_grad(frozen));
    g.set_grad_enabled(true);
    let x = g.param(w);
    assert!(g.requires_grad(x));
    let y = g.mul(x, x).unwrap();
    let loss = g.sum(y);
    let grads = g.backward(loss).unwrap();
    // d/dw w^2 = 2w
    assert_eq!(grads.get(w).unwrap(), &[6.0, -2.0]);
}
