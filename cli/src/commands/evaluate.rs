//! `mporec evaluate`.

use clap::Args;

/// Options of `mporec evaluate`.
#[derive(Args)]
pub struct EvaluateArgs {}

/// Runs the subcommand.
pub fn run(_args: EvaluateArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
