//! Logging set-up: `tracing` events from the library go to stderr, as text
//! or as one JSON object per line, filtered by `DRIFTSUM_LOG` (the
//! `tracing` filter syntax, e.g. `driftsum=debug`) or else by `-v`/`-q`.
//! Reports go to stdout and are not logs.
//!
//! One-shot commands log nothing unless asked (`-v`, `--log-format`,
//! `DRIFTSUM_LOG`): their report says it all. A service (`watch`) logs at
//! `info` by default.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

use super::Verbosity;

/// The environment variable holding a filter.
pub const LOG_VAR: &str = "DRIFTSUM_LOG";

/// How each log line is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for journald, Loki or Elastic).
    Json,
}

/// Installs the subscriber for this process. `service`: the command runs
/// unattended, and logs by default.
pub fn init(v: Verbosity, format: Option<LogFormat>, service: bool) {
    let env = std::env::var(LOG_VAR).ok().filter(|s| !s.trim().is_empty());
    let asked = service || format.is_some() || v.verbose > 0;
    let default = match (v.quiet, v.verbose) {
        (true, _) => "driftsum=error",
        (false, 0) if asked => "driftsum=info",
        (false, 0) => "off",
        (false, 1) => "driftsum=info",
        (false, 2) => "driftsum=debug",
        _ => "driftsum=trace,info",
    };
    let filter = match env.as_deref().map(EnvFilter::try_new) {
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            eprintln!(
                "driftsum: warning: {LOG_VAR} is not a valid filter ({e}); using {default:?}"
            );
            EnvFilter::new(default)
        }
        None => EnvFilter::new(default),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let installed = match format.unwrap_or(LogFormat::Text) {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    // Only fails when a subscriber is already set: the first one stays.
    let _ = installed;
}

/// Whether JSON lines were asked for: errors are then logged as events
/// rather than printed as plain lines.
pub fn is_json(format: Option<LogFormat>) -> bool {
    format == Some(LogFormat::Json)
}
