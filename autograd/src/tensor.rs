//! Dense row-major `f32` tensors.

use crate::error::{Error, Result};
use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// A shape and a contiguous row-major `f32` buffer.
///
/// Linear weights are stored `[out, in]`, the layout PyTorch uses, so weights
/// move between the two without transposition.
///
/// ```
/// use autograd::Tensor;
/// let t = Tensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
/// assert_eq!(t.shape(), &[2, 3]);
/// assert_eq!(t.row(1), &[4.0, 5.0, 6.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// Wraps `data` with `shape`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `data.len()` is not the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::LengthMismatch { op: "Tensor::new", shape, len: data.len() });
        }
        Ok(Tensor { shape, data })
    }

    /// Creates a tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor { shape: shape.to_vec(), data: vec![0.0; shape.iter().product()] }
    }

    /// Creates a tensor filled with `value`.
    pub fn full(shape: &[usize], value: f32) -> Self {
        Tensor { shape: shape.to_vec(), data: vec![value; shape.iter().product()] }
    }

    /// Creates a scalar tensor of shape `[]`.
    pub fn scalar(value: f32) -> Self {
        Tensor { shape: vec![], data: vec![value] }
    }

    /// Samples every element from `N(mean, std^2)`.
    pub fn randn(shape: &[usize], mean: f32, std: f32, rng: &mut impl Rng) -> Self {
        let normal = Normal::new(mean, std).expect("standard deviation must be finite and >= 0");
        let n = shape.iter().product();
        Tensor { shape: shape.to_vec(), data: (0..n).map(|_| normal.sample(rng)).collect() }
    }

    /// The dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements in row-major order, writable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the tensor and returns its buffer.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor contains no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Size of the last axis (1 for a scalar).
    pub fn last_dim(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    /// Row `i` of the tensor viewed as `[len / last_dim, last_dim]`.
    ///
    /// # Panics
    /// Panics if `i` is out of range.
    #[track_caller]
    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.last_dim();
        &self.data[i * d..(i + 1) * d]
    }

    /// Reinterprets the buffer with another shape of equal element count.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when the element counts differ.
    pub fn reshape(self, shape: Vec<usize>) -> Result<Self> {
        Tensor::new(shape, self.data)
    }

    /// True when every element is finite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|x| x.is_finite())
    }
}
