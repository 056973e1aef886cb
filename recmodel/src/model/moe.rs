//! UniSRec's mixture-of-experts adapter from text features to the hidden space.

use super::layers::{Binder, Init, Linear};
use crate::error::ModelError;
use autograd::{Graph, ParamId, Var};
use rand_chacha::ChaCha12Rng;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Eight (by default) parametric-whitening experts mixed by a softmax gate.
///
/// Expert `e` computes `W_e (Dropout(x) - b_e)`, each with its own dropout
/// mask. The gate is `softmax(x G)`, plus in training the noise
/// `N(0, 1) * (softplus(x G_noise) + 0.01)` on the logits.
#[derive(Clone, Debug)]
pub struct MoeAdapter {
    /// Expert projections `[hidden, text_dim]`, no bias.
    pub experts: Vec<Linear>,
    /// Whitening offsets `[text_dim]`.
    pub offsets: Vec<ParamId>,
    /// Gate `[text_dim, experts]`.
    pub gate: ParamId,
    /// Gate-noise projection `[text_dim, experts]`.
    pub gate_noise: ParamId,
    dropout: f32,
}

/// Added to the noise scale so that it never reaches zero (UniSRec's value).
const NOISE_EPSILON: f32 = 1e-2;

impl MoeAdapter {
    pub(crate) fn init(init: &mut Init<'_>, experts: usize, text_dim: usize, hidden: usize, dropout: f32) -> Self {
        let mut lin = Vec::new();
        let mut offsets = Vec::new();
        for e in 0..experts {
            offsets.push(init.zeros(&format!("moe_adaptor.experts.{e}.bias"), &[text_dim]));
            lin.push(init.linear(&format!("moe_adaptor.experts.{e}.lin"), hidden, text_dim, false));
        }
        let gate = init.zeros("moe_adaptor.w_gate", &[text_dim, experts]);
        let gate_noise = init.zeros("moe_adaptor.w_noise", &[text_dim, experts]);
        MoeAdapter { experts: lin, offsets, gate, gate_noise, dropout }
    }

    pub(crate) fn bind(b: &Binder<'_>, experts: usize, text_dim: usize, hidden: usize, dropout: f32) -> Result<Self, ModelError> {
        let mut lin = Vec::new();
        let mut offsets = Vec::new();
        for e in 0..experts {
            offsets.push(b.get(&format!("moe_adaptor.experts.{e}.bias"), &[text_dim])?);
            lin.push(b.linear(&format!("moe_adaptor.experts.{e}.lin"), hidden, text_dim, false)?);
        }
        let gate = b.get("moe_adaptor.w_gate", &[text_dim, experts])?;
        let gate_noise = b.get("moe_adaptor.w_noise", &[text_dim, experts])?;
        Ok(MoeAdapter { experts: lin, offsets, gate, gate_noise, dropout })
    }

    /// Maps `x` `[rows, text_dim]` to `[rows, hidden]`. With `rng`, the
    /// adapter is in training mode: dropout and gate noise are drawn from it.
    pub(crate) fn forward(&self, g: &mut Graph<'_>, x: Var, rng: Option<&mut ChaCha12Rng>) -> autograd::Result<Var> {
        let rows = g.shape(x)[0];
        let n = self.experts.len();
        let gate = g.param(self.gate);
        let mut logits = g.matmul(x, gate)?;
        let mut seeds = vec![None; n];
        if let Some(rng) = rng {
            let gn = g.param(self.gate_noise);
            let raw = g.matmul(x, gn)?;
            let sp = g.softplus(raw);
            let std = g.add_scalar(sp, NOISE_EPSILON);
            let mut noise = g.alloc(rows * n);
            noise.iter_mut().for_each(|v| *v = StandardNormal.sample(rng));
            let noise = g.constant(autograd::Tensor::new(vec![rows, n], noise)?);
            let scaled = g.mul(noise, std)?;
            logits = g.add(logits, scaled)?;
            for s in seeds.iter_mut() {
                *s = Some(rng.gen::<u64>());
            }
        }
        let gates = g.softmax(logits)?;
        let mut outs = Vec::with_capacity(n);
        for e in 0..n {
            let (p, seed) = match seeds[e] {
                Some(seed) => (self.dropout, seed),
                None => (0.0, 0),
            };
            let b = g.param(self.offsets[e]);
            let w = g.param(self.experts[e].weight);
            outs.push(g.centered_linear(x, b, w, p, seed)?);
        }
        g.mixture(gates, &outs)
    }
}
