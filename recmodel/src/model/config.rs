//! Hyperparameters of UniSRec.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Whether items are represented by their text alone or by text and a
/// learned ID embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Setting {
    /// Text features plus an item-ID embedding (UniSRec's `transductive_ft`).
    Transductive,
    /// Text features only (UniSRec's `inductive_ft`), so unseen items can be scored.
    Inductive,
}

impl FromStr for Setting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "transductive" => Ok(Setting::Transductive),
            "inductive" => Ok(Setting::Inductive),
            other => Err(format!("unknown setting {other:?}: expected transductive or inductive")),
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Setting::Transductive => "transductive",
            Setting::Inductive => "inductive",
        })
    }
}

/// UniSRec's architecture; the defaults are the values UniSRec's published
/// configuration uses for fine-tuning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UniSRecConfig {
    /// Number of items (rows of the feature table).
    pub num_items: usize,
    /// Width of the item text features.
    pub text_dim: usize,
    /// Transductive or inductive.
    pub setting: Setting,
    /// Width of the Transformer.
    pub hidden_size: usize,
    /// Number of Transformer layers.
    pub num_layers: usize,
    /// Attention heads per layer.
    pub num_heads: usize,
    /// Width of the feed-forward layer.
    pub inner_size: usize,
    /// Dropout on embeddings and sublayer outputs.
    pub hidden_dropout: f32,
    /// Dropout on attention probabilities.
    pub attn_dropout: f32,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f32,
    /// Maximum sequence length (learned positions).
    pub max_seq_len: usize,
    /// Experts of the MoE adapter.
    pub num_experts: usize,
    /// Dropout on the adapter's input, drawn separately for each expert.
    pub adapter_dropout: f32,
    /// Temperature of the cosine logits in training.
    pub temperature: f32,
    /// Standard deviation of the normal initialisation of weights.
    pub initializer_range: f32,
}

impl UniSRecConfig {
    /// UniSRec's defaults for `num_items` items with `text_dim`-wide features.
    pub fn new(num_items: usize, text_dim: usize, setting: Setting) -> Self {
        UniSRecConfig {
            num_items,
            text_dim,
            setting,
            hidden_size: 300,
            num_layers: 2,
            num_heads: 2,
            inner_size: 256,
            hidden_dropout: 0.5,
            attn_dropout: 0.5,
            layer_norm_eps: 1e-12,
            max_seq_len: 50,
            num_experts: 8,
            adapter_dropout: 0.2,
            temperature: 0.07,
            initializer_range: 0.02,
        }
    }
}
