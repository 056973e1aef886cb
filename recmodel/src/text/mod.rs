//! The text encoder: item text to feature vectors with a BERT-family model,
//! in pure Rust.
//!
//! A [`TextEncoder`] loads a model folder in the Hugging Face layout
//! (`config.json`, `model.safetensors`, `tokenizer.json`) and follows the
//! sentence-transformers files when they are present: the maximum length of
//! `sentence_bert_config.json`, the pooling mode of the pooling module, and
//! L2 normalisation when `modules.json` lists a `Normalize` module. Tokens
//! come from the Hugging Face `tokenizers` crate. The forward pass runs on
//! this project's tensors, without a tape: linear layers in [`PackedLinear`]
//! (an AVX-512 kernel on weights packed at load time, else
//! [`autograd::gemm::sgemm`]) and attention in a kernel that reads its
//! operands in place.
//!
//! [`load_item_texts`] builds each item's text from a dataset's fields, in
//! item-index order, so that row `i` of the output is item `i`'s feature
//! vector, the layout UniSRec's feature files use.
//!
//! ```no_run
//! use std::path::Path;
//! use recmodel::text::{load_item_texts, TextEncoder};
//!
//! let encoder = TextEncoder::load(Path::new("models/all-MiniLM-L6-v2"))?;
//! let items = load_item_texts(Path::new("data/scientific"))?;
//! let features = encoder.embed(&items.texts, 8, |_| {})?;
//! assert_eq!(features.len(), items.texts.len() * encoder.dim());
//! # Ok::<(), recmodel::text::TextError>(())
//! ```

mod aligned;
mod attention;
mod bert;
mod config;
mod encoder;
mod error;
mod item_text;
pub mod kernels;
mod linear;
mod pooling;
mod tokenizer;
mod weights;

pub use bert::{BertModel, HiddenStates, Workspace};
pub use config::{Activation, BertConfig, Pooling, SentenceConfig};
pub use encoder::TextEncoder;
pub use error::{Result, TextError};
pub use linear::PackedLinear;
pub use item_text::{amazon_item_text, clean_field, load_item_texts, word_drop, word_drop_texts, ItemTexts};
pub use pooling::pool_into;
pub use tokenizer::TextTokenizer;
pub use weights::{BertWeights, LayerWeights};
