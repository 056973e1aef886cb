//! UniSRec: text-based item representations through a MoE adapter, encoded
//! by a SASRec Transformer.

use super::config::{Setting, UniSRecConfig};
use super::layers::{Binder, Init, LayerNorm};
use super::moe::MoeAdapter;
use super::sasrec::{EncoderShape, TransformerLayer};
use crate::error::ModelError;
use autograd::{Graph, ParamId, ParamStore, SequenceOffsets, Tensor, Var};
use rand_chacha::ChaCha12Rng;
use rand::{Rng, SeedableRng};

/// The floor of the L2 norm in cosine similarity, as in `F.normalize`.
const NORM_EPS: f32 = 1e-12;

/// Item sequences of a batch, right-padded to `max_len`.
#[derive(Clone, Copy, Debug)]
pub struct SequenceBatch<'a> {
    /// Row-major `[lengths.len(), max_len]` item indices; entries past a
    /// row's length are padding and never read.
    pub items: &'a [u32],
    /// Number of real items per row.
    pub lengths: &'a [usize],
    /// Row width of `items`.
    pub max_len: usize,
}

/// Sequences packed back to back without padding, the layout the encoder runs on.
struct Packed {
    items: Vec<usize>,
    positions: Vec<usize>,
    offsets: SequenceOffsets,
}

/// The UniSRec model: parameter handles into a [`ParamStore`] plus its configuration.
///
/// ```
/// use recmodel::model::{Setting, UniSRec, UniSRecConfig, SequenceBatch};
/// use autograd::{Graph, Tensor};
/// let mut config = UniSRecConfig::new(10, 8, Setting::Transductive);
/// config.hidden_size = 16;
/// config.inner_size = 16;
/// let (model, store) = UniSRec::init(config, 1);
/// let features = Tensor::full(&[10, 8], 0.1);
/// let mut g = Graph::inference(&store);
/// let batch = SequenceBatch { items: &[3, 0, 5, 2], lengths: &[1, 2], max_len: 2 };
/// let seq = model.encode_sequences(&mut g, &features, batch, None).unwrap();
/// assert_eq!(g.shape(seq), &[2, 16]);
/// ```
#[derive(Clone, Debug)]
pub struct UniSRec {
    /// Architecture.
    pub config: UniSRecConfig,
    /// Text-feature adapter.
    pub adapter: MoeAdapter,
    /// Learned positions `[max_seq_len, hidden]`.
    pub position_embedding: ParamId,
    /// Item-ID table `[num_items, hidden]`, transductive setting only.
    pub item_embedding: Option<ParamId>,
    /// LayerNorm on the input sum.
    pub input_norm: LayerNorm,
    /// Transformer blocks.
    pub layers: Vec<TransformerLayer>,
}

impl UniSRec {
    fn shape(c: &UniSRecConfig) -> EncoderShape {
        EncoderShape {
            hidden: c.hidden_size,
            inner: c.inner_size,
            heads: c.num_heads,
            hidden_dropout: c.hidden_dropout,
            attn_dropout: c.attn_dropout,
            eps: c.layer_norm_eps,
        }
    }

    /// Creates a model and its parameters with UniSRec's initialisation,
    /// deterministic in `seed`.
    ///
    /// Parameter names follow UniSRec's PyTorch state dict.
    pub fn init(config: UniSRecConfig, seed: u64) -> (Self, ParamStore) {
        let mut store = ParamStore::new();
        let mut rng = ChaCha12Rng::seed_from_u64(seed);
        let mut init = Init { store: &mut store, rng: &mut rng, std: config.initializer_range };
        let h = config.hidden_size;
        let item_embedding = match config.setting {
            Setting::Transductive => Some(init.normal("item_embedding.weight", &[config.num_items, h])),
            Setting::Inductive => None,
        };
        let position_embedding = init.normal("position_embedding.weight", &[config.max_seq_len, h]);
        let shape = Self::shape(&config);
        let layers = (0..config.num_layers).map(|i| TransformerLayer::init(&mut init, i, &shape)).collect();
        let input_norm = init.layer_norm("LayerNorm", h);
        let adapter = MoeAdapter::init(&mut init, config.num_experts, config.text_dim, h, config.adapter_dropout);
        (UniSRec { config, adapter, position_embedding, item_embedding, input_norm, layers }, store)
    }

    /// Binds a model to parameters loaded from a checkpoint or weight file.
    ///
    /// # Errors
    /// [`ModelError::MissingParameter`] or [`ModelError::ParameterShape`]
    /// when `store` does not match `config`.
    pub fn bind(config: UniSRecConfig, store: &ParamStore) -> Result<Self, ModelError> {
        let b = Binder { store };
        let h = config.hidden_size;
        let item_embedding = match config.setting {
            Setting::Transductive => Some(b.get("item_embedding.weight", &[config.num_items, h])?),
            Setting::Inductive => None,
        };
        let position_embedding = b.get("position_embedding.weight", &[config.max_seq_len, h])?;
        let shape = Self::shape(&config);
        let layers = (0..config.num_layers).map(|i| TransformerLayer::bind(&b, i, &shape)).collect::<Result<_, _>>()?;
        let input_norm = b.layer_norm("LayerNorm", h)?;
        let adapter = MoeAdapter::bind(&b, config.num_experts, config.text_dim, h, config.adapter_dropout)?;
        Ok(UniSRec { config, adapter, position_embedding, item_embedding, input_norm, layers })
    }

    fn check_features(&self, features: &Tensor) -> Result<(), ModelError> {
        let expected = [self.config.num_items, self.config.text_dim];
        if features.shape() != expected {
            return Err(ModelError::InvalidInput(format!(
                "feature table has shape {:?}, the model expects {:?}",
                features.shape(),
                expected
            )));
        }
        Ok(())
    }

    fn pack(&self, batch: SequenceBatch<'_>) -> Result<Packed, ModelError> {
        let rows = batch.lengths.len();
        if batch.items.len() != rows * batch.max_len {
            return Err(ModelError::InvalidInput(format!(
                "batch of {rows} rows of width {} has {} items, expected rows x width",
                batch.max_len,
                batch.items.len()
            )));
        }
        let mut items = Vec::new();
        let mut positions = Vec::new();
        let mut lengths = Vec::with_capacity(rows);
        for (r, &len) in batch.lengths.iter().enumerate() {
            if len == 0 || len > batch.max_len {
                return Err(ModelError::InvalidInput(format!("row {r} has length {len} (allowed 1 to {})", batch.max_len)));
            }
            // Longer histories keep their most recent items, as RecBole does.
            let start = len.saturating_sub(self.config.max_seq_len);
            for (p, &item) in batch.items[r * batch.max_len + start..r * batch.max_len + len].iter().enumerate() {
                if item as usize >= self.config.num_items {
                    return Err(ModelError::InvalidInput(format!(
                        "row {r} contains item {item}, out of range for {} items",
                        self.config.num_items
                    )));
                }
                items.push(item as usize);
                positions.push(p);
            }
            lengths.push(len - start);
        }
        Ok(Packed { items, positions, offsets: SequenceOffsets::from_lengths(&lengths) })
    }

    /// Representations of all items `[num_items, hidden]`: the adapter on
    /// the text features, plus the ID embedding in the transductive setting.
    /// With `rng`, in training mode.
    ///
    /// # Errors
    /// When `features` does not have shape `[num_items, text_dim]`.
    pub fn encode_items(&self, g: &mut Graph<'_>, features: &Tensor, rng: Option<&mut ChaCha12Rng>) -> Result<Var, ModelError> {
        self.check_features(features)?;
        let x = g.constant_from(features.shape(), features.data())?;
        let mut items = self.adapter.forward(g, x, rng)?;
        if let Some(id) = self.item_embedding {
            let table = g.param(id);
            items = g.add(items, table)?;
        }
        Ok(items)
    }

    /// Sequence representations `[rows, hidden]`: the Transformer output at
    /// each row's last item. With `rng`, in training mode.
    ///
    /// # Errors
    /// When the batch is malformed (empty row, item out of range) or the
    /// features have the wrong shape.
    pub fn encode_sequences(
        &self,
        g: &mut Graph<'_>,
        features: &Tensor,
        batch: SequenceBatch<'_>,
        mut rng: Option<&mut ChaCha12Rng>,
    ) -> Result<Var, ModelError> {
        self.check_features(features)?;
        let packed = self.pack(batch)?;
        let d = self.config.text_dim;
        let n = packed.items.len();
        let mut rows = g.alloc(n * d);
        for (dst, &item) in rows.chunks_mut(d).zip(&packed.items) {
            dst.copy_from_slice(features.row(item));
        }
        let x = g.constant(Tensor::new(vec![n, d], rows)?);
        let mut h = self.adapter.forward(g, x, rng.as_deref_mut())?;
        let pos_table = g.param(self.position_embedding);
        let pos = g.index_select(pos_table, 0, &packed.positions)?;
        h = g.add(h, pos)?;
        if let Some(id) = self.item_embedding {
            let table = g.param(id);
            let ids = g.embedding(table, &packed.items)?;
            h = g.add(h, ids)?;
        }
        h = self.input_norm.forward(g, h, self.config.layer_norm_eps)?;
        if let Some(r) = rng.as_deref_mut() {
            h = g.dropout(h, self.config.hidden_dropout, r.gen())?;
        }
        let shape = Self::shape(&self.config);
        for layer in &self.layers {
            h = layer.forward(g, h, &packed.offsets, &shape, rng.as_deref_mut())?;
        }
        Ok(g.index_select(h, 0, &packed.offsets.last_rows())?)
    }

    /// Computes the fine-tuning loss of one batch: softmax cross-entropy over
    /// all items of the cosine similarities divided by the temperature.
    ///
    /// # Errors
    /// As [`UniSRec::encode_sequences`], and when a target is out of range.
    pub fn training_loss(
        &self,
        g: &mut Graph<'_>,
        features: &Tensor,
        batch: SequenceBatch<'_>,
        targets: &[u32],
        rng: &mut ChaCha12Rng,
    ) -> Result<Var, ModelError> {
        let seq = self.encode_sequences(g, features, batch, Some(rng))?;
        let items = self.encode_items(g, features, Some(rng))?;
        let seq = g.l2_normalize(seq, NORM_EPS)?;
        let items = g.l2_normalize(items, NORM_EPS)?;
        let cos = g.matmul_t(seq, items, false, true)?;
        let logits = g.scale(cos, 1.0 / self.config.temperature);
        let targets: Vec<usize> = targets.iter().map(|&t| t as usize).collect();
        Ok(g.cross_entropy(logits, &targets)?)
    }
}
