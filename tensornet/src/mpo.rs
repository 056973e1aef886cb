//! The [`Mpo`] type: cores, dense contraction, chain application and
//! identity-core insertion.

use crate::contract::{chain_apply, contract_dense};
use crate::error::{check_finite, Error, Result};
use crate::shape::MpoShape;
use autograd::{ParamId, ParamStore, Tensor};

/// A matrix product operator: a chain of cores whose contraction is an
/// `[out, in]` matrix.
///
/// Core `k` is a row-major `f32` tensor of shape `[d_k, i_k, j_k, d_{k+1}]`
/// (see [`MpoShape`]). Matrix element `W[I, J]`, with the row index
/// `I = (i_0, ..., i_{n-1})` and the column index `J = (j_0, ..., j_{n-1})`
/// both row-major, is the product of the matrices `T_k[:, i_k, j_k, :]`.
///
/// ```
/// use tensornet::{Mpo, Truncation};
/// // A 12x6 matrix with entries 0, 1, 2, ...
/// let w: Vec<f32> = (0..72).map(|x| x as f32).collect();
/// let (mpo, report) = Mpo::decompose(&w, 12, 6, &[3, 4], &[2, 3], &Truncation::none()).unwrap();
/// assert_eq!(mpo.shape().bond_dims(), &[1, 6, 1]);
/// assert_eq!(report.discarded_weight, vec![0.0]);
/// let back = mpo.to_dense();
/// assert!(back.iter().zip(&w).all(|(a, b)| (a - b).abs() < 1e-3));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Mpo {
    pub(crate) shape: MpoShape,
    pub(crate) cores: Vec<Vec<f32>>,
}

impl Mpo {
    /// Wraps cores with the given index structure.
    ///
    /// # Errors
    /// [`Error::Length`] when a core's length differs from the product of
    /// [`MpoShape::core_shape`], [`Error::CoreShape`] when the number of cores
    /// differs from the number of factors.
    pub fn from_cores(shape: MpoShape, cores: Vec<Vec<f32>>) -> Result<Self> {
        if cores.len() != shape.num_cores() {
            return Err(Error::CoreShape {
                index: cores.len(),
                shape: vec![],
                reason: format!("got {} cores for {} factor pairs", cores.len(), shape.num_cores()),
            });
        }
        for (k, core) in cores.iter().enumerate() {
            let expected = shape.core_shape(k);
            let len: usize = expected.iter().product();
            if core.len() != len {
                return Err(Error::Length { what: format!("core {k}"), shape: expected.to_vec(), expected: len, len: core.len() });
            }
        }
        Ok(Mpo { shape, cores })
    }

    /// Builds an MPO from 4-D core tensors `[d_k, i_k, j_k, d_{k+1}]`.
    ///
    /// # Errors
    /// [`Error::CoreShape`] when a tensor is not 4-D, the bonds of two
    /// neighbours differ, or a boundary bond is not 1.
    pub fn from_tensors(cores: &[Tensor]) -> Result<Self> {
        let mut rows = Vec::with_capacity(cores.len());
        let mut cols = Vec::with_capacity(cores.len());
        let mut bonds = vec![1];
        for (k, core) in cores.iter().enumerate() {
            let s = core.shape();
            if s.len() != 4 {
                return Err(Error::CoreShape { index: k, shape: s.to_vec(), reason: "a core must be 4-D [d_left, i, j, d_right]".into() });
            }
            if s[0] != bonds[k] {
                return Err(Error::CoreShape {
                    index: k,
                    shape: s.to_vec(),
                    reason: format!("its left bond {} differs from the right bond {} of the core before", s[0], bonds[k]),
                });
            }
            rows.push(s[1]);
            cols.push(s[2]);
            bonds.push(s[3]);
        }
        if cores.is_empty() {
            return Err(Error::CoreShape { index: 0, shape: vec![], reason: "an MPO needs at least one core".into() });
        }
        let shape = MpoShape::new(rows, cols, bonds)?;
        Mpo::from_cores(shape, cores.iter().map(|t| t.data().to_vec()).collect())
    }

    /// Returns the factor lists and bond dimensions.
    pub fn shape(&self) -> &MpoShape {
        &self.shape
    }

    /// Number of cores.
    pub fn num_cores(&self) -> usize {
        self.cores.len()
    }

    /// Core `k`, row-major `[d_k, i_k, j_k, d_{k+1}]`.
    ///
    /// # Panics
    /// Panics if `k` is out of range.
    #[track_caller]
    pub fn core(&self, k: usize) -> &[f32] {
        &self.cores[k]
    }

    /// Core `k`, writable; its shape stays fixed.
    ///
    /// # Panics
    /// Panics if `k` is out of range.
    #[track_caller]
    pub fn core_mut(&mut self, k: usize) -> &mut [f32] {
        &mut self.cores[k]
    }

    /// Returns all cores in chain order.
    pub fn cores(&self) -> &[Vec<f32>] {
        &self.cores
    }

    /// Copies the cores into 4-D tensors.
    pub fn to_tensors(&self) -> Vec<Tensor> {
        (0..self.num_cores())
            .map(|k| Tensor::new(self.shape.core_shape(k).to_vec(), self.cores[k].clone()).expect("core lengths match their shapes"))
            .collect()
    }

    pub(crate) fn core_refs(&self) -> Vec<&[f32]> {
        self.cores.iter().map(|c| c.as_slice()).collect()
    }

    /// Checks that every core element is finite.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the core and the first bad element.
    pub fn check_finite(&self) -> Result<()> {
        for (k, core) in self.cores.iter().enumerate() {
            check_finite(|| format!("core {k}"), core)?;
        }
        Ok(())
    }

    /// Contracts the cores into the dense row-major `[out, in]` matrix.
    ///
    /// The cores left of the largest bond are contracted left to right and
    /// those right of it right to left, and one GEMM joins the halves. Each
    /// step is a GEMM split over rayon threads and a parallel axis reorder.
    /// [`MpoShape::contraction_multiply_adds`] counts the multiply-adds.
    pub fn to_dense(&self) -> Vec<f32> {
        contract_dense(&self.shape, &self.core_refs())
    }

    /// Computes `y = x W^T` for a row-major batch `x` of `[batch, in]`
    /// without forming `W`, by applying the cores one after another.
    ///
    /// Use [`crate::choose_apply`] to see whether this or the dense product
    /// costs fewer multiply-adds for a batch size.
    ///
    /// ```
    /// use tensornet::{Mpo, Truncation};
    /// let w: Vec<f32> = (0..24).map(|x| x as f32 / 10.0).collect();
    /// let (mpo, _) = Mpo::decompose(&w, 4, 6, &[2, 2], &[3, 2], &Truncation::none()).unwrap();
    /// let x = [1.0, 0.0, 0.0, 0.0, 0.0, 2.0];
    /// let y = mpo.apply(&x).unwrap();
    /// // Row r of W dotted with x is W[r, 0] + 2 W[r, 5].
    /// for r in 0..4 {
    ///     assert!((y[r] - (w[r * 6] + 2.0 * w[r * 6 + 5])).abs() < 1e-4);
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::InputShape`] when `x.len()` is not a multiple of the input
    /// dimension.
    pub fn apply(&self, x: &[f32]) -> Result<Vec<f32>> {
        let in_dim = self.shape.in_dim();
        if x.len() % in_dim != 0 {
            return Err(Error::InputShape { op: "Mpo::apply", input: vec![x.len()], expected: in_dim });
        }
        let batch = x.len() / in_dim;
        Ok(chain_apply(&self.shape, &self.core_refs(), x, batch, false).0)
    }

    /// Inserts `count` identity cores of shape `[d, 1, 1, d]` on bond `bond`,
    /// where `d` is that bond's dimension. Bond `k` joins core `k - 1` and
    /// core `k`; bonds 0 and `n` are the boundary bonds of dimension 1.
    ///
    /// The matrix is unchanged and each inserted core adds `d^2` parameters.
    /// The inserted cores take the indices `bond .. bond + count`.
    ///
    /// ```
    /// use tensornet::{Mpo, MpoShape};
    /// let shape = MpoShape::full(&[3, 4, 4, 4, 4], &[4, 4, 4, 4, 3]).unwrap();
    /// let mut mpo = Mpo::zeros(shape);
    /// mpo.insert_identity(2, 2).unwrap(); // bond 2 has dimension 192
    /// assert_eq!(mpo.shape().num_params(), 663_840 + 2 * 192 * 192);
    /// assert_eq!(mpo.shape().central_cores(), vec![4]);
    /// ```
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] when `bond > n`.
    pub fn insert_identity(&mut self, bond: usize, count: usize) -> Result<()> {
        let n = self.num_cores();
        if bond > n {
            return Err(Error::IndexOutOfRange { what: "bond", index: bond, len: format!("{} bonds, 0..={n}", n + 1) });
        }
        let d = self.shape.bond_dims()[bond];
        let mut identity = vec![0.0f32; d * d];
        for a in 0..d {
            identity[a * d + a] = 1.0;
        }
        for _ in 0..count {
            self.cores.insert(bond, identity.clone());
        }
        self.shape.insert_identity_sites(bond, count);
        Ok(())
    }

    /// Creates an MPO of the given shape whose cores are all zeros.
    pub fn zeros(shape: MpoShape) -> Self {
        let cores = shape.params_per_core().into_iter().map(|len| vec![0.0; len]).collect();
        Mpo { shape, cores }
    }

    /// Adds the cores to `store` as trainable parameters named
    /// `{prefix}.core{k}` and returns their ids in chain order.
    ///
    /// # Panics
    /// Panics if one of the names is already taken, as [`ParamStore::add`] does.
    #[track_caller]
    pub fn add_to_store(&self, store: &mut ParamStore, prefix: &str) -> Vec<ParamId> {
        self.to_tensors().into_iter().enumerate().map(|(k, t)| store.add(format!("{prefix}.core{k}"), t)).collect()
    }

    /// Reads the cores back from `store`, for example after training.
    ///
    /// # Errors
    /// As [`Mpo::from_tensors`].
    pub fn from_store(store: &ParamStore, ids: &[ParamId]) -> Result<Self> {
        let tensors: Vec<Tensor> = ids.iter().map(|&id| store.value(id).clone()).collect();
        Mpo::from_tensors(&tensors)
    }
}
