//! Named model parameters and their gradients.

use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Handle of a parameter inside a [`ParamStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ParamId(pub usize);

/// One named parameter.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Parameter {
    /// Name in the PyTorch state-dict vocabulary, such as `LayerNorm.weight`.
    pub name: String,
    /// Current value.
    pub value: Tensor,
    /// Frozen parameters get no gradient and are skipped by optimizers.
    pub trainable: bool,
    /// Optimizer parameter group, which selects the learning rate.
    pub group: usize,
}

/// The parameters of a model, in creation order, addressable by name.
///
/// ```
/// use autograd::{ParamStore, Tensor};
/// let mut store = ParamStore::new();
/// let w = store.add("linear.weight", Tensor::zeros(&[2, 3]));
/// assert_eq!(store.find("linear.weight"), Some(w));
/// assert_eq!(store.num_elements(), 6);
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ParamStore {
    params: Vec<Parameter>,
    #[serde(skip)]
    index: HashMap<String, ParamId>,
}

impl ParamStore {
    /// Creates an empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a trainable parameter in group 0.
    ///
    /// # Panics
    /// Panics if `name` is already taken: two parameters with one name would
    /// make checkpoints ambiguous.
    #[track_caller]
    pub fn add(&mut self, name: impl Into<String>, value: Tensor) -> ParamId {
        let name = name.into();
        assert!(!self.index.contains_key(&name), "parameter {name:?} added twice");
        let id = ParamId(self.params.len());
        self.index.insert(name.clone(), id);
        self.params.push(Parameter { name, value, trainable: true, group: 0 });
        id
    }

    /// Rebuilds the name index, which deserialization leaves empty.
    pub fn rebuild_index(&mut self) {
        self.index = self.params.iter().enumerate().map(|(i, p)| (p.name.clone(), ParamId(i))).collect();
    }

    /// Looks a parameter up by name.
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.index.get(name).copied()
    }

    /// The parameter behind `id`.
    pub fn get(&self, id: ParamId) -> &Parameter {
        &self.params[id.0]
    }

    /// The parameter behind `id`, writable.
    pub fn get_mut(&mut self, id: ParamId) -> &mut Parameter {
        &mut self.params[id.0]
    }

    /// The value of the parameter behind `id`.
    pub fn value(&self, id: ParamId) -> &Tensor {
        &self.params[id.0].value
    }

    /// Freezes or unfreezes one parameter.
    pub fn set_trainable(&mut self, id: ParamId, trainable: bool) {
        self.params[id.0].trainable = trainable;
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// True when the store contains no parameter.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Iterates over `(id, parameter)` in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &Parameter)> {
        self.params.iter().enumerate().map(|(i, p)| (ParamId(i), p))
    }

    /// Total number of scalar elements.
    pub fn num_elements(&self) -> usize {
        self.params.iter().map(|p| p.value.len()).sum()
    }

    /// Number of scalar elements in trainable parameters.
    pub fn num_trainable_elements(&self) -> usize {
        self.params.iter().filter(|p| p.trainable).map(|p| p.value.len()).sum()
    }
}

/// Gradients of the trainable parameters after one backward pass.
#[derive(Debug, Default)]
pub struct Gradients {
    pub(crate) grads: HashMap<ParamId, Vec<f32>>,
}

impl Gradients {
    /// Returns the gradient of `id`, if it received one.
    pub fn get(&self, id: ParamId) -> Option<&[f32]> {
        self.grads.get(&id).map(|g| g.as_slice())
    }

    /// Returns the gradient of `id`, writable.
    pub fn get_mut(&mut self, id: ParamId) -> Option<&mut [f32]> {
        self.grads.get_mut(&id).map(|g| g.as_mut_slice())
    }

    /// Iterates over the parameters that received a gradient, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &[f32])> {
        let mut ids: Vec<_> = self.grads.keys().copied().collect();
        ids.sort();
        ids.into_iter().map(move |id| (id, self.grads[&id].as_slice()))
    }

    /// Computes the Euclidean norm of all gradients taken together.
    pub fn global_norm(&self) -> f32 {
        let sum: f64 = self
            .iter()
            .map(|(_, g)| g.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>())
            .sum();
        sum.sqrt() as f32
    }

    /// Scales all gradients so that their global norm is at most `max_norm`.
    /// Returns the norm before clipping.
    pub fn clip_global_norm(&mut self, max_norm: f32) -> f32 {
        let norm = self.global_norm();
        if norm > max_norm && norm > 0.0 {
            let scale = max_norm / norm;
            for g in self.grads.values_mut() {
                g.iter_mut().for_each(|x| *x *= scale);
            }
        }
        norm
    }

    /// Takes the buffers back, so that a [`crate::BufferPool`] can reuse them.
    pub fn into_buffers(self) -> impl Iterator<Item = Vec<f32>> {
        self.grads.into_values()
    }
}
