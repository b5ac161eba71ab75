//! Property tests: `driftsum::check::diff` over two real SQLite files must
//! report exactly what a naive reference reports.
//!
//! Each case generates a table (integer, text, compound or blob key; value
//! columns of every declared type driftsum maps; NULLs), derives a replica by
//! random mutations (inserts, deletes, column updates, one-for-one
//! replacements, bursts of up to 1,000 consecutive deletes, everything
//! deleted, empty tables), writes both into SQLite files, runs
//! `driftsum::check::diff` with `SqliteSource`s and compares its differences,
//! as a set of `(kind, key, sorted changed column names)`, with a reference
//! computed by loading both tables with rusqlite and matching rows by key.
//! Row counts and the exit code are checked too, and every comparison runs
//! with a deep tree (`Shape { leaf_target: 4, fanout: 3 }`) and with the
//! default shape, in both directions where the schema allows it.
//!
//! * `same_representation_matches_reference`: both sides store values the
//!   same way; the reference compares raw stored values (REAL -0.0 == 0.0).
//! * `big_tables_with_bursts_match_reference`: the same with 2,000-5,000
//!   rows, so that bursts of up to 1,000 consecutive deletes fit.
//! * `mixed_representations_match_model`: the generator holds a logical model
//!   per row, and each side stores every cell in a randomly chosen
//!   representation (ISO text / Unix seconds / Julian day, decimal text /
//!   REAL / INTEGER, `true` / 1, hyphenated UUID text / 16-byte blob, ...),
//!   with the replica's declared types sometimes left out; the reference
//!   compares the models.
//! * `text_timestamp_keys_match_reference`: TIMESTAMP keys stored as text,
//!   in one fixed form per side (which makes them range-readable) or in
//!   mixed forms, the sides' precisions differing.
//! * `float_digits_tolerates_tiny_float_noise`: with
//!   `CanonOptions { float_digits: Some(6) }`, relative perturbations of
//!   1e-12 are not drift and 1e-3 ones are (and without the option both are).
//!
//! Failures print the scenario and the resolved mutation list, and the
//! differences only one of library and reference reported.
//!
//! The `bug_*` tests (ignored) are minimal cases of driftsum bugs the
//! properties found: keys stored in another SQLite storage class than the
//! column's type (a TEXT key as a blob, an INTEGER key as text) or a NULL key
//! are skipped by the range re-reads. The mixed property therefore varies key
//! storage only for UUID keys (see `MIXED_KEY_STORAGE`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use driftsum::check::{self, DiffOptions, DiffSink, Endpoint, RunOutcome, TableOutcome};
use driftsum::config::{ColumnConfig, Config, TableConfig};
use driftsum::core::{CanonOptions, Shape, Side, Value};
use driftsum::reconcile::{DiffKind, Difference};
use driftsum::source::sqlite::SqliteSource;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;
use rusqlite::types::Value as Sql;
use rusqlite::Connection;

use crate::util::Scratch;

// ------------------------------------------------------------------ plumbing

fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

const TABLE: &str = "items";

fn shapes() -> [Shape; 2] {
    [
        Shape {
            leaf_target: 4,
            fanout: 3,
        },
        Shape::default(),
    ]
}

/// `cases` unless `DIFF_REFERENCE_CASES` asks for another number (for
/// longer hunts: `DIFF_REFERENCE_CASES=1000 cargo test --test diff_reference`).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("DIFF_REFERENCE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Never write regression files next to the tests.
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

/// One key column value, ordered like driftsum's key bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum K {
    I(i64),
    T(String),
    B(Vec<u8>),
    U([u8; 16]),
}

impl K {
    fn from_sql(v: &Sql) -> K {
        match v {
            Sql::Integer(i) => K::I(*i),
            Sql::Text(s) => K::T(s.clone()),
            Sql::Blob(b) => K::B(b.clone()),
            other => panic!("unexpected stored key {other:?}"),
        }
    }
    fn from_value(v: &Value) -> K {
        match v {
            Value::Int(i) => K::I(i64::try_from(*i).expect("key fits i64")),
            Value::Text(s) => K::T(s.clone()),
            Value::Bytes(b) => K::B(b.clone()),
            Value::Uuid(u) => K::U(*u),
            // Date-time keys (property 8) as microseconds.
            Value::Timestamp(m) | Value::TimestampNaive(m) => {
                K::I(i64::try_from(*m).expect("key fits i64"))
            }
            other => panic!("unexpected key value from driftsum: {other:?}"),
        }
    }
    /// The canonical stored form (used where representations do not vary).
    fn to_sql(&self) -> Sql {
        match self {
            K::I(i) => Sql::Integer(*i),
            K::T(s) => Sql::Text(s.clone()),
            K::B(b) => Sql::Blob(b.clone()),
            K::U(u) => Sql::Blob(u.to_vec()),
        }
    }
}

type Key = Vec<K>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Missing,
    Extra,
    Changed,
}

/// One difference: kind, key, sorted names of the changed columns.
type Found = (Kind, Key, Vec<String>);

/// The naive reference: match rows by key, compare every value column.
fn reference<V>(
    src: &BTreeMap<Key, Vec<V>>,
    tgt: &BTreeMap<Key, Vec<V>>,
    names: &[String],
    eq: impl Fn(&V, &V) -> bool,
) -> Vec<Found> {
    let mut out = Vec::new();
    for (k, s) in src {
        match tgt.get(k) {
            None => out.push((Kind::Missing, k.clone(), Vec::new())),
            Some(t) => {
                let mut changed: Vec<String> = (0..names.len())
                    .filter(|&i| !eq(&s[i], &t[i]))
                    .map(|i| names[i].clone())
                    .collect();
                changed.sort();
                if !changed.is_empty() {
                    out.push((Kind::Changed, k.clone(), changed));
                }
            }
        }
    }
    for k in tgt.keys().filter(|k| !src.contains_key(*k)) {
        out.push((Kind::Extra, k.clone(), Vec::new()));
    }
    out.sort();
    out
}

fn raw_eq(a: &Sql, b: &Sql) -> bool {
    match (a, b) {
        // -0.0 == 0.0; no NaN is ever generated (SQLite stores NaN as NULL).
        (Sql::Real(x), Sql::Real(y)) => x == y,
        _ => a == b,
    }
}

fn run_diff(src: &Path, tgt: &Path, opts: &DiffOptions) -> RunOutcome {
    let mut a = SqliteSource::open(src).expect("open source");
    let mut b = SqliteSource::open(tgt).expect("open target");
    let progress = |_: Side, _: u64| {};
    check::diff(&mut a, &mut b, opts, &progress).expect("diff runs")
}

fn show(list: &[&Found]) -> String {
    let mut s = String::new();
    for f in list.iter().take(25) {
        let _ = writeln!(s, "    {f:?}");
    }
    if list.len() > 25 {
        let _ = writeln!(s, "    ... and {} more", list.len() - 25);
    }
    s
}

/// Runs the library and checks its outcome against `expected`.
fn check_run(
    src: &Path,
    tgt: &Path,
    opts: &DiffOptions,
    expected: &[Found],
    rows: (usize, usize),
    value_names: &[String],
    context: &str,
) -> Result<(), TestCaseError> {
    let run = run_diff(src, tgt, opts);
    let ctx = format!("options: {opts:?}\n{context}");
    prop_assert_eq!(run.tables.len(), 1, "tables: {:?}\n{}", run.tables, ctx);
    let t = &run.tables[0];
    prop_assert!(t.error.is_none(), "table error {:?}\n{}", t.error, ctx);
    prop_assert!(
        t.column_differences.is_empty(),
        "{:?}",
        t.column_differences
    );
    let mut cols = t.columns.clone();
    cols.sort();
    let mut want_cols = value_names.to_vec();
    want_cols.sort();
    prop_assert_eq!(cols, want_cols, "compared columns\n{}", ctx);
    prop_assert_eq!(
        (t.source_rows, t.target_rows),
        (rows.0 as u64, rows.1 as u64),
        "row counts\n{}",
        ctx
    );
    let mut found = Vec::new();
    for d in &t.differences {
        let kind = match d.kind {
            DiffKind::Missing => Kind::Missing,
            DiffKind::Extra => Kind::Extra,
            DiffKind::Changed => Kind::Changed,
        };
        let shape_ok = match kind {
            Kind::Missing => d.source.is_some() && d.target.is_none() && d.changed.is_empty(),
            Kind::Extra => d.source.is_none() && d.target.is_some() && d.changed.is_empty(),
            Kind::Changed => d.source.is_some() && d.target.is_some() && !d.changed.is_empty(),
        };
        prop_assert!(shape_ok, "malformed difference {:?}\n{}", d, ctx);
        // A missing or extra row shows every column; a changed row the
        // changed ones, in order, each side's value differing.
        let width = match kind {
            Kind::Changed => d.changed.len(),
            _ => t.columns.len(),
        };
        for v in d.source.iter().chain(d.target.iter()) {
            prop_assert_eq!(v.len(), width, "value vector width\n{}", ctx);
        }
        prop_assert!(
            d.changed.windows(2).all(|w| w[0] < w[1]),
            "{:?}\n{}",
            d,
            ctx
        );
        if let (Kind::Changed, Some(s), Some(g)) = (kind, &d.source, &d.target) {
            prop_assert!(s.iter().zip(g).all(|(a, b)| a != b), "{:?}\n{}", d, ctx);
        }
        let mut names: Vec<String> = d.changed.iter().map(|&i| t.columns[i].clone()).collect();
        names.sort();
        found.push((kind, d.key.iter().map(K::from_value).collect(), names));
    }
    found.sort();
    if found != expected {
        let only_lib: Vec<&Found> = found.iter().filter(|f| !expected.contains(f)).collect();
        let only_ref: Vec<&Found> = expected.iter().filter(|e| !found.contains(e)).collect();
        return Err(TestCaseError::fail(format!(
            "driftsum and the reference disagree ({} vs {} differences)\n  \
             only driftsum reported:\n{}  only the reference reported:\n{}{}",
            found.len(),
            expected.len(),
            show(&only_lib),
            show(&only_ref),
            ctx
        )));
    }
    let code = run.exit_code();
    prop_assert_eq!(
        code,
        if expected.is_empty() { 0 } else { 1 },
        "exit code\n{}",
        ctx
    );
    Ok(())
}

// ------------------------------------------------------------------ tables

/// A table layout: columns in logical order (keys first), how the key is
/// declared, and the order the columns appear in `CREATE TABLE`.
#[derive(Clone, Debug)]
struct Table {
    /// (name, declared type), keys first.
    cols: Vec<(String, String)>,
    nkey: usize,
    /// Declare the single key column inline as `... PRIMARY KEY` (needed for
    /// a rowid alias `INTEGER PRIMARY KEY`).
    inline_pk: bool,
    without_rowid: bool,
}

impl Table {
    fn ddl(&self, perm: &[usize]) -> String {
        let mut parts = Vec::new();
        for &i in perm {
            let (name, decl) = &self.cols[i];
            let mut p = format!("{} {decl}", q(name));
            if self.inline_pk && i == 0 {
                p.push_str(" PRIMARY KEY");
            }
            parts.push(p.trim_end().to_string());
        }
        if !self.inline_pk {
            let keys: Vec<String> = self.cols[..self.nkey].iter().map(|c| q(&c.0)).collect();
            parts.push(format!("PRIMARY KEY ({})", keys.join(", ")));
        }
        format!(
            "CREATE TABLE {} ({}){}",
            q(TABLE),
            parts.join(", "),
            if self.without_rowid {
                " WITHOUT ROWID"
            } else {
                ""
            }
        )
    }

    fn names(&self) -> Vec<String> {
        self.cols.iter().map(|c| c.0.clone()).collect()
    }

    fn value_names(&self) -> Vec<String> {
        self.cols[self.nkey..].iter().map(|c| c.0.clone()).collect()
    }

    /// Writes rows (full rows in logical column order) into a new file.
    fn write(&self, path: &Path, perm: &[usize], rows: impl Iterator<Item = Vec<Sql>>) {
        let mut conn = Connection::open(path).expect("create db");
        conn.execute_batch(&self.ddl(perm))
            .unwrap_or_else(|e| panic!("{e}: {}", self.ddl(perm)));
        let names: Vec<String> = self.names().iter().map(|n| q(n)).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            q(TABLE),
            names.join(", "),
            vec!["?"; names.len()].join(", ")
        );
        let tx = conn.transaction().expect("begin");
        {
            let mut st = tx.prepare(&sql).expect("prepare insert");
            for row in rows {
                st.execute(rusqlite::params_from_iter(row.iter()))
                    .unwrap_or_else(|e| panic!("insert {row:?}: {e}"));
            }
        }
        tx.commit().expect("commit");
    }

    /// Loads the table as stored: key → value columns.
    fn load(&self, path: &Path) -> BTreeMap<Key, Vec<Sql>> {
        let conn = Connection::open(path).expect("open db");
        let names: Vec<String> = self.names().iter().map(|n| q(n)).collect();
        let sql = format!("SELECT {} FROM {}", names.join(", "), q(TABLE));
        let mut st = conn.prepare(&sql).expect("prepare select");
        let mut rows = st.query([]).expect("select");
        let mut out = BTreeMap::new();
        while let Some(r) = rows.next().expect("row") {
            let vals: Vec<Sql> = (0..names.len()).map(|i| r.get(i).expect("value")).collect();
            let key: Key = vals[..self.nkey].iter().map(K::from_sql).collect();
            let prev = out.insert(key, vals[self.nkey..].to_vec());
            assert!(prev.is_none(), "duplicate key stored");
        }
        out
    }
}

fn identity(n: usize) -> Vec<usize> {
    (0..n).collect()
}

// ------------------------------------------------------------------ mutations

/// A model cell that a mutation can overwrite.
trait Cell: Clone + std::fmt::Debug {
    /// Overwrites this cell with `new`; `reencode_only` keeps the logical
    /// value and changes only how the replica stores it (where that exists).
    fn assign(&mut self, new: &Self, reencode_only: bool);
}

impl Cell for Sql {
    fn assign(&mut self, new: &Self, _: bool) {
        *self = new.clone();
    }
}

#[derive(Clone, Debug)]
enum Mutation<C> {
    Insert {
        key: Key,
        row: Vec<C>,
    },
    Delete {
        at: Index,
    },
    Update {
        at: Index,
        mask: u16,
        row: Vec<C>,
        reencode_only: bool,
    },
    /// Delete the key at `at` and insert `key`: the row count stays.
    Replace {
        at: Index,
        key: Key,
        row: Vec<C>,
    },
    /// Delete up to `len` consecutive keys starting at `at`.
    Burst {
        at: Index,
        len: usize,
    },
}

/// What happens to the replica as a whole.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    /// Replica = source with the mutations applied.
    Mutate,
    /// Everything deleted from the replica.
    ReplicaEmpty,
    /// Empty source; replica = the generated rows with the mutations applied.
    SourceEmpty,
    BothEmpty,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    prop_oneof![
        12 => Just(Scenario::Mutate),
        1 => Just(Scenario::ReplicaEmpty),
        1 => Just(Scenario::SourceEmpty),
        1 => Just(Scenario::BothEmpty),
    ]
}

fn mutations<C: Cell + 'static>(
    key: BoxedStrategy<Key>,
    row: BoxedStrategy<Vec<C>>,
    ncols: usize,
    max_burst: usize,
    count: std::ops::Range<usize>,
    reencode: bool,
) -> BoxedStrategy<Vec<Mutation<C>>> {
    let ncols = ncols.clamp(1, 16);
    let mask = prop_oneof![
        (0..ncols).prop_map(|i| 1u16 << i),
        any::<u16>(),
        Just(u16::MAX),
    ];
    let reenc = if reencode {
        prop::bool::weighted(0.25).boxed()
    } else {
        Just(false).boxed()
    };
    let one = prop_oneof![
        3 => (key.clone(), row.clone()).prop_map(|(key, row)| Mutation::Insert { key, row }),
        3 => any::<Index>().prop_map(|at| Mutation::Delete { at }),
        5 => (any::<Index>(), mask, row.clone(), reenc).prop_map(|(at, mask, row, reencode_only)| {
            Mutation::Update { at, mask, row, reencode_only }
        }),
        2 => (any::<Index>(), key, row).prop_map(|(at, key, row)| Mutation::Replace { at, key, row }),
        1 => (any::<Index>(), 1..=max_burst).prop_map(|(at, len)| Mutation::Burst { at, len }),
    ];
    vec(one, count).boxed()
}

fn nth_key<C>(model: &BTreeMap<Key, Vec<C>>, at: &Index) -> Option<Key> {
    if model.is_empty() {
        return None;
    }
    model.keys().nth(at.index(model.len())).cloned()
}

/// Applies mutations to a model, returning a readable log of what they did.
fn apply<C: Cell>(model: &mut BTreeMap<Key, Vec<C>>, muts: &[Mutation<C>]) -> Vec<String> {
    let mut log = Vec::new();
    for m in muts {
        match m {
            Mutation::Insert { key, row } => {
                if model.contains_key(key) {
                    log.push(format!("insert {key:?}: already there, skipped"));
                } else {
                    model.insert(key.clone(), row.clone());
                    log.push(format!("insert {key:?} {row:?}"));
                }
            }
            Mutation::Delete { at } => match nth_key(model, at) {
                Some(k) => {
                    model.remove(&k);
                    log.push(format!("delete {k:?}"));
                }
                None => log.push("delete: table empty".into()),
            },
            Mutation::Update {
                at,
                mask,
                row,
                reencode_only,
            } => match nth_key(model, at) {
                Some(k) => {
                    let cur = model.get_mut(&k).expect("present");
                    let mut cols = Vec::new();
                    for (i, c) in cur.iter_mut().enumerate() {
                        if (mask >> (i % 16)) & 1 == 1 {
                            c.assign(&row[i], *reencode_only);
                            cols.push(format!("{i}={:?}", row[i]));
                        }
                    }
                    let what = if *reencode_only {
                        "re-encode"
                    } else {
                        "update"
                    };
                    log.push(format!("{what} {k:?}: {}", cols.join(", ")));
                }
                None => log.push("update: table empty".into()),
            },
            Mutation::Replace { at, key, row } => match nth_key(model, at) {
                Some(old) if !model.contains_key(key) => {
                    model.remove(&old);
                    model.insert(key.clone(), row.clone());
                    log.push(format!("replace {old:?} by {key:?} {row:?}"));
                }
                Some(_) => log.push(format!("replace by {key:?}: already there, skipped")),
                None => log.push("replace: table empty".into()),
            },
            Mutation::Burst { at, len } => {
                if model.is_empty() {
                    log.push("burst: table empty".into());
                    continue;
                }
                let start = at.index(model.len());
                let doomed: Vec<Key> = model.keys().skip(start).take(*len).cloned().collect();
                for k in &doomed {
                    model.remove(k);
                }
                log.push(format!(
                    "burst delete of {} keys from {:?} through {:?}",
                    doomed.len(),
                    doomed.first(),
                    doomed.last()
                ));
            }
        }
    }
    log
}

/// Rows by key.
type Model<C> = BTreeMap<Key, Vec<C>>;

/// Source and replica models for a scenario, and the log.
fn derive_sides<C: Cell>(
    rows: Model<C>,
    scenario: Scenario,
    muts: &[Mutation<C>],
) -> (Model<C>, Model<C>, Vec<String>) {
    match scenario {
        Scenario::Mutate => {
            let mut rep = rows.clone();
            let log = apply(&mut rep, muts);
            (rows, rep, log)
        }
        Scenario::ReplicaEmpty => (rows, BTreeMap::new(), vec!["everything deleted".into()]),
        Scenario::SourceEmpty => {
            let mut rep = rows;
            let mut log = apply(&mut rep, muts);
            log.insert(0, "source emptied".into());
            (BTreeMap::new(), rep, log)
        }
        Scenario::BothEmpty => (BTreeMap::new(), BTreeMap::new(), vec!["both empty".into()]),
    }
}

fn context(kind: &dyn std::fmt::Debug, scenario: Scenario, log: &[String], extra: &str) -> String {
    let mut s = format!("key kind: {kind:?}, scenario: {scenario:?}{extra}\nmutations:\n");
    for l in log {
        let l = if l.len() > 400 {
            format!(
                "{}...",
                &l[..l.char_indices().nth(400).map_or(l.len(), |c| c.0)]
            )
        } else {
            l.clone()
        };
        let _ = writeln!(s, "  - {l}");
    }
    s
}

// ------------------------------------------------------------------ formats

const MICROS_PER_SEC: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;
/// Unix seconds kept well inside years 0001..9999, even with a UTC offset.
const SECS_RANGE: std::ops::Range<i64> = -62_000_000_000..253_000_000_000;
/// Day numbers inside years 0012..9990.
const DAYS_RANGE: std::ops::Range<i64> = -715_000..2_930_000;
const JULIAN_UNIX_EPOCH: f64 = 2_440_587.5;

/// Civil date of a day number since 1970-01-01 (Howard Hinnant's algorithm,
/// written out here so the test does not reuse the library's).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn fmt_date(days: i64) -> String {
    let (y, m, d) = civil(days);
    assert!((1..=9999).contains(&y), "year out of range: {y}");
    format!("{y:04}-{m:02}-{d:02}")
}

/// `HH:MM:SS`, with `.ffffff` when there is a fraction.
fn fmt_time(us: i64) -> String {
    let s = us / MICROS_PER_SEC;
    let mut out = format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    if us % MICROS_PER_SEC != 0 {
        let _ = write!(out, ".{:06}", us % MICROS_PER_SEC);
    }
    out
}

fn fmt_datetime(us: i64, sep: char) -> String {
    format!(
        "{}{sep}{}",
        fmt_date(us.div_euclid(MICROS_PER_DAY)),
        fmt_time(us.rem_euclid(MICROS_PER_DAY))
    )
}

fn fmt_offset(secs: i64) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
}

fn fmt_cents(c: i64, pad: bool) -> String {
    let sign = if c < 0 { "-" } else { "" };
    let a = c.unsigned_abs();
    if pad {
        format!("{sign}{}.{:02}", a / 100, a % 100)
    } else if a.is_multiple_of(100) {
        format!("{sign}{}", a / 100)
    } else if a.is_multiple_of(10) {
        format!("{sign}{}.{}", a / 100, a % 100 / 10)
    } else {
        format!("{sign}{}.{:02}", a / 100, a % 100)
    }
}

fn fmt_uuid(u: &[u8; 16], upper: bool) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    let s = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    if upper {
        s.to_uppercase()
    } else {
        s
    }
}

// ------------------------------------------------------------------ generators

/// Key kinds of the raw-value properties.
#[derive(Clone, Copy, Debug)]
enum KeyKind {
    /// `k INTEGER PRIMARY KEY`.
    Int,
    /// `k TEXT PRIMARY KEY`.
    Text,
    /// `a INTEGER, b TEXT, PRIMARY KEY (a, b)`.
    Compound,
    /// `k BLOB PRIMARY KEY`.
    Blob,
}

fn key_kind() -> impl Strategy<Value = KeyKind> {
    prop_oneof![
        Just(KeyKind::Int),
        Just(KeyKind::Text),
        Just(KeyKind::Compound),
        Just(KeyKind::Blob),
    ]
}

/// Key characters: shared prefixes, NUL, multi-byte and 4-byte UTF-8, DEL.
const KEY_CHARS: &[char] = &['a', 'b', 'A', ' ', '\0', '\u{7f}', 'é', '😀'];
const KEY_BYTES: &[u8] = &[0x00, 0x01, 0x61, 0x7f, 0x80, 0xfe, 0xff];
const TEXT_CHARS: &[char] = &[
    'a', 'b', 'Z', '0', '9', '.', ' ', '\'', '"', '\n', '\0', 'é', 'ß', '€', '😀', '\u{ffff}',
];

fn key_text() -> impl Strategy<Value = String> {
    vec(select(KEY_CHARS), 0..5).prop_map(String::from_iter)
}

fn key_int() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -20i64..300,
        1 => any::<i64>(),
        1 => select(vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX]),
    ]
}

fn key_strategy(kind: KeyKind) -> BoxedStrategy<Key> {
    match kind {
        KeyKind::Int => key_int().prop_map(|i| vec![K::I(i)]).boxed(),
        KeyKind::Text => key_text().prop_map(|s| vec![K::T(s)]).boxed(),
        KeyKind::Compound => (prop_oneof![-3i64..8, any::<i64>()], key_text())
            .prop_map(|(a, b)| vec![K::I(a), K::T(b)])
            .boxed(),
        KeyKind::Blob => vec(select(KEY_BYTES), 0..5)
            .prop_map(|b| vec![K::B(b)])
            .boxed(),
    }
}

fn key_columns(kind: KeyKind) -> (Vec<(String, String)>, bool) {
    let c = |n: &str, d: &str| (n.to_string(), d.to_string());
    match kind {
        KeyKind::Int => (vec![c("k", "INTEGER")], true),
        KeyKind::Text => (vec![c("k", "TEXT")], true),
        KeyKind::Compound => (vec![c("a", "INTEGER"), c("b", "TEXT")], false),
        KeyKind::Blob => (vec![c("k", "BLOB")], true),
    }
}

/// Value columns of the raw-value properties: every declared type driftsum
/// maps, some with names that need quoting.
const RAW_COLUMNS: &[(&str, &str)] = &[
    ("c_int", "INTEGER"),
    ("c_real", "REAL"),
    ("c_num", "NUMERIC(12,2)"),
    ("c text", "TEXT"),
    ("c_blob", "BLOB"),
    ("c_bool", "BOOLEAN"),
    ("c_ts", "TIMESTAMP"),
    ("c_tstz", "TIMESTAMPTZ"),
    ("c_date", "DATE"),
    ("c_time", "TIME"),
    ("c_uuid", "UUID"),
    ("c \"json\"", "JSON"),
    ("c_wide", "NUMERIC(600,400)"),
];

fn raw_table(kind: KeyKind, without_rowid: bool) -> Table {
    let (mut cols, inline_pk) = key_columns(kind);
    let nkey = cols.len();
    cols.extend(
        RAW_COLUMNS
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_string())),
    );
    Table {
        cols,
        nkey,
        inline_pk,
        without_rowid,
    }
}

fn finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as F;
    prop_oneof![
        2 => select(vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1.5,
            1e300,
            -1e-300,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ]),
        2 => (-1000i32..1000).prop_map(|i| f64::from(i) / 8.0),
        3 => F::POSITIVE | F::NEGATIVE | F::NORMAL | F::SUBNORMAL | F::ZERO,
    ]
}

fn micros() -> impl Strategy<Value = i64> {
    prop_oneof![
        SECS_RANGE.prop_map(|s| s * MICROS_PER_SEC),
        (SECS_RANGE.start * MICROS_PER_SEC)..(SECS_RANGE.end * MICROS_PER_SEC),
        select(vec![0i64, -1, 1, 1_709_287_200_000_000]),
    ]
}

/// A JSON number in its one plain spelling (no exponent, no leading zeros,
/// no trailing fractional zeros, no `-0`), so distinct texts are distinct
/// numbers: small ones, integers past `u64` and `f64`'s 2^53, long
/// fractions, and powers of ten far beyond `f64`.
fn json_number() -> impl Strategy<Value = String> {
    let digits = |n: std::ops::RangeInclusive<usize>| {
        vec(select(vec!['0', '1', '5', '9']), n).prop_map(String::from_iter)
    };
    let plain = (
        any::<bool>(),
        select(vec!['1', '2', '9']),
        digits(0..=40),
        digits(0..=30),
        select(vec!['1', '3', '9']),
    )
        .prop_map(|(neg, lead, int, frac, last)| {
            let sign = if neg { "-" } else { "" };
            if frac.is_empty() && int.len() % 2 == 0 {
                format!("{sign}{lead}{int}")
            } else {
                format!("{sign}{lead}{int}.{frac}{last}")
            }
        });
    prop_oneof![
        2 => (-1000i64..1000).prop_map(|i| i.to_string()),
        1 => select(vec![
            "18446744073709551616",
            "18446744073709551617",
            "9007199254740993",
            "0.1",
            "0.10000000000000001",
            "12345678901234567890123",
        ])
        .prop_map(str::to_string),
        // 10^k and 10^-k, k up to 400 (outside f64 either way).
        1 => (any::<bool>(), 1usize..=400).prop_map(|(small, k)| if small {
            format!("0.{}1", "0".repeat(k - 1))
        } else {
            format!("1{}", "0".repeat(k))
        }),
        4 => plain,
    ]
}

/// JSON text with sorted, distinct keys, no white space and numbers in
/// their plain spelling: one text per JSON value, at any depth.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        json_number(),
        vec(select(TEXT_CHARS), 0..4)
            .prop_map(|c| serde_json::to_string(&String::from_iter(c)).expect("json")),
    ];
    leaf.prop_recursive(4, 12, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(|items| format!("[{}]", items.join(","))),
            btree_map(select(vec!["a", "b", "é", "A"]), inner, 0..3).prop_map(|m| {
                let members: Vec<String> = m
                    .into_iter()
                    .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).expect("json")))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// The same JSON value spelled otherwise: white space after `,` and `:`,
/// and every number as digits times a power of ten (`12.5` as `125e-1`,
/// `7` as `700e-2`, `0` as `0e0`: JSON allows no leading zero), as another
/// writer might store it.
fn respell_json(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            ',' | ':' => {
                out.push(c);
                out.push(' ');
            }
            '-' | '0'..='9' => {
                let mut tok = c.to_string();
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit() || **d == '.') {
                    tok.push(d);
                    chars.next();
                }
                let neg = tok.starts_with('-');
                let body = tok.trim_start_matches('-');
                let respelled = match body.split_once('.') {
                    Some((int, frac)) => {
                        let all = format!("{int}{frac}");
                        let trimmed = all.trim_start_matches('0');
                        let mantissa = if trimmed.is_empty() { "0" } else { trimmed };
                        format!("{mantissa}e-{}", frac.len())
                    }
                    None if body == "0" => "0e0".to_string(),
                    None => format!("{body}00e-2"),
                };
                out.push_str(if neg { "-" } else { "" });
                out.push_str(&respelled);
            }
            c => out.push(c),
        }
    }
    out
}

/// A respelled value is valid JSON, and the same value, for every kind of
/// number the generator writes (zero had no valid respelling once: `000e-2`).
#[test]
fn respelled_json_is_the_same_json() {
    for s in [
        "0",
        "-0",
        "7",
        "-12",
        "0.5",
        "-0.25",
        "10.0",
        "[[null],0]",
        "{\"a\":[0,1.5,-3]}",
    ] {
        let respelled = respell_json(s);
        let parsed = |t: &str| -> serde_json::Value {
            serde_json::from_str(t).unwrap_or_else(|e| panic!("{t:?} is not JSON: {e}"))
        };
        let (a, b) = (parsed(s), parsed(&respelled));
        // Numbers compare by value: 7 and 700e-2 are one number.
        assert_eq!(
            serde_json::to_string(&normalize(&a)).unwrap(),
            serde_json::to_string(&normalize(&b)).unwrap(),
            "{s:?} respelled {respelled:?}"
        );
    }
}

/// `v` with every number as an f64 (enough for the values above).
fn normalize(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Number(n) => serde_json::json!(n.as_f64().unwrap_or(f64::NAN) + 0.0),
        J::Array(a) => J::Array(a.iter().map(normalize).collect()),
        J::Object(o) => J::Object(o.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()),
        other => other.clone(),
    }
}

/// A value of a `NUMERIC(600,400)` column in its one plain spelling: up to
/// 60 digits before the point and up to 400 after (long enough that SQLite
/// keeps most of them as text), so every digit must count.
fn wide_decimal() -> impl Strategy<Value = String> {
    let digits = |n: std::ops::RangeInclusive<usize>| {
        vec(select(vec!['0', '3', '9']), n).prop_map(String::from_iter)
    };
    (
        any::<bool>(),
        digits(0..=60),
        0usize..=370,
        digits(0..=25),
        select(vec!['1', '7', '9']),
    )
        .prop_map(|(neg, int, zeros, frac, last)| {
            let int = int.trim_start_matches('0');
            let int = if int.is_empty() { "0" } else { int };
            let sign = if neg { "-" } else { "" };
            format!("{sign}{int}.{}{frac}{last}", "0".repeat(zeros))
        })
}

/// One stored value for raw column `col` (canonical forms, so that distinct
/// stored values are distinct logical values).
fn raw_value(col: usize) -> BoxedStrategy<Sql> {
    let s: BoxedStrategy<Sql> = match col {
        0 => prop_oneof![-3i64..3, any::<i64>()]
            .prop_map(Sql::Integer)
            .boxed(),
        1 => finite_f64().prop_map(Sql::Real).boxed(),
        // Decimal text: NUMERIC affinity turns it into INTEGER or REAL.
        2 => prop_oneof![-300i64..300, -99_999_999_999i64..=99_999_999_999]
            .prop_map(|c| Sql::Text(fmt_cents(c, true)))
            .boxed(),
        3 => vec(select(TEXT_CHARS), 0..8)
            .prop_map(|c| Sql::Text(String::from_iter(c)))
            .boxed(),
        4 => vec(any::<u8>(), 0..8).prop_map(Sql::Blob).boxed(),
        5 => (0i64..2).prop_map(Sql::Integer).boxed(),
        6 => micros()
            .prop_map(|us| Sql::Text(fmt_datetime(us, ' ')))
            .boxed(),
        7 => micros()
            .prop_map(|us| Sql::Text(fmt_datetime(us, 'T') + "Z"))
            .boxed(),
        8 => DAYS_RANGE.prop_map(|d| Sql::Text(fmt_date(d))).boxed(),
        9 => (0..MICROS_PER_DAY)
            .prop_map(|us| Sql::Text(fmt_time(us)))
            .boxed(),
        10 => any::<[u8; 16]>()
            .prop_map(|u| Sql::Text(fmt_uuid(&u, false)))
            .boxed(),
        11 => json_value().prop_map(Sql::Text).boxed(),
        12 => wide_decimal().prop_map(Sql::Text).boxed(),
        _ => unreachable!(),
    };
    prop_oneof![1 => Just(Sql::Null), 6 => s].boxed()
}

fn raw_row() -> BoxedStrategy<Vec<Sql>> {
    (0..RAW_COLUMNS.len())
        .map(raw_value)
        .collect::<Vec<_>>()
        .boxed()
}

/// Column orders for the two files (they need not agree).
fn perms(n: usize) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (
        Just(identity(n)).prop_shuffle(),
        Just(identity(n)).prop_shuffle(),
    )
}

// ------------------------------------------------------------------ property 1

#[derive(Clone, Debug)]
struct RawCase {
    kind: KeyKind,
    without_rowid: bool,
    perms: (Vec<usize>, Vec<usize>),
    rows: BTreeMap<Key, Vec<Sql>>,
    scenario: Scenario,
    muts: Vec<Mutation<Sql>>,
}

fn raw_case(big: bool) -> impl Strategy<Value = RawCase> {
    (key_kind(), any::<bool>()).prop_flat_map(move |(kind, without_rowid)| {
        let table = raw_table(kind, without_rowid);
        let key = key_strategy(kind);
        let rows = if big {
            big_rows(kind).boxed()
        } else {
            prop_oneof![
                1 => btree_map(key.clone(), raw_row(), 0..4),
                4 => btree_map(key.clone(), raw_row(), 0..300),
            ]
            .boxed()
        };
        let muts = if big {
            mutations(key, raw_row(), RAW_COLUMNS.len(), 1000, 0..10, false)
        } else {
            mutations(key, raw_row(), RAW_COLUMNS.len(), 40, 0..12, false)
        };
        (perms(table.cols.len()), rows, scenario(), muts).prop_map(
            move |(perms, rows, scenario, muts)| RawCase {
                kind,
                without_rowid,
                perms,
                rows,
                scenario,
                muts,
            },
        )
    })
}

/// Bijective base-n numeral of `x` over `alphabet`: every string once, so
/// short strings, prefixes of longer ones, come first.
fn bijective<T: Clone>(mut x: u64, alphabet: &[T]) -> Vec<T> {
    let n = alphabet.len() as u64;
    let mut out = Vec::new();
    while x > 0 {
        x -= 1;
        out.push(alphabet[(x % n) as usize].clone());
        x /= n;
    }
    out.reverse();
    out
}

fn key_from_int(kind: KeyKind, x: u64) -> Key {
    match kind {
        KeyKind::Int => vec![K::I(x as i64 * 7 - 10_000)],
        KeyKind::Text => vec![K::T(String::from_iter(bijective(x, KEY_CHARS)))],
        KeyKind::Compound => vec![
            K::I((x / 5) as i64 - 100),
            K::T(String::from_iter(bijective(x % 5, KEY_CHARS))),
        ],
        KeyKind::Blob => vec![K::B(bijective(x, KEY_BYTES))],
    }
}

/// 2,000-5,000 rows with dense keys (so bursts delete long runs).
fn big_rows(kind: KeyKind) -> impl Strategy<Value = BTreeMap<Key, Vec<Sql>>> {
    (2000usize..5000).prop_flat_map(move |n| {
        (vec(1u64..4, n), vec(raw_row(), n)).prop_map(move |(gaps, rows)| {
            let mut x = 0;
            gaps.into_iter()
                .zip(rows)
                .map(|(g, r)| {
                    x += g;
                    (key_from_int(kind, x), r)
                })
                .collect()
        })
    })
}

fn run_raw_case(case: RawCase) -> Result<(), TestCaseError> {
    let table = raw_table(case.kind, case.without_rowid);
    let (src_model, rep_model, log) = derive_sides(case.rows, case.scenario, &case.muts);
    let dir = Scratch::new("diff-reference");
    let (sp, rp) = (dir.join("source.db"), dir.join("replica.db"));
    let full =
        |(k, v): (&Key, &Vec<Sql>)| k.iter().map(K::to_sql).chain(v.iter().cloned()).collect();
    table.write(&sp, &case.perms.0, src_model.iter().map(full));
    // The replica's rows go in in reverse order (its rowids differ).
    table.write(&rp, &case.perms.1, rep_model.iter().rev().map(full));

    let src = table.load(&sp);
    let rep = table.load(&rp);
    prop_assert_eq!(src.len(), src_model.len());
    prop_assert_eq!(rep.len(), rep_model.len());
    let names = table.value_names();
    let forward = reference(&src, &rep, &names, raw_eq);
    let backward = reference(&rep, &src, &names, raw_eq);
    let extra = format!(
        ", without rowid: {}, column orders: {:?}",
        case.without_rowid, case.perms
    );
    let ctx = context(&case.kind, case.scenario, &log, &extra);
    for shape in shapes() {
        let opts = DiffOptions {
            shape,
            ..Default::default()
        };
        check_run(
            &sp,
            &rp,
            &opts,
            &forward,
            (src.len(), rep.len()),
            &names,
            &ctx,
        )?;
        let back_ctx = format!("(replica compared as the source)\n{ctx}");
        check_run(
            &rp,
            &sp,
            &opts,
            &backward,
            (rep.len(), src.len()),
            &names,
            &back_ctx,
        )?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(48))]

    /// Property 1: both sides store values alike; the diff equals the raw
    /// reference, for every key kind, scenario and tree shape.
    #[test]
    fn same_representation_matches_reference(case in raw_case(false)) {
        run_raw_case(case)?;
    }
}

proptest! {
    #![proptest_config(config(6))]

    /// Property 1 on 2,000-5,000 rows, with bursts of up to 1,000 deletes.
    #[test]
    fn big_tables_with_bursts_match_reference(case in raw_case(true)) {
        run_raw_case(case)?;
    }
}

// ------------------------------------------------------------------ property 5

/// A logical value of the mixed-representation model.
#[derive(Clone, Debug, PartialEq)]
enum M {
    Null,
    Int(i64),
    Real(f64),
    /// A NUMERIC(12,2) amount in cents.
    Cents(i64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
    /// Wall-clock timestamp, Unix seconds.
    Ts(i64),
    /// Instant, Unix seconds.
    Tstz(i64),
    /// Days since 1970-01-01.
    Date(i64),
    /// Microseconds since midnight.
    Time(i64),
    Uuid([u8; 16]),
    /// JSON text in its one spelling (see `json_value`).
    Json(String),
}

/// A model cell: the logical value and how each side stores it.
#[derive(Clone, Debug)]
struct MCell {
    v: M,
    src_rep: u8,
    rep_rep: u8,
}

impl Cell for MCell {
    fn assign(&mut self, new: &Self, reencode_only: bool) {
        if reencode_only {
            self.rep_rep = new.rep_rep;
        } else {
            *self = new.clone();
        }
    }
}

/// Julian day of Unix seconds, when SQLite would keep it as a REAL: a
/// whole Julian day (noon UTC) stored in a column of NUMERIC affinity turns
/// into an INTEGER, which then reads as Unix seconds.
fn julian(secs: i64) -> Option<f64> {
    let jd = secs as f64 / 86_400.0 + JULIAN_UNIX_EPOCH;
    (jd.fract() != 0.0).then_some(jd)
}

/// Unix seconds stored as an integer, except the integers that are also
/// whole Julian days (1721426 to 5373484, see docs/reference.md): under
/// `stored_as = "auto"` driftsum rightly refuses to guess which instant such
/// an integer names (exit 2), so the model stores those as ISO text.
fn unix_seconds(secs: i64) -> Sql {
    if (1_721_426..=5_373_484).contains(&secs) {
        Sql::Text(fmt_datetime(secs * MICROS_PER_SEC, ' '))
    } else {
        Sql::Integer(secs)
    }
}

const OFFSETS: &[i64] = &[0, 3600, -3600, 19_800, -28_800, 50_400, -43_200, 20_700];

/// The stored form of `v` in representation `rep`.
fn encode(v: &M, rep: u8) -> Sql {
    let r = rep as usize;
    match v {
        M::Null => Sql::Null,
        M::Int(i) => match r % 3 {
            0 => Sql::Integer(*i),
            1 => Sql::Text(i.to_string()),
            _ if i.unsigned_abs() < 1 << 53 => Sql::Real(*i as f64),
            _ => Sql::Integer(*i),
        },
        M::Real(f) => match r % 3 {
            1 if f.fract() == 0.0 && f.abs() < 9e15 => Sql::Integer(*f as i64),
            // -0.0 for 0.0 (it survives only in a column without REAL
            // affinity, where SQLite keeps the stored bits).
            2 if *f == 0.0 => Sql::Real(-*f),
            _ => Sql::Real(*f),
        },
        M::Cents(c) => match r % 5 {
            0 => Sql::Text(fmt_cents(*c, true)),
            1 => Sql::Text(fmt_cents(*c, false)),
            2 => Sql::Real(*c as f64 / 100.0),
            3 if c % 100 == 0 => Sql::Integer(c / 100),
            3 => Sql::Real(*c as f64 / 100.0),
            _ => Sql::Text(format!("{c}e-2")),
        },
        M::Text(s) => match r % 2 {
            0 => Sql::Text(s.clone()),
            _ => Sql::Blob(s.as_bytes().to_vec()),
        },
        M::Bytes(b) => match (r % 2, std::str::from_utf8(b)) {
            (1, Ok(s)) => Sql::Text(s.to_string()),
            _ => Sql::Blob(b.clone()),
        },
        M::Bool(b) => {
            let (t, f) = match r % 7 {
                0 => return Sql::Integer(i64::from(*b)),
                1 => return Sql::Real(if *b { 1.0 } else { 0.0 }),
                2 => ("true", "false"),
                3 => ("t", "f"),
                4 => ("YES", "no"),
                5 => ("TRUE", "False"),
                _ => ("1", "0"),
            };
            Sql::Text(if *b { t } else { f }.to_string())
        }
        M::Ts(s) => match r % 4 {
            0 => Sql::Text(fmt_datetime(s * MICROS_PER_SEC, ' ')),
            1 => Sql::Text(fmt_datetime(s * MICROS_PER_SEC, 'T')),
            2 => julian(*s).map_or_else(|| unix_seconds(*s), Sql::Real),
            _ => unix_seconds(*s),
        },
        M::Tstz(s) => match r % 5 {
            0 => Sql::Text(fmt_datetime(s * MICROS_PER_SEC, 'T') + "Z"),
            1 => {
                let off = OFFSETS[r / 5 % OFFSETS.len()];
                Sql::Text(fmt_datetime((s + off) * MICROS_PER_SEC, ' ') + &fmt_offset(off))
            }
            // No offset: read as UTC.
            2 => Sql::Text(fmt_datetime(s * MICROS_PER_SEC, ' ')),
            3 => julian(*s).map_or_else(|| unix_seconds(*s), Sql::Real),
            _ => unix_seconds(*s),
        },
        M::Date(d) => match r % 4 {
            0 => Sql::Text(fmt_date(*d)),
            1 => Sql::Integer(d * 86_400),
            2 => Sql::Real(*d as f64 + JULIAN_UNIX_EPOCH),
            _ => Sql::Text(fmt_date(*d) + "T00:00:00"),
        },
        M::Time(us) => match r % 3 {
            0 => Sql::Text(fmt_time(*us)),
            1 if us % MICROS_PER_SEC == 0 => Sql::Integer(us / MICROS_PER_SEC),
            _ => Sql::Real(*us as f64 / 1e6),
        },
        M::Uuid(u) => match r % 4 {
            0 => Sql::Text(fmt_uuid(u, false)),
            1 => Sql::Text(fmt_uuid(u, true)),
            2 => Sql::Text(format!("{{{}}}", fmt_uuid(u, false))),
            _ => Sql::Blob(u.to_vec()),
        },
        M::Json(s) => match r % 3 {
            0 => Sql::Text(s.clone()),
            1 => Sql::Text(respell_json(s)),
            _ => Sql::Blob(s.as_bytes().to_vec()),
        },
    }
}

/// Mixed-model columns: (name, source declared type, value strategy).
fn mixed_columns() -> Vec<(&'static str, &'static str, BoxedStrategy<M>)> {
    vec![
        ("m_int", "BIGINT", any::<i64>().prop_map(M::Int).boxed()),
        (
            "m_real",
            "DOUBLE",
            prop_oneof![
                finite_f64().prop_filter("finite", |f| f.is_finite()),
                (-50i32..50).prop_map(f64::from),
            ]
            .prop_map(M::Real)
            .boxed(),
        ),
        (
            "m_num",
            "DECIMAL(12,2)",
            prop_oneof![-1000i64..1000, -99_999_999_999i64..=99_999_999_999]
                .prop_map(M::Cents)
                .boxed(),
        ),
        (
            "m_text",
            "VARCHAR(40)",
            vec(select(TEXT_CHARS), 0..8)
                .prop_map(|c| M::Text(String::from_iter(c)))
                .boxed(),
        ),
        (
            "m_bytes",
            "BLOB",
            vec(select(vec![0u8, 0x41, 0x7f, 0x80, 0xc3, 0xa9, 0xff]), 0..6)
                .prop_map(M::Bytes)
                .boxed(),
        ),
        ("m_bool", "BOOLEAN", any::<bool>().prop_map(M::Bool).boxed()),
        (
            "m_ts",
            "TIMESTAMP",
            prop_oneof![SECS_RANGE, 1_700_000_000i64..1_700_200_000]
                .prop_map(M::Ts)
                .boxed(),
        ),
        (
            "m_tstz",
            "TIMESTAMP WITH TIME ZONE",
            prop_oneof![SECS_RANGE, 1_700_000_000i64..1_700_200_000]
                .prop_map(M::Tstz)
                .boxed(),
        ),
        ("m_date", "DATE", DAYS_RANGE.prop_map(M::Date).boxed()),
        (
            "m_time",
            "TIME(6)",
            prop_oneof![
                (0..86_400i64).prop_map(|s| s * MICROS_PER_SEC),
                0..MICROS_PER_DAY,
            ]
            .prop_map(M::Time)
            .boxed(),
        ),
        (
            "m_uuid",
            "UUID",
            any::<[u8; 16]>().prop_map(M::Uuid).boxed(),
        ),
        (
            "m_json",
            "JSONB",
            // Not a bare number: SQLite turns one into a REAL in the JSONB
            // column (NUMERIC affinity) and rounds it, before driftsum reads.
            json_value()
                .prop_filter("a bare number", |s| {
                    !s.starts_with(|c: char| c == '-' || c.is_ascii_digit())
                })
                .prop_map(M::Json)
                .boxed(),
        ),
    ]
}

fn mixed_row() -> BoxedStrategy<Vec<MCell>> {
    mixed_columns()
        .into_iter()
        .map(|(_, _, s)| {
            (
                prop_oneof![1 => Just(M::Null), 6 => s],
                any::<u8>(),
                any::<u8>(),
            )
                .prop_map(|(v, src_rep, rep_rep)| MCell {
                    v,
                    src_rep,
                    rep_rep,
                })
                .boxed()
        })
        .collect::<Vec<_>>()
        .boxed()
}

/// Key kinds of the mixed property.
#[derive(Clone, Copy, Debug)]
enum MixedKey {
    /// `INTEGER PRIMARY KEY` on both sides.
    Int,
    /// `TEXT PRIMARY KEY`, keys stored as text.
    Text,
    /// `UUID PRIMARY KEY`, stored as text (three spellings) or 16-byte blob,
    /// so the SQL order is not the key order.
    Uuid,
    /// `TEXT PRIMARY KEY`, each key stored as text or as a UTF-8 blob.
    TextOrBlob,
    /// `INTEGER PRIMARY KEY` in the source; in the replica a key column
    /// with no declared type, each key stored as integer, text or REAL.
    IntLoose,
}

/// Whether the mixed property also varies how *key* values are stored in
/// key columns driftsum reads with SQL range bounds (text keys as blobs,
/// integer keys as text). Off because of a driftsum bug: see
/// `bug_text_key_stored_as_blob_is_never_compared` and
/// `bug_integer_key_stored_as_text_is_reported_missing`. UUID keys, whose
/// ranges are never put in SQL, still vary their storage.
const MIXED_KEY_STORAGE: bool = true;

fn mixed_key(kind: MixedKey) -> BoxedStrategy<Key> {
    match kind {
        MixedKey::Int | MixedKey::IntLoose => key_int().prop_map(|i| vec![K::I(i)]).boxed(),
        MixedKey::Text | MixedKey::TextOrBlob => key_text().prop_map(|s| vec![K::T(s)]).boxed(),
        MixedKey::Uuid => prop_oneof![
            // Few distinct bytes, so keys share prefixes.
            vec(select(vec![0u8, 0x0f, 0xa0, 0xff]), 16).prop_map(|v| {
                let mut u = [0u8; 16];
                u.copy_from_slice(&v);
                u
            }),
            any::<[u8; 16]>(),
        ]
        .prop_map(|u| vec![K::U(u)])
        .boxed(),
    }
}

/// A cheap deterministic hash, to pick a key's stored form per side.
fn mix(salt: u64, key: &Key) -> u64 {
    let mut h = salt ^ 0xcbf2_9ce4_8422_2325;
    for b in format!("{key:?}").bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^ (h >> 29)
}

fn encode_key(kind: MixedKey, key: &Key, salt: u64) -> Vec<Sql> {
    let r = mix(salt, key) as u8;
    key.iter()
        .map(|k| match (kind, k) {
            (MixedKey::Uuid, K::U(u)) => encode(&M::Uuid(*u), r),
            (MixedKey::TextOrBlob, K::T(t)) => encode(&M::Text(t.clone()), r),
            // Only the replica's key column is untyped (odd salt): the
            // source's INTEGER PRIMARY KEY holds integers only.
            (MixedKey::IntLoose, K::I(i)) if salt % 2 == 1 => encode(&M::Int(*i), r),
            (_, k) => k.to_sql(),
        })
        .collect()
}

#[derive(Clone, Debug)]
struct MixedCase {
    kind: MixedKey,
    /// Per value column: whether the replica declares the source's type
    /// (else no type at all, so it keeps whatever is written).
    rep_typed: Vec<bool>,
    perms: (Vec<usize>, Vec<usize>),
    salts: (u64, u64),
    rows: BTreeMap<Key, Vec<MCell>>,
    scenario: Scenario,
    muts: Vec<Mutation<MCell>>,
}

fn mixed_case() -> impl Strategy<Value = MixedCase> {
    let mut kinds = vec![MixedKey::Int, MixedKey::Text, MixedKey::Uuid];
    if MIXED_KEY_STORAGE {
        kinds.extend([MixedKey::TextOrBlob, MixedKey::IntLoose]);
    }
    let ncols = mixed_columns().len();
    select(kinds).prop_flat_map(move |kind| {
        let key = mixed_key(kind);
        (
            vec(any::<bool>(), ncols),
            perms(ncols + 1),
            // The replica's salt is odd: see `encode_key`.
            any::<(u64, u64)>().prop_map(|(a, b)| (a & !1, b | 1)),
            prop_oneof![
                1 => btree_map(key.clone(), mixed_row(), 0..4),
                4 => btree_map(key.clone(), mixed_row(), 0..250),
            ],
            scenario(),
            mutations(key, mixed_row(), ncols, 40, 0..12, true),
        )
            .prop_map(
                move |(rep_typed, perms, salts, rows, scenario, muts)| MixedCase {
                    kind,
                    rep_typed,
                    perms,
                    salts,
                    rows,
                    scenario,
                    muts,
                },
            )
    })
}

fn mixed_tables(kind: MixedKey, rep_typed: &[bool]) -> (Table, Table) {
    let key_decl = match kind {
        MixedKey::Int => "INTEGER",
        MixedKey::Text => "TEXT",
        MixedKey::Uuid => "UUID",
        MixedKey::TextOrBlob => "TEXT",
        MixedKey::IntLoose => "INTEGER",
    };
    let cols = mixed_columns();
    let mk = |typed: &dyn Fn(usize) -> bool| {
        let mut c = vec![("k".to_string(), key_decl.to_string())];
        for (i, (name, decl, _)) in cols.iter().enumerate() {
            let decl = if typed(i) { decl } else { "" };
            c.push((name.to_string(), decl.to_string()));
        }
        Table {
            cols: c,
            nkey: 1,
            inline_pk: true,
            without_rowid: false,
        }
    };
    let mut replica = mk(&|i| rep_typed[i]);
    if let MixedKey::IntLoose = kind {
        replica.cols[0].1 = String::new();
        replica.inline_pk = false;
    }
    (mk(&|_| true), replica)
}

fn run_mixed_case(case: MixedCase) -> Result<(), TestCaseError> {
    let (src_table, rep_table) = mixed_tables(case.kind, &case.rep_typed);
    let (src_model, rep_model, log) = derive_sides(case.rows, case.scenario, &case.muts);
    let dir = Scratch::new("diff-reference");
    let (sp, rp) = (dir.join("source.db"), dir.join("replica.db"));
    let kind = case.kind;
    src_table.write(
        &sp,
        &case.perms.0,
        src_model.iter().map(|(k, row)| {
            let mut r = encode_key(kind, k, case.salts.0);
            r.extend(row.iter().map(|c| encode(&c.v, c.src_rep)));
            r
        }),
    );
    rep_table.write(
        &rp,
        &case.perms.1,
        rep_model.iter().rev().map(|(k, row)| {
            let mut r = encode_key(kind, k, case.salts.1);
            r.extend(row.iter().map(|c| encode(&c.v, c.rep_rep)));
            r
        }),
    );

    let names = src_table.value_names();
    let values = |m: &BTreeMap<Key, Vec<MCell>>| -> BTreeMap<Key, Vec<M>> {
        m.iter()
            .map(|(k, r)| (k.clone(), r.iter().map(|c| c.v.clone()).collect()))
            .collect()
    };
    let (sv, rv) = (values(&src_model), values(&rep_model));
    // f64 `==` makes -0.0 equal 0.0, as driftsum does.
    let expected = reference(&sv, &rv, &names, |a, b| a == b);
    let extra = format!(
        ", replica typed columns: {:?}, column orders: {:?}, key salts: {:?}",
        case.rep_typed, case.perms, case.salts
    );
    let ctx = context(&case.kind, case.scenario, &log, &extra);
    for shape in shapes() {
        let opts = DiffOptions {
            shape,
            ..Default::default()
        };
        check_run(
            &sp,
            &rp,
            &opts,
            &expected,
            (sv.len(), rv.len()),
            &names,
            &ctx,
        )?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(48))]

    /// Property 5: each side stores each cell in its own representation;
    /// the diff equals the comparison of the logical models.
    #[test]
    fn mixed_representations_match_model(case in mixed_case()) {
        run_mixed_case(case)?;
    }
}

// ------------------------------------------------------------------ property 6

/// A float cell: the source value and what happens to it on the replica.
#[derive(Clone, Debug)]
struct FCell {
    v: Option<f64>,
    /// 0: same, 1/2: ×(1 ± 1e-12) (noise), 3: ×(1 + 1e-3) (drift), 4: NULL,
    /// 5: sign flipped if zero.
    noise: u8,
}

impl Cell for FCell {
    fn assign(&mut self, new: &Self, _: bool) {
        *self = new.clone();
    }
}

impl FCell {
    fn replica(&self) -> Option<f64> {
        let v = self.v?;
        match self.noise {
            1 => Some(v * (1.0 + 1e-12)),
            2 => Some(v * (1.0 - 1e-12)),
            3 => Some(v * (1.0 + 1e-3)),
            4 => None,
            5 if v == 0.0 => Some(-v),
            _ => Some(v),
        }
    }
}

const FLOAT_COLUMNS: &[(&str, &str)] = &[("f_a", "REAL"), ("f_b", "DOUBLE"), ("f_c", "FLOAT")];

fn float_value() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        1 => Just(None),
        1 => select(vec![Some(0.0), Some(-0.0), Some(1.0), Some(-2.5)]),
        6 => (1.0f64..10.0, -100i32..100, any::<bool>()).prop_map(|(m, e, neg)| {
            let v = m * 10f64.powi(e);
            Some(if neg { -v } else { v })
        }),
    ]
}

fn float_row() -> BoxedStrategy<Vec<FCell>> {
    let cell = (
        float_value(),
        prop_oneof![3 => Just(0u8), 3 => 1u8..3, 1 => Just(3u8), 1 => 4u8..6],
    )
        .prop_map(|(v, noise)| FCell { v, noise });
    vec(cell, FLOAT_COLUMNS.len()).boxed()
}

/// Equal, or within a relative 1e-9: separates 1e-12 noise from 1e-3 drift.
fn near(a: &Sql, b: &Sql) -> bool {
    match (a, b) {
        (Sql::Real(x), Sql::Real(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// Property 6: with `float_digits: Some(6)` only real float drift is
    /// reported; without it, the noise is reported too.
    #[test]
    fn float_digits_tolerates_tiny_float_noise(
        rows in btree_map(key_int().prop_map(|i| vec![K::I(i)]), float_row(), 0..250),
        scenario in scenario(),
        muts in mutations(
            key_int().prop_map(|i| vec![K::I(i)]).boxed(),
            float_row(),
            FLOAT_COLUMNS.len(),
            40,
            0..8,
            false,
        ),
    ) {
        let mut cols = vec![("k".to_string(), "INTEGER".to_string())];
        cols.extend(FLOAT_COLUMNS.iter().map(|(n, d)| (n.to_string(), d.to_string())));
        let table = Table { cols, nkey: 1, inline_pk: true, without_rowid: false };
        // The replica's last column has no declared type, so that a -0.0
        // written there stays -0.0 (REAL affinity stores it as 0.0).
        let mut rep_table = table.clone();
        rep_table.cols.last_mut().expect("columns").1 = String::new();
        let (src_model, rep_model, log) = derive_sides(rows, scenario, &muts);
        let dir = Scratch::new("diff-reference");
        let (sp, rp) = (dir.join("source.db"), dir.join("replica.db"));
        let perm = identity(table.cols.len());
        let sql = |v: Option<f64>| v.map_or(Sql::Null, Sql::Real);
        table.write(&sp, &perm, src_model.iter().map(|(k, r)| {
            k.iter().map(K::to_sql).chain(r.iter().map(|c| sql(c.v))).collect()
        }));
        rep_table.write(&rp, &perm, rep_model.iter().map(|(k, r)| {
            k.iter().map(K::to_sql).chain(r.iter().map(|c| sql(c.replica()))).collect()
        }));
        let (src, rep) = (table.load(&sp), rep_table.load(&rp));
        let names = table.value_names();
        let tolerant = reference(&src, &rep, &names, near);
        let exact = reference(&src, &rep, &names, raw_eq);
        let ctx = context(&"integer", scenario, &log, "");
        for shape in shapes() {
            let opts = DiffOptions {
                shape,
                canon: CanonOptions { float_digits: Some(6) },
                ..Default::default()
            };
            check_run(&sp, &rp, &opts, &tolerant, (src.len(), rep.len()), &names, &ctx)?;
            let opts = DiffOptions { shape, ..Default::default() };
            check_run(&sp, &rp, &opts, &exact, (src.len(), rep.len()), &names, &ctx)?;
        }
    }
}

// ------------------------------------------------------------------ bugs found

/// Writes two files from SQL scripts and diffs them with both shapes.
fn scripted(source_sql: &str, replica_sql: &str) -> Vec<RunOutcome> {
    let dir = Scratch::new("diff-reference");
    let (sp, rp) = (dir.join("source.db"), dir.join("replica.db"));
    Connection::open(&sp)
        .expect("source")
        .execute_batch(source_sql)
        .expect("source script");
    Connection::open(&rp)
        .expect("replica")
        .execute_batch(replica_sql)
        .expect("replica script");
    shapes()
        .into_iter()
        .map(|shape| {
            run_diff(
                &sp,
                &rp,
                &DiffOptions {
                    shape,
                    ..Default::default()
                },
            )
        })
        .collect()
}

fn summary(run: &RunOutcome) -> Vec<(DiffKind, Vec<Value>, Vec<usize>)> {
    run.tables[0]
        .differences
        .iter()
        .map(|d| (d.kind, d.key.clone(), d.changed.clone()))
        .collect()
}

/// A TEXT key stored as a blob (in both files) whose row changed: the trees
/// differ, but the range re-read puts `k <= 'b'` in SQL, which no blob
/// satisfies (SQLite sorts every blob after every text), so neither side
/// returns the row and driftsum reports the tables in sync (exit 0).
#[test]
fn bug_text_key_stored_as_blob_is_never_compared() {
    for run in scripted(
        "CREATE TABLE items (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO items VALUES (X'62', 1);",
        "CREATE TABLE items (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO items VALUES (X'62', 2);",
    ) {
        assert_eq!(
            summary(&run),
            vec![(DiffKind::Changed, vec![Value::Text("b".into())], vec![0])]
        );
        assert_eq!(run.exit_code(), 1);
    }
}

/// An INTEGER key that a replica without a declared key type holds as text
/// ('5'): read as the integer 5, but the range re-read's `k <= 5` skips the
/// text '5' (SQLite sorts text after numbers), so the row is reported
/// missing from the replica instead of changed.
#[test]
fn bug_integer_key_stored_as_text_is_reported_missing() {
    for run in scripted(
        "CREATE TABLE items (k INTEGER PRIMARY KEY, v INTEGER); INSERT INTO items VALUES (5, 1);",
        "CREATE TABLE items (k, v INTEGER, PRIMARY KEY (k)); INSERT INTO items VALUES ('5', 2);",
    ) {
        assert_eq!(
            summary(&run),
            vec![(DiffKind::Changed, vec![Value::Int(5)], vec![0])]
        );
    }
}

/// SQLite lets a rowid table's TEXT PRIMARY KEY hold NULL. The trees see
/// the changed row, but the range re-read binds the NULL key as a bound
/// (`k <= NULL`), which matches nothing: reported in sync (exit 0).
#[test]
fn bug_null_key_row_is_never_compared() {
    for run in scripted(
        "CREATE TABLE items (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO items VALUES (NULL, 1);",
        "CREATE TABLE items (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO items VALUES (NULL, 2);",
    ) {
        assert_eq!(
            summary(&run),
            vec![(DiffKind::Changed, vec![Value::Null], vec![0])]
        );
        assert_eq!(run.exit_code(), 1);
    }
}

// ------------------------------------------------------------------ costs (issue 11)
//
// Dense drift, renamed columns and unordered replicas: exact answers, read
// at a cost near one scan per side, and every difference handed to the
// run's sink while the outcome keeps a sample.

/// A sink collecting what a streamed run hands it.
#[derive(Default)]
struct Collect {
    tables: Vec<String>,
    found: Vec<Found>,
}

impl DiffSink for Collect {
    fn table_started(&mut self, t: &TableOutcome) -> std::io::Result<()> {
        self.tables.push(t.table.clone());
        Ok(())
    }

    fn difference(&mut self, t: &TableOutcome, d: &Difference) -> std::io::Result<()> {
        self.found.push(found_of(t, d));
        Ok(())
    }
}

fn found_of(t: &TableOutcome, d: &Difference) -> Found {
    let kind = match d.kind {
        DiffKind::Missing => Kind::Missing,
        DiffKind::Extra => Kind::Extra,
        DiffKind::Changed => Kind::Changed,
    };
    let mut names: Vec<String> = d.changed.iter().map(|&i| t.columns[i].clone()).collect();
    names.sort();
    (kind, d.key.iter().map(K::from_value).collect(), names)
}

/// Runs `opts` keeping only `keep` differences, and checks that the sink
/// got exactly `expected`, the outcome's counts add up to it, its sample
/// is the first `keep` the sink got, and neither side was read more than
/// `max_reads` times over.
fn check_streamed(
    src: &Path,
    tgt: &Path,
    opts: &DiffOptions,
    keep: usize,
    expected: &[Found],
    max_reads: u64,
    context: &str,
) -> Result<(), TestCaseError> {
    let mut a = SqliteSource::open(src).expect("open source");
    let mut b = SqliteSource::open(tgt).expect("open target");
    let mut sink = Collect::default();
    let opts = DiffOptions {
        keep_differences: Some(keep),
        ..opts.clone()
    };
    let run = check::diff_endpoints_to(
        &mut Endpoint::database(&mut a),
        &mut Endpoint::database(&mut b),
        &opts,
        &|_, _| {},
        &mut sink,
    )
    .expect("diff runs");
    let t = &run.tables[0];
    prop_assert!(t.error.is_none(), "table error {:?}\n{}", t.error, context);
    prop_assert_eq!(&sink.tables, &vec![TABLE.to_string()]);
    let mut streamed = sink.found.clone();
    streamed.sort();
    prop_assert_eq!(
        &streamed,
        &expected.to_vec(),
        "streamed differences\n{}",
        context
    );
    let count = |k: Kind| expected.iter().filter(|f| f.0 == k).count() as u64;
    prop_assert_eq!(
        (t.counts.missing, t.counts.extra, t.counts.changed),
        (
            count(Kind::Missing),
            count(Kind::Extra),
            count(Kind::Changed)
        ),
        "counts\n{}",
        context
    );
    let sample: Vec<Found> = t.differences.iter().map(|d| found_of(t, d)).collect();
    let first: Vec<Found> = sink.found.iter().take(keep).cloned().collect();
    prop_assert_eq!(sample, first, "the kept sample\n{}", context);
    prop_assert_eq!(t.in_sync(), expected.is_empty());
    prop_assert_eq!(run.exit_code(), u8::from(!expected.is_empty()));
    for (read, rows) in [
        (t.stats.source_rows_read, t.source_rows),
        (t.stats.target_rows_read, t.target_rows),
    ] {
        prop_assert!(
            read <= max_reads * rows,
            "{} rows read for {} rows\n{}",
            read,
            rows,
            context
        );
    }
    Ok(())
}

/// How most of a replica drifted.
#[derive(Clone, Copy, Debug)]
enum Dense {
    /// One column rewritten in every row.
    OneColumnEverywhere,
    /// This percentage of rows rewritten whole.
    Share(u8),
    /// The replica holds no rows.
    Wiped,
    /// The replica holds every source row and as many rows again, each key
    /// between two source keys.
    AllExtra,
}

#[derive(Clone, Debug)]
struct DenseCase {
    kind: KeyKind,
    without_rowid: bool,
    rows: Vec<Vec<Sql>>,
    fresh: Vec<Vec<Sql>>,
    column: usize,
    dense: Dense,
    keep: usize,
}

fn dense_case() -> impl Strategy<Value = DenseCase> {
    let dense = prop_oneof![
        2 => Just(Dense::OneColumnEverywhere),
        2 => (25u8..=100).prop_map(Dense::Share),
        1 => Just(Dense::Wiped),
        1 => Just(Dense::AllExtra),
    ];
    (
        key_kind(),
        any::<bool>(),
        (1usize..1500).prop_flat_map(|n| (vec(raw_row(), n), vec(raw_row(), n))),
        0..RAW_COLUMNS.len(),
        dense,
        0usize..60,
    )
        .prop_map(
            |(kind, without_rowid, (rows, fresh), column, dense, keep)| DenseCase {
                kind,
                without_rowid,
                rows,
                fresh,
                column,
                dense,
                keep,
            },
        )
}

fn run_dense_case(case: DenseCase) -> Result<(), TestCaseError> {
    let table = raw_table(case.kind, case.without_rowid);
    // Even keys for the source, odd ones for extra replica rows.
    let key = |i: usize, odd: bool| key_from_int(case.kind, 2 * (i as u64 + 1) + u64::from(odd));
    let src_model: Model<Sql> = case
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (key(i, false), r.clone()))
        .collect();
    let rep_model: Model<Sql> = match case.dense {
        Dense::OneColumnEverywhere => src_model
            .iter()
            .zip(&case.fresh)
            .map(|((k, r), f)| {
                let mut r = r.clone();
                r[case.column] = f[case.column].clone();
                (k.clone(), r)
            })
            .collect(),
        Dense::Share(p) => src_model
            .iter()
            .zip(&case.fresh)
            .enumerate()
            .map(|(i, ((k, r), f))| {
                let hit = (i * 37 + 11) % 100 < p as usize;
                (k.clone(), if hit { f.clone() } else { r.clone() })
            })
            .collect(),
        Dense::Wiped => BTreeMap::new(),
        Dense::AllExtra => src_model
            .clone()
            .into_iter()
            .chain(
                case.fresh
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (key(i, true), f.clone())),
            )
            .collect(),
    };
    let dir = Scratch::new("diff-reference");
    let (sp, rp) = (dir.join("source.db"), dir.join("replica.db"));
    let full =
        |(k, v): (&Key, &Vec<Sql>)| k.iter().map(K::to_sql).chain(v.iter().cloned()).collect();
    let perm = identity(table.cols.len());
    table.write(&sp, &perm, src_model.iter().map(full));
    table.write(&rp, &perm, rep_model.iter().rev().map(full));
    let (src, rep) = (table.load(&sp), table.load(&rp));
    let names = table.value_names();
    let ctx = format!(
        "key kind: {:?}, without rowid: {}, {:?} (column {}), {} source rows, keep {}",
        case.kind,
        case.without_rowid,
        case.dense,
        case.column,
        src.len(),
        case.keep
    );
    for (a, b, sa, sb, dir) in [
        (&sp, &rp, &src, &rep, "forward"),
        (&rp, &sp, &rep, &src, "backward"),
    ] {
        let expected = reference(sa, sb, &names, raw_eq);
        for shape in shapes() {
            let opts = DiffOptions {
                shape,
                ..Default::default()
            };
            let ctx = format!("{dir}, {shape:?}\n{ctx}");
            check_run(a, b, &opts, &expected, (sa.len(), sb.len()), &names, &ctx)?;
            // One scan to build each tree, at most one more for the rows.
            check_streamed(a, b, &opts, case.keep, &expected, 2, &ctx)?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(24))]

    /// Most rows drifted (a column rewritten everywhere, a share of rows
    /// rewritten, a wiped replica, a replica with as many extra rows as
    /// the source has): the exact differences, each side read at most
    /// twice, every difference streamed and a sample kept.
    #[test]
    fn dense_drift_matches_reference(case in dense_case()) {
        run_dense_case(case)?;
    }
}

#[derive(Clone, Debug)]
struct RenameCase {
    raw: RawCase,
    /// Per column (keys first): the replica's name, when renamed.
    renames: Vec<Option<String>>,
}

/// Names that sort before, after and between the raw column names.
fn rename(i: usize) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        3 => select(vec!["zz", "A", "0 ", "é", "c_", "~"]).prop_map(move |p| Some(format!("{p}{i}"))),
    ]
}

fn rename_case() -> impl Strategy<Value = RenameCase> {
    raw_case(false).prop_flat_map(|raw| {
        let n = raw_table(raw.kind, raw.without_rowid).cols.len();
        let renames: Vec<_> = (0..n).map(rename).collect();
        (Just(raw), renames).prop_map(|(raw, renames)| RenameCase { raw, renames })
    })
}

fn run_rename_case(case: RenameCase) -> Result<(), TestCaseError> {
    let raw = case.raw;
    let table = raw_table(raw.kind, raw.without_rowid);
    let mut replica = table.clone();
    let mut config = Config::default();
    let mut columns = BTreeMap::new();
    for (i, r) in case.renames.iter().enumerate() {
        if let Some(r) = r {
            replica.cols[i].0 = r.clone();
            let c = ColumnConfig {
                replica: Some(r.clone()),
                ..Default::default()
            };
            columns.insert(table.cols[i].0.clone(), c);
        }
    }
    config.tables.insert(
        TABLE.to_string(),
        TableConfig {
            columns,
            ..Default::default()
        },
    );
    let (src_model, rep_model, log) = derive_sides(raw.rows, raw.scenario, &raw.muts);
    let dir = Scratch::new("diff-reference");
    let (sp, rp) = (dir.join("source.db"), dir.join("replica.db"));
    let full =
        |(k, v): (&Key, &Vec<Sql>)| k.iter().map(K::to_sql).chain(v.iter().cloned()).collect();
    table.write(&sp, &raw.perms.0, src_model.iter().map(full));
    replica.write(&rp, &raw.perms.1, rep_model.iter().rev().map(full));
    let (src, rep) = (table.load(&sp), replica.load(&rp));
    let names = table.value_names();
    let expected = reference(&src, &rep, &names, raw_eq);
    let extra = format!(", renames: {:?}", case.renames);
    let ctx = context(&raw.kind, raw.scenario, &log, &extra);
    for shape in shapes() {
        let opts = DiffOptions {
            shape,
            config: config.clone(),
            ..Default::default()
        };
        check_run(
            &sp,
            &rp,
            &opts,
            &expected,
            (src.len(), rep.len()),
            &names,
            &ctx,
        )?;
        let run = run_diff(&sp, &rp, &opts);
        let rows = &run.tables[0].stats.transfer.rows;
        // Rows are fetched only for keys whose rows differ.
        let differing = expected
            .iter()
            .map(|f| if f.0 == Kind::Changed { 2 } else { 1 })
            .sum::<u64>();
        prop_assert_eq!(rows.items, differing, "rows exchanged\n{}", ctx);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(32))]

    /// Replica columns (keys included) renamed in the config to names that
    /// sort elsewhere: the exact differences, and rows exchanged only for
    /// the keys that differ (none when the data agree).
    #[test]
    fn renamed_columns_match_reference(case in rename_case()) {
        run_rename_case(case)?;
    }
}

#[derive(Clone, Debug)]
struct UnorderedCase {
    rows: BTreeMap<Key, Vec<Sql>>,
    scenario: Scenario,
    muts: Vec<Mutation<Sql>>,
}

fn unordered_case() -> impl Strategy<Value = UnorderedCase> {
    let key = key_strategy(KeyKind::Int);
    (
        btree_map(key.clone(), raw_row(), 0..400),
        scenario(),
        mutations(key, raw_row(), RAW_COLUMNS.len(), 60, 0..40, false),
    )
        .prop_map(|(rows, scenario, muts)| UnorderedCase {
            rows,
            scenario,
            muts,
        })
}

fn run_unordered_case(case: UnorderedCase) -> Result<(), TestCaseError> {
    let table = raw_table(KeyKind::Int, false);
    // The replica's key column has no declared type and holds the integer
    // keys as text, which SQLite orders as text ('10' < '9').
    let mut replica = table.clone();
    replica.cols[0].1 = String::new();
    replica.inline_pk = false;
    let (src_model, rep_model, log) = derive_sides(case.rows, case.scenario, &case.muts);
    let text_keys: Vec<String> = rep_model
        .keys()
        .map(|k| match &k[0] {
            K::I(i) => i.to_string(),
            other => panic!("integer key expected, not {other:?}"),
        })
        .collect();
    let mut sorted = text_keys.clone();
    sorted.sort();
    // A replica whose text keys happen to sort as numbers looks ordered, and
    // its range reads with integer bounds cannot reach text keys: a known
    // limit of SQLite storage detection, not what this property is about.
    prop_assume!(sorted != text_keys);
    let dir = Scratch::new("diff-reference");
    let (sp, rp) = (dir.join("source.db"), dir.join("replica.db"));
    let perm = identity(table.cols.len());
    let full =
        |(k, v): (&Key, &Vec<Sql>)| k.iter().map(K::to_sql).chain(v.iter().cloned()).collect();
    table.write(&sp, &perm, src_model.iter().map(full));
    replica.write(
        &rp,
        &perm,
        rep_model.iter().map(|(k, v)| {
            let K::I(i) = k[0] else { unreachable!() };
            std::iter::once(Sql::Text(i.to_string()))
                .chain(v.iter().cloned())
                .collect()
        }),
    );
    let src = table.load(&sp);
    let rep: Model<Sql> = replica
        .load(&rp)
        .into_iter()
        .map(|(k, v)| match &k[0] {
            K::T(t) => (vec![K::I(t.parse().expect("integer text"))], v),
            other => panic!("text key expected, not {other:?}"),
        })
        .collect();
    let names = table.value_names();
    // Only forward: the replica's untyped key column has no integer type of
    // its own to compare as when it is the source.
    let ctx = context(&KeyKind::Int, case.scenario, &log, ", replica keys as text");
    let expected = reference(&src, &rep, &names, raw_eq);
    for shape in shapes() {
        let opts = DiffOptions {
            shape,
            ..Default::default()
        };
        let ctx = format!("{shape:?}\n{ctx}");
        let rows = (src.len(), rep.len());
        check_run(&sp, &rp, &opts, &expected, rows, &names, &ctx)?;
        // The unordered side: the first pass (stopped where the order
        // broke), the sorted rescan, and one read for every drifted range
        // together.
        check_streamed(&sp, &rp, &opts, 5, &expected, 3, &ctx)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(32))]

    /// A replica whose integer keys are stored as text in an untyped key
    /// column (scanned out of key order): the exact differences, with the
    /// unordered side read a bounded number of times however many ranges
    /// drifted.
    #[test]
    fn unordered_replica_matches_reference(case in unordered_case()) {
        run_unordered_case(case)?;
    }
}

/// The case: `[tables.t.columns.a] replica = "z"` on identical
/// tables exchanges exactly what the same tables without the rename do,
/// and no row.
#[test]
fn renamed_column_pair_exchanges_no_rows() {
    let dir = Scratch::new("diff-reference");
    let fill = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 3000)";
    let make = |name: &str, col: &str| {
        let p = dir.join(name);
        Connection::open(&p)
            .expect("open")
            .execute_batch(&format!(
                "CREATE TABLE items (id INTEGER PRIMARY KEY, {col} INTEGER, b TEXT);
                 {fill} INSERT INTO items SELECT i, i % 1000, 'name ' || i FROM s;"
            ))
            .expect("fill");
        p
    };
    let (src, same, renamed) = (make("s.db", "a"), make("t.db", "a"), make("r.db", "z"));
    let mut config = Config::default();
    let mut columns = BTreeMap::new();
    columns.insert(
        "a".to_string(),
        ColumnConfig {
            replica: Some("z".into()),
            ..Default::default()
        },
    );
    config.tables.insert(
        TABLE.to_string(),
        TableConfig {
            columns,
            ..Default::default()
        },
    );
    let plain = run_diff(&src, &same, &DiffOptions::default());
    let mapped = run_diff(
        &src,
        &renamed,
        &DiffOptions {
            config,
            ..Default::default()
        },
    );
    let (p, m) = (&plain.tables[0], &mapped.tables[0]);
    assert!(m.error.is_none(), "{:?}", m.error);
    assert!(m.in_sync() && p.in_sync());
    assert_eq!(m.stats.transfer, p.stats.transfer);
    assert_eq!(m.stats.transfer.rows.items, 0);
    assert_eq!(m.stats.target_rows_read, 3000);
}

/// Adjacent drifted leaves form one range, which can outgrow a chunk: the
/// first 120,000 of 150,000 rows changed, a few missing and extra, are
/// compared a piece at a time and still reported exactly.
#[test]
fn a_drifted_range_longer_than_a_chunk() {
    let dir = Scratch::new("diff-reference");
    let (sp, rp) = (dir.join("s.db"), dir.join("r.db"));
    let n = 150_000i64;
    let fill =
        format!("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})");
    Connection::open(&sp)
        .expect("source")
        .execute_batch(&format!(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER);
             {fill} INSERT INTO items SELECT i, i FROM s;"
        ))
        .expect("fill source");
    Connection::open(&rp)
        .expect("replica")
        .execute_batch(&format!(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER);
             {fill} INSERT INTO items SELECT i, i + (i <= 120000) FROM s WHERE i % 1000 != 5;
             {fill} INSERT INTO items SELECT i + {n}, 0 FROM s WHERE i <= 10;"
        ))
        .expect("fill replica");
    let mut expected: Vec<Found> = Vec::new();
    for i in 1..=n + 10 {
        let key = vec![K::I(i)];
        if i > n {
            expected.push((Kind::Extra, key, Vec::new()));
        } else if i % 1000 == 5 {
            expected.push((Kind::Missing, key, Vec::new()));
        } else if i <= 120_000 {
            expected.push((Kind::Changed, key, vec!["v".to_string()]));
        }
    }
    expected.sort();
    for shape in shapes() {
        let opts = DiffOptions {
            shape,
            ..Default::default()
        };
        let ctx = format!("{shape:?}");
        check_streamed(&sp, &rp, &opts, 100, &expected, 2, &ctx).expect("exact");
        let run = run_diff(&sp, &rp, &opts);
        let t = &run.tables[0];
        assert!(
            t.ranges.iter().any(|r| r.source_rows > 100_000),
            "{:?}",
            t.ranges.iter().map(|r| r.source_rows).collect::<Vec<_>>()
        );
    }
}

// ------------------------------------------------------------------ property 8

/// How one side stores its date-time keys (SQLite text, as a sync wrote it).
#[derive(Clone, Copy, Debug)]
enum TsForm {
    /// `YYYY-MM-DD HH:MM:SS.ffffff` for every key: range-readable.
    Micros,
    /// `YYYY-MM-DDTHH:MM:SS.fff`; a key that is not whole milliseconds gets
    /// six digits (the form is then mixed, and no longer range-readable).
    Millis,
    /// `YYYY-MM-DD HH:MM:SS`; six digits where not whole seconds.
    Seconds,
    /// Per key, by hash: either separator, with or without six digits,
    /// or Unix seconds as an integer where whole.
    Mixed,
}

/// `YYYY-MM-DD<sep>HH:MM:SS` with exactly `digits` fraction digits
/// (truncating: callers pass keys on the form's grid).
fn fmt_ts_digits(us: i64, sep: char, digits: u32) -> String {
    let whole = fmt_datetime(us.div_euclid(MICROS_PER_SEC) * MICROS_PER_SEC, sep);
    if digits == 0 {
        return whole;
    }
    let frac = us.rem_euclid(MICROS_PER_SEC) / 10i64.pow(6 - digits);
    format!("{whole}.{frac:0w$}", w = digits as usize)
}

fn ts_stored(us: i64, form: TsForm, salt: u64, suffix: &str) -> Sql {
    let text = |s: String| Sql::Text(s + suffix);
    match form {
        TsForm::Micros => text(fmt_ts_digits(us, ' ', 6)),
        TsForm::Millis if us % 1000 == 0 => text(fmt_ts_digits(us, 'T', 3)),
        TsForm::Seconds if us % MICROS_PER_SEC == 0 => text(fmt_ts_digits(us, ' ', 0)),
        TsForm::Millis | TsForm::Seconds => text(fmt_ts_digits(us, ' ', 6)),
        TsForm::Mixed => match mix(salt, &vec![K::I(us)]) % 4 {
            0 => text(fmt_ts_digits(us, 'T', 6)),
            1 if us % MICROS_PER_SEC == 0 => Sql::Integer(us / MICROS_PER_SEC),
            2 if us % MICROS_PER_SEC == 0 => text(fmt_ts_digits(us, ' ', 0)),
            _ => text(fmt_ts_digits(us, ' ', 6)),
        },
    }
}

/// Keys dense enough to share leaves (whole seconds, milliseconds or
/// microseconds apart near one instant), and far apart over the years.
fn ts_key_micros() -> impl Strategy<Value = i64> {
    const BASE: i64 = 1_700_000_000 * MICROS_PER_SEC;
    prop_oneof![
        (0i64..2_000).prop_map(|i| BASE + i * MICROS_PER_SEC),
        (0i64..2_000_000).prop_map(|i| BASE + i * 1000),
        (0i64..2_000_000_000).prop_map(|i| BASE + i),
        SECS_RANGE.prop_map(|s| s * MICROS_PER_SEC),
    ]
}

#[derive(Clone, Debug)]
struct TsCase {
    forms: (TsForm, TsForm),
    /// `TIMESTAMP WITH TIME ZONE` keys with a `+00:00` or `Z` suffix
    /// (else `TIMESTAMP`, no suffix).
    instant: bool,
    /// A second key column (a small integer) after the timestamp.
    compound: bool,
    /// Rows written in key order (so rowid order is key order, and a whole
    /// scan may read the pages), else in reverse.
    in_key_order: bool,
    rows: BTreeMap<Key, Vec<Sql>>,
    scenario: Scenario,
    muts: Vec<Mutation<Sql>>,
}

fn ts_case() -> impl Strategy<Value = TsCase> {
    let forms = select(vec![
        TsForm::Micros,
        TsForm::Millis,
        TsForm::Seconds,
        TsForm::Mixed,
    ]);
    (
        forms.clone(),
        forms,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(f0, f1, instant, compound, in_key_order)| {
            let key = if compound {
                (ts_key_micros(), 0i64..3)
                    .prop_map(|(t, j)| vec![K::I(t), K::I(j)])
                    .boxed()
            } else {
                ts_key_micros().prop_map(|t| vec![K::I(t)]).boxed()
            };
            let row = vec(
                prop_oneof![Just(Sql::Null), "[a-c]{0,2}".prop_map(Sql::Text)],
                1,
            )
            .boxed();
            (
                prop_oneof![
                    1 => btree_map(key.clone(), row.clone(), 0..4),
                    4 => btree_map(key.clone(), row.clone(), 0..300),
                ],
                scenario(),
                mutations(key, row, 1, 40, 0..12, false),
            )
                .prop_map(move |(rows, scenario, muts)| TsCase {
                    forms: (f0, f1),
                    instant,
                    compound,
                    in_key_order,
                    rows,
                    scenario,
                    muts,
                })
        })
}

fn run_ts_case(case: TsCase) -> Result<(), TestCaseError> {
    let declared = if case.instant {
        "TIMESTAMP WITH TIME ZONE"
    } else {
        "TIMESTAMP"
    };
    let mut cols = vec![("k".to_string(), declared.to_string())];
    if case.compound {
        cols.push(("j".to_string(), "INTEGER".to_string()));
    }
    cols.push(("v".to_string(), "TEXT".to_string()));
    let nkey = cols.len() - 1;
    let table = Table {
        cols,
        nkey,
        inline_pk: !case.compound,
        without_rowid: false,
    };
    let (src_model, rep_model, log) = derive_sides(case.rows, case.scenario, &case.muts);
    let dir = Scratch::new("diff-reference");
    let (sp, rp) = (dir.join("source.db"), dir.join("replica.db"));
    let perm = identity(table.cols.len());
    let write = |path: &Path, model: &BTreeMap<Key, Vec<Sql>>, form: TsForm, salt: u64| {
        let suffix = match (case.instant, salt) {
            (false, _) => "",
            (true, 0) => "+00:00",
            (true, _) => "Z",
        };
        let ordered: Vec<_> = match case.in_key_order {
            true => model.iter().collect(),
            false => model.iter().rev().collect(),
        };
        let rows = ordered.into_iter().map(|(k, v)| {
            let mut r = Vec::new();
            for (i, kv) in k.iter().enumerate() {
                match (i, kv) {
                    (0, K::I(us)) => r.push(ts_stored(*us, form, salt, suffix)),
                    (_, kv) => r.push(kv.to_sql()),
                }
            }
            r.extend(v.iter().cloned());
            r
        });
        table.write(path, &perm, rows);
    };
    write(&sp, &src_model, case.forms.0, 0);
    write(&rp, &rep_model, case.forms.1, 1);
    let names = table.value_names();
    let expected = reference(&src_model, &rep_model, &names, raw_eq);
    let backward = reference(&rep_model, &src_model, &names, raw_eq);
    let extra = format!(
        ", forms: {:?}, instant: {}, compound: {}, in key order: {}",
        case.forms, case.instant, case.compound, case.in_key_order
    );
    let ctx = context(&"timestamp", case.scenario, &log, &extra);
    let counts = (src_model.len(), rep_model.len());
    for shape in shapes() {
        let opts = DiffOptions {
            shape,
            ..Default::default()
        };
        check_run(&sp, &rp, &opts, &expected, counts, &names, &ctx)?;
        let back = format!("(replica compared as the source)\n{ctx}");
        check_run(
            &rp,
            &sp,
            &opts,
            &backward,
            (counts.1, counts.0),
            &names,
            &back,
        )?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(48))]

    /// Property 8: date-time keys stored as text, in one fixed form per
    /// side (read by key range once proven) or in mixed forms (read by
    /// scans), with the two sides' forms and precisions differing (a bound
    /// from one side finer than the other's form): the diff equals the
    /// reference, both ways.
    #[test]
    fn text_timestamp_keys_match_reference(case in ts_case()) {
        run_ts_case(case)?;
    }
}
