//! `mporec evaluate`: recompute test metrics from a checkpoint.

use anyhow::Context;
use clap::Args;
use recmodel::checkpoint::read_checkpoint;
use recmodel::data::{load_features, load_unisrec};
use recmodel::evaluate::evaluate;
use recmodel::model::UniSRec;
use std::io::Write;
use std::path::PathBuf;

/// Options of `mporec evaluate`.
#[derive(Args)]
pub struct EvaluateArgs {
    /// Checkpoint written by `mporec train`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Dataset folder in UniSRec's processed format.
    #[arg(long)]
    data: PathBuf,
    /// Item text features: raw little-endian f32, one row per item index.
    #[arg(long)]
    features: PathBuf,
    /// Write each test user's target rank here as TSV (user, target item, rank).
    #[arg(long)]
    ranks: Option<PathBuf>,
}

/// Runs `mporec evaluate`.
///
/// # Errors
/// Unreadable or mismatched checkpoint, dataset or features.
pub fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    let ck = read_checkpoint(&args.checkpoint)?;
    let dataset = load_unisrec(&args.data)?;
    if dataset.num_items != ck.config.num_items {
        anyhow::bail!(
            "{} has {} items but the checkpoint {} was trained on {}",
            args.data.display(),
            dataset.num_items,
            args.checkpoint.display(),
            ck.config.num_items
        );
    }
    let features = load_features(&args.features, dataset.num_items)?;
    if features.shape()[1] != ck.config.text_dim {
        anyhow::bail!(
            "{} contains {}-dimensional features but the checkpoint {} expects {}",
            args.features.display(),
            features.shape()[1],
            args.checkpoint.display(),
            ck.config.text_dim
        );
    }
    let model = UniSRec::bind(ck.config.clone(), &ck.params)?;
    let test = evaluate(&model, &ck.params, &features, &dataset.test)?;
    if let Some(path) = &args.ranks {
        let mut text = String::from("user_id\titem_id\trank\n");
        for (ex, rank) in dataset.test.iter().zip(&test.ranks) {
            let user = &dataset.user_ids[ex.user as usize];
            let item = &dataset.item_ids[ex.target as usize];
            text.push_str(&format!("{user}\t{item}\t{rank}\n"));
        }
        recmodel::checkpoint::write_atomic(path, text.as_bytes()).with_context(|| format!("failed to write ranks to {}", path.display()))?;
    }
    let stdout = std::io::stdout();
    writeln!(stdout.lock(), "{}", test.metrics)?;
    Ok(())
}
