//! Bad input gets an error that names the list, the dimension and the value.

mod common;

use common::gaussian;
use tensornet::{Axis, Error, Mpo, MpoShape, Truncation};

#[test]
fn decompose_rejects_wrong_row_product() {
    let w = gaussian(300, 384, 1);
    let err = Mpo::decompose(&w, 300, 384, &[2, 3, 5, 5], &[2, 4, 4, 4, 3], &Truncation::none()).unwrap_err();
    assert_eq!(err.to_string(), "row factors [2, 3, 5, 5] multiply to 150, but the dimension is 300");
}

#[test]
fn decompose_rejects_wrong_column_product() {
    let w = gaussian(300, 384, 1);
    let err = Mpo::decompose(&w, 300, 384, &[2, 3, 5, 5, 2], &[2, 4, 4, 4, 4], &Truncation::none()).unwrap_err();
    assert!(matches!(err, Error::FactorProduct { axis: Axis::Cols, product: 512, dim: 384, .. }));
}

#[test]
fn decompose_rejects_zero_factor() {
    let w = gaussian(4, 4, 1);
    let err = Mpo::decompose(&w, 4, 4, &[4, 0], &[2, 2], &Truncation::none()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "row factors [4, 0] are invalid: every factor must be at least 1 and the list must not be empty"
    );
}

#[test]
fn decompose_rejects_nan() {
    let mut w = gaussian(8, 8, 1);
    w[13] = f32::NAN;
    let err = Mpo::decompose(&w, 8, 8, &[2, 4], &[4, 2], &Truncation::none()).unwrap_err();
    assert_eq!(err.to_string(), "matrix element 13 is NaN; only finite values can be decomposed or contracted");
}

#[test]
fn decompose_rejects_infinity() {
    let mut w = gaussian(8, 8, 1);
    w[63] = f32::NEG_INFINITY;
    let err = Mpo::decompose(&w, 8, 8, &[2, 4], &[4, 2], &Truncation::none()).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 63, .. }));
}

#[test]
fn decompose_rejects_wrong_length() {
    let w = gaussian(8, 7, 1);
    let err = Mpo::decompose(&w, 8, 8, &[2, 4], &[4, 2], &Truncation::none()).unwrap_err();
    assert_eq!(err.to_string(), "matrix: shape [8, 8] needs 64 elements but the buffer has 56");
}

#[test]
fn truncate_rejects_non_finite_core() {
    let w = gaussian(8, 8, 1);
    let (mut mpo, _) = Mpo::decompose(&w, 8, 8, &[2, 4], &[4, 2], &Truncation::none()).unwrap();
    mpo.core_mut(1)[2] = f32::INFINITY;
    let err = mpo.truncate(&Truncation::max_bond(2)).unwrap_err();
    assert_eq!(err.to_string(), "core 1 element 2 is inf; only finite values can be decomposed or contracted");
}

#[test]
fn from_cores_rejects_wrong_length() {
    let shape = MpoShape::full(&[2, 2], &[2, 2]).unwrap();
    let err = Mpo::from_cores(shape, vec![vec![0.0; 16], vec![0.0; 15]]).unwrap_err();
    assert_eq!(err.to_string(), "core 1: shape [4, 2, 2, 1] needs 16 elements but the buffer has 15");
}

#[test]
fn from_tensors_rejects_broken_chain() {
    let cores = [autograd::Tensor::zeros(&[1, 2, 2, 3]), autograd::Tensor::zeros(&[4, 2, 2, 1])];
    let err = Mpo::from_tensors(&cores).unwrap_err();
    assert_eq!(err.to_string(), "core 1 has shape [4, 2, 2, 1]: its left bond 4 differs from the right bond 3 of the core before");
}

#[test]
fn apply_rejects_wrong_width() {
    let w = gaussian(8, 8, 1);
    let (mpo, _) = Mpo::decompose(&w, 8, 8, &[2, 4], &[4, 2], &Truncation::none()).unwrap();
    let err = mpo.apply(&[0.0; 12]).unwrap_err();
    assert!(matches!(err, Error::InputShape { expected: 8, .. }));
}
