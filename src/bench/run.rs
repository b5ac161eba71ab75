//! Measuring one pair: the comparison runs through the library exactly as
//! `driftsum diff` runs it, its findings are checked against the injected
//! drift, and its cost is recorded.

use std::collections::BTreeSet;
use std::time::Instant;

use super::data::Kind;
use super::generate::Pair;
use super::{memory, BenchError};
use crate::check::{self, DiffOptions, TablePair};
use crate::reconcile::DiffKind;
use crate::source;

/// What one comparison cost.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Measurement {
    /// The case's name (`plain`, or a pathology: see [`super::case`]).
    pub case: String,
    pub rows: u64,
    pub diffs: u64,
    /// How the drift was asked for: `10` (differences) or `10%` (of the rows).
    pub drift: String,
    /// Differences found (always equal to `diffs`: a mismatch is an error).
    pub found: u64,
    /// Wall time of the whole comparison, connecting included.
    pub seconds: f64,
    /// Scanning and hashing both sides (concurrently), and building the trees.
    pub scan_seconds: f64,
    /// Walking the two trees.
    pub walk_seconds: f64,
    /// Re-reading the drifted ranges and comparing them row by row.
    pub fetch_seconds: f64,
    /// Rows each side delivered per second of the scan phase (the sides are
    /// scanned at the same time, so each side's own rate is at least this).
    pub source_rows_per_second: f64,
    pub target_rows_per_second: f64,
    pub source_rows_read: u64,
    pub target_rows_read: u64,
    pub nodes_compared: u64,
    /// Bytes of node summaries a remote walk would exchange.
    pub bytes_exchanged: u64,
    pub round_trips: u64,
    /// Peak resident memory during the comparison (VmHWM after a reset);
    /// `None` where the system cannot tell.
    pub peak_memory_bytes: Option<u64>,
    /// How many times the comparison ran; the figures are the run with the
    /// median wall time.
    pub runs: usize,
}

/// Compares a pair once and checks that exactly its drift was found.
pub fn measure_once(pair: &Pair) -> Result<Measurement, BenchError> {
    let can_reset = memory::reset_peak();
    let started = Instant::now();
    let mut src = source::open(&pair.source.url).map_err(BenchError::Open)?;
    let mut tgt = source::open(&pair.target.url).map_err(BenchError::Open)?;
    let opts = DiffOptions {
        tables: vec![TablePair {
            source: pair.source.table.clone(),
            target: pair.target.table.clone(),
        }],
        config: pair.case.config(&pair.source.table),
        ..DiffOptions::default()
    };
    let run = check::diff(src.as_mut(), tgt.as_mut(), &opts, &|_, _| {});
    drop((src, tgt));
    let seconds = started.elapsed().as_secs_f64();
    let peak = if can_reset {
        memory::peak_bytes()
    } else {
        None
    };
    let fail = |message: String| BenchError::Diff {
        case: pair.case.name(),
        rows: pair.rows,
        diffs: pair.diffs,
        message,
    };
    let run = run.map_err(|e| fail(e.to_string()))?;
    let Some(t) = run.tables.first() else {
        return Err(fail("the comparison returned no table".into()));
    };
    if let Some(e) = &t.error {
        return Err(fail(e.clone()));
    }
    check_found(pair, t)?;
    let s = &t.stats;
    let rate = |rows: u64| match s.scan_seconds > 0.0 {
        true => rows as f64 / s.scan_seconds,
        false => 0.0,
    };
    Ok(Measurement {
        case: pair.case.name().to_string(),
        rows: pair.rows,
        diffs: pair.diffs,
        drift: pair.drift_label.clone(),
        found: t.differences.len() as u64,
        seconds,
        scan_seconds: s.scan_seconds,
        walk_seconds: s.walk_seconds,
        fetch_seconds: s.fetch_seconds,
        source_rows_per_second: rate(t.source_rows),
        target_rows_per_second: rate(t.target_rows),
        source_rows_read: s.source_rows_read,
        target_rows_read: s.target_rows_read,
        nodes_compared: s.nodes_compared,
        bytes_exchanged: s.bytes_exchanged,
        round_trips: s.round_trips,
        peak_memory_bytes: peak,
        runs: 1,
    })
}

/// Measures pairs `runs` times each, round-robin (so a burst of load from
/// elsewhere on the machine hits every pair alike, not one pair's runs), after
/// one unmeasured comparison that warms the page cache and the allocator; keeps
/// each pair's run with the median wall time.
pub fn measure_all(pairs: &[Pair], runs: usize) -> Result<Vec<Measurement>, BenchError> {
    if let Some(first) = pairs.first() {
        measure_once(first)?;
    }
    let mut all: Vec<Vec<Measurement>> = vec![Vec::new(); pairs.len()];
    for _ in 0..runs.max(1) {
        for (p, ms) in pairs.iter().zip(&mut all) {
            ms.push(measure_once(p)?);
        }
    }
    Ok(all.into_iter().filter_map(median).collect())
}

fn median(mut ms: Vec<Measurement>) -> Option<Measurement> {
    ms.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let n = ms.len();
    let mut m = ms.into_iter().nth(n / 2)?;
    m.runs = n;
    Some(m)
}

/// Checks the differences found against the drift: same keys, same kinds.
fn check_found(pair: &Pair, t: &check::TableOutcome) -> Result<(), BenchError> {
    let expected: BTreeSet<(i64, Kind)> = pair.drift.iter().map(|d| (d.key, d.kind)).collect();
    let mut found = BTreeSet::new();
    let mut odd = Vec::new();
    for d in &t.differences {
        let kind = match d.kind {
            DiffKind::Changed => Kind::Changed,
            DiffKind::Missing => Kind::Missing,
            DiffKind::Extra => Kind::Extra,
        };
        match pair.case.key_id(&d.key) {
            Some(k) => {
                found.insert((k, kind));
            }
            None => odd.push(format!("{kind} with key {:?}", d.key)),
        }
    }
    let missed: Vec<String> = expected
        .difference(&found)
        .take(5)
        .map(|(k, kind)| format!("{kind} {k}"))
        .collect();
    let unexpected: Vec<String> = found
        .difference(&expected)
        .take(5)
        .map(|(k, kind)| format!("{kind} {k}"))
        .collect();
    if missed.is_empty()
        && unexpected.is_empty()
        && odd.is_empty()
        && t.differences.len() == expected.len()
        && t.column_differences.is_empty()
    {
        return Ok(());
    }
    Err(BenchError::Mismatch {
        case: pair.case.name(),
        rows: pair.rows,
        diffs: pair.diffs,
        detail: format!(
            "found {} differences for {} injected; not found: [{}]; not injected: [{}]{}",
            t.differences.len(),
            expected.len(),
            missed.join(", "),
            unexpected.join(", "),
            if odd.is_empty() {
                String::new()
            } else {
                format!("; unreadable keys: {}", odd.join(", "))
            }
        ),
    })
}
