//! `driftsum bench`. Not built yet.

use clap::Args;

/// Measure comparison cost per table size (not built yet).
#[derive(Args, Debug)]
#[command(hide = true)]
pub struct BenchArgs {}

pub fn run(_args: BenchArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`driftsum bench` is not built yet")
}
