//! The row-filter options shared by `diff` and `build`: SQL for one side
//! (`--source-where`, `--target-where`; `--where` for both is in `rows`), a
//! typed range on a column (`--since`, `--until`) and ages on an
//! update-time column (`--min-age`, `--max-age`, `--age-column`). See
//! docs/reference.md, "Which filter to use when".

use std::time::Duration;

use clap::Args;

use driftsum::check::filters::split_bound;
use driftsum::check::RowFilters;

#[derive(Args, Clone, Debug, Default)]
pub struct FilterArgs {
    /// An SQL condition for the source only (with --where, both apply), in
    /// the source engine's SQL.
    #[arg(long, value_name = "SQL")]
    pub source_where: Option<String>,
    /// An SQL condition for the replica only (with --where, both apply), in
    /// the replica engine's SQL.
    #[arg(long, value_name = "SQL")]
    pub target_where: Option<String>,
    /// Only rows whose column is at least VALUE (inclusive): COL=VALUE, the
    /// column by its source name, VALUE read as the column's type
    /// (2024-01-01T09:00:00, 2024-01-01, 1000, 19.99) and tested on the
    /// decoded values, whatever form either side stores them in.
    #[arg(long, value_name = "COL=VALUE", value_parser = bound("--since"))]
    pub since: Vec<String>,
    /// Only rows whose column is below VALUE (exclusive): COL=VALUE, as
    /// for --since.
    #[arg(long, value_name = "COL=VALUE", value_parser = bound("--until"))]
    pub until: Vec<String>,
    /// Leave out rows updated less than this long ago ("30s", "5m", "2h",
    /// "1d"), on both sides: rows still being replicated.
    #[arg(long, value_name = "DURATION", value_parser = age)]
    pub min_age: Option<Duration>,
    /// Leave out rows updated longer ago than this, on both sides.
    #[arg(long, value_name = "DURATION", value_parser = age)]
    pub max_age: Option<Duration>,
    /// The update-time column --min-age and --max-age measure (a timestamp
    /// or date column; config: updated_column).
    #[arg(long, value_name = "COL")]
    pub age_column: Option<String>,
}

fn bound(
    option: &'static str,
) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |s: &str| split_bound(option, s).map(|_| s.to_string())
}

fn age(s: &str) -> Result<Duration, String> {
    driftsum::config::parse_interval(s)?.ok_or_else(|| {
        format!("{s:?}: give a duration such as \"5m\" (leave the option out for none)")
    })
}

impl FilterArgs {
    pub fn row_filters(&self) -> RowFilters {
        RowFilters {
            source_where: self.source_where.clone(),
            target_where: self.target_where.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            min_age: self.min_age,
            max_age: self.max_age,
            age_column: self.age_column.clone(),
        }
    }
}
