//! Whole-command tests of the `driftsum` binary.
//!
//! Every test builds real SQLite files (with `rusqlite`) in its own scratch
//! folder under the system temporary directory, runs the compiled binary on
//! them with `std::process::Command`, and checks what a user sees: the exit
//! code (0 in sync, 1 drift, 2 error), the text report, the JSON report
//! (parsed with `serde_json`), the messages on stderr, and that driftsum never
//! writes to either database nor creates a file it was pointed at.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::{params, Connection};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A scratch folder, unique per process and test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "driftsum-cli-test-{}-{n}-{test}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates the SQLite file `name` in `dir` and runs `sql` in it.
fn db(dir: &Path, name: &str, sql: &str) -> PathBuf {
    let path = dir.join(name);
    let conn = Connection::open(&path).expect("open new database");
    conn.execute_batch(sql)
        .unwrap_or_else(|e| panic!("setting up {name}: {e}\n{sql}"));
    path
}

/// `sqlite:PATH`.
fn url(p: &Path) -> String {
    format!("sqlite:{}", p.display())
}

/// What one run of the binary produced.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Parses stdout as the JSON report.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs `driftsum ARGS...`.
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

/// Runs `driftsum diff --source sqlite:SRC --target sqlite:TGT EXTRA...`.
fn diff(src: &Path, tgt: &Path, extra: &[&str]) -> Run {
    let (s, t) = (url(src), url(tgt));
    let mut args = vec!["diff", "--source", &s, "--target", &t];
    args.extend_from_slice(extra);
    run(&args)
}

/// Like [`diff`] with `--format json`; returns the run and the parsed report.
fn diff_json(src: &Path, tgt: &Path, extra: &[&str]) -> (Run, Value) {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let r = diff(src, tgt, &args);
    let j = r.json();
    (r, j)
}

/// Asserts the exit code, showing the whole run when it is wrong.
#[track_caller]
fn assert_code(r: &Run, code: i32) {
    assert_eq!(r.code, code, "unexpected exit code: {r:#?}");
}

/// The report of table `name` (by source name).
#[track_caller]
fn table<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["tables"]
        .as_array()
        .expect("tables is an array")
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no table {name:?} in report: {report:#}"))
}

/// Source names of the tables in a report, in report order.
fn table_names(report: &Value) -> Vec<String> {
    report["tables"]
        .as_array()
        .expect("tables is an array")
        .iter()
        .map(|t| t["table"].as_str().expect("table name").to_string())
        .collect()
}

/// `id=5` or `day="x", seq=3`, from a key object.
fn key_str(key: &Value) -> String {
    key.as_object()
        .expect("key is an object")
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per difference: `missing id=20`, `changed id=1200 [price]`.
fn differences(t: &Value) -> Vec<String> {
    t["differences"]
        .as_array()
        .expect("differences is an array")
        .iter()
        .map(|d| {
            let kind = d["kind"].as_str().expect("kind");
            let key = key_str(&d["key"]);
            match d.get("columns") {
                Some(cols) => {
                    let cols: Vec<&str> = cols
                        .as_array()
                        .expect("columns is an array")
                        .iter()
                        .map(|c| c.as_str().expect("column name"))
                        .collect();
                    format!("{kind} {key} [{}]", cols.join(", "))
                }
                None => format!("{kind} {key}"),
            }
        })
        .collect()
}

/// [`differences`] as a sorted set, asserting there are no duplicates.
#[track_caller]
fn difference_set(t: &Value) -> BTreeSet<String> {
    let list = differences(t);
    let set: BTreeSet<String> = list.iter().cloned().collect();
    assert_eq!(set.len(), list.len(), "duplicate differences: {list:#?}");
    set
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The file's bytes and modification time.
fn snapshot(p: &Path) -> (Vec<u8>, std::time::SystemTime) {
    let bytes = std::fs::read(p).expect("read file");
    let mtime = std::fs::metadata(p)
        .and_then(|m| m.modified())
        .expect("mtime");
    (bytes, mtime)
}

/// Names of the files in a folder, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// SQL creating `items(id, name, price, qty)` with 5000 rows, ids 2, 4, ...,
/// 10000 (so odd ids are free for insertions in the middle); row 1200 costs
/// 9.5.
const ITEMS_5000: &str = "
    CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, qty INTEGER);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
    INSERT INTO items SELECT 2 * i, 'item ' || (2 * i), (i % 40) * 0.25 + 1.0, i % 7 FROM n;
    UPDATE items SET price = 9.5 WHERE id = 1200;
";

/// Mutations applied to a copy of [`ITEMS_5000`] to make the replica.
const ITEMS_DRIFT: &str = "
    -- missing
    DELETE FROM items WHERE id = 20;
    -- extra, in the middle
    INSERT INTO items VALUES (3001, 'item 3001', 2.0, 1);
    -- changed: one column
    UPDATE items SET price = 9.25 WHERE id = 1200;
    -- replaced one for one: 5000 becomes 5001, the count is unchanged
    INSERT INTO items SELECT 5001, name, price, qty FROM items WHERE id = 5000;
    DELETE FROM items WHERE id = 5000;
    -- changed: two columns
    UPDATE items SET name = 'renamed', qty = qty + 1 WHERE id = 7000;
    -- a burst of ten consecutive deletes
    DELETE FROM items WHERE id BETWEEN 8000 AND 8018;
";

/// What [`ITEMS_DRIFT`] must be reported as.
fn items_drift_expected() -> BTreeSet<String> {
    let mut s = set(&[
        "missing id=20",
        "extra id=3001",
        "changed id=1200 [price]",
        "missing id=5000",
        "extra id=5001",
        "changed id=7000 [name, qty]",
    ]);
    for id in (8000..=8018).step_by(2) {
        s.insert(format!("missing id={id}"));
    }
    s
}

/// A source and a replica of [`ITEMS_5000`] with [`ITEMS_DRIFT`].
fn items_pair(dir: &Scratch) -> (PathBuf, PathBuf) {
    let src = db(dir.path(), "source.db", ITEMS_5000);
    let tgt = db(
        dir.path(),
        "replica.db",
        &format!("{ITEMS_5000}{ITEMS_DRIFT}"),
    );
    (src, tgt)
}

/// Two small tables, `a` and `b`, the same on both sides.
const TWO_TABLES: &str = "
    CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);
    INSERT INTO a VALUES (1, 'one'), (2, 'two'), (3, 'three');
    CREATE TABLE b (k TEXT PRIMARY KEY, n INTEGER);
    INSERT INTO b VALUES ('x', 1), ('y', 2);
";

// ---------------------------------------------------------------------------
// 1. Exit codes
// ---------------------------------------------------------------------------

#[test]
fn identical_databases_exit_0_with_one_quiet_line_per_table() {
    let dir = Scratch::new("identical");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let tgt = db(dir.path(), "t.db", TWO_TABLES);
    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        ["a: in sync (3 rows)", "b: in sync (2 rows)"],
        "{r:#?}"
    );
    assert!(r.stderr.is_empty(), "{r:#?}");
}

#[test]
fn drift_exits_1() {
    let dir = Scratch::new("drift-exit");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!("{TWO_TABLES} UPDATE b SET n = 3 WHERE k = 'y';"),
    );
    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert!(r.stdout.contains("a: in sync (3 rows)"), "{r:#?}");
    assert!(r.stdout.contains("b: DRIFT"), "{r:#?}");
}

#[test]
fn error_exits_2() {
    let dir = Scratch::new("error-exit");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let r = diff(&src, &dir.join("nope.db"), &[]);
    assert_code(&r, 2);
    assert!(r.stderr.starts_with("driftsum: error:"), "{r:#?}");
}

/// A URL in the wrong place is quoted by the usage error with its password
/// hidden; help still prints and exits 0.
#[test]
fn usage_errors_never_show_a_password() {
    for args in [
        &["diff", "postgres://bob:hunter22@db.example/shop"][..],
        &[
            "diff",
            "--source",
            "sqlite:a.db",
            "mysql://bob:hunter22@db/x?password=hunter22",
        ][..],
        &[
            "build",
            "--db",
            "sqlite:a.db",
            "--table",
            "t",
            "--out",
            "x",
            "--connections",
            "0",
            "postgresql://bob:hunter22@h/d",
        ][..],
        &[
            "build",
            "--db",
            "sqlite:a.db",
            "--table",
            "t",
            "--out",
            "x",
            "--connections=postgres://bob:hunter22@h/d",
        ][..],
    ] {
        let r = run(args);
        assert_code(&r, 2);
        assert!(!r.stderr.contains("hunter22"), "{r:#?}");
        assert!(r.stderr.contains("bob:***@"), "{r:#?}");
    }
    let r = run(&["diff", "--help"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("--source"), "{r:#?}");
}

// ---------------------------------------------------------------------------
// 2. JSON report
// ---------------------------------------------------------------------------

#[test]
fn json_report_has_the_documented_shape() {
    let dir = Scratch::new("json-shape");
    let (src, tgt) = items_pair(&dir);
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);

    let top = j.as_object().expect("report is an object");
    assert_eq!(
        top.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["encoding_version", "tables"]),
    );
    assert!(j["encoding_version"].is_u64(), "{j:#}");
    assert_eq!(table_names(&j), ["items"]);

    let t = table(&j, "items");
    assert_eq!(t["key_columns"], json!(["id"]));
    assert_eq!(t["source_rows"], 5000);
    assert_eq!(t["target_rows"], 4990);
    assert_eq!(t["in_sync"], false);
    assert!(t.get("error").is_none(), "{t:#}");
    assert!(t.get("target_table").is_none(), "not mapped: {t:#}");

    // Drifted ranges: key objects, ascending, disjoint, and they hold every
    // difference.
    let ranges = t["drifted_ranges"].as_array().expect("drifted_ranges");
    assert!(!ranges.is_empty());
    let mut prev_last = i64::MIN;
    let (mut src_rows, mut tgt_rows) = (0i64, 0i64);
    let bounds: Vec<(i64, i64)> = ranges
        .iter()
        .map(|rg| {
            let first = rg["first"]["id"].as_i64().expect("first is {\"id\": n}");
            let last = rg["last"]["id"].as_i64().expect("last is {\"id\": n}");
            assert_eq!(rg["first"].as_object().unwrap().len(), 1, "{rg:#}");
            assert_eq!(rg["last"].as_object().unwrap().len(), 1, "{rg:#}");
            assert!(
                first <= last && first > prev_last,
                "ranges out of order: {ranges:#?}"
            );
            prev_last = last;
            src_rows += rg["source_rows"].as_i64().expect("source_rows");
            tgt_rows += rg["target_rows"].as_i64().expect("target_rows");
            (first, last)
        })
        .collect();
    assert_eq!(
        src_rows - tgt_rows,
        10,
        "rows lost in the ranges: {ranges:#?}"
    );
    assert!(
        src_rows < 2500,
        "the tree should narrow drift down to a small part of the table: {ranges:#?}"
    );

    for d in t["differences"].as_array().unwrap() {
        let id = d["key"]["id"].as_i64().expect("key is {\"id\": n}");
        assert!(
            bounds.iter().any(|&(a, b)| a <= id && id <= b),
            "difference {d} is in no drifted range: {ranges:#?}"
        );
    }

    // Stats.
    let stats = &t["stats"];
    for field in [
        "source_rows_read",
        "target_rows_read",
        "nodes_compared",
        "bytes_exchanged",
    ] {
        assert!(stats[field].is_u64(), "stats.{field}: {stats:#}");
    }
    assert!(
        stats["source_rows_read"].as_u64().unwrap() >= 5000,
        "{stats:#}"
    );
    assert!(
        stats["target_rows_read"].as_u64().unwrap() >= 4990,
        "{stats:#}"
    );
    assert!(stats["nodes_compared"].as_u64().unwrap() > 0, "{stats:#}");
    assert!(stats["bytes_exchanged"].as_u64().unwrap() > 0, "{stats:#}");
    assert!(
        stats["seconds"].as_f64().is_some_and(|s| s >= 0.0),
        "{stats:#}"
    );
}

#[test]
fn json_reports_exactly_the_known_mutations() {
    let dir = Scratch::new("json-exact");
    let (src, tgt) = items_pair(&dir);
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    let t = table(&j, "items");
    assert_eq!(difference_set(t), items_drift_expected());

    // Listed in key order.
    let ids: Vec<i64> = t["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"]["id"].as_i64().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "differences not in key order");
}

#[test]
fn json_difference_objects_carry_their_rows() {
    let dir = Scratch::new("json-rows");
    let (src, tgt) = items_pair(&dir);
    let (_, j) = diff_json(&src, &tgt, &[]);
    let diffs = table(&j, "items")["differences"]
        .as_array()
        .unwrap()
        .clone();
    let find = |id: i64| {
        diffs
            .iter()
            .find(|d| d["key"] == json!({ "id": id }))
            .unwrap_or_else(|| panic!("no difference for id {id}: {diffs:#?}"))
    };

    // missing: the source row (value columns), no target.
    let missing = find(20);
    assert_eq!(missing["kind"], "missing");
    assert_eq!(
        missing["source"],
        json!({ "name": "item 20", "price": 3.5, "qty": 3 })
    );
    assert!(missing.get("target").is_none(), "{missing:#}");
    assert!(missing.get("columns").is_none(), "{missing:#}");

    // extra: the target row, no source.
    let extra = find(3001);
    assert_eq!(extra["kind"], "extra");
    assert_eq!(
        extra["target"],
        json!({ "name": "item 3001", "price": 2.0, "qty": 1 })
    );
    assert!(extra.get("source").is_none(), "{extra:#}");

    // changed: only the changed columns, on both sides.
    let changed = find(1200);
    assert_eq!(
        changed,
        &json!({
            "kind": "changed",
            "key": { "id": 1200 },
            "columns": ["price"],
            "source": { "price": 9.5 },
            "target": { "price": 9.25 },
        })
    );
    let two = find(7000);
    assert_eq!(two["columns"], json!(["name", "qty"]));
    assert_eq!(two["source"], json!({ "name": "item 7000", "qty": 0 }));
    assert_eq!(two["target"], json!({ "name": "renamed", "qty": 1 }));
}

// ---------------------------------------------------------------------------
// 3. Text report
// ---------------------------------------------------------------------------

#[test]
fn text_report_summarises_and_lists_differences() {
    let dir = Scratch::new("text");
    let (src, tgt) = items_pair(&dir);
    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("items: DRIFT: "), "{r:#?}");
    for part in [
        "12 missing",
        "2 extra",
        "2 changed",
        "5,000 source rows, 4,990 target rows",
        "drifted range",
    ] {
        assert!(first.contains(part), "summary lacks {part:?}: {first}");
    }
    for line in [
        "  missing  id=20  (in source, not in target)",
        "  missing  id=8018  (in source, not in target)",
        "  extra    id=3001  (in target, not in source)",
        "  changed  id=1200  price: 9.5 → 9.25",
        "  changed  id=7000  name: \"item 7000\" → \"renamed\"; qty: 0 → 1",
    ] {
        assert!(
            r.stdout.lines().any(|l| l == line),
            "no line {line:?} in:\n{}",
            r.stdout
        );
    }
    assert!(r.stdout.lines().any(|l| l.starts_with("  range    id=")));
    assert!(
        !r.stdout.contains("--float-digits"),
        "no float note expected"
    );
}

#[test]
fn text_report_lists_at_most_50_differences() {
    let dir = Scratch::new("text-many");
    let src = db(dir.path(), "s.db", ITEMS_5000);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!("{ITEMS_5000} DELETE FROM items WHERE id BETWEEN 100 AND 218;"),
    );
    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
    let listed = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("  missing"))
        .count();
    assert_eq!(listed, 50, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("… and 10 more differences (--format json lists them all)"),
        "{}",
        r.stdout
    );
    let (_, j) = diff_json(&src, &tgt, &[]);
    assert_eq!(differences(table(&j, "items")).len(), 60);
}

/// `m(id, w REAL, label)`: row 3's weight is one ulp off in the replica.
fn one_ulp_pair(dir: &Scratch, also: &str) -> (PathBuf, PathBuf) {
    let schema = "CREATE TABLE m (id INTEGER PRIMARY KEY, w REAL, label TEXT);";
    let make = |name: &str, w3: f64, extra_sql: &str| {
        let p = db(dir.path(), name, schema);
        let c = Connection::open(&p).unwrap();
        for (id, w) in [
            (1, 0.1),
            (2, 2.0 / 3.0),
            (3, 5.583333333333333),
            (4, 1e-300),
        ] {
            let w = if id == 3 { w3 } else { w };
            c.execute(
                "INSERT INTO m VALUES (?1, ?2, ?3)",
                params![id, w, format!("row {id}")],
            )
            .unwrap();
        }
        c.execute_batch(extra_sql).unwrap();
        p
    };
    let w = 5.583333333333333f64;
    let next = f64::from_bits(w.to_bits() + 1);
    assert_ne!(w, next);
    (make("s.db", w, ""), make("t.db", next, also))
}

#[test]
fn one_ulp_float_change_is_drift_with_a_float_digits_note() {
    let dir = Scratch::new("ulp");
    let (src, tgt) = one_ulp_pair(&dir, "");
    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert!(r.stdout.contains("m: DRIFT: 1 changed"), "{r:#?}");
    assert!(r.stdout.contains("  changed  id=3  w: "), "{r:#?}");
    let note = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("note:"))
        .unwrap_or_else(|| panic!("no note: {r:#?}"));
    assert!(note.contains("--float-digits"), "{note}");

    let (_, j) = diff_json(&src, &tgt, &[]);
    let t = table(&j, "m");
    assert_eq!(t["float_only_changes"], 1);
    assert_eq!(difference_set(t), set(&["changed id=3 [w]"]));
}

#[test]
fn float_digits_tolerates_a_one_ulp_change() {
    let dir = Scratch::new("ulp-tolerated");
    let (src, tgt) = one_ulp_pair(&dir, "");
    let r = diff(&src, &tgt, &["--float-digits", "12"]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim_end(), "m: in sync (4 rows)");

    let (r, j) = diff_json(&src, &tgt, &["--float-digits", "12"]);
    assert_code(&r, 0);
    let t = table(&j, "m");
    assert_eq!(t["in_sync"], true);
    assert_eq!(t["differences"], json!([]));
    assert_eq!(t["drifted_ranges"], json!([]));
}

#[test]
fn float_digits_still_reports_real_changes() {
    let dir = Scratch::new("ulp-and-real");
    let (src, tgt) = one_ulp_pair(&dir, "UPDATE m SET w = 0.2 WHERE id = 1;");
    let (r, j) = diff_json(&src, &tgt, &["--float-digits", "12"]);
    assert_code(&r, 1);
    let t = table(&j, "m");
    assert_eq!(difference_set(t), set(&["changed id=1 [w]"]));
    assert!(t.get("float_only_changes").is_none(), "{t:#}");
}

// ---------------------------------------------------------------------------
// 4. Options
// ---------------------------------------------------------------------------

#[test]
fn table_option_compares_only_that_table() {
    let dir = Scratch::new("table-opt");
    let src = db(
        dir.path(),
        "s.db",
        &format!("{TWO_TABLES} CREATE TABLE only_here (id INTEGER PRIMARY KEY);"),
    );
    let tgt = db(
        dir.path(),
        "t.db",
        &format!("{TWO_TABLES} UPDATE a SET v = 'TWO' WHERE id = 2;"),
    );

    let (r, j) = diff_json(&src, &tgt, &["--table", "b"]);
    assert_code(&r, 0);
    assert_eq!(table_names(&j), ["b"]);

    let (r, j) = diff_json(&src, &tgt, &["--table", "a"]);
    assert_code(&r, 1);
    assert_eq!(table_names(&j), ["a"]);
    assert_eq!(difference_set(table(&j, "a")), set(&["changed id=2 [v]"]));

    let (r, j) = diff_json(&src, &tgt, &["--table", "a", "--table", "b"]);
    assert_code(&r, 1);
    assert_eq!(table_names(&j), ["a", "b"]);

    let r = diff(&src, &tgt, &["--table", "b"]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim_end(), "b: in sync (2 rows)");
}

#[test]
fn table_option_maps_a_source_name_to_a_replica_name() {
    let dir = Scratch::new("table-map");
    let table_sql = |name: &str| {
        format!(
            "CREATE TABLE {name} (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO {name} VALUES (1, 'a'), (2, 'b'), (3, 'c');"
        )
    };
    let src = db(dir.path(), "s.db", &table_sql("orders"));
    let tgt = db(dir.path(), "t.db", &table_sql("orders_copy"));

    let (r, j) = diff_json(&src, &tgt, &["--table", "orders=orders_copy"]);
    assert_code(&r, 0);
    let t = table(&j, "orders");
    assert_eq!(t["target_table"], "orders_copy");
    assert_eq!(t["in_sync"], true);
    assert_eq!(t["source_rows"], 3);
    assert_eq!(t["target_rows"], 3);

    let r = diff(&src, &tgt, &["--table", "orders=orders_copy"]);
    assert_code(&r, 0);
    assert_eq!(
        r.stdout.trim_end(),
        "orders → orders_copy: in sync (3 rows)"
    );

    // Drift in the mapped table is found.
    Connection::open(&tgt)
        .unwrap()
        .execute("DELETE FROM orders_copy WHERE id = 2", [])
        .unwrap();
    let (r, j) = diff_json(&src, &tgt, &["--table", "orders=orders_copy"]);
    assert_code(&r, 1);
    assert_eq!(difference_set(table(&j, "orders")), set(&["missing id=2"]));

    // Without the mapping, the names do not match.
    let (r, j) = diff_json(&src, &tgt, &["--table", "orders"]);
    assert_code(&r, 2);
    let err = table(&j, "orders")["error"].as_str().expect("error");
    assert!(err.contains("orders") && err.contains("target"), "{err}");
}

/// `p(id, name, price)`, 20 rows; in the replica row 5's price and row 7's
/// name and price differ.
fn price_pair(dir: &Scratch) -> (PathBuf, PathBuf) {
    let base = "
        CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT, price REAL);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
        INSERT INTO p SELECT i, 'n' || i, i * 1.5 FROM n;
    ";
    let src = db(dir.path(), "s.db", base);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{base} UPDATE p SET price = 99 WHERE id = 5;
             UPDATE p SET price = 98, name = 'x' WHERE id = 7;"
        ),
    );
    (src, tgt)
}

#[test]
fn columns_option_limits_the_compared_columns() {
    let dir = Scratch::new("columns");
    let (src, tgt) = price_pair(&dir);

    let (r, j) = diff_json(&src, &tgt, &["--columns", "name"]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "p")),
        set(&["changed id=7 [name]"])
    );

    let (r, j) = diff_json(&src, &tgt, &["--columns", "price"]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "p")),
        set(&["changed id=5 [price]", "changed id=7 [price]"])
    );

    let (r, j) = diff_json(&src, &tgt, &["--columns", "name,price"]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "p")),
        set(&["changed id=5 [price]", "changed id=7 [name, price]"])
    );

    let r = diff(&src, &tgt, &["--columns", "nosuchcol"]);
    assert_code(&r, 2);
    assert!(r.stdout.contains("nosuchcol"), "{r:#?}");
}

#[test]
fn exclude_columns_drops_the_only_changed_column() {
    let dir = Scratch::new("exclude");
    let (src, tgt) = price_pair(&dir);

    // Row 7's name still differs.
    let (r, j) = diff_json(&src, &tgt, &["--exclude-columns", "price"]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "p")),
        set(&["changed id=7 [name]"])
    );

    let r = diff(&src, &tgt, &["--exclude-columns", "price,name"]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim_end(), "p: in sync (20 rows)");

    // Only price changed in this pair.
    Connection::open(&tgt)
        .unwrap()
        .execute("UPDATE p SET name = 'n7' WHERE id = 7", [])
        .unwrap();
    let r = diff(&src, &tgt, &["--exclude-columns", "price"]);
    assert_code(&r, 0);
    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
}

#[test]
fn where_option_restricts_the_rows() {
    let dir = Scratch::new("where");
    let base = "
        CREATE TABLE w (id INTEGER PRIMARY KEY, v INTEGER);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
        INSERT INTO w SELECT i, i * 10 FROM n;
    ";
    let src = db(dir.path(), "s.db", base);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{base} UPDATE w SET v = -1 WHERE id IN (50, 500);
             DELETE FROM w WHERE id = 900;"
        ),
    );

    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "w")),
        set(&["changed id=50 [v]", "changed id=500 [v]", "missing id=900"])
    );

    let (r, j) = diff_json(&src, &tgt, &["--where", "id < 100"]);
    assert_code(&r, 1);
    let t = table(&j, "w");
    assert_eq!(t["source_rows"], 99);
    assert_eq!(t["target_rows"], 99);
    assert_eq!(difference_set(t), set(&["changed id=50 [v]"]));

    let (r, j) = diff_json(&src, &tgt, &["--where", "id < 40"]);
    assert_code(&r, 0);
    assert_eq!(table(&j, "w")["source_rows"], 39);

    let r = diff(&src, &tgt, &["--where", "id >= 600"]);
    assert_code(&r, 1);
    assert!(
        r.stdout.contains("401 source rows, 400 target rows"),
        "{r:#?}"
    );
}

/// `items` (with a primary key, one changed row) and `events` (no primary
/// key; one changed row).
fn keyless_pair(dir: &Scratch) -> (PathBuf, PathBuf) {
    let base = "
        CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT);
        INSERT INTO items VALUES (1, 'a'), (2, 'b');
        CREATE TABLE events (code TEXT NOT NULL, n INTEGER, note TEXT);
        INSERT INTO events VALUES ('e1', 1, 'x'), ('e2', 2, 'y'), ('e3', 3, 'z');
    ";
    let src = db(dir.path(), "s.db", base);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{base} UPDATE items SET v = 'B' WHERE id = 2;
             UPDATE events SET note = 'Y' WHERE code = 'e2';"
        ),
    );
    (src, tgt)
}

#[test]
fn table_without_primary_key_needs_key_but_others_are_compared() {
    let dir = Scratch::new("no-pk");
    let (src, tgt) = keyless_pair(&dir);

    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 2);
    assert_eq!(table_names(&j), ["events", "items"]);
    let events = table(&j, "events");
    let err = events["error"].as_str().expect("events has an error");
    assert!(err.contains("--key"), "{err}");
    assert!(err.contains("events"), "{err}");
    let items = table(&j, "items");
    assert!(items.get("error").is_none(), "{items:#}");
    assert_eq!(difference_set(items), set(&["changed id=2 [v]"]));

    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 2);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("events: ERROR:") && l.contains("--key")),
        "{r:#?}"
    );
    assert!(r.stdout.contains("items: DRIFT"), "{r:#?}");
}

#[test]
fn key_option_compares_a_table_without_primary_key() {
    let dir = Scratch::new("key-opt");
    let (src, tgt) = keyless_pair(&dir);
    let (r, j) = diff_json(&src, &tgt, &["--table", "events", "--key", "code"]);
    assert_code(&r, 1);
    let t = table(&j, "events");
    assert_eq!(t["key_columns"], json!(["code"]));
    assert_eq!(
        t["differences"],
        json!([{
            "kind": "changed",
            "key": { "code": "e2" },
            "columns": ["note"],
            "source": { "note": "y" },
            "target": { "note": "Y" },
        }])
    );

    // A composite key.
    let (r, j) = diff_json(&src, &tgt, &["--table", "events", "--key", "code,n"]);
    assert_code(&r, 1);
    let t = table(&j, "events");
    assert_eq!(t["key_columns"], json!(["code", "n"]));
    assert_eq!(difference_set(t), set(&["changed code=\"e2\", n=2 [note]"]));
}

#[test]
fn key_option_rejects_a_non_unique_key() {
    let dir = Scratch::new("key-dup");
    let sql = "CREATE TABLE d (grp TEXT, v INTEGER);
               INSERT INTO d VALUES ('a', 1), ('a', 2), ('b', 3);";
    let src = db(dir.path(), "s.db", sql);
    let tgt = db(dir.path(), "t.db", sql);
    let (r, j) = diff_json(&src, &tgt, &["--key", "grp"]);
    assert_code(&r, 2);
    let err = table(&j, "d")["error"].as_str().expect("error");
    assert!(
        err.contains("more than once") && err.contains("--key"),
        "{err}"
    );

    let r = diff(&src, &tgt, &["--key", "nosuch"]);
    assert_code(&r, 2);
    assert!(r.stdout.contains("nosuch"), "{r:#?}");

    let r = diff(&src, &tgt, &["--key", ""]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("--key needs column names"), "{r:#?}");
    assert!(r.stdout.is_empty(), "{r:#?}");
}

// ---------------------------------------------------------------------------
// 5. Bad input
// ---------------------------------------------------------------------------

#[test]
fn missing_source_file_is_an_error_and_is_not_created() {
    let dir = Scratch::new("missing-src");
    let tgt = db(dir.path(), "t.db", TWO_TABLES);
    let missing = dir.join("no-such-source.db");
    let r = diff(&missing, &tgt, &[]);
    assert_code(&r, 2);
    assert!(r.stdout.is_empty(), "{r:#?}");
    assert!(r.stderr.contains("source"), "{r:#?}");
    assert!(r.stderr.contains("no such database file"), "{r:#?}");
    assert!(
        r.stderr.contains(&missing.display().to_string()),
        "message should name the path: {r:#?}"
    );
    assert!(!missing.exists(), "driftsum created {}", missing.display());
    assert_eq!(listing(dir.path()), ["t.db"]);
}

#[test]
fn missing_target_file_is_an_error_and_is_not_created() {
    let dir = Scratch::new("missing-tgt");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let missing = dir.join("no-such-replica.db");
    let r = diff(&src, &missing, &[]);
    assert_code(&r, 2);
    assert!(r.stdout.is_empty(), "{r:#?}");
    assert!(r.stderr.contains("target"), "{r:#?}");
    assert!(r.stderr.contains(&missing.display().to_string()), "{r:#?}");
    assert!(!missing.exists());
}

#[test]
fn a_file_that_is_not_a_database_is_an_error() {
    let dir = Scratch::new("not-db");
    let tgt = db(dir.path(), "t.db", TWO_TABLES);
    let junk = dir.join("junk.db");
    let content = "this is a plain text file, not a SQLite database\n".repeat(100);
    std::fs::write(&junk, &content).unwrap();
    let before = snapshot(&junk);

    let r = diff(&junk, &tgt, &[]);
    assert_code(&r, 2);
    assert!(r.stdout.is_empty(), "{r:#?}");
    assert!(r.stderr.contains("cannot open"), "{r:#?}");
    assert!(r.stderr.contains(&junk.display().to_string()), "{r:#?}");
    assert!(r.stderr.contains("not a database"), "{r:#?}");
    assert_eq!(snapshot(&junk), before, "the junk file was modified");
    assert_eq!(listing(dir.path()), ["junk.db", "t.db"]);

    // The same as a target.
    let r = diff(&tgt, &junk, &[]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("target") && r.stderr.contains("not a database"),
        "{r:#?}"
    );
}

#[test]
fn a_missing_table_is_reported_as_an_error() {
    let dir = Scratch::new("no-table");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let tgt = db(dir.path(), "t.db", TWO_TABLES);

    // The report (stdout) carries the per-table error; other requested tables
    // are still compared.
    let r = diff(&src, &tgt, &["--table", "nosuch", "--table", "a"]);
    assert_code(&r, 2);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("nosuch: ERROR:"))
        .unwrap_or_else(|| panic!("{r:#?}"));
    assert!(line.contains("no table \"nosuch\""), "{line}");
    assert!(r.stdout.contains("a: in sync (3 rows)"), "{r:#?}");

    let (r, j) = diff_json(&src, &tgt, &["--table", "nosuch"]);
    assert_code(&r, 2);
    assert_eq!(table_names(&j), ["nosuch"]);
    let err = table(&j, "nosuch")["error"].as_str().expect("error");
    assert!(err.contains("no table \"nosuch\""), "{err}");
    assert!(err.contains(&src.display().to_string()), "{err}");
}

#[test]
fn unknown_url_scheme_is_an_error() {
    let dir = Scratch::new("bad-scheme");
    let tgt = db(dir.path(), "t.db", TWO_TABLES);
    let t = url(&tgt);
    let r = run(&["diff", "--source", "oracle://x", "--target", &t]);
    assert_code(&r, 2);
    assert!(r.stdout.is_empty(), "{r:#?}");
    assert!(
        r.stderr.contains("unsupported database URL scheme"),
        "{r:#?}"
    );
    assert!(r.stderr.contains("oracle"), "{r:#?}");
    assert!(r.stderr.contains("sqlite:PATH"), "{r:#?}");

    let r = run(&["diff", "--source", &t, "--target", "postgres://h/db"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("target") && r.stderr.contains("postgres"),
        "{r:#?}"
    );
}

#[test]
fn url_without_scheme_is_an_error() {
    let dir = Scratch::new("no-scheme");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let tgt = db(dir.path(), "t.db", TWO_TABLES);
    let bare = src.display().to_string();
    let t = url(&tgt);
    let r = run(&["diff", "--source", &bare, "--target", &t]);
    assert_code(&r, 2);
    assert!(r.stdout.is_empty(), "{r:#?}");
    assert!(r.stderr.contains("is not a database URL"), "{r:#?}");
    assert!(r.stderr.contains("sqlite:PATH"), "{r:#?}");

    let r = run(&["diff", "--source", "sqlite:", "--target", &t]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("names no file"), "{r:#?}");
}

#[test]
fn every_documented_sqlite_url_form_is_accepted() {
    let dir = Scratch::new("url-forms");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let tgt = db(dir.path(), "t.db", TWO_TABLES);
    let abs = src.display().to_string();
    assert!(abs.starts_with('/'), "temp dir is absolute");
    let t = url(&tgt);
    for form in [
        format!("sqlite:{abs}"),
        format!("sqlite://{abs}"),
        format!("sqlite3:{abs}"),
        format!("SQLite:{abs}"),
    ] {
        let r = run(&["diff", "--source", &form, "--target", &t]);
        assert_code(&r, 0);
    }
}

#[test]
fn command_line_errors_exit_2() {
    let r = run(&["diff", "--source", "sqlite:a.db"]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("--target"), "{r:#?}");

    let r = run(&[
        "diff",
        "--source",
        "sqlite:a.db",
        "--target",
        "sqlite:b.db",
        "--float-digits",
        "0",
    ]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("--float-digits"), "{r:#?}");
}

#[test]
fn a_column_on_one_side_only_is_reported_not_fatal() {
    let dir = Scratch::new("col-one-side");
    let src = db(
        dir.path(),
        "s.db",
        "CREATE TABLE c (id INTEGER PRIMARY KEY, v TEXT, note TEXT);
         INSERT INTO c VALUES (1, 'a', 'n1'), (2, 'b', 'n2'), (3, 'c', 'n3');",
    );
    let tgt = db(
        dir.path(),
        "t.db",
        "CREATE TABLE c (id INTEGER PRIMARY KEY, v TEXT, legacy INTEGER);
         INSERT INTO c VALUES (1, 'a', 7), (2, 'B', 8), (3, 'c', 9);",
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    let t = table(&j, "c");
    assert!(t.get("error").is_none(), "{t:#}");
    assert_eq!(t["in_sync"], false);
    let cols: BTreeSet<(String, String)> = t["column_differences"]
        .as_array()
        .expect("column_differences")
        .iter()
        .map(|c| {
            (
                c["column"].as_str().unwrap().to_string(),
                c["only_in"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        cols,
        BTreeSet::from([
            ("note".to_string(), "source".to_string()),
            ("legacy".to_string(), "target".to_string()),
        ])
    );
    // The shared columns are still compared.
    assert_eq!(difference_set(t), set(&["changed id=2 [v]"]));

    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert!(r.stdout.contains("2 columns on one side only"), "{r:#?}");
    assert!(
        r.stdout.contains("column \"note\" is only in the source"),
        "{r:#?}"
    );
    assert!(
        r.stdout.contains("column \"legacy\" is only in the target"),
        "{r:#?}"
    );

    // Excluding both makes the only remaining change the row.
    let (r, j) = diff_json(&src, &tgt, &["--exclude-columns", "note,legacy"]);
    assert_code(&r, 1);
    assert!(table(&j, "c").get("column_differences").is_none(), "{j:#}");
}

#[test]
fn a_value_that_cannot_be_coerced_is_a_changed_row() {
    let dir = Scratch::new("banana");
    let schema = "CREATE TABLE v (id INTEGER PRIMARY KEY, qty INTEGER, at TIMESTAMP, ok BOOLEAN);";
    let src = db(
        dir.path(),
        "s.db",
        &format!(
            "{schema} INSERT INTO v VALUES
               (1, 5, '2024-03-01 10:00:00', 1),
               (2, 6, '2024-03-01 11:00:00', 0),
               (3, 7, '2024-03-01 12:00:00', 1);"
        ),
    );
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{schema} INSERT INTO v VALUES
               (1, 'banana', '2024-03-01 10:00:00', 1),
               (2, 6, 'banana', 0),
               (3, 7, '2024-03-01 12:00:00', 'maybe');"
        ),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    let t = table(&j, "v");
    assert!(t.get("error").is_none(), "{t:#}");
    assert_eq!(
        difference_set(t),
        set(&[
            "changed id=1 [qty]",
            "changed id=2 [at]",
            "changed id=3 [ok]"
        ])
    );
    let d1 = &t["differences"].as_array().unwrap()[0];
    assert_eq!(d1["source"], json!({ "qty": 5 }));
    let shown = d1["target"]["qty"].as_str().expect("shown as text");
    assert!(shown.contains("banana"), "{shown}");

    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert!(r.stdout.contains("3 changed"), "{r:#?}");
}

// ---------------------------------------------------------------------------
// 6. Tables on one side only
// ---------------------------------------------------------------------------

#[test]
fn tables_on_one_side_only_are_errors_in_the_report() {
    let dir = Scratch::new("lonely");
    let src = db(
        dir.path(),
        "s.db",
        &format!("{TWO_TABLES} CREATE TABLE src_only (id INTEGER PRIMARY KEY);"),
    );
    let tgt = db(
        dir.path(),
        "t.db",
        &format!("{TWO_TABLES} CREATE TABLE tgt_only (id INTEGER PRIMARY KEY);"),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 2);
    assert_eq!(table_names(&j), ["a", "b", "src_only", "tgt_only"]);
    assert_eq!(table(&j, "a")["in_sync"], true);
    assert_eq!(table(&j, "b")["in_sync"], true);
    let e = table(&j, "src_only")["error"].as_str().expect("error");
    assert!(e.contains("missing from the target"), "{e}");
    let e = table(&j, "tgt_only")["error"].as_str().expect("error");
    assert!(e.contains("only in the target"), "{e}");

    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 2);
    assert!(r.stdout.contains("src_only: ERROR:"), "{r:#?}");
    assert!(r.stdout.contains("tgt_only: ERROR:"), "{r:#?}");
    assert!(r.stdout.contains("a: in sync"), "{r:#?}");
}

// ---------------------------------------------------------------------------
// 7. Equal facts stored differently
// ---------------------------------------------------------------------------

/// The source keeps ISO text, decimal text, 'true' and date text; the replica
/// keeps Unix seconds, REAL, 0/1 and Julian days (it declares the columns the
/// way a sync tool might; driftsum reads both sides by the source's types).
///
/// SQLite's NUMERIC affinity turns the source's '5.10' into REAL 5.1 on
/// insert, so row 2 gives the replica an untyped `amount` column holding the
/// text '7.00', for a decimal that really is text on one side.
const CROSS_SOURCE: &str = "
    CREATE TABLE f (id INTEGER PRIMARY KEY, at TIMESTAMP, amount NUMERIC(10,2),
                    flag BOOLEAN, day DATE);
    INSERT INTO f VALUES (1, '2024-03-01 10:00:00', '5.10', 'true', '2024-03-01');
    INSERT INTO f VALUES (2, '2024-01-01 00:00:00', '7', 'false', '1970-01-01');
    INSERT INTO f VALUES (3, NULL, NULL, NULL, NULL);
";

fn cross_replica(first_at: i64) -> String {
    format!(
        "CREATE TABLE f (id INTEGER PRIMARY KEY, at INTEGER, amount, flag INTEGER, day REAL);
         INSERT INTO f VALUES (1, {first_at}, 5.1, 1, 2460370.5);
         INSERT INTO f VALUES (2, 1704067200, '7.00', 0, 2440587.5);
         INSERT INTO f VALUES (3, NULL, NULL, NULL, NULL);"
    )
}

/// `typeof()` of the given columns of row `id` of table `f`.
fn storage_classes(p: &Path, id: i64, cols: &[&str]) -> Vec<String> {
    let c = Connection::open(p).unwrap();
    cols.iter()
        .map(|col| {
            c.query_row(
                &format!("SELECT typeof({col}) FROM f WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn equal_facts_in_different_representations_are_in_sync() {
    let dir = Scratch::new("cross-rep");
    let src = db(dir.path(), "s.db", CROSS_SOURCE);
    let tgt = db(dir.path(), "t.db", &cross_replica(1_709_287_200));
    // The two sides really store the facts differently.
    let cols = ["at", "amount", "flag", "day"];
    assert_eq!(
        storage_classes(&src, 1, &cols),
        ["text", "real", "text", "text"]
    );
    assert_eq!(
        storage_classes(&tgt, 1, &cols),
        ["integer", "real", "integer", "real"]
    );
    assert_eq!(storage_classes(&src, 2, &["amount"]), ["integer"]);
    assert_eq!(storage_classes(&tgt, 2, &["amount"]), ["text"]);

    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim_end(), "f: in sync (3 rows)");
}

#[test]
fn cross_representation_still_sees_a_one_second_difference() {
    let dir = Scratch::new("cross-rep-off");
    let src = db(dir.path(), "s.db", CROSS_SOURCE);
    let tgt = db(dir.path(), "t.db", &cross_replica(1_709_287_201));
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(difference_set(table(&j, "f")), set(&["changed id=1 [at]"]));
}

#[test]
fn integer_keys_stored_as_text_in_the_replica() {
    let dir = Scratch::new("text-int-keys");
    let src = db(
        dir.path(),
        "s.db",
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO a SELECT i, 'v' || i FROM n;",
    );
    // TEXT keys sort as '1', '10', '100', ...: not in key order.
    let tgt = db(
        dir.path(),
        "t.db",
        "CREATE TABLE a (id TEXT PRIMARY KEY, v TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO a SELECT CAST(i AS TEXT), 'v' || i FROM n;
         DELETE FROM a WHERE id IN ('77', '2500');
         UPDATE a SET v = 'w' WHERE id = '1000';
         INSERT INTO a VALUES ('3005', 'x');",
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "a")),
        set(&[
            "missing id=77",
            "missing id=2500",
            "changed id=1000 [v]",
            "extra id=3005"
        ])
    );
}

// ---------------------------------------------------------------------------
// 8. demo
// ---------------------------------------------------------------------------

#[test]
fn demo_writes_both_databases_and_shows_drift() {
    let dir = Scratch::new("demo");
    let d = dir.join("out");
    let r = run(&["demo", "--dir", &d.display().to_string()]);
    assert_code(&r, 0);
    let (src, tgt) = (d.join("source.db"), d.join("replica.db"));
    assert!(src.is_file() && tgt.is_file(), "{r:#?}");
    assert!(r.stdout.contains("DRIFT"), "{r:#?}");
    assert!(r.stdout.contains("customers: in sync"), "{r:#?}");

    // The databases it wrote hold the drift it describes.
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(table(&j, "customers")["in_sync"], true);
    assert_eq!(
        difference_set(table(&j, "orders")),
        set(&[
            "changed id=42 [amount]",
            "changed id=777 [customer]",
            "changed id=900 [weight]",
            "missing id=1234",
            "missing id=1500",
            "extra id=2001",
            "extra id=2002",
        ])
    );
}

// ---------------------------------------------------------------------------
// 9. Read-only
// ---------------------------------------------------------------------------

#[test]
fn databases_are_never_modified() {
    let dir = Scratch::new("read-only");
    let (src, tgt) = items_pair(&dir);
    let files = listing(dir.path());
    let before = (snapshot(&src), snapshot(&tgt));
    // Make any later write show up in the mtime even on coarse clocks.
    std::thread::sleep(std::time::Duration::from_millis(1100));

    for extra in [
        &[][..],
        &["--format", "json"][..],
        &["--float-digits", "6", "--where", "id > 100"][..],
        &["--table", "nosuch"][..],
    ] {
        let r = diff(&src, &tgt, extra);
        assert!(r.code == 1 || r.code == 2, "{r:#?}");
        // Also with the sides swapped.
        let r = diff(&tgt, &src, extra);
        assert!(r.code == 1 || r.code == 2, "{r:#?}");
    }
    assert!(snapshot(&src) == before.0, "the source file changed");
    assert!(snapshot(&tgt) == before.1, "the replica file changed");
    assert_eq!(listing(dir.path()), files, "files appeared or vanished");
}

// ---------------------------------------------------------------------------
// Edge cases
// ---------------------------------------------------------------------------

#[test]
fn drift_at_both_ends_of_the_key_range() {
    let dir = Scratch::new("edges");
    let (src, tgt) = (
        db(dir.path(), "s.db", ITEMS_5000),
        db(
            dir.path(),
            "t.db",
            &format!(
                "{ITEMS_5000}
                 DELETE FROM items WHERE id IN (2, 10000);
                 INSERT INTO items VALUES (-5, 'before', 1.0, 1), (0, 'zero', 1.0, 1),
                                          (10001, 'after', 1.0, 1);"
            ),
        ),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "items")),
        set(&[
            "extra id=-5",
            "extra id=0",
            "missing id=2",
            "missing id=10000",
            "extra id=10001",
        ])
    );
}

#[test]
fn empty_tables() {
    let dir = Scratch::new("empty");
    let schema = "CREATE TABLE e (id INTEGER PRIMARY KEY, v TEXT);";
    let empty = db(dir.path(), "empty.db", schema);
    let empty2 = db(dir.path(), "empty2.db", schema);
    let full = db(
        dir.path(),
        "full.db",
        &format!("{schema} INSERT INTO e VALUES (1, 'a'), (2, 'b'), (3, 'c');"),
    );

    let r = diff(&empty, &empty2, &[]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim_end(), "e: in sync (0 rows)");

    let (r, j) = diff_json(&empty, &full, &[]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "e")),
        set(&["extra id=1", "extra id=2", "extra id=3"])
    );

    let (r, j) = diff_json(&full, &empty, &[]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "e")),
        set(&["missing id=1", "missing id=2", "missing id=3"])
    );
}

#[test]
fn null_empty_text_and_zero_are_all_different() {
    let dir = Scratch::new("nulls");
    let schema = "CREATE TABLE z (id INTEGER PRIMARY KEY, t TEXT, n INTEGER);";
    let src = db(
        dir.path(),
        "s.db",
        &format!(
            "{schema} INSERT INTO z VALUES (1, NULL, NULL), (2, '', 0), (3, 'x', 1), (4, NULL, 0);"
        ),
    );
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{schema} INSERT INTO z VALUES (1, '', 0), (2, NULL, NULL), (3, 'x', 1), (4, NULL, 0);"
        ),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    let t = table(&j, "z");
    assert_eq!(
        difference_set(t),
        set(&["changed id=1 [n, t]", "changed id=2 [n, t]"])
    );
    assert_eq!(
        t["differences"][0]["source"],
        json!({ "t": null, "n": null })
    );
    assert_eq!(t["differences"][0]["target"], json!({ "t": "", "n": 0 }));
}

#[test]
fn awkward_identifiers_are_quoted() {
    let dir = Scratch::new("idents");
    let sql = |v: &str| {
        format!(
            "CREATE TABLE \"order\" (\"select\" INTEGER PRIMARY KEY, \"group\" TEXT, \"a b\" INTEGER);
             INSERT INTO \"order\" VALUES (1, 'g1', 10), (2, 'g2', 20), (3, 'g3', 30);
             CREATE TABLE \"odd \"\"name\"\"\" (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO \"odd \"\"name\"\"\" VALUES (1, '{v}');"
        )
    };
    let src = db(dir.path(), "s.db", &sql("same"));
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{} UPDATE \"order\" SET \"a b\" = 21 WHERE \"select\" = 2;",
            sql("same")
        ),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(table_names(&j), ["odd \"name\"", "order"]);
    assert_eq!(table(&j, "odd \"name\"")["in_sync"], true);
    let t = table(&j, "order");
    assert_eq!(t["key_columns"], json!(["select"]));
    assert_eq!(difference_set(t), set(&["changed select=2 [a b]"]));

    let (r, _) = diff_json(
        &src,
        &tgt,
        &["--table", "order", "--exclude-columns", "a b"],
    );
    assert_code(&r, 0);
    let (r, _) = diff_json(
        &src,
        &tgt,
        &["--table", "order", "--where", "\"select\" <> 2"],
    );
    assert_code(&r, 0);
}

#[test]
fn composite_primary_key_follows_the_declared_key_order() {
    let dir = Scratch::new("composite-pk");
    let base = "
        CREATE TABLE c (a INTEGER, b TEXT, v REAL, PRIMARY KEY (b, a)) WITHOUT ROWID;
        INSERT INTO c VALUES (1, 'x', 1.0), (2, 'x', 2.0), (1, 'y', 3.0), (2, 'y', 4.0);
    ";
    let src = db(dir.path(), "s.db", base);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!("{base} UPDATE c SET v = 3.5 WHERE a = 1 AND b = 'y'; DELETE FROM c WHERE a = 2 AND b = 'x';"),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    let t = table(&j, "c");
    assert_eq!(t["key_columns"], json!(["b", "a"]));
    // Listed in (b, a) order: ("x", 2) before ("y", 1). (Key objects are JSON
    // objects, whose members serde_json keeps sorted by name.)
    assert_eq!(
        differences(t),
        ["missing a=2, b=\"x\"", "changed a=1, b=\"y\" [v]"]
    );
}

#[test]
fn text_keys_compare_bytewise_whatever_the_collation() {
    let dir = Scratch::new("text-keys");
    let base = "
        CREATE TABLE k (code TEXT PRIMARY KEY COLLATE NOCASE, v INTEGER);
        INSERT INTO k VALUES ('a', 1), ('B', 2), ('c', 3), ('É', 4), ('z', 5), ('', 6), ('a b', 7);
    ";
    let src = db(dir.path(), "s.db", base);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{base} UPDATE k SET v = 40 WHERE code = 'É'; DELETE FROM k WHERE code = 'B';
             INSERT INTO k VALUES ('D', 8);"
        ),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "k")),
        set(&[
            "missing code=\"B\"",
            "extra code=\"D\"",
            "changed code=\"É\" [v]"
        ])
    );
}

#[test]
fn where_condition_is_kept_whole_inside_range_reads() {
    let dir = Scratch::new("where-or");
    let (src, tgt) = items_pair(&dir);
    // An OR must not leak out of the range conditions driftsum adds.
    let (r, j) = diff_json(&src, &tgt, &["--where", "id < 100 OR id > 7500"]);
    assert_code(&r, 1);
    let mut expected = set(&["missing id=20"]);
    for id in (8000..=8018).step_by(2) {
        expected.insert(format!("missing id={id}"));
    }
    assert_eq!(difference_set(table(&j, "items")), expected);

    let r = diff(&src, &tgt, &["--where", "nosuchcol = 1"]);
    assert_code(&r, 2);
    assert!(
        r.stdout.contains("items: ERROR:") && r.stdout.contains("nosuchcol"),
        "{r:#?}"
    );
}

#[test]
fn tree_shape_does_not_change_the_findings() {
    let dir = Scratch::new("shapes");
    let (src, tgt) = items_pair(&dir);
    for shape in [
        ["--leaf-target", "2", "--fanout", "2"],
        ["--leaf-target", "7", "--fanout", "3"],
        ["--leaf-target", "1000", "--fanout", "64"],
        ["--leaf-target", "100000", "--fanout", "2"],
    ] {
        let (r, j) = diff_json(&src, &tgt, &shape);
        assert_code(&r, 1);
        assert_eq!(
            difference_set(table(&j, "items")),
            items_drift_expected(),
            "with {shape:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// WAL-mode databases
// ---------------------------------------------------------------------------

/// A source and replica in WAL journal mode, closed cleanly (so no -wal or
/// -shm file is left), with one changed row.
fn wal_pair(dir: &Scratch) -> (PathBuf, PathBuf) {
    let make = |name: &str, v: &str| {
        let p = dir.join(name);
        let c = Connection::open(&p).unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        c.execute_batch(&format!(
            "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO a VALUES (1, 'x'), (2, '{v}');"
        ))
        .unwrap();
        c.close().unwrap();
        p
    };
    let pair = (make("s.db", "y"), make("t.db", "z"));
    assert_eq!(listing(dir.path()), ["s.db", "t.db"]);
    pair
}

#[test]
fn wal_mode_databases_are_not_modified() {
    let dir = Scratch::new("wal");
    let (src, tgt) = wal_pair(&dir);
    let before = (snapshot(&src), snapshot(&tgt));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(difference_set(table(&j, "a")), set(&["changed id=2 [v]"]));
    assert!(snapshot(&src) == before.0, "the source file changed");
    assert!(snapshot(&tgt) == before.1, "the replica file changed");
}

// ---------------------------------------------------------------------------
// 10. Never write what it reads, never leak (issue 10)
// ---------------------------------------------------------------------------

/// Every file under `dir` (not following links) with a BLAKE3 of its bytes,
/// or of its link target for a symbolic link.
fn tree_state(dir: &Path) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("dir entry").path();
        let meta = std::fs::symlink_metadata(&p).expect("metadata");
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let digest = if meta.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&p).unwrap().display())
        } else if meta.is_dir() {
            "dir".to_string()
        } else {
            blake3::hash(&std::fs::read(&p).expect("read"))
                .to_hex()
                .to_string()
        };
        out.insert((name, digest));
    }
    out
}

/// `build --out` naming an input of the run, however spelled, is refused
/// with exit 2 before anything is written; so is a link, and an existing
/// file that is not a tree file. A link planted at the old temporary name is
/// never followed, and no temporary file is left behind.
#[cfg(unix)]
#[test]
fn build_never_writes_over_an_input_or_through_a_link() {
    use std::os::unix::fs::symlink;
    let dir = Scratch::new("out-is-input");
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let x = db(
        dir.path(),
        "X.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    std::fs::write(dir.join("c.toml"), "").unwrap();
    std::fs::write(dir.join("victim.txt"), "precious").unwrap();
    std::fs::write(dir.join("notes.txt"), "not a tree").unwrap();
    std::fs::hard_link(&x, dir.join("hard.db")).unwrap();
    symlink(&x, dir.join("soft.dstree")).unwrap();
    symlink(dir.path(), dir.join("dirlink")).unwrap();
    symlink(dir.join("victim.txt"), dir.join("elsewhere.dstree")).unwrap();
    let d = dir.path().display().to_string();
    let db_url = url(&x);
    let relative = format!("sqlite:{d}/sub/../X.db");
    // (db URL, --out, what the message must say)
    let cases: Vec<(String, String, &str)> = vec![
        (db_url.clone(), x.display().to_string(), "is the database"),
        (db_url.clone(), format!("{d}/./X.db"), "is the database"),
        (
            db_url.clone(),
            format!("{d}/sub/../X.db"),
            "is the database",
        ),
        (relative, x.display().to_string(), "is the database"),
        (
            db_url.clone(),
            format!("{d}/dirlink/X.db"),
            "is the database",
        ),
        (db_url.clone(), format!("{d}/hard.db"), "is the database"),
        (
            db_url.clone(),
            format!("{d}/soft.dstree"),
            "is the database",
        ),
        (
            db_url.clone(),
            format!("{d}/X.db-wal"),
            "beside the database",
        ),
        (
            db_url.clone(),
            format!("{d}/X.db-journal"),
            "beside the database",
        ),
        (
            db_url.clone(),
            format!("{d}/X.db-shm"),
            "beside the database",
        ),
        (db_url.clone(), format!("{d}/c.toml"), "is the config file"),
        (
            db_url.clone(),
            format!("{d}/elsewhere.dstree"),
            "is a symbolic link",
        ),
        (
            db_url.clone(),
            format!("{d}/notes.txt"),
            "is not a driftsum tree file",
        ),
        (db_url.clone(), format!("{d}/sub"), "is not a file"),
    ];
    let before = tree_state(dir.path());
    for (db_url, out, says) in &cases {
        let config = dir.join("c.toml").display().to_string();
        let r = run(&[
            "build", "--db", db_url, "--table", "t", "--out", out, "--config", &config,
        ]);
        assert_code(&r, 2);
        assert!(r.stderr.contains(says), "--out {out}: {r:#?}");
        assert!(r.stderr.contains("--out"), "{r:#?}");
        assert_eq!(tree_state(dir.path()), before, "--out {out} changed a file");
        assert!(listing(&sub).is_empty(), "--out {out}: {:?}", listing(&sub));
    }

    // A link planted where a temporary file used to go is left alone.
    let out = dir.join("t.dstree");
    symlink(&x, dir.join("t.dstree.tmp")).unwrap();
    let before = tree_state(dir.path());
    for _ in 0..2 {
        let r = run(&[
            "build",
            "--db",
            &db_url,
            "--table",
            "t",
            "--out",
            &out.display().to_string(),
        ]);
        assert_code(&r, 0);
    }
    let mut after = tree_state(dir.path());
    let made = after
        .iter()
        .find(|(n, _)| n == "t.dstree")
        .cloned()
        .expect("tree file written");
    after.remove(&made);
    assert_eq!(
        after, before,
        "something besides t.dstree changed or was left"
    );
    let r = diff(&x, &x, &[]);
    assert_code(&r, 0);
}

/// `demo` never replaces a file it did not create: any of its files (or a
/// file SQLite keeps beside one, or a link) already in the folder is refused
/// with exit 2 and nothing is written; a second run in the same folder too.
#[cfg(unix)]
#[test]
fn demo_never_replaces_a_file() {
    for planted in [
        "source.db",
        "replica.db",
        "replica.db-journal",
        "source.db-wal",
        "link:replica.db",
        "link:source.db",
    ] {
        let dir = Scratch::new("demo-refuses");
        let d = dir.join("d");
        std::fs::create_dir_all(&d).unwrap();
        let victim = dir.join("victim.db");
        std::fs::write(&victim, "precious").unwrap();
        let name = match planted.strip_prefix("link:") {
            Some(n) => {
                std::os::unix::fs::symlink(&victim, d.join(n)).unwrap();
                n
            }
            None => {
                std::fs::write(d.join(planted), "keep me").unwrap();
                planted
            }
        };
        let before = (tree_state(dir.path()), tree_state(&d));
        let r = run(&["demo", "--dir", &d.display().to_string()]);
        assert_code(&r, 2);
        assert!(
            r.stderr.contains(&format!("{name} already exists")),
            "{r:#?}"
        );
        assert!(r.stderr.contains("another --dir"), "{r:#?}");
        assert!(r.stdout.is_empty(), "{r:#?}");
        assert_eq!(
            (tree_state(dir.path()), tree_state(&d)),
            before,
            "{planted}"
        );
    }
    let dir = Scratch::new("demo-twice");
    let d = dir.join("d").display().to_string();
    assert_code(&run(&["demo", "--dir", &d]), 0);
    let before = tree_state(&dir.join("d"));
    assert_eq!(
        before.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["replica.db", "source.db"]
    );
    let r = run(&["demo", "--dir", &d]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("source.db already exists"), "{r:#?}");
    assert_eq!(tree_state(&dir.join("d")), before);
}

/// URL shapes for the password property test; every one names an
/// unreachable server (port 1), so every command fails with exit 2.
const LEAK_SHAPES: &[&str] = &[
    "postgres://u:{pw}@127.0.0.1:1/db",
    "postgresql://u:{pw}@127.0.0.1:1/db?sslmode=disable",
    "mysql://root:{pw}@127.0.0.1:1/test",
    "mariadb://u:{pw}@[::1]:1/db",
    "postgres://:{pw}@127.0.0.1:1",
    "postgres://u@127.0.0.1:1/db?password={pw}",
    "mysql://u@127.0.0.1:1/db?ssl-mode=disabled&password={pw}",
    "host=127.0.0.1 port=1 password={pw}",
    // No host: the password must not be read as a port and database.
    "postgres://u:{pw}",
];

/// The commands each URL is given to: as a source, a build's database, an
/// agent's database, and in usage errors clap quotes.
fn leak_commands<'a>(u: &'a str, scratch: &'a str) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        s(&[
            "diff",
            "--source",
            u,
            "--target",
            &format!("sqlite:{scratch}/none.db"),
        ]),
        s(&[
            "diff",
            "--source",
            &format!("sqlite:{scratch}/none.db"),
            "--target",
            u,
        ]),
        s(&[
            "build",
            "--db",
            u,
            "--table",
            "t",
            "--out",
            &format!("{scratch}/o.dstree"),
        ]),
        s(&[
            "serve",
            "--db",
            u,
            "--token-file",
            &format!("{scratch}/none"),
        ]),
        s(&[
            "diff",
            "--source",
            "sqlite:a.db",
            "--target",
            "sqlite:b.db",
            u,
        ]),
        s(&[
            "build",
            "--db",
            "sqlite:a",
            "--table",
            "t",
            "--out",
            "x",
            "--connections",
            u,
        ]),
        s(&[
            "diff",
            &format!("--source={u}"),
            "--target",
            "sqlite:b.db",
            "--format",
            "yaml",
        ]),
    ]
}

fn run_owned(args: &[String]) -> Run {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&a)
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(24))]

    /// For passwords drawn from a wide alphabet (every printable ASCII
    /// character, so `/ ? # @ : % & =` and spaces, and non-ASCII), written
    /// unencoded into every URL shape, no output of the binary holds the
    /// password or any 4-character piece of it that the same command with
    /// another password does not print too.
    #[test]
    fn no_output_ever_holds_a_password(
        pw in "[ -~é日€]{8,20}",
        shape in 0..LEAK_SHAPES.len(),
    ) {
        let shape = LEAK_SHAPES[shape];
        let hostless = !shape.contains('@') && !shape.contains("password=");
        let url_like = pw.starts_with(|c: char| c.is_ascii_digit())
            && pw.chars().all(|c| c.is_ascii_alphanumeric() || "_.-%$/?=&".contains(c));
        // Without a host, `a@b` makes a well-formed URL naming host b.
        proptest::prop_assume!(!hostless || !(pw.contains('@') || url_like));
        let dir = Scratch::new("leak");
        let scratch = dir.path().display().to_string();
        let url = shape.replace("{pw}", &pw);
        let neutral = shape.replace("{pw}", "ZZZZZZZZ");
        for (args, base) in leak_commands(&url, &scratch)
            .into_iter()
            .zip(leak_commands(&neutral, &scratch))
        {
            let r = run_owned(&args);
            proptest::prop_assert_eq!(r.code, 2, "{:?}: {:#?}", args, r);
            let seen = format!("{}\n{}", r.stdout, r.stderr);
            proptest::prop_assert!(!seen.contains(&pw), "{:?}: {:#?}", args, r);
            let b = run_owned(&base);
            let baseline = format!("{}\n{}{}", b.stdout, b.stderr, neutral);
            let c: Vec<char> = pw.chars().collect();
            for i in 0..c.len() - 3 {
                let piece: String = c[i..i + 4].iter().collect();
                if !baseline.contains(&piece) {
                    proptest::prop_assert!(
                        !seen.contains(&piece),
                        "{:?} shows {:?}: {:#?}", args, piece, r
                    );
                }
            }
        }
    }
}

/// Control characters (escapes, carriage returns, newlines, bells), C1
/// controls and bidi overrides in table names, column names and key values
/// never reach the terminal raw: the text report, the error lines and
/// `build`'s summary show them escaped.
#[test]
fn names_with_control_characters_are_escaped() {
    let hostile = [
        "\x1b[31m", "\r", "\n", "\x07", "\u{202e}", "\u{2066}", "\u{9b}2J", "\x08", "\u{200b}",
    ];
    let raw = |s: &str| {
        s.chars().find(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}')
        })
    };
    for h in hostile {
        let dir = Scratch::new("escape");
        let (t, c) = (format!("t{h}x"), format!("c{h}y"));
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let make = |name: &str, extra: &str| {
            let p = dir.join(name);
            let conn = Connection::open(&p).unwrap();
            conn.execute_batch(&format!(
                "CREATE TABLE {} ({} TEXT PRIMARY KEY, {} TEXT);",
                q(&t),
                q(&c),
                q(&format!("v{c}"))
            ))
            .unwrap();
            let ins = format!("INSERT INTO {} VALUES (?1, ?2)", q(&t));
            for (k, v) in [("a", "1"), (&*format!("k{h}"), "2"), ("z", "3")] {
                conn.execute(&ins, params![k, v]).unwrap();
            }
            conn.execute_batch(extra).unwrap();
            p
        };
        let src = make("s.db", "");
        let tgt = make(
            "t.db",
            &format!(
                "UPDATE {} SET {} = 'changed{h}'; DELETE FROM {} WHERE {} = 'a';",
                q(&t),
                q(&format!("v{c}")),
                q(&t),
                q(&c)
            ),
        );
        let r = diff(&src, &tgt, &[]);
        assert_code(&r, 1);
        assert_eq!(raw(&r.stdout), None, "{h:?}: {r:#?}");
        assert_eq!(raw(&r.stderr), None, "{h:?}: {r:#?}");
        // Every line is the report's own: no name or value started one.
        assert!(
            r.stdout
                .lines()
                .all(|l| l.starts_with("  ") || l.starts_with('"')),
            "{h:?}: {}",
            r.stdout
        );
        let escaped: String = h.chars().flat_map(char::escape_debug).collect();
        assert!(r.stdout.contains(&escaped), "{h:?}: {}", r.stdout);
        // Errors that quote a name, and build's summary line.
        let r = diff(&src, &tgt, &["--table", &format!("nope{h}")]);
        assert_code(&r, 2);
        assert_eq!(raw(&r.stdout), None, "{h:?}: {r:#?}");
        assert_eq!(raw(&r.stderr), None, "{h:?}: {r:#?}");
        let out = dir.join(&format!("o{h}.dstree")).display().to_string();
        let r = run(&["build", "--db", &url(&src), "--table", &t, "--out", &out]);
        assert_code(&r, 0);
        assert_eq!(raw(&r.stdout), None, "{h:?}: {r:#?}");
        assert!(r.stdout.contains(&escaped), "{h:?}: {r:#?}");
    }
}
