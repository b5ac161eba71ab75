//! Whole-command tests of the `driftsum` binary.
//!
//! Every test builds real SQLite files (with `rusqlite`) in its own scratch
//! folder under the system temporary directory, runs the compiled binary on
//! them with `std::process::Command`, and checks what a user sees: the exit
//! code (0 in sync, 1 drift, 2 error), the text report, the JSON report
//! (parsed with `serde_json`, and every one validated against the published
//! schema, `docs/json-schema.json`), the messages on stderr, and that driftsum never
//! writes to either database nor creates a file it was pointed at.
//!
//! The helpers below are shared by the submodules, one per section of what a
//! user sees.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use crate::util::{run, Run, Scratch};

mod bad_input;
mod demo;
mod edge_cases;
mod exit_codes;
mod json_report;
mod never_write_never_leak;
mod options;
mod range_reads;
mod read_only;
mod representations;
mod text_report;

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

impl Run {
    /// Parses stdout as the JSON report, which must validate against the
    /// published schema (`docs/json-schema.json`).
    fn json(&self) -> Value {
        let doc: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"));
        let errors = crate::json_contract::violations(&doc);
        assert!(
            errors.is_empty(),
            "the report breaks docs/json-schema.json:\n{}\n{self:#?}",
            errors.join("\n")
        );
        doc
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
