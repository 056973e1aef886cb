//! The BERT encoder's forward pass for inference: plain kernels on `f32`
//! buffers, [`PackedLinear`] for the linear layers and
//! [`attention::self_attention`] for the attention products, with no tape.

use std::path::Path;

use autograd::Tensor;
use rayon::prelude::*;

use super::aligned::AlignedFloats;
use super::attention;
use super::config::{require_file, BertConfig};
use super::error::{Result, TextError};
use super::kernels;
use super::linear::PackedLinear;
use super::weights::BertWeights;

/// Rows per rayon task in the row-wise kernels.
const ROWS_PER_TASK: usize = 32;

/// A BERT encoder with its weights.
pub struct BertModel {
    config: BertConfig,
    weights: BertWeights,
    layers: Vec<InferenceLayer>,
}

/// One Transformer layer, its linear maps packed for inference.
struct InferenceLayer {
    qkv: PackedLinear,
    attention_output: PackedLinear,
    attention_norm: (Tensor, Tensor),
    intermediate: PackedLinear,
    output: PackedLinear,
    output_norm: (Tensor, Tensor),
}

/// Buffers of one forward pass, kept between batches so that their memory
/// is allocated, and faulted in, once.
#[derive(Default)]
pub struct Workspace {
    hidden: AlignedFloats,
    qkv: AlignedFloats,
    context: AlignedFloats,
    projected: AlignedFloats,
    intermediate: AlignedFloats,
    lengths: Vec<usize>,
    seq_len: usize,
}

/// The last layer's states of a batch, `[batch, seq_len, hidden_size]`,
/// right-padded to the longest sequence. Padding rows hold no meaningful
/// values.
pub struct HiddenStates<'a> {
    states: &'a [f32],
    lengths: &'a [usize],
    seq_len: usize,
    hidden_size: usize,
}

impl HiddenStates<'_> {
    /// Number of sequences.
    pub fn batch_size(&self) -> usize {
        self.lengths.len()
    }

    /// Tokens of sequence `b`, padding excluded.
    pub fn len(&self, b: usize) -> usize {
        self.lengths[b]
    }

    /// True when the batch contains no sequence.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Returns the states of sequence `b`'s real tokens,
    /// `[len(b), hidden_size]` row-major.
    ///
    /// # Panics
    /// Panics if `b` is out of range.
    #[track_caller]
    pub fn sequence(&self, b: usize) -> &[f32] {
        let start = b * self.seq_len * self.hidden_size;
        &self.states[start..start + self.lengths[b] * self.hidden_size]
    }

    /// Width of each state.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }
}

impl BertModel {
    /// Packs checked weights for inference; [`BertWeights::from_file`]
    /// checks them against `config`. The layers move out of `weights`.
    pub fn new(config: BertConfig, mut weights: BertWeights) -> Self {
        let layers = std::mem::take(&mut weights.layers)
            .into_iter()
            .map(|layer| InferenceLayer {
                qkv: PackedLinear::new(layer.qkv_weight, &layer.qkv_bias),
                attention_output: PackedLinear::new(layer.attention_output_weight, &layer.attention_output_bias),
                attention_norm: (layer.attention_norm_weight, layer.attention_norm_bias),
                intermediate: PackedLinear::new(layer.intermediate_weight, &layer.intermediate_bias),
                output: PackedLinear::new(layer.output_weight, &layer.output_bias),
                output_norm: (layer.output_norm_weight, layer.output_norm_bias),
            })
            .collect();
        BertModel { config, weights, layers }
    }

    /// Reads `config.json` and `model.safetensors` from `model_dir`.
    ///
    /// # Errors
    /// As [`BertConfig::from_file`] and [`BertWeights::from_file`].
    pub fn from_dir(model_dir: &Path) -> Result<Self> {
        let config_path = require_file(model_dir, "config.json", "the model folder needs the architecture in a Hugging Face config.json")?;
        let config = BertConfig::from_file(&config_path)?;
        let weights = BertWeights::from_file(&model_dir.join("model.safetensors"), &config)?;
        Ok(BertModel::new(config, weights))
    }

    /// The architecture.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Runs the encoder on a batch of token-id sequences (each with its
    /// special tokens) and returns the last layer's states.
    ///
    /// Sequences are right-padded to the longest one. Each token attends only
    /// to the real tokens of its own sequence, which is what BERT's additive
    /// padding mask does: masked keys get a weight of exactly 0 after the
    /// softmax. Padding rows are not computed as queries.
    ///
    /// # Errors
    /// [`TextError::InvalidInput`] for an empty sequence or one longer than
    /// `max_position_embeddings`, and [`TextError::TokenId`] for an id
    /// outside the vocabulary.
    pub fn forward<'w, S: AsRef<[u32]> + Sync>(&self, sequences: &[S], workspace: &'w mut Workspace) -> Result<HiddenStates<'w>> {
        self.check_input(sequences)?;
        let h = self.config.hidden_size;
        let seq_len = sequences.iter().map(|s| s.as_ref().len()).max().unwrap_or(0);
        let rows = sequences.len() * seq_len;
        workspace.seq_len = seq_len;
        workspace.lengths.clear();
        workspace.lengths.extend(sequences.iter().map(|s| s.as_ref().len()));
        for buffer in [&mut workspace.hidden, &mut workspace.context, &mut workspace.projected] {
            buffer.resize(rows * h);
        }
        workspace.qkv.resize(rows * 3 * h);
        workspace.intermediate.resize(rows * self.config.intermediate_size);

        if rows == 0 {
            return Ok(HiddenStates { states: &[], lengths: &workspace.lengths, seq_len, hidden_size: h });
        }
        self.embed(sequences, workspace);
        for layer in &self.layers {
            self.attention_block(layer, workspace);
            self.feed_forward_block(layer, workspace);
        }

        Ok(HiddenStates {
            states: &workspace.hidden[..rows * h],
            lengths: &workspace.lengths,
            seq_len,
            hidden_size: h,
        })
    }

    fn check_input<S: AsRef<[u32]>>(&self, sequences: &[S]) -> Result<()> {
        let vocab_size = self.config.vocab_size;
        for (index, sequence) in sequences.iter().enumerate() {
            let sequence = sequence.as_ref();
            if sequence.is_empty() {
                return Err(TextError::InvalidInput(format!("sequence {index} of the batch has no token")));
            }
            if sequence.len() > self.config.max_position_embeddings {
                return Err(TextError::InvalidInput(format!(
                    "sequence {index} of the batch has {} tokens, more than max_position_embeddings {}",
                    sequence.len(),
                    self.config.max_position_embeddings
                )));
            }
            if let Some(&id) = sequence.iter().find(|&&id| id as usize >= vocab_size) {
                return Err(TextError::TokenId { path: self.weights.path.clone(), id, vocab_size });
            }
        }
        Ok(())
    }

    /// `hidden = LayerNorm(word + position + token type 0)` for every real
    /// token; padding rows become zero.
    fn embed<S: AsRef<[u32]> + Sync>(&self, sequences: &[S], workspace: &mut Workspace) {
        let h = self.config.hidden_size;
        let seq_len = workspace.seq_len;
        let w = &self.weights;
        let (word, position, token_type) = (w.word_embeddings.data(), w.position_embeddings.data(), w.token_type_embeddings.row(0));
        let eps = self.config.layer_norm_eps;

        workspace.hidden.par_chunks_mut(seq_len * h).zip(sequences.par_iter()).for_each(|(block, sequence)| {
            let sequence = sequence.as_ref();
            for (t, row) in block.chunks_exact_mut(h).enumerate() {
                let Some(&id) = sequence.get(t) else {
                    row.fill(0.0);
                    continue;
                };
                let word_row = &word[id as usize * h..(id as usize + 1) * h];
                let position_row = &position[t * h..(t + 1) * h];
                for j in 0..h {
                    row[j] = word_row[j] + position_row[j] + token_type[j];
                }
                kernels::add_layer_norm(row, &[], w.embedding_norm_weight.data(), w.embedding_norm_bias.data(), eps);
            }
        });
    }

    /// `hidden = LayerNorm(hidden + Attention(hidden))`.
    fn attention_block(&self, layer: &InferenceLayer, workspace: &mut Workspace) {
        let rows = workspace.lengths.len() * workspace.seq_len;

        // Q, K and V in one product.
        layer.qkv.forward(&workspace.hidden, rows, &mut workspace.qkv, None);
        self.self_attention(workspace);
        layer.attention_output.forward(&workspace.context, rows, &mut workspace.projected, None);

        let (weight, bias) = &layer.attention_norm;
        self.residual_layer_norm(workspace, weight.data(), bias.data());
    }

    /// `context = softmax(Q K^T / sqrt(head_dim)) V` for each sequence and
    /// head, over the sequence's real tokens only.
    fn self_attention(&self, workspace: &mut Workspace) {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let head_dim = self.config.head_dim();
        let scale = 1.0 / (head_dim as f32).sqrt();
        let seq_len = workspace.seq_len;
        let qkv = &workspace.qkv;

        workspace.context.par_chunks_mut(seq_len * h).zip(workspace.lengths.par_iter()).enumerate().for_each(
            |(b, (context, &len))| {
                let block = &qkv[b * seq_len * 3 * h..(b + 1) * seq_len * 3 * h];
                attention::self_attention(block, len, h, heads, scale, context);
                context[len * h..].fill(0.0);
            },
        );
    }

    /// `hidden = LayerNorm(hidden + FeedForward(hidden))`.
    fn feed_forward_block(&self, layer: &InferenceLayer, workspace: &mut Workspace) {
        let rows = workspace.lengths.len() * workspace.seq_len;
        layer.intermediate.forward(&workspace.hidden, rows, &mut workspace.intermediate, Some(self.config.hidden_act));
        layer.output.forward(&workspace.intermediate, rows, &mut workspace.projected, None);

        let (weight, bias) = &layer.output_norm;
        self.residual_layer_norm(workspace, weight.data(), bias.data());
    }

    /// `hidden = LayerNorm(hidden + projected)`, row by row.
    fn residual_layer_norm(&self, workspace: &mut Workspace, weight: &[f32], bias: &[f32]) {
        let h = self.config.hidden_size;
        let eps = self.config.layer_norm_eps;
        workspace
            .hidden
            .par_chunks_mut(h)
            .zip(workspace.projected.par_chunks(h))
            .with_min_len(ROWS_PER_TASK)
            .for_each(|(row, residual)| kernels::add_layer_norm(row, residual, weight, bias, eps));
    }
}
