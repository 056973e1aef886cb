//! Errors of model construction, training and checkpoints.

use std::path::PathBuf;

/// Errors raised while building, training or storing a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A tensor operation failed (a shape mismatch is a bug or a bad input).
    #[error(transparent)]
    Tensor(#[from] autograd::Error),
    /// A checkpoint or weight file lacks a parameter the model needs.
    #[error("parameter {name} is missing")]
    MissingParameter {
        /// Parameter name.
        name: String,
    },
    /// A stored parameter has the wrong shape.
    #[error("parameter {name} has shape {actual:?}, expected {expected:?}")]
    ParameterShape {
        /// Parameter name.
        name: String,
        /// Shape the model needs.
        expected: Vec<usize>,
        /// Shape found.
        actual: Vec<usize>,
    },
    /// Inputs that do not fit the model, such as an item index out of range.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The training loss became NaN or infinite.
    #[error("training loss is not finite ({loss}) at epoch {epoch}, batch {batch}; the last good checkpoint is kept")]
    NonFiniteLoss {
        /// Epoch, from 1.
        epoch: usize,
        /// Batch within the epoch, from 1.
        batch: usize,
        /// The loss value.
        loss: f32,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint file is corrupt or of another format.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// Description of the problem.
        message: String,
    },
}
