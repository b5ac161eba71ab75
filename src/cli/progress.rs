//! Progress on stderr while scanning: a bar on a terminal (the table, rows
//! done of an estimate, percent, rate, time left), or one plain line per
//! table for logs when asked with `--progress`. Never on stdout, where the
//! report goes. The estimates come from `driftsum::source::estimate`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use driftsum::check::{DiffSink, TableOutcome};
use driftsum::reconcile::Difference;
use driftsum::report::text::thousands;
use driftsum_core::Side;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// A bar redrawn in place (stderr is a terminal).
    Bar,
    /// One line per table as it finishes (stderr is a file or a pipe).
    Lines,
}

impl Mode {
    /// The bar on a terminal unless `quiet`; lines elsewhere only when
    /// `asked` (`--progress` or `--verbose`).
    pub fn choose(quiet: bool, asked: bool) -> Mode {
        match (quiet, std::io::stderr().is_terminal(), asked) {
            (true, _, _) => Mode::Off,
            (false, true, _) => Mode::Bar,
            (false, false, true) => Mode::Lines,
            (false, false, false) => Mode::Off,
        }
    }
}

/// The table being scanned and when it started.
struct Current {
    table: String,
    started: Instant,
    estimate: Option<u64>,
}

/// Rows scanned on each side of the current table, shown against the source
/// table's estimated row count.
pub struct ScanProgress {
    mode: Mode,
    bar: Option<ProgressBar>,
    rows: [AtomicU64; 2],
    /// Estimated rows of each source table, by name.
    estimates: HashMap<String, u64>,
    current: Mutex<Option<Current>>,
}

impl ScanProgress {
    pub fn new(mode: Mode, estimates: HashMap<String, u64>) -> ScanProgress {
        let bar = (mode == Mode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar
        });
        ScanProgress {
            mode,
            bar,
            rows: [AtomicU64::new(0), AtomicU64::new(0)],
            estimates,
            current: Mutex::new(None),
        }
    }

    /// A table's scan begins.
    pub fn table_started(&self, table: &str) {
        if self.mode == Mode::Off {
            return;
        }
        for r in &self.rows {
            r.store(0, Ordering::Relaxed);
        }
        if let Ok(mut c) = self.current.lock() {
            *c = Some(Current {
                table: table.to_string(),
                started: Instant::now(),
                estimate: self.estimates.get(table).copied(),
            });
        }
        self.draw();
    }

    pub fn update(&self, side: Side, rows: u64) {
        if self.mode == Mode::Off {
            return;
        }
        self.rows[side as usize].store(rows, Ordering::Relaxed);
        if self.mode == Mode::Bar {
            self.draw();
        }
    }

    fn draw(&self) {
        let Some(bar) = &self.bar else { return };
        let Ok(c) = self.current.lock() else { return };
        let Some(c) = c.as_ref() else { return };
        let s = self.rows[0].load(Ordering::Relaxed);
        let t = self.rows[1].load(Ordering::Relaxed);
        bar.set_message(line(&c.table, s, t, c.estimate, c.started.elapsed(), false));
        bar.tick();
    }

    /// A table is done: on a terminal the bar moves on; in a log, one line.
    pub fn table_finished(&self, table: &TableOutcome) {
        if self.mode != Mode::Lines {
            return;
        }
        let Ok(c) = self.current.lock() else { return };
        let Some(c) = c.as_ref() else { return };
        let text = match &table.error {
            Some(_) => format!("{}: could not be compared", c.table),
            None => line(
                &c.table,
                table.source_rows,
                table.target_rows,
                c.estimate,
                c.started.elapsed(),
                true,
            ),
        };
        let text = driftsum::report::text::escape_text(&text).into_owned();
        let _ = writeln!(std::io::stderr().lock(), "driftsum: {text}");
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `orders: 120,000 of ~200,000 rows (60%), 40,000 rows/s, 2s left
/// (target 119,998)`; a finished table says `done in`.
fn line(
    table: &str,
    source: u64,
    target: u64,
    estimate: Option<u64>,
    elapsed: Duration,
    done: bool,
) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = match secs > 0.0 {
        true => (source.max(target) as f64 / secs) as u64,
        false => 0,
    };
    let mut out = format!("{}: {} ", escape(table), thousands(source));
    match estimate {
        // An estimate is a statistic: a table may have outgrown it.
        Some(e) if e > 0 && !done => {
            let pct = (source as f64 * 100.0 / e as f64).min(100.0);
            out.push_str(&format!("of ~{} rows ({pct:.0}%)", thousands(e)));
        }
        Some(e) => out.push_str(&format!(
            "{} (estimate {})",
            if source == 1 { "row" } else { "rows" },
            thousands(e)
        )),
        None => out.push_str(if source == 1 { "row" } else { "rows" }),
    }
    if target != source {
        out.push_str(&format!(" (target {})", thousands(target)));
    }
    if done {
        out.push_str(&format!(", done in {}", duration(secs)));
    }
    if rate > 0 {
        out.push_str(&format!(", {} rows/s", thousands(rate)));
    }
    if let (false, Some(e), true) = (done, estimate, rate > 0) {
        if e > source {
            let left = (e - source) as f64 / rate as f64;
            out.push_str(&format!(", about {} left", duration(left)));
        }
    }
    out
}

fn escape(name: &str) -> String {
    driftsum::report::text::escape_name(name).into_owned()
}

/// `0.4s`, `42s`, `3m 05s`, `2h 07m`.
fn duration(secs: f64) -> String {
    if secs < 10.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// A sink that tells the progress which table runs, then hands everything
/// on to the report's own sink.
pub struct Tracking<'a> {
    pub inner: &'a mut dyn DiffSink,
    pub progress: &'a ScanProgress,
}

impl DiffSink for Tracking<'_> {
    fn table_started(&mut self, table: &TableOutcome) -> std::io::Result<()> {
        self.progress.table_started(&table.table);
        self.inner.table_started(table)
    }

    fn difference(&mut self, table: &TableOutcome, d: &Difference) -> std::io::Result<()> {
        self.inner.difference(table, d)
    }

    fn table_finished(&mut self, table: &TableOutcome) -> std::io::Result<()> {
        self.progress.table_finished(table);
        self.inner.table_finished(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_how_far() {
        let l = line(
            "orders",
            120_000,
            120_000,
            Some(200_000),
            Duration::from_secs(3),
            false,
        );
        assert_eq!(
            l,
            "orders: 120,000 of ~200,000 rows (60%), 40,000 rows/s, about 2.0s left"
        );
        let l = line("t", 5, 4, None, Duration::from_secs(100), true);
        assert_eq!(l, "t: 5 rows (target 4), done in 1m 40s");
        let l = line("t", 1, 1, Some(3), Duration::from_secs(100), true);
        assert_eq!(l, "t: 1 row (estimate 3), done in 1m 40s");
        // A table grown past its estimate stays at 100%, with no time left.
        let l = line("t", 300, 300, Some(200), Duration::from_secs(1), false);
        assert_eq!(l, "t: 300 of ~200 rows (100%), 300 rows/s");
        assert_eq!(duration(7_650.0), "2h 07m");
    }
}
