//! The options that say which rows and columns a tree covers and how they
//! are hashed, shared by `diff` and `build` so that a tree file built with
//! some options can be compared with a diff given the same ones.

use anyhow::bail;
use clap::Args;

use driftsum::check::ColumnChoice;
use driftsum::config::Config;
use driftsum::core::tree::shape::{DEFAULT_FANOUT, DEFAULT_LEAF_TARGET};
use driftsum::core::{CanonOptions, Shape};

#[derive(Args)]
pub struct RowArgs {
    /// Key columns to use instead of the primary key (for tables without one).
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub key: Option<Vec<String>>,
    /// Compare only these columns (besides the key).
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Leave these columns out of the comparison.
    #[arg(
        long = "exclude-columns",
        value_name = "COL,...",
        value_delimiter = ','
    )]
    pub exclude_columns: Vec<String>,
    /// An SQL condition that selects the rows to compare,
    /// e.g. "created_at >= '2026-01-01'".
    #[arg(long = "where", value_name = "SQL")]
    pub filter: Option<String>,
    #[command(flatten)]
    pub filters: super::filters::FilterArgs,
    /// Round floats to N significant digits before comparing, for replicas
    /// known to lose float precision. Default: compare at each column's own
    /// precision, so a one-ulp change is drift.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=17))]
    pub float_digits: Option<u8>,
    /// A TOML file with per-table and per-column settings: replica table and
    /// column names, key columns, excluded columns, and how the replica
    /// stores timestamps (see docs/reference.md, "The config file").
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Expected rows per tree leaf.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LEAF_TARGET,
          value_parser = clap::value_parser!(u32).range(2..=1_000_000), hide_short_help = true)]
    pub leaf_target: u32,
    /// Expected children per inner tree node.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_FANOUT,
          value_parser = clap::value_parser!(u32).range(2..=65_536), hide_short_help = true)]
    pub fanout: u32,
}

impl RowArgs {
    /// Checks the column lists and loads the config file, if any.
    pub fn config(&self) -> anyhow::Result<Config> {
        for (flag, list) in [("--key", &self.key), ("--columns", &self.columns)] {
            if list
                .as_ref()
                .is_some_and(|l| l.is_empty() || l.iter().any(|c| c.trim().is_empty()))
            {
                bail!("{flag} needs column names, separated by commas");
            }
        }
        Ok(match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        })
    }

    pub fn choice(&self) -> ColumnChoice {
        ColumnChoice {
            key: self.key.clone(),
            columns: self.columns.clone(),
            exclude: self.exclude_columns.clone(),
            filter: self.filter.clone(),
            rows: self.filters.row_filters(),
        }
    }

    pub fn canon(&self) -> CanonOptions {
        CanonOptions {
            float_digits: self.float_digits,
        }
    }

    pub fn shape(&self) -> Shape {
        Shape {
            leaf_target: self.leaf_target,
            fanout: self.fanout,
        }
    }
}
