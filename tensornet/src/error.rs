//! The error type of the crate.

use std::fmt;

/// Side of an `[out, in]` weight that a factor list splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// The output dimension, split by the row factors `i_k`.
    Rows,
    /// The input dimension, split by the column factors `j_k`.
    Cols,
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Axis::Rows => "row",
            Axis::Cols => "column",
        })
    }
}

/// Errors of factorization, decomposition, truncation and contraction.
///
/// Each variant carries the values needed to read the failure as a sentence,
/// for example `row factors [3, 4, 4] multiply to 48, but the dimension is 300`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A factor list whose product differs from the dimension it splits.
    #[error("{axis} factors {factors:?} multiply to {product}, but the dimension is {dim}")]
    FactorProduct {
        /// The side the list splits.
        axis: Axis,
        /// The list as given.
        factors: Vec<usize>,
        /// The product of the list.
        product: usize,
        /// The dimension the list should split.
        dim: usize,
    },
    /// A factor list whose product exceeds `usize::MAX`, so that it cannot
    /// split any dimension.
    #[error("{axis} factors {factors:?} have a product that overflows usize (above {max}), so they cannot split the dimension {dim}", max = usize::MAX)]
    FactorOverflow {
        /// The side the list splits.
        axis: Axis,
        /// The list as given.
        factors: Vec<usize>,
        /// The dimension the list should split.
        dim: usize,
    },
    /// A factor list that is empty or contains a zero.
    #[error("{axis} factors {factors:?} are invalid: every factor must be at least 1 and the list must not be empty")]
    InvalidFactors {
        /// The side the list splits.
        axis: Axis,
        /// The list as given.
        factors: Vec<usize>,
    },
    /// A dimension that cannot be factorized, such as 0.
    #[error("cannot split the {axis} dimension {dim} into {cores} factors: {reason}")]
    InvalidDimension {
        /// The side being split.
        axis: Axis,
        /// The dimension.
        dim: usize,
        /// The requested number of factors.
        cores: usize,
        /// Reason for the failure.
        reason: &'static str,
    },
    /// A matrix or core buffer whose length does not match its shape.
    #[error("{what}: shape {shape:?} needs {expected} elements but the buffer has {len}")]
    Length {
        /// Name of the buffer, such as `matrix` or `core 2`.
        what: String,
        /// The declared shape.
        shape: Vec<usize>,
        /// The product of the shape.
        expected: usize,
        /// The buffer length.
        len: usize,
    },
    /// A NaN or infinite element.
    #[error("{what} element {index} is {value}; only finite values can be decomposed or contracted")]
    NonFinite {
        /// Name of the buffer, such as `matrix` or `core 2`.
        what: String,
        /// Flat row-major index of the first offending element.
        index: usize,
        /// The element.
        value: f32,
    },
    /// A NaN or infinite element of a matrix, located by row and column.
    #[error("{what} element at row {row}, column {column} is {value}; only finite values can be decomposed or contracted")]
    NonFiniteMatrixElement {
        /// Name of the matrix, such as `matrix`.
        what: String,
        /// Row of the first offending element, from 0.
        row: usize,
        /// Column of the first offending element, from 0.
        column: usize,
        /// The element.
        value: f32,
    },
    /// A list of cores whose shapes do not chain.
    #[error("core {index} has shape {shape:?}: {reason}")]
    CoreShape {
        /// Position of the core in the chain, from 0.
        index: usize,
        /// Its shape.
        shape: Vec<usize>,
        /// The problem with the shape.
        reason: String,
    },
    /// A truncation option outside its range.
    #[error("invalid truncation option {option} = {value}: {reason}")]
    InvalidTruncation {
        /// Option name: `max_bond`, `cutoff` or `max_discarded_weight`.
        option: &'static str,
        /// The value given.
        value: f64,
        /// The valid range.
        reason: &'static str,
    },
    /// A bond or core index outside the chain.
    #[error("{what} {index} is out of range: the MPO has {len}")]
    IndexOutOfRange {
        /// `bond` or `core`.
        what: &'static str,
        /// The index given.
        index: usize,
        /// The number of bonds or cores, as text (`6 bonds, 0..=5`).
        len: String,
    },
    /// An input whose last dimension differs from the MPO's input dimension.
    #[error("{op}: input shape {input:?} does not end in the MPO input dimension {expected}")]
    InputShape {
        /// The operation.
        op: &'static str,
        /// The input's shape.
        input: Vec<usize>,
        /// The MPO's input dimension `prod j_k`.
        expected: usize,
    },
    /// An SVD or eigendecomposition that did not converge.
    #[error("the SVD of a {rows}x{cols} unfolding did not converge")]
    SvdFailed {
        /// Rows of the unfolding.
        rows: usize,
        /// Columns of the unfolding.
        cols: usize,
    },
    /// An error from the autograd graph.
    #[error(transparent)]
    Autograd(#[from] autograd::Error),
}

impl Error {
    /// Converts an [`Error::NonFinite`] that indexes a row-major matrix with
    /// `cols` columns into [`Error::NonFiniteMatrixElement`], which names the
    /// row and column. Other errors, and any error when `cols` is 0, are
    /// returned unchanged.
    ///
    /// [`crate::Mpo::decompose`] reports a non-finite input element by its
    /// flat index. Its caller knows the column count and can locate it:
    ///
    /// ```
    /// use tensornet::{Error, Mpo, Truncation};
    /// let mut matrix = vec![1.0f32; 12];
    /// matrix[7] = f32::NAN;
    /// let err = Mpo::decompose(&matrix, 3, 4, &[3], &[4], &Truncation::none()).unwrap_err();
    /// let err = err.with_matrix_columns(4);
    /// assert!(matches!(err, Error::NonFiniteMatrixElement { row: 1, column: 3, .. }));
    /// ```
    #[must_use]
    pub fn with_matrix_columns(self, cols: usize) -> Self {
        match self {
            Error::NonFinite { what, index, value } if cols > 0 => {
                Error::NonFiniteMatrixElement { what, row: index / cols, column: index % cols, value }
            }
            other => other,
        }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Returns an error naming the first non-finite element of `data`.
pub(crate) fn check_finite(what: impl FnOnce() -> String, data: &[f32]) -> Result<()> {
    match data.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(Error::NonFinite { what: what(), index, value: data[index] }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_columns_locate_element() {
        let flat = Error::NonFinite { what: "matrix".into(), index: 24974, value: f32::NAN };
        let located = flat.with_matrix_columns(300);
        assert!(matches!(located, Error::NonFiniteMatrixElement { row: 83, column: 74, .. }), "{located:?}");
        assert_eq!(
            located.to_string(),
            "matrix element at row 83, column 74 is NaN; only finite values can be decomposed or contracted"
        );
    }

    #[test]
    fn matrix_columns_keep_other_errors() {
        let flat = Error::NonFinite { what: "matrix".into(), index: 5, value: f32::INFINITY };
        assert_eq!(flat.clone().with_matrix_columns(0), flat);
        let other = Error::SvdFailed { rows: 2, cols: 3 };
        assert_eq!(other.clone().with_matrix_columns(4), other);
    }
}
