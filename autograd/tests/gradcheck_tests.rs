//! Finite-difference gradient checks for every differentiable op of `autograd`.
//!
//! Every input is a trainable parameter, so `check_gradients` compares the
//! backward pass against central differences for all of them. Shapes with
//! 32768 or more elements reach the rayon code paths of the elementwise ops.
//! Where the gradient has a short closed form it is also asserted exactly,
//! with the derivation in a comment.

mod common;

use autograd::gradcheck::{check_gradients, GradCheck};
use autograd::{Graph, ParamStore, SequenceOffsets, Tensor, Var};
use common::*;

/// Computes the gradient of `sum(build(x))` for a single parameter `x`.
fn grad_of_sum(x: Tensor, build: impl Fn(&mut Graph<'_>, Var) -> Var) -> Vec<f32> {
    let mut store = ParamStore::new();
    let id = store.add("x", x);
    let mut g = Graph::new(&store);
    let xv = g.param(id);
    let y = build(&mut g, xv);
    let loss = g.sum(y);
    let grads = g.backward(loss).unwrap();
    grads.get(id).unwrap().to_vec()
}

// ---------------------------------------------------------------------------
// check_gradients itself

/// `y = x^2` whose backward adds `g * grad_factor * x`; 2 is the true factor.
fn square_with_backward_factor(g: &mut Graph<'_>, x: Var, grad_factor: f32) -> Var {
    let out: Vec<f32> = g.value(x).iter().map(|v| v * v).collect();
    let shape = g.shape(x).to_vec();
    g.custom_op(&[x], shape, out, move |inp, sink| {
        let (xs, grad) = (inp.value(x).to_vec(), inp.grad_output().to_vec());
        if let Some(dx) = sink.grad(x) {
            for ((d, v), gv) in dx.iter_mut().zip(xs).zip(grad) {
                *d += gv * grad_factor * v;
            }
        }
    })
    .unwrap()
}

#[test]
fn gradcheck_flags_wrong_backward() {
    let mut store = ParamStore::new();
    let x = store.add("x", away_from_zero(&[3, 4], 0.5, 2.0, 1));
    let mismatches = check_gradients(
        &mut store,
        |g| {
            let xv = g.param(x);
            Ok(square_with_backward_factor(g, xv, 1.0))
        },
        &GradCheck::default(),
    )
    .unwrap();

    // Half the true derivative is wrong at every element.
    assert_eq!(mismatches.len(), 12);
    assert_eq!(mismatches[0].param, "x");
    let m = &mismatches[0];
    assert!((m.numeric - 2.0 * m.analytic).abs() < 1e-2 * m.numeric.abs(), "{m:?}");
}

#[test]
fn gradcheck_passes_correct_backward() {
    let mut store = ParamStore::new();
    let x = store.add("x", away_from_zero(&[3, 4], 0.5, 2.0, 1));
    let mismatches = check_gradients(
        &mut store,
        |g| {
            let xv = g.param(x);
            Ok(square_with_backward_factor(g, xv, 2.0))
        },
        &GradCheck::default(),
    )
    .unwrap();
    assert!(mismatches.is_empty(), "{mismatches:?}");
}

#[test]
fn gradcheck_skips_frozen_params() {
    let mut store = ParamStore::new();
    let x = store.add("x", away_from_zero(&[4], 0.5, 2.0, 1));
    let frozen = store.add("frozen", away_from_zero(&[4], 0.5, 2.0, 2));
    store.set_trainable(frozen, false);
    // The wrong backward sits on the frozen input only, which is never checked.
    let mismatches = check_gradients(
        &mut store,
        |g| {
            let (xv, fv) = (g.param(x), g.param(frozen));
            let bad = square_with_backward_factor(g, fv, 1.0);
            g.mul(xv, bad)
        },
        &GradCheck::default(),
    )
    .unwrap();
    assert!(mismatches.is_empty(), "{mismatches:?}");
}

// ---------------------------------------------------------------------------
// Unary ops

/// Checks a unary op on a small and on a large input (parallel path).
macro_rules! unary_gradcheck {
    ($name:ident, $method:ident, $input:expr) => {
        #[test]
        fn $name() {
            let make: fn(&[usize], u64) -> Tensor = $input;
            for shape in [vec![3, 5], vec![200, 180]] {
                let mut store = ParamStore::new();
                let x = store.add("x", make(&shape, 11));
                assert_gradients(&mut store, |g| {
                    let xv = g.param(x);
                    Ok(g.$method(xv))
                });
            }
        }
    };
}

unary_gradcheck!(exp_grad, exp, |s, seed| uniform(s, -2.0, 2.0, seed));
unary_gradcheck!(log_grad, log, |s, seed| uniform(s, 0.5, 3.0, seed));
unary_gradcheck!(sqrt_grad, sqrt, |s, seed| uniform(s, 0.5, 3.0, seed));
unary_gradcheck!(gelu_grad, gelu, |s, seed| uniform(s, -3.0, 3.0, seed));
unary_gradcheck!(softplus_grad, softplus, |s, seed| uniform(s, -4.0, 4.0, seed));
unary_gradcheck!(relu_grad, relu, |s, seed| away_from_zero(s, 0.1, 2.0, seed));
unary_gradcheck!(tanh_grad, tanh, |s, seed| uniform(s, -2.0, 2.0, seed));
unary_gradcheck!(sigmoid_grad, sigmoid, |s, seed| uniform(s, -4.0, 4.0, seed));

#[test]
fn scale_grad() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[3, 5], 1));
    assert_gradients(&mut store, |g| {
        let xv = g.param(x);
        Ok(g.scale(xv, -2.5))
    });

    // d/dx sum(-2.5 x) = -2.5
    let grad = grad_of_sum(randn(&[4], 2), |g, x| g.scale(x, -2.5));
    assert_eq!(grad, vec![-2.5; 4]);
}

#[test]
fn add_scalar_grad() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[3, 5], 1));
    assert_gradients(&mut store, |g| {
        let xv = g.param(x);
        Ok(g.add_scalar(xv, 1.5))
    });

    // d/dx sum(x + 1.5) = 1
    let grad = grad_of_sum(randn(&[4], 2), |g, x| g.add_scalar(x, 1.5));
    assert_eq!(grad, vec![1.0; 4]);
}

#[test]
fn unary_exact_grads() {
    let x = Tensor::new(vec![4], vec![-1.5, -0.25, 0.5, 2.0]).unwrap();
    let xs = x.data().to_vec();

    // d/dx e^x = e^x
    let grad = grad_of_sum(x.clone(), |g, v| g.exp(v));
    let expected: Vec<f32> = xs.iter().map(|v| v.exp()).collect();
    assert_close(&grad, &expected, 0.0, 1e-6);

    // d/dx tanh x = 1 - tanh^2 x
    let grad = grad_of_sum(x.clone(), |g, v| g.tanh(v));
    let expected: Vec<f32> = xs.iter().map(|v| 1.0 - v.tanh() * v.tanh()).collect();
    assert_close(&grad, &expected, 1e-6, 1e-5);

    // d/dx relu x = 1 for x > 0, else 0
    let grad = grad_of_sum(x.clone(), |g, v| g.relu(v));
    assert_eq!(grad, vec![0.0, 0.0, 1.0, 1.0]);

    // d/dx softplus x = sigmoid x = 1 / (1 + e^-x)
    let grad = grad_of_sum(x.clone(), |g, v| g.softplus(v));
    let expected: Vec<f32> = xs.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
    assert_close(&grad, &expected, 1e-6, 1e-5);

    // d/dx gelu x = Phi(x) + x phi(x); at 0 this is 1/2
    let grad = grad_of_sum(Tensor::new(vec![1], vec![0.0]).unwrap(), |g, v| g.gelu(v));
    assert_eq!(grad, vec![0.5]);
}

// ---------------------------------------------------------------------------
// Broadcasting binary ops

/// `(label, lhs shape, rhs shape)`: the broadcasting patterns checked for
/// each binary op. The last four have 40960 output elements, enough for the
/// parallel reduction of a broadcast operand's gradient.
const BROADCASTS: [(&str, &[usize], &[usize]); 13] = [
    ("same shape", &[3, 4], &[3, 4]),
    ("bias row", &[3, 4], &[4]),
    ("bias row on the left", &[4], &[3, 4]),
    ("column", &[3, 4], &[3, 1]),
    ("column on the left", &[3, 1], &[3, 4]),
    ("scalar-like [1]", &[3, 4], &[1]),
    ("scalar []", &[], &[3, 4]),
    ("middle axis", &[2, 3, 4], &[2, 1, 4]),
    ("outer product", &[3, 1], &[1, 4]),
    ("large bias row", &[256, 160], &[160]),
    ("large bias row on the left", &[1, 160], &[256, 160]),
    ("large column", &[256, 160], &[256, 1]),
    ("large middle axis", &[16, 16, 160], &[16, 1, 160]),
];

fn check_binary(op: fn(&mut Graph<'_>, Var, Var) -> autograd::Result<Var>, rhs_away_from_zero: bool) {
    for (label, sa, sb) in BROADCASTS {
        let mut store = ParamStore::new();
        let a = store.add("a", randn(sa, 1));
        let rhs = if rhs_away_from_zero { away_from_zero(sb, 0.5, 2.0, 2) } else { randn(sb, 2) };
        let b = store.add("b", rhs);
        let mismatches = check_gradients(
            &mut store,
            |g| {
                let (av, bv) = (g.param(a), g.param(b));
                op(g, av, bv)
            },
            &GradCheck::default(),
        )
        .unwrap();
        assert!(mismatches.is_empty(), "{label}: {mismatches:#?}");
    }
}

#[test]
fn add_grad() {
    check_binary(|g, a, b| g.add(a, b), false);
}

#[test]
fn sub_grad() {
    check_binary(|g, a, b| g.sub(a, b), false);
}

#[test]
fn mul_grad() {
    check_binary(|g, a, b| g.mul(a, b), false);
}

#[test]
fn div_grad() {
    check_binary(|g, a, b| g.div(a, b), true);
}

#[test]
fn polynomial_exact_grad() {
    let x = Tensor::new(vec![4], vec![-3.0, -0.5, 0.0, 2.0]).unwrap();
    let grad = grad_of_sum(x, |g, v| {
        let square = g.mul(v, v).unwrap();
        let linear = g.scale(v, 5.0);
        g.add(square, linear).unwrap()
    });
    // d/dx (x^2 + 5x) = 2x + 5
    assert_eq!(grad, vec![-1.0, 4.0, 5.0, 9.0]);
}

#[test]
fn bias_row_exact_grad() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[256, 160], 1));
    let bias = store.add("bias", randn(&[160], 2));
    let mut g = Graph::new(&store);
    let (xv, bv) = (g.param(x), g.param(bias));
    let y = g.add(xv, bv).unwrap();
    let loss = g.sum(y);
    let grads = g.backward(loss).unwrap();
    // d/db sum_ij (x_ij + b_j) = number of rows
    assert_eq!(grads.get(bias).unwrap(), &[256.0; 160][..]);
}

#[test]
fn div_exact_grad() {
    let mut store = ParamStore::new();
    let a = store.add("a", Tensor::new(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap());
    let b = store.add("b", Tensor::new(vec![2, 1], vec![2.0, 4.0]).unwrap());
    let mut g = Graph::new(&store);
    let (av, bv) = (g.param(a), g.param(b));
    let y = g.div(av, bv).unwrap();
    let loss = g.sum(y);
    let grads = g.backward(loss).unwrap();
    // d/da (a / b) = 1 / b
    assert_eq!(grads.get(a).unwrap(), &[0.5, 0.5, 0.25, 0.25]);
    // d/db sum_j a_ij / b_i = -sum_j a_ij / b_i^2: -(1 + 2) / 4, -(3 + 4) / 16
    assert_eq!(grads.get(b).unwrap(), &[-0.75, -0.4375]);
}

// ---------------------------------------------------------------------------
// Matrix products

#[test]
fn matmul_t_grad() {
    let (m, k, n) = (3, 4, 5);
    for trans_a in [false, true] {
        for trans_b in [false, true] {
            let sa = if trans_a { [k, m] } else { [m, k] };
            let sb = if trans_b { [n, k] } else { [k, n] };
            let mut store = ParamStore::new();
            let a = store.add("a", randn(&sa, 1));
            let b = store.add("b", randn(&sb, 2));
            let mismatches = check_gradients(
                &mut store,
                |g| {
                    let (av, bv) = (g.param(a), g.param(b));
                    g.matmul_t(av, bv, trans_a, trans_b)
                },
                &GradCheck::default(),
            )
            .unwrap();
            assert!(mismatches.is_empty(), "trans_a {trans_a}, trans_b {trans_b}: {mismatches:#?}");
        }
    }
}

#[test]
fn matmul_t_grad_split() {
    // 2.4M multiply-adds: sgemm splits rows (tall) or columns (wide) over threads.
    for (m, k, n) in [(130, 130, 140), (20, 200, 600)] {
        for (trans_a, trans_b) in [(false, false), (true, true)] {
            let sa = if trans_a { [k, m] } else { [m, k] };
            let sb = if trans_b { [n, k] } else { [k, n] };
            let mut store = ParamStore::new();
            let a = store.add("a", randn(&sa, 3));
            let b = store.add("b", randn(&sb, 4));
            let options = GradCheck { max_elements: 16, ..Default::default() };
            let mismatches = check_gradients(
                &mut store,
                |g| {
                    let (av, bv) = (g.param(a), g.param(b));
                    g.matmul_t(av, bv, trans_a, trans_b)
                },
                &options,
            )
            .unwrap();
            assert!(mismatches.is_empty(), "{m}x{k}x{n}, transposed {trans_a}: {mismatches:#?}");
        }
    }
}

#[test]
fn matmul_exact_grad() {
    let mut store = ParamStore::new();
    let a = store.add("a", Tensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap());
    let b = store.add("b", Tensor::new(vec![3, 1], vec![1.0, -1.0, 2.0]).unwrap());
    let mut g = Graph::new(&store);
    let (av, bv) = (g.param(a), g.param(b));
    let y = g.matmul(av, bv).unwrap();
    let loss = g.sum(y);
    let grads = g.backward(loss).unwrap();
    // d/dA sum(A B) = 1 B^T: every row of dA is b^T
    assert_eq!(grads.get(a).unwrap(), &[1.0, -1.0, 2.0, 1.0, -1.0, 2.0]);
    // d/dB sum(A B) = A^T 1: column sums of A
    assert_eq!(grads.get(b).unwrap(), &[5.0, 7.0, 9.0]);
}

#[test]
fn bmm_grad() {
    let (batch, m, k, n) = (3, 2, 4, 3);
    for trans_a in [false, true] {
        for trans_b in [false, true] {
            let sa = if trans_a { [batch, k, m] } else { [batch, m, k] };
            let sb = if trans_b { [batch, n, k] } else { [batch, k, n] };
            let mut store = ParamStore::new();
            let a = store.add("a", randn(&sa, 1));
            let b = store.add("b", randn(&sb, 2));
            let mismatches = check_gradients(
                &mut store,
                |g| {
                    let (av, bv) = (g.param(a), g.param(b));
                    g.bmm(av, bv, trans_a, trans_b)
                },
                &GradCheck::default(),
            )
            .unwrap();
            assert!(mismatches.is_empty(), "trans_a {trans_a}, trans_b {trans_b}: {mismatches:#?}");
        }
    }
}

#[test]
fn linear_grad() {
    for x_shape in [vec![4, 3], vec![2, 3, 3], vec![3]] {
        for with_bias in [false, true] {
            let mut store = ParamStore::new();
            let x = store.add("x", randn(&x_shape, 1));
            let w = store.add("w", randn(&[5, 3], 2));
            let b = store.add("b", randn(&[5], 3));
            let mismatches = check_gradients(
                &mut store,
                |g| {
                    let (xv, wv) = (g.param(x), g.param(w));
                    let bias = if with_bias { Some(g.param(b)) } else { None };
                    g.linear(xv, wv, bias)
                },
                &GradCheck::default(),
            )
            .unwrap();
            assert!(mismatches.is_empty(), "x {x_shape:?}, bias {with_bias}: {mismatches:#?}");
        }
    }
}

#[test]
fn linear_grad_large() {
    // 600 rows: the bias gradient sums several row blocks, sgemm splits rows.
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[600, 64], 1));
    let w = store.add("w", randn(&[96, 64], 2));
    let b = store.add("b", randn(&[96], 3));
    let options = GradCheck { max_elements: 24, ..Default::default() };
    assert_gradients_with(&mut store, &options, |g| {
        let (xv, wv, bv) = (g.param(x), g.param(w), g.param(b));
        g.linear(xv, wv, Some(bv))
    });
}

#[test]
fn linear_exact_grad() {
    let mut store = ParamStore::new();
    let x = store.add("x", Tensor::new(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap());
    let w = store.add("w", Tensor::new(vec![3, 2], vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap());
    let b = store.add("b", Tensor::zeros(&[3]));
    let mut g = Graph::new(&store);
    let (xv, wv, bv) = (g.param(x), g.param(w), g.param(b));
    let y = g.linear(xv, wv, Some(bv)).unwrap();
    let loss = g.sum(y);
    let grads = g.backward(loss).unwrap();
    // d/dx sum(x W^T + b) = 1 W: column sums of W in every row
    assert_eq!(grads.get(x).unwrap(), &[2.0, 2.0, 2.0, 2.0]);
    // d/dW = 1^T x: column sums of x in every row
    assert_eq!(grads.get(w).unwrap(), &[4.0, 6.0, 4.0, 6.0, 4.0, 6.0]);
    // d/db = number of rows
    assert_eq!(grads.get(b).unwrap(), &[2.0, 2.0, 2.0]);
}

// ---------------------------------------------------------------------------
// Reductions

#[test]
fn sum_grad() {
    for shape in [vec![3, 4, 5], vec![200, 180]] {
        let mut store = ParamStore::new();
        let x = store.add("x", randn(&shape, 1));
        assert_gradients(&mut store, |g| {
            let xv = g.param(x);
            Ok(g.sum(xv))
        });
    }
}

#[test]
fn mean_grad() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[3, 4, 5], 1));
    assert_gradients(&mut store, |g| {
        let xv = g.param(x);
        Ok(g.mean(xv))
    });

    // d/dx mean(x) = 1 / n
    let grad = grad_of_sum(randn(&[8], 2), |g, v| g.mean(v));
    assert_eq!(grad, vec![0.125; 8]);
}

#[test]
fn sum_last_grad() {
    for shape in [vec![3, 4, 5], vec![7], vec![300, 128]] {
        let mut store = ParamStore::new();
        let x = store.add("x", randn(&shape, 1));
        assert_gradients(&mut store, |g| {
            let xv = g.param(x);
            g.sum_last(xv)
        });
    }
}

// ---------------------------------------------------------------------------
// Shape ops

#[test]
fn reshape_grad() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[3, 4], 1));
    assert_gradients(&mut store, |g| {
        let xv = g.param(x);
        g.reshape(xv, &[2, 6])
    });
}

#[test]
fn permute_grad() {
    for axes in [[2, 0, 1], [1, 2, 0], [0, 2, 1], [0, 1, 2]] {
        let mut store = ParamStore::new();
        let x = store.add("x", randn(&[2, 3, 4], 1));
        let mismatches = check_gradients(
            &mut store,
            |g| {
                let xv = g.param(x);
                g.permute(xv, &axes)
            },
            &GradCheck::default(),
        )
        .unwrap();
        assert!(mismatches.is_empty(), "axes {axes:?}: {mismatches:#?}");
    }
}

#[test]
fn transpose_grad() {
    for (axis0, axis1) in [(0, 2), (1, 2), (1, 1)] {
        let mut store = ParamStore::new();
        let x = store.add("x", randn(&[2, 3, 4], 1));
        let mismatches = check_gradients(
            &mut store,
            |g| {
                let xv = g.param(x);
                g.transpose(xv, axis0, axis1)
            },
            &GradCheck::default(),
        )
        .unwrap();
        assert!(mismatches.is_empty(), "axes {axis0}, {axis1}: {mismatches:#?}");
    }
}

#[test]
fn split_heads_grad() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[2, 3, 6], 1));
    assert_gradients(&mut store, |g| {
        let xv = g.param(x);
        g.split_heads(xv, 3)
    });
}

#[test]
fn merge_heads_grad() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[6, 3, 2], 1));
    assert_gradients(&mut store, |g| {
        let xv = g.param(x);
        g.merge_heads(xv, 3)
    });
}

#[test]
fn concat_grad() {
    let cases: [(&[usize], &[usize], &[usize], usize); 3] = [
        (&[1, 3], &[2, 3], &[3, 3], 0),
        (&[2, 3], &[2, 1], &[2, 2], 1),
        (&[2, 1, 3], &[2, 3, 3], &[2, 2, 3], 1),
    ];
    for (s0, s1, s2, axis) in cases {
        let mut store = ParamStore::new();
        let a = store.add("a", randn(s0, 1));
        let b = store.add("b", randn(s1, 2));
        let c = store.add("c", randn(s2, 3));
        let mismatches = check_gradients(
            &mut store,
            |g| {
                let (av, bv, cv) = (g.param(a), g.param(b), g.param(c));
                // `a` appears twice: its gradient sums both slices.
                g.concat(&[av, bv, cv, av], axis)
            },
            &GradCheck::default(),
        )
        .unwrap();
        assert!(mismatches.is_empty(), "axis {axis}: {mismatches:#?}");
    }
}

#[test]
fn stack_grad() {
    for axis in 0..=2 {
        let mut store = ParamStore::new();
        let a = store.add("a", randn(&[2, 3], 1));
        let b = store.add("b", randn(&[2, 3], 2));
        let c = store.add("c", randn(&[2, 3], 3));
        let mismatches = check_gradients(
            &mut store,
            |g| {
                let (av, bv, cv) = (g.param(a), g.param(b), g.param(c));
                g.stack(&[av, bv, cv], axis)
            },
            &GradCheck::default(),
        )
        .unwrap();
        assert!(mismatches.is_empty(), "axis {axis}: {mismatches:#?}");
    }
}

// ---------------------------------------------------------------------------
// Indexing

#[test]
fn embedding_grad_repeated_ids() {
    let mut store = ParamStore::new();
    let table = store.add("table", randn(&[5, 3], 1));
    assert_gradients(&mut store, |g| {
        let t = g.param(table);
        g.embedding(t, &[1, 3, 1, 0, 1])
    });

    let grad = grad_of_sum(randn(&[5, 2], 2), |g, t| g.embedding(t, &[1, 3, 1, 0, 1]).unwrap());
    // d/dT_r sum(lookups) = number of times row r is looked up: 1, 3, 0, 1, 0
    assert_eq!(grad, vec![1.0, 1.0, 3.0, 3.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
}

#[test]
fn index_select_grad_middle_axis() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[2, 4, 3], 1));
    assert_gradients(&mut store, |g| {
        let xv = g.param(x);
        g.index_select(xv, 1, &[3, 0, 3, 2])
    });
}

#[test]
fn index_select_grad_last_axis() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[2, 3, 4], 1));
    assert_gradients(&mut store, |g| {
        let xv = g.param(x);
        g.index_select(xv, 2, &[1, 1, 0])
    });
}

// ---------------------------------------------------------------------------
// Neural-network layers

#[test]
fn softmax_grad() {
    for shape in [vec![4, 6], vec![2, 3, 5], vec![300, 128]] {
        let mut store = ParamStore::new();
        let x = store.add("x", randn(&shape, 1));
        assert_gradients(&mut store, |g| {
            let xv = g.param(x);
            g.softmax(xv)
        });
    }
}

#[test]
fn log_softmax_grad() {
    for shape in [vec![4, 6], vec![300, 128]] {
        let mut store = ParamStore::new();
        let x = store.add("x", randn(&shape, 1));
        assert_gradients(&mut store, |g| {
            let xv = g.param(x);
            g.log_softmax(xv)
        });
    }
}

#[test]
fn softmax_exact_grad() {
    // Every softmax row sums to 1, so d/dx sum(softmax(x)) = 0.
    let grad = grad_of_sum(randn(&[3, 4], 1), |g, v| g.softmax(v).unwrap());
    assert_close(&grad, &[0.0; 12], 1e-6, 0.0);
}

#[test]
fn layer_norm_grad() {
    for shape in [vec![4, 6], vec![600, 64]] {
        let d = shape[1];
        let mut store = ParamStore::new();
        let x = store.add("x", randn(&shape, 1));
        let w = store.add("weight", uniform(&[d], 0.5, 1.5, 2));
        let b = store.add("bias", randn(&[d], 3));
        assert_gradients(&mut store, |g| {
            let (xv, wv, bv) = (g.param(x), g.param(w), g.param(b));
            g.layer_norm(xv, wv, bv, 1e-5)
        });
    }
}

#[test]
fn layer_norm_exact_bias_grad() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[600, 8], 1));
    let w = store.add("weight", Tensor::full(&[8], 1.0));
    let b = store.add("bias", Tensor::zeros(&[8]));
    let mut g = Graph::new(&store);
    let (xv, wv, bv) = (g.param(x), g.param(w), g.param(b));
    let y = g.layer_norm(xv, wv, bv, 1e-5).unwrap();
    let loss = g.sum(y);
    let grads = g.backward(loss).unwrap();
    // d/db sum(xhat * w + b) = number of rows
    assert_eq!(grads.get(b).unwrap(), &[600.0; 8][..]);
    // Each row of xhat sums to 0 and w = 1, so d/dx sum(y) = 0.
    assert_close(grads.get(x).unwrap(), &[0.0; 4800], 1e-4, 0.0);
}

#[test]
fn dropout_grad() {
    for shape in [vec![5, 8], vec![200, 180]] {
        let mut store = ParamStore::new();
        let x = store.add("x", randn(&shape, 1));
        assert_gradients(&mut store, |g| {
            let xv = g.param(x);
            g.dropout(xv, 0.3, 1234)
        });
    }
}

#[test]
fn dropout_exact_grad() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[1000], 1));
    let mut g = Graph::new(&store);
    let xv = g.param(x);
    let y = g.dropout(xv, 0.25, 99).unwrap();
    let kept: Vec<bool> = g.value(y).iter().map(|&v| v != 0.0).collect();
    let loss = g.sum(y);
    let grads = g.backward(loss).unwrap();
    // d/dx sum(mask * x / (1 - p)) = mask / (1 - p)
    for (i, (&gv, keep)) in grads.get(x).unwrap().iter().zip(kept).enumerate() {
        let expected = if keep { 1.0 / 0.75 } else { 0.0 };
        assert_eq!(gv, expected, "element {i}");
    }
}

#[test]
fn l2_normalize_grad() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[4, 6], 1));
    assert_gradients(&mut store, |g| {
        let xv = g.param(x);
        g.l2_normalize(xv, 1e-12)
    });
}

#[test]
fn l2_normalize_grad_below_floor() {
    // Rows whose norm is below eps are divided by eps, a linear map.
    let mut store = ParamStore::new();
    let x = store.add("x", uniform(&[3, 4], 0.01, 0.05, 1));
    assert_gradients(&mut store, |g| {
        let xv = g.param(x);
        g.l2_normalize(xv, 1.0)
    });
}

#[test]
fn cross_entropy_grad() {
    let mut store = ParamStore::new();
    let logits = store.add("logits", randn(&[4, 7], 1));
    assert_gradients(&mut store, |g| {
        let l = g.param(logits);
        g.cross_entropy(l, &[0, 6, 3, 3])
    });
}

#[test]
fn cross_entropy_exact_grad() {
    let mut store = ParamStore::new();
    let logits = store.add("logits", Tensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0]).unwrap());
    let mut g = Graph::new(&store);
    let l = g.param(logits);
    let loss = g.cross_entropy(l, &[2, 1]).unwrap();
    let grads = g.backward(loss).unwrap();
    // d/dz mean_i CE(z_i, t_i) = (softmax(z_i) - onehot(t_i)) / batch
    let z = [1.0f32, 2.0, 3.0];
    let total: f32 = z.iter().map(|v| v.exp()).sum();
    let p: Vec<f32> = z.iter().map(|v| v.exp() / total).collect();
    let third = 1.0 / 3.0;
    let expected = [p[0] / 2.0, p[1] / 2.0, (p[2] - 1.0) / 2.0, third / 2.0, (third - 1.0) / 2.0, third / 2.0];
    assert_close(grads.get(logits).unwrap(), &expected, 1e-6, 1e-5);
}

// ---------------------------------------------------------------------------
// Attention and mixture of experts

fn check_attention(lengths: &[usize], heads: usize, head_dim: usize, dropout: f32) {
    let total: usize = lengths.iter().sum();
    let width = heads * head_dim;
    let offsets = SequenceOffsets::from_lengths(lengths);
    let mut store = ParamStore::new();
    let q = store.add("q", randn(&[total, width], 1));
    let k = store.add("k", randn(&[total, width], 2));
    let v = store.add("v", randn(&[total, width], 3));
    let mismatches = check_gradients(
        &mut store,
        |g| {
            let (qv, kv, vv) = (g.param(q), g.param(k), g.param(v));
            g.causal_attention(qv, kv, vv, &offsets, heads, dropout, 77)
        },
        &GradCheck::default(),
    )
    .unwrap();
    assert!(mismatches.is_empty(), "lengths {lengths:?}, dropout {dropout}: {mismatches:#?}");
}

#[test]
fn causal_attention_grad() {
    for lengths in [&[1][..], &[1, 1], &[2], &[3, 1, 4], &[6]] {
        check_attention(lengths, 2, 3, 0.0);
    }
}

#[test]
fn causal_attention_grad_dropout() {
    for lengths in [&[1][..], &[3, 1, 4], &[9]] {
        check_attention(lengths, 2, 3, 0.3);
    }
}

#[test]
fn causal_attention_grad_empty_sequence() {
    // A zero-length sequence between two others owns no row.
    check_attention(&[2, 0, 3], 2, 2, 0.2);
}

#[test]
fn causal_attention_grad_one_head() {
    check_attention(&[4, 2], 1, 5, 0.0);
}

#[test]
fn causal_attention_exact_grad_length_one() {
    // A sequence of length 1 attends only to itself: out = v, independent of q and k.
    let mut store = ParamStore::new();
    let q = store.add("q", randn(&[1, 4], 1));
    let k = store.add("k", randn(&[1, 4], 2));
    let v = store.add("v", randn(&[1, 4], 3));
    let mut g = Graph::new(&store);
    let (qv, kv, vv) = (g.param(q), g.param(k), g.param(v));
    let y = g.causal_attention(qv, kv, vv, &SequenceOffsets::from_lengths(&[1]), 2, 0.0, 0).unwrap();
    let loss = g.sum(y);
    let grads = g.backward(loss).unwrap();
    // d/dv sum(v) = 1, d/dq = d/dk = 0
    assert_eq!(grads.get(v).unwrap(), &[1.0; 4]);
    assert_eq!(grads.get(q).unwrap(), &[0.0; 4]);
    assert_eq!(grads.get(k).unwrap(), &[0.0; 4]);
}

#[test]
fn mixture_grad() {
    let mut store = ParamStore::new();
    let gates = store.add("gates", randn(&[4, 3], 1));
    let e0 = store.add("e0", randn(&[4, 5], 2));
    let e1 = store.add("e1", randn(&[4, 5], 3));
    let e2 = store.add("e2", randn(&[4, 5], 4));
    assert_gradients(&mut store, |g| {
        let (gv, x0, x1, x2) = (g.param(gates), g.param(e0), g.param(e1), g.param(e2));
        g.mixture(gv, &[x0, x1, x2])
    });
}

#[test]
fn mixture_grad_repeated_expert() {
    let mut store = ParamStore::new();
    let gates = store.add("gates", randn(&[3, 2], 1));
    let e0 = store.add("e0", randn(&[3, 4], 2));
    assert_gradients(&mut store, |g| {
        let (gv, x0) = (g.param(gates), g.param(e0));
        g.mixture(gv, &[x0, x0])
    });
}

#[test]
fn mixture_exact_grad() {
    let mut store = ParamStore::new();
    let gates = store.add("gates", Tensor::new(vec![1, 2], vec![0.25, 0.75]).unwrap());
    let e0 = store.add("e0", Tensor::new(vec![1, 2], vec![1.0, 2.0]).unwrap());
    let e1 = store.add("e1", Tensor::new(vec![1, 2], vec![3.0, 5.0]).unwrap());
    let mut g = Graph::new(&store);
    let (gv, x0, x1) = (g.param(gates), g.param(e0), g.param(e1));
    let y = g.mixture(gv, &[x0, x1]).unwrap();
    let loss = g.sum(y);
    let grads = g.backward(loss).unwrap();
    // d/dg_e sum(sum_e g_e x_e) = sum(x_e); d/dx_e = g_e
    assert_eq!(grads.get(gates).unwrap(), &[3.0, 8.0]);
    assert_eq!(grads.get(e0).unwrap(), &[0.25, 0.25]);
    assert_eq!(grads.get(e1).unwrap(), &[0.75, 0.75]);
}
