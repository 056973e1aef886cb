//! `mporec train`.

use clap::Args;

/// Options of `mporec train`.
#[derive(Args)]
pub struct TrainArgs {}

/// Runs the subcommand.
pub fn run(_args: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
