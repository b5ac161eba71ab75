//! Pattern analysis over the run history (`driftsum history patterns`, the
//! dashboard): which tables drift, where in their key space, when, whether
//! drift grows or keeps coming back, how long incidents last, how much of
//! what differed was only in flight, and what each level costs per table.
//!
//! The SQL is a few loaders at the top, in plain portable SQL with numbered
//! parameters (so another history backend can run the same text); every
//! analysis below them is a pure function over the loaded structs.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::Value as J;

use super::db::{Db, DbError};
use super::incident::Incident;
use super::observation;
pub use super::observation::Observation;
use super::query::parse;
use super::{History, HistoryError, Status};

mod trends;
pub use trends::{analyze, cost, growing, recovery, Cost, Growth, Patterns, Recovery};

/// A drifted key range of one result (first and last key, by column).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DriftRange {
    pub result: i64,
    pub first: J,
    pub last: J,
}

/// One stored difference confirmed as drift (not in flight, not recent).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DriftKey {
    pub result: i64,
    pub kind: String,
    pub key: J,
}

/// Everything the analyses read, loaded at once.
#[derive(Clone, Debug, Default)]
pub struct PatternInput {
    /// Oldest first.
    pub results: Vec<Observation>,
    pub ranges: Vec<DriftRange>,
    pub keys: Vec<DriftKey>,
    /// Open incidents, and those closed since the cutoff.
    pub incidents: Vec<Incident>,
}

fn load_results(db: &mut Db<'_>, since: i64) -> Result<Vec<Observation>, DbError> {
    db.query_map(
        &format!(
            "SELECT {} FROM results r WHERE r.started >= $1 ORDER BY r.started, r.id",
            observation::COLUMNS
        ),
        args![since],
        observation::read,
    )
}

fn load_ranges(db: &mut Db<'_>, since: i64) -> Result<Vec<DriftRange>, DbError> {
    db.query_map(
        "SELECT g.result_id, g.first, g.last FROM ranges g
         JOIN results r ON r.id = g.result_id
         WHERE r.started >= $1 AND r.status = 'drift'",
        args![since],
        |r| {
            Ok(DriftRange {
                result: r.get(0)?,
                first: parse(&r.get::<_, String>(1)?),
                last: parse(&r.get::<_, String>(2)?),
            })
        },
    )
}

fn load_keys(db: &mut Db<'_>, since: i64) -> Result<Vec<DriftKey>, DbError> {
    db.query_map(
        "SELECT d.result_id, d.kind, d.key FROM differences d
         JOIN results r ON r.id = d.result_id
         WHERE r.started >= $1 AND d.in_flight = 0 AND d.recent = 0",
        args![since],
        |r| {
            Ok(DriftKey {
                result: r.get(0)?,
                kind: r.get(1)?,
                key: parse(&r.get::<_, String>(2)?),
            })
        },
    )
}

impl History {
    /// The results, drifted ranges, drifted keys and incidents since
    /// `since` (Unix seconds), for the analyses below.
    pub fn pattern_input(&self, since: i64) -> Result<PatternInput, HistoryError> {
        let results = self.direct(|db| load_results(db, since))?;
        let ranges = self.direct(|db| load_ranges(db, since))?;
        let keys = self.direct(|db| load_keys(db, since))?;
        let incidents = self.incidents(since)?;
        Ok(PatternInput {
            results,
            ranges,
            keys,
            incidents,
        })
    }
}

/// Knobs of the analyses.
#[derive(Clone, Copy, Debug)]
pub struct PatternOptions {
    /// A range recurs when its drift overlaps in at least `recur_k` of the
    /// last `recur_n` completed results of its (table, level).
    pub recur_k: usize,
    pub recur_n: usize,
    /// Drift grows when this many drifting results in a row each find more
    /// rows than the one before.
    pub grow_runs: usize,
    /// Now, Unix seconds (the age of open incidents).
    pub now: i64,
}

impl PatternOptions {
    pub fn new(now: i64) -> PatternOptions {
        PatternOptions {
            recur_k: 3,
            recur_n: 100,
            grow_runs: 3,
            now,
        }
    }
}

/// The completed results of each (table, level), oldest first.
fn by_pair(results: &[Observation]) -> BTreeMap<(&str, &str), Vec<&Observation>> {
    let mut m: BTreeMap<(&str, &str), Vec<&Observation>> = BTreeMap::new();
    for o in results.iter().filter(|o| o.completed()) {
        m.entry((o.table.as_str(), o.level.as_str()))
            .or_default()
            .push(o);
    }
    m
}

/// How one (table, level) fared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableRank {
    pub table: String,
    pub level: String,
    /// Completed results (in sync or drift).
    pub runs: usize,
    pub drifting_runs: usize,
    pub missing: i64,
    pub extra: i64,
    pub changed: i64,
    pub drifted_rows: i64,
    /// Differences that agreed when read again, and in how many results.
    pub in_flight_rows: i64,
    pub in_flight_runs: usize,
    /// The share of differences seen that were only in flight (0 to 1;
    /// `None` when nothing differed): near 1, a lagging sync; near 0 with
    /// drift, a lossy one.
    pub in_flight_rate: Option<f64>,
    /// `in_sync`, `in_flight_only` (a lagging sync, no confirmed drift) or
    /// `drift`.
    pub behaviour: &'static str,
}

/// Tables ranked by drifting results, then drifted rows.
pub fn rank(results: &[Observation]) -> Vec<TableRank> {
    let mut out: Vec<TableRank> = by_pair(results)
        .into_iter()
        .map(|((table, level), obs)| {
            let sum = |f: fn(&Observation) -> i64| obs.iter().map(|o| f(o)).sum::<i64>();
            let (missing, extra, changed) =
                (sum(|o| o.missing), sum(|o| o.extra), sum(|o| o.changed));
            let drifted_rows = missing + extra + changed;
            let in_flight_rows = sum(|o| o.in_flight);
            let drifting_runs = obs.iter().filter(|o| o.status == Status::Drift).count();
            let seen = drifted_rows + in_flight_rows;
            TableRank {
                table: table.to_string(),
                level: level.to_string(),
                runs: obs.len(),
                drifting_runs,
                missing,
                extra,
                changed,
                drifted_rows,
                in_flight_rows,
                in_flight_runs: obs.iter().filter(|o| o.in_flight > 0).count(),
                in_flight_rate: (seen > 0).then(|| in_flight_rows as f64 / seen as f64),
                behaviour: match (drifting_runs, in_flight_rows) {
                    (0, 0) => "in_sync",
                    (0, _) => "in_flight_only",
                    _ => "drift",
                },
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.drifting_runs
            .cmp(&a.drifting_runs)
            .then(b.drifted_rows.cmp(&a.drifted_rows))
            .then_with(|| (&a.table, &a.level).cmp(&(&b.table, &b.level)))
    });
    out
}

/// Orders two key values as the engines would for numbers and text, and
/// compound keys column by column in key order; `None` when they are of
/// kinds that do not compare.
pub fn key_cmp(a: &J, b: &J) -> Option<Ordering> {
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (J::String(x), J::String(y)) => Some(x.cmp(y)),
        (J::Bool(x), J::Bool(y)) => Some(x.cmp(y)),
        (J::Null, J::Null) => Some(Ordering::Equal),
        (J::Object(x), J::Object(y)) if x.len() == y.len() => {
            for ((kx, vx), (ky, vy)) in x.iter().zip(y.iter()) {
                if kx != ky {
                    return None;
                }
                match key_cmp(vx, vy)? {
                    Ordering::Equal => continue,
                    o => return Some(o),
                }
            }
            Some(Ordering::Equal)
        }
        _ => None,
    }
}

/// A key range whose drift came back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecurringRange {
    pub table: String,
    pub level: String,
    /// The union of the overlapping drifted ranges.
    pub first: J,
    pub last: J,
    /// In how many of the last `of_runs` completed results it drifted.
    pub runs: usize,
    pub of_runs: usize,
    /// The hours of day (UTC) of the results that found it.
    pub hours: Vec<u8>,
}

/// Ranges whose drift overlaps in at least K of the last N completed
/// results of their (table, level). Ranges whose keys do not compare are
/// grouped only with identical ranges.
pub fn recurring_ranges(input: &PatternInput, opts: &PatternOptions) -> Vec<RecurringRange> {
    let mut of_result: HashMap<i64, Vec<&DriftRange>> = HashMap::new();
    for g in &input.ranges {
        of_result.entry(g.result).or_default().push(g);
    }
    let mut out = Vec::new();
    for ((table, level), obs) in by_pair(&input.results) {
        let window = &obs[obs.len().saturating_sub(opts.recur_n)..];
        // (first, last, result) of every drifted range in the window.
        let mut spans: Vec<(&J, &J, &Observation)> = window
            .iter()
            .flat_map(|o| {
                of_result
                    .get(&o.id)
                    .into_iter()
                    .flatten()
                    .map(move |g| (&g.first, &g.last, *o))
            })
            .collect();
        spans.sort_by(|a, b| key_cmp(a.0, b.0).unwrap_or(Ordering::Equal));
        // Merge overlapping spans into clusters, counting distinct results.
        let mut clusters: Vec<(J, J, BTreeSet<i64>, BTreeSet<u8>)> = Vec::new();
        for (first, last, o) in spans {
            let joins = clusters.last().is_some_and(|c| match key_cmp(first, &c.1) {
                Some(Ordering::Less | Ordering::Equal) => true,
                Some(Ordering::Greater) => false,
                None => *first == c.0 && *last == c.1,
            });
            if !joins {
                clusters.push((
                    first.clone(),
                    last.clone(),
                    BTreeSet::new(),
                    BTreeSet::new(),
                ));
            }
            let Some(c) = clusters.last_mut() else {
                continue;
            };
            if key_cmp(last, &c.1) == Some(Ordering::Greater) {
                c.1 = last.clone();
            }
            c.2.insert(o.id);
            c.3.insert(hour_of(o.started));
        }
        for (first, last, results, hours) in clusters {
            if results.len() >= opts.recur_k {
                out.push(RecurringRange {
                    table: table.to_string(),
                    level: level.to_string(),
                    first,
                    last,
                    runs: results.len(),
                    of_runs: window.len(),
                    hours: hours.into_iter().collect(),
                });
            }
        }
    }
    out.sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.table.cmp(&b.table)));
    out
}

/// A key that drifted, was found in sync, and drifted again.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecurringKey {
    pub table: String,
    pub level: String,
    pub key: J,
    /// How many times it drifted again after an in-sync result.
    pub returns: usize,
    /// When it last drifted, Unix seconds.
    pub last_seen: i64,
}

/// Keys that drifted, then a result of their (table, level) was in sync
/// (so the row was repaired or caught up), then drifted again. A drift
/// result that does not list a key is not taken as proof it was gone: the
/// stored differences may be capped.
pub fn recurring_keys(input: &PatternInput) -> Vec<RecurringKey> {
    let mut of_result: HashMap<i64, Vec<&DriftKey>> = HashMap::new();
    for k in &input.keys {
        of_result.entry(k.result).or_default().push(k);
    }
    let mut out = Vec::new();
    for ((table, level), obs) in by_pair(&input.results) {
        // key text -> (key, drifting now, returns, last seen)
        let mut state: BTreeMap<String, (J, bool, usize, i64)> = BTreeMap::new();
        for o in obs {
            if o.status == Status::InSync {
                for s in state.values_mut() {
                    s.1 = false;
                }
                continue;
            }
            for k in of_result.get(&o.id).into_iter().flatten() {
                let e = state
                    .entry(k.key.to_string())
                    .or_insert_with(|| (k.key.clone(), true, 0, o.started));
                if !e.1 {
                    e.1 = true;
                    e.2 += 1;
                }
                e.3 = o.started;
            }
        }
        for (_, (key, _, returns, last_seen)) in state {
            if returns > 0 {
                out.push(RecurringKey {
                    table: table.to_string(),
                    level: level.to_string(),
                    key,
                    returns,
                    last_seen,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        b.returns
            .cmp(&a.returns)
            .then(b.last_seen.cmp(&a.last_seen))
    });
    out
}

/// The hour of day (UTC) of a Unix time.
pub fn hour_of(t: i64) -> u8 {
    (t.rem_euclid(86_400) / 3_600) as u8
}

/// The day of the week (UTC) of a Unix time, Monday 0 to Sunday 6.
pub fn weekday_of(t: i64) -> u8 {
    // 1970-01-01 was a Thursday.
    ((t.div_euclid(86_400) + 3).rem_euclid(7)) as u8
}

/// When drift is found, by day of week (Monday first) and hour (UTC).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Heat {
    /// Drifting results started in each [weekday][hour].
    pub drift: Vec<Vec<u32>>,
    /// Completed results started in each [weekday][hour].
    pub checks: Vec<Vec<u32>>,
    /// Drifting results by hour, all days together.
    pub drift_by_hour: Vec<u32>,
    pub checks_by_hour: Vec<u32>,
}

pub fn heat(results: &[Observation]) -> Heat {
    let mut h = Heat {
        drift: vec![vec![0; 24]; 7],
        checks: vec![vec![0; 24]; 7],
        drift_by_hour: vec![0; 24],
        checks_by_hour: vec![0; 24],
    };
    for o in results.iter().filter(|o| o.completed()) {
        let (d, hr) = (weekday_of(o.started) as usize, hour_of(o.started) as usize);
        h.checks[d][hr] += 1;
        h.checks_by_hour[hr] += 1;
        if o.status == Status::Drift {
            h.drift[d][hr] += 1;
            h.drift_by_hour[hr] += 1;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{DiffCounts, RangeOutcome, TableOutcome};
    use crate::core::Value;
    use crate::history::incident::{Kind, Sighting};
    use crate::history::record::LevelResult;
    use crate::reconcile::{DiffKind, Difference};

    /// Monday 2026-01-05 00:00 UTC.
    const MONDAY: i64 = 1_767_571_200;
    const HOUR: i64 = 3_600;
    const DAYS: i64 = 14;

    fn diff(kind: DiffKind, id: i128) -> Difference {
        Difference {
            kind,
            key: vec![Value::Int(id)],
            source: None,
            target: None,
            changed: Vec::new(),
            float_only: false,
        }
    }

    /// A keys-level result: `missing` rows missing around ids 100..=120 (or
    /// in sync), `in_flight` more that agreed when read again.
    fn result(table: &str, at: i64, missing: u64, in_flight: u64) -> LevelResult {
        let mut r = LevelResult::new(table, "standard", "keys", at);
        r.seconds = 0.5;
        r.source_rows = Some(1000);
        r.target_rows = Some(1000 - missing);
        r.status = if missing > 0 {
            Status::Drift
        } else {
            Status::InSync
        };
        r.counts = DiffCounts {
            missing,
            ..DiffCounts::default()
        };
        let mut o = TableOutcome {
            table: table.into(),
            key_columns: vec!["id".into()],
            counts: r.counts,
            ..TableOutcome::default()
        };
        if missing > 0 {
            o.ranges.push(RangeOutcome {
                after: None,
                first: vec![Value::Int(100)],
                last: vec![Value::Int(120)],
                source_rows: 21,
                target_rows: 21 - missing,
            });
            o.differences = (0..missing as i128)
                .map(|i| diff(DiffKind::Missing, 105 + i))
                .collect();
        }
        r.rechecked = in_flight > 0;
        r.in_flight = (0..in_flight as i128)
            .map(|i| diff(DiffKind::Extra, 5000 + i))
            .collect();
        r.outcome = Some(o);
        r
    }

    /// Fourteen days of checks every four hours (02:00, 06:00, …) over:
    /// `orders`, whose ids 100..120 drift every night at 02:00 and are in
    /// sync the rest of the day; `events`, whose differences are only ever
    /// in flight; `users`, drifting from Friday 10:00 for three runs,
    /// repaired at 22:00; `audit`, whose drift grows over its last four
    /// runs; `stock`, always in sync.
    fn planted() -> (tempfile::TempDir, History) {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(dir.path().join("h.sqlite")).unwrap();
        let friday = MONDAY + 4 * 24 * HOUR;
        let slots: Vec<i64> = (0..DAYS * 6)
            .map(|i| MONDAY + 2 * HOUR + i * 4 * HOUR)
            .collect();
        let last = *slots.last().unwrap();
        for &at in &slots {
            let run = h.begin_run(at).unwrap();
            let nightly = if hour_of(at) == 2 { 2 } else { 0 };
            h.record(run, &result("orders", at, nightly, 0)).unwrap();
            h.record(run, &result("events", at, 0, 3)).unwrap();
            let users_drift = at >= friday + 10 * HOUR && at < friday + 22 * HOUR;
            let users = result("users", at, if users_drift { 2 } else { 0 }, 0);
            h.record(run, &users).unwrap();
            if users_drift {
                let s = Sighting {
                    table: "users",
                    tier: "standard",
                    level: "keys",
                    kind: Kind::Drift,
                    run,
                    at,
                    detail: J::Null,
                };
                h.sighted(&s).unwrap();
            } else {
                h.close_incidents("users", "keys", &[Kind::Drift], run, at)
                    .unwrap();
            }
            let steps_back = (last - at) / (4 * HOUR);
            let audit = if steps_back < 4 {
                1 << (3 - steps_back)
            } else {
                0
            };
            h.record(run, &result("audit", at, audit, 0)).unwrap();
            h.record(run, &result("stock", at, 0, 0)).unwrap();
            h.finish_run(run, at + 60).unwrap();
        }
        (dir, h)
    }

    fn analyzed() -> Patterns {
        let (_dir, h) = planted();
        let input = h.pattern_input(0).unwrap();
        analyze(&input, &PatternOptions::new(MONDAY + DAYS * 24 * HOUR))
    }

    #[test]
    fn weekday_and_hour_are_utc() {
        assert_eq!(weekday_of(MONDAY), 0);
        assert_eq!(weekday_of(MONDAY + 6 * 24 * HOUR + 23 * HOUR), 6);
        assert_eq!(hour_of(MONDAY + 2 * HOUR + 59), 2);
        assert_eq!(weekday_of(-1), 2, "1969-12-31 was a Wednesday");
    }

    #[test]
    fn ranks_the_nightly_drifter_first_and_tells_in_flight_from_drift() {
        let p = analyzed();
        let names: Vec<(&str, &str)> = p
            .tables
            .iter()
            .map(|t| (t.table.as_str(), t.behaviour))
            .collect();
        assert_eq!(
            names,
            [
                ("orders", "drift"),
                ("audit", "drift"),
                ("users", "drift"),
                ("events", "in_flight_only"),
                ("stock", "in_sync"),
            ]
        );
        let orders = &p.tables[0];
        assert_eq!(
            (orders.drifting_runs, orders.missing),
            (DAYS as usize, 2 * DAYS)
        );
        assert_eq!(orders.in_flight_rate, Some(0.0));
        let events = &p.tables[3];
        assert_eq!(events.in_flight_rate, Some(1.0));
        assert_eq!(events.in_flight_runs, events.runs);
        assert_eq!(p.tables[4].in_flight_rate, None);
    }

    #[test]
    fn finds_the_nightly_range_and_nothing_else_recurring() {
        let p = analyzed();
        assert_eq!(p.recurring_ranges.len(), 3, "{:?}", p.recurring_ranges);
        let orders = &p.recurring_ranges[0];
        assert_eq!(orders.table, "orders");
        assert_eq!(orders.first, serde_json::json!({"id": 100}));
        assert_eq!(orders.last, serde_json::json!({"id": 120}));
        assert_eq!(
            (orders.runs, orders.of_runs),
            (DAYS as usize, (DAYS * 6) as usize)
        );
        assert_eq!(orders.hours, [2]);
        // audit drifted in its last four runs, users in three of one day:
        // both reach K = 3, at the hours they drifted.
        let others: Vec<(&str, usize, &[u8])> = p.recurring_ranges[1..]
            .iter()
            .map(|r| (r.table.as_str(), r.runs, r.hours.as_slice()))
            .collect();
        assert_eq!(
            others,
            [
                ("audit", 4, &[10u8, 14, 18, 22][..]),
                ("users", 3, &[10u8, 14, 18][..])
            ]
        );
        // users' keys drifted once and never came back; orders' keys came
        // back every night after the day's in-sync results.
        assert!(p.recurring_keys.iter().all(|k| k.table == "orders"));
        let k105 = p
            .recurring_keys
            .iter()
            .find(|k| k.key == serde_json::json!({"id": 105}))
            .unwrap();
        assert_eq!(k105.returns, DAYS as usize - 1);
    }

    #[test]
    fn drift_clusters_at_two_in_the_night() {
        let p = analyzed();
        let peak = (0..24).max_by_key(|&h| p.when.drift_by_hour[h]).unwrap();
        assert_eq!(peak, 2);
        // orders every night, plus audit's and users' few.
        assert!(p.when.drift_by_hour[2] >= DAYS as u32);
        assert_eq!(p.when.drift_by_hour[0], 0);
        assert_eq!(
            p.when.checks_by_hour.iter().sum::<u32>(),
            5 * 6 * DAYS as u32
        );
        assert_eq!(
            p.when.drift.iter().map(|d| d[2]).sum::<u32>(),
            p.when.drift_by_hour[2]
        );
    }

    #[test]
    fn only_the_growing_table_grows() {
        let p = analyzed();
        assert_eq!(p.growing.len(), 1, "{:?}", p.growing);
        let g = &p.growing[0];
        assert_eq!(
            (g.table.as_str(), g.runs, g.from_rows, g.to_rows),
            ("audit", 4, 1, 8)
        );
        assert!(g.ongoing);
    }

    #[test]
    fn the_incident_closed_after_three_runs() {
        let p = analyzed();
        assert_eq!(p.recovery.len(), 1, "{:?}", p.recovery);
        let r = &p.recovery[0];
        assert_eq!(
            (r.table.as_str(), r.runs, r.closed_by),
            ("users", 3, "in_sync")
        );
        assert_eq!(r.open_seconds, 12 * HOUR);
    }

    #[test]
    fn costs_per_table() {
        let p = analyzed();
        let stock = p.cost.iter().find(|c| c.table == "stock").unwrap();
        assert_eq!(stock.rows, 1000);
        assert_eq!(stock.runs, (DAYS * 6) as usize);
        assert!((stock.seconds_per_million_rows.unwrap() - 500.0).abs() < 1e-9);
    }

    #[test]
    fn keys_compare_by_kind_and_column() {
        use serde_json::json;
        assert_eq!(key_cmp(&json!(2), &json!(10)), Some(Ordering::Less));
        assert_eq!(key_cmp(&json!("b"), &json!("a")), Some(Ordering::Greater));
        assert_eq!(key_cmp(&json!(1), &json!("1")), None);
        let (a, b) = (json!({"a": 1, "b": 9}), json!({"a": 2, "b": 0}));
        assert_eq!(key_cmp(&a, &b), Some(Ordering::Less));
    }

    #[test]
    fn an_empty_history_finds_nothing() {
        let p = analyze(&PatternInput::default(), &PatternOptions::new(0));
        assert!(p.tables.is_empty() && p.recurring_ranges.is_empty() && p.growing.is_empty());
        assert_eq!(p.when.drift_by_hour.iter().sum::<u32>(), 0);
    }
}
