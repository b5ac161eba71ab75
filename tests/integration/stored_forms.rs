//! Dates and times stored as text in a SQLite replica, in the forms writers
//! use and in forms none does, as keys and as values, against a naive
//! reference: a spelling writers use (`T` or a space, more zeros, `Z`) is
//! the same value; any other text (a space around it, a lower-case `t`, a
//! nonzero digit past the column's fractional digits) is no value of the
//! column, so a key in such a form is a missing row and an extra one, never
//! the same row "in sync". Checked in process, through agents, through a
//! tree file, and from PostgreSQL and MariaDB sources.

use std::collections::BTreeSet;
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;
use rusqlite::Connection;
use serde_json::Value as Json;

use driftsum::agent::{AgentClient, ServeOptions, Server};
use driftsum::check::{self, DiffOptions, Endpoint, RunOutcome};
use driftsum::core::time;
use driftsum::reconcile::DiffKind;
use driftsum::source::sqlite::SqliteSource;

use crate::util::{self, Scratch};

const TOKEN: &str = "stored-forms-test-token";

/// How a replica spells one stored date-time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spelling {
    /// As the source: `YYYY-MM-DD HH:MM:SS[.f]` with the column's digits.
    Same,
    /// `T` between date and time.
    WithT,
    /// Zeros past the column's digits, to nine.
    MoreZeros,
    /// A `Z` after it.
    Zulu,
    /// A trailing space.
    TrailingSpace,
    /// A leading space.
    LeadingSpace,
    /// A lower-case `t` between date and time.
    LowerT,
    /// A nonzero digit past the column's digits (past microseconds when
    /// the column holds six).
    ExtraDigit,
}

impl Spelling {
    /// Whether writers use it: it reads as the same value.
    fn same_value(self) -> bool {
        matches!(
            self,
            Spelling::Same | Spelling::WithT | Spelling::MoreZeros | Spelling::Zulu
        )
    }
}

impl Spelling {
    /// Every spelling.
    const ALL: [Spelling; 8] = [
        Spelling::Same,
        Spelling::WithT,
        Spelling::MoreZeros,
        Spelling::Zulu,
        Spelling::TrailingSpace,
        Spelling::LeadingSpace,
        Spelling::LowerT,
        Spelling::ExtraDigit,
    ];
}

fn spelling() -> impl Strategy<Value = Spelling> {
    prop_oneof![
        6 => Just(Spelling::Same),
        1 => Just(Spelling::WithT),
        1 => Just(Spelling::MoreZeros),
        1 => Just(Spelling::Zulu),
        1 => Just(Spelling::TrailingSpace),
        1 => Just(Spelling::LeadingSpace),
        1 => Just(Spelling::LowerT),
        1 => Just(Spelling::ExtraDigit),
    ]
}

/// Second `s` of 2026 (plus `frac` microseconds) spelled `how` for a column
/// with `precision` fractional digits.
fn spell(s: i64, frac: i64, precision: usize, how: Spelling) -> String {
    let day = s / 86_400;
    let (m, d) = (1 + day / 28, 1 + day % 28);
    let sep = match how {
        Spelling::WithT => 'T',
        Spelling::LowerT => 't',
        _ => ' ',
    };
    let clock = s % 86_400;
    let mut t = format!(
        "2026-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}",
        clock / 3600,
        clock / 60 % 60,
        clock % 60
    );
    let digits = format!("{frac:06}000");
    let shown = match how {
        Spelling::MoreZeros => 9,
        Spelling::ExtraDigit => precision + 1,
        _ => precision,
    };
    if shown > 0 {
        t.push('.');
        t.push_str(&digits[..shown]);
        if how == Spelling::ExtraDigit {
            t.pop();
            t.push('7');
        }
    }
    match how {
        Spelling::Zulu => t + "Z",
        Spelling::TrailingSpace => t + " ",
        Spelling::LeadingSpace => format!(" {t}"),
        _ => t,
    }
}

/// One row: its key second, fraction, and how the replica spells its key
/// and its value (the source spells both [`Spelling::Same`]).
#[derive(Clone, Debug)]
struct Row {
    second: i64,
    frac: i64,
    key: Spelling,
    value: Spelling,
}

#[derive(Clone, Debug)]
struct Case {
    precision: usize,
    rows: Vec<Row>,
}

fn case() -> impl Strategy<Value = Case> {
    (select(vec![0usize, 3, 6]), 1usize..200).prop_flat_map(|(precision, n)| {
        let unit = 10i64.pow(6 - precision as u32);
        let row = (
            0i64..(28 * 12 * 86_400 / 300),
            0i64..1_000_000,
            spelling(),
            spelling(),
        )
            .prop_map(move |(i, f, key, value)| Row {
                second: i * 300,
                frac: f / unit * unit,
                key,
                value,
            });
        proptest::collection::vec(row, n).prop_map(move |mut rows| {
            rows.sort_by_key(|r| r.second);
            rows.dedup_by_key(|r| r.second);
            Case { precision, rows }
        })
    })
}

/// What a diff must say: the source's keys of the rows whose replica key is
/// in no writer's form (missing), that many extra rows, and the rows whose
/// key reads the same but whose value does not (changed).
struct Expected {
    missing: BTreeSet<String>,
    extra: usize,
    changed: BTreeSet<String>,
}

fn write(path: &Path, case: &Case, replica: bool) -> String {
    write_table(path, "t", case, replica)
}

fn write_table(path: &Path, table: &str, case: &Case, replica: bool) -> String {
    let conn = Connection::open(path).expect("open");
    let ty = format!("TIMESTAMP({})", case.precision);
    conn.execute_batch(&format!(
        "CREATE TABLE {table} (k {ty} PRIMARY KEY, v {ty}, n INTEGER);"
    ))
    .expect("create");
    let tx = conn.unchecked_transaction().expect("tx");
    {
        let mut ins = tx
            .prepare(&format!("INSERT INTO {table} VALUES (?1, ?2, ?3)"))
            .expect("prepare");
        for (i, r) in case.rows.iter().enumerate() {
            let (k, v) = match replica {
                true => (r.key, r.value),
                false => (Spelling::Same, Spelling::Same),
            };
            let key = spell(r.second, r.frac, case.precision, k);
            let value = spell(r.second + 7, r.frac, case.precision, v);
            ins.execute(rusqlite::params![key, value, i as i64])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    format!("sqlite:{}", path.display())
}

fn expected(case: &Case) -> Expected {
    // As a report writes the key.
    let display = |r: &Row| {
        let text = spell(r.second, r.frac, 6, Spelling::Same);
        let micros = time::parse_datetime(&text).expect("a time").local_micros;
        time::format_timestamp(micros)
    };
    let odd_key: Vec<&Row> = case.rows.iter().filter(|r| !r.key.same_value()).collect();
    Expected {
        missing: odd_key.iter().map(|r| display(r)).collect(),
        extra: odd_key.len(),
        changed: case
            .rows
            .iter()
            .filter(|r| r.key.same_value() && !r.value.same_value())
            .map(display)
            .collect(),
    }
}

/// The outcome's missing and changed keys (as the report writes a
/// timestamp) and its number of extra rows.
fn found(run: &RunOutcome) -> (BTreeSet<String>, usize, BTreeSet<String>) {
    let t = &run.tables[0];
    assert!(t.error.is_none(), "{:?}", t.error);
    let of = |kind: DiffKind| {
        t.differences
            .iter()
            .filter(move |d| d.kind == kind)
            .map(|d| d.key[0].to_string())
    };
    (
        of(DiffKind::Missing).collect(),
        of(DiffKind::Extra).count(),
        of(DiffKind::Changed).collect(),
    )
}

fn assert_found(how: &str, run: &RunOutcome, want: &Expected) -> Result<(), TestCaseError> {
    let (missing, extra, changed) = found(run);
    prop_assert_eq!(&missing, &want.missing, "missing, {}", how);
    prop_assert_eq!(extra, want.extra, "extra, {}", how);
    prop_assert_eq!(&changed, &want.changed, "changed, {}", how);
    Ok(())
}

fn run_case(case: &Case) -> Result<(), TestCaseError> {
    let dir = Scratch::new("stored-forms");
    let (sp, rp) = (dir.join("source.db"), dir.join("replica.db"));
    let (a, b) = (write(&sp, case, false), write(&rp, case, true));
    let want = expected(case);
    let o = DiffOptions::default();
    let mut sa = SqliteSource::open(&sp).expect("open source");
    let mut sb = SqliteSource::open(&rp).expect("open replica");
    let local = check::diff(&mut sa, &mut sb, &o, &|_, _| {}).expect("diff");
    assert_found("in process", &local, &want)?;
    // The replica read by an agent, and the source by another.
    let serve = |url: &str| {
        Server::bind("127.0.0.1:0", ServeOptions::new(url, TOKEN))
            .expect("bind")
            .spawn()
            .expect("spawn")
    };
    let (ha, hb) = (serve(&a), serve(&b));
    let mut ca = AgentClient::new(&ha.addr().to_string(), TOKEN);
    let mut cb = AgentClient::new(&hb.addr().to_string(), TOKEN);
    let through = check::diff_endpoints(
        &mut Endpoint::agent(&mut ca),
        &mut Endpoint::agent(&mut cb),
        &o,
        &|_, _| {},
    )
    .expect("diff through agents");
    assert_found("agent against agent", &through, &want)?;
    let mut sa = SqliteSource::open(&sp).expect("open source");
    let mixed = check::diff_endpoints(
        &mut Endpoint::database(&mut sa),
        &mut Endpoint::agent(&mut cb),
        &o,
        &|_, _| {},
    )
    .expect("diff against an agent");
    assert_found("database against agent", &mixed, &want)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn odd_spellings_are_differences_and_writers_spellings_are_not(case in case()) {
        run_case(&case)?;
    }
}

/// The binary's JSON report: (missing keys, extra count, changed keys).
fn json_found(r: &util::Run) -> (BTreeSet<String>, usize, BTreeSet<String>) {
    assert_eq!(r.code, 1, "{r:#?}");
    let doc: Json = serde_json::from_str(&r.stdout).expect("json");
    let diffs = doc["tables"][0]["differences"]
        .as_array()
        .expect("differences")
        .clone();
    let of = |kind: &str| {
        diffs
            .iter()
            .filter(|d| d["kind"] == kind)
            .map(|d| d["key"]["k"].as_str().expect("key text").to_string())
            .collect::<Vec<_>>()
    };
    (
        of("missing").into_iter().collect(),
        of("extra").len(),
        of("changed").into_iter().collect(),
    )
}

/// One replica with every odd form, as keys and as values.
fn every_form(precision: usize) -> Case {
    let all = Spelling::ALL;
    let mut rows = Vec::new();
    for (i, key) in all.iter().enumerate() {
        for (j, value) in all.iter().enumerate() {
            rows.push(Row {
                second: ((i * all.len() + j) as i64) * 3_600 + 30,
                frac: if precision == 0 { 0 } else { 123_000 },
                key: *key,
                value: *value,
            });
        }
    }
    Case { precision, rows }
}

fn sets(want: &Expected) -> (BTreeSet<String>, usize, BTreeSet<String>) {
    (want.missing.clone(), want.extra, want.changed.clone())
}

/// The same through the binary, with a tree file of the replica as one side.
#[test]
fn a_tree_file_of_the_replica_finds_the_same() {
    let case = every_form(3);
    let dir = Scratch::new("stored-forms-file");
    let (sp, rp) = (dir.join("source.db"), dir.join("replica.db"));
    let (a, b) = (write(&sp, &case, false), write(&rp, &case, true));
    let file = dir.join("replica.dstree");
    let f = file.to_string_lossy().into_owned();
    let built = util::run(&[
        "build",
        "--db",
        &b,
        "--table",
        "t",
        "--out",
        &f,
        "--with-entries",
    ]);
    assert_eq!(built.code, 0, "{built:#?}");
    let r = util::run(&["diff", "--source", &a, "--target", &f, "--format", "json"]);
    let direct = util::run(&["diff", "--source", &a, "--target", &b, "--format", "json"]);
    let want = sets(&expected(&case));
    assert_eq!(json_found(&direct), want);
    assert_eq!(json_found(&r).1, want.1, "{r:#?}");
    assert_eq!(json_found(&r).0, want.0, "{r:#?}");
}

/// A server's `timestamp(3)` / `datetime(3)` table against a SQLite replica
/// holding every form: the server side's keys and values are exact, so
/// only the replica's odd texts are differences.
fn server_case(kind: &str, url: &str, create: &str) {
    let case = every_form(3);
    let dir = Scratch::new("stored-forms-server");
    let rp = dir.join("replica.db");
    let table = util::unique("stored_forms");
    let b = write_table(&rp, &table, &case, true);
    let rows: Vec<String> = case
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "('{}', '{}', {i})",
                spell(r.second, r.frac, 3, Spelling::Same),
                spell(r.second + 7, r.frac, 3, Spelling::Same)
            )
        })
        .collect();
    let create = create.replace("TABLE_NAME", &table);
    let insert = format!("INSERT INTO {table} VALUES {}", rows.join(", "));
    let drop = format!("DROP TABLE IF EXISTS {table}");
    let out = if kind == "postgres" {
        let mut admin = util::Admin::<sqlx::PgConnection>::connect(url);
        admin.exec(&create);
        admin.exec(&insert);
        let r = diff_server(url, &table, &b);
        admin.exec(&drop);
        r
    } else {
        let mut admin = util::Admin::<sqlx::MySqlConnection>::connect(url);
        admin.exec(&create);
        admin.exec(&insert);
        let r = diff_server(url, &table, &b);
        admin.exec(&drop);
        r
    };
    assert_eq!(json_found(&out), sets(&expected(&case)), "{kind}: {out:#?}");
}

fn diff_server(url: &str, table: &str, replica: &str) -> util::Run {
    util::run(&[
        "diff", "--source", url, "--target", replica, "--table", table, "--format", "json",
    ])
}

#[test]
fn postgres_timestamps_against_every_replica_form() {
    let Some(url) = util::postgres_url() else {
        return util::skip("DRIFTSUM_TEST_POSTGRES is not set");
    };
    server_case(
        "postgres",
        &url,
        "CREATE TABLE TABLE_NAME (k timestamp(3) PRIMARY KEY, v timestamp(3), n integer)",
    );
}

#[test]
fn mariadb_datetimes_against_every_replica_form() {
    let Some(url) = util::mysql_url() else {
        return util::skip("DRIFTSUM_TEST_MYSQL is not set");
    };
    server_case(
        "mariadb",
        &url,
        "CREATE TABLE TABLE_NAME (k datetime(3) PRIMARY KEY, v datetime(3), n integer)",
    );
}
