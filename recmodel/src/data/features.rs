//! Item feature files: raw little-endian `f32`, one row per item index.
//!
//! This is the layout of UniSRec's `NAME.feat1CLS` files and of the
//! embeddings `mporec` writes: no header, no padding row, row `r` is item
//! index `r`.

use std::path::Path;

use autograd::Tensor;

use super::DataError;

/// Loads a feature file of `num_items` rows and returns a
/// `[num_items, dim]` tensor, with `dim` derived from the file size
/// (`bytes / 4 / num_items`).
///
/// ```no_run
/// let features = recmodel::data::load_features("../shared/data/scientific/Scientific.minilm-l6.f32".as_ref(), 4385)?;
/// assert_eq!(features.shape(), &[4385, 384]);
/// # Ok::<(), recmodel::data::DataError>(())
/// ```
///
/// # Errors
/// [`DataError::Io`] when the file cannot be read, [`DataError::Empty`] for
/// an empty file and [`DataError::NoItems`] when `num_items` is 0.
/// [`DataError::FeatureSize`] when the size is not a multiple of
/// `4 * num_items` bytes. [`DataError::NonFinite`], naming the row and
/// column, for the first NaN or infinite value.
pub fn load_features(path: &Path, num_items: usize) -> Result<Tensor, DataError> {
    load(path, num_items, None)
}

/// Loads a feature file of `num_items` rows of `dim` values each, as
/// [`load_features`] does, but requires the size to be exactly
/// `4 * num_items * dim` bytes.
///
/// # Errors
/// As [`load_features`], with [`DataError::FeatureSize`] for any size other
/// than `4 * num_items * dim` bytes (a `dim` of 0 never matches).
pub fn load_features_with_dim(path: &Path, num_items: usize, dim: usize) -> Result<Tensor, DataError> {
    load(path, num_items, Some(dim))
}

fn load(path: &Path, num_items: usize, dim: Option<usize>) -> Result<Tensor, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    if bytes.is_empty() {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }
    if num_items == 0 {
        return Err(DataError::NoItems { path: path.to_path_buf() });
    }

    let row_bytes = 4 * num_items;
    let size_error = |expected: String| DataError::FeatureSize { path: path.to_path_buf(), bytes: bytes.len() as u64, num_items, expected };
    let dim = match dim {
        None if bytes.len() % row_bytes != 0 => return Err(size_error(format!("a multiple of {row_bytes} bytes"))),
        None => bytes.len() / row_bytes,
        Some(dim) if dim == 0 || bytes.len() != row_bytes * dim => {
            return Err(size_error(format!("{} bytes (dimension {dim})", row_bytes * dim)));
        }
        Some(dim) => dim,
    };

    let mut values = Vec::with_capacity(num_items * dim);
    for (i, chunk) in bytes.chunks_exact(4).enumerate() {
        let value = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        if !value.is_finite() {
            return Err(DataError::NonFinite { path: path.to_path_buf(), row: i / dim, column: i % dim, value });
        }
        values.push(value);
    }

    tracing::debug!(path = %path.display(), items = num_items, dim, "loaded item features");
    Tensor::new(vec![num_items, dim], values).map_err(|source| DataError::Tensor { path: path.to_path_buf(), source })
}
