//! Truncation: the reported error against the measured one, the bound from
//! the untruncated spectra, monotonicity, and re-compression.

mod common;

use common::{decaying, frobenius_distance, gaussian, relative_error};
use tensornet::{Mpo, MpoShape, Truncation};

const ROWS: [usize; 5] = [2, 3, 5, 5, 2];
const COLS: [usize; 5] = [3, 4, 4, 4, 4];

fn sum_of_squares(values: &[f64]) -> f64 {
    values.iter().map(|x| x * x).sum()
}

#[test]
fn sweep_error_equals_reported() {
    // Each SVD of the sweep factorizes the remainder of the earlier
    // truncations, with orthonormal cores on its left, so ||W - W'||^2 = sum_k eps_k^2.
    let w = decaying(300, 768, 1);
    for max_bond in [4, 16, 48] {
        let (mpo, report) = Mpo::decompose(&w, 300, 768, &ROWS, &COLS, &Truncation::max_bond(max_bond)).unwrap();
        let measured = frobenius_distance(&mpo.to_dense(), &w);
        let reported = report.error();
        assert!(reported > 0.0, "max_bond {max_bond}: nothing was truncated");
        assert!((measured - reported).abs() <= 1e-4 * reported + 1e-5 * report.norm, "max_bond {max_bond}: {measured} vs {reported}");
    }
}

#[test]
fn untruncated_spectra_bound_error() {
    // Oseledets' TT-SVD bound: the sweep error is at most sqrt(sum_k eps_k^2)
    // with eps_k the best rank-r_k error of the k-th unfolding of W.
    let w = gaussian(300, 384, 2);
    let (rows, cols) = ([2, 3, 5, 5, 2], [2, 4, 4, 4, 3]);
    let (exact, _) = Mpo::decompose(&w, 300, 384, &rows, &cols, &Truncation::none()).unwrap();
    let spectra = exact.bond_spectra().unwrap();
    for max_bond in [3, 10, 40] {
        let (mpo, report) = Mpo::decompose(&w, 300, 384, &rows, &cols, &Truncation::max_bond(max_bond)).unwrap();
        let bound_weight: f64 = spectra
            .iter()
            .zip(&report.bond_dims[1..])
            .map(|(s, &kept)| sum_of_squares(&s[kept.min(s.len())..]))
            .sum();
        let bound = bound_weight.sqrt();
        let measured = frobenius_distance(&mpo.to_dense(), &w);
        assert!(measured <= bound * (1.0 + 1e-4), "max_bond {max_bond}: error {measured} above bound {bound}");
        assert!(report.error() <= bound * (1.0 + 1e-6), "max_bond {max_bond}: reported {} above bound {bound}", report.error());
    }
}

#[test]
fn error_falls_as_bond_grows() {
    let w = decaying(300, 768, 3);
    let mut previous = f64::INFINITY;
    for max_bond in [1, 2, 4, 8, 16, 32, 64, 128, 160] {
        let (mpo, _) = Mpo::decompose(&w, 300, 768, &ROWS, &COLS, &Truncation::max_bond(max_bond)).unwrap();
        let error = relative_error(&mpo.to_dense(), &w);
        assert!(error < previous, "max_bond {max_bond}: error {error} not below {previous}");
        previous = error;
    }
    // 160 is the largest full bond (bond 3), so the last step is exact.
    assert!(previous <= 1e-5);
}

#[test]
fn max_bond_above_full_reported() {
    let w = gaussian(300, 768, 4);
    let (mpo, report) = Mpo::decompose(&w, 300, 768, &ROWS, &COLS, &Truncation::max_bond(100)).unwrap();
    // Full bonds 6, 72, 160, 8: only bond 3 is capped at 100.
    assert_eq!(mpo.shape().bond_dims(), &[1, 6, 72, 100, 8, 1]);
    assert_eq!(report.max_bond_above_full, vec![1, 2, 4]);
    assert_eq!(report.discarded_weight[0], 0.0);
    assert_eq!(report.discarded_weight[1], 0.0);
    assert!(report.discarded_weight[2] > 0.0);
}

/// Returns the dense matrix of a random MPO with bond dimension `bond`, plus
/// N(0, noise^2) entries: its bond spectra have `bond` large values and a
/// tail at the noise level.
fn low_bond_matrix(rows: &[usize], cols: &[usize], bond: usize, noise: f32, seed: u64) -> Vec<f32> {
    let n = rows.len();
    let mut bonds = vec![bond; n + 1];
    bonds[0] = 1;
    bonds[n] = 1;
    let shape = MpoShape::new(rows.to_vec(), cols.to_vec(), bonds).unwrap();
    let cores = shape.params_per_core().iter().enumerate().map(|(k, &len)| gaussian(1, len, seed + k as u64)).collect();
    let mut w = Mpo::from_cores(shape, cores).unwrap().to_dense();
    let perturbation = gaussian(1, w.len(), seed + 100);
    w.iter_mut().zip(&perturbation).for_each(|(x, e)| *x += noise * e);
    w
}

#[test]
fn cutoff_drops_small_values() {
    // Bond 3 exactly, no noise: the other singular values are at rounding
    // level, which a relative cutoff of 1e-5 drops.
    let w = low_bond_matrix(&[4, 3, 4], &[4, 4, 4], 3, 0.0, 5);
    let truncation = Truncation { cutoff: Some(1e-5), ..Truncation::none() };
    let (mpo, report) = Mpo::decompose(&w, 48, 64, &[4, 3, 4], &[4, 4, 4], &truncation).unwrap();
    assert_eq!(mpo.shape().bond_dims(), &[1, 3, 3, 1]);
    assert!(report.relative_error() < 1e-5);
    assert!(relative_error(&mpo.to_dense(), &w) < 1e-5);
}

#[test]
fn discarded_weight_budget_respected() {
    // Bond 4 plus noise of 1e-3 per entry: the noise tail of each bond weighs
    // about 1e-6 * (entries), far below the budget of 1, and the bond-4
    // signal far above it.
    let (rows, cols) = ([2, 3, 5, 5, 2], [2, 4, 4, 4, 3]);
    let w = low_bond_matrix(&rows, &cols, 4, 1e-3, 7);
    let budget = 1.0;
    let truncation = Truncation { max_discarded_weight: Some(budget), ..Truncation::none() };
    let (mpo, report) = Mpo::decompose(&w, 300, 384, &rows, &cols, &truncation).unwrap();
    for (bond, &weight) in report.discarded_weight.iter().enumerate() {
        assert!(weight <= budget, "bond {}: discarded {weight}", bond + 1);
    }
    assert_eq!(mpo.shape().bond_dims(), &[1, 4, 4, 4, 4, 1]);
    let measured = frobenius_distance(&mpo.to_dense(), &w);
    assert!((measured - report.error()).abs() <= 1e-4 * report.error() + 1e-5 * report.norm);
}

#[test]
fn invalid_truncation_options() {
    let w = gaussian(4, 4, 11);
    let cases = [
        (Truncation::max_bond(0), "invalid truncation option max_bond = 0: must be at least 1"),
        (Truncation { cutoff: Some(1.5), ..Truncation::none() }, "invalid truncation option cutoff = 1.5: must be in [0, 1]"),
        (
            Truncation { max_discarded_weight: Some(f64::NAN), ..Truncation::none() },
            "invalid truncation option max_discarded_weight = NaN: must be finite and at least 0",
        ),
    ];
    for (truncation, message) in cases {
        let err = Mpo::decompose(&w, 4, 4, &[2, 2], &[2, 2], &truncation).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn recompression_error_equals_reported() {
    // Re-compressing an exact MPO (in right-canonical form, then a truncated
    // left-to-right sweep) reaches the same optimum bond by bond, so its
    // error is again sqrt(sum eps_k^2).
    let w = decaying(300, 768, 8);
    let (exact, _) = Mpo::decompose(&w, 300, 768, &ROWS, &COLS, &Truncation::none()).unwrap();
    // Scramble the gauge so that the input is not already canonical.
    let scrambled = exact.symmetric_canonical().unwrap();
    let (small, report) = scrambled.truncate(&Truncation::max_bond(12)).unwrap();
    assert_eq!(small.shape().bond_dims(), &[1, 6, 12, 12, 8, 1]);
    let measured = frobenius_distance(&small.to_dense(), &w);
    assert!((measured - report.error()).abs() <= 1e-4 * report.error() + 1e-5 * report.norm);

    let (direct, direct_report) = Mpo::decompose(&w, 300, 768, &ROWS, &COLS, &Truncation::max_bond(12)).unwrap();
    assert_eq!(direct.shape().bond_dims(), small.shape().bond_dims());
    assert!((direct_report.error() - report.error()).abs() <= 1e-3 * report.error());
}

#[test]
fn recompression_without_truncation_is_exact() {
    let w = gaussian(256, 300, 9);
    let (exact, _) = Mpo::decompose(&w, 256, 300, &[2, 4, 8, 4, 1], &[3, 4, 5, 5, 1], &Truncation::none()).unwrap();
    let (again, report) = exact.truncate(&Truncation::none()).unwrap();
    assert_eq!(again.shape().bond_dims(), exact.shape().bond_dims());
    assert_eq!(report.error(), 0.0);
    assert!(relative_error(&again.to_dense(), &w) <= 1e-5);
}

#[test]
fn recompression_after_identity_insertion() {
    // Identity cores carry no new information: re-compression with a large
    // max_bond keeps the matrix and reports nothing discarded.
    let w = gaussian(48, 48, 10);
    let (mut mpo, _) = Mpo::decompose(&w, 48, 48, &[2, 4, 6], &[6, 4, 2], &Truncation::none()).unwrap();
    mpo.insert_identity(1, 2).unwrap();
    let (again, report) = mpo.truncate(&Truncation::max_bond(1000)).unwrap();
    assert!(report.error() <= 1e-5 * report.norm);
    assert!(relative_error(&again.to_dense(), &w) <= 1e-5);
}
