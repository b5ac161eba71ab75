//! `driftsum build`. Not built yet.

use clap::Args;

/// Write a table's tree to a file (not built yet).
#[derive(Args, Debug)]
#[command(hide = true)]
pub struct BuildArgs {}

pub fn run(_args: BuildArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`driftsum build` is not built yet")
}
