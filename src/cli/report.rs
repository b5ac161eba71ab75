//! `driftsum report`: the dashboard of a config's run history, written as
//! one self-contained HTML file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use clap::Args;

use driftsum::config::{parse_interval, Config};
use driftsum::history;
use driftsum::plan::due;
use driftsum::report::dashboard::{self, PageState};
use driftsum::report::html;

use super::outpath::{self, Input};

/// Write the dashboard: a status grid of every table and level, charts of
/// drift and duration over time, patterns (recurring ranges, when drift is
/// found, incidents) and a drill-down per table, as one HTML file that
/// needs no network to open (see docs/dashboard.md).
#[derive(Args)]
pub struct ReportArgs {
    /// The config file naming the history (see docs/check.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Where to write the page (replaced only if it is a driftsum dashboard).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Results started within this interval (e.g. 7d, 30d), or "off" for all.
    #[arg(long, value_name = "INTERVAL", default_value = "30d")]
    pub since: String,
}

pub fn run(args: ReportArgs) -> anyhow::Result<u8> {
    let config = Config::load(&args.config)?;
    let since = parse_interval(&args.since).map_err(|e| anyhow!("--since: {e}"))?;
    let now = due::now();
    let cutoff = since.map_or(i64::MIN, |s| now - s.as_secs() as i64);
    let hist = history::location(&config).map_err(|e| anyhow!(e))?;
    let mut inputs = vec![Input::new("the config file", &args.config)];
    if let history::Location::Sqlite(path) = &hist {
        inputs.extend(Input::sqlite(path));
    }
    outpath::check_output("--out", &args.out, &inputs)?;
    outpath::check_replaceable(
        "--out",
        &args.out,
        html::MAGIC.as_bytes(),
        "a driftsum dashboard",
    )?;
    let page = dashboard::gather(&config, now, cutoff)?;
    if let PageState::Unreadable(why) = &page.state {
        // Nothing written: an old driftsum cannot vouch for a newer history.
        anyhow::bail!("{why}");
    }
    write(&args.out, &html::render(&page))?;
    eprintln!("wrote {}", args.out.display());
    if let PageState::Empty(why) = &page.state {
        eprintln!("the page says so: {why}");
    }
    Ok(0)
}

/// Writes `text` to `out` through a temporary file beside it, so that a
/// reader never sees half a page.
pub fn write(out: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("--out {}: cannot write in {}", out.display(), dir.display()))?;
    tmp.write_all(text.as_bytes())
        .with_context(|| format!("--out {}", out.display()))?;
    tmp.persist(out)
        .map_err(|e| anyhow!("--out {}: {}", out.display(), e.error))?;
    Ok(())
}
