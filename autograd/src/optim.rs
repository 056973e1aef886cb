//! Adam and AdamW with parameter groups and frozen parameters.

use crate::params::{Gradients, ParamId, ParamStore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hyperparameters of [`Adam`]; the defaults are PyTorch's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate of group 0; other groups are set with [`Adam::set_group_lr`].
    pub lr: f32,
    /// Decay of the first-moment estimate.
    pub beta1: f32,
    /// Decay of the second-moment estimate.
    pub beta2: f32,
    /// Added to the denominator for numerical stability.
    pub eps: f32,
    /// Weight decay coefficient.
    pub weight_decay: f32,
    /// `true` for AdamW (decay applied to the weights directly), `false` for
    /// Adam's L2 penalty added to the gradient.
    pub decoupled: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled: false }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Moments {
    step: u64,
    m: Vec<f32>,
    v: Vec<f32>,
}

/// Adam (Kingma and Ba, 2015) with PyTorch's update rule, or AdamW
/// (Loshchilov and Hutter, 2019) when [`AdamConfig::decoupled`] is set.
///
/// Frozen parameters never receive a gradient and are left untouched. Each
/// parameter counts its own steps for bias correction, as PyTorch does.
///
/// ```
/// use autograd::{Adam, AdamConfig, Graph, ParamStore, Tensor};
/// let mut store = ParamStore::new();
/// let w = store.add("w", Tensor::new(vec![1], vec![1.0]).unwrap());
/// let mut opt = Adam::new(AdamConfig { lr: 0.1, ..Default::default() });
/// let grads = {
///     let mut g = Graph::new(&store);
///     let x = g.param(w);
///     let y = g.mul(x, x).unwrap();
///     let loss = g.sum(y);
///     g.backward(loss).unwrap()
/// };
/// opt.step(&mut store, &grads);
/// // The first Adam step moves by lr in the direction of -sign(grad).
/// assert!((store.value(w).data()[0] - 0.9).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Adam {
    config: AdamConfig,
    group_lr: BTreeMap<usize, f32>,
    state: BTreeMap<ParamId, Moments>,
}

impl Adam {
    /// Creates an optimizer with no moment estimates yet.
    pub fn new(config: AdamConfig) -> Self {
        Adam { config, group_lr: BTreeMap::new(), state: BTreeMap::new() }
    }

    /// The hyperparameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Sets the learning rate of parameter group `group`.
    pub fn set_group_lr(&mut self, group: usize, lr: f32) {
        self.group_lr.insert(group, lr);
    }

    /// The learning rate of parameter group `group`.
    pub fn group_lr(&self, group: usize) -> f32 {
        self.group_lr.get(&group).copied().unwrap_or(self.config.lr)
    }

    /// Applies one update to every trainable parameter that has a gradient.
    pub fn step(&mut self, params: &mut ParamStore, grads: &Gradients) {
        let c = self.config.clone();
        for (id, g) in grads.iter() {
            let lr = self.group_lr(params.get(id).group);
            let p = params.get_mut(id);
            if !p.trainable {
                continue;
            }
            let n = p.value.len();
            let st = self.state.entry(id).or_insert_with(|| Moments { step: 0, m: vec![0.0; n], v: vec![0.0; n] });
            st.step += 1;
            let bc1 = 1.0 - (c.beta1 as f64).powi(st.step as i32);
            let bc2 = 1.0 - (c.beta2 as f64).powi(st.step as i32);
            let step_size = (lr as f64 / bc1) as f32;
            let bc2_sqrt = bc2.sqrt() as f32;
            let w = p.value.data_mut();
            let update = |(((w, m), v), &g): (((&mut f32, &mut f32), &mut f32), &f32)| {
                let mut g = g;
                if c.weight_decay != 0.0 {
                    if c.decoupled {
                        *w *= 1.0 - lr * c.weight_decay;
                    } else {
                        g += c.weight_decay * *w;
                    }
                }
                *m = c.beta1 * *m + (1.0 - c.beta1) * g;
                *v = c.beta2 * *v + (1.0 - c.beta2) * g * g;
                let denom = v.sqrt() / bc2_sqrt + c.eps;
                *w -= step_size * *m / denom;
            };
            if n >= 1 << 15 {
                w.par_iter_mut().zip(st.m.par_iter_mut()).zip(st.v.par_iter_mut()).zip(g.par_iter()).for_each(update);
            } else {
                w.iter_mut().zip(st.m.iter_mut()).zip(st.v.iter_mut()).zip(g.iter()).for_each(update);
            }
        }
    }
}
