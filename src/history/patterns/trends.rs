//! The analyses over time of [`super`]: the whole set ([`analyze`]), drift
//! that grows, how long incidents lasted and what each level costs. A child
//! of `patterns` so that the loaders and the per-check analyses stay in one
//! short file; `patterns` re-exports what is here.

use serde::Serialize;

use super::{
    by_pair, heat, rank, recurring_keys, recurring_ranges, Heat, Observation, PatternInput,
    PatternOptions, RecurringKey, RecurringRange, TableRank,
};
use crate::history::incident::Incident;
use crate::history::Status;

/// What the analyses found.
#[derive(Clone, Debug, Serialize)]
pub struct Patterns {
    /// (table, level) pairs that judged at least once, most drifting first.
    pub tables: Vec<TableRank>,
    pub recurring_ranges: Vec<RecurringRange>,
    pub recurring_keys: Vec<RecurringKey>,
    pub when: Heat,
    pub growing: Vec<Growth>,
    pub recovery: Vec<Recovery>,
    pub cost: Vec<Cost>,
}

/// Runs all the analyses.
pub fn analyze(input: &PatternInput, opts: &PatternOptions) -> Patterns {
    Patterns {
        tables: rank(&input.results),
        recurring_ranges: recurring_ranges(input, opts),
        recurring_keys: recurring_keys(input),
        when: heat(&input.results),
        growing: growing(&input.results, opts.grow_runs),
        recovery: recovery(&input.incidents, &input.results, opts.now),
        cost: cost(&input.results),
    }
}

/// A stretch of drift that grew result over result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Growth {
    pub table: String,
    pub level: String,
    /// Drifting results in the stretch.
    pub runs: usize,
    pub from_rows: i64,
    pub to_rows: i64,
    pub from: i64,
    pub to: i64,
    /// Whether the stretch reaches the newest result.
    pub ongoing: bool,
}

/// The longest stretch per (table, level) of at least `min_runs` drifting
/// results in a row, each finding more rows than the one before.
pub fn growing(results: &[Observation], min_runs: usize) -> Vec<Growth> {
    let mut out = Vec::new();
    for ((table, level), obs) in by_pair(results) {
        let mut best: Option<(usize, usize)> = None;
        let mut start = 0;
        for i in 0..obs.len() {
            let grows = i > start
                && obs[i].status == Status::Drift
                && obs[i - 1].status == Status::Drift
                && obs[i].drifted() > obs[i - 1].drifted();
            if !grows {
                start = i;
                if obs[i].status != Status::Drift {
                    continue;
                }
            }
            let len = i - start + 1;
            if len >= min_runs.max(2) && best.is_none_or(|(s, e)| len > e - s) {
                best = Some((start, i));
            }
        }
        if let Some((s, e)) = best {
            out.push(Growth {
                table: table.to_string(),
                level: level.to_string(),
                runs: e - s + 1,
                from_rows: obs[s].drifted(),
                to_rows: obs[e].drifted(),
                from: obs[s].started,
                to: obs[e].started,
                ongoing: e == obs.len() - 1,
            });
        }
    }
    out
}

/// How long one incident stayed open and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recovery {
    pub id: i64,
    pub table: String,
    pub level: String,
    pub kind: &'static str,
    pub opened: i64,
    pub closed: Option<i64>,
    /// Until closed, or until now for an open one.
    pub open_seconds: i64,
    /// Runs in a row that found it.
    pub runs: u32,
    /// `open`; `in_sync` (the sync caught up or the rows were repaired:
    /// the history does not tell which); `in_flight` (the closing check
    /// found the differences in flight); `unknown` (its closing result is
    /// older than the cutoff or gone).
    pub closed_by: &'static str,
}

pub fn recovery(incidents: &[Incident], results: &[Observation], now: i64) -> Vec<Recovery> {
    incidents
        .iter()
        .map(|i| {
            let closing = i.closed_run.and_then(|run| {
                results
                    .iter()
                    .find(|o| o.run == run && o.table == i.table && o.level == i.level)
            });
            Recovery {
                id: i.id,
                table: i.table.clone(),
                level: i.level.clone(),
                kind: i.kind.as_str(),
                opened: i.opened,
                closed: i.closed,
                open_seconds: i.closed.unwrap_or(now).saturating_sub(i.opened).max(0),
                runs: i.runs,
                closed_by: match (i.closed, closing) {
                    (None, _) => "open",
                    (Some(_), Some(o)) if o.in_flight > 0 => "in_flight",
                    (Some(_), Some(o)) if o.status == Status::InSync => "in_sync",
                    _ => "unknown",
                },
            }
        })
        .collect()
}

/// What checking one (table, level) costs against its size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cost {
    pub table: String,
    pub level: String,
    pub runs: usize,
    /// The newest result's larger side.
    pub rows: i64,
    pub mean_seconds: f64,
    pub mean_bytes: f64,
    pub mean_rows_read: f64,
    /// Seconds per million rows (`None` for an empty table).
    pub seconds_per_million_rows: Option<f64>,
}

pub fn cost(results: &[Observation]) -> Vec<Cost> {
    by_pair(results)
        .into_iter()
        .map(|((table, level), obs)| {
            let n = obs.len() as f64;
            let rows = obs
                .iter()
                .rev()
                .find_map(|o| match (o.source_rows, o.target_rows) {
                    (None, None) => None,
                    (s, t) => Some(s.unwrap_or(0).max(t.unwrap_or(0))),
                })
                .unwrap_or(0);
            let mean_seconds = obs.iter().map(|o| o.seconds).sum::<f64>() / n;
            Cost {
                table: table.to_string(),
                level: level.to_string(),
                runs: obs.len(),
                rows,
                mean_seconds,
                mean_bytes: obs.iter().map(|o| o.bytes as f64).sum::<f64>() / n,
                mean_rows_read: obs.iter().map(|o| o.rows_read as f64).sum::<f64>() / n,
                seconds_per_million_rows: (rows > 0)
                    .then(|| mean_seconds * 1_000_000.0 / rows as f64),
            }
        })
        .collect()
}
