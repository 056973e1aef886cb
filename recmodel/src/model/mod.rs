//! The UniSRec model and its building blocks.

mod config;
mod layers;
mod moe;
mod sasrec;
mod unisrec;

pub use config::{Setting, UniSRecConfig};
pub use layers::{LayerNorm, Linear};
pub use moe::MoeAdapter;
pub use sasrec::TransformerLayer;
pub use unisrec::{SequenceBatch, UniSRec};
