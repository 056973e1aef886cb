//! Fine-tuning loop: Adam, validation every epoch, early stopping on
//! validation NDCG@10.

use crate::checkpoint::{read_framed, write_checkpoint, write_framed, Checkpoint};
use crate::data::{make_batches, Batching, Dataset};
use crate::error::ModelError;
use crate::evaluate::evaluate;
use crate::metrics::RankingMetrics;
use crate::model::{SequenceBatch, UniSRec};
use autograd::{Adam, AdamConfig, BufferPool, Graph, ParamStore, Tensor};
use rand_chacha::ChaCha12Rng;
use rand::SeedableRng;
use std::path::Path;
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
/// [`train_resumable`] also saves the state that a killed run needs to
/// continue.
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
    let files = RunFiles { best: checkpoint, ..RunFiles::default() };
    train_resumable(model, params, dataset, features, config, &files, None, observer)
}

/// Files that [`train_resumable`] keeps up to date.
#[derive(Clone, Debug, Default)]
pub struct RunFiles {
    /// The best model so far, rewritten whenever validation improves.
    pub best: Option<PathBuf>,
    /// The [`TrainState`] after the last finished epoch.
    pub state: Option<PathBuf>,
    /// Settings of the run as `(name, value)` pairs, stored in each state
    /// so that a resume can check it continues the same run.
    pub settings: Vec<(String, String)>,
}

/// Everything a run needs to continue after its last finished epoch as if
/// it had not stopped: parameters, optimizer moments, the random generator's
/// position, the best epoch so far and the epoch reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Settings of the run, from [`RunFiles::settings`].
    pub settings: Vec<(String, String)>,
    /// Epochs finished.
    pub epochs_done: usize,
    /// Parameters after the last finished epoch.
    pub params: ParamStore,
    /// Optimizer after the last finished epoch.
    pub optimizer: Adam,
    rng: RngState,
    /// Epoch with the best validation NDCG@10 so far.
    pub best_epoch: usize,
    /// Its validation metrics.
    pub best_valid: RankingMetrics,
    /// Its parameters.
    pub best_params: ParamStore,
    /// Epochs since the best one.
    pub since_best: usize,
    /// Reports of the finished epochs.
    pub reports: Vec<EpochReport>,
}

/// The ChaCha generator's key, stream and position in 32-bit words.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RngState {
    seed: [u8; 32],
    stream: u64,
    word_pos: u128,
}

impl RngState {
    fn save(rng: &ChaCha12Rng) -> Self {
        RngState { seed: rng.get_seed(), stream: rng.get_stream(), word_pos: rng.get_word_pos() }
    }

    fn restore(&self) -> ChaCha12Rng {
        let mut rng = ChaCha12Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos);
        rng
    }
}

const STATE_MAGIC: &[u8; 8] = b"MPORECTS";

impl TrainState {
    /// Writes the state atomically, with the checkpoint's header and checksum.
    ///
    /// # Errors
    /// [`ModelError::Io`] or [`ModelError::Checkpoint`] naming the file.
    pub fn write(&self, path: &Path) -> Result<(), ModelError> {
        write_framed(path, STATE_MAGIC, self)
    }

    /// Reads a state written by [`TrainState::write`].
    ///
    /// # Errors
    /// [`ModelError::Io`] or [`ModelError::Checkpoint`] naming the file, for
    /// a missing, truncated or corrupt file.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let mut state: TrainState = read_framed(path, STATE_MAGIC, "training state")?;
        state.params.rebuild_index();
        state.best_params.rebuild_index();
        Ok(state)
    }
}

/// Runs [`train`] while writing the files of `files`, optionally continuing
/// from `resume`, a state that an earlier call with the same data and settings
/// wrote.
///
/// A resumed run draws the same batches, dropout masks and gate noise and
/// takes the same steps as one that never stopped, so its reports and its
/// best model are identical. `config.epochs` may be larger than in the
/// first call, which extends the run.
///
/// # Errors
/// As [`train`].
#[allow(clippy::too_many_arguments)]
pub fn train_resumable(
    model: &UniSRec,
    params: &mut ParamStore,
    dataset: &Dataset,
    features: &Tensor,
    config: &TrainConfig,
    files: &RunFiles,
    resume: Option<TrainState>,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome, ModelError> {
    if dataset.train.is_empty() || dataset.valid.is_empty() {
        return Err(ModelError::InvalidInput(format!("dataset {} has no training or no validation rows", dataset.name)));
    }
    config.validate()?;
    let mut rng = ChaCha12Rng::seed_from_u64(config.seed);
    let mut optimizer = Adam::new(AdamConfig { lr: config.lr, ..AdamConfig::default() });
    let mut pool = BufferPool::new();
    let mut best: Option<(usize, RankingMetrics, ParamStore)> = None;
    let mut reports = Vec::new();
    let mut since_best = 0;
    let mut first_epoch = 1;
    if let Some(state) = resume {
        *params = state.params;
        optimizer = state.optimizer;
        rng = state.rng.restore();
        best = Some((state.best_epoch, state.best_valid, state.best_params));
        since_best = state.since_best;
        reports = state.reports;
        first_epoch = state.epochs_done + 1;
        tracing::info!(epochs_done = state.epochs_done, best_epoch = state.best_epoch, "resuming training");
    }

    for epoch in first_epoch..=config.epochs {
        if since_best >= config.patience {
            break;
        }
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
            valid,
            improved,
        };
        if improved {
            if let Some((_, p)) = params.iter().find(|(_, p)| !p.value.is_finite()) {
                return Err(ModelError::InvalidInput(format!(
                    "parameter {} became non-finite in epoch {epoch}; lower the learning rate (the last good checkpoint is kept)",
                    p.name
                )));
            }
            since_best = 0;
            if let Some(path) = &files.best {
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
        // Logged after the observer, which may first clear a progress bar.
        observer.epoch_finished(&report)?;
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
        reports.push(report);
        if let Some(path) = &files.state {
            let (best_epoch, best_valid, best_params) = best.clone().expect("an epoch has run");
            let state = TrainState {
                settings: files.settings.clone(),
                epochs_done: epoch,
                params: params.clone(),
                optimizer: optimizer.clone(),
                rng: RngState::save(&rng),
                best_epoch,
                best_valid,
                best_params,
                since_best,
                reports: reports.clone(),
            };
            state.write(path)?;
        }
        if since_best >= config.patience {
            tracing::info!(epoch, patience = config.patience, "early stopping: no improvement in validation NDCG@10");
            break;
        }
    }
    let Some((best_epoch, best_valid, best_params)) = best else {
        return Err(ModelError::InvalidInput(format!("no epoch ran: --epochs {} is not above the epochs already done", config.epochs)));
    };
    *params = best_params;
    Ok(TrainOutcome { best_epoch, best_valid, epochs: reports })
}
