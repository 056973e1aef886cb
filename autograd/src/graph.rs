//! The tape: nodes in creation order, and reverse-mode backward over them.

use crate::error::{invalid, Result};
use crate::params::{Gradients, ParamId, ParamStore};
use crate::pool::BufferPool;
use crate::tensor::Tensor;
use std::collections::HashMap;

/// Handle of a node of a [`Graph`]; cheap to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub(crate) usize);

impl Var {
    /// Position of the node on the tape.
    pub fn index(self) -> usize {
        self.0
    }
}

/// The backward function of one node: reads the output gradient and the
/// saved values, and adds into the gradients of its inputs.
pub type BackwardFn = Box<dyn FnOnce(&BackwardInput<'_>, &mut GradSink<'_>) + Send>;

enum NodeData {
    Owned(Vec<f32>),
    Param(ParamId),
    Released,
}

struct Node {
    shape: Vec<usize>,
    data: NodeData,
    requires_grad: bool,
    backward: Option<BackwardFn>,
}

/// Read access for a backward function: saved values and the gradient of
/// the node being differentiated.
pub struct BackwardInput<'a> {
    nodes: &'a [Node],
    params: &'a ParamStore,
    grad_output: &'a [f32],
    output: usize,
}

impl BackwardInput<'_> {
    /// Returns the forward value of `v`.
    ///
    /// # Panics
    /// Panics if the value was released, which happens only to nodes created
    /// after the one being differentiated.
    pub fn value(&self, v: Var) -> &[f32] {
        node_value(&self.nodes[v.0], self.params)
    }

    /// Returns the shape of `v`.
    pub fn shape(&self, v: Var) -> &[usize] {
        &self.nodes[v.0].shape
    }

    /// Returns the gradient of the loss with respect to this node's output.
    pub fn grad_output(&self) -> &[f32] {
        self.grad_output
    }

    /// This node's own forward value.
    pub fn output(&self) -> &[f32] {
        node_value(&self.nodes[self.output], self.params)
    }
}

/// Write access for a backward function: gradient buffers of earlier nodes,
/// created as zeros on first use.
pub struct GradSink<'a> {
    grads: &'a mut [Option<Vec<f32>>],
    nodes: &'a [Node],
    pool: &'a mut BufferPool,
}

impl GradSink<'_> {
    /// True when `v` needs a gradient.
    pub fn wants(&self, v: Var) -> bool {
        self.nodes[v.0].requires_grad
    }

    /// Returns the gradient buffer of `v` to accumulate into, created as
    /// zeros on first use, or `None` when `v` needs no gradient.
    pub fn grad(&mut self, v: Var) -> Option<&mut [f32]> {
        if !self.nodes[v.0].requires_grad {
            return None;
        }
        let len: usize = self.nodes[v.0].shape.iter().product();
        let slot = &mut self.grads[v.0];
        if slot.is_none() {
            *slot = Some(self.pool.zeros(len));
        }
        slot.as_deref_mut()
    }

    /// Takes a zeroed scratch buffer from the pool. Hand it back with
    /// [`GradSink::recycle`].
    pub fn scratch(&mut self, len: usize) -> Vec<f32> {
        self.pool.zeros(len)
    }

    /// Returns a scratch buffer to the pool.
    pub fn recycle(&mut self, buffer: Vec<f32>) {
        self.pool.give(buffer);
    }
}

fn node_value<'a>(node: &'a Node, params: &'a ParamStore) -> &'a [f32] {
    match &node.data {
        NodeData::Owned(v) => v,
        NodeData::Param(id) => params.value(*id).data(),
        NodeData::Released => panic!("value read after backward released it"),
    }
}

/// A tape of operations for one forward and backward pass.
///
/// Nodes are appended in creation order, which is a topological order, so
/// backward walks the tape in reverse. Parameters are borrowed from a
/// [`ParamStore`], not copied.
///
/// ```
/// use autograd::{Graph, ParamStore, Tensor};
/// let mut store = ParamStore::new();
/// let w = store.add("w", Tensor::new(vec![2], vec![3.0, -1.0]).unwrap());
/// let mut g = Graph::new(&store);
/// let x = g.param(w);
/// let y = g.mul(x, x).unwrap(); // y = w^2
/// let loss = g.sum(y);
/// let grads = g.backward(loss).unwrap();
/// assert_eq!(grads.get(w).unwrap(), &[6.0, -2.0]); // d/dw w^2 = 2w
/// ```
pub struct Graph<'p> {
    params: &'p ParamStore,
    nodes: Vec<Node>,
    param_vars: HashMap<ParamId, Var>,
    pool: BufferPool,
    grad_enabled: bool,
}

impl<'p> Graph<'p> {
    /// Creates an empty tape over `params`.
    pub fn new(params: &'p ParamStore) -> Self {
        Self::with_pool(params, BufferPool::new())
    }

    /// Creates an empty tape that takes its buffers from `pool`.
    pub fn with_pool(params: &'p ParamStore, pool: BufferPool) -> Self {
        Graph { params, nodes: Vec::new(), param_vars: HashMap::new(), pool, grad_enabled: true }
    }

    /// Creates an empty tape that records no backward functions, for inference.
    pub fn inference(params: &'p ParamStore) -> Self {
        let mut g = Self::new(params);
        g.grad_enabled = false;
        g
    }

    /// Switches gradient recording on or off for nodes created from now on.
    pub fn set_grad_enabled(&mut self, enabled: bool) {
        self.grad_enabled = enabled;
    }

    /// Returns the parameter store this tape reads.
    pub fn params(&self) -> &'p ParamStore {
        self.params
    }

    /// Releases every value into the pool and returns the pool, for the next step.
    pub fn into_pool(mut self) -> BufferPool {
        for node in self.nodes.drain(..) {
            if let NodeData::Owned(v) = node.data {
                self.pool.give(v);
            }
        }
        self.pool
    }

    /// Number of nodes on the tape.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the tape has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node for parameter `id`; repeated calls return the same node
    /// while gradient recording stays on or off.
    pub fn param(&mut self, id: ParamId) -> Var {
        let p = self.params.get(id);
        let requires_grad = p.trainable && self.grad_enabled;
        // A node made while gradients were off cannot start receiving them,
        // so a parameter first used then gets a second node once they are on.
        if let Some(v) = self.param_vars.get(&id) {
            if self.nodes[v.0].requires_grad == requires_grad {
                return *v;
            }
        }
        let v = Var(self.nodes.len());
        self.nodes.push(Node {
            shape: p.value.shape().to_vec(),
            data: NodeData::Param(id),
            requires_grad,
            backward: None,
        });
        self.param_vars.insert(id, v);
        v
    }

    /// Adds a constant input, which receives no gradient.
    pub fn constant(&mut self, t: Tensor) -> Var {
        let shape = t.shape().to_vec();
        self.push_leaf(shape, t.into_data(), false)
    }

    /// Adds a constant input copied from a slice into a pooled buffer.
    ///
    /// # Errors
    /// When `data.len()` is not the product of `shape`.
    pub fn constant_from(&mut self, shape: &[usize], data: &[f32]) -> Result<Var> {
        check_len("constant_from", shape, data.len())?;
        let mut buf = self.pool.uninit(data.len());
        buf.copy_from_slice(data);
        Ok(self.push_leaf(shape.to_vec(), buf, false))
    }

    /// Adds a leaf that receives a gradient without being a parameter.
    pub fn variable(&mut self, t: Tensor) -> Var {
        let shape = t.shape().to_vec();
        let rg = self.grad_enabled;
        self.push_leaf(shape, t.into_data(), rg)
    }

    fn push_leaf(&mut self, shape: Vec<usize>, data: Vec<f32>, requires_grad: bool) -> Var {
        let v = Var(self.nodes.len());
        self.nodes.push(Node { shape, data: NodeData::Owned(data), requires_grad, backward: None });
        v
    }

    /// The forward value of `v`.
    ///
    /// # Panics
    /// Panics if backward already released it.
    pub fn value(&self, v: Var) -> &[f32] {
        node_value(&self.nodes[v.0], self.params)
    }

    /// The shape of `v`.
    pub fn shape(&self, v: Var) -> &[usize] {
        &self.nodes[v.0].shape
    }

    /// A copy of the value of `v` as a tensor.
    pub fn tensor(&self, v: Var) -> Tensor {
        Tensor::new(self.shape(v).to_vec(), self.value(v).to_vec()).expect("node shapes match their buffers")
    }

    /// True when gradients flow into `v`.
    pub fn requires_grad(&self, v: Var) -> bool {
        self.nodes[v.0].requires_grad
    }

    /// A zeroed buffer from the pool, for an op's output.
    pub fn alloc_zeros(&mut self, len: usize) -> Vec<f32> {
        self.pool.zeros(len)
    }

    /// A buffer from the pool whose contents the caller overwrites in full.
    pub fn alloc(&mut self, len: usize) -> Vec<f32> {
        self.pool.uninit(len)
    }

    /// Appends the result of an operation.
    ///
    /// `data` holds the forward value with `shape`; `backward` adds the
    /// gradients of `inputs` and runs only when one of them requires a
    /// gradient. This is the extension point for operations defined outside
    /// this crate.
    ///
    /// # Errors
    /// When `data.len()` is not the product of `shape`.
    pub fn custom_op(
        &mut self,
        inputs: &[Var],
        shape: Vec<usize>,
        data: Vec<f32>,
        backward: impl FnOnce(&BackwardInput<'_>, &mut GradSink<'_>) + Send + 'static,
    ) -> Result<Var> {
        check_len("custom_op", &shape, data.len())?;
        let requires_grad = self.grad_enabled && inputs.iter().any(|v| self.nodes[v.0].requires_grad);
        let v = Var(self.nodes.len());
        self.nodes.push(Node {
            shape,
            data: NodeData::Owned(data),
            requires_grad,
            backward: if requires_grad { Some(Box::new(backward)) } else { None },
        });
        Ok(v)
    }

    /// Whether any of `inputs` requires a gradient (and recording is on).
    pub fn any_requires_grad(&self, inputs: &[Var]) -> bool {
        self.grad_enabled && inputs.iter().any(|v| self.nodes[v.0].requires_grad)
    }

    /// Runs reverse-mode differentiation from the scalar `loss` and returns
    /// the gradients of the trainable parameters.
    ///
    /// Each value is released into the pool once no remaining backward
    /// function can read it, so values of nodes at or before `loss` cannot be
    /// read afterwards.
    ///
    /// # Errors
    /// When `loss` does not hold exactly one element.
    pub fn backward(&mut self, loss: Var) -> Result<Gradients> {
        let n: usize = self.nodes[loss.0].shape.iter().product();
        if n != 1 {
            return Err(invalid("backward", format!("loss must hold one element, got shape {:?}", self.nodes[loss.0].shape)));
        }
        let mut grads: Vec<Option<Vec<f32>>> = (0..=loss.0).map(|_| None).collect();
        let mut seed = self.pool.uninit(1);
        seed[0] = 1.0;
        grads[loss.0] = Some(seed);
        let mut out = Gradients::default();

        for i in (0..=loss.0).rev() {
            if let Some(g) = grads[i].take() {
                if let Some(bw) = self.nodes[i].backward.take() {
                    let (before, _) = grads.split_at_mut(i);
                    let input = BackwardInput { nodes: &self.nodes, params: self.params, grad_output: &g, output: i };
                    let mut sink = GradSink { grads: before, nodes: &self.nodes, pool: &mut self.pool };
                    bw(&input, &mut sink);
                }
                match self.nodes[i].data {
                    NodeData::Param(id) => {
                        out.grads.insert(id, g);
                    }
                    _ => self.pool.give(g),
                }
            }
            self.nodes[i].backward = None;
            // Parameters are borrowed from the store and stay readable.
            if matches!(self.nodes[i].data, NodeData::Owned(_)) {
                if let NodeData::Owned(v) = std::mem::replace(&mut self.nodes[i].data, NodeData::Released) {
                    self.pool.give(v);
                }
            }
        }
        Ok(out)
    }
}

pub(crate) fn check_len(op: &'static str, shape: &[usize], len: usize) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != len {
        return Err(crate::error::Error::LengthMismatch { op, shape: shape.to_vec(), len });
    }
    Ok(())
}
