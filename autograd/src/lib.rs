//! Tensors on contiguous `f32` buffers, tape-based reverse-mode automatic
//! differentiation, and the Adam family of optimizers.
//!
//! A [`Graph`] records operations in creation order while computing their
//! values; [`Graph::backward`] walks the tape in reverse and returns the
//! gradients of the trainable parameters of a [`ParamStore`]. Matrix products
//! go through `matrixmultiply`'s sgemm and large elementwise work is spread
//! over rayon's thread pool, in an order that does not depend on the number
//! of threads, so one seed gives one result.
//!
//! ```
//! use autograd::{Adam, AdamConfig, Graph, ParamStore, Tensor};
//!
//! // Fit y = 2x with a single weight.
//! let mut store = ParamStore::new();
//! let w = store.add("w", Tensor::new(vec![1, 1], vec![0.0]).unwrap());
//! let mut opt = Adam::new(AdamConfig { lr: 0.05, ..Default::default() });
//! for _ in 0..300 {
//!     let grads = {
//!         let mut g = Graph::new(&store);
//!         let x = g.constant(Tensor::new(vec![2, 1], vec![1.0, 2.0]).unwrap());
//!         let y = g.constant(Tensor::new(vec![2, 1], vec![2.0, 4.0]).unwrap());
//!         let wv = g.param(w);
//!         let pred = g.linear(x, wv, None).unwrap();
//!         let err = g.sub(pred, y).unwrap();
//!         let sq = g.mul(err, err).unwrap();
//!         let loss = g.mean(sq);
//!         g.backward(loss).unwrap()
//!     };
//!     opt.step(&mut store, &grads);
//! }
//! assert!((store.value(w).data()[0] - 2.0).abs() < 1e-2);
//! ```
#![deny(missing_docs)]

mod error;
pub mod gemm;
pub mod gradcheck;
mod graph;
pub mod ops;
mod optim;
mod params;
mod pool;
mod tensor;

pub use error::{Error, Result};
pub use graph::{BackwardFn, BackwardInput, GradSink, Graph, Var};
pub use ops::SequenceOffsets;
pub use optim::{Adam, AdamConfig};
pub use params::{Gradients, ParamId, ParamStore, Parameter};
pub use pool::BufferPool;
pub use tensor::Tensor;
