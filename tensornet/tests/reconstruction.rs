//! Exact decomposition: bond dimensions, parameter counts and reconstruction
//! error without truncation.

mod common;

use common::{gaussian, relative_error};
use tensornet::{auto_factor_pair, Mpo, Truncation};

/// Relative Frobenius error allowed for an untruncated MPO: the sweep runs in
/// `f64` and only the `f32` rounding of the cores and of the contraction
/// remains, about 1e-7 per step.
const EXACT_TOLERANCE: f64 = 1e-5;

#[test]
fn decompose_768x768_literature_bonds() {
    let w = gaussian(768, 768, 1);
    let (mpo, report) = Mpo::decompose(&w, 768, 768, &[3, 4, 4, 4, 4], &[4, 4, 4, 4, 3], &Truncation::none()).unwrap();

    // d_k = min(prod_{m<=k} i_m j_m, prod_{m>k} i_m j_m) with i_k j_k = 12, 16, 16, 16, 12.
    assert_eq!(mpo.shape().bond_dims(), &[1, 12, 192, 192, 12, 1]);
    assert_eq!(report.full_bond_dims, vec![1, 12, 192, 192, 12, 1]);
    // 12*12 + 12*16*192 + 192*16*192 + 192*16*12 + 12*12.
    assert_eq!(mpo.shape().num_params(), 663_840);
    // Without truncation the central core has I*J = 589,824 parameters.
    assert_eq!(mpo.shape().central_cores(), vec![2]);
    assert_eq!(mpo.shape().params_per_core()[2], 589_824);
    assert!(relative_error(&mpo.to_dense(), &w) <= EXACT_TOLERANCE);
}

#[test]
fn decompose_3072x768_literature_bonds() {
    let w = gaussian(3072, 768, 2);
    let (mpo, _) = Mpo::decompose(&w, 3072, 768, &[4, 4, 8, 6, 4], &[3, 4, 4, 4, 4], &Truncation::none()).unwrap();

    // i_k j_k = 12, 16, 32, 24, 16: prefixes 12, 192, 6144; suffixes 384, 16.
    assert_eq!(mpo.shape().bond_dims(), &[1, 12, 192, 384, 16, 1]);
    assert_eq!(mpo.shape().num_params(), 2_544_016);
    assert!(relative_error(&mpo.to_dense(), &w) <= EXACT_TOLERANCE);
}

#[test]
fn decompose_300x768_paper_lists() {
    // Rows [2,3,5,5,2] and columns [3,4,4,4,4] give 261,284 parameters per
    // MoE expert: 36 + 5,184 + 230,400 + 25,600 + 64. Eight experts have
    // 2,090,272, and 247,072 without their central cores.
    let w = gaussian(300, 768, 3);
    let (mpo, _) = Mpo::decompose(&w, 300, 768, &[2, 3, 5, 5, 2], &[3, 4, 4, 4, 4], &Truncation::none()).unwrap();
    assert_eq!(mpo.shape().bond_dims(), &[1, 6, 72, 160, 8, 1]);
    assert_eq!(8 * mpo.shape().num_params(), 2_090_272);
    assert_eq!(8 * (mpo.shape().num_params() - mpo.shape().params_per_core()[2]), 247_072);
    assert!(relative_error(&mpo.to_dense(), &w) <= EXACT_TOLERANCE);
}

/// Weight shapes `[out, in]` of the UniSRec model: attention (300x300),
/// feed-forward (256x300, 300x256), MoE experts for 384-d and 768-d text
/// (300x384, 300x768), the gates (8x384, 8x768) and the position table (50x300).
const MODEL_SHAPES: [(usize, usize); 8] =
    [(300, 300), (256, 300), (300, 256), (300, 384), (300, 768), (8, 384), (8, 768), (50, 300)];

#[test]
fn reconstruct_model_shapes_all_core_counts() {
    for (seed, &(out_dim, in_dim)) in MODEL_SHAPES.iter().enumerate() {
        let w = gaussian(out_dim, in_dim, 10 + seed as u64);
        for n in [3, 5, 7, 9] {
            let (rows, cols) = auto_factor_pair(out_dim, in_dim, n).unwrap();
            let (mpo, report) = Mpo::decompose(&w, out_dim, in_dim, &rows, &cols, &Truncation::none()).unwrap();
            let error = relative_error(&mpo.to_dense(), &w);
            assert!(error <= EXACT_TOLERANCE, "{out_dim}x{in_dim}, n = {n}: relative error {error:e}");
            assert_eq!(mpo.shape().bond_dims(), &report.full_bond_dims[..], "{out_dim}x{in_dim}, n = {n}");
            assert_eq!(report.error(), 0.0, "{out_dim}x{in_dim}, n = {n}");
        }
    }
}

#[test]
fn reconstruct_literature_shapes_all_core_counts() {
    for (out_dim, in_dim) in [(768, 768), (3072, 768)] {
        let w = gaussian(out_dim, in_dim, 20);
        for n in [3, 7, 9] {
            let (rows, cols) = auto_factor_pair(out_dim, in_dim, n).unwrap();
            let (mpo, _) = Mpo::decompose(&w, out_dim, in_dim, &rows, &cols, &Truncation::none()).unwrap();
            let error = relative_error(&mpo.to_dense(), &w);
            assert!(error <= EXACT_TOLERANCE, "{out_dim}x{in_dim}, n = {n}: relative error {error:e}");
        }
    }
}

#[test]
fn decompose_pads_shorter_list() {
    // Rows [4, 6] against three column factors: padded to [4, 6, 1].
    let w = gaussian(24, 30, 4);
    let (mpo, _) = Mpo::decompose(&w, 24, 30, &[4, 6], &[2, 3, 5], &Truncation::none()).unwrap();
    assert_eq!(mpo.shape().rows(), &[4, 6, 1]);
    assert!(relative_error(&mpo.to_dense(), &w) <= EXACT_TOLERANCE);
}

#[test]
fn decompose_prime_dimension() {
    // 101 is prime: auto_factors gives [1, 101, 1], a valid if unbalanced split.
    let w = gaussian(101, 12, 5);
    let (rows, cols) = auto_factor_pair(101, 12, 3).unwrap();
    assert_eq!(rows, vec![1, 101, 1]);
    let (mpo, _) = Mpo::decompose(&w, 101, 12, &rows, &cols, &Truncation::none()).unwrap();
    assert!(relative_error(&mpo.to_dense(), &w) <= EXACT_TOLERANCE);
}

#[test]
fn decompose_zero_matrix() {
    let w = vec![0.0f32; 12 * 8];
    let (mpo, report) = Mpo::decompose(&w, 12, 8, &[3, 4], &[2, 4], &Truncation::none()).unwrap();
    assert!(mpo.to_dense().iter().all(|&x| x == 0.0));
    assert_eq!(report.relative_error(), 0.0);
}

#[test]
fn identity_insertion_keeps_matrix() {
    let w = gaussian(768, 768, 6);
    let (mut mpo, _) = Mpo::decompose(&w, 768, 768, &[3, 4, 4, 4, 4], &[4, 4, 4, 4, 3], &Truncation::none()).unwrap();
    let before = mpo.to_dense();

    mpo.insert_identity(2, 2).unwrap();

    // Two cores of 192 x 192 added to 663,840.
    assert_eq!(mpo.shape().num_params(), 737_568);
    assert_eq!(mpo.shape().bond_dims(), &[1, 12, 192, 192, 192, 192, 12, 1]);
    assert_eq!(mpo.shape().params_per_core()[2..4], [36_864, 36_864]);
    assert_eq!(mpo.shape().central_cores(), vec![4]);
    assert_eq!(mpo.to_dense(), before);
}

#[test]
fn identity_insertion_rejects_bad_bond() {
    let w = gaussian(4, 4, 7);
    let (mut mpo, _) = Mpo::decompose(&w, 4, 4, &[2, 2], &[2, 2], &Truncation::none()).unwrap();
    let err = mpo.insert_identity(3, 1).unwrap_err();
    assert_eq!(err.to_string(), "bond 3 is out of range: the MPO has 3 bonds, 0..=2");
}
