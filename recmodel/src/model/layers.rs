//! Parameter creation and lookup shared by the model's layers.

use crate::error::ModelError;
use autograd::{ParamId, ParamStore, Tensor};
use rand_chacha::ChaCha12Rng;

/// Creates parameters with RecBole's initialisation: weights `N(0, std^2)`,
/// biases zero, LayerNorm weight one.
pub(crate) struct Init<'a> {
    pub store: &'a mut ParamStore,
    pub rng: &'a mut ChaCha12Rng,
    pub std: f32,
}

impl Init<'_> {
    pub fn normal(&mut self, name: &str, shape: &[usize]) -> ParamId {
        let t = Tensor::randn(shape, 0.0, self.std, self.rng);
        self.store.add(name, t)
    }

    pub fn zeros(&mut self, name: &str, shape: &[usize]) -> ParamId {
        self.store.add(name, Tensor::zeros(shape))
    }

    pub fn ones(&mut self, name: &str, shape: &[usize]) -> ParamId {
        self.store.add(name, Tensor::full(shape, 1.0))
    }

    pub fn linear(&mut self, prefix: &str, out: usize, input: usize, bias: bool) -> Linear {
        let weight = self.normal(&format!("{prefix}.weight"), &[out, input]);
        let bias = bias.then(|| self.zeros(&format!("{prefix}.bias"), &[out]));
        Linear { weight, bias }
    }

    pub fn layer_norm(&mut self, prefix: &str, d: usize) -> LayerNorm {
        LayerNorm { weight: self.ones(&format!("{prefix}.weight"), &[d]), bias: self.zeros(&format!("{prefix}.bias"), &[d]) }
    }
}

/// Looks parameters up by name and checks their shapes.
pub(crate) struct Binder<'a> {
    pub store: &'a ParamStore,
}

impl Binder<'_> {
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<ParamId, ModelError> {
        let id = self.store.find(name).ok_or_else(|| ModelError::MissingParameter { name: name.to_string() })?;
        let actual = self.store.value(id).shape();
        if actual != shape {
            return Err(ModelError::ParameterShape { name: name.to_string(), expected: shape.to_vec(), actual: actual.to_vec() });
        }
        Ok(id)
    }

    pub fn linear(&self, prefix: &str, out: usize, input: usize, bias: bool) -> Result<Linear, ModelError> {
        let weight = self.get(&format!("{prefix}.weight"), &[out, input])?;
        let bias = if bias { Some(self.get(&format!("{prefix}.bias"), &[out])?) } else { None };
        Ok(Linear { weight, bias })
    }

    pub fn layer_norm(&self, prefix: &str, d: usize) -> Result<LayerNorm, ModelError> {
        Ok(LayerNorm { weight: self.get(&format!("{prefix}.weight"), &[d])?, bias: self.get(&format!("{prefix}.bias"), &[d])? })
    }
}

/// A linear layer `x W^T + b` with `W` stored `[out, in]`.
#[derive(Clone, Copy, Debug)]
pub struct Linear {
    /// Weight `[out, in]`.
    pub weight: ParamId,
    /// Optional bias `[out]`.
    pub bias: Option<ParamId>,
}

impl Linear {
    pub(crate) fn forward(&self, g: &mut autograd::Graph<'_>, x: autograd::Var) -> autograd::Result<autograd::Var> {
        let w = g.param(self.weight);
        let b = self.bias.map(|b| g.param(b));
        g.linear(x, w, b)
    }
}

/// LayerNorm weight and bias.
#[derive(Clone, Copy, Debug)]
pub struct LayerNorm {
    /// Scale `[d]`.
    pub weight: ParamId,
    /// Shift `[d]`.
    pub bias: ParamId,
}

impl LayerNorm {
    pub(crate) fn forward(&self, g: &mut autograd::Graph<'_>, x: autograd::Var, eps: f32) -> autograd::Result<autograd::Var> {
        let w = g.param(self.weight);
        let b = g.param(self.bias);
        g.layer_norm(x, w, b, eps)
    }
}
