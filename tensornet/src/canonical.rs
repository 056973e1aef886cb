//! Canonical forms of an MPO and the singular values of its bonds.
//!
//! Canonical forms change the cores but not the matrix. They are computed in
//! `f64` and rounded to `f32` at the end.

use crate::error::{Error, Result};
use crate::linalg::{matmul, scale_cols, scale_rows, thin_lq, thin_qr, thin_svd, SvdMethod, View};
use crate::mpo::Mpo;
use crate::shape::MpoShape;

/// An MPO with `f64` cores, for the sweeps of this module and re-compression.
pub(crate) struct Chain {
    pub rows: Vec<usize>,
    pub cols: Vec<usize>,
    pub bonds: Vec<usize>,
    pub cores: Vec<Vec<f64>>,
}

impl Chain {
    fn from_mpo(mpo: &Mpo) -> Self {
        Chain {
            rows: mpo.shape.rows().to_vec(),
            cols: mpo.shape.cols().to_vec(),
            bonds: mpo.shape.bond_dims().to_vec(),
            cores: mpo.cores.iter().map(|c| c.iter().map(|&x| x as f64).collect()).collect(),
        }
    }

    /// Rows of core `k` unfolded as `[d_k i_k j_k, d_{k+1}]`.
    pub fn left_rows(&self, k: usize) -> usize {
        self.bonds[k] * self.rows[k] * self.cols[k]
    }

    /// Makes core `k` left-orthonormal with a QR and moves `R` into core `k + 1`.
    fn orthogonalize_left(&mut self, k: usize) {
        let (m, d2) = (self.left_rows(k), self.bonds[k + 1]);
        let (q, r) = thin_qr(&self.cores[k], m, d2);
        let keep = m.min(d2);
        let next_cols = self.cores[k + 1].len() / d2;
        self.cores[k + 1] = matmul(View::new(&r, keep, d2), View::new(&self.cores[k + 1], d2, next_cols));
        self.cores[k] = q;
        self.bonds[k + 1] = keep;
    }

    /// Makes core `k` right-orthonormal with an LQ and moves `L` into core `k - 1`.
    fn orthogonalize_right(&mut self, k: usize) {
        let d = self.bonds[k];
        let width = self.cores[k].len() / d;
        let (l, q) = thin_lq(&self.cores[k], d, width);
        let keep = d.min(width);
        let prev_rows = self.cores[k - 1].len() / d;
        self.cores[k - 1] = matmul(View::new(&self.cores[k - 1], prev_rows, d), View::new(&l, d, keep));
        self.cores[k] = q;
        self.bonds[k] = keep;
    }

    fn into_mpo(self) -> Mpo {
        let shape = MpoShape::new(self.rows, self.cols, self.bonds).expect("sweeps keep a valid shape");
        let cores = self.cores.iter().map(|c| c.iter().map(|&x| x as f32).collect()).collect();
        Mpo { shape, cores }
    }
}

impl Mpo {
    /// Returns the left-canonical form: every core but the last is
    /// left-orthonormal, that is `[d_k i_k j_k, d_{k+1}]` has orthonormal
    /// columns, and the last core carries the norm.
    ///
    /// A bond larger than its rank bound `min(d_k i_k j_k, d_{k+1})` shrinks
    /// to it; the matrix is unchanged up to rounding.
    pub fn left_canonical(&self) -> Mpo {
        self.mixed_canonical_unchecked(self.num_cores() - 1)
    }

    /// Returns the right-canonical form: every core but the first is
    /// right-orthonormal, that is `[d_k, i_k j_k d_{k+1}]` has orthonormal
    /// rows, and the first core carries the norm.
    pub fn right_canonical(&self) -> Mpo {
        self.mixed_canonical_unchecked(0)
    }

    /// Returns the mixed-canonical form with centre `center`: cores before it
    /// left-orthonormal, cores after it right-orthonormal. The centre core
    /// then carries the norm: its Frobenius norm equals the matrix's.
    ///
    /// ```
    /// use tensornet::{Mpo, Truncation};
    /// let w: Vec<f32> = (0..64).map(|x| ((x * 7) % 11) as f32).collect();
    /// let (mpo, report) = Mpo::decompose(&w, 8, 8, &[2, 2, 2], &[2, 2, 2], &Truncation::none()).unwrap();
    /// let mixed = mpo.mixed_canonical(1).unwrap();
    /// let centre_norm: f64 = mixed.core(1).iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    /// assert!((centre_norm - report.norm).abs() < 1e-4 * report.norm);
    /// ```
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] when `center >= n`.
    pub fn mixed_canonical(&self, center: usize) -> Result<Mpo> {
        let n = self.num_cores();
        if center >= n {
            return Err(Error::IndexOutOfRange { what: "core", index: center, len: format!("{n} cores, 0..{n}") });
        }
        Ok(self.mixed_canonical_unchecked(center))
    }

    fn mixed_canonical_unchecked(&self, center: usize) -> Mpo {
        let mut chain = Chain::from_mpo(self);
        for k in 0..center {
            chain.orthogonalize_left(k);
        }
        for k in (center + 1..chain.cores.len()).rev() {
            chain.orthogonalize_right(k);
        }
        chain.into_mpo()
    }

    /// Returns the right-canonical form in `f64`, for re-compression.
    pub(crate) fn right_canonical_chain(&self) -> Chain {
        let mut chain = Chain::from_mpo(self);
        for k in (1..chain.cores.len()).rev() {
            chain.orthogonalize_right(k);
        }
        chain
    }

    /// Returns the singular values of every internal bond `1 ..= n - 1`,
    /// descending: the singular values of the matrix unfolded at that bond,
    /// as `(i_0 j_0 .. i_{k-1} j_{k-1}, i_k j_k .. i_{n-1} j_{n-1})`.
    ///
    /// They are read off a right-to-left orthogonalization followed by a
    /// left-to-right sweep of untruncated SVDs. The discarded weight of
    /// keeping `r` of them is the sum of the squares of the rest, and the
    /// square root of that sum over all bonds bounds the error of the
    /// truncated sweep of [`Mpo::decompose`] from above.
    ///
    /// # Errors
    /// [`Error::SvdFailed`] when an SVD does not converge.
    pub fn bond_spectra(&self) -> Result<Vec<Vec<f64>>> {
        Ok(self.split_sweep()?.1)
    }

    /// Returns the symmetric form: the singular values `S_k` of every bond
    /// split evenly between its two cores, `T_k = S_k^(1/2) G_k S_{k+1}^(1/2)`
    /// where `G_k` are the cores of the Vidal canonical form.
    ///
    /// Each core is computed as `S_k^(-1/2) U_k S_{k+1}^(1/2)` from the
    /// left-orthonormal `U_k` of the sweep. Singular values at rounding level
    /// (below `s_max * 1e-15 * max dimension`) get a zero inverse, which
    /// removes only directions that carry no weight.
    ///
    /// # Errors
    /// [`Error::SvdFailed`] when an SVD does not converge.
    pub fn symmetric_canonical(&self) -> Result<Mpo> {
        Ok(self.split_sweep()?.0)
    }

    /// Sweeps left to right with untruncated SVDs over the right-canonical
    /// form, for [`Mpo::bond_spectra`] and [`Mpo::symmetric_canonical`].
    fn split_sweep(&self) -> Result<(Mpo, Vec<Vec<f64>>)> {
        let mut chain = self.right_canonical_chain();
        let n = chain.cores.len();
        let mut spectra = Vec::with_capacity(n - 1);
        let mut inverse_root_prev = vec![1.0f64];
        for k in 0..n - 1 {
            let (m, d2) = (chain.left_rows(k), chain.bonds[k + 1]);
            let svd = thin_svd(&chain.cores[k], m, d2, SvdMethod::Auto)?;
            let keep = svd.k();

            let mut core = svd.u.clone();
            let block = m / chain.bonds[k];
            scale_rows_by_block(&mut core, keep, block, &inverse_root_prev);
            let root: Vec<f64> = svd.s.iter().map(|x| x.sqrt()).collect();
            scale_cols(&mut core, keep, &root);

            let next_cols = chain.cores[k + 1].len() / d2;
            chain.cores[k + 1] = matmul(View::new(&svd.svt, keep, d2), View::new(&chain.cores[k + 1], d2, next_cols));
            chain.cores[k] = core;
            chain.bonds[k + 1] = keep;

            let floor = svd.s.first().copied().unwrap_or(0.0) * f64::EPSILON * (m.max(d2) as f64);
            inverse_root_prev = svd.s.iter().map(|&x| if x > floor { 1.0 / x.sqrt() } else { 0.0 }).collect();
            spectra.push(svd.s);
        }
        let last_block = chain.cores[n - 1].len() / chain.bonds[n - 1];
        scale_rows_by_block(&mut chain.cores[n - 1], last_block, 1, &inverse_root_prev);
        Ok((chain.into_mpo(), spectra))
    }
}

/// Scales a row-major `[d, block, cols]` buffer: slice `a` gets `factors[a]`.
fn scale_rows_by_block(data: &mut [f64], cols: usize, block: usize, factors: &[f64]) {
    let per_bond = vec![(); block];
    let expanded: Vec<f64> = factors.iter().flat_map(|&f| per_bond.iter().map(move |_| f)).collect();
    scale_rows(data, cols, &expanded);
}
