//! Finite-difference gradient checks, shared by the tests of every crate
//! that defines differentiable operations.

use crate::error::Result;
use crate::graph::{Graph, Var};
use crate::params::{ParamId, ParamStore};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Tolerances and sampling of [`check_gradients`].
#[derive(Clone, Debug)]
pub struct GradCheck {
    /// Central-difference step.
    pub eps: f32,
    /// Absolute tolerance.
    pub atol: f64,
    /// Tolerance relative to the larger of the two derivatives.
    pub rtol: f64,
    /// At most this many elements per parameter are checked (chosen at random).
    pub max_elements: usize,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck { eps: 1e-2, atol: 2e-3, rtol: 2e-2, max_elements: 64 }
    }
}

/// A mismatch found by [`check_gradients`].
#[derive(Clone, Debug)]
pub struct GradMismatch {
    /// Parameter name.
    pub param: String,
    /// Flat element index.
    pub index: usize,
    /// Derivative from backward.
    pub analytic: f64,
    /// Central-difference derivative.
    pub numeric: f64,
}

/// Compares the gradients from backward with central differences.
///
/// `build` maps the parameters to an output of any shape; the checked scalar
/// is `sum(output * r)` for a fixed random `r`, so that every output element
/// contributes with a different weight. Returns the mismatches, empty when
/// the gradients agree.
///
/// # Errors
/// Errors from `build`.
pub fn check_gradients(
    params: &mut ParamStore,
    build: impl Fn(&mut Graph<'_>) -> Result<Var>,
    options: &GradCheck,
) -> Result<Vec<GradMismatch>> {
    let mut rng = StdRng::seed_from_u64(7);
    let (weights, analytic) = {
        let mut g = Graph::new(params);
        let y = build(&mut g)?;
        let n = g.value(y).len();
        let weights: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let shape = g.shape(y).to_vec();
        let r = g.constant_from(&shape, &weights)?;
        let prod = g.mul(y, r)?;
        let loss = g.sum(prod);
        (weights, g.backward(loss)?)
    };
    let objective = |params: &ParamStore| -> Result<f64> {
        let mut g = Graph::new(params);
        let y = build(&mut g)?;
        Ok(g.value(y).iter().zip(&weights).map(|(&a, &b)| a as f64 * b as f64).sum())
    };
    let ids: Vec<ParamId> = params.iter().filter(|(_, p)| p.trainable).map(|(id, _)| id).collect();
    let mut mismatches = Vec::new();
    for id in ids {
        let n = params.value(id).len();
        let mut picks: Vec<usize> = (0..n).collect();
        if n > options.max_elements {
            for i in 0..options.max_elements {
                let j = rng.gen_range(i..n);
                picks.swap(i, j);
            }
            picks.truncate(options.max_elements);
        }
        for i in picks {
            let orig = params.value(id).data()[i];
            params.get_mut(id).value.data_mut()[i] = orig + options.eps;
            let up = objective(params)?;
            params.get_mut(id).value.data_mut()[i] = orig - options.eps;
            let down = objective(params)?;
            params.get_mut(id).value.data_mut()[i] = orig;
            let numeric = (up - down) / (2.0 * options.eps as f64);
            let a = analytic.get(id).map(|g| g[i] as f64).unwrap_or(0.0);
            if (a - numeric).abs() > options.atol + options.rtol * a.abs().max(numeric.abs()) {
                mismatches.push(GradMismatch { param: params.get(id).name.clone(), index: i, analytic: a, numeric });
            }
        }
    }
    Ok(mismatches)
}
