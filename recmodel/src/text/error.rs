//! The error type of the text encoder and the item-text builders.

use std::path::PathBuf;

/// Errors raised while loading a text model, encoding text or building item
/// texts.
///
/// Every variant names the file, and those about a weight also name the
/// tensor, so a message reads like
/// `.../model.safetensors: tensor encoder.layer.3.output.dense.weight has shape [384, 1024], but config.json implies [384, 1536]`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// A file the model folder or the dataset folder must contain is absent.
    #[error("{} not found: {hint}", path.display())]
    MissingFile {
        /// The expected path.
        path: PathBuf,
        /// The file's purpose and the fix.
        hint: String,
    },

    /// Reading a file failed.
    #[error("failed to read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Writing a file failed.
    #[error("failed to write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file that does not parse, or lacks a field of the right type.
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },

    /// A model whose `config.json` describes another architecture than BERT.
    #[error("{}: unsupported architecture {found}; only BERT models (model_type \"bert\") are supported", path.display())]
    UnsupportedArchitecture {
        /// The configuration file.
        path: PathBuf,
        /// The `model_type` and `architectures` entries found.
        found: String,
    },

    /// A configuration value that is out of range or not supported.
    #[error("{}: invalid {field}: {message}", path.display())]
    InvalidConfig {
        /// The configuration file.
        path: PathBuf,
        /// The field name.
        field: String,
        /// The problem, with the offending value.
        message: String,
    },

    /// A weight file that is not valid safetensors.
    #[error("{}: invalid safetensors file: {message}", path.display())]
    InvalidWeights {
        /// The weight file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },

    /// A tensor the model needs is absent from the weight file.
    #[error("{}: tensor {name} not found (also tried the name with a \"bert.\" prefix)", path.display())]
    MissingTensor {
        /// The weight file.
        path: PathBuf,
        /// The tensor name, without prefix.
        name: String,
    },

    /// A tensor whose shape differs from the one the configuration implies.
    #[error("{}: tensor {name} has shape {found:?}, but config.json implies {expected:?}", path.display())]
    TensorShape {
        /// The weight file.
        path: PathBuf,
        /// The tensor name as stored.
        name: String,
        /// Shape derived from `config.json`.
        expected: Vec<usize>,
        /// Shape stored in the file.
        found: Vec<usize>,
    },

    /// A tensor stored in a data type that cannot be converted to `f32`.
    #[error("{}: tensor {name} has data type {dtype}, expected F32, F16, BF16 or F64", path.display())]
    TensorDtype {
        /// The weight file.
        path: PathBuf,
        /// The tensor name as stored.
        name: String,
        /// The stored data type.
        dtype: String,
    },

    /// The tokenizer could not be built or failed on a text.
    #[error("{}: tokenizer error: {message}", path.display())]
    Tokenizer {
        /// The tokenizer file (`tokenizer.json` or `vocab.txt`).
        path: PathBuf,
        /// The tokenizer's message.
        message: String,
    },

    /// A token id outside the embedding table.
    #[error("token id {id} is outside the vocabulary of {vocab_size} tokens of {}", path.display())]
    TokenId {
        /// The weight file that contains the embedding table.
        path: PathBuf,
        /// The offending id.
        id: u32,
        /// Rows of the word-embedding table.
        vocab_size: usize,
    },

    /// Input the encoder cannot take, such as an empty token sequence.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A malformed line of a dataset file.
    #[error("{} line {line}: {message}", path.display())]
    InvalidLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The problem, with the offending value.
        message: String,
    },

    /// A dataset file that the training loader's checks reject, such as a
    /// malformed `NAME.item2index` or a file that is not UTF-8.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),

    /// A dataset folder whose format could not be recognised.
    #[error("{}: {message}", dir.display())]
    UnknownDataset {
        /// The folder.
        dir: PathBuf,
        /// The files searched for.
        message: String,
    },
}

/// Result alias for the text encoder.
pub type Result<T> = std::result::Result<T, TextError>;
