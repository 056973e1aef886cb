//! Text to token ids with the Hugging Face `tokenizers` crate.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{Tokenizer, TruncationParams};

use super::error::{Result, TextError};

/// A tokenizer that turns one text into the ids a BERT encoder reads:
/// `[CLS]`, the word pieces, `[SEP]`, truncated to a maximum length and never
/// padded (batches are padded by the encoder).
pub struct TextTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    max_length: usize,
}

impl TextTokenizer {
    /// Loads the tokenizer of `model_dir`: `tokenizer.json` when present,
    /// else a BERT WordPiece tokenizer built from `vocab.txt` and the
    /// lower-casing flag of `tokenizer_config.json`.
    ///
    /// Truncation and padding stored in `tokenizer.json` are replaced:
    /// encodings are truncated to `max_length` tokens, special tokens
    /// included, and never padded.
    ///
    /// # Errors
    /// [`TextError::MissingFile`] when neither file exists, and
    /// [`TextError::Tokenizer`] when the file cannot be parsed or lacks the
    /// `[CLS]`, `[SEP]` or `[UNK]` token.
    pub fn from_dir(model_dir: &Path, max_length: usize) -> Result<Self> {
        let json_path = model_dir.join("tokenizer.json");
        let vocab_path = model_dir.join("vocab.txt");
        let (mut inner, path) = if json_path.is_file() {
            let tokenizer = Tokenizer::from_file(&json_path).map_err(|e| tokenizer_error(&json_path, e))?;
            (tokenizer, json_path)
        } else if vocab_path.is_file() {
            (wordpiece_from_vocab(model_dir, &vocab_path)?, vocab_path)
        } else {
            return Err(TextError::MissingFile {
                path: json_path,
                hint: "the model folder needs tokenizer.json (or a BERT vocab.txt) to tokenize text".into(),
            });
        };

        inner
            .with_truncation(Some(TruncationParams { max_length, ..Default::default() }))
            .map_err(|e| tokenizer_error(&path, e))?;
        inner.with_padding(None);
        Ok(TextTokenizer { inner, path, max_length })
    }

    /// Returns the maximum number of ids per text, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Returns the file the tokenizer was built from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the vocabulary entry of `id`, such as `"##ing"` or `"[CLS]"`.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Token ids of one text, with `[CLS]` and `[SEP]`.
    ///
    /// # Errors
    /// [`TextError::Tokenizer`] when the tokenizer fails on the text.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.inner.encode_fast(text, true).map_err(|e| tokenizer_error(&self.path, e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids of every text, computed in parallel, in input order.
    ///
    /// # Errors
    /// As [`TextTokenizer::encode`], for the first text that fails.
    pub fn encode_all<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        texts.par_iter().map(|text| self.encode(text.as_ref())).collect()
    }
}

fn tokenizer_error(path: &Path, error: impl std::fmt::Display) -> TextError {
    TextError::Tokenizer { path: path.to_path_buf(), message: error.to_string() }
}

/// Builds BERT's tokenizer from `vocab.txt`, for model folders saved before
/// `tokenizer.json` existed.
fn wordpiece_from_vocab(model_dir: &Path, vocab_path: &Path) -> Result<Tokenizer> {
    let settings = model_dir.join("tokenizer_config.json");
    let lowercase = if settings.is_file() {
        let value: Value = super::config::read_json(&settings, "its lower-casing flag")?;
        value.get("do_lower_case").and_then(Value::as_bool).unwrap_or(true)
    } else {
        true
    };

    let vocab = vocab_path.to_str().ok_or_else(|| tokenizer_error(vocab_path, "the path is not valid UTF-8"))?;
    let model = WordPiece::from_file(vocab)
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| tokenizer_error(vocab_path, e))?;
    let mut tokenizer = Tokenizer::new(model);
    let special_id = |token: &str| {
        tokenizer
            .token_to_id(token)
            .ok_or_else(|| tokenizer_error(vocab_path, format!("the vocabulary has no {token} token")))
    };
    let cls = special_id("[CLS]")?;
    let sep = special_id("[SEP]")?;
    special_id("[UNK]")?;

    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)))
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new(("[SEP]".into(), sep), ("[CLS]".into(), cls))));
    Ok(tokenizer)
}
