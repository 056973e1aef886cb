//! The SASRec Transformer encoder with RecBole's post-LN blocks.

use super::layers::{Binder, Init, LayerNorm, Linear};
use crate::error::ModelError;
use autograd::{Graph, SequenceOffsets, Var};
use rand_chacha::ChaCha12Rng;
use rand::Rng;

/// One block: `LN(x + Dropout(Attn(x)))`, then `LN(h + Dropout(FFN(h)))`.
#[derive(Clone, Debug)]
pub struct TransformerLayer {
    /// Query projection.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Output projection of the attention.
    pub attn_out: Linear,
    /// LayerNorm after attention.
    pub attn_norm: LayerNorm,
    /// First feed-forward projection.
    pub ffn_in: Linear,
    /// Second feed-forward projection.
    pub ffn_out: Linear,
    /// LayerNorm after the feed-forward.
    pub ffn_norm: LayerNorm,
}

/// Sizes and dropout rates of the encoder.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EncoderShape {
    pub hidden: usize,
    pub inner: usize,
    pub heads: usize,
    pub hidden_dropout: f32,
    pub attn_dropout: f32,
    pub eps: f32,
}

impl TransformerLayer {
    fn names(i: usize) -> [String; 8] {
        let p = format!("trm_encoder.layer.{i}");
        [
            format!("{p}.multi_head_attention.query"),
            format!("{p}.multi_head_attention.key"),
            format!("{p}.multi_head_attention.value"),
            format!("{p}.multi_head_attention.dense"),
            format!("{p}.multi_head_attention.LayerNorm"),
            format!("{p}.feed_forward.dense_1"),
            format!("{p}.feed_forward.dense_2"),
            format!("{p}.feed_forward.LayerNorm"),
        ]
    }

    pub(crate) fn init(init: &mut Init<'_>, i: usize, s: &EncoderShape) -> Self {
        let n = Self::names(i);
        TransformerLayer {
            query: init.linear(&n[0], s.hidden, s.hidden, true),
            key: init.linear(&n[1], s.hidden, s.hidden, true),
            value: init.linear(&n[2], s.hidden, s.hidden, true),
            attn_out: init.linear(&n[3], s.hidden, s.hidden, true),
            attn_norm: init.layer_norm(&n[4], s.hidden),
            ffn_in: init.linear(&n[5], s.inner, s.hidden, true),
            ffn_out: init.linear(&n[6], s.hidden, s.inner, true),
            ffn_norm: init.layer_norm(&n[7], s.hidden),
        }
    }

    pub(crate) fn bind(b: &Binder<'_>, i: usize, s: &EncoderShape) -> Result<Self, ModelError> {
        let n = Self::names(i);
        Ok(TransformerLayer {
            query: b.linear(&n[0], s.hidden, s.hidden, true)?,
            key: b.linear(&n[1], s.hidden, s.hidden, true)?,
            value: b.linear(&n[2], s.hidden, s.hidden, true)?,
            attn_out: b.linear(&n[3], s.hidden, s.hidden, true)?,
            attn_norm: b.layer_norm(&n[4], s.hidden)?,
            ffn_in: b.linear(&n[5], s.inner, s.hidden, true)?,
            ffn_out: b.linear(&n[6], s.hidden, s.inner, true)?,
            ffn_norm: b.layer_norm(&n[7], s.hidden)?,
        })
    }

    /// Applies the block to packed rows `x` `[total, hidden]`.
    pub(crate) fn forward(
        &self,
        g: &mut Graph<'_>,
        x: Var,
        offsets: &SequenceOffsets,
        s: &EncoderShape,
        mut rng: Option<&mut ChaCha12Rng>,
    ) -> autograd::Result<Var> {
        let mut seed = || rng.as_mut().map(|r| r.gen::<u64>());
        let q = self.query.forward(g, x)?;
        let k = self.key.forward(g, x)?;
        let v = self.value.forward(g, x)?;
        let attn_seed = seed();
        let (p_attn, attn_seed) = match attn_seed {
            Some(sd) => (s.attn_dropout, sd),
            None => (0.0, 0),
        };
        let ctx = g.causal_attention(q, k, v, offsets, s.heads, p_attn, attn_seed)?;
        let mut a = self.attn_out.forward(g, ctx)?;
        if let Some(sd) = seed() {
            a = g.dropout(a, s.hidden_dropout, sd)?;
        }
        let res = g.add(a, x)?;
        let h = self.attn_norm.forward(g, res, s.eps)?;

        let f = self.ffn_in.forward(g, h)?;
        let f = g.gelu(f);
        let mut f = self.ffn_out.forward(g, f)?;
        if let Some(sd) = seed() {
            f = g.dropout(f, s.hidden_dropout, sd)?;
        }
        let res = g.add(f, h)?;
        self.ffn_norm.forward(g, res, s.eps)
    }
}
