//! Canonical forms: orthonormality of the cores, unchanged matrix, and the
//! singular values split evenly in the symmetric form.

mod common;

use common::{gaussian, relative_error};
use tensornet::{Mpo, Truncation};

/// Largest deviation of `A^T A` from the identity for the row-major `m x n` matrix `a`.
fn column_orthonormality_error(a: &[f32], m: usize, n: usize) -> f64 {
    let mut worst = 0.0f64;
    for p in 0..n {
        for q in 0..n {
            let dot: f64 = (0..m).map(|r| a[r * n + p] as f64 * a[r * n + q] as f64).sum();
            let target = if p == q { 1.0 } else { 0.0 };
            worst = worst.max((dot - target).abs());
        }
    }
    worst
}

/// Largest deviation of `A A^T` from the identity.
fn row_orthonormality_error(a: &[f32], m: usize, n: usize) -> f64 {
    let mut transposed = vec![0.0f32; a.len()];
    for r in 0..m {
        for c in 0..n {
            transposed[c * m + r] = a[r * n + c];
        }
    }
    column_orthonormality_error(&transposed, n, m)
}

fn sample() -> (Vec<f32>, Mpo) {
    let w = gaussian(300, 384, 1);
    let (mpo, _) = Mpo::decompose(&w, 300, 384, &[2, 3, 5, 5, 2], &[2, 4, 4, 4, 3], &Truncation::none()).unwrap();
    (w, mpo.symmetric_canonical().unwrap())
}

#[test]
fn left_canonical_cores_orthonormal() {
    let (w, mpo) = sample();
    let left = mpo.left_canonical();
    for k in 0..left.num_cores() - 1 {
        let [d, i, j, d2] = left.shape().core_shape(k);
        let error = column_orthonormality_error(left.core(k), d * i * j, d2);
        assert!(error < 1e-5, "core {k}: {error}");
    }
    assert!(relative_error(&left.to_dense(), &w) < 1e-5);
}

#[test]
fn right_canonical_cores_orthonormal() {
    let (w, mpo) = sample();
    let right = mpo.right_canonical();
    for k in 1..right.num_cores() {
        let [d, i, j, d2] = right.shape().core_shape(k);
        let error = row_orthonormality_error(right.core(k), d, i * j * d2);
        assert!(error < 1e-5, "core {k}: {error}");
    }
    assert!(relative_error(&right.to_dense(), &w) < 1e-5);
}

#[test]
fn mixed_canonical_centre_holds_norm() {
    let (w, mpo) = sample();
    let mixed = mpo.mixed_canonical(2).unwrap();
    for k in 0..2 {
        let [d, i, j, d2] = mixed.shape().core_shape(k);
        assert!(column_orthonormality_error(mixed.core(k), d * i * j, d2) < 1e-5, "core {k}");
    }
    for k in 3..5 {
        let [d, i, j, d2] = mixed.shape().core_shape(k);
        assert!(row_orthonormality_error(mixed.core(k), d, i * j * d2) < 1e-5, "core {k}");
    }
    // With orthonormal cores on both sides, ||W||_F = ||T_centre||_F.
    let centre_norm = common::frobenius_norm(mixed.core(2));
    let norm = common::frobenius_norm(&w);
    assert!((centre_norm - norm).abs() < 1e-5 * norm);
    assert!(relative_error(&mixed.to_dense(), &w) < 1e-5);
}

#[test]
fn mixed_canonical_rejects_bad_centre() {
    let (_, mpo) = sample();
    assert!(mpo.mixed_canonical(5).is_err());
}

#[test]
fn symmetric_form_splits_singular_values() {
    // In the symmetric form, cores 0..k contract to L_k S_k^(1/2) with L_k
    // orthonormal, so the Gram matrix of that left block is S_k: diagonal,
    // with the bond's singular values on the diagonal. Checked at bond 1,
    // where the left block is core 0 alone.
    let (w, mpo) = sample();
    let spectra = mpo.bond_spectra().unwrap();
    let symmetric = mpo.symmetric_canonical().unwrap();
    let [_, i, j, d1] = symmetric.shape().core_shape(0);
    let core = symmetric.core(0);
    for p in 0..d1 {
        for q in 0..d1 {
            let dot: f64 = (0..i * j).map(|r| core[r * d1 + p] as f64 * core[r * d1 + q] as f64).sum();
            let expected = if p == q { spectra[0][p] } else { 0.0 };
            assert!((dot - expected).abs() < 1e-4 * spectra[0][0], "entry ({p}, {q}): {dot} vs {expected}");
        }
    }
    // The last core's rows carry S_{n-1}^(1/2): its Gram matrix over the
    // rows is S_{n-1}.
    let n = symmetric.num_cores();
    let [d, i, j, _] = symmetric.shape().core_shape(n - 1);
    let last = symmetric.core(n - 1);
    for p in 0..d {
        let dot: f64 = (0..i * j).map(|c| (last[p * i * j + c] as f64).powi(2)).sum();
        assert!((dot - spectra[n - 2][p]).abs() < 1e-4 * spectra[n - 2][0], "row {p}");
    }
    assert!(relative_error(&symmetric.to_dense(), &w) < 1e-5);
}

#[test]
fn bond_spectra_match_unfolding() {
    // Bond 1 of a 2-core MPO is the plain matrix split (i_0 j_0, i_1 j_1),
    // whose squared singular values sum to ||W||_F^2.
    let w = gaussian(6, 10, 2);
    let (mpo, _) = Mpo::decompose(&w, 6, 10, &[2, 3], &[2, 5], &Truncation::none()).unwrap();
    let spectra = mpo.bond_spectra().unwrap();
    assert_eq!(spectra.len(), 1);
    assert_eq!(spectra[0].len(), 4);
    let weight: f64 = spectra[0].iter().map(|s| s * s).sum();
    let norm = common::frobenius_norm(&w);
    assert!((weight.sqrt() - norm).abs() < 1e-5 * norm);
}
