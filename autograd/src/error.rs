//! The error type of tensor and graph operations.

use std::fmt;

/// Errors raised by tensor construction and graph operations.
///
/// Every variant names the operation, so a failure reads as a sentence:
/// `matmul: shape mismatch between [2, 3] and [4, 5]`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Two operands whose shapes cannot be combined by `op`.
    ShapeMismatch {
        /// Operation name.
        op: &'static str,
        /// Shape of the left operand.
        lhs: Vec<usize>,
        /// Shape of the right operand.
        rhs: Vec<usize>,
    },
    /// A buffer whose length differs from the product of its shape.
    LengthMismatch {
        /// Operation name.
        op: &'static str,
        /// Requested shape.
        shape: Vec<usize>,
        /// Actual buffer length.
        len: usize,
    },
    /// An argument outside its valid range, such as an axis or an index.
    InvalidArgument {
        /// Operation name.
        op: &'static str,
        /// What is wrong, with the offending value.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch { op, lhs, rhs } => {
                write!(f, "{op}: shape mismatch between {lhs:?} and {rhs:?}")
            }
            Error::LengthMismatch { op, shape, len } => write!(
                f,
                "{op}: shape {shape:?} needs {} elements but the buffer has {len}",
                shape.iter().product::<usize>()
            ),
            Error::InvalidArgument { op, message } => write!(f, "{op}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn invalid(op: &'static str, message: impl Into<String>) -> Error {
    Error::InvalidArgument { op, message: message.into() }
}
