//! Texts to feature vectors: tokenizer, BERT encoder and pooling together.

use std::path::Path;
use std::sync::Mutex;

use rayon::prelude::*;

use super::bert::{BertModel, Workspace};
use super::config::{require_file, BertConfig, Pooling, SentenceConfig};
use super::error::Result;
use super::pooling::pool_into;
use super::tokenizer::TextTokenizer;

/// A sentence encoder loaded from a model folder in the Hugging Face
/// layout, with the sentence-transformers files when present.
///
/// Files read: `config.json`, `model.safetensors`, `tokenizer.json` (or
/// `vocab.txt`), and optionally `sentence_bert_config.json`, `modules.json`
/// and the pooling module's `config.json`.
pub struct TextEncoder {
    tokenizer: TextTokenizer,
    model: BertModel,
    pooling: Pooling,
    normalize: bool,
}

impl TextEncoder {
    /// Loads the encoder of `model_dir` with the maximum length, pooling and
    /// normalisation its files prescribe (see [`SentenceConfig`]).
    ///
    /// # Errors
    /// A [`super::TextError`] naming the file (and tensor) that is missing or
    /// invalid.
    pub fn load(model_dir: &Path) -> Result<Self> {
        let config_path = require_file(model_dir, "config.json", "the model folder needs the architecture in a Hugging Face config.json")?;
        let bert = BertConfig::from_file(&config_path)?;
        let sentence = SentenceConfig::from_dir(model_dir, &bert)?;
        let tokenizer = TextTokenizer::from_dir(model_dir, sentence.max_seq_length)?;
        let model = BertModel::from_dir(model_dir)?;
        tracing::info!(
            model = %model_dir.display(),
            layers = bert.num_hidden_layers,
            hidden_size = bert.hidden_size,
            max_seq_length = sentence.max_seq_length,
            model_pooling = %sentence.pooling,
            model_normalize = sentence.normalize,
            "loaded text encoder"
        );
        Ok(TextEncoder { tokenizer, model, pooling: sentence.pooling, normalize: sentence.normalize })
    }

    /// Replaces the pooling mode read from the model folder.
    pub fn set_pooling(&mut self, pooling: Pooling) {
        self.pooling = pooling;
    }

    /// Turns L2 normalisation of the output on or off.
    pub fn set_normalize(&mut self, normalize: bool) {
        self.normalize = normalize;
    }

    /// Returns the pooling mode in use.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// True when outputs are scaled to unit L2 norm.
    pub fn normalize(&self) -> bool {
        self.normalize
    }

    /// Width of each output vector (the model's `hidden_size`).
    pub fn dim(&self) -> usize {
        self.model.config().hidden_size
    }

    /// Returns the tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Returns the BERT encoder.
    pub fn model(&self) -> &BertModel {
        &self.model
    }

    /// Embeds every text; returns `[texts.len(), dim]` row-major, row `i`
    /// for `texts[i]`. See [`TextEncoder::embed_tokens`] for batching and
    /// `progress`.
    ///
    /// # Errors
    /// [`super::TextError::Tokenizer`] when tokenization fails.
    pub fn embed<S: AsRef<str> + Sync>(&self, texts: &[S], batch_size: usize, progress: impl Fn(usize) + Sync) -> Result<Vec<f32>> {
        let sequences = self.tokenizer.encode_all(texts)?;
        self.embed_tokens(&sequences, batch_size, progress)
    }

    /// Embeds token-id sequences (with their special tokens); returns
    /// `[sequences.len(), dim]` row-major in input order.
    ///
    /// Sequences are sorted by length, longest first, and cut into batches of
    /// `batch_size` (at least 1), so each batch is padded to nearly its own
    /// length. Batches run in parallel on rayon's threads as well as within
    /// themselves: a thread that waits for its share of one batch takes up
    /// another batch instead of idling, which matters most when other
    /// processes compete for the cores. The result does not depend on the
    /// thread count. `progress` is called after each batch with the number
    /// of sequences it held, from whichever thread ran it.
    ///
    /// # Errors
    /// As [`BertModel::forward`], for the first failing batch.
    pub fn embed_tokens<S: AsRef<[u32]> + Sync>(
        &self,
        sequences: &[S],
        batch_size: usize,
        progress: impl Fn(usize) + Sync,
    ) -> Result<Vec<f32>> {
        let dim = self.dim();
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(sequences[i].as_ref().len()));
        let batches: Vec<&[usize]> = order.chunks(batch_size.max(1)).collect();

        // Workspaces return to this pool after each batch, so their buffers
        // are reused instead of faulted in again.
        let workspaces: Mutex<Vec<Workspace>> = Mutex::new(Vec::new());
        let pooled: Vec<Result<Vec<f32>>> = batches
            .par_iter()
            .with_max_len(1)
            .map(|indices| {
                let mut workspace = workspaces.lock().map(|mut pool| pool.pop()).unwrap_or(None).unwrap_or_default();
                let batch: Vec<&[u32]> = indices.iter().map(|&i| sequences[i].as_ref()).collect();
                let rows = self.pool_batch(&batch, &mut workspace);
                if let Ok(mut pool) = workspaces.lock() {
                    pool.push(workspace);
                }
                progress(indices.len());
                rows
            })
            .collect();

        let mut output = vec![0.0f32; sequences.len() * dim];
        for (indices, rows) in batches.iter().zip(pooled) {
            for (&i, row) in indices.iter().zip(rows?.chunks_exact(dim)) {
                output[i * dim..(i + 1) * dim].copy_from_slice(row);
            }
        }
        Ok(output)
    }

    /// Runs one batch and returns its pooled vectors, `[batch.len(), dim]`.
    fn pool_batch(&self, batch: &[&[u32]], workspace: &mut Workspace) -> Result<Vec<f32>> {
        let dim = self.dim();
        let states = self.model.forward(batch, workspace)?;
        let mut rows = vec![0.0f32; batch.len() * dim];
        for (b, row) in rows.chunks_exact_mut(dim).enumerate() {
            pool_into(&states, b, self.pooling, self.normalize, row);
        }
        Ok(rows)
    }
}
