//! The JSON output contract of `driftsum diff --format json`: every document
//! the real binary prints (in sync, drift, failed tables, `--summary`, a side
//! that cannot be opened) validates against the published schema,
//! `docs/json-schema.json`, and says what it must: the versions, the sides
//! without their passwords, the times, the status and exit code (2 wins over
//! 1), no row count for a table that could not be read, decimals at their
//! scale, compound keys in key order. Also the command-line comforts around
//! it: `--summary` in text, `-q`, `--progress` for logs, `completions` and
//! `man`.
//!
//! Real SQLite files and the real binary; PostgreSQL (for the sides of a
//! server run) when `DRIFTSUM_TEST_POSTGRES` is set, skipped with a note
//! otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::util::Scratch;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Creates the SQLite file `name` in `dir` and runs `sql` in it.
fn db(dir: &Scratch, name: &str, sql: &str) -> PathBuf {
    let path = dir.join(name);
    let conn = Connection::open(&path).expect("open new database");
    conn.execute_batch(sql)
        .unwrap_or_else(|e| panic!("setting up {name}: {e}\n{sql}"));
    path
}

fn url(p: &Path) -> String {
    format!("sqlite:{}", p.display())
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(args)
        .output()
        .expect("run driftsum");
    Run {
        code: out.status.code().expect("driftsum exited by signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// The published schema.
fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json-schema.json");
    let text = std::fs::read_to_string(&path).expect("docs/json-schema.json");
    serde_json::from_str(&text).expect("the schema is JSON")
}

/// Why `doc` does not validate against the schema (empty when it does):
/// each failing keyword, with where in `doc` it failed.
pub(crate) fn violations(doc: &Value) -> Vec<String> {
    // The schema is given as a resource: nothing is loaded from elsewhere.
    const AT: &str = "file:///driftsum/docs/json-schema.json";
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource(AT, schema())
        .expect("the schema loads");
    let index = compiler
        .compile(AT, &mut schemas)
        .unwrap_or_else(|e| panic!("the schema is not a valid schema: {e:#}"));
    match schemas.validate(doc, index) {
        Ok(()) => Vec::new(),
        Err(e) => leaves(&e),
    }
}

/// The innermost errors of a validation error, the ones that name a keyword.
fn leaves(e: &boon::ValidationError<'_, '_>) -> Vec<String> {
    if e.causes.is_empty() {
        vec![e.to_string()]
    } else {
        e.causes.iter().flat_map(leaves).collect()
    }
}

/// Parses the run's stdout as the report and checks it against the schema.
fn valid(r: &Run) -> Value {
    let doc: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {r:#?}"));
    let errors = violations(&doc);
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
    doc
}

/// `driftsum diff --format json --source SRC --target TGT EXTRA...`.
fn diff_json(src: &str, tgt: &str, extra: &[&str]) -> (Run, Value) {
    let mut args = vec!["diff", "--format", "json", "--source", src, "--target", tgt];
    args.extend_from_slice(extra);
    let r = run(&args);
    let doc = valid(&r);
    (r, doc)
}

fn table<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no table {name}: {doc:#}"))
}

/// A source and a replica: `items` drifted (one missing, one extra, one
/// changed), `same` in sync, `prices` with decimals, `events` with a
/// compound key whose columns are not in alphabetical order, and `lonely`
/// only in the source.
fn pair(dir: &Scratch) -> (PathBuf, PathBuf) {
    let common = "
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE same (id INTEGER PRIMARY KEY, v TEXT);
        INSERT INTO same VALUES (1, 'a'), (2, 'b');
        CREATE TABLE prices (id INTEGER PRIMARY KEY, price NUMERIC(10,2));
        CREATE TABLE events (zone TEXT, at INTEGER, note TEXT, PRIMARY KEY (zone, at));
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
        INSERT INTO items SELECT i, 'item ' || i FROM n;";
    let src = db(
        dir,
        "src.db",
        &format!(
            "{common}
            CREATE TABLE lonely (id INTEGER PRIMARY KEY);
            INSERT INTO prices VALUES (1, 1.5), (2, 3);
            INSERT INTO events VALUES ('eu', 5, 'x'), ('us', 1, 'y');"
        ),
    );
    let tgt = db(
        dir,
        "tgt.db",
        &format!(
            "{common}
            DELETE FROM items WHERE id = 7;
            INSERT INTO items VALUES (101, 'new');
            UPDATE items SET name = 'renamed' WHERE id = 50;
            INSERT INTO prices VALUES (1, 1.7), (2, 3);
            INSERT INTO events VALUES ('eu', 5, 'x'), ('us', 1, 'z');"
        ),
    );
    (src, tgt)
}

// ---------------------------------------------------------------------------
// The schema itself
// ---------------------------------------------------------------------------

/// The schema is strict enough to fail: a failed table with a row count, a
/// status that disagrees with the exit code, an unknown field, a time with
/// an offset are all refused; a minimal document passes.
#[test]
fn schema_refuses_what_the_contract_forbids() {
    let ok = json!({
        "format_version": 1,
        "tool": { "name": "driftsum", "version": "0.1.0" },
        "encoding_version": 2,
        "source": { "url": "sqlite:a.db" },
        "target": { "url": "sqlite:b.db" },
        "started_at": "2026-11-27T21:00:00Z",
        "tables": [{
            "table": "t", "status": "error", "key_columns": [],
            "source_rows": null, "target_rows": null, "in_sync": false,
            "drifted_ranges": [], "differences": [],
            "counts": { "missing": 0, "extra": 0, "changed": 0, "float_only": 0 },
            "stats": {
                "source_rows_read": 0, "target_rows_read": 0, "nodes_compared": 0,
                "bytes_exchanged": 0, "round_trips": 0, "seconds": 0.0,
                "scan_seconds": 0.0, "walk_seconds": 0.0, "fetch_seconds": 0.0,
                "transfer": {
                    "levels": [],
                    "entries": { "round_trips": 0, "items": 0, "bytes": 0 },
                    "rows": { "round_trips": 0, "items": 0, "bytes": 0 }
                }
            },
            "error": "no table"
        }],
        "finished_at": "2026-11-27T21:00:01Z",
        "status": "error",
        "exit_code": 2,
        "summary": {
            "tables": 1, "tables_in_sync": 0, "tables_drifted": 0, "tables_failed": 1,
            "missing": 0, "extra": 0, "changed": 0
        }
    });
    assert_eq!(violations(&ok), Vec::<String>::new());
    let mut bad = Vec::new();
    let mut counted = ok.clone();
    counted["tables"][0]["source_rows"] = json!(0);
    bad.push(("a failed table with source_rows 0", counted));
    let mut mismatch = ok.clone();
    mismatch["exit_code"] = json!(1);
    bad.push(("status error with exit code 1", mismatch));
    let mut extra = ok.clone();
    extra["surprise"] = json!(true);
    bad.push(("an unknown field", extra));
    let mut offset = ok.clone();
    offset["started_at"] = json!("2026-11-27T22:00:00+01:00");
    bad.push(("a time not in UTC", offset));
    let mut version = ok.clone();
    version["format_version"] = json!(2);
    bad.push(("another format version", version));
    for (what, doc) in bad {
        assert!(!violations(&doc).is_empty(), "accepted {what}");
    }
}

// ---------------------------------------------------------------------------
// What the binary prints
// ---------------------------------------------------------------------------

#[test]
fn in_sync_run_says_so() {
    let dir = Scratch::new("sync");
    let (src, _) = pair(&dir);
    let (r, doc) = diff_json(&url(&src), &url(&src), &["--table", "same"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["tool"]["name"], "driftsum");
    assert_eq!(doc["tool"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["status"], "in_sync");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["source"]["url"], url(&src));
    let (start, end) = (
        doc["started_at"].as_str().expect("started_at"),
        doc["finished_at"].as_str().expect("finished_at"),
    );
    // Same shape, so text order is time order.
    assert!(start <= end, "{start} > {end}");
    let t = table(&doc, "same");
    assert_eq!(t["status"], "in_sync");
    assert_eq!(t["source_rows"], 2);
    assert_eq!(doc["summary"]["tables_in_sync"], 1);
}

/// Drift in one table and a table that could not be compared: status
/// `error`, exit code 2 (2 wins over 1), the failed table with no row
/// counts, the drifted one with its counts and differences.
#[test]
fn error_wins_over_drift_and_a_failed_table_has_no_counts() {
    let dir = Scratch::new("mixed");
    let (src, tgt) = pair(&dir);
    let (r, doc) = diff_json(&url(&src), &url(&tgt), &[]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["exit_code"], 2);
    let lonely = table(&doc, "lonely");
    assert_eq!(lonely["status"], "error");
    assert!(lonely["error"].is_string(), "{lonely:#}");
    assert_eq!(lonely["source_rows"], Value::Null);
    assert_eq!(lonely["target_rows"], Value::Null);
    let items = table(&doc, "items");
    assert_eq!(items["status"], "drift");
    assert_eq!(items["source_rows"], 100);
    assert_eq!(items["target_rows"], 100);
    assert_eq!(
        items["counts"],
        json!({ "missing": 1, "extra": 1, "changed": 1, "float_only": 0 })
    );
    assert_eq!(items["differences"].as_array().map(Vec::len), Some(3));
    let s = &doc["summary"];
    assert_eq!(s["tables_failed"], 1);
    assert_eq!(s["tables_in_sync"], 1);
    assert_eq!(s["tables_drifted"], 3, "items, prices, events");
    assert_eq!((&s["missing"], &s["extra"]), (&json!(1), &json!(1)));
    assert_eq!(s["changed"], 3, "items, prices, events: one each");
}

/// A NUMERIC(10,2) column shows `1.50`, not `1.5`; a compound key lists its
/// columns in key order (`zone`, then `at`), not alphabetically.
#[test]
fn decimals_keep_their_scale_and_keys_their_order() {
    let dir = Scratch::new("values");
    let (src, tgt) = pair(&dir);
    let (_, doc) = diff_json(
        &url(&src),
        &url(&tgt),
        &["--table", "prices", "--table", "events"],
    );
    let d = &table(&doc, "prices")["differences"][0];
    assert_eq!(d["key"], json!({ "id": 1 }));
    assert_eq!(d["source"], json!({ "price": "1.50" }), "{d:#}");
    assert_eq!(d["target"], json!({ "price": "1.70" }), "{d:#}");

    let events = table(&doc, "events");
    assert_eq!(events["key_columns"], json!(["zone", "at"]));
    let key = events["differences"][0]["key"]
        .as_object()
        .expect("key object");
    assert_eq!(key.keys().collect::<Vec<_>>(), ["zone", "at"]);
    for range in events["drifted_ranges"].as_array().expect("ranges") {
        let first = range["first"].as_object().expect("first");
        assert_eq!(first.keys().collect::<Vec<_>>(), ["zone", "at"]);
    }
    // In the text the same order and scale.
    let (s, t) = (url(&src), url(&tgt));
    let r = run(&[
        "diff", "--source", &s, "--target", &t, "--table", "prices", "--table", "events",
    ]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stdout.contains(r#"price: "1.50" → "1.70""#),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(r#"zone="us", at=1"#), "{}", r.stdout);
}

/// `--summary`: counts only. JSON keeps every table's counts and leaves the
/// lists out; text prints a line per table and the totals.
#[test]
fn summary_prints_counts_only() {
    let dir = Scratch::new("summary");
    let (src, tgt) = pair(&dir);
    let (s, t) = (url(&src), url(&tgt));
    let (r, doc) = diff_json(&s, &t, &["--summary", "--table", "items"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let items = table(&doc, "items");
    assert!(items.get("differences").is_none(), "{items:#}");
    assert!(items.get("drifted_ranges").is_none(), "{items:#}");
    assert_eq!(items["counts"]["missing"], 1);
    assert_eq!(doc["summary"]["changed"], 1);

    let r = run(&[
        "diff",
        "--source",
        &s,
        "--target",
        &t,
        "--summary",
        "--table",
        "items",
    ]);
    assert_eq!(r.code, 1, "{r:#?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert!(
        lines[0].starts_with("items: DRIFT: 1 missing, 1 extra, 1 changed"),
        "{}",
        r.stdout
    );
    assert_eq!(
        lines[1],
        "total: 1 table compared, 0 in sync, 1 drifted, 0 failed; 1 missing, 1 extra, 1 changed"
    );
}

/// A side that cannot be opened still gives a JSON document, with the
/// error, status `error` and exit code 2, and no password anywhere.
#[test]
fn a_side_that_cannot_be_opened_is_a_json_error() {
    let dir = Scratch::new("noopen");
    let (src, _) = pair(&dir);
    let missing = dir.join("nope.db");
    let (r, doc) = diff_json(&url(&src), &url(&missing), &[]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["tables"], json!([]));
    let e = doc["error"].as_str().expect("error");
    assert!(e.contains("opening the target"), "{e}");
    assert!(r.stderr.contains("driftsum: error:"), "{r:#?}");

    // Nothing listens on port 1: a refused connection, with a password.
    let secret = "hunter2secret";
    let server = format!("postgres://someone:{secret}@127.0.0.1:1/db");
    let (r, doc) = diff_json(&server, &url(&src), &[]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert_eq!(doc["status"], "error");
    assert!(doc["error"]
        .as_str()
        .is_some_and(|e| e.contains("opening the source")));
    assert_eq!(
        doc["source"]["url"],
        "postgres://someone:***@127.0.0.1:1/db"
    );
    assert!(!r.stdout.contains(secret), "{}", r.stdout);
    assert!(!r.stderr.contains(secret), "{}", r.stderr);
}

/// A real server run: the sides named without the password, the document
/// valid. Skipped without `DRIFTSUM_TEST_POSTGRES`.
#[test]
fn postgres_sides_are_named_without_passwords() {
    let Some(base) = std::env::var("DRIFTSUM_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        println!("skipping: DRIFTSUM_TEST_POSTGRES is not set");
        return;
    };
    let dir = Scratch::new("pg");
    let (src, _) = pair(&dir);
    // The test server trusts its users, so a password in the URL is
    // accepted and must never be shown.
    let secret = "pw4json_contract";
    let with_password = match base.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) => {
                let user = user.split(':').next().unwrap_or(user);
                format!("{scheme}://{user}:{secret}@{host}")
            }
            None => format!("{scheme}://postgres:{secret}@{rest}"),
        },
        None => panic!("not a URL: {base}"),
    };
    // A table the server does not have: the sides are still named, and
    // the failed table has no counts.
    let name = format!("ds_json_{}", std::process::id());
    let (r, doc) = diff_json(&with_password, &url(&src), &["--table", &name]);
    assert_eq!(r.code, 2, "{r:#?}");
    let shown = doc["source"]["url"].as_str().expect("source url");
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains(":***@"), "{shown}");
    assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret));
    let t = table(&doc, &name);
    assert_eq!(t["status"], "error");
    assert_eq!(t["source_rows"], Value::Null);
}

// ---------------------------------------------------------------------------
// Command-line comforts
// ---------------------------------------------------------------------------

/// `-q`: nothing for tables in sync; drift is still reported.
#[test]
fn quiet_prints_only_drift() {
    let dir = Scratch::new("quiet");
    let (src, tgt) = pair(&dir);
    let (s, t) = (url(&src), url(&tgt));
    let r = run(&[
        "diff", "-q", "--source", &s, "--target", &t, "--table", "same",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:#?}");
    let r = run(&[
        "-q", "diff", "--source", &s, "--target", &t, "--table", "items",
    ]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stdout.starts_with("items: DRIFT"), "{}", r.stdout);
    assert_eq!(r.stderr, "");
}

/// `--progress` with stderr not a terminal: one plain line per table, with
/// thousands separators and the table's estimated size.
#[test]
fn progress_for_logs_is_one_line_per_table() {
    let dir = Scratch::new("progress");
    let big = db(
        &dir,
        "big.db",
        "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT);
         CREATE TABLE small (id INTEGER PRIMARY KEY);
         INSERT INTO small VALUES (1);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12345)
         INSERT INTO big SELECT i, 'v' FROM n;",
    );
    let b = url(&big);
    let r = run(&["diff", "--progress", "--source", &b, "--target", &b]);
    assert_eq!(r.code, 0, "{r:#?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stderr);
    assert!(
        lines[0].starts_with("driftsum: big: 12,345 rows (estimate 12,345), done in "),
        "{}",
        r.stderr
    );
    assert!(
        lines[1].starts_with("driftsum: small: 1 row (estimate 1)"),
        "{}",
        r.stderr
    );
    // Without --progress, a log gets nothing.
    let r = run(&["diff", "--source", &b, "--target", &b]);
    assert_eq!(r.stderr, "");
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let r = run(&["completions", shell]);
        assert_eq!(r.code, 0, "{r:#?}");
        assert!(r.stdout.contains("driftsum"), "{shell}");
        assert!(
            r.stdout.contains("exclude-columns"),
            "{shell}: {}",
            r.stdout
        );
    }
    let r = run(&["completions", "tcsh"]);
    assert_eq!(r.code, 2, "{r:#?}");

    let r = run(&["man"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH driftsum"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("diff"));
    let r = run(&["man", "diff"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains(".TH driftsum-diff"), "{}", r.stdout);
    assert!(r.stdout.contains("summary"));
    let r = run(&["man", "nothing"]);
    assert_eq!(r.code, 2, "{r:#?}");
}

/// The short description promises only what the tool does: it finds drift;
/// it does not repair it (yet).
#[test]
fn description_promises_no_repair() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stdout.contains("finds the rows that drifted"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("puts them right"), "{}", r.stdout);
    assert!(r.stdout.contains("--quiet") && r.stdout.contains("--verbose"));
}

// ---------------------------------------------------------------------------
// Estimates from the servers' statistics
// ---------------------------------------------------------------------------

/// Runs `sql` (several statements) on a server with sqlx.
fn server_exec(url: &str, sql: &str) {
    use sqlx::{AssertSqlSafe, Connection as _};
    fn ok<T>(r: Result<T, sqlx::Error>, sql: &str) -> T {
        r.unwrap_or_else(|e| panic!("setting up the server: {e}\n{sql}"))
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if url.starts_with("mysql") {
            let mut c = ok(sqlx::MySqlConnection::connect(url).await, sql);
            for stmt in sql.split(';').filter(|s| !s.trim().is_empty()) {
                let q = sqlx::raw_sql(AssertSqlSafe(stmt.to_string()));
                ok(q.execute(&mut c).await, stmt);
            }
            let _ = c.close().await;
        } else {
            let mut c = ok(sqlx::PgConnection::connect(url).await, sql);
            let q = sqlx::raw_sql(AssertSqlSafe(sql.to_string()));
            ok(q.execute(&mut c).await, sql);
            let _ = c.close().await;
        }
    });
}

/// `--progress` against a server names the server's estimate of the table
/// (PostgreSQL `reltuples` after ANALYZE, MySQL `information_schema`),
/// compared with a SQLite replica of the same rows.
fn progress_shows_the_server_estimate(var: &str, rows_sql: &str) {
    let Some(server) = std::env::var(var).ok().filter(|u| !u.trim().is_empty()) else {
        println!("skipping: {var} is not set");
        return;
    };
    let name = format!("ds_json_est_{}", std::process::id());
    let dir = Scratch::new("estimate");
    let replica = db(
        &dir,
        "r.db",
        &format!(
            "CREATE TABLE {name} (id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO {name} SELECT i, 'v' FROM n;"
        ),
    );
    server_exec(&server, &rows_sql.replace("{t}", &name));
    let r = run(&[
        "diff",
        "--progress",
        "--source",
        &server,
        "--target",
        &url(&replica),
        "--table",
        &name,
    ]);
    server_exec(&server, &format!("DROP TABLE {name}"));
    assert_eq!(r.code, 0, "{r:#?}");
    let want = format!("driftsum: {name}: 3,000 rows (estimate ");
    assert!(r.stderr.starts_with(&want), "{r:#?}");
    // A statistic, sampled on MySQL: near the count, not always equal.
    let estimate: u64 = r.stderr[want.len()..]
        .split(')')
        .next()
        .map(|n| n.replace(',', ""))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no estimate: {}", r.stderr));
    assert!((1500..=6000).contains(&estimate), "{}", r.stderr);
    if var.contains("POSTGRES") {
        assert_eq!(estimate, 3000, "reltuples after ANALYZE: {}", r.stderr);
    }
}

#[test]
fn progress_estimate_from_postgres() {
    progress_shows_the_server_estimate(
        "DRIFTSUM_TEST_POSTGRES",
        "DROP TABLE IF EXISTS {t};
         CREATE TABLE {t} (id integer PRIMARY KEY, v text);
         INSERT INTO {t} SELECT i, 'v' FROM generate_series(1, 3000) i;
         ANALYZE {t};",
    );
}

#[test]
fn progress_estimate_from_mysql() {
    progress_shows_the_server_estimate(
        "DRIFTSUM_TEST_MYSQL",
        "DROP TABLE IF EXISTS {t};
         CREATE TABLE {t} (id integer PRIMARY KEY, v text);
         INSERT INTO {t}
           WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
           SELECT (k - 1) * 1000 + i, 'v' FROM n, (SELECT 1 k UNION SELECT 2 UNION SELECT 3) m;
         ANALYZE TABLE {t};",
    );
}
