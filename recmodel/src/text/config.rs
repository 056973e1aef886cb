//! The configuration files of a model folder in the Hugging Face and
//! sentence-transformers layout: `config.json` (the BERT architecture),
//! `sentence_bert_config.json` (maximum sequence length), `modules.json`
//! (which post-processing modules follow the encoder) and the pooling
//! module's `config.json`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

use super::error::{Result, TextError};

/// The activation of BERT's feed-forward layer (`hidden_act`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: the exact form `x * Phi(x)` with the Gaussian CDF via erf.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    /// `relu`.
    Relu,
}

/// The architecture of a BERT encoder, read from `config.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    /// Rows of the word-embedding table.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; divides `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    pub hidden_act: Activation,
    /// Rows of the position-embedding table, the longest input the model takes.
    pub max_position_embeddings: usize,
    /// Rows of the token-type table (2 for BERT's sentence A / B).
    pub type_vocab_size: usize,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f32,
}

#[derive(Deserialize)]
struct RawBertConfig {
    model_type: Option<String>,
    architectures: Option<Vec<String>>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    hidden_act: Option<String>,
    max_position_embeddings: usize,
    type_vocab_size: Option<usize>,
    layer_norm_eps: Option<f32>,
    position_embedding_type: Option<String>,
}

impl BertConfig {
    /// Reads `config.json`.
    ///
    /// # Errors
    /// [`TextError::MissingFile`] or [`TextError::Io`] when the file cannot be
    /// read, [`TextError::Json`] when a required field is absent,
    /// [`TextError::UnsupportedArchitecture`] when `model_type` is not `bert`,
    /// and [`TextError::InvalidConfig`] for an unsupported activation or
    /// position-embedding type, or sizes that do not fit together.
    pub fn from_file(path: &Path) -> Result<Self> {
        let raw: RawBertConfig = read_json(path, "the model's architecture (a Hugging Face config.json)")?;
        check_architecture(path, &raw)?;

        let invalid = |field: &str, message: String| TextError::InvalidConfig { path: path.to_path_buf(), field: field.into(), message };
        let hidden_act = match raw.hidden_act.as_deref().unwrap_or("gelu") {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => return Err(invalid("hidden_act", format!("{other:?} is not supported (expected gelu, gelu_new, gelu_pytorch_tanh or relu)"))),
        };
        if let Some(kind) = raw.position_embedding_type.as_deref() {
            if kind != "absolute" {
                return Err(invalid("position_embedding_type", format!("{kind:?} is not supported (expected \"absolute\")")));
            }
        }
        for (field, value) in [
            ("vocab_size", raw.vocab_size),
            ("hidden_size", raw.hidden_size),
            ("num_attention_heads", raw.num_attention_heads),
            ("intermediate_size", raw.intermediate_size),
            ("max_position_embeddings", raw.max_position_embeddings),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be positive, got 0".into()));
            }
        }
        if !raw.hidden_size.is_multiple_of(raw.num_attention_heads) {
            return Err(invalid(
                "num_attention_heads",
                format!("{} heads do not divide hidden_size {}", raw.num_attention_heads, raw.hidden_size),
            ));
        }
        let layer_norm_eps = raw.layer_norm_eps.unwrap_or(1e-12);
        if !(layer_norm_eps.is_finite() && layer_norm_eps >= 0.0) {
            return Err(invalid("layer_norm_eps", format!("{layer_norm_eps} is not a finite non-negative number")));
        }

        Ok(BertConfig {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            intermediate_size: raw.intermediate_size,
            hidden_act,
            max_position_embeddings: raw.max_position_embeddings,
            type_vocab_size: raw.type_vocab_size.unwrap_or(2),
            layer_norm_eps,
        })
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

fn check_architecture(path: &Path, raw: &RawBertConfig) -> Result<()> {
    let architectures = raw.architectures.clone().unwrap_or_default();
    let is_bert = match raw.model_type.as_deref() {
        Some(model_type) => model_type == "bert",
        // Old configs lack model_type; their class names still tell.
        None => !architectures.is_empty() && architectures.iter().all(|a| a.starts_with("Bert")),
    };
    if is_bert {
        return Ok(());
    }
    Err(TextError::UnsupportedArchitecture {
        path: path.to_path_buf(),
        found: format!(
            "model_type {:?}, architectures {:?}",
            raw.model_type.as_deref().unwrap_or("(absent)"),
            architectures
        ),
    })
}

/// The reduction of a text's token states to one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the non-padding tokens, `[CLS]` and `[SEP]` included.
    Mean,
    /// The state of the first token, `[CLS]`.
    Cls,
    /// Element-wise maximum over the non-padding tokens.
    Max,
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Max => "max",
        })
    }
}

impl FromStr for Pooling {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            "max" => Ok(Pooling::Max),
            other => Err(format!("unknown pooling {other:?} (expected mean, cls or max)")),
        }
    }
}

/// Settings from the sentence-transformers files of a model folder. The
/// defaults below apply to a plain Hugging Face folder without them.
#[derive(Clone, Debug, PartialEq)]
pub struct SentenceConfig {
    /// Maximum tokens per text, `[CLS]` and `[SEP]` included:
    /// `max_seq_length` of `sentence_bert_config.json`, else the model's
    /// `max_position_embeddings`.
    pub max_seq_length: usize,
    /// The pooling module's mode; mean pooling when `modules.json` lists
    /// none, as sentence-transformers does for a plain model.
    pub pooling: Pooling,
    /// True when `modules.json` lists a `Normalize` module.
    pub normalize: bool,
}

impl SentenceConfig {
    /// Reads the sentence-transformers files of `model_dir`, each optional.
    ///
    /// # Errors
    /// [`TextError::Io`] or [`TextError::Json`] when a present file cannot be
    /// read, and [`TextError::InvalidConfig`] when `max_seq_length` exceeds
    /// the position table or the pooling module requests a mode this encoder
    /// does not implement.
    pub fn from_dir(model_dir: &Path, bert: &BertConfig) -> Result<Self> {
        let max_seq_length = read_max_seq_length(model_dir, bert)?;
        let (pooling, normalize) = read_modules(model_dir, bert.hidden_size)?;
        Ok(SentenceConfig { max_seq_length, pooling, normalize })
    }
}

fn read_max_seq_length(model_dir: &Path, bert: &BertConfig) -> Result<usize> {
    let path = model_dir.join("sentence_bert_config.json");
    if !path.is_file() {
        return Ok(bert.max_position_embeddings);
    }
    let value: Value = read_json(&path, "its maximum sequence length")?;
    let Some(field) = value.get("max_seq_length") else {
        return Ok(bert.max_position_embeddings);
    };
    let invalid = |message: String| TextError::InvalidConfig { path: path.clone(), field: "max_seq_length".into(), message };
    let max_seq_length = field
        .as_u64()
        .filter(|&n| n >= 2)
        .ok_or_else(|| invalid(format!("{field} is not an integer of at least 2")))? as usize;
    if max_seq_length > bert.max_position_embeddings {
        return Err(invalid(format!(
            "{max_seq_length} exceeds the model's max_position_embeddings {}",
            bert.max_position_embeddings
        )));
    }
    Ok(max_seq_length)
}

/// Reads `modules.json` and the pooling module's configuration.
///
/// Rejects a module other than the Transformer, Pooling and Normalize
/// modules (a `Dense` projection, for instance), because skipping it would
/// give vectors that differ from the model's.
fn read_modules(model_dir: &Path, hidden_size: usize) -> Result<(Pooling, bool)> {
    let path = model_dir.join("modules.json");
    if !path.is_file() {
        return Ok((Pooling::Mean, false));
    }
    let modules: Vec<Value> = read_json(&path, "its list of modules")?;
    let module_type = |m: &Value| m.get("type").and_then(Value::as_str).unwrap_or("").to_string();
    for module in &modules {
        let kind = module_type(module);
        if ![".Transformer", ".Pooling", ".Normalize"].iter().any(|suffix| kind.ends_with(suffix)) {
            return Err(TextError::InvalidConfig {
                path: path.clone(),
                field: "type".into(),
                message: format!("module {kind:?} is not supported; only Transformer, Pooling and Normalize modules can run"),
            });
        }
    }

    let normalize = modules.iter().any(|m| module_type(m).ends_with(".Normalize"));
    let pooling_module = modules.iter().find(|m| module_type(m).ends_with(".Pooling"));
    let pooling = match pooling_module {
        None => Pooling::Mean,
        Some(module) => {
            let folder = module.get("path").and_then(Value::as_str).unwrap_or("1_Pooling");
            read_pooling(&model_dir.join(folder).join("config.json"), hidden_size)?
        }
    };
    Ok((pooling, normalize))
}

fn read_pooling(path: &Path, hidden_size: usize) -> Result<Pooling> {
    let value: Value = read_json(path, "the pooling mode that modules.json refers to")?;
    if let Some(dimension) = value.get("word_embedding_dimension").and_then(Value::as_u64) {
        if dimension != hidden_size as u64 {
            return Err(TextError::InvalidConfig {
                path: path.to_path_buf(),
                field: "word_embedding_dimension".into(),
                message: format!("{dimension} differs from the model's hidden_size {hidden_size}"),
            });
        }
    }
    let flag = |key: &str| value.get(key).and_then(Value::as_bool).unwrap_or(false);
    let invalid = |message: String| TextError::InvalidConfig { path: path.to_path_buf(), field: "pooling_mode".into(), message };

    // Newer sentence-transformers releases also write a single string field.
    if let Some(mode) = value.get("pooling_mode").and_then(Value::as_str) {
        return mode.parse().map_err(invalid);
    }
    let modes = [
        ("pooling_mode_mean_tokens", Some(Pooling::Mean)),
        ("pooling_mode_cls_token", Some(Pooling::Cls)),
        ("pooling_mode_max_tokens", Some(Pooling::Max)),
        ("pooling_mode_mean_sqrt_len_tokens", None),
        ("pooling_mode_weightedmean_tokens", None),
        ("pooling_mode_lasttoken", None),
    ];
    let set: Vec<_> = modes.iter().filter(|(key, _)| flag(key)).collect();
    match set.as_slice() {
        [(_, Some(pooling))] => Ok(*pooling),
        [(key, None)] => Err(invalid(format!("{key} is not supported (expected mean, cls or max pooling)"))),
        [] => Err(invalid("no pooling_mode_* flag is true".into())),
        several => Err(invalid(format!(
            "several modes are set ({}); only one is supported",
            several.iter().map(|(key, _)| *key).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Reads and parses a JSON file; `purpose` explains a missing file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path, purpose: &str) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            TextError::MissingFile { path: path.to_path_buf(), hint: format!("the model folder needs this file for {purpose}") }
        } else {
            TextError::Io { path: path.to_path_buf(), source }
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|source| TextError::Json { path: path.to_path_buf(), source })
}

/// Returns the path of `name` inside `dir`, or [`TextError::MissingFile`]
/// with `hint` when it is absent.
pub(crate) fn require_file(dir: &Path, name: &str, hint: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(TextError::MissingFile { path, hint: hint.into() })
    }
}
