//! `mporec popularity`: the most-popular-items baseline.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use recmodel::data::{load_unisrec, Split};
use recmodel::popularity::{evaluate_scores, popularity_scores};

/// Options of `mporec popularity`.
#[derive(Args)]
pub struct PopularityArgs {
    /// Folder of a UniSRec dataset (NAME.train.inter, NAME.valid.inter, NAME.test.inter, NAME.item2index, NAME.user2index).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Split to evaluate: valid or test.
    #[arg(long, default_value = "test", value_parser = parse_eval_split)]
    split: Split,
    /// Also write the metrics as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn parse_eval_split(s: &str) -> Result<Split, String> {
    match s.parse::<Split>() {
        Ok(Split::Train) => Err("the popularity baseline evaluates valid or test, not train".to_string()),
        Ok(split) => Ok(split),
        Err(_) => Err(format!("invalid split {s:?}: expected valid or test")),
    }
}

/// Ranks all items by their count in the users' training sequences and
/// prints HIT@K and NDCG@K of the chosen split.
pub fn run(args: PopularityArgs) -> anyhow::Result<()> {
    let dataset = load_unisrec(&args.data).with_context(|| format!("failed to load the dataset in {}", args.data.display()))?;
    let scores = popularity_scores(&dataset);
    let evaluation = evaluate_scores(&scores, dataset.split(args.split));
    tracing::info!(dataset = %dataset.name, split = %args.split, users = evaluation.metrics.users, "evaluated the popularity baseline");

    // The JSON file comes first, so a run whose file cannot be written
    // fails without printing metrics that a script might take as success.
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&evaluation.metrics)?;
        std::fs::write(path, json + "\n").with_context(|| format!("failed to write {}", path.display()))?;
    }
    println!("{}", evaluation.metrics);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_split_names() {
        assert_eq!(parse_eval_split("test"), Ok(Split::Test));
        assert_eq!(parse_eval_split("valid"), Ok(Split::Valid));
    }

    #[test]
    fn eval_split_rejects_train() {
        let message = parse_eval_split("train").unwrap_err();
        assert!(message.contains("valid or test"), "{message}");
    }

    #[test]
    fn eval_split_rejects_unknown() {
        let message = parse_eval_split("dev").unwrap_err();
        assert_eq!(message, "invalid split \"dev\": expected valid or test");
    }
}
