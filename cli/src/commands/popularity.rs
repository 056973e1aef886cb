//! `mporec popularity`.

use clap::Args;

/// Options of `mporec popularity`.
#[derive(Args)]
pub struct PopularityArgs {}

/// Runs the subcommand.
pub fn run(_args: PopularityArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
