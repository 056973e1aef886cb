//! Adam and AdamW against hand-computed trajectories, parameter groups,
//! frozen parameters and global-norm clipping.

mod common;

use autograd::{Adam, AdamConfig, Gradients, Graph, ParamId, ParamStore, Tensor};
use common::*;

/// Gradients of `sum(w^2)` for each parameter in `ids`: `2 w`.
fn square_grads(store: &ParamStore, ids: &[ParamId]) -> Gradients {
    let mut g = Graph::new(store);
    let mut terms = Vec::new();
    for &id in ids {
        let w = g.param(id);
        let sq = g.mul(w, w).unwrap();
        terms.push(g.sum(sq));
    }
    let mut loss = terms[0];
    for &t in &terms[1..] {
        loss = g.add(loss, t).unwrap();
    }
    g.backward(loss).unwrap()
}

/// Gradients of `sum(w * c)` for a constant `c`: exactly `c`.
fn linear_grads(store: &ParamStore, id: ParamId, c: &[f32]) -> Gradients {
    let mut g = Graph::new(store);
    let w = g.param(id);
    let cv = g.constant_from(store.value(id).shape(), c).unwrap();
    let prod = g.mul(w, cv).unwrap();
    let loss = g.sum(prod);
    g.backward(loss).unwrap()
}

/// Applies one step of PyTorch's Adam to a scalar, in f64:
/// `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
/// `p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)` with `bc_i = 1 - b_i^t`.
fn adam_reference(p: &mut f64, m: &mut f64, v: &mut f64, g: f64, t: i32, lr: f64) {
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
    *m = b1 * *m + (1.0 - b1) * g;
    *v = b2 * *v + (1.0 - b2) * g * g;
    let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
    *p -= lr / bc1 * *m / (v.sqrt() / bc2.sqrt() + eps);
}

#[test]
fn adam_two_step_trajectory() {
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![3], vec![1.0, -0.5, 0.0]).unwrap());
    let mut opt = Adam::new(AdamConfig { lr: 0.1, ..Default::default() });

    // Loss sum(w^2), gradient 2w.
    let mut reference: Vec<(f64, f64, f64)> = store.value(w).data().iter().map(|&p| (p as f64, 0.0, 0.0)).collect();
    for t in 1..=2 {
        let grads = square_grads(&store, &[w]);
        for (r, &gv) in reference.iter_mut().zip(grads.get(w).unwrap()) {
            adam_reference(&mut r.0, &mut r.1, &mut r.2, gv as f64, t, 0.1);
        }
        opt.step(&mut store, &grads);
        let expected: Vec<f32> = reference.iter().map(|r| r.0 as f32).collect();
        assert_close(store.value(w).data(), &expected, 1e-6, 1e-6);
    }

    // By hand for w = 1: step 1 has g = 2, m = 0.2, v = 0.004, bc1 = 0.1,
    // bc2 = 0.001, so w = 1 - 1 * 0.2 / (2 + 1e-8) = 0.9. Step 2 has g = 1.8,
    // m = 0.36, v = 0.007236, bc1 = 0.19, bc2 = 0.001999, so
    // w = 0.9 - (0.1 / 0.19) * 0.36 / (sqrt(0.007236 / 0.001999) + 1e-8) = 0.80041.
    assert!((store.value(w).data()[0] - 0.800_41).abs() < 1e-5, "{}", store.value(w).data()[0]);
    // A zero gradient leaves m = v = 0, so the update is 0 / eps = 0.
    assert_eq!(store.value(w).data()[2], 0.0);
}

#[test]
fn adam_first_step_is_lr() {
    // After one step m / sqrt(v) = g / |g| after bias correction: the update is lr * sign(g).
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![2], vec![0.0, 0.0]).unwrap());
    let mut opt = Adam::new(AdamConfig { lr: 0.01, ..Default::default() });
    let grads = linear_grads(&store, w, &[300.0, -0.002]);
    opt.step(&mut store, &grads);
    assert_close(store.value(w).data(), &[-0.01, 0.01], 1e-7, 1e-4);
}

#[test]
fn adamw_decays_weights_directly() {
    let (lr, wd) = (0.1f32, 0.5f32);
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![2], vec![2.0, -4.0]).unwrap());
    let mut opt = Adam::new(AdamConfig { lr, weight_decay: wd, decoupled: true, ..Default::default() });
    let grads = linear_grads(&store, w, &[0.0, 0.0]);
    opt.step(&mut store, &grads);
    // A zero gradient leaves only the decay: w *= 1 - lr * wd = 0.95.
    assert_close(store.value(w).data(), &[1.9, -3.8], 1e-6, 0.0);
}

#[test]
fn adamw_two_step_trajectory() {
    let (lr, wd) = (0.1f64, 0.01f64);
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![2], vec![1.0, -3.0]).unwrap());
    let mut opt = Adam::new(AdamConfig { lr: lr as f32, weight_decay: wd as f32, decoupled: true, ..Default::default() });
    let mut reference: Vec<(f64, f64, f64)> = store.value(w).data().iter().map(|&p| (p as f64, 0.0, 0.0)).collect();
    for t in 1..=2 {
        let grads = square_grads(&store, &[w]);
        for (r, &gv) in reference.iter_mut().zip(grads.get(w).unwrap()) {
            // AdamW: p *= 1 - lr * wd, then the Adam step on the plain gradient.
            r.0 *= 1.0 - lr * wd;
            adam_reference(&mut r.0, &mut r.1, &mut r.2, gv as f64, t, lr);
        }
        opt.step(&mut store, &grads);
        let expected: Vec<f32> = reference.iter().map(|r| r.0 as f32).collect();
        assert_close(store.value(w).data(), &expected, 1e-6, 1e-6);
    }
}

#[test]
fn adam_l2_penalty_enters_gradient() {
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![2], vec![2.0, -4.0]).unwrap());
    let mut opt = Adam::new(AdamConfig { lr: 0.1, weight_decay: 0.5, decoupled: false, ..Default::default() });
    let grads = linear_grads(&store, w, &[0.0, 0.0]);
    opt.step(&mut store, &grads);
    // Adam's L2 form adds wd * w to the gradient; the first step then moves by lr * sign(w).
    assert_close(store.value(w).data(), &[1.9, -3.9], 1e-6, 0.0);
}

#[test]
fn adam_group_learning_rates() {
    let mut store = ParamStore::new();
    let fast = store.add("fast", Tensor::new(vec![1], vec![1.0]).unwrap());
    let slow = store.add("slow", Tensor::new(vec![1], vec![1.0]).unwrap());
    store.get_mut(slow).group = 1;
    let mut opt = Adam::new(AdamConfig { lr: 0.1, ..Default::default() });
    opt.set_group_lr(1, 0.001);
    assert_eq!(opt.group_lr(0), 0.1);
    assert_eq!(opt.group_lr(1), 0.001);
    assert_eq!(opt.group_lr(7), 0.1, "an unset group uses the base rate");

    let grads = square_grads(&store, &[fast, slow]);
    opt.step(&mut store, &grads);
    // The first step moves each parameter by its group's lr.
    assert_close(store.value(fast).data(), &[0.9], 1e-6, 0.0);
    assert_close(store.value(slow).data(), &[0.999], 1e-6, 0.0);
}

#[test]
fn frozen_param_gets_no_grad() {
    let mut store = ParamStore::new();
    let trained = store.add("trained", Tensor::new(vec![2], vec![1.0, 2.0]).unwrap());
    let frozen = store.add("frozen", Tensor::new(vec![2], vec![3.0, 4.0]).unwrap());
    store.set_trainable(frozen, false);

    let mut g = Graph::new(&store);
    let (t, f) = (g.param(trained), g.param(frozen));
    assert!(g.requires_grad(t));
    assert!(!g.requires_grad(f));
    let prod = g.mul(t, f).unwrap();
    let loss = g.sum(prod);
    let grads = g.backward(loss).unwrap();
    assert!(grads.get(frozen).is_none());
    // d/dt sum(t * f) = f
    assert_eq!(grads.get(trained).unwrap(), &[3.0, 4.0]);

    let mut opt = Adam::new(AdamConfig { lr: 0.1, ..Default::default() });
    opt.step(&mut store, &grads);
    assert_eq!(store.value(frozen).data(), &[3.0, 4.0]);
    assert_ne!(store.value(trained).data(), &[1.0, 2.0]);
}

#[test]
fn frozen_only_graph_records_nothing() {
    let mut store = ParamStore::new();
    let frozen = store.add("frozen", Tensor::new(vec![2], vec![3.0, 4.0]).unwrap());
    store.set_trainable(frozen, false);
    let mut g = Graph::new(&store);
    let f = g.param(frozen);
    let sq = g.mul(f, f).unwrap();
    let loss = g.sum(sq);
    assert!(!g.requires_grad(loss));
    let grads = g.backward(loss).unwrap();
    assert_eq!(grads.iter().count(), 0);
}

#[test]
fn clip_global_norm_scales_down() {
    let mut store = ParamStore::new();
    let a = store.add("a", Tensor::new(vec![1], vec![0.0]).unwrap());
    let b = store.add("b", Tensor::new(vec![2], vec![0.0, 0.0]).unwrap());
    // Gradients [3] and [0, 4]: global norm sqrt(9 + 16) = 5.
    let mut grads = {
        let mut g = Graph::new(&store);
        let (av, bv) = (g.param(a), g.param(b));
        let ca = g.constant(Tensor::new(vec![1], vec![3.0]).unwrap());
        let cb = g.constant(Tensor::new(vec![2], vec![0.0, 4.0]).unwrap());
        let pa = g.mul(av, ca).unwrap();
        let pb = g.mul(bv, cb).unwrap();
        let (sa, sb) = (g.sum(pa), g.sum(pb));
        let loss = g.add(sa, sb).unwrap();
        g.backward(loss).unwrap()
    };
    assert_eq!(grads.global_norm(), 5.0);
    let before = grads.clip_global_norm(1.0);
    assert_eq!(before, 5.0);
    assert_close(grads.get(a).unwrap(), &[0.6], 1e-7, 0.0);
    assert_close(grads.get(b).unwrap(), &[0.0, 0.8], 1e-7, 0.0);
    assert!((grads.global_norm() - 1.0).abs() < 1e-6);
}

#[test]
fn clip_global_norm_keeps_small() {
    let mut store = ParamStore::new();
    let w = store.add("w", Tensor::new(vec![2], vec![0.0, 0.0]).unwrap());
    let mut grads = linear_grads(&store, w, &[3.0, 4.0]);
    let before = grads.clip_global_norm(10.0);
    assert_eq!(before, 5.0);
    assert_eq!(grads.get(w).unwrap(), &[3.0, 4.0]);
}

#[test]
fn adam_large_param_matches_small() {
    // 2^16 elements take the parallel update; every element equals the serial result.
    let n = 1 << 16;
    let mut store = ParamStore::new();
    let big = store.add("big", Tensor::full(&[n], 1.0));
    let small = store.add("small", Tensor::full(&[1], 1.0));
    let mut opt = Adam::new(AdamConfig { lr: 0.1, weight_decay: 0.01, decoupled: true, ..Default::default() });
    for _ in 0..3 {
        let grads = square_grads(&store, &[big, small]);
        opt.step(&mut store, &grads);
    }
    let expected = store.value(small).data()[0];
    assert!(store.value(big).data().iter().all(|&v| v == expected));
}
