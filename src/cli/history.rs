//! `driftsum history`: list the runs and results the run history holds.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;

use driftsum::config::{parse_interval, Config};
use driftsum::history::{self, History};
use driftsum::plan::due;
use driftsum::report::text::escape_text;

use super::check::emit;
use super::diff::Format;

/// `println!` through [`emit`].
macro_rules! outln {
    ($($t:tt)*) => { emit(&format!("{}\n", format!($($t)*))) };
}

/// List past check runs and their results (per table and level: status,
/// counts, time, and what drifted), newest last.
#[derive(Args)]
pub struct HistoryArgs {
    /// The config file naming the history (see docs/check.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Only this table's results.
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// Only runs started within this interval (e.g. 1h, 7d), or "off" for all.
    #[arg(long, value_name = "INTERVAL", default_value = "7d")]
    pub since: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: HistoryArgs) -> anyhow::Result<u8> {
    let config = Config::load(&args.config)?;
    let since = parse_interval(&args.since).map_err(|e| anyhow!("--since: {e}"))?;
    let cutoff = since.map_or(i64::MIN, |s| due::now() - s.as_secs() as i64);
    let path = history::location(&config).map_err(|e| anyhow!(e))?;
    let Some(hist) = History::open_existing(&path)? else {
        anyhow::bail!(
            "no run history at {} yet: run driftsum check first",
            path.display()
        );
    };
    let runs = hist.runs(cutoff, args.table.as_deref())?;
    match args.format {
        Format::Json => emit(&format!(
            "{}\n",
            serde_json::json!({ "format_version": 1, "runs": runs })
        )),
        Format::Text => {
            for run in &runs {
                let end = match run.finished {
                    Some(f) => format!("finished {}", time(f)),
                    None => "UNFINISHED".to_string(),
                };
                outln!("run {} started {}, {end}", run.id, time(run.started));
                for r in &run.results {
                    let rows = match (r.source_rows, r.target_rows) {
                        (Some(s), Some(t)) => format!(" source {s}, replica {t} rows"),
                        _ => String::new(),
                    };
                    let drift = match r.missing + r.extra + r.changed {
                        0 => String::new(),
                        _ => format!(
                            "; {} missing, {} extra, {} changed",
                            r.missing, r.extra, r.changed
                        ),
                    };
                    outln!(
                        "  {} {} {}{rows}{drift}  {:.2}s{}",
                        escape_text(&r.table),
                        r.level,
                        r.status,
                        r.seconds,
                        r.error
                            .as_ref()
                            .map_or(String::new(), |e| format!(": {}", escape_text(e)))
                    );
                }
            }
            if runs.is_empty() {
                outln!("no runs since {}", time(cutoff.max(0)));
            }
        }
    }
    Ok(0)
}

fn time(unix: i64) -> String {
    format!(
        "{}Z",
        driftsum::core::time::format_timestamp(unix * 1_000_000).replace('T', " ")
    )
}
