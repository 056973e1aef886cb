//! Fused operations against the chains of elementary ops they replace.

mod common;

use autograd::{Graph, ParamStore};
use common::{assert_gradients, randn};

/// Checks `centered_linear` with and without dropout, on a small and on a
/// large input (parallel path).
#[test]
fn centered_linear_grad() {
    for (rows, dropout) in [(5, 0.0), (5, 0.3), (160, 0.2)] {
        let mut store = ParamStore::new();
        let x = store.add("x", randn(&[rows, 7], 1));
        let b = store.add("b", randn(&[7], 2));
        let w = store.add("w", randn(&[4, 7], 3));
        assert_gradients(&mut store, |g| {
            let (xv, bv, wv) = (g.param(x), g.param(b), g.param(w));
            g.centered_linear(xv, bv, wv, dropout, 99)
        });
    }
}

#[test]
fn centered_linear_matches_unfused_chain() {
    let mut store = ParamStore::new();
    let x = store.add("x", randn(&[300, 16], 4));
    let b = store.add("b", randn(&[16], 5));
    let w = store.add("w", randn(&[8, 16], 6));
    let mut g = Graph::new(&store);
    let (xv, bv, wv) = (g.param(x), g.param(b), g.param(w));
    let fused = g.centered_linear(xv, bv, wv, 0.25, 42).unwrap();
    let dropped = g.dropout(xv, 0.25, 42).unwrap();
    let centred = g.sub(dropped, bv).unwrap();
    let chain = g.linear(centred, wv, None).unwrap();
    for (i, (a, c)) in g.value(fused).iter().zip(g.value(chain)).enumerate() {
        assert!((a - c).abs() <= 1e-4 * (1.0 + c.abs()), "element {i}: fused {a}, chain {c}");
    }
}
