//! `mporec`: train, evaluate and inspect UniSRec-style recommenders and
//! their MPO factorizations.

mod commands;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;

#[derive(Parser)]
#[command(name = "mporec", version, about = "Sequential recommenders with MPO fine-tuning, in pure Rust")]
struct Cli {
    /// Worker threads for rayon (default: all cores).
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a UniSRec model and report test metrics of the best epoch.
    Train(commands::train::TrainArgs),
    /// Recompute the test metrics of a checkpoint.
    Evaluate(commands::evaluate::EvaluateArgs),
    /// Embed item texts with a BERT-family model into a feature file.
    Embed(commands::embed::EmbedArgs),
    /// Evaluate the popularity baseline.
    Popularity(commands::popularity::PopularityArgs),
    /// Factorize a weight matrix into an MPO and report bonds, parameters and truncation error.
    Decompose(commands::decompose::DecomposeArgs),
    /// Convert an interaction log (RecBole .inter or LC-Rec .inter.json) to UniSRec's format.
    Convert(commands::convert::ConvertArgs),
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some(n) = cli.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n as usize).build_global() {
            eprintln!("error: failed to start {n} threads: {e}");
            std::process::exit(1);
        }
    }
    let result = match cli.command {
        Command::Train(a) => commands::train::run(a),
        Command::Evaluate(a) => commands::evaluate::run(a),
        Command::Embed(a) => commands::embed::run(a),
        Command::Popularity(a) => commands::popularity::run(a),
        Command::Decompose(a) => commands::decompose::run(a),
        Command::Convert(a) => commands::convert::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {}", error_chain(&e));
        std::process::exit(1);
    }
}

/// Joins an error and its causes with ": ", skipping a cause whose text the
/// message before it already ends with, since many errors print their
/// source as part of their own message.
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
