//! `mporec convert`: an interaction log to UniSRec's processed format.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use recmodel::data::{read_lcrec_log, read_recbole_log, write_unisrec, ConvertOptions};
use recmodel::text::load_item_texts;

/// Options of `mporec convert`.
#[derive(Args)]
pub struct ConvertArgs {
    /// Folder with a RecBole atomic NAME.inter (and NAME.item for texts) or an LC-Rec
    /// NAME.inter.json (and NAME.item.json).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Output folder for NAME.train.inter, NAME.valid.inter, NAME.test.inter, NAME.item2index,
    /// NAME.user2index and, when the input has item texts, NAME.text.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Dataset name of the output files [default: NAME of the input].
    #[arg(long)]
    name: Option<String>,
    /// Most recent items kept in each history.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..10_000))]
    max_history: u64,
    /// Remove users and items with fewer interactions than this, repeatedly (k-core);
    /// 0 keeps all. Users with fewer than 3 interactions are always dropped.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..1_000_000))]
    min_interactions: u64,
}

/// Finds the only file in `dir` whose name ends with `suffix`.
fn find_one(dir: &Path, suffix: &str) -> anyhow::Result<Option<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("failed to list {}", dir.display()))? {
        let path = entry.with_context(|| format!("failed to list {}", dir.display()))?.path();
        if path.is_file() && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix)) {
            found.push(path);
        }
    }
    found.sort();
    if found.len() > 1 {
        let names: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
        anyhow::bail!("several *{suffix} files ({}); pass a folder with one dataset", names.join(", "));
    }
    Ok(found.pop())
}

/// Runs the subcommand.
pub fn run(args: ConvertArgs) -> anyhow::Result<()> {
    let (log_path, log) = if let Some(path) = find_one(&args.data, ".inter.json")? {
        let log = read_lcrec_log(&path)?;
        (path, log)
    } else if let Some(path) = find_one(&args.data, ".inter")? {
        let log = read_recbole_log(&path)?;
        (path, log)
    } else {
        anyhow::bail!("no interaction log in {}: expected NAME.inter (RecBole) or NAME.inter.json (LC-Rec)", args.data.display());
    };
    let file_name = log_path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let source_name = file_name.strip_suffix(".inter.json").or_else(|| file_name.strip_suffix(".inter")).unwrap_or(file_name);
    let name = args.name.clone().unwrap_or_else(|| source_name.to_string());
    if name.is_empty() || name.contains(['/', '\\']) {
        anyhow::bail!("dataset name {name:?} is not a plain file name; pass one with --name");
    }
    if args.out.join(format!("{name}.train.inter")).exists() {
        anyhow::bail!("{} already exists; choose a new --out", args.out.join(format!("{name}.train.inter")).display());
    }

    let has_texts = find_one(&args.data, ".item.json")?.is_some() || find_one(&args.data, ".item")?.is_some();
    let texts: Option<HashMap<String, String>> = if has_texts {
        let items = load_item_texts(&args.data).with_context(|| format!("failed to read item texts from {}", args.data.display()))?;
        Some(items.item_ids.into_iter().zip(items.texts).collect())
    } else {
        None
    };

    let options = ConvertOptions { max_history: args.max_history as usize, min_interactions: args.min_interactions as usize };
    let report = write_unisrec(&args.out, &name, log, texts.as_ref(), &options)?;
    tracing::info!(
        source = %log_path.display(),
        out = %args.out.display(),
        name,
        users = report.users,
        items = report.items,
        interactions = report.interactions,
        train_rows = report.train_rows,
        dropped_users = report.dropped_users,
        filtered_users = report.filtered_users,
        filtered_items = report.filtered_items,
        "converted the interaction log"
    );
    if report.items_without_text > 0 {
        tracing::warn!(items = report.items_without_text, "items without text get an empty text in {name}.text");
    }
    println!(
        "{} users, {} items, {} interactions, {} training rows ({} users with fewer than 3 interactions dropped)",
        report.users, report.items, report.interactions, report.train_rows, report.dropped_users
    );
    Ok(())
}
