//! Progress on stderr while scanning, only when stderr is a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use driftsum_core::Side;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner counting rows scanned on each side.
pub struct ScanProgress {
    bar: Option<ProgressBar>,
    rows: [AtomicU64; 2],
}

impl ScanProgress {
    pub fn new() -> ScanProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
                bar.set_style(style);
            }
            bar
        });
        ScanProgress {
            bar,
            rows: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    pub fn update(&self, side: Side, rows: u64) {
        let Some(bar) = &self.bar else { return };
        self.rows[side as usize].store(rows, Ordering::Relaxed);
        let s = self.rows[0].load(Ordering::Relaxed);
        let t = self.rows[1].load(Ordering::Relaxed);
        bar.set_message(format!("scanning: source {s} rows, target {t} rows"));
        bar.tick();
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
