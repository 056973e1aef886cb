//! Matrix product operators (MPO) for the weights of a neural network:
//! factorization, bond-dimension control and contraction, plain and
//! differentiable.
//!
//! An MPO of an `[out, in]` weight `W` with `out = i_0 ... i_{n-1}` and
//! `in = j_0 ... j_{n-1}` is a chain of cores `T_k` of shape
//! `[d_k, i_k, j_k, d_{k+1}]` with `d_0 = d_n = 1`, whose contraction gives
//! `W`. The row factors `i_k` split the output dimension, the column
//! factors `j_k` the input dimension.
//!
//! - [`auto_factors`] and [`auto_factor_pair`] choose factor lists,
//!   [`check_factors`] validates explicit ones.
//! - [`Mpo::decompose`] factorizes a matrix by a left-to-right sweep of thin
//!   SVDs, optionally truncating each bond ([`Truncation`]), and returns a
//!   [`TruncationReport`]; [`Mpo::truncate`] re-compresses an existing MPO.
//! - [`Mpo::left_canonical`], [`Mpo::right_canonical`],
//!   [`Mpo::mixed_canonical`] and [`Mpo::symmetric_canonical`] change the
//!   gauge without changing the matrix; [`Mpo::bond_spectra`] returns the
//!   singular values of every bond.
//! - [`Mpo::to_dense`] and [`Mpo::apply`] contract; [`mpo_matrix`],
//!   [`mpo_apply_chain`] and [`mpo_linear`] do the same on an autograd
//!   [`autograd::Graph`], so that the cores can be trained.
//! - [`Mpo::insert_identity`] adds identity cores, which leave the matrix
//!   unchanged and add trainable parameters.
//!
//! ```
//! use tensornet::{auto_factor_pair, Mpo, Truncation};
//!
//! let (out_dim, in_dim) = (12, 16);
//! let w: Vec<f32> = (0..out_dim * in_dim).map(|x| ((x * 37) % 17) as f32 - 8.0).collect();
//! let (rows, cols) = auto_factor_pair(out_dim, in_dim, 3).unwrap();
//! assert_eq!((rows.clone(), cols.clone()), (vec![2, 3, 2], vec![2, 4, 2]));
//!
//! // Exact decomposition: full bond dimensions, nothing discarded.
//! let (mpo, report) = Mpo::decompose(&w, out_dim, in_dim, &rows, &cols, &Truncation::none()).unwrap();
//! assert_eq!(mpo.shape().bond_dims(), &[1, 4, 4, 1]);
//! assert_eq!(report.error(), 0.0);
//!
//! // Truncated to bond 2: the report gives the Frobenius error.
//! let (small, report) = mpo.truncate(&Truncation::max_bond(2)).unwrap();
//! assert_eq!(small.shape().bond_dims(), &[1, 2, 2, 1]);
//! let back = small.to_dense();
//! let error: f64 = back.iter().zip(&w).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt();
//! assert!((error - report.error()).abs() < 1e-3 * report.norm);
//! ```
#![deny(missing_docs)]

mod autodiff;
mod canonical;
mod contract;
mod decompose;
mod eigen;
mod error;
mod factor;
mod gemm_f64;
mod gemm_swap;
mod linalg;
mod mpo;
mod random;
mod shape;

pub use autodiff::{apply_cost, choose_apply, mpo_apply_chain, mpo_linear, mpo_matrix, ApplyCost, ApplyPlan};
pub use decompose::{Truncation, TruncationReport};
pub use error::{Axis, Error, Result};
pub use factor::{auto_factor_pair, auto_factors, check_factors, pad_factor_lists, padded_dim, prime_factors};
pub use linalg::SvdMethod;
pub use mpo::Mpo;
pub use random::gaussian_matrix;
pub use shape::{full_bond_dims, MpoShape};
