//! `driftsum repair` end to end, through the real binary on real SQLite
//! files (and PostgreSQL / MariaDB sources when their servers are set):
//! random tables whose replica keeps each column in one storage convention,
//! random drift; after `--apply` a diff finds them in sync, rows outside the
//! plan are unchanged (storage classes included), repaired values take
//! their column's form, the `--sql-out` script applied by the `sqlite3`
//! shell gives the same content, a dry run writes nothing; and the safety
//! rails: SIGKILL during `--apply`, a concurrent writer, a locked replica,
//! the row limit, a column whose form cannot be told.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rusqlite::types::Value as Sql;
use rusqlite::Connection;

use crate::util::{self, Scratch};

fn driftsum(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(args)
        .output()
        .expect("run driftsum")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn url(p: &Path) -> String {
    format!("sqlite:{}", p.display())
}

/// Every row of `table` as stored (storage classes included), by key.
fn dump(path: &Path, table: &str) -> Vec<Vec<Sql>> {
    let c = Connection::open(path).unwrap();
    let mut s = c
        .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
        .unwrap();
    let n = s.column_count();
    s.query_map([], |r| (0..n).map(|i| r.get::<_, Sql>(i)).collect())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// How the replica keeps each typed column (one convention per column).
#[derive(Clone, Copy, Debug)]
struct Conventions {
    amount_text: bool,
    flag_text: bool,
    /// 0: ISO with `T` and milliseconds, 1: ISO with a space, 2: Unix
    /// milliseconds (needs `stored_as`), 3: Julian days.
    ts: u8,
    /// 0: ISO date, 1: Unix seconds, 2: Julian days.
    day: u8,
    uid_blob: bool,
}

#[derive(Clone, Debug)]
struct Row {
    id: i64,
    name: Option<String>,
    cents: i64,
    ratio: f64,
    flag: bool,
    ts_ms: i64,
    day: i64,
    uid: [u8; 16],
    data: Option<Vec<u8>>,
}

fn row() -> impl Strategy<Value = Row> {
    let ratio = prop_oneof![
        Just(0.1),
        Just(3.0),
        Just(1e300),
        Just(-2.5e-300),
        Just(f64::MIN_POSITIVE),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
    ];
    (
        (
            proptest::option::of("[a-z' ]{0,6}"),
            0i64..10_000_000,
            ratio,
            any::<bool>(),
        ),
        (
            0i64..4_000_000_000_000,
            0i64..60_000,
            any::<[u8; 16]>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..5)),
        ),
    )
        .prop_map(
            |((name, cents, ratio, flag), (ts_ms, day, uid, data))| Row {
                id: 0,
                name,
                cents,
                ratio,
                flag,
                ts_ms,
                day,
                uid,
                data,
            },
        )
}

const SOURCE_DDL: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, \
    amount NUMERIC(12,2), ratio DOUBLE, flag BOOLEAN, ts TIMESTAMP(3), day DATE, \
    uid UUID, data BLOB)";

fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn amount_text(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn insert_source(c: &Connection, r: &Row) {
    c.execute(
        "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, \
         strftime('%Y-%m-%d %H:%M:%f', ?6 / 1000.0, 'unixepoch'), \
         date(?7 * 86400, 'unixepoch'), ?8, ?9)",
        rusqlite::params![
            r.id,
            r.name,
            amount_text(r.cents),
            r.ratio,
            r.flag,
            r.ts_ms,
            r.day,
            uuid_text(&r.uid),
            r.data
        ],
    )
    .unwrap();
}

fn replica_ddl(k: &Conventions) -> String {
    let amount = if k.amount_text { "TEXT" } else { "REAL" };
    let ts = match k.ts {
        0 | 1 => "TEXT",
        2 => "INTEGER",
        _ => "REAL",
    };
    let day = match k.day {
        0 => "TEXT",
        1 => "INTEGER",
        _ => "REAL",
    };
    let uid = if k.uid_blob { "BLOB" } else { "TEXT" };
    let flag = if k.flag_text { "TEXT" } else { "INTEGER" };
    format!(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount {amount}, ratio REAL, \
         flag {flag}, ts {ts}, day {day}, uid {uid}, data BLOB)"
    )
}

fn insert_replica(c: &Connection, k: &Conventions, r: &Row) {
    let amount = match k.amount_text {
        true => Sql::Text(amount_text(r.cents)),
        false => Sql::Real(r.cents as f64 / 100.0),
    };
    let flag = match k.flag_text {
        true => Sql::Text(if r.flag { "true" } else { "false" }.into()),
        false => Sql::Integer(r.flag.into()),
    };
    let ts = match k.ts {
        0 => "strftime('%Y-%m-%dT%H:%M:%f', ?6 / 1000.0, 'unixepoch')",
        1 => "strftime('%Y-%m-%d %H:%M:%f', ?6 / 1000.0, 'unixepoch')",
        2 => "?6",
        _ => "julianday(?6 / 1000.0, 'unixepoch')",
    };
    let day = match k.day {
        0 => "date(?7 * 86400, 'unixepoch')",
        1 => "?7 * 86400",
        _ => "?7 + 2440587.5",
    };
    let uid = match k.uid_blob {
        true => Sql::Blob(r.uid.to_vec()),
        false => Sql::Text(uuid_text(&r.uid)),
    };
    c.execute(
        &format!("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, {ts}, {day}, ?8, ?9)"),
        rusqlite::params![r.id, r.name, amount, r.ratio, flag, r.ts_ms, r.day, uid, r.data],
    )
    .unwrap();
}

/// What happens to one source row in the replica.
#[derive(Clone, Copy, Debug)]
enum Drift {
    Same,
    Missing,
    /// Changed in these columns (a bit mask over the value columns).
    Changed(u8),
    /// Gone, and an extra row with its values under another key.
    Replaced,
}

fn drift() -> impl Strategy<Value = Drift> {
    prop_oneof![
        6 => Just(Drift::Same),
        1 => Just(Drift::Missing),
        2 => (1u8..=255).prop_map(Drift::Changed),
        1 => Just(Drift::Replaced),
    ]
}

fn change(r: &Row, mask: u8, other: &Row) -> Row {
    let mut c = r.clone();
    let pick = |bit: u8| mask & (1 << bit) != 0;
    if pick(0) {
        c.name = match &r.name {
            Some(n) => Some(format!("{n}x")),
            None => Some("new".into()),
        };
    }
    if pick(1) {
        c.cents = r.cents + 1;
    }
    if pick(2) {
        c.ratio = f64::from_bits(r.ratio.to_bits() ^ 1);
    }
    if pick(3) {
        c.flag = !r.flag;
    }
    if pick(4) {
        c.ts_ms = r.ts_ms + 1;
    }
    if pick(5) {
        c.day = r.day + 1;
    }
    if pick(6) {
        c.uid[15] ^= 1;
    }
    if pick(7) {
        c.data = if other.data == r.data {
            Some(vec![9])
        } else {
            other.data.clone()
        };
    }
    c
}

/// A source, a drifted replica, and the keys the drift touched.
struct Case {
    dir: Scratch,
    source: PathBuf,
    replica: PathBuf,
    config: PathBuf,
    conventions: Conventions,
    touched: BTreeSet<i64>,
}

fn conventions() -> impl Strategy<Value = Conventions> {
    (any::<bool>(), any::<bool>(), 0u8..4, 0u8..3, any::<bool>()).prop_map(
        |(amount_text, flag_text, ts, day, uid_blob)| Conventions {
            amount_text,
            flag_text,
            ts,
            day,
            uid_blob,
        },
    )
}

fn make_case(k: Conventions, rows: &[(Row, Drift)]) -> Case {
    let dir = Scratch::new("h7-repair");
    let source = dir.join("source.db");
    let replica = dir.join("replica.db");
    let config = dir.join("driftsum.toml");
    let stored = match k.ts {
        2 => "[tables.t.columns.ts]\nstored_as = \"unix_millis\"\n",
        _ => "",
    };
    std::fs::write(&config, stored).unwrap();
    let s = Connection::open(&source).unwrap();
    let r = Connection::open(&replica).unwrap();
    s.execute_batch(SOURCE_DDL).unwrap();
    r.execute_batch(&replica_ddl(&k)).unwrap();
    let mut touched = BTreeSet::new();
    for (i, (row, d)) in rows.iter().enumerate() {
        let mut row = row.clone();
        row.id = i as i64 * 3 + 1;
        insert_source(&s, &row);
        match *d {
            Drift::Same => insert_replica(&r, &k, &row),
            Drift::Missing => {
                touched.insert(row.id);
            }
            Drift::Changed(mask) => {
                let other = &rows[(i + 1) % rows.len()].0;
                insert_replica(&r, &k, &change(&row, mask, other));
                touched.insert(row.id);
            }
            Drift::Replaced => {
                let mut extra = row.clone();
                extra.id = row.id + 1;
                insert_replica(&r, &k, &extra);
                touched.insert(row.id);
                touched.insert(extra.id);
            }
        }
    }
    Case {
        dir,
        source,
        replica,
        config,
        conventions: k,
        touched,
    }
}

/// `9` for each digit, `h` for each other hex digit: the shape of a value.
fn shape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => '9',
            'a'..='f' => 'h',
            c => c,
        })
        .collect()
}

/// Every value of the typed columns is in its column's convention.
fn assert_forms(path: &Path, k: &Conventions) {
    let hex_shape = "hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh";
    for row in dump(path, "t") {
        let ctx = format!("row {row:?} in conventions {k:?}");
        let digits = |v: &Sql, want: &str| match v {
            Sql::Text(t) => assert_eq!(shape(t).replace('h', "9"), want, "{ctx}"),
            other => panic!("{other:?} is not text; {ctx}"),
        };
        match (&row[2], k.amount_text) {
            (Sql::Text(t), true) => {
                let (_, frac) = t.split_once('.').expect("a point");
                assert_eq!(frac.len(), 2, "{ctx}");
            }
            (Sql::Real(_), false) => {}
            _ => panic!("amount: {ctx}"),
        }
        match (&row[4], k.flag_text) {
            (Sql::Text(t), true) => assert!(t == "true" || t == "false", "{ctx}"),
            (Sql::Integer(0 | 1), false) => {}
            _ => panic!("flag: {ctx}"),
        }
        match (&row[5], k.ts) {
            (v, 0) => digits(v, "9999-99-99T99:99:99.999"),
            (v, 1) => digits(v, "9999-99-99 99:99:99.999"),
            (Sql::Integer(_), 2) | (Sql::Real(_), 3) => {}
            _ => panic!("ts: {ctx}"),
        }
        match (&row[6], k.day) {
            (v, 0) => digits(v, "9999-99-99"),
            (Sql::Integer(_), 1) | (Sql::Real(_), 2) => {}
            _ => panic!("day: {ctx}"),
        }
        match (&row[7], k.uid_blob) {
            (Sql::Blob(b), true) => assert_eq!(b.len(), 16, "{ctx}"),
            (Sql::Text(t), false) => {
                assert_eq!(shape(t).replace('9', "h"), hex_shape, "{ctx}")
            }
            _ => panic!("uid: {ctx}"),
        }
    }
}

fn sqlite3_shell() -> Option<&'static str> {
    Command::new("sqlite3")
        .arg("-version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "sqlite3")
}

/// Applies a script with the `sqlite3` shell (or, without one, through
/// rusqlite's `execute_batch`, which the caller is told about).
fn run_script(db: &Path, script: &Path) {
    match sqlite3_shell() {
        Some(shell) => {
            let out = Command::new(shell)
                .arg("-bail")
                .arg(db)
                .stdin(std::fs::File::open(script).unwrap())
                .output()
                .unwrap();
            assert!(out.status.success(), "sqlite3: {}", text(&out));
        }
        None => {
            util::skip("no sqlite3 shell: the script is applied with execute_batch");
            let sql = std::fs::read_to_string(script).unwrap();
            Connection::open(db).unwrap().execute_batch(&sql).unwrap();
        }
    }
}

fn check_case(case: &Case) -> Result<(), TestCaseError> {
    let (src, cfg) = (url(&case.source), case.config.display().to_string());
    let before = std::fs::read(&case.replica).unwrap();
    let rows_before = dump(&case.replica, "t");
    let dry = driftsum(&[
        "repair",
        "--source",
        &src,
        "--target",
        &url(&case.replica),
        "--config",
        &cfg,
    ]);
    let expect = i32::from(!case.touched.is_empty());
    prop_assert_eq!(code(&dry), expect, "{}", text(&dry));
    prop_assert!(
        std::fs::read(&case.replica).unwrap() == before,
        "the dry run wrote"
    );

    let scripted = case.dir.join("scripted.db");
    std::fs::copy(&case.replica, &scripted).unwrap();
    let script = case.dir.join("repair.sql");
    let out = driftsum(&[
        "repair",
        "--source",
        &src,
        "--target",
        &url(&scripted),
        "--config",
        &cfg,
        "--sql-out",
        &script.display().to_string(),
    ]);
    prop_assert_eq!(code(&out), expect, "{}", text(&out));
    run_script(&scripted, &script);

    let out = driftsum(&[
        "repair",
        "--source",
        &src,
        "--target",
        &url(&case.replica),
        "--config",
        &cfg,
        "--apply",
    ]);
    prop_assert_eq!(code(&out), 0, "{}", text(&out));
    let diff = driftsum(&[
        "diff",
        "--source",
        &src,
        "--target",
        &url(&case.replica),
        "--config",
        &cfg,
    ]);
    prop_assert_eq!(code(&diff), 0, "{}", text(&diff));

    let after = dump(&case.replica, "t");
    prop_assert_eq!(
        &after,
        &dump(&scripted, "t"),
        "the script and --apply differ"
    );
    let untouched = |rows: &[Vec<Sql>]| -> Vec<Vec<Sql>> {
        rows.iter()
            .filter(|r| !matches!(r[0], Sql::Integer(id) if case.touched.contains(&id)))
            .cloned()
            .collect()
    };
    prop_assert_eq!(
        untouched(&rows_before),
        untouched(&after),
        "a row outside the plan changed"
    );
    assert_forms(&case.replica, &case.conventions);
    Ok(())
}

#[test]
fn repaired_replicas_are_in_sync_in_their_own_forms() {
    let mut runner = TestRunner::new(Config {
        cases: 12,
        failure_persistence: None,
        ..Config::default()
    });
    // The first row is kept in the replica: an empty replica holds no
    // value to learn its columns' forms from, and repair rightly refuses it
    // (a_column_whose_form_cannot_be_told_is_refused).
    let strategy = (
        conventions(),
        proptest::collection::vec((row(), drift()), 1..40).prop_map(|mut rows| {
            rows[0].1 = Drift::Same;
            rows
        }),
    );
    runner
        .run(&strategy, |(k, rows)| check_case(&make_case(k, &rows)))
        .unwrap();
}

/// A replica with every kind of drift in one table of `n` rows.
fn small_case() -> Case {
    let k = Conventions {
        amount_text: true,
        flag_text: false,
        ts: 0,
        day: 0,
        uid_blob: false,
    };
    let base = |i: i64| Row {
        id: 0,
        name: Some(format!("n{i}")),
        cents: i * 101,
        ratio: i as f64 / 3.0,
        flag: i % 2 == 0,
        ts_ms: 1_700_000_000_000 + i * 1_234,
        day: 19_000 + i,
        uid: [i as u8; 16],
        data: None,
    };
    let rows: Vec<(Row, Drift)> = (0..50)
        .map(|i| {
            let d = match i {
                3 => Drift::Missing,
                7 => Drift::Changed(0b10001),
                11 => Drift::Replaced,
                _ => Drift::Same,
            };
            (base(i), d)
        })
        .collect();
    make_case(k, &rows)
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let case = small_case();
    let before = std::fs::read(&case.replica).unwrap();
    let out = driftsum(&[
        "repair",
        "--source",
        &url(&case.source),
        "--target",
        &url(&case.replica),
    ]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 to insert, 1 to delete, 1 to update"),
        "{stdout}"
    );
    assert!(stdout.contains("update 22: name, ts"), "{stdout}");
    assert!(stdout.contains("delete 35"), "{stdout}");
    assert_eq!(std::fs::read(&case.replica).unwrap(), before);
    let dir: Vec<_> = std::fs::read_dir(case.dir.path()).unwrap().collect();
    assert_eq!(dir.len(), 3, "the dry run left a file: {dir:?}");
}

/// A replica that is a tree file or an agent is no database to write to:
/// refused with the reason and what to do instead (exit 2), dry run or
/// `--apply`, and nothing is written anywhere.
#[test]
fn a_replica_that_is_no_database_is_refused() {
    let case = small_case();
    let before = std::fs::read(&case.replica).unwrap();
    let tree = case.dir.path().join("replica.dstree");
    let build = driftsum(&[
        "build",
        "--db",
        &url(&case.replica),
        "--table",
        "t",
        "--out",
        &tree.display().to_string(),
    ]);
    assert_eq!(code(&build), 0, "{}", text(&build));
    let tree_bytes = std::fs::read(&tree).unwrap();
    let tree_url = format!("tree:{}", tree.display());
    for target in [tree_url.as_str(), "driftsum://127.0.0.1:9"] {
        for apply in [false, true] {
            let source = url(&case.source);
            let mut args = vec!["repair", "--source", &source, "--target", target];
            if apply {
                args.push("--apply");
            }
            let out = driftsum(&args);
            assert_eq!(code(&out), 2, "{target} {apply}: {}", text(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("repair writes only to a SQLite replica")
                    && stderr.contains("driftsum diff"),
                "{target} {apply}: {stderr}"
            );
        }
    }
    assert_eq!(std::fs::read(&case.replica).unwrap(), before);
    assert_eq!(std::fs::read(&tree).unwrap(), tree_bytes);
    let dir: Vec<_> = std::fs::read_dir(case.dir.path()).unwrap().collect();
    assert_eq!(dir.len(), 4, "a refused repair left a file: {dir:?}");
}

#[test]
fn sides_can_come_from_the_config_file() {
    let case = small_case();
    std::fs::write(
        &case.config,
        "[source]\nurl = \"sqlite:source.db\"\n[replica]\nurl = \"sqlite:replica.db\"\n",
    )
    .unwrap();
    let cfg = case.config.display().to_string();
    let out = driftsum(&["repair", "--config", &cfg, "--apply"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = driftsum(&["diff", "--config", &cfg]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

#[test]
fn the_undo_script_restores_the_replica() {
    let case = small_case();
    let before = dump(&case.replica, "t");
    let out = driftsum(&[
        "repair",
        "--source",
        &url(&case.source),
        "--target",
        &url(&case.replica),
        "--apply",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_ne!(dump(&case.replica, "t"), before);
    let undo: Vec<PathBuf> = std::fs::read_dir(case.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".undo.sql"))
        .collect();
    assert_eq!(undo.len(), 1, "{undo:?}");
    run_script(&case.replica, &undo[0]);
    assert_eq!(dump(&case.replica, "t"), before);
}

#[test]
fn plans_over_the_limits_are_refused() {
    let case = small_case();
    let before = std::fs::read(&case.replica).unwrap();
    let out = driftsum(&[
        "repair",
        "--source",
        &url(&case.source),
        "--target",
        &url(&case.replica),
        "--apply",
        "--max-rows",
        "3",
    ]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to repair 4 rows") && err.contains("full resync"),
        "{err}"
    );
    assert_eq!(std::fs::read(&case.replica).unwrap(), before);
}

#[test]
fn a_column_whose_form_cannot_be_told_is_refused() {
    let case = small_case();
    let r = Connection::open(&case.replica).unwrap();
    // One timestamp as Unix seconds among ISO text: which form is it?
    r.execute("UPDATE t SET ts = 1700000000 WHERE id = 1", [])
        .unwrap();
    drop(r);
    let before = std::fs::read(&case.replica).unwrap();
    let out = driftsum(&[
        "repair",
        "--source",
        &url(&case.source),
        "--target",
        &url(&case.replica),
        "--apply",
    ]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"ts\"") && err.contains("stored_as"), "{err}");
    assert_eq!(std::fs::read(&case.replica).unwrap(), before);
}

#[test]
fn a_locked_replica_waits_then_says_so() {
    let case = small_case();
    let holder = Connection::open(&case.replica).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let out = driftsum(&[
        "repair",
        "--source",
        &url(&case.source),
        "--target",
        &url(&case.replica),
        "--apply",
        "--busy-timeout",
        "1",
    ]);
    let waited = started.elapsed();
    assert_eq!(code(&out), 2, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked by another writer"), "{err}");
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    holder.execute_batch("ROLLBACK").unwrap();
}

/// `repair --apply` of `case` started in the background, waiting up to
/// 30 s for the replica's write lock.
fn apply_waiting(case: &Case) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args([
            "repair",
            "--source",
            &url(&case.source),
            "--target",
            &url(&case.replica),
            "--apply",
            "--busy-timeout",
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_writer_committing_during_the_repair_is_not_overwritten() {
    let case = small_case();
    // The writer holds the lock while repair plans, changes a planned
    // row, and commits while repair waits for the lock.
    let writer = Connection::open(&case.replica).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let child = apply_waiting(&case);
    std::thread::sleep(Duration::from_millis(1500));
    writer
        .execute("UPDATE t SET name = 'from the writer' WHERE id = 22", [])
        .unwrap();
    writer.execute_batch("COMMIT").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let name: String = writer
        .query_row("SELECT name FROM t WHERE id = 22", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "from the writer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 changed by another writer"), "{stdout}");
    // The other rows were repaired.
    let missing: i64 = writer
        .query_row("SELECT count(*) FROM t WHERE id IN (10, 34)", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(missing, 2);
}

/// The sync catches up with a planned row while repair waits for the lock
/// (here: it deletes the replica's extra row): the re-read of the planned
/// keys under the lock finds that key in sync, leaves it, counts it, and
/// repairs the rest; the re-verification of the repaired keys passes.
#[test]
fn a_row_the_sync_fixed_meanwhile_is_left_and_counted() {
    let case = small_case();
    let writer = Connection::open(&case.replica).unwrap();
    writer
        .execute(
            "ATTACH DATABASE ?1 AS s",
            [case.source.to_string_lossy().as_ref()],
        )
        .unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let child = apply_waiting(&case);
    std::thread::sleep(Duration::from_millis(1500));
    let fixed = writer
        .execute("DELETE FROM t WHERE id NOT IN (SELECT id FROM s.t)", [])
        .unwrap();
    assert_eq!(fixed, 1, "the replica held one extra row");
    writer.execute_batch("COMMIT").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 already in sync"), "{stdout}");
    let after = driftsum(&[
        "diff",
        "--source",
        &url(&case.source),
        "--target",
        &url(&case.replica),
    ]);
    assert_eq!(code(&after), 0, "{}", text(&after));
}

#[test]
fn sigkill_during_apply_leaves_the_replica_before_or_after() {
    let k = Conventions {
        amount_text: false,
        flag_text: true,
        ts: 1,
        day: 1,
        uid_blob: true,
    };
    let rows: Vec<(Row, Drift)> = (0..4000i64)
        .map(|i| {
            let r = Row {
                id: 0,
                name: Some(format!("row {i}")),
                cents: i,
                ratio: 0.5,
                flag: true,
                ts_ms: 1_600_000_000_000 + i,
                day: 18_000,
                uid: [7; 16],
                data: Some(vec![1, 2]),
            };
            let d = match i % 4 {
                0 => Drift::Changed(0b11),
                1 => Drift::Missing,
                _ => Drift::Same,
            };
            (r, d)
        })
        .collect();
    let case = make_case(k, &rows);
    let pristine = case.dir.join("pristine.db");
    std::fs::copy(&case.replica, &pristine).unwrap();
    let original = dump(&pristine, "t");
    let repaired_copy = case.dir.join("repaired.db");
    std::fs::copy(&pristine, &repaired_copy).unwrap();
    let out = driftsum(&[
        "repair",
        "--source",
        &url(&case.source),
        "--target",
        &url(&repaired_copy),
        "--apply",
        "--max-rows",
        "100000",
        "--max-share",
        "100",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let repaired = dump(&repaired_copy, "t");
    let mut outcomes = [0usize; 2];
    for run in 0..8u64 {
        std::fs::copy(&pristine, &case.replica).unwrap();
        for e in std::fs::read_dir(case.dir.path()).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().contains("replica.db.repair-") {
                std::fs::remove_file(p).unwrap();
            }
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_driftsum"))
            .args([
                "repair",
                "--source",
                &url(&case.source),
                "--target",
                &url(&case.replica),
                "--apply",
                "--max-rows",
                "100000",
                "--max-share",
                "100",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Spread over the run: planning, the re-read, the writes, the commit.
        let delay = 20 + (run * 7919 + 13) % 8 * 40;
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        let c = Connection::open(&case.replica).unwrap();
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        drop(c);
        let now = dump(&case.replica, "t");
        if now == original {
            outcomes[0] += 1;
        } else {
            assert!(
                now == repaired,
                "run {run} ({status:?}) left a partial repair"
            );
            outcomes[1] += 1;
        }
    }
    eprintln!(
        "sigkill runs: {} untouched, {} repaired",
        outcomes[0], outcomes[1]
    );
}

#[test]
fn postgres_source_is_repaired_end_to_end() {
    let Some(pg) = util::postgres_url() else {
        return;
    };
    server_end_to_end(&pg, "postgres");
}

#[test]
fn mariadb_source_is_repaired_end_to_end() {
    let Some(my) = util::mysql_url() else {
        return;
    };
    server_end_to_end(&my, "mysql");
}

/// A table on a server, a SQLite replica with its own conventions and
/// every kind of drift; repaired and re-verified.
fn server_end_to_end(server: &str, engine: &str) {
    let table = format!("h7_repair_{}_{engine}", std::process::id());
    let (ddl, rows) = match engine {
        "postgres" => (
            format!(
                "CREATE TABLE {table} (id bigint PRIMARY KEY, name text, amount numeric(12,2), \
                 ratio double precision, flag boolean, ts timestamptz(3), day date, uid uuid)"
            ),
            "(1,'a',1.50,0.1,true,'2024-01-02 03:04:05.678+00','2024-01-02','00000000-0000-0000-0000-000000000001'),\
             (2,'b',2.00,1e300,false,'2024-02-02 03:04:05+00','2024-02-02','00000000-0000-0000-0000-000000000002'),\
             (3,NULL,NULL,NULL,NULL,NULL,NULL,NULL),\
             (4,'it''s',4.25,-3.5,true,'1999-12-31 23:59:59.999+00','1999-12-31','00000000-0000-0000-0000-000000000004'),\
             (5,'e',5.00,5,false,'2030-06-01 00:00:00+00','2030-06-01','00000000-0000-0000-0000-000000000005')",
        ),
        _ => (
            format!(
                "CREATE TABLE {table} (id bigint PRIMARY KEY, name text, amount decimal(12,2), \
                 ratio double, flag boolean, ts datetime(3), day date, uid binary(16))"
            ),
            "(1,'a',1.50,0.1,true,'2024-01-02 03:04:05.678','2024-01-02',UNHEX('00000000000000000000000000000001')),\
             (2,'b',2.00,1e300,false,'2024-02-02 03:04:05','2024-02-02',UNHEX('00000000000000000000000000000002')),\
             (3,NULL,NULL,NULL,NULL,NULL,NULL,NULL),\
             (4,'it''s',4.25,-3.5,true,'1999-12-31 23:59:59.999','1999-12-31',UNHEX('00000000000000000000000000000004')),\
             (5,'e',5.00,5,false,'2030-06-01 00:00:00','2030-06-01',UNHEX('00000000000000000000000000000005'))",
        ),
    };
    let exec = |sql: &str| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection as _;
            match engine {
                "postgres" => {
                    let mut c = sqlx::PgConnection::connect(server).await.unwrap();
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                        .execute(&mut c)
                        .await
                        .map(|_| ())
                }
                _ => {
                    let mut c = sqlx::MySqlConnection::connect(server).await.unwrap();
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                        .execute(&mut c)
                        .await
                        .map(|_| ())
                }
            }
        })
    };
    exec(&format!("DROP TABLE IF EXISTS {table}")).unwrap();
    exec(&ddl).unwrap();
    exec(&format!("INSERT INTO {table} VALUES {rows}")).unwrap();
    let dir = Scratch::new("h7-repair-server");
    let replica = dir.join("replica.db");
    let r = Connection::open(&replica).unwrap();
    // The replica's conventions: amounts as text with two digits, flags
    // 0/1, instants as ISO text with `T`, milliseconds and `Z`, dates as
    // Unix seconds, uuids as 16-byte blobs.
    r.execute_batch(&format!(
        "CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT, amount TEXT, ratio REAL, \
         flag INTEGER, ts TEXT, day INTEGER, uid BLOB);
         INSERT INTO {table} VALUES
          (1,'a','1.50',0.1,1,'2024-01-02T03:04:05.678Z',1704153600,X'00000000000000000000000000000001'),
          (2,'b','9.99',1e300,0,'2024-02-02T03:04:05.000Z',1706832000,X'00000000000000000000000000000002'),
          (4,'it''s','4.25',-3.5,1,'1999-12-31T23:59:59.999Z',946598400,X'00000000000000000000000000000004'),
          (6,'extra','6.00',6,1,'2001-01-01T00:00:00.000Z',978307200,X'00000000000000000000000000000006');"
    ))
    .unwrap();
    drop(r);
    let tgt = url(&replica);
    let out = driftsum(&[
        "repair", "--source", server, "--target", &tgt, "--table", &table, "--apply",
    ]);
    let diff = driftsum(&[
        "diff", "--source", server, "--target", &tgt, "--table", &table,
    ]);
    let rows = dump(&replica, &table);
    let _ = exec(&format!("DROP TABLE IF EXISTS {table}"));
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(code(&diff), 0, "{}", text(&diff));
    assert_eq!(rows.len(), 5);
    // Row 5 was inserted in the replica's forms.
    assert_eq!(
        rows[4],
        vec![
            Sql::Integer(5),
            Sql::Text("e".into()),
            Sql::Text("5.00".into()),
            Sql::Real(5.0),
            Sql::Integer(0),
            Sql::Text("2030-06-01T00:00:00.000Z".into()),
            Sql::Integer(1_906_502_400),
            Sql::Blob([[0u8; 15].as_slice(), &[5]].concat()),
        ]
    );
    assert_eq!(rows[2][1], Sql::Null);
}

/// The benchmark: 10,000 drifted rows in a 1,000,000-row replica,
/// planned, applied and re-verified (goal: under 2 s). Ignored by default
/// (it writes about 150 MB). Timed on a release build with
/// `cargo test --release --locked --test integration -- --ignored --exact
/// repair::repair_benchmark --nocapture` (docs/recovery.md), or against
/// another binary with `DRIFTSUM_BIN=PATH`.
#[test]
#[ignore]
fn repair_benchmark() {
    let bin = std::env::var("DRIFTSUM_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_driftsum").to_string());
    let dir = Scratch::new("h7-repair-bench");
    let (source, replica) = (dir.join("source.db"), dir.join("replica.db"));
    let fill = |path: &Path, sep: &str| {
        let c = Connection::open(path).unwrap();
        c.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount NUMERIC(12,2), ts TIMESTAMP(3));
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000000)
             INSERT INTO t SELECT i, 'name ' || i, printf('%.2f', i / 100.0),
               strftime('%Y-%m-%d{sep}%H:%M:%f', 1600000000 + i / 1000.0, 'unixepoch') FROM c;"
        ))
        .unwrap();
        c
    };
    drop(fill(&source, " "));
    let r = fill(&replica, "T");
    r.execute_batch(
        "DELETE FROM t WHERE id % 300 = 0;
         UPDATE t SET name = 'changed' WHERE id % 300 = 100;
         INSERT INTO t SELECT id + 1000000, name, amount, ts FROM t WHERE id % 300 = 200;
         UPDATE t SET name = 'changed too' WHERE id = 1;",
    )
    .unwrap();
    drop(r);
    let time = |args: &[&str]| {
        let started = Instant::now();
        let out = Command::new(&bin).args(args).output().unwrap();
        (started.elapsed().as_secs_f64(), out)
    };
    let (src, tgt) = (url(&source), url(&replica));
    let (diff_s, out) = time(&["diff", "--source", &src, "--target", &tgt, "--summary"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    // 10,001 rows: one more than the default --max-rows.
    let (plan_s, out) = time(&[
        "repair",
        "--source",
        &src,
        "--target",
        &tgt,
        "-q",
        "--max-rows",
        "20000",
    ]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let (apply_s, out) = time(&[
        "repair",
        "--source",
        &src,
        "--target",
        &tgt,
        "--apply",
        "-q",
        "--max-rows",
        "20000",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let (after_s, out) = time(&["diff", "--source", &src, "--target", &tgt, "--summary"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    eprintln!(
        "repair benchmark (1,000,000 rows, 10,000 drifted), {bin}: diff {diff_s:.2} s, \
         repair dry run {plan_s:.2} s, repair --apply (plan, apply, re-verify) {apply_s:.2} s \
         (goal: under 2 s, {}), diff after {after_s:.2} s",
        match apply_s < 2.0 {
            true => "met",
            false => "NOT met",
        }
    );
}
