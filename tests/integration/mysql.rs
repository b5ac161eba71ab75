//! The MySQL / MariaDB connector against a real server.
//!
//! The server comes from `DRIFTSUM_TEST_MYSQL` (for example
//! `mysql://root@127.0.0.1:3306/test`, a user allowed to create databases and
//! users); without it every test says so and passes. Each test works in its
//! own database (`ds_<pid>_<n>`) and drops it, and any user it creates, at the
//! end. Replicas are SQLite files written with rusqlite the way a sync tool
//! would store the values (ISO text, Unix seconds, Julian days, decimals as
//! text or real, bools as 0/1). Comparisons go through the library:
//! `driftsum::source::open` and `driftsum::check::diff`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use driftsum::check::{self, ColumnChoice, DiffOptions, RunOutcome, TableOutcome, TablePair};
use driftsum::core::coerce::ColumnRule;
use driftsum::core::{LogicalType, Shape, Value};
use driftsum::reconcile::DiffKind;
use driftsum::source::{self, ColumnSpec, ScanSpec, Source, SourceError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rusqlite::types::Value as Sq;
use sqlx::AssertSqlSafe;

use crate::util::{self, Scratch};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The server URL, or `None` (with a note) when the tests should skip.
fn server_url() -> Option<String> {
    util::mysql_url()
}

/// The parts of a `mysql://[USER[:PW]@]HOST[:PORT]/DB[?…]` URL.
struct UrlParts {
    scheme: String,
    user: String,
    host: String,
}

fn url_parts(url: &str) -> UrlParts {
    let (scheme, rest) = url.split_once("://").expect("a mysql:// URL");
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (user, host) = match authority.rsplit_once('@') {
        Some((ui, host)) => (ui.split(':').next().unwrap_or_default(), host),
        None => ("", authority),
    };
    UrlParts {
        scheme: scheme.to_string(),
        user: user.to_string(),
        host: host.to_string(),
    }
}

/// A URL to `db` on the test server, as `user` (with `password`) or as the
/// test URL's own user.
fn url_for(base: &str, db: &str, user: Option<(&str, &str)>) -> String {
    let p = url_parts(base);
    // The base URL's own password, if it has one, is kept for its own user.
    let base_userinfo = base
        .split_once("://")
        .map(|(_, r)| r.split(['/', '?']).next().unwrap_or_default())
        .and_then(|a| a.rsplit_once('@').map(|(ui, _)| ui.to_string()));
    let userinfo = match user {
        Some((u, pw)) => format!("{u}:{pw}@"),
        None => match base_userinfo {
            Some(ui) => format!("{ui}@"),
            None => String::new(),
        },
    };
    format!("{}://{userinfo}{}/{db}", p.scheme, p.host)
}

/// A setup connection (root).
type Admin = util::Admin<sqlx::MySqlConnection>;

/// A database of its own for one test, dropped (with the test's users) at
/// the end.
struct TestDb {
    admin: Admin,
    name: String,
    base: String,
    users: Vec<String>,
}

impl TestDb {
    fn new(base: &str) -> TestDb {
        let mut admin = Admin::connect(base);
        let name = util::unique("ds");
        admin.exec(&format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        ));
        admin.exec(&format!("USE `{name}`"));
        admin.exec("SET NAMES utf8mb4");
        admin.exec("SET time_zone = '+00:00'");
        TestDb {
            admin,
            name,
            base: base.to_string(),
            users: Vec::new(),
        }
    }

    fn url(&self) -> String {
        url_for(&self.base, &self.name, None)
    }

    fn exec(&mut self, sql: &str) {
        self.admin.exec(sql)
    }

    /// Creates a user (dropped at the end) and returns its name.
    fn user(&mut self, password: &str) -> String {
        let u = util::unique("ds_user");
        self.admin
            .exec(&format!("CREATE USER '{u}'@'%' IDENTIFIED BY '{password}'"));
        self.users.push(u.clone());
        u
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = self
            .admin
            .try_exec(&format!("DROP DATABASE IF EXISTS `{}`", self.name));
        for u in std::mem::take(&mut self.users) {
            let _ = self
                .admin
                .try_exec(&format!("DROP USER IF EXISTS '{u}'@'%'"));
        }
    }
}

/// A SQLite file in a scratch folder of its own, removed (with any `-wal`
/// or `-shm` file beside it) when dropped.
struct Replica {
    path: PathBuf,
    _dir: Scratch,
}

impl Replica {
    fn new(sql: &str) -> Replica {
        let scratch = Scratch::new("mysql-replica");
        let path = scratch.join("replica.sqlite");
        let conn = rusqlite::Connection::open(&path).expect("create replica");
        conn.execute_batch(sql)
            .unwrap_or_else(|e| panic!("replica setup: {e}\n{sql}"));
        Replica {
            path,
            _dir: scratch,
        }
    }

    fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).expect("open replica")
    }

    fn exec(&self, sql: &str) {
        self.conn()
            .execute_batch(sql)
            .unwrap_or_else(|e| panic!("replica: {e}\n{sql}"));
    }

    fn url(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

fn open(url: &str) -> Box<dyn Source> {
    source::open(url).unwrap_or_else(|e| panic!("opening {url}: {e}"))
}

fn diff_with(src: &str, tgt: &str, table: &str, columns: ColumnChoice, shape: Shape) -> RunOutcome {
    let mut s = open(src);
    let mut t = open(tgt);
    check::diff(
        s.as_mut(),
        t.as_mut(),
        &DiffOptions {
            tables: vec![TablePair::parse(table)],
            columns,
            shape,
            ..Default::default()
        },
        &|_, _| {},
    )
    .expect("diff runs")
}

fn diff(src: &str, tgt: &str, table: &str) -> TableOutcome {
    let mut run = diff_with(src, tgt, table, ColumnChoice::default(), Shape::default());
    assert_eq!(run.tables.len(), 1);
    run.tables.remove(0)
}

fn assert_in_sync(t: &TableOutcome) {
    assert_eq!(t.error, None, "the comparison failed");
    assert!(
        t.differences.is_empty(),
        "expected no differences, got {:#?}\ncolumns: {:?}",
        t.differences,
        t.columns
    );
    assert!(
        t.column_differences.is_empty(),
        "{:?}",
        t.column_differences
    );
}

/// The one difference of `t`: a change of exactly `column` in the row `key`.
fn assert_one_change(t: &TableOutcome, key: Value, column: &str) {
    assert_eq!(t.error, None);
    assert_eq!(t.differences.len(), 1, "{:#?}", t.differences);
    let d = &t.differences[0];
    assert_eq!(d.kind, DiffKind::Changed);
    assert_eq!(d.key, vec![key]);
    let names: Vec<&str> = d.changed.iter().map(|&i| t.columns[i].as_str()).collect();
    assert_eq!(names, vec![column], "{d:#?}");
}

// ---------------------------------------------------------------------------
// a. Every supported type, with edge values, against a SQLite replica
// ---------------------------------------------------------------------------

const MATRIX_MYSQL: &str = "CREATE TABLE t (
    id int NOT NULL PRIMARY KEY,
    b tinyint(1), i bigint, u bigint unsigned, si smallint, ui int unsigned,
    f float, d double,
    n decimal(12,2), n2 decimal(12,2),
    s varchar(100), tx text, ch char(5), e enum('red','green','blue'),
    vb varbinary(16), bl blob,
    dt datetime(6), dt0 datetime, ts timestamp(6) NULL, ts0 timestamp NULL,
    dd date, tm time(6), y year, j json
)";

const MATRIX_SQLITE: &str = "CREATE TABLE t (
    id INTEGER PRIMARY KEY,
    b BOOLEAN, i INTEGER, u, si INTEGER, ui INTEGER,
    f REAL, d REAL,
    n TEXT, n2 REAL,
    s TEXT, tx TEXT, ch TEXT, e TEXT,
    vb BLOB, bl BLOB,
    dt TEXT, dt0 INTEGER, ts TEXT, ts0 INTEGER,
    dd REAL, tm TEXT, y INTEGER, j TEXT
)";

/// Julian day of a date given as days since 1970-01-01.
fn julian(days: i64) -> f64 {
    days as f64 + 2_440_587.5
}

fn matrix_rows() -> (Vec<String>, Vec<Vec<Sq>>) {
    use Sq::{Blob, Integer as I, Null, Real as R, Text as T};
    let t = |s: &str| T(s.to_string());
    let mysql = vec![
        // 1: every column NULL.
        "(1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
            .to_string(),
        // 2: minimums, emptiness, the past.
        "(2, 0, -9223372036854775808, 0, -32768, 0, -0.0, -0.0, '-0.01', '0.00', '', '', '', \
         'red', X'', X'', '1969-07-20 20:17:40.123456', '1900-01-01 00:00:00', \
         '1970-01-01 00:00:01.000001', '1970-01-01 00:00:01', '1000-01-01', '00:00:00', 1901, \
         '[]')"
            .to_string(),
        // 3: maximums, unicode, binary zeros.
        "(3, 1, 9223372036854775807, 18446744073709551615, 32767, 4294967295, 0.1, 4.9e-324, \
         '5.10', '5.10', 'h\u{e9}llo \u{1f600} w\u{f6}rld', 'tab\\there\nnew line \u{1f389}', \
         'ab', 'green', X'00FF0000', X'000102FF', '2024-02-29 23:59:59.999999', \
         '2038-01-19 03:14:08', '2024-03-01 10:00:00.654321', '2038-01-19 03:14:07', \
         '9999-12-31', '23:59:59.999999', 2155, '{\"b\": 1, \"a\": [true, null, 2.5]}')"
            .to_string(),
        // 4: zeros, ordinary values.
        "(4, 0, 0, 1, 0, 7, 0.0, 0.0, '0', '123456.78', 'x', ' padded ', 'z', 'blue', \
         X'0000', X'00', '2024-03-01 10:00:00.5', '1969-12-31 23:59:59', \
         '2001-09-09 01:46:40.1', '2001-09-09 01:46:40', '2024-03-01', '12:34:56.5', 2024, \
         '{\"k\": {\"z\": 1, \"a\": \"\u{1f600}\"}}')"
            .to_string(),
        // 5: more floats and decimals.
        "(5, 1, -1, 9223372036854775808, -1, 1, 3.4028234e38, 2.2250738585072014e-308, \
         '-9999999999.99', '-1.50', 'Z', 'A', 'A', 'red', X'FF', X'FFFF', \
         '1900-01-01 00:00:00.000001', '2024-03-01 10:00:00', NULL, NULL, '2000-02-29', \
         '00:00:00.000001', 1970, 'null')"
            .to_string(),
    ];
    let days_1000 = -354_285; // 1000-01-01
    let days_9999 = 2_932_896; // 9999-12-31
    let sqlite = vec![
        vec![
            I(1),
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
        ],
        vec![
            I(2),
            I(0),
            I(i64::MIN),
            I(0),
            I(-32768),
            I(0),
            R(0.0),
            R(0.0),
            t("-0.01"),
            R(0.0),
            t(""),
            t(""),
            t(""),
            t("red"),
            Blob(vec![]),
            Blob(vec![]),
            t("1969-07-20T20:17:40.123456"),
            I(-2_208_988_800),
            t("1970-01-01T00:00:01.000001Z"),
            I(1),
            R(julian(days_1000)),
            t("00:00:00"),
            I(1901),
            t("[ ]"),
        ],
        vec![
            I(3),
            I(1),
            I(i64::MAX),
            t("18446744073709551615"),
            I(32767),
            I(4_294_967_295),
            // As a sync through a double would store a FLOAT 0.1.
            R(0.1f32 as f64),
            R(4.9e-324),
            t("5.10"),
            R(5.1),
            t("h\u{e9}llo \u{1f600} w\u{f6}rld"),
            t("tab\there\nnew line \u{1f389}"),
            t("ab"),
            t("green"),
            Blob(vec![0, 0xFF, 0, 0]),
            Blob(vec![0, 1, 2, 0xFF]),
            t("2024-02-29 23:59:59.999999"),
            I(2_147_483_648),
            t("2024-03-01T10:00:00.654321+00:00"),
            I(2_147_483_647),
            R(julian(days_9999)),
            t("23:59:59.999999"),
            I(2155),
            t("{\"a\":[true,null,2.5],\"b\":1}"),
        ],
        vec![
            I(4),
            I(0),
            I(0),
            I(1),
            I(0),
            I(7),
            R(-0.0),
            R(-0.0),
            t("0.00"),
            R(123_456.78),
            t("x"),
            t(" padded "),
            t("z"),
            t("blue"),
            Blob(vec![0, 0]),
            Blob(vec![0]),
            t("2024-03-01T10:00:00.500000"),
            I(-1),
            t("2001-09-09T01:46:40.1Z"),
            I(1_000_000_000),
            R(julian(19_783)),
            t("12:34:56.5"),
            I(2024),
            t("{\"k\":{\"a\":\"\u{1f600}\",\"z\":1}}"),
        ],
        vec![
            I(5),
            I(1),
            I(-1),
            t("9223372036854775808"),
            I(-1),
            I(1),
            R(3.402_823_4e38),
            R(2.225_073_858_507_201_4e-308),
            t("-9999999999.99"),
            R(-1.5),
            t("Z"),
            t("A"),
            t("A"),
            t("red"),
            Blob(vec![0xFF]),
            Blob(vec![0xFF, 0xFF]),
            t("1900-01-01T00:00:00.000001"),
            I(1_709_287_200),
            Null,
            Null,
            R(julian(11_016)),
            t("00:00:00.000001"),
            I(1970),
            t("null"),
        ],
    ];
    (mysql, sqlite)
}

fn matrix(base: &str) -> (TestDb, Replica) {
    let mut db = TestDb::new(base);
    db.exec(MATRIX_MYSQL);
    let (mysql, sqlite) = matrix_rows();
    db.exec(&format!("INSERT INTO t VALUES {}", mysql.join(", ")));
    let replica = Replica::new(MATRIX_SQLITE);
    let conn = replica.conn();
    for row in sqlite {
        let marks = vec!["?"; row.len()].join(", ");
        conn.execute(
            &format!("INSERT INTO t VALUES ({marks})"),
            rusqlite::params_from_iter(row),
        )
        .expect("insert into replica");
    }
    (db, replica)
}

#[test]
fn type_matrix_matches_sqlite_replica() {
    let Some(base) = server_url() else { return };
    let (db, replica) = matrix(&base);
    let t = diff(&db.url(), &replica.url(), "t");
    assert_in_sync(&t);
    assert_eq!(t.source_rows, 5);
    assert_eq!(t.target_rows, 5);
}

#[test]
fn type_matrix_reads_the_right_values() {
    let Some(base) = server_url() else { return };
    let (db, _replica) = matrix(&base);
    let mut src = open(&db.url());
    let schema = src.schema("t").expect("schema");
    assert_eq!(schema.primary_key, vec!["id"]);
    let ty = |c: &str| schema.column(c).expect("column").ty;
    assert_eq!(ty("b"), LogicalType::Bool);
    assert_eq!(ty("u"), LogicalType::Integer);
    assert_eq!(ty("f"), LogicalType::Float { single: true });
    assert_eq!(ty("n"), LogicalType::Decimal { scale: Some(2) });
    assert_eq!(ty("e"), LogicalType::Text);
    assert_eq!(
        ty("j"),
        LogicalType::Json,
        "MariaDB json is a checked longtext"
    );
    assert_eq!(ty("ts"), LogicalType::Timestamp { precision: 6 });
    assert_eq!(ty("dt0"), LogicalType::TimestampNaive { precision: 0 });
    assert_eq!(
        schema.column("ui").expect("ui").declared,
        "int(10) unsigned"
    );
    let spec = ScanSpec {
        table: "t".into(),
        key: vec![col(&schema, "id")],
        values: ["u", "f", "d", "n", "s", "dt", "ts", "tm", "j", "vb"]
            .iter()
            .map(|c| col(&schema, c))
            .collect(),
        filter: Some("id = 3".into()),
        ranges: Vec::new(),
    };
    let mut rows = Vec::new();
    src.scan(&spec, None, &mut |r| {
        rows.push(r.to_vec());
        ControlFlow::Continue(())
    })
    .expect("scan");
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r[0], Value::Int(3));
    assert_eq!(r[1], Value::Int(18_446_744_073_709_551_615));
    assert_eq!(r[2], Value::Float(0.1f32 as f64));
    assert_eq!(r[3], Value::Float(4.9e-324));
    assert_eq!(r[4], Value::Decimal("5.1".into()));
    assert_eq!(r[5], Value::Text("h\u{e9}llo \u{1f600} w\u{f6}rld".into()));
    // 2024-02-29T23:59:59.999999 and 2024-03-01T10:00:00.654321Z.
    assert_eq!(r[6], Value::TimestampNaive(1_709_251_199_999_999));
    assert_eq!(r[7], Value::Timestamp(1_709_287_200_654_321));
    assert_eq!(r[8], Value::Time(86_399_999_999));
    assert_eq!(r[9], Value::Json("{\"a\":[true,null,2.5],\"b\":1}".into()));
    assert_eq!(r[10], Value::Bytes(vec![0, 0xFF, 0, 0]));
}

fn col(schema: &source::TableSchema, name: &str) -> ColumnSpec {
    ColumnSpec {
        name: name.into(),
        rule: ColumnRule::new(schema.column(name).expect("column").ty),
    }
}

#[test]
fn type_matrix_finds_one_changed_value() {
    let Some(base) = server_url() else { return };
    // One change per case, each on its own copy: (replica update, key, column).
    let cases = [
        ("UPDATE t SET n = '5.11' WHERE id = 3", 3, "n"),
        ("UPDATE t SET n2 = 5.11 WHERE id = 3", 3, "n2"),
        (
            "UPDATE t SET u = '18446744073709551614' WHERE id = 3",
            3,
            "u",
        ),
        ("UPDATE t SET f = 0.2 WHERE id = 3", 3, "f"),
        ("UPDATE t SET d = 1e-323 WHERE id = 3", 3, "d"),
        (
            "UPDATE t SET ts = '2024-03-01T10:00:00.654322Z' WHERE id = 3",
            3,
            "ts",
        ),
        (
            "UPDATE t SET dt = '1969-07-20T20:17:40.123457' WHERE id = 2",
            2,
            "dt",
        ),
        (
            "UPDATE t SET s = 'h\u{e9}llo \u{1f601} w\u{f6}rld' WHERE id = 3",
            3,
            "s",
        ),
        ("UPDATE t SET vb = x'00FF00' WHERE id = 3", 3, "vb"),
        (
            "UPDATE t SET j = '{\"a\":[true,null,2.5],\"b\":2}' WHERE id = 3",
            3,
            "j",
        ),
        ("UPDATE t SET b = NULL WHERE id = 4", 4, "b"),
        ("UPDATE t SET s = NULL WHERE id = 2", 2, "s"),
        ("UPDATE t SET tx = '' WHERE id = 1", 1, "tx"),
        ("UPDATE t SET dd = dd + 1 WHERE id = 4", 4, "dd"),
        ("UPDATE t SET tm = '12:34:56.500001' WHERE id = 4", 4, "tm"),
        ("UPDATE t SET e = 'Red' WHERE id = 2", 2, "e"),
    ];
    let (db, replica) = matrix(&base);
    for (sql, key, column) in cases {
        let scratch = Scratch::new("mysql-copy");
        let copy = Replica {
            path: scratch.join("copy.sqlite"),
            _dir: scratch,
        };
        std::fs::copy(replica.path(), copy.path()).expect("copy replica");
        copy.exec(sql);
        let t = diff(&db.url(), &copy.url(), "t");
        assert_one_change(&t, Value::Int(key), column);
    }
}

// ---------------------------------------------------------------------------
// Key order and range reads
// ---------------------------------------------------------------------------

/// Text keys that sort differently by collation, by PAD SPACE and by bytes.
const TEXT_KEYS: &[&str] = &[
    "",
    "\t",
    "A",
    "B",
    "Z",
    "a",
    "a\t",
    "ab",
    "b",
    "\u{e9}",
    "\u{ff}",
    "\u{20ac}",
    "\u{1f600}",
    "~",
    "a b",
    " a",
];

#[test]
fn text_keys_come_in_byte_order_and_ranges_hold_their_rows() {
    let Some(base) = server_url() else { return };
    // A case-insensitive PAD SPACE collation, unlike byte order in every way,
    // and a code-point NO PAD one, whose index order is byte order.
    for collation in ["utf8mb4_general_ci", "utf8mb4_nopad_bin"] {
        text_keys_in(&base, collation);
    }
}

fn text_keys_in(base: &str, collation: &str) {
    let mut db = TestDb::new(base);
    db.exec(&format!(
        "CREATE TABLE k (g int NOT NULL, s varchar(20) COLLATE {collation} NOT NULL, \
         v int, PRIMARY KEY (g, s))"
    ));
    let mut keys: Vec<(i64, String)> = Vec::new();
    for g in [-1i64, 2] {
        for (i, s) in TEXT_KEYS.iter().enumerate() {
            // 'A' and 'a' (and 'é'/'ÿ'…) collide under _ci: one group each.
            let in_group = match g {
                -1 => !matches!(*s, "a" | "b" | "\u{ff}" | "a\t"),
                _ => !matches!(*s, "A" | "B" | "\u{e9}"),
            };
            if in_group {
                db.exec(&format!(
                    "INSERT INTO k VALUES ({g}, '{}', {i})",
                    s.replace('\\', "\\\\").replace('\'', "''")
                ));
                keys.push((g, s.to_string()));
            }
        }
    }
    keys.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.as_bytes().cmp(b.1.as_bytes())));
    let mut src = open(&db.url());
    let schema = src.schema("k").expect("schema");
    let spec = ScanSpec {
        table: "k".into(),
        key: vec![col(&schema, "g"), col(&schema, "s")],
        values: vec![col(&schema, "v")],
        filter: None,
        ranges: Vec::new(),
    };
    let key_of = |(g, s): &(i64, String)| vec![Value::Int(*g as i128), Value::Text(s.clone())];
    let scan = |src: &mut Box<dyn Source>, bounds: Option<&driftsum::core::key::KeyRange>| {
        let mut got = Vec::new();
        src.scan(&spec, bounds, &mut |r| {
            got.push(r[..2].to_vec());
            ControlFlow::Continue(())
        })
        .expect("scan");
        got
    };
    let all: Vec<Vec<Value>> = keys.iter().map(key_of).collect();
    assert_eq!(scan(&mut src, None), all, "full scan in byte order");
    // Every range (after, through] returns exactly its rows (the connector
    // can express these bounds, so no more either).
    for a in 0..=all.len() {
        for b in a..all.len() {
            let bounds = util::key_range(a.checked_sub(1).map(|i| all[i].clone()), all[b].clone());
            let got = scan(&mut src, Some(&bounds));
            let want = all[a..=b].to_vec();
            assert_eq!(
                got, want,
                "range after {:?} through {:?}",
                bounds.after, bounds.through
            );
        }
    }
    // Bounds between stored keys work too: (-1, "a") < key <= (2, "a").
    let bounds = util::key_range(
        Some(vec![Value::Int(-1), Value::Text("a".into())]),
        vec![Value::Int(2), Value::Text("a".into())],
    );
    let got = scan(&mut src, Some(&bounds));
    let want: Vec<Vec<Value>> = keys
        .iter()
        .filter(|(g, s)| {
            let k = (*g, s.as_bytes());
            k > (-1, b"a".as_slice()) && k <= (2, b"a".as_slice())
        })
        .map(key_of)
        .collect();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------
// b. Random tables and mutations against a naive reference
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
struct Row {
    n: Option<i64>,
    s: Option<String>,
    cents: Option<i64>,
    micros: Option<i64>,
    x: Option<f64>,
    flag: Option<bool>,
    /// A DATETIME(6) as its stored fields, zero and impossible days included.
    zd: Option<Fields>,
}

/// Year, month, day, hour, minute, second, microseconds: what MariaDB stores
/// for a DATETIME, which under `ALLOW_INVALID_DATES` need not be a real day.
type Fields = (u16, u8, u8, u8, u8, u8, u32);

type Key = (i64, String);

#[derive(Clone, Debug)]
enum Mutation {
    Insert(Key, Row),
    Delete(usize),
    Update(usize, Row),
    Replace(usize, Key, Row),
}

fn key_strategy() -> impl Strategy<Value = Key> {
    let ch = prop::sample::select(vec!["a", "A", "b", "\t", "\u{e9}", "\u{1f600}", "~", "0"]);
    (-2i64..3, prop::collection::vec(ch, 0..3)).prop_map(|(g, cs)| (g, cs.concat()))
}

fn row_strategy() -> impl Strategy<Value = Row> {
    (
        prop::option::of(any::<i64>()),
        prop::option::of(prop::sample::select(vec![
            "",
            "x",
            "X",
            "h\u{e9}",
            "\u{1f600}",
            " sp ",
            "tab\t",
        ])),
        prop::option::of(-99_999i64..99_999),
        prop::option::of(-4_000_000_000_000_000i64..4_000_000_000_000_000),
        prop::option::of(prop::sample::select(vec![
            0.0,
            -0.0,
            1.5,
            -2.25,
            1e300,
            4.9e-324,
            0.1,
            1.0 / 3.0,
        ])),
        prop::option::of(any::<bool>()),
        prop::option::of(fields_strategy()),
    )
        .prop_map(|(n, s, cents, micros, x, flag, zd)| Row {
            n,
            s: s.map(str::to_string),
            cents,
            micros,
            x,
            flag,
            zd,
        })
}

/// DATETIME fields from the families MariaDB keeps: the zero date (with and
/// without a time), zero months and days, days past their month's end, real
/// days at both ends of the range, and fractions next to a second's edges.
fn fields_strategy() -> impl Strategy<Value = Fields> {
    let year = prop::sample::select(vec![0u16, 1000, 1970, 2000, 2023, 2024, 9999]);
    let frac = prop::sample::select(vec![0u32, 1, 500_000, 999_998, 999_999]);
    let time = (0u8..24, 0u8..60, 0u8..60, frac);
    prop_oneof![
        Just((0, 0, 0, 0, 0, 0, 0)),
        time.clone()
            .prop_map(|(h, mi, s, us)| (0, 0, 0, h, mi, s, us)),
        (year.clone(), 0u8..=12, 0u8..=31, time.clone())
            .prop_map(|(y, m, d, (h, mi, s, us))| (y, m, d, h, mi, s, us)),
        (year, 1u8..=12, 1u8..=28, time)
            .prop_map(|(y, m, d, (h, mi, s, us))| (y, m, d, h, mi, s, us)),
    ]
}

/// The fields as MySQL prints a DATETIME(6): what a text sync copies.
fn fields_text(f: Fields) -> String {
    let (y, m, d, h, mi, s, us) = f;
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
}

/// Whether the fields name a real calendar day.
fn real_day(f: Fields) -> bool {
    use driftsum::core::time::{civil_from_days, days_from_civil};
    let (y, m, d) = (f.0 as i64, f.1 as u32, f.2 as u32);
    (1..=12).contains(&m) && d >= 1 && civil_from_days(days_from_civil(y, m, d)) == (y, m, d)
}

fn case_strategy() -> impl Strategy<Value = (BTreeMap<Key, Row>, Vec<Mutation>)> {
    let rows = prop::collection::btree_map(key_strategy(), row_strategy(), 0..30);
    let mutation = prop_oneof![
        (key_strategy(), row_strategy()).prop_map(|(k, r)| Mutation::Insert(k, r)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), row_strategy()).prop_map(|(i, r)| Mutation::Update(i, r)),
        (any::<usize>(), key_strategy(), row_strategy())
            .prop_map(|(i, k, r)| Mutation::Replace(i, k, r)),
    ];
    (rows, prop::collection::vec(mutation, 0..5))
}

fn apply(rows: &BTreeMap<Key, Row>, muts: &[Mutation]) -> BTreeMap<Key, Row> {
    let mut out = rows.clone();
    let nth = |m: &BTreeMap<Key, Row>, i: usize| {
        (!m.is_empty())
            .then(|| m.keys().nth(i % m.len()).cloned())
            .flatten()
    };
    for m in muts {
        match m {
            Mutation::Insert(k, r) => {
                out.entry(k.clone()).or_insert_with(|| r.clone());
            }
            Mutation::Delete(i) => {
                if let Some(k) = nth(&out, *i) {
                    out.remove(&k);
                }
            }
            Mutation::Update(i, r) => {
                if let Some(k) = nth(&out, *i) {
                    out.insert(k, r.clone());
                }
            }
            Mutation::Replace(i, k, r) => {
                if let Some(old) = nth(&out, *i) {
                    if !out.contains_key(k) {
                        out.remove(&old);
                        out.insert(k.clone(), r.clone());
                    }
                }
            }
        }
    }
    out
}

fn mysql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Cents as decimal text: `-1.05`.
fn cents_text(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100)
}

fn micros_text(m: i64) -> String {
    // Through the core's own formatter: `YYYY-MM-DDTHH:MM:SS[.f]`.
    driftsum::core::time::format_timestamp(m)
}

fn insert_mysql(db: &mut TestDb, rows: &BTreeMap<Key, Row>) {
    if rows.is_empty() {
        return;
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "NULL".into());
    let values: Vec<String> = rows
        .iter()
        .map(|((g, s), r)| {
            format!(
                "({g}, {}, {}, {}, {}, {}, {}, {}, {})",
                mysql_literal(s),
                opt(r.n.map(|n| n.to_string())),
                opt(r.s.as_deref().map(mysql_literal)),
                opt(r.cents.map(|c| format!("'{}'", cents_text(c)))),
                opt(r
                    .micros
                    .map(|m| mysql_literal(&micros_text(m).replace('T', " ")))),
                opt(r.x.map(|x| format!("{x:e}"))),
                opt(r.flag.map(|b| (b as i32).to_string())),
                opt(r.zd.map(|f| mysql_literal(&fields_text(f)))),
            )
        })
        .collect();
    db.exec(&format!("INSERT INTO p VALUES {}", values.join(", ")));
}

fn sqlite_replica(rows: &BTreeMap<Key, Row>) -> Replica {
    let replica = Replica::new(
        "CREATE TABLE p (g INTEGER NOT NULL, s TEXT NOT NULL, n INTEGER, t TEXT, c, ts TEXT, \
         x REAL, f INTEGER, zd TEXT, PRIMARY KEY (g, s))",
    );
    let conn = replica.conn();
    for ((g, s), r) in rows {
        // Decimals alternate between text and real, as sync tools differ.
        let c = r.cents.map(|c| {
            if c % 2 == 0 {
                Sq::Real(c as f64 / 100.0)
            } else {
                Sq::Text(cents_text(c))
            }
        });
        // A real day may be stored in ISO form; any other only as MySQL's text.
        let zd = r.zd.map(|f| match real_day(f) && f.6 % 2 == 1 {
            true => fields_text(f).replace(' ', "T"),
            false => fields_text(f),
        });
        conn.execute(
            "INSERT INTO p VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                g,
                s,
                r.n,
                r.s,
                c.unwrap_or(Sq::Null),
                r.micros.map(micros_text),
                r.x,
                r.flag.map(i64::from),
                zd
            ],
        )
        .expect("insert into replica");
    }
    replica
}

/// The reference: both row sets compared by key, with the values as
/// generated (so what equal means does not depend on driftsum at all).
fn reference(src: &BTreeMap<Key, Row>, tgt: &BTreeMap<Key, Row>) -> BTreeSet<(String, Key)> {
    let mut out = BTreeSet::new();
    for (k, r) in src {
        match tgt.get(k) {
            None => out.insert(("missing".into(), k.clone())),
            Some(t) if !same_row(r, t) => out.insert(("changed".into(), k.clone())),
            Some(_) => false,
        };
    }
    for k in tgt.keys().filter(|k| !src.contains_key(*k)) {
        out.insert(("extra".into(), k.clone()));
    }
    out
}

fn same_row(a: &Row, b: &Row) -> bool {
    // -0.0 equals 0.0.
    let fx = |x: Option<f64>| x.map(|x| if x == 0.0 { 0.0 } else { x });
    Row {
        x: fx(a.x),
        ..a.clone()
    } == Row {
        x: fx(b.x),
        ..b.clone()
    }
}

fn found(t: &TableOutcome) -> BTreeSet<(String, Key)> {
    t.differences
        .iter()
        .map(|d| {
            let kind = match d.kind {
                DiffKind::Missing => "missing",
                DiffKind::Extra => "extra",
                DiffKind::Changed => "changed",
            };
            let key = match (&d.key[0], &d.key[1]) {
                (Value::Int(g), Value::Text(s)) => (*g as i64, s.clone()),
                other => panic!("unexpected key {other:?}"),
            };
            (kind.to_string(), key)
        })
        .collect()
}

#[test]
fn random_mutations_match_a_naive_reference() {
    let Some(base) = server_url() else { return };
    let mut runner = TestRunner::new(Config {
        cases: 20,
        failure_persistence: None,
        ..Config::default()
    });
    let drifted = std::cell::Cell::new(0usize);
    runner
        .run(&case_strategy(), |(rows, muts)| {
            let mut db = TestDb::new(&base);
            // Zero and impossible days are stored as they are.
            db.exec("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'");
            db.exec(
                "CREATE TABLE p (g int NOT NULL, s varchar(10) COLLATE utf8mb4_bin NOT NULL, \
                 n bigint, t varchar(20), c decimal(10,2), ts datetime(6), x double, \
                 f tinyint(1), zd datetime(6), PRIMARY KEY (g, s))",
            );
            insert_mysql(&mut db, &rows);
            let replica_rows = apply(&rows, &muts);
            let replica = sqlite_replica(&replica_rows);
            let want = reference(&rows, &replica_rows);
            drifted.set(drifted.get() + usize::from(!want.is_empty()));
            // A deep tree, so drifted ranges are read with key bounds.
            for shape in [
                Shape::default(),
                Shape {
                    leaf_target: 2,
                    fanout: 2,
                },
            ] {
                let mut run = diff_with(
                    &db.url(),
                    &replica.url(),
                    "p",
                    ColumnChoice::default(),
                    shape,
                );
                let t = run.tables.remove(0);
                prop_assert_eq!(&t.error, &None);
                prop_assert_eq!(t.source_rows, rows.len() as u64);
                prop_assert_eq!(found(&t), want.clone(), "shape {:?}", shape);
            }
            Ok::<(), TestCaseError>(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(drifted.get() > 0, "no case had any drift");
}

// ---------------------------------------------------------------------------
// c. MySQL against MySQL
// ---------------------------------------------------------------------------

#[test]
fn mysql_against_mysql() {
    let Some(base) = server_url() else { return };
    let (a, _ra) = matrix(&base);
    let (mut b, _rb) = matrix(&base);
    assert_in_sync(&diff(&a.url(), &b.url(), "t"));
    b.exec("UPDATE t SET dt = '2024-02-29 23:59:59.999998' WHERE id = 3");
    assert_one_change(&diff(&a.url(), &b.url(), "t"), Value::Int(3), "dt");
    // Two tables of one database, through a name mapping.
    b.exec("CREATE TABLE t2 LIKE t");
    b.exec("INSERT INTO t2 SELECT * FROM t");
    b.exec("DELETE FROM t2 WHERE id = 5");
    let t = diff(&b.url(), &b.url(), "t=t2");
    assert_eq!(t.error, None);
    assert_eq!(t.differences.len(), 1);
    assert_eq!(t.differences[0].kind, DiffKind::Missing);
    assert_eq!(t.differences[0].key, vec![Value::Int(5)]);
    // `mariadb://` names the same server.
    let maria = b.url().replacen("mysql://", "mariadb://", 1);
    assert_in_sync(&diff(&maria, &b.url(), "t"));
}

/// A connection reads one snapshot for its whole life: later scans do not
/// see rows written after it connected.
#[test]
fn one_connection_reads_one_snapshot() {
    let Some(base) = server_url() else { return };
    let mut db = TestDb::new(&base);
    db.exec("CREATE TABLE s (id int PRIMARY KEY, v varchar(10))");
    db.exec("INSERT INTO s VALUES (1, 'one'), (2, 'two')");
    let mut src = open(&db.url());
    let schema = src.schema("s").expect("schema");
    let spec = ScanSpec {
        table: "s".into(),
        key: vec![col(&schema, "id")],
        values: vec![col(&schema, "v")],
        filter: None,
        ranges: Vec::new(),
    };
    let read = |src: &mut Box<dyn Source>| {
        let mut rows = Vec::new();
        src.scan(&spec, None, &mut |r| {
            rows.push(r.to_vec());
            ControlFlow::Continue(())
        })
        .expect("scan");
        rows
    };
    let before = read(&mut src);
    assert_eq!(before.len(), 2);
    // A scan its sink stops leaves the connection usable.
    let stopped = src.scan(&spec, None, &mut |_| ControlFlow::Break(()));
    assert!(stopped.is_ok(), "{stopped:?}");
    db.exec("UPDATE s SET v = 'uno' WHERE id = 1");
    db.exec("INSERT INTO s VALUES (3, 'three')");
    assert_eq!(read(&mut src), before, "the snapshot holds");
    let bounds = util::key_range(Some(vec![Value::Int(0)]), vec![Value::Int(3)]);
    let mut ranged = Vec::new();
    src.scan(&spec, Some(&bounds), &mut |r| {
        ranged.push(r.to_vec());
        ControlFlow::Continue(())
    })
    .expect("range scan");
    assert_eq!(ranged, before, "range reads share it");
    assert_eq!(
        read(&mut open(&db.url())).len(),
        3,
        "a new connection sees the writes"
    );
}

// ---------------------------------------------------------------------------
// d. Read-only access is enough; no access is a clear error
// ---------------------------------------------------------------------------

#[test]
fn a_select_only_user_can_diff_and_a_user_without_select_gets_a_clear_error() {
    let Some(base) = server_url() else { return };
    let (mut db, replica) = matrix(&base);
    db.exec("CREATE TABLE other (id int PRIMARY KEY)");
    let reader = db.user("read-pw");
    db.exec(&format!(
        "GRANT SELECT ON `{}`.`t` TO '{reader}'@'%'",
        db.name
    ));
    let url = url_for(&base, &db.name, Some((&reader, "read-pw")));
    let t = diff(&url, &replica.url(), "t");
    assert_in_sync(&t);
    let mut src = open(&url);
    assert_eq!(src.tables().expect("tables"), vec!["t"]);
    assert!(!src.describe().contains("read-pw"), "{}", src.describe());

    let stranger = db.user("other-pw");
    db.exec(&format!(
        "GRANT SELECT ON `{}`.`other` TO '{stranger}'@'%'",
        db.name
    ));
    let url = url_for(&base, &db.name, Some((&stranger, "other-pw")));
    let t = diff(&url, &replica.url(), "t");
    let err = t.error.expect("an error");
    println!("{err}");
    assert!(err.contains("\"t\""), "names the table: {err}");
    assert!(err.to_lowercase().contains("denied"), "says why: {err}");
    assert!(!err.contains("other-pw"), "{err}");
}

// ---------------------------------------------------------------------------
// e. Bad input
// ---------------------------------------------------------------------------

#[test]
fn an_unreachable_server_fails_quickly() {
    if server_url().is_none() {
        return;
    }
    let started = Instant::now();
    let err = source::open("mysql://root:hunter2@127.0.0.1:1/test")
        .err()
        .expect("no server listens on port 1");
    assert!(started.elapsed() < Duration::from_secs(15));
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.contains("127.0.0.1:1"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[test]
fn a_wrong_password_is_a_clear_error_that_hides_the_password() {
    let Some(base) = server_url() else { return };
    let mut db = TestDb::new(&base);
    let user = db.user("right-pw-7");
    db.exec(&format!("GRANT SELECT ON `{}`.* TO '{user}'@'%'", db.name));
    // The right one works…
    open(&url_for(&base, &db.name, Some((&user, "right-pw-7"))));
    // …a wrong one says so, and never shows it.
    let url = url_for(&base, &db.name, Some((&user, "wr0ng-secret")));
    let err = source::open(&url).err().expect("refused");
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.to_lowercase().contains("access denied"), "{msg}");
    assert!(!msg.contains("wr0ng-secret"), "{msg}");
    assert!(!msg.contains("right-pw-7"), "{msg}");
    assert!(!format!("{err:?}").contains("wr0ng-secret"));
}

#[test]
fn a_missing_table_is_no_table() {
    let Some(base) = server_url() else { return };
    let db = TestDb::new(&base);
    let mut src = open(&db.url());
    match src.schema("nope") {
        Err(SourceError::NoTable { table, .. }) => assert_eq!(table, "nope"),
        other => panic!("expected NoTable, got {other:?}"),
    }
    // A name that would be SQL is just a name.
    assert!(matches!(
        src.schema("x` WHERE 1; DROP DATABASE test; --"),
        Err(SourceError::NoTable { .. })
    ));
    assert_eq!(src.tables().expect("tables"), Vec::<String>::new());
}

#[test]
fn unsupported_types_are_named_and_can_be_left_out() {
    let Some(base) = server_url() else { return };
    let mut db = TestDb::new(&base);
    db.exec("CREATE TABLE u (id int PRIMARY KEY, ok int, flags bit(3), tags set('a','b'))");
    db.exec("INSERT INTO u VALUES (1, 2, b'101', 'a,b')");
    let replica = Replica::new("CREATE TABLE u (id INTEGER PRIMARY KEY, ok INTEGER, flags, tags)");
    replica.exec("INSERT INTO u VALUES (1, 2, 5, 'a,b')");

    let t = diff(&db.url(), &replica.url(), "u");
    let err = t.error.expect("refused");
    println!("{err}");
    assert!(err.contains("\"u\""), "{err}");
    assert!(err.contains("\"flags\""), "{err}");
    assert!(err.contains("bit(3)"), "{err}");

    let mut src = open(&db.url());
    let schema = src.schema("u").expect("schema");
    let spec = ScanSpec {
        table: "u".into(),
        key: vec![col(&schema, "id")],
        values: vec![col(&schema, "tags")],
        filter: None,
        ranges: Vec::new(),
    };
    match src.scan(&spec, None, &mut |_| ControlFlow::Continue(())) {
        Err(SourceError::UnsupportedType {
            table,
            column,
            declared,
        }) => {
            assert_eq!((table.as_str(), column.as_str()), ("u", "tags"));
            assert_eq!(declared, "set('a','b')");
        }
        other => panic!("expected UnsupportedType, got {other:?}"),
    }

    let mut run = diff_with(
        &db.url(),
        &replica.url(),
        "u",
        ColumnChoice {
            exclude: vec!["flags".into(), "tags".into()],
            ..Default::default()
        },
        Shape::default(),
    );
    assert_in_sync(&run.tables.remove(0));
}

#[test]
fn no_database_in_the_url_is_a_clear_error() {
    let Some(base) = server_url() else { return };
    let p = url_parts(&base);
    let url = format!("{}://{}@{}", p.scheme, p.user, p.host);
    let err = source::open(&url).err().expect("refused");
    assert!(err.to_string().contains("names no database"), "{err}");
}

// ---------------------------------------------------------------------------
// d. Zero and impossible dates, and both ends of the temporal ranges
// ---------------------------------------------------------------------------

/// One stored temporal value: its column, its text (MySQL's literal, which
/// is also what MySQL prints and so what a text sync copies), the day a
/// normalizing reader would turn it into, and a neighbour one step (a
/// microsecond, a millisecond, a second or a day, by the column) away.
struct Edge {
    col: &'static str,
    text: &'static str,
    normalized: Option<&'static str>,
    nudged: Option<&'static str>,
}

const fn edge(
    col: &'static str,
    text: &'static str,
    normalized: Option<&'static str>,
    nudged: Option<&'static str>,
) -> Edge {
    Edge {
        col,
        text,
        normalized,
        nudged,
    }
}

const EDGES: &[Edge] = &[
    // DATE: the zero date, zero months and days, days past their month.
    edge("d", "0000-00-00", None, Some("0000-00-01")),
    edge("d", "2024-00-00", None, None),
    edge("d", "2024-00-15", Some("2023-12-15"), Some("2024-00-16")),
    edge("d", "2024-05-00", Some("2024-04-30"), None),
    edge("d", "2024-02-31", Some("2024-03-02"), Some("2024-02-30")),
    edge("d", "2023-02-29", Some("2023-03-01"), None),
    edge("d", "2024-04-31", Some("2024-05-01"), None),
    // DATE: real days at the ends of the range, a leap day, year zero.
    edge("d", "1000-01-01", None, Some("1000-01-02")),
    edge("d", "9999-12-31", None, Some("9999-12-30")),
    edge("d", "2024-02-29", None, Some("2024-02-28")),
    edge("d", "0000-01-01", None, Some("0000-01-02")),
    // DATETIME: the time of an impossible day counts.
    edge(
        "dt",
        "0000-00-00 00:00:00",
        None,
        Some("0000-00-00 00:00:01"),
    ),
    edge(
        "dt",
        "2024-00-15 10:00:00",
        None,
        Some("2024-00-15 23:59:59"),
    ),
    edge(
        "dt",
        "2024-02-31 10:00:00",
        Some("2024-03-02 10:00:00"),
        Some("2024-02-31 10:00:01"),
    ),
    edge(
        "dt",
        "2024-11-00 00:00:00",
        Some("2024-10-31 00:00:00"),
        None,
    ),
    edge(
        "dt",
        "1000-01-01 00:00:00",
        None,
        Some("1000-01-01 00:00:01"),
    ),
    edge(
        "dt",
        "9999-12-31 23:59:59",
        None,
        Some("9999-12-31 23:59:58"),
    ),
    // DATETIME(6): every microsecond counts, valid day or not.
    edge(
        "dt6",
        "0000-00-00 00:00:00.000000",
        None,
        Some("0000-00-00 00:00:00.000001"),
    ),
    edge(
        "dt6",
        "2024-00-15 10:00:00.000001",
        None,
        Some("2024-00-15 10:00:00.000002"),
    ),
    edge(
        "dt6",
        "2024-02-31 23:59:59.999999",
        Some("2024-03-02 23:59:59.999999"),
        Some("2024-02-31 23:59:59.999998"),
    ),
    edge(
        "dt6",
        "1000-01-01 00:00:00.000000",
        None,
        Some("1000-01-01 00:00:00.000001"),
    ),
    edge(
        "dt6",
        "9999-12-31 23:59:59.999999",
        None,
        Some("9999-12-31 23:59:59.999998"),
    ),
    // TIMESTAMP(3) and (6): the zero value and both ends of 1970..2038.
    edge(
        "ts",
        "0000-00-00 00:00:00.000",
        None,
        Some("0000-00-00 00:00:00.001"),
    ),
    edge(
        "ts",
        "1970-01-01 00:00:01.000",
        None,
        Some("1970-01-01 00:00:01.001"),
    ),
    edge(
        "ts",
        "2038-01-19 03:14:07.999",
        None,
        Some("2038-01-19 03:14:07.998"),
    ),
    edge("ts6", "0000-00-00 00:00:00.000000", None, None),
    edge(
        "ts6",
        "1970-01-01 00:00:01.000000",
        None,
        Some("1970-01-01 00:00:01.000001"),
    ),
    edge(
        "ts6",
        "2038-01-19 03:14:07.999999",
        None,
        Some("2038-01-19 03:14:07.999998"),
    ),
];

const EDGE_COLUMNS: [&str; 5] = ["d", "dt", "dt6", "ts", "ts6"];

/// A replica of the edge table in which every edge's value is `pick`'s, or
/// its own text where `pick` gives none; returns the (row, column) pairs
/// that differ from the source.
fn edge_replica(
    pick: impl Fn(&Edge) -> Option<Option<&'static str>>,
) -> (Replica, BTreeSet<(i64, String)>) {
    let replica = Replica::new(
        "CREATE TABLE z (id INTEGER PRIMARY KEY, d TEXT, dt TEXT, dt6 TEXT, ts TEXT, ts6 TEXT)",
    );
    let conn = replica.conn();
    let mut changed = BTreeSet::new();
    for (i, e) in EDGES.iter().enumerate() {
        let value = match pick(e) {
            Some(v) => {
                changed.insert((i as i64, e.col.to_string()));
                v
            }
            None => Some(e.text),
        };
        conn.execute(
            &format!("INSERT INTO z (id, {}) VALUES (?1, ?2)", e.col),
            rusqlite::params![i as i64, value],
        )
        .expect("insert into replica");
    }
    (replica, changed)
}

/// The (row, column) pairs a comparison found changed; no row missing or extra.
fn changed_cells(t: &TableOutcome) -> BTreeSet<(i64, String)> {
    assert_eq!(t.error, None, "the comparison failed");
    t.differences
        .iter()
        .flat_map(|d| {
            assert_eq!(d.kind, DiffKind::Changed, "{d:#?}");
            let Value::Int(id) = d.key[0] else {
                panic!("unexpected key {:?}", d.key)
            };
            d.changed
                .iter()
                .map(move |&c| (id as i64, t.columns[c].clone()))
        })
        .collect()
}

/// Zero dates, zero months and days and `ALLOW_INVALID_DATES` days are
/// values of their own: equal to the same text in the replica, different
/// from NULL, from the day they would normalize to and from a neighbour one
/// microsecond (or second, or day) away. Real days at both ends of each
/// type's range compare as days.
#[test]
fn zero_and_impossible_dates_are_values_of_their_own() {
    let Some(base) = server_url() else { return };
    let mut db = TestDb::new(&base);
    db.exec("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'");
    db.exec(
        "CREATE TABLE z (id int PRIMARY KEY, d date NULL, dt datetime NULL, \
         dt6 datetime(6) NULL, ts timestamp(3) NULL, ts6 timestamp(6) NULL)",
    );
    for (i, e) in EDGES.iter().enumerate() {
        db.exec(&format!(
            "INSERT INTO z (id, {}) VALUES ({i}, '{}')",
            e.col, e.text
        ));
    }
    // Each family's replica, in a shallow and a deep tree (range reads).
    type Pick = fn(&Edge) -> Option<Option<&'static str>>;
    let families: [(&str, Pick); 4] = [
        ("the same text", |_| None),
        ("NULL", |_| Some(None)),
        ("the normalized day", |e| e.normalized.map(Some)),
        ("a neighbour", |e| e.nudged.map(Some)),
    ];
    for (family, pick) in families {
        let (replica, want) = edge_replica(pick);
        for shape in [
            Shape::default(),
            Shape {
                leaf_target: 2,
                fanout: 2,
            },
        ] {
            let mut run = diff_with(
                &db.url(),
                &replica.url(),
                "z",
                ColumnChoice::default(),
                shape,
            );
            let t = run.tables.remove(0);
            assert_eq!(t.source_rows, EDGES.len() as u64);
            assert_eq!(changed_cells(&t), want, "replica holding {family}");
        }
        if family == "the same text" {
            assert!(want.is_empty());
        }
    }
    // Every column's every family is exercised.
    for c in EDGE_COLUMNS {
        assert!(
            EDGES.iter().any(|e| e.col == c && e.nudged.is_some()),
            "{c}"
        );
    }

    // MariaDB against MariaDB: a copy is in sync; a normalized day is drift.
    db.exec("CREATE TABLE z2 LIKE z");
    db.exec("INSERT INTO z2 SELECT * FROM z");
    assert_in_sync(&diff(&db.url(), &db.url(), "z=z2"));
    db.exec("UPDATE z2 SET dt = '2024-03-02 10:00:00' WHERE dt = '2024-02-31 10:00:00'");
    db.exec(
        "UPDATE z2 SET dt6 = '2024-00-15 10:00:00.000002' WHERE dt6 = '2024-00-15 10:00:00.000001'",
    );
    let t = diff(&db.url(), &db.url(), "z=z2");
    let at = |col: &str, text: &str| {
        let i = EDGES
            .iter()
            .position(|e| e.col == col && e.text == text)
            .expect("an edge");
        (i as i64, col.to_string())
    };
    assert_eq!(
        changed_cells(&t),
        BTreeSet::from([
            at("dt", "2024-02-31 10:00:00"),
            at("dt6", "2024-00-15 10:00:00.000001")
        ])
    );
}

/// The values as read show what they are: the stored text, never NULL and
/// never another day.
#[test]
fn impossible_dates_read_as_their_text() {
    let Some(base) = server_url() else { return };
    let mut db = TestDb::new(&base);
    db.exec("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'");
    db.exec("CREATE TABLE z (id int PRIMARY KEY, d date, dt datetime(6))");
    db.exec(
        "INSERT INTO z VALUES (1, '0000-00-00', '0000-00-00 00:00:00'), \
         (2, '2024-02-31', '2024-00-15 10:00:00.5'), (3, '2024-03-02', '2024-03-02 00:00:00')",
    );
    let mut src = open(&db.url());
    let schema = src.schema("z").expect("schema");
    let spec = ScanSpec {
        table: "z".into(),
        key: vec![col(&schema, "id")],
        values: vec![col(&schema, "d"), col(&schema, "dt")],
        filter: None,
        ranges: Vec::new(),
    };
    let mut rows = Vec::new();
    src.scan(&spec, None, &mut |r| {
        rows.push(r.to_vec());
        ControlFlow::Continue(())
    })
    .expect("scan");
    let day = ColumnRule::new(LogicalType::Date);
    let dt = ColumnRule::new(LogicalType::TimestampNaive { precision: 6 });
    let inv = |s: &str| Value::Invalid(s.to_string());
    assert_eq!(
        rows,
        vec![
            vec![
                Value::Int(1),
                inv("0000-00-00"),
                inv("0000-00-00 00:00:00.000000")
            ],
            vec![
                Value::Int(2),
                inv("2024-02-31"),
                inv("2024-00-15 10:00:00.500000")
            ],
            vec![
                Value::Int(3),
                day.from_text("2024-03-02"),
                dt.from_text("2024-03-02T00:00:00")
            ],
        ]
    );
}

// ---------------------------------------------------------------------------
// e. Locks held by another session
// ---------------------------------------------------------------------------

/// A table another session holds `LOCK TABLES … WRITE` on is an error naming
/// the lock after `lock_timeout`, and the run goes on: the other tables are
/// compared, in the same snapshot.
#[test]
fn a_locked_table_is_an_error_naming_the_lock_and_the_others_are_compared() {
    let Some(base) = server_url() else { return };
    let mut db = TestDb::new(&base);
    for t in ["a_locked", "b_free", "c_free"] {
        db.exec(&format!("CREATE TABLE {t} (id int PRIMARY KEY, v int)"));
        db.exec(&format!("INSERT INTO {t} VALUES (1, 10), (2, 20), (3, 30)"));
    }
    let replica = Replica::new(
        "CREATE TABLE a_locked (id INTEGER PRIMARY KEY, v INTEGER);
         CREATE TABLE b_free (id INTEGER PRIMARY KEY, v INTEGER);
         CREATE TABLE c_free (id INTEGER PRIMARY KEY, v INTEGER);
         INSERT INTO a_locked VALUES (1, 10), (2, 20), (3, 30);
         INSERT INTO b_free VALUES (1, 10), (2, 21), (3, 30);
         INSERT INTO c_free VALUES (1, 10), (2, 20), (3, 30);",
    );
    let mut locker = Admin::connect(&db.url());
    locker.exec("LOCK TABLES a_locked WRITE");

    for (limit, secs) in [("?lock_timeout=2s", 2u64), ("?lock_timeout=1", 1)] {
        let url = format!("{}{limit}", db.url());
        let replica_url = replica.url();
        let started = Instant::now();
        // On its own thread, so a diff that waits on the lock for ever
        // fails this test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut s = open(&url);
            let mut t = open(&replica_url);
            let run = check::diff(s.as_mut(), t.as_mut(), &DiffOptions::default(), &|_, _| {});
            let _ = tx.send(run);
        });
        let run = rx
            .recv_timeout(Duration::from_secs(secs + 30))
            .expect("the diff returns after the lock timeout")
            .expect("the run itself goes on");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(secs) && took < Duration::from_secs(secs + 20),
            "took {took:?} with lock_timeout {secs} s"
        );
        let names: Vec<&str> = run.tables.iter().map(|t| t.table.as_str()).collect();
        assert_eq!(names, ["a_locked", "b_free", "c_free"]);
        let err = run.tables[0]
            .error
            .as_deref()
            .expect("the locked table fails");
        println!("{err}");
        assert!(err.contains("\"a_locked\""), "{err}");
        assert!(err.contains("holds a lock on the table"), "{err}");
        assert!(err.contains(&format!("lock_timeout = {secs} s")), "{err}");
        assert!(!err.contains("password"), "{err}");
        assert_one_change(&run.tables[1], Value::Int(2), "v");
        assert_in_sync(&run.tables[2]);
        assert_eq!(run.exit_code(), 2);
    }

    // Once the lock is released the same table compares.
    locker.exec("UNLOCK TABLES");
    assert_in_sync(&diff(&db.url(), &replica.url(), "a_locked"));
}

/// The command line, with the default timeout (5 s): exit 2, the locked
/// table named with its lock, the other table reported.
#[test]
fn the_cli_reports_a_locked_table_after_the_default_timeout() {
    let Some(base) = server_url() else { return };
    let mut db = TestDb::new(&base);
    db.exec("CREATE TABLE a_locked (id int PRIMARY KEY, v int)");
    db.exec("CREATE TABLE b_free (id int PRIMARY KEY, v int)");
    db.exec("INSERT INTO a_locked VALUES (1, 10)");
    db.exec("INSERT INTO b_free VALUES (1, 10)");
    let replica = Replica::new(
        "CREATE TABLE a_locked (id INTEGER PRIMARY KEY, v INTEGER);
         CREATE TABLE b_free (id INTEGER PRIMARY KEY, v INTEGER);
         INSERT INTO a_locked VALUES (1, 10);
         INSERT INTO b_free VALUES (1, 10);",
    );
    let mut locker = Admin::connect(&db.url());
    locker.exec("LOCK TABLES a_locked WRITE");
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(["diff", "--source", &db.url(), "--target", &replica.url()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run driftsum");
    // A run that waits on the lock for ever is stopped, and fails the test.
    while child.try_wait().expect("waiting for driftsum").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("driftsum's output");
    let took = started.elapsed();
    locker.exec("UNLOCK TABLES");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(30),
        "took {took:?}"
    );
    let line = stdout
        .lines()
        .find(|l| l.contains("a_locked"))
        .unwrap_or_else(|| panic!("no line for the locked table in {stdout}"));
    assert!(line.contains("lock_timeout = 5 s"), "{line}");
    let free = stdout
        .lines()
        .find(|l| l.contains("b_free"))
        .unwrap_or_else(|| panic!("no line for the free table in {stdout}"));
    assert!(free.contains("in sync"), "{free}");
}

#[test]
fn a_malformed_lock_timeout_is_a_clear_error() {
    let Some(base) = server_url() else { return };
    let db = TestDb::new(&base);
    for bad in ["5m", "x", "-1", "", "99999999999"] {
        let url = format!("{}?lock_timeout={bad}", db.url());
        let err = source::open(&url).err().expect("refused").to_string();
        assert!(err.contains("lock_timeout"), "{err}");
        assert!(err.contains("lock_timeout=5s"), "{err}");
    }
}

// ---------------------------------------------------------------------------
// f. JSON numbers on MariaDB
// ---------------------------------------------------------------------------

/// JSON numbers are compared exactly: digits past an f64's precision, and
/// integers past u64, are values of their own. The connector hands the text
/// over unparsed; the core compares the numbers. Needs the core's exact JSON
/// numbers (H1's change): until then the drifted rows read as in sync.
#[test]
fn json_numbers_are_compared_exactly() {
    let Some(base) = server_url() else { return };
    let mut db = TestDb::new(&base);
    db.exec("CREATE TABLE j (id int PRIMARY KEY, v json)");
    // Source text, replica text, whether they are the same JSON.
    let cases: &[(&str, &str, bool)] = &[
        (
            r#"{"n": 12345678901234567890123}"#,
            r#"{"n": 12345678901234567890124}"#,
            false,
        ),
        (r#"{"p": 0.1}"#, r#"{"p": 0.10000000000000001}"#, false),
        (
            r#"{"big": 18446744073709551616}"#,
            r#"{"big": 18446744073709551617}"#,
            false,
        ),
        (r#"[9007199254740993]"#, r#"[9007199254740992]"#, false),
        (
            r#"{"n": -12345678901234567890123}"#,
            r#"{"n":-12345678901234567890123}"#,
            true,
        ),
        (
            r#"{"big": 18446744073709551616, "a": 1}"#,
            r#"{"a":1,"big":18446744073709551616}"#,
            true,
        ),
        (r#"{"p": 0.1}"#, r#"{ "p" : 0.1 }"#, true),
    ];
    let replica = Replica::new("CREATE TABLE j (id INTEGER PRIMARY KEY, v TEXT)");
    for (i, (src, tgt, _)) in cases.iter().enumerate() {
        db.exec(&format!(
            "INSERT INTO j VALUES ({i}, {})",
            mysql_literal(src)
        ));
        replica
            .conn()
            .execute(
                "INSERT INTO j VALUES (?1, ?2)",
                rusqlite::params![i as i64, tgt],
            )
            .expect("insert into replica");
    }
    let t = diff(&db.url(), &replica.url(), "j");
    let want: BTreeSet<(i64, String)> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.2)
        .map(|(i, _)| (i as i64, "v".to_string()))
        .collect();
    assert_eq!(changed_cells(&t), want);
    // And the column is read as JSON, from its text.
    let mut src = open(&db.url());
    assert_eq!(
        src.schema("j").expect("schema").column("v").expect("v").ty,
        LogicalType::Json
    );
}

// ---------------------------------------------------------------------------
// Keys of every kind: drifted ranges found exactly
// ---------------------------------------------------------------------------

/// Key families: the key columns' DDL, their names, and the key of row
/// `seq` as SQL.
const MY_KEY_FAMILIES: &[(&str, &str, &str)] = &[
    // Seven keys a second, fractions of differing lengths: key-byte order
    // differs from time order inside each second.
    (
        "k datetime(6)",
        "k",
        "TIMESTAMPADD(MICROSECOND, (seq % 7) * 50000 + (seq % 3), \
         TIMESTAMPADD(SECOND, seq DIV 7, '2024-02-29 23:59:00'))",
    ),
    (
        "k timestamp(3)",
        "k",
        "TIMESTAMPADD(MICROSECOND, (seq % 5) * 100000, \
         TIMESTAMPADD(SECOND, seq DIV 5, '2001-01-01 00:00:00'))",
    ),
    (
        "k date",
        "k",
        "DATE_ADD('1000-01-01', INTERVAL seq * 37 DAY)",
    ),
    (
        "d date, i bigint",
        "d, i",
        "DATE_ADD('2020-01-01', INTERVAL seq DIV 10 DAY), CAST(seq % 10 AS SIGNED) * 1000 - 5000",
    ),
    ("k decimal(12,3)", "k", "(CAST(seq AS SIGNED) - 1000) / 8"),
    // Text in the database's utf8mb4_general_ci (case- and accent-blind,
    // not byte order): looked up by its exact keys.
    (
        "k varchar(40)",
        "k",
        "CONCAT(ELT(seq % 4 + 1, 'B', 'a', 'é', '-'), seq)",
    ),
];

#[test]
fn keys_of_every_kind_find_scattered_drift_exactly() {
    let Some(base) = server_url() else { return };
    let rows: i64 = 6000;
    for (f, (ddl, keys, key_of)) in MY_KEY_FAMILIES.iter().enumerate() {
        let mut db = TestDb::new(&base);
        for t in ["a", "b"] {
            db.exec(&format!(
                "CREATE TABLE {t} ({ddl}, n int NOT NULL, v varchar(40), PRIMARY KEY ({keys}));
                 INSERT INTO {t} SELECT {key_of}, seq, CONCAT('v', seq) FROM seq_0_to_{}",
                rows - 1
            ));
        }
        let url = db.url();
        let shape = Shape {
            leaf_target: 16,
            fanout: 8,
        };
        let run = diff_with(&url, &url, "a=b", ColumnChoice::default(), shape);
        assert_in_sync(&run.tables[0]);
        // Scattered drift: changed, deleted and added rows.
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ f as u64;
        let mut pick = |i: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x.wrapping_add(i) % rows as u64) as i64
        };
        let (mut change, mut delete, mut add) = (vec![-1], vec![-1], vec![-1]);
        for i in 0..45u64 {
            let g = pick(i);
            match i % 3 {
                0 => change.push(g),
                1 => delete.push(g),
                _ => add.push(rows + 1 + g),
            }
        }
        let list = |v: &[i64]| {
            v.iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        db.exec(&format!(
            "UPDATE b SET v = CONCAT(v, ' changed') WHERE n IN ({});
             DELETE FROM b WHERE n IN ({});
             INSERT IGNORE INTO b SELECT {key_of}, seq, CONCAT('new', seq)
                 FROM seq_0_to_{} WHERE seq IN ({})",
            list(&change),
            list(&delete),
            2 * rows,
            list(&add),
        ));
        // The naive reference: a full join on the key, in SQL.
        let on: Vec<String> = keys.split(", ").map(|k| format!("a.{k} = b.{k}")).collect();
        let on = on.join(" AND ");
        let sql = format!(
            "SELECT 'Missing', a.n FROM a LEFT JOIN b ON {on} WHERE b.n IS NULL
             UNION ALL SELECT 'Extra', b.n FROM b LEFT JOIN a ON {on} WHERE a.n IS NULL
             UNION ALL SELECT 'Changed', a.n FROM a JOIN b ON {on} WHERE NOT (a.v <=> b.v)"
        );
        let conn = db.admin.conn.as_mut().expect("open");
        let want: BTreeSet<(String, i64)> = db
            .admin
            .rt
            .block_on(sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql)).fetch_all(conn))
            .expect("reference")
            .into_iter()
            .collect();
        assert!(want.len() >= 30, "{ddl}: drift {want:?}");
        let run = diff_with(&url, &url, "a=b", ColumnChoice::default(), shape);
        let t = &run.tables[0];
        assert_eq!(t.error, None, "{ddl}");
        let n = t.columns.iter().position(|c| c == "n").expect("column n");
        let got: BTreeSet<(String, i64)> = t
            .differences
            .iter()
            .map(|d| (format!("{:?}", d.kind), crate::util::row_number(d, n)))
            .collect();
        assert_eq!(got, want, "{ddl}");
        // The first pass, then the drifted ranges through the key's index:
        // by key range (a few leaves each), or for a decimal or text in a
        // collation that is not byte order (whose key order no index range
        // follows) by their exact keys; never a scan a range, nor one for
        // them all.
        let ranges = t.ranges.len() as u64;
        assert!(ranges >= 10, "{ddl}: {ranges} ranges");
        for read in [t.stats.source_rows_read, t.stats.target_rows_read] {
            assert!(
                read <= rows as u64 + ranges * 64,
                "{ddl}: {read} rows read for {ranges} drifted ranges of {rows} rows"
            );
        }
    }
}
