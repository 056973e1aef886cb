//! Full-ranking evaluation of a UniSRec model.

use crate::data::SequenceExample;
use crate::error::ModelError;
use crate::metrics::{target_rank, RankingMetrics};
use crate::model::{SequenceBatch, UniSRec};
use autograd::gemm::{sgemm, MatRef};
use autograd::{BufferPool, Graph, ParamStore, Tensor};
use rayon::prelude::*;

/// Metrics of one split and the target rank of every row, in row order.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// HIT and NDCG at 10 and 50.
    pub metrics: RankingMetrics,
    /// 1-based rank of each row's target among all items.
    pub ranks: Vec<usize>,
}

/// Rows scored per pass; bounds the score matrix to `rows x num_items` floats.
pub const EVAL_BATCH_SIZE: usize = 2048;

/// Normalised item representations `[num_items, hidden]` in evaluation mode.
///
/// # Errors
/// When the features do not fit the model.
pub fn item_table(model: &UniSRec, params: &ParamStore, features: &Tensor) -> Result<Tensor, ModelError> {
    let mut g = Graph::inference(params);
    let items = model.encode_items(&mut g, features, None)?;
    let items = g.l2_normalize(items, 1e-12)?;
    Ok(g.tensor(items))
}

/// Ranks every item for each row of `examples` by cosine similarity to the
/// sequence representation and scores the rank of the target.
///
/// Ranking is over all items; history items are not excluded, and ties
/// count against the target.
///
/// # Errors
/// When a history is empty or contains an item out of range, or the features
/// do not fit the model.
pub fn evaluate(model: &UniSRec, params: &ParamStore, features: &Tensor, examples: &[SequenceExample]) -> Result<Evaluation, ModelError> {
    if examples.is_empty() {
        return Err(ModelError::InvalidInput("no rows to evaluate: the split is empty".into()));
    }
    let items = item_table(model, params, features)?;
    let num_items = model.config.num_items;
    let hidden = model.config.hidden_size;
    let mut ranks = Vec::with_capacity(examples.len());
    let mut pool = BufferPool::new();
    let mut scores = Vec::new();
    for chunk in examples.chunks(EVAL_BATCH_SIZE) {
        for (i, ex) in chunk.iter().enumerate() {
            if ex.target as usize >= num_items {
                return Err(ModelError::InvalidInput(format!(
                    "row {} (user {}) has target item {}, out of range for {num_items} items",
                    ranks.len() + i,
                    ex.user,
                    ex.target
                )));
            }
        }
        let max_len = chunk.iter().map(|e| e.history.len()).max().unwrap_or(0);
        let mut padded = vec![0u32; chunk.len() * max_len];
        let mut lengths = Vec::with_capacity(chunk.len());
        for (r, ex) in chunk.iter().enumerate() {
            padded[r * max_len..r * max_len + ex.history.len()].copy_from_slice(&ex.history);
            lengths.push(ex.history.len());
        }
        let mut g = Graph::with_pool(params, std::mem::take(&mut pool));
        g.set_grad_enabled(false);
        let batch = SequenceBatch { items: &padded, lengths: &lengths, max_len };
        let seq = model.encode_sequences(&mut g, features, batch, None)?;
        let seq = g.l2_normalize(seq, 1e-12)?;
        scores.resize(chunk.len() * num_items, 0.0);
        sgemm(1.0, MatRef::new(g.value(seq), chunk.len(), hidden), MatRef::new(items.data(), num_items, hidden).t(), 0.0, &mut scores, num_items);
        pool = g.into_pool();
        let chunk_ranks: Vec<usize> = scores
            .par_chunks(num_items)
            .zip(chunk.par_iter())
            .map(|(row, ex)| target_rank(row, ex.target as usize))
            .collect();
        ranks.extend(chunk_ranks);
    }
    Ok(Evaluation { metrics: RankingMetrics::from_ranks(&ranks), ranks })
}
