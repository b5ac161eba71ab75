//! `driftsum serve`. Not built yet.

use clap::Args;

/// Serve one database's trees to comparers (not built yet).
#[derive(Args, Debug)]
#[command(hide = true)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`driftsum serve` is not built yet")
}
