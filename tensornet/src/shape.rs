//! Index structure of an MPO: factor lists, bond dimensions, parameter counts.

use crate::error::{Axis, Error, Result};
use serde::{Deserialize, Serialize};

/// Returns the full bond dimensions `d_0, ..., d_n` for the factor lists,
/// with the boundary 1s included:
/// `d_k = min(prod_{m<=k} i_m j_m, prod_{m>k} i_m j_m)`.
///
/// No exact MPO of a generic matrix needs a larger bond, because `d_k` is the
/// rank bound of the matrix unfolded at bond `k`.
///
/// ```
/// let bonds = tensornet::full_bond_dims(&[3, 4, 4, 4, 4], &[4, 4, 4, 4, 3]);
/// assert_eq!(bonds, vec![1, 12, 192, 192, 12, 1]);
/// ```
///
/// # Panics
/// Panics if the lists differ in length.
#[track_caller]
pub fn full_bond_dims(rows: &[usize], cols: &[usize]) -> Vec<usize> {
    assert_eq!(rows.len(), cols.len(), "full_bond_dims: row and column lists differ in length");
    let physical: Vec<usize> = rows.iter().zip(cols).map(|(i, j)| i * j).collect();
    let n = physical.len();
    let mut bonds = vec![1usize; n + 1];
    for k in 1..n {
        let left: usize = physical[..k].iter().product();
        let right: usize = physical[k..].iter().product();
        bonds[k] = left.min(right);
    }
    bonds
}

/// The index structure of an MPO with `n` cores: row factors `i_k`, column
/// factors `j_k` and bond dimensions `d_0 = 1, d_1, ..., d_n = 1`.
///
/// Core `k` (counted from 0) has shape `[d_k, i_k, j_k, d_{k+1}]` in this
/// 0-based numbering. The represented matrix is `prod i_k` by `prod j_k`,
/// stored `[out, in]`, so the rows split the output dimension.
///
/// ```
/// use tensornet::MpoShape;
/// let shape = MpoShape::full(&[3, 4, 4, 4, 4], &[4, 4, 4, 4, 3]).unwrap();
/// assert_eq!(shape.bond_dims(), &[1, 12, 192, 192, 12, 1]);
/// assert_eq!(shape.num_params(), 663_840);
/// assert_eq!(shape.central_cores(), vec![2]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MpoShape {
    rows: Vec<usize>,
    cols: Vec<usize>,
    bond_dims: Vec<usize>,
}

impl MpoShape {
    /// Builds a shape from its factor lists and bond dimensions.
    ///
    /// # Errors
    /// [`Error::InvalidFactors`] for an empty list or a zero factor, and
    /// [`Error::CoreShape`] when the lists differ in length, `bond_dims` does
    /// not have `n + 1` entries, a bond is 0, or a boundary bond is not 1.
    pub fn new(rows: Vec<usize>, cols: Vec<usize>, bond_dims: Vec<usize>) -> Result<Self> {
        if rows.is_empty() || rows.contains(&0) {
            return Err(Error::InvalidFactors { axis: Axis::Rows, factors: rows });
        }
        if cols.is_empty() || cols.contains(&0) {
            return Err(Error::InvalidFactors { axis: Axis::Cols, factors: cols });
        }
        let n = rows.len();
        if cols.len() != n || bond_dims.len() != n + 1 {
            return Err(Error::CoreShape {
                index: 0,
                shape: bond_dims,
                reason: format!(
                    "{n} row factors and {} column factors need equal lengths and {} bond dimensions",
                    cols.len(),
                    n + 1
                ),
            });
        }
        if bond_dims[0] != 1 || bond_dims[n] != 1 || bond_dims.contains(&0) {
            return Err(Error::CoreShape {
                index: 0,
                shape: bond_dims,
                reason: "bond dimensions must be positive with 1 at both ends".into(),
            });
        }
        Ok(MpoShape { rows, cols, bond_dims })
    }

    /// Builds the shape with the full bond dimensions of [`full_bond_dims`].
    ///
    /// # Errors
    /// As [`MpoShape::new`].
    pub fn full(rows: &[usize], cols: &[usize]) -> Result<Self> {
        if rows.len() != cols.len() || rows.is_empty() {
            return MpoShape::new(rows.to_vec(), cols.to_vec(), vec![]);
        }
        MpoShape::new(rows.to_vec(), cols.to_vec(), full_bond_dims(rows, cols))
    }

    /// Number of cores `n`.
    pub fn num_cores(&self) -> usize {
        self.rows.len()
    }

    /// Row factors `i_k`, which split the output dimension.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// Column factors `j_k`, which split the input dimension.
    pub fn cols(&self) -> &[usize] {
        &self.cols
    }

    /// Bond dimensions `d_0, ..., d_n`, boundary 1s included.
    pub fn bond_dims(&self) -> &[usize] {
        &self.bond_dims
    }

    /// Output dimension `prod i_k`: the number of rows of the matrix.
    pub fn out_dim(&self) -> usize {
        self.rows.iter().product()
    }

    /// Input dimension `prod j_k`: the number of columns of the matrix.
    pub fn in_dim(&self) -> usize {
        self.cols.iter().product()
    }

    /// Shape `[d_k, i_k, j_k, d_{k+1}]` of core `k`.
    ///
    /// # Panics
    /// Panics if `k >= n`.
    #[track_caller]
    pub fn core_shape(&self, k: usize) -> [usize; 4] {
        [self.bond_dims[k], self.rows[k], self.cols[k], self.bond_dims[k + 1]]
    }

    /// Number of parameters of each core, `d_k i_k j_k d_{k+1}`.
    pub fn params_per_core(&self) -> Vec<usize> {
        (0..self.num_cores()).map(|k| self.core_shape(k).iter().product()).collect()
    }

    /// Total number of parameters over all cores.
    pub fn num_params(&self) -> usize {
        self.params_per_core().iter().sum()
    }

    /// Number of entries of the dense matrix, `out_dim * in_dim`.
    pub fn dense_params(&self) -> usize {
        self.out_dim() * self.in_dim()
    }

    /// Counts the multiply-adds of [`crate::Mpo::to_dense`] for this shape.
    ///
    /// ```
    /// use tensornet::MpoShape;
    /// // Two [2, 2, 4] cores on bond 4: 16 multiply-adds to lay out each one,
    /// // then a [4, 4] by [4, 4] product to join them.
    /// let shape = MpoShape::full(&[2, 2], &[2, 2]).unwrap();
    /// assert_eq!(shape.contraction_multiply_adds(), 16 + 16 + 4 * 4 * 4);
    /// ```
    pub fn contraction_multiply_adds(&self) -> u64 {
        crate::contract::dense_flops(self)
    }

    /// Returns the central core(s): every core with the largest parameter count.
    ///
    /// This is not index `(n - 1) / 2`, which lands on an inserted identity
    /// core once cores are inserted. When two or more cores tie, as can
    /// happen with an even `n`, all of them are returned in order.
    pub fn central_cores(&self) -> Vec<usize> {
        let params = self.params_per_core();
        let max = params.iter().copied().max().unwrap_or(0);
        (0..params.len()).filter(|&k| params[k] == max).collect()
    }

    pub(crate) fn insert_identity_sites(&mut self, bond: usize, count: usize) {
        let d = self.bond_dims[bond];
        for _ in 0..count {
            self.rows.insert(bond, 1);
            self.cols.insert(bond, 1);
            self.bond_dims.insert(bond, d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_bonds_768x768() {
        // d_k = min(prod_{m<=k} i_m j_m, prod_{m>k} i_m j_m), with i_k j_k = 12, 16, 16, 16, 12.
        let shape = MpoShape::full(&[3, 4, 4, 4, 4], &[4, 4, 4, 4, 3]).unwrap();
        assert_eq!(shape.bond_dims(), &[1, 12, 192, 192, 12, 1]);
        // 12*12 + 12*16*192 + 192*16*192 + 192*16*12 + 12*12.
        assert_eq!(shape.num_params(), 663_840);
        assert_eq!(shape.dense_params(), 589_824);
    }

    #[test]
    fn full_bonds_3072x768() {
        // i_k j_k = 12, 16, 32, 24, 16; prefixes 12, 192, 6144, ...; suffixes ..., 384, 16.
        let shape = MpoShape::full(&[4, 4, 8, 6, 4], &[3, 4, 4, 4, 4]).unwrap();
        assert_eq!(shape.bond_dims(), &[1, 12, 192, 384, 16, 1]);
        assert_eq!(shape.num_params(), 2_544_016);
    }

    #[test]
    fn central_core_is_largest() {
        let shape = MpoShape::full(&[2, 3, 5, 5, 2], &[3, 4, 4, 4, 4]).unwrap();
        assert_eq!(shape.params_per_core(), vec![36, 5184, 230_400, 25_600, 64]);
        assert_eq!(shape.central_cores(), vec![2]);
    }

    #[test]
    fn central_cores_tie_for_even_n() {
        // 16x16 as [2,2,2,2] x [2,2,2,2]: bonds 1,4,16,4,1, cores 16, 256, 256, 16.
        let shape = MpoShape::full(&[2, 2, 2, 2], &[2, 2, 2, 2]).unwrap();
        assert_eq!(shape.params_per_core(), vec![16, 256, 256, 16]);
        assert_eq!(shape.central_cores(), vec![1, 2]);
    }

    #[test]
    fn new_rejects_bad_bonds() {
        assert!(MpoShape::new(vec![2, 2], vec![2, 2], vec![1, 4]).is_err());
        assert!(MpoShape::new(vec![2, 2], vec![2, 2], vec![2, 4, 1]).is_err());
        assert!(MpoShape::new(vec![2, 2], vec![2], vec![1, 4, 1]).is_err());
        assert!(MpoShape::new(vec![2, 0], vec![2, 2], vec![1, 4, 1]).is_err());
    }
}
