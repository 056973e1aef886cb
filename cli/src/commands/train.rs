//! `mporec train`: fine-tune UniSRec on a dataset and report test metrics.

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use recmodel::data::{load_features, load_unisrec, Batching};
use recmodel::error::ModelError;
use recmodel::evaluate::evaluate;
use recmodel::model::{Setting, UniSRec, UniSRecConfig};
use recmodel::train::{train_resumable, EpochReport, RunFiles, TrainConfig, TrainObserver, TrainState};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Options of `mporec train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Dataset folder in UniSRec's processed format (NAME.train.inter, ...).
    #[arg(long)]
    data: PathBuf,
    /// Item text features: raw little-endian f32, one row per item index.
    #[arg(long)]
    features: PathBuf,
    /// Item representation: text and item ID (transductive) or text only (inductive).
    #[arg(long, default_value = "transductive")]
    setting: Setting,
    /// Batching of training rows: bucketed (rows of similar length together) or random.
    #[arg(long, default_value = "bucketed")]
    batching: Batching,
    /// Maximum number of epochs.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
    epochs: u32,
    /// Stop after this many epochs without a better validation NDCG@10.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    patience: u32,
    /// Training rows per batch.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// Adam learning rate, a positive number.
    #[arg(long, default_value_t = 1e-3, value_parser = parse_lr)]
    lr: f32,
    /// Seed of initialisation, batching, dropout and gate noise.
    #[arg(long, default_value_t = 2020)]
    seed: u64,
    /// Output folder for best.ckpt, metrics.jsonl, test_metrics.json and train_state.ckpt.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its last finished epoch (after a crash or kill,
    /// or with a larger --epochs). The other settings must be those of the run.
    #[arg(long)]
    resume: bool,
}

struct Progress {
    bar: Option<ProgressBar>,
    metrics: BufWriter<File>,
    metrics_path: PathBuf,
    rows: usize,
    started: std::time::Instant,
}

impl TrainObserver for Progress {
    fn epoch_started(&mut self, epoch: usize, batches: usize) {
        let bar = ProgressBar::new(batches as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix:>3} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(epoch.to_string());
        self.bar = Some(bar);
        self.rows = 0;
        self.started = std::time::Instant::now();
    }

    fn batch_finished(&mut self, _epoch: usize, loss: f32, rows: usize) {
        self.rows += rows;
        if let Some(bar) = &self.bar {
            let rate = self.rows as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("batch loss {loss:.4}  {rate:.0} seq/s"));
            bar.inc(1);
        }
    }

    fn epoch_finished(&mut self, report: &EpochReport) -> Result<(), ModelError> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let io = |source| ModelError::Io { path: self.metrics_path.clone(), source };
        let line = serde_json::to_string(report).expect("epoch reports serialize");
        writeln!(self.metrics, "{line}").map_err(io)?;
        self.metrics.flush().map_err(|source| ModelError::Io { path: self.metrics_path.clone(), source })?;
        eprintln!(
            "epoch {:>3}  loss {:.4}  {:.1} s  valid {}{}",
            report.epoch,
            report.loss,
            report.seconds,
            report.valid,
            if report.improved { "  *" } else { "" }
        );
        Ok(())
    }
}

fn parse_lr(s: &str) -> Result<f32, String> {
    let lr: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if lr.is_finite() && lr > 0.0 {
        Ok(lr)
    } else {
        Err(format!("{s} is not a positive finite number"))
    }
}

/// Files of a finished or running training run; `--out` must not hold them.
const RUN_FILES: [&str; 4] = ["best.ckpt", "metrics.jsonl", "test_metrics.json", STATE_FILE];

/// The state a killed run resumes from, rewritten after every epoch.
const STATE_FILE: &str = "train_state.ckpt";

/// The settings that must match for `--resume`. `--epochs` is left out, so
/// that a finished run can be extended.
fn run_settings(args: &TrainArgs) -> Vec<(String, String)> {
    let path = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    vec![
        ("--data".into(), path(&args.data)),
        ("--features".into(), path(&args.features)),
        ("--setting".into(), args.setting.to_string()),
        ("--batching".into(), args.batching.to_string()),
        ("--patience".into(), args.patience.to_string()),
        ("--batch-size".into(), args.batch_size.to_string()),
        ("--lr".into(), args.lr.to_string()),
        ("--seed".into(), args.seed.to_string()),
    ]
}

/// Reads the state of the run in `out` and checks that `settings` match it.
fn read_resume_state(out: &Path, settings: &[(String, String)]) -> anyhow::Result<TrainState> {
    let path = out.join(STATE_FILE);
    if !path.is_file() {
        anyhow::bail!("nothing to resume: {} not found; start the run without --resume", path.display());
    }
    let state = TrainState::read(&path)?;
    for (name, value) in settings {
        let recorded = state.settings.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        if recorded != Some(value.as_str()) {
            anyhow::bail!(
                "{name} is {value}, but the run in {} used {}; resume with the run's settings",
                out.display(),
                recorded.unwrap_or("no value")
            );
        }
    }
    Ok(state)
}

/// Runs `mporec train`.
///
/// # Errors
/// Unreadable or malformed inputs, an unwritable output folder, or a
/// diverging loss.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let settings = run_settings(&args);
    let resume = if args.resume {
        Some(read_resume_state(&args.out, &settings)?)
    } else {
        for name in RUN_FILES {
            let existing = args.out.join(name);
            if existing.exists() {
                anyhow::bail!(
                    "{} already exists: the output folder contains another run; continue it with --resume, choose a new --out or remove that run first",
                    existing.display()
                );
            }
        }
        None
    };
    let train_config = TrainConfig {
        epochs: args.epochs as usize,
        patience: args.patience as usize,
        batch_size: args.batch_size as usize,
        lr: args.lr,
        seed: args.seed,
        batching: args.batching,
    };
    train_config.validate()?;
    let dataset = load_unisrec(&args.data)?;
    let features = load_features(&args.features, dataset.num_items)?;
    let config = UniSRecConfig::new(dataset.num_items, features.shape()[1], args.setting);
    let (model, mut params) = UniSRec::init(config, args.seed);
    if let Some(state) = &resume {
        UniSRec::bind(model.config.clone(), &state.params)
            .with_context(|| format!("the state in {} does not fit this model", args.out.join(STATE_FILE).display()))?;
    }
    tracing::info!(
        dataset = %dataset.name,
        items = dataset.num_items,
        train_rows = dataset.train.len(),
        text_dim = features.shape()[1],
        parameters = params.num_elements(),
        setting = %args.setting,
        "training UniSRec"
    );

    fs::create_dir_all(&args.out).with_context(|| format!("failed to create output folder {}", args.out.display()))?;
    let metrics_path = args.out.join("metrics.jsonl");
    let metrics = File::create(&metrics_path).with_context(|| format!("failed to create {}", metrics_path.display()))?;
    let mut metrics = BufWriter::new(metrics);
    // A resumed run rewrites the finished epochs' lines, dropping any line
    // of an epoch that was cut off before its state was saved.
    for report in resume.iter().flat_map(|state| &state.reports) {
        let line = serde_json::to_string(report).expect("epoch reports serialize");
        writeln!(metrics, "{line}").with_context(|| format!("failed to write {}", metrics_path.display()))?;
    }
    let mut progress = Progress { bar: None, metrics, metrics_path, rows: 0, started: std::time::Instant::now() };

    let files = RunFiles { best: Some(args.out.join("best.ckpt")), state: Some(args.out.join(STATE_FILE)), settings };
    let outcome = train_resumable(&model, &mut params, &dataset, &features, &train_config, &files, resume, &mut progress)?;
    tracing::info!(best_epoch = outcome.best_epoch, epochs_run = outcome.epochs.len(), "training finished");

    let test = evaluate(&model, &params, &features, &dataset.test)?;
    write_test_metrics(&args.out.join("test_metrics.json"), &test.metrics, Some(outcome.best_epoch))?;
    println!("{}", test.metrics);
    Ok(())
}

/// Writes the test metrics as one JSON object, with the best epoch when known.
pub fn write_test_metrics(path: &Path, metrics: &recmodel::metrics::RankingMetrics, best_epoch: Option<usize>) -> anyhow::Result<()> {
    let mut value = serde_json::to_value(metrics)?;
    if let (Some(epoch), Some(obj)) = (best_epoch, value.as_object_mut()) {
        obj.insert("best_epoch".into(), epoch.into());
    }
    let text = serde_json::to_string_pretty(&value)? + "\n";
    recmodel::checkpoint::write_atomic(path, text.as_bytes())?;
    Ok(())
}
