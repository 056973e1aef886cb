//! Checkpoints: bincode with a format header and checksum, written atomically.
//!
//! Layout: the 8-byte magic `MPORECCK`, the format version (u32 LE), the
//! payload length (u64 LE), the FNV-1a 64 checksum of the payload (u64 LE),
//! then the payload, a bincode (standard configuration) encoding of
//! [`Checkpoint`]. The training state of [`crate::train::TrainState`] uses
//! the same layout with the magic `MPORECTS`.

use crate::error::ModelError;
use crate::model::UniSRecConfig;
use autograd::{Adam, ParamStore};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"MPORECCK";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8 + 8;

/// A model's configuration and parameters, with the training state needed
/// to continue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Architecture of the model.
    pub config: UniSRecConfig,
    /// Parameter values, by UniSRec's parameter names.
    pub params: ParamStore,
    /// Epoch (from 1) after which the parameters were taken.
    pub epoch: usize,
    /// Validation NDCG@10 of these parameters.
    pub valid_ndcg_10: f64,
    /// Optimizer moments, when saved for resuming.
    pub optimizer: Option<Adam>,
}

/// FNV-1a, 64-bit: detects truncation and corruption, not tampering.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn io_err(path: &Path, source: std::io::Error) -> ModelError {
    ModelError::Io { path: path.to_path_buf(), source }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// folder, flushed to disk, then renamed over `path`. A crash leaves either
/// the old file or the new one, never a partial file.
///
/// # Errors
/// [`ModelError::Io`] naming the file that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "checkpoint".into());
    // A fixed name, so that a temporary file left by a killed run is
    // overwritten by the next write rather than accumulating.
    let tmp: PathBuf = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| io_err(path, e))?;
        f.write_all(bytes).map_err(|e| io_err(path, e))?;
        f.sync_all().map_err(|e| io_err(path, e))?;
        fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
        // Persist the rename itself; not every platform can open a folder.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Encodes `checkpoint` and writes it atomically to `path`.
///
/// # Errors
/// [`ModelError::Io`] when writing fails, [`ModelError::Checkpoint`] when
/// encoding fails.
pub fn write_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<(), ModelError> {
    write_framed(path, MAGIC, checkpoint)
}

/// Reads and verifies a checkpoint written by [`write_checkpoint`].
///
/// # Errors
/// [`ModelError::Io`] when the file cannot be read; [`ModelError::Checkpoint`]
/// when the magic, version, length or checksum is wrong or decoding fails.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, ModelError> {
    let mut ck: Checkpoint = read_framed(path, MAGIC, "checkpoint")?;
    ck.params.rebuild_index();
    Ok(ck)
}

/// Writes `value` as bincode behind a header of `magic`, the format version,
/// the payload length and its FNV-1a checksum, atomically.
pub(crate) fn write_framed<T: Serialize>(path: &Path, magic: &[u8; 8], value: &T) -> Result<(), ModelError> {
    let payload = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| ModelError::Checkpoint { path: path.to_path_buf(), message: format!("encoding failed: {e}") })?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&fnv1a64(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    write_atomic(path, &bytes)
}

/// Reads a file written by [`write_framed`] with the same `magic`; `what`
/// names the kind of file in errors.
pub(crate) fn read_framed<T: DeserializeOwned>(path: &Path, magic: &[u8; 8], what: &str) -> Result<T, ModelError> {
    let bytes = fs::read(path).map_err(|e| io_err(path, e))?;
    let bad = |message: String| ModelError::Checkpoint { path: path.to_path_buf(), message };
    if bytes.is_empty() {
        return Err(bad("the file is empty".into()));
    }
    if bytes.len() >= magic.len() && &bytes[..magic.len()] == magic && bytes.len() < HEADER_LEN {
        return Err(bad(format!("the file is truncated: {} bytes, shorter than the {HEADER_LEN}-byte header", bytes.len())));
    }
    if bytes.len() < HEADER_LEN || &bytes[..8] != magic {
        let header = String::from_utf8_lossy(magic);
        return Err(bad(format!("not an mporec {what} (missing {header} header)")));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(bad(format!("{what} format version {version} is not supported (expected {VERSION})")));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")) as usize;
    let checksum = u64::from_le_bytes(bytes[20..28].try_into().expect("8 bytes"));
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != len {
        return Err(bad(format!("payload is {} bytes, the header says {len}: the file is truncated or corrupt", payload.len())));
    }
    if fnv1a64(payload) != checksum {
        return Err(bad("checksum mismatch: the file is corrupt".into()));
    }
    let (value, _): (T, usize) =
        bincode::serde::decode_from_slice(payload, bincode::config::standard()).map_err(|e| bad(format!("decoding failed: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Setting, UniSRec};

    fn small() -> Checkpoint {
        let mut config = UniSRecConfig::new(7, 4, Setting::Transductive);
        config.hidden_size = 6;
        config.inner_size = 5;
        let (_, params) = UniSRec::init(config.clone(), 3);
        Checkpoint { config, params, epoch: 2, valid_ndcg_10: 0.5, optimizer: None }
    }

    #[test]
    fn checkpoint_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ckpt");
        let ck = small();
        write_checkpoint(&path, &ck).unwrap();
        let back = read_checkpoint(&path).unwrap();
        assert_eq!(back.config, ck.config);
        assert_eq!(back.epoch, 2);
        let id = back.params.find("LayerNorm.weight").unwrap();
        assert_eq!(back.params.value(id), ck.params.value(ck.params.find("LayerNorm.weight").unwrap()));
        assert!(UniSRec::bind(back.config.clone(), &back.params).is_ok());
    }

    #[test]
    fn checkpoint_corruption_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ckpt");
        write_checkpoint(&path, &small()).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let err = read_checkpoint(&path).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");

        fs::write(&path, &bytes[..40]).unwrap();
        let err = read_checkpoint(&path).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");

        fs::write(&path, b"hello").unwrap();
        let err = read_checkpoint(&path).unwrap_err().to_string();
        assert!(err.contains("not an mporec checkpoint"), "{err}");
    }

    #[test]
    fn atomic_write_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ckpt");
        write_checkpoint(&path, &small()).unwrap();
        write_checkpoint(&path, &small()).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
