//! Fine-tuning loop: Adam, validation every epoch, early stopping on
//! validation NDCG@10.

use crate::checkpoint::{write_checkpoint, Checkpoint};
use crate::data::{make_batches, Batching, Dataset};
use crate::error::ModelError;
use crate::evaluate::evaluate;
use crate::metrics::RankingMetrics;
use crate::model::{SequenceBatch, UniSRec};
use autograd::{Adam, AdamConfig, BufferPool, Graph, ParamStore, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// Settings of [`train`]; the defaults are UniSRec's fine-tuning settings.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Epochs without a better validation NDCG@10 before stopping.
    pub patience: usize,
    /// Training rows per batch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f32,
    /// Seed of batching, dropout and gate noise.
    pub seed: u64,
    /// Grouping of rows into batches.
    pub batching: Batching,
}

impl TrainConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`ModelError::InvalidInput`] naming the setting and its value.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::InvalidInput(m));
        if self.epochs == 0 {
            return bad("the number of epochs must be at least 1".into());
        }
        if self.patience == 0 {
            return bad("the patience must be at least 1 epoch".into());
        }
        if self.batch_size == 0 {
            return bad("the batch size must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("the learning rate must be a positive finite number, got {}", self.lr));
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { epochs: 300, patience: 10, batch_size: 2048, lr: 1e-3, seed: 2020, batching: Batching::Bucketed }
    }
}

/// Loss, time and validation metrics of one epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Sum of the batch losses (each a mean over its rows), as RecBole reports it.
    pub loss: f64,
    /// Mean loss per training row.
    pub mean_loss: f64,
    /// Wall time of training and validation, in seconds.
    pub seconds: f64,
    /// Training throughput, rows per second.
    pub sequences_per_second: f64,
    /// Validation metrics after the epoch.
    pub valid: RankingMetrics,
    /// True when validation NDCG@10 improved on every earlier epoch.
    pub improved: bool,
}

/// Receives progress from [`train`], for progress bars and metric files.
pub trait TrainObserver {
    /// Called when an epoch of `batches` batches starts.
    fn epoch_started(&mut self, _epoch: usize, _batches: usize) {}
    /// Called when a batch of `rows` rows finishes with mean loss `loss`.
    fn batch_finished(&mut self, _epoch: usize, _loss: f32, _rows: usize) {}
    /// Called when an epoch has finished and been validated.
    ///
    /// # Errors
    /// An error stops training.
    fn epoch_finished(&mut self, _report: &EpochReport) -> Result<(), ModelError> {
        Ok(())
    }
}

/// An observer that ignores everything.
pub struct Quiet;
impl TrainObserver for Quiet {}

/// The result of [`train`].
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// Epoch with the best validation NDCG@10.
    pub best_epoch: usize,
    /// Validation metrics of that epoch.
    pub best_valid: RankingMetrics,
    /// Every epoch's report.
    pub epochs: Vec<EpochReport>,
}

/// Trains `model` on `dataset.train`, validates on `dataset.valid` after
/// every epoch, and stops after `patience` epochs without a better NDCG@10.
///
/// On return `params` contains the best epoch's values. When `checkpoint` is
/// set, the best model is written there (atomically) whenever it improves.
///
/// # Errors
/// [`ModelError::NonFiniteLoss`] when the loss diverges (the checkpoint on
/// disk is then the last good one); errors from the data, the model or the
/// observer.
pub fn train(
    model: &UniSRec,
    params: &mut ParamStore,
    dataset: &Dataset,
    features: &Tensor,
    config: &TrainConfig,
    checkpoint: Option<PathBuf>,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome, ModelError> {
    if dataset.train.is_empty() || dataset.valid.is_empty() {
        return Err(ModelError::InvalidInput(format!("dataset {} has no training or no validation rows", dataset.name)));
    }
    config.validate()?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut optimizer = Adam::new(AdamConfig { lr: config.lr, ..AdamConfig::default() });
    let mut pool = BufferPool::new();
    let mut best: Option<(usize, RankingMetrics, ParamStore)> = None;
    let mut reports = Vec::new();
    let mut since_best = 0;

    for epoch in 1..=config.epochs {
        let start = Instant::now();
        let batches = make_batches(&dataset.train, config.batch_size, config.batching, &mut rng);
        observer.epoch_started(epoch, batches.len());
        let mut loss_sum = 0.0f64;
        let mut rows = 0usize;
        for (b, batch) in batches.iter().enumerate() {
            let seq = SequenceBatch { items: &batch.items, lengths: &batch.lengths, max_len: batch.max_len };
            let (loss, grads, returned) = {
                let mut g = Graph::with_pool(params, std::mem::take(&mut pool));
                let loss = model.training_loss(&mut g, features, seq, &batch.targets, &mut rng)?;
                let value = g.value(loss)[0];
                if !value.is_finite() {
                    return Err(ModelError::NonFiniteLoss { epoch, batch: b + 1, loss: value });
                }
                let grads = g.backward(loss)?;
                (value, grads, g.into_pool())
            };
            pool = returned;
            optimizer.step(params, &grads);
            for buf in grads.into_buffers() {
                pool.give(buf);
            }
            loss_sum += loss as f64;
            rows += batch.rows.len();
            observer.batch_finished(epoch, loss, batch.rows.len());
        }
        let train_seconds = start.elapsed().as_secs_f64();
        let valid = evaluate(model, params, features, &dataset.valid)?.metrics;
        let improved = best.as_ref().is_none_or(|(_, m, _)| valid.ndcg_10 > m.ndcg_10);
        let report = EpochReport {
            epoch,
            loss: loss_sum,
            mean_loss: loss_sum / batches.len().max(1) as f64,
            seconds: start.elapsed().as_secs_f64(),
            sequences_per_second: rows as f64 / train_seconds.max(1e-9),
            valid: valid.clone(),
            improved,
        };
        tracing::info!(
            epoch,
            loss = report.loss,
            seconds = report.seconds,
            sequences_per_s = report.sequences_per_second,
            valid_ndcg_10 = valid.ndcg_10,
            valid_hit_10 = valid.hit_10,
            improved,
            "epoch finished"
        );
        if improved {
            if let Some((_, p)) = params.iter().find(|(_, p)| !p.value.is_finite()) {
                return Err(ModelError::InvalidInput(format!(
                    "parameter {} became non-finite in epoch {epoch}; lower the learning rate (the last good checkpoint is kept)",
                    p.name
                )));
            }
            since_best = 0;
            if let Some(path) = &checkpoint {
                let ck = Checkpoint {
                    config: model.config.clone(),
                    params: params.clone(),
                    epoch,
                    valid_ndcg_10: valid.ndcg_10,
                    optimizer: Some(optimizer.clone()),
                };
                write_checkpoint(path, &ck)?;
            }
            best = Some((epoch, valid, params.clone()));
        } else {
            since_best += 1;
        }
        observer.epoch_finished(&report)?;
        reports.push(report);
        if since_best >= config.patience {
            tracing::info!(epoch, patience = config.patience, "early stopping: no improvement in validation NDCG@10");
            break;
        }
    }
    let (best_epoch, best_valid, best_params) = best.expect("at least one epoch ran");
    *params = best_params;
    Ok(TrainOutcome { best_epoch, best_valid, epochs: reports })
}
