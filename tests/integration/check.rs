//! `driftsum check` and `driftsum history` end to end: the real binary
//! against real SQLite files (and PostgreSQL or MariaDB sources when
//! `DRIFTSUM_TEST_POSTGRES` / `DRIFTSUM_TEST_MYSQL` are set), with a real
//! run history. Each level is held to a naive reference computed here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::Value as J;

use crate::util::{self, Scratch};

/// A scratch folder for one test, removed when dropped.
fn dir(name: &str) -> Scratch {
    Scratch::new(&format!("check-{name}"))
}

fn driftsum(args: &[&str], now: Option<i64>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftsum"));
    cmd.args(args);
    match now {
        Some(t) => cmd.env("DRIFTSUM_NOW", t.to_string()),
        None => cmd.env_remove("DRIFTSUM_NOW"),
    };
    let out = cmd.output().expect("run driftsum");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `driftsum COMMAND --format json --config CONFIG` with extra arguments;
/// the exit code and the parsed document.
fn json(command: &str, config: &Path, extra: &[&str], now: Option<i64>) -> (i32, J) {
    let mut args = vec![
        command,
        "--format",
        "json",
        "--config",
        config.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = driftsum(&args, now);
    let doc = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}), exit {code}: {out}\nstderr: {err}"));
    (code, doc)
}

/// `check --format json` with extra arguments; the parsed document.
fn check(config: &Path, extra: &[&str], now: Option<i64>) -> (i32, J) {
    json("check", config, extra, now)
}

/// `history --format json` with extra arguments; the parsed document.
fn history(config: &Path, extra: &[&str], now: Option<i64>) -> (i32, J) {
    json("history", config, extra, now)
}

/// A source and replica with `tables` identical tables `t0`, `t1`, … of
/// `rows` rows each.
fn pair(d: &Path, tables: usize, rows: i64) -> (Connection, Connection) {
    let src = Connection::open(d.join("src.db")).unwrap();
    for t in 0..tables {
        src.execute_batch(&format!(
            "CREATE TABLE t{t} (id INTEGER PRIMARY KEY, name TEXT, amount REAL);
             {SERIES}{rows}) INSERT INTO t{t} SELECT value, 'n' || value, value / 4.0 FROM s;"
        ))
        .unwrap();
    }
    drop(src);
    std::fs::copy(d.join("src.db"), d.join("rep.db")).unwrap();
    (
        Connection::open(d.join("src.db")).unwrap(),
        Connection::open(d.join("rep.db")).unwrap(),
    )
}

/// The numbers 1 to N as `s(value)`, once followed by `N)`.
const SERIES: &str =
    "WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < ";

fn write_config(d: &Path, source: &str, tiers: &str) -> PathBuf {
    let path = d.join("driftsum.toml");
    std::fs::write(
        &path,
        format!("[source]\nurl = \"{source}\"\n[replica]\nurl = \"sqlite:rep.db\"\n{tiers}"),
    )
    .unwrap();
    path
}

const ALL_LEVELS: &str = "[tiers.all]\ncount = \"5m\"\nkeys = \"15m\"\nfull = \"1h\"\n\
                          [defaults]\ntier = \"all\"\n";

/// The naive reference: keys on each side, and rows by key.
fn rows(c: &Connection, table: &str) -> BTreeMap<i64, (String, f64)> {
    let mut q = c
        .prepare(&format!("SELECT id, name, amount FROM {table}"))
        .unwrap();
    q.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// (kind, id) of differences.
type Listed = BTreeSet<(String, i64)>;

/// (kind, id) of every difference a level entry lists.
fn listed(level: &J) -> Listed {
    level["differences"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    (
                        d["kind"].as_str().unwrap().to_string(),
                        d["key"]["id"].as_i64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn level<'a>(doc: &'a J, table: &str, level: &str) -> &'a J {
    doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == table)
        .and_then(|t| {
            t["levels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["level"] == level)
        })
        .unwrap_or_else(|| panic!("no {level} entry for {table} in {doc}"))
}

/// What the reference says each level must find.
fn reference(src: &Connection, rep: &Connection, table: &str) -> (bool, Listed, Listed) {
    let (a, b) = (rows(src, table), rows(rep, table));
    let count_equal = a.len() == b.len();
    let mut keys = BTreeSet::new();
    for k in a.keys().filter(|k| !b.contains_key(k)) {
        keys.insert(("missing".to_string(), *k));
    }
    for k in b.keys().filter(|k| !a.contains_key(k)) {
        keys.insert(("extra".to_string(), *k));
    }
    let mut full = keys.clone();
    for (k, v) in &a {
        if b.get(k).is_some_and(|w| w != v) {
            full.insert(("changed".to_string(), *k));
        }
    }
    (count_equal, keys, full)
}

fn assert_levels_match_reference(config: &Path, src: &Connection, rep: &Connection, table: &str) {
    let (count_equal, keys, full) = reference(src, rep, table);
    let (code, doc) = check(config, &["--level", "count", "--table", table], None);
    let count = level(&doc, table, "count");
    assert_eq!(count["status"] == "in_sync", count_equal, "{doc}");
    assert_eq!(
        count["source_rows"].as_u64().unwrap() as usize,
        rows(src, table).len()
    );
    assert_eq!(
        count["target_rows"].as_u64().unwrap() as usize,
        rows(rep, table).len()
    );
    if !count_equal {
        // Escalated at once: the rows are named.
        let k = level(&doc, table, "keys");
        assert_eq!(k["escalated"], true, "{doc}");
        assert_eq!(listed(k), keys, "{doc}");
        assert_eq!(code, 1);
    } else {
        assert_eq!(code, 0, "{doc}");
    }
    let (code, doc) = check(config, &["--level", "keys", "--table", table], None);
    let k = level(&doc, table, "keys");
    assert_eq!(listed(k), keys, "{doc}");
    assert_eq!(k["status"] == "in_sync", keys.is_empty(), "{doc}");
    assert_eq!(code, if keys.is_empty() { 0 } else { 1 });
    let (code, doc) = check(config, &["--level", "full", "--table", table], None);
    let f = level(&doc, table, "full");
    assert_eq!(listed(f), full, "{doc}");
    assert_eq!(code, if full.is_empty() { 0 } else { 1 });
    assert_eq!(doc["format_version"], 1);
}

#[test]
fn each_level_against_the_naive_reference() {
    let scratch = dir("levels");
    let d = scratch.path().to_path_buf();
    let (src, rep) = pair(&d, 3, 500);
    // t0: a one-for-one replacement, which count cannot see and keys can.
    rep.execute_batch("DELETE FROM t0 WHERE id = 17; INSERT INTO t0 VALUES (9001, 'n17', 4.25);")
        .unwrap();
    // t1: an update, which keys cannot see and full can.
    rep.execute_batch("UPDATE t1 SET name = 'changed' WHERE id = 250;")
        .unwrap();
    // t2: a lost row, which count sees.
    rep.execute_batch("DELETE FROM t2 WHERE id = 499;").unwrap();
    let config = write_config(&d, "sqlite:src.db", ALL_LEVELS);
    for t in ["t0", "t1", "t2"] {
        assert_levels_match_reference(&config, &src, &rep, t);
    }
    // The one-for-one replacement passes count and is caught by keys.
    let (_, doc) = check(&config, &["--table", "t0"], None);
    assert_eq!(level(&doc, "t0", "count")["status"], "in_sync");
    assert_eq!(level(&doc, "t0", "keys")["status"], "drift");
    // The update passes keys and is caught by full.
    let (code, doc) = check(&config, &["--table", "t1"], None);
    assert_eq!(level(&doc, "t1", "keys")["status"], "in_sync");
    assert_eq!(level(&doc, "t1", "full")["status"], "drift");
    assert_eq!(
        level(&doc, "t1", "full")["differences"][0]["columns"],
        serde_json::json!(["name"])
    );
    assert_eq!((code, doc["status"].as_str()), (1, Some("drift")));
    // In sync once put right.
    rep.execute_batch(
        "UPDATE t1 SET name = 'n250' WHERE id = 250;
         DELETE FROM t0 WHERE id = 9001; INSERT INTO t0 VALUES (17, 'n17', 4.25);
         INSERT INTO t2 VALUES (499, 'n499', 124.75);",
    )
    .unwrap();
    let (code, doc) = check(&config, &[], None);
    assert_eq!(
        (code, doc["status"].as_str()),
        (0, Some("in_sync")),
        "{doc}"
    );
    assert_eq!(doc["tables"].as_array().unwrap().len(), 3);
}

#[test]
fn a_count_mismatch_escalates_to_keys() {
    let scratch = dir("escalate");
    let d = scratch.path().to_path_buf();
    let (_src, rep) = pair(&d, 1, 300);
    rep.execute_batch("DELETE FROM t0 WHERE id IN (3, 200);")
        .unwrap();
    let config = write_config(
        &d,
        "sqlite:src.db",
        "[tiers.cheap]\ncount = \"5m\"\n[defaults]\ntier = \"cheap\"\n",
    );
    let (code, doc) = check(&config, &[], None);
    assert_eq!(code, 1);
    let levels = doc["tables"][0]["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2, "{doc}");
    assert_eq!(levels[0]["level"], "count");
    assert_eq!(levels[1]["level"], "keys");
    assert_eq!(levels[1]["escalated"], true);
    let want: BTreeSet<(String, i64)> = [3, 200].map(|k| ("missing".to_string(), k)).into();
    assert_eq!(listed(&levels[1]), want);
    // The text report names the rows too.
    let (code, out, _) = driftsum(&["check", "--config", config.to_str().unwrap()], None);
    assert_eq!(code, 1);
    assert!(
        out.contains("missing {\"id\":200}") && out.contains("escalated"),
        "{out}"
    );
}

#[test]
fn due_runs_each_level_when_its_interval_has_passed() {
    let scratch = dir("due");
    let d = scratch.path().to_path_buf();
    pair(&d, 2, 50);
    let config = write_config(&d, "sqlite:src.db", ALL_LEVELS);
    let t0 = 2_000_000_000;
    let ran = |now: i64| -> BTreeSet<(String, String)> {
        let (code, doc) = check(&config, &["--due"], Some(now));
        assert_eq!(code, 0, "{doc}");
        doc["tables"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| {
                t["levels"].as_array().unwrap().iter().map(|l| {
                    (
                        t["table"].as_str().unwrap().to_string(),
                        l["level"].as_str().unwrap().to_string(),
                    )
                })
            })
            .collect()
    };
    let pairs = |levels: &[&str]| -> BTreeSet<(String, String)> {
        ["t0", "t1"]
            .iter()
            .flat_map(|t| levels.iter().map(|l| (t.to_string(), l.to_string())))
            .collect()
    };
    assert_eq!(ran(t0), pairs(&["count", "keys", "full"]));
    assert_eq!(ran(t0 + 299), pairs(&[]));
    assert_eq!(ran(t0 + 300), pairs(&["count"]));
    assert_eq!(ran(t0 + 900), pairs(&["count", "keys"]));
    assert_eq!(ran(t0 + 3600), pairs(&["count", "keys", "full"]));
    // --tier and --table narrow what is due.
    let (_, doc) = check(&config, &["--due", "--table", "t1"], Some(t0 + 7200));
    assert_eq!(doc["tables"].as_array().unwrap().len(), 1);
    // The history answers when each level last ran.
    let (code, h) = history(
        &config,
        &["--table", "t0", "--since", "off"],
        Some(t0 + 7200),
    );
    assert_eq!(code, 0, "{h}");
    let runs = h["runs"].as_array().unwrap();
    // t0, +300, +900 and +3600 ran some of t0's levels; +299 none.
    assert_eq!(runs.len(), 4, "{h}");
    assert!(runs.iter().all(|r| r["finished"].is_i64()));
    let fulls = runs
        .iter()
        .flat_map(|r| r["results"].as_array().unwrap())
        .filter(|r| r["level"] == "full" && r["status"] == "in_sync")
        .count();
    assert_eq!(fulls, 2);
    // Retention: with keep = "1h" the runs before then go.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}[history]\nkeep = \"1h\"\n")).unwrap();
    check(&config, &["--due"], Some(t0 + 7200 + 60));
    let (_, h) = history(&config, &["--since", "off"], Some(t0 + 7200 + 60));
    let starts: Vec<i64> = h["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["started"].as_i64().unwrap())
        .collect();
    assert!(
        !starts.is_empty() && starts.iter().all(|&s| s >= t0 + 3600),
        "{starts:?}"
    );
}

#[test]
fn bad_configs_are_clear_errors() {
    let scratch = dir("bad");
    let d = scratch.path().to_path_buf();
    pair(&d, 2, 5);
    let cases = [
        (
            "[tiers.a]\ncount = \"5m\"\n[defaults]\ntier = \"gold\"\n",
            "\"gold\"",
        ),
        (
            "[tiers.a]\ncount = \"5 minutes\"\n[defaults]\ntier = \"a\"\n",
            "\"5m\"",
        ),
        (
            "[tiers.a]\ncount = \"5m\"\n[tables.t0]\ntier = \"a\"\n",
            "t1",
        ),
        ("[defaults]\nstored_as = \"iso8601\"\n", "no tiers"),
        // Everything excluded: a check of nothing is not "in sync".
        (
            "[tiers.a]\ncount = \"5m\"\n[defaults]\ntier = \"a\"\nexclude_tables = [\"t*\"]\n",
            "nothing to check",
        ),
    ];
    for (tiers, needle) in cases {
        let config = write_config(&d, "sqlite:src.db", tiers);
        let (code, out, err) = driftsum(&["check", "--config", config.to_str().unwrap()], None);
        assert_eq!(code, 2, "{tiers}: {out} {err}");
        assert!(err.contains(needle), "{tiers}: {err}");
        assert!(out.is_empty(), "{out}");
    }
    // A password given through url_env is never printed.
    let config = d.join("env.toml");
    std::fs::write(
        &config,
        "[source]\nurl_env = \"H8_SOURCE_URL\"\n[replica]\nurl = \"sqlite:rep.db\"\n\
         [tiers.a]\ncount = \"5m\"\n[defaults]\ntier = \"a\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(["check", "--config", config.to_str().unwrap()])
        .env("H8_SOURCE_URL", "postgres://u:Sekr1tPw@127.0.0.1:1/none")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("Sekr1tPw"), "{err}");
}

#[test]
fn history_migrates_from_an_older_schema() {
    let scratch = dir("migrate");
    let d = scratch.path().to_path_buf();
    pair(&d, 1, 10);
    let config = write_config(&d, "sqlite:src.db", ALL_LEVELS);
    // A version 1 store, as an older driftsum wrote it.
    let h = Connection::open(d.join("driftsum-history.sqlite")).unwrap();
    h.execute_batch(
        "CREATE TABLE schema_version (version INTEGER NOT NULL);
         INSERT INTO schema_version VALUES (1);
         CREATE TABLE runs (id INTEGER PRIMARY KEY, started INTEGER NOT NULL, finished INTEGER);
         CREATE TABLE results (id INTEGER PRIMARY KEY,
             run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
             table_name TEXT NOT NULL, level TEXT NOT NULL, status TEXT NOT NULL,
             source_rows INTEGER, target_rows INTEGER, seconds REAL NOT NULL, error TEXT);
         INSERT INTO runs VALUES (1, 1999999000, 1999999010);
         INSERT INTO results (run_id, table_name, level, status, source_rows, target_rows, seconds)
         VALUES (1, 't0', 'full', 'in_sync', 10, 10, 0.5);",
    )
    .unwrap();
    drop(h);
    // The old full result still counts for what is due.
    let (code, doc) = check(&config, &["--due"], Some(2_000_000_000));
    assert_eq!(code, 0);
    let levels: Vec<&str> = doc["tables"][0]["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["count", "keys"]);
    let (code, h) = history(&config, &["--since", "off"], Some(2_000_000_000));
    assert_eq!(code, 0, "{h}");
    assert_eq!(h["runs"][0]["results"][0]["started"], 1_999_999_000);
    assert_eq!(h["runs"].as_array().unwrap().len(), 2);
    let v: i64 = Connection::open(d.join("driftsum-history.sqlite"))
        .unwrap()
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, driftsum::history::schema::VERSION);
}

#[test]
fn a_checker_killed_mid_run_leaves_a_readable_history() {
    let scratch = dir("kill");
    let d = scratch.path().to_path_buf();
    pair(&d, 40, 20_000);
    let config = write_config(&d, "sqlite:src.db", ALL_LEVELS);
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(["check", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hist = d.join("driftsum-history.sqlite");
    let deadline = Instant::now() + Duration::from_secs(60);
    // Kill it once it has recorded a result and is still running.
    loop {
        assert!(
            Instant::now() < deadline,
            "the check never recorded a result"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the check finished before it was killed"
        );
        let recorded = Connection::open(&hist)
            .ok()
            .and_then(|c| {
                c.query_row("SELECT count(*) FROM results", [], |r| r.get::<_, i64>(0))
                    .ok()
            })
            .unwrap_or(0);
        if recorded > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let c = Connection::open(&hist).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let (code, h) = history(&config, &["--since", "off"], None);
    assert_eq!(code, 0, "{h}");
    let run = &h["runs"][0];
    assert!(run["finished"].is_null(), "{run}");
    assert!(!run["results"].as_array().unwrap().is_empty());
    let (_, text, _) = driftsum(&["history", "--config", config.to_str().unwrap()], None);
    assert!(text.contains("UNFINISHED"), "{text}");
    // And the next check runs normally.
    let (code, doc) = check(&config, &["--level", "count", "--table", "t0"], None);
    assert_eq!((code, doc["status"].as_str()), (0, Some("in_sync")));
}

/// Two `check --due` processes on one config, started together at `now`
/// (Unix seconds); both must succeed.
pub(crate) fn two_checkers_at_once(config: &Path, now: i64) {
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_driftsum"))
            .args(["check", "--due", "--format", "json", "--config"])
            .arg(config)
            .env("DRIFTSUM_NOW", now.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for o in [&a, &b] {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn two_checkers_started_together_never_run_a_level_twice() {
    let scratch = dir("claims");
    let d = scratch.path().to_path_buf();
    pair(&d, 8, 5_000);
    let config = write_config(&d, "sqlite:src.db", ALL_LEVELS);
    two_checkers_at_once(&config, 2_000_000_000);
    let c = Connection::open(d.join("driftsum-history.sqlite")).unwrap();
    let mut q = c
        .prepare(
            "SELECT table_name, level, count(*), count(DISTINCT run_id) FROM results GROUP BY 1, 2",
        )
        .unwrap();
    let got: Vec<(String, String, i64, i64)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got.len(), 8 * 3, "{got:?}");
    assert!(got.iter().all(|g| g.2 == 1), "a level ran twice: {got:?}");
    let runs: i64 = c
        .query_row("SELECT count(DISTINCT run_id) FROM results", [], |r| {
            r.get(0)
        })
        .unwrap();
    let claims: i64 = c
        .query_row("SELECT count(*) FROM claims", [], |r| r.get(0))
        .unwrap();
    assert_eq!(claims, 0, "claims left behind");
    println!("work split over {runs} checker(s)");
}

/// Runs `check` with a writer delivering `rows` to the replica during the
/// recheck delay; the document and exit code.
fn check_while_delivering(config: &Path, rep: &Connection, rows: &[i64]) -> (i32, J) {
    check_while_running(config, &mut || {
        for id in rows {
            rep.execute("INSERT INTO t0 VALUES (?1, 'n' || ?1, ?1 / 4.0)", [id])
                .unwrap();
        }
    })
}

/// Runs `check`, calling `write` during the recheck delay (4 s); the
/// document and exit code.
fn check_while_running(config: &Path, write: &mut dyn FnMut()) -> (i32, J) {
    let child = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args([
            "check",
            "--format",
            "json",
            "--config",
            config.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The first reading takes milliseconds; the delay is 4 s.
    std::thread::sleep(Duration::from_millis(1500));
    write();
    let out = child.wait_with_output().unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap();
    (out.status.code().unwrap_or(-1), doc)
}

#[test]
fn rows_in_flight_are_told_from_drift() {
    let scratch = dir("recheck");
    let d = scratch.path().to_path_buf();
    let (_src, rep) = pair(&d, 1, 6000);
    rep.busy_timeout(Duration::from_secs(30)).unwrap();
    rep.execute_batch("DELETE FROM t0 WHERE id IN (10, 150);")
        .unwrap();
    let config = write_config(
        &d,
        "sqlite:src.db",
        "[tiers.t]\nkeys = \"5m\"\nrecheck_after = \"4s\"\n[defaults]\ntier = \"t\"\n",
    );
    let missing =
        |ids: &[i64]| -> Listed { ids.iter().map(|&k| ("missing".to_string(), k)).collect() };
    // What the level reads without a recheck.
    let (_, doc) = check(&config, &["--recheck-after", "off"], None);
    let once = level(&doc, "t0", "keys")["rows_read"].as_u64().unwrap();
    assert!(once >= 2 * 5998, "{doc}");
    // Row 10 arrives during the delay (in flight); row 150 never does (drift).
    let (code, doc) = check_while_delivering(&config, &rep, &[10]);
    let k = level(&doc, "t0", "keys");
    assert_eq!(k["rechecked"], true, "{doc}");
    assert_eq!(
        listed(&serde_json::json!({"differences": k["in_flight"]})),
        missing(&[10]),
        "{doc}"
    );
    assert_eq!(listed(k), missing(&[150]), "{doc}");
    assert_eq!((code, k["status"].as_str()), (1, Some("drift")));
    // The recheck read the differing keys' ranges, not the tables again.
    let again = k["rows_read"].as_u64().unwrap() - once;
    assert!(
        again > 0 && again < 1000,
        "recheck read {again} rows: {doc}"
    );
    // Row 150 arrives too: nothing but rows in flight, so in sync.
    let (code, doc) = check_while_delivering(&config, &rep, &[150]);
    let k = level(&doc, "t0", "keys");
    assert_eq!(
        listed(&serde_json::json!({"differences": k["in_flight"]})),
        missing(&[150]),
        "{doc}"
    );
    assert!(listed(k).is_empty(), "{doc}");
    assert_eq!((code, k["status"].as_str()), (0, Some("in_sync")));
    // The history keeps what was in flight.
    let (_, h) = history(&config, &[], None);
    // Runs: the baseline without a recheck, then the two checks above.
    let last = &h["runs"][2]["results"][0];
    assert_eq!(last["in_flight"], 1, "{h}");
    assert_eq!(last["in_flight_rows"][0]["key"]["id"], 150, "{h}");
}

fn server_case(engine: &str, url: &str, exec: &mut dyn FnMut(&str)) {
    let table = format!("ds_check_{engine}_{}", std::process::id());
    exec(&format!("DROP TABLE IF EXISTS {table}"));
    exec(&format!(
        "CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(40), amount DOUBLE PRECISION)"
    ));
    let values: Vec<String> = (1..=300)
        .map(|i| format!("({i}, 'n{i}', {})", i as f64 / 4.0))
        .collect();
    exec(&format!("INSERT INTO {table} VALUES {}", values.join(", ")));
    let scratch = dir(&table);
    let d = scratch.path().to_path_buf();
    let rep = Connection::open(d.join("rep.db")).unwrap();
    // The replica spells the table in upper case: the check finds it as
    // SQLite finds names (the rest of the SQL here is SQLite's, which
    // matches either spelling).
    let upper = table.to_uppercase();
    rep.execute_batch(&format!(
        "CREATE TABLE {upper} (id INTEGER PRIMARY KEY, name TEXT, amount REAL);
         {SERIES}300) INSERT INTO {table} SELECT value, 'n' || value, value / 4.0 FROM s;
         DELETE FROM {table} WHERE id = 7; INSERT INTO {table} VALUES (7000, 'n7', 1.75);
         UPDATE {table} SET amount = 0.5 WHERE id = 100;"
    ))
    .unwrap();
    let config = write_config(&d, url, ALL_LEVELS);
    let (code, doc) = check(&config, &["--table", &table], None);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(level(&doc, &table, "count")["status"], "in_sync", "{doc}");
    // The server's own count, equal to the rows there.
    assert_eq!(level(&doc, &table, "count")["source_rows"], 300, "{doc}");
    let keys: BTreeSet<(String, i64)> =
        [("missing".to_string(), 7), ("extra".to_string(), 7000)].into();
    assert_eq!(listed(level(&doc, &table, "keys")), keys, "{doc}");
    let mut full = keys.clone();
    full.insert(("changed".to_string(), 100));
    assert_eq!(listed(level(&doc, &table, "full")), full, "{doc}");
    rep.execute(&format!("DELETE FROM {table} WHERE id = 300"), [])
        .unwrap();
    let (code, doc) = check(&config, &["--table", &table, "--level", "count"], None);
    assert_eq!(code, 1);
    let k = level(&doc, &table, "keys");
    assert_eq!(k["escalated"], true);
    assert!(listed(k).contains(&("missing".to_string(), 300)), "{doc}");
    exec(&format!("DROP TABLE {table}"));
}

#[test]
fn postgres_to_sqlite() {
    let Some(url) = util::postgres_url() else {
        return;
    };
    let mut admin = util::Admin::<sqlx::PgConnection>::connect(&url);
    server_case("pg", &url, &mut |sql| admin.exec(sql));
}

#[test]
fn mysql_to_sqlite() {
    let Some(url) = util::mysql_url() else {
        return;
    };
    let mut admin = util::Admin::<sqlx::MySqlConnection>::connect(&url);
    server_case("my", &url, &mut |sql| admin.exec(sql));
}

/// Each server's `count` is its own `count(*)` in one snapshot: the
/// connector answers it (one that cannot answers `None`, and the level
/// scans the keys), equal to the reference count, filtered or not. `sql`
/// runs a statement, returning the count a `SELECT count(*)` gives.
fn server_count(url: &str, table: &str, sql: &mut dyn FnMut(&str) -> i64) {
    use driftsum::check::{plan::plan, ColumnChoice};
    sql(&format!("DROP TABLE IF EXISTS {table}"));
    sql(&format!(
        "CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(40))"
    ));
    let values: Vec<String> = (1..=1234).map(|i| format!("({i}, 'n{i}')")).collect();
    sql(&format!("INSERT INTO {table} VALUES {}", values.join(", ")));
    let mut src = driftsum::source::open(url).unwrap();
    let schema = src.schema(table).unwrap();
    let spec = |filter: Option<&str>| {
        let choice = ColumnChoice {
            columns: Some(Vec::new()),
            filter: filter.map(String::from),
            ..ColumnChoice::default()
        };
        plan(&schema, &schema, &choice, &Default::default())
            .unwrap()
            .source
    };
    for filter in [
        None,
        Some("id % 7 = 3"),
        Some("name LIKE 'n1%'"),
        Some("id < 0"),
    ] {
        let want = sql(&format!(
            "SELECT count(*) FROM {table}{}",
            filter.map_or(String::new(), |f| format!(" WHERE {f}"))
        ));
        assert_eq!(
            src.count(&spec(filter)).unwrap(),
            Some(want as u64),
            "{filter:?}"
        );
    }
    // A table that is not there is the scan's clear error.
    let mut gone = spec(None);
    gone.table = "ds_h4_nothere".into();
    let e = src.count(&gone).unwrap_err().to_string();
    assert!(e.contains("ds_h4_nothere"), "{e}");
    drop(src);
    sql(&format!("DROP TABLE {table}"));
}

/// [`server_count`] against one server, through a setup connection of
/// type `$conn` (a macro: the two drivers' query types differ).
macro_rules! server_count_on {
    ($conn:ty, $url:expr, $table:expr) => {{
        let mut admin: util::Admin<$conn> = util::Admin::connect($url);
        server_count($url, $table, &mut |sql| match sql.starts_with("SELECT") {
            true => {
                let q = sqlx::AssertSqlSafe(sql.to_string());
                let conn = admin.conn.as_mut().expect("open");
                let count = sqlx::query_scalar::<_, i64>(q).fetch_one(conn);
                admin.rt.block_on(count).unwrap()
            }
            false => {
                admin.exec(sql);
                0
            }
        });
    }};
}

#[test]
fn count_is_the_servers_own_count() {
    let table = format!("ds_h4_count_{}", std::process::id());
    if let Some(url) = util::postgres_url() {
        server_count_on!(sqlx::PgConnection, &url, &table);
    }
    if let Some(url) = util::mysql_url() {
        server_count_on!(sqlx::MySqlConnection, &url, &table);
    }
}

/// A replica whose integer keys are text in an untyped key column: SQLite's
/// range queries skip such keys, so the recheck must not read them by
/// range. A row delivered (as text, like the others) during the delay is in
/// flight; one never delivered is drift.
#[test]
fn a_recheck_over_keys_stored_as_text_stays_exact() {
    let scratch = dir("recheck-text-keys");
    let d = scratch.path().to_path_buf();
    let src = Connection::open(d.join("src.db")).unwrap();
    src.execute_batch(&format!(
        "CREATE TABLE t0 (id INTEGER PRIMARY KEY, name TEXT, amount REAL);
         {SERIES}3000) INSERT INTO t0 SELECT value, 'n' || value, value / 4.0 FROM s;"
    ))
    .unwrap();
    let rep = Connection::open(d.join("rep.db")).unwrap();
    rep.busy_timeout(Duration::from_secs(30)).unwrap();
    rep.execute_batch(&format!(
        "CREATE TABLE t0 (id PRIMARY KEY, name TEXT, amount REAL);
         {SERIES}3000) INSERT INTO t0 SELECT CAST(value AS TEXT), 'n' || value, value / 4.0
         FROM s WHERE value NOT IN (10, 1500);"
    ))
    .unwrap();
    let config = write_config(
        &d,
        "sqlite:src.db",
        "[tiers.t]\nkeys = \"5m\"\nfull = \"5m\"\nrecheck_after = \"4s\"\n[defaults]\ntier = \"t\"\n",
    );
    let (code, doc) = check_while_running(&config, &mut || {
        rep.execute("INSERT INTO t0 VALUES ('10', 'n10', 2.5)", [])
            .unwrap();
    });
    for l in ["keys", "full"] {
        let k = level(&doc, "t0", l);
        assert_eq!(k["rechecked"], true, "{doc}");
        let in_flight = listed(&serde_json::json!({"differences": k["in_flight"]}));
        // The keys level ran first: row 10 arrived during its delay.
        let want: Listed = match l {
            "keys" => [("missing".to_string(), 10)].into(),
            _ => Listed::new(),
        };
        assert_eq!(in_flight, want, "{l}: {doc}");
        assert_eq!(
            listed(k),
            [("missing".to_string(), 1500)].into(),
            "{l}: {doc}"
        );
    }
    assert_eq!(code, 1);
}

/// `min_age`: differing rows updated (on either side) within it are listed
/// as recent, not judged; older ones are drift. Time is injected.
#[test]
fn rows_changed_within_min_age_are_recent_not_drift() {
    let scratch = dir("min-age");
    let d = scratch.path().to_path_buf();
    let now: i64 = 1_800_000_000;
    let src = Connection::open(d.join("src.db")).unwrap();
    src.execute_batch(&format!(
        "CREATE TABLE t0 (id INTEGER PRIMARY KEY, name TEXT, updated TIMESTAMP);
         {SERIES}500) INSERT INTO t0
           SELECT value, 'n' || value, datetime({now} - 86400 * 3, 'unixepoch') FROM s;"
    ))
    .unwrap();
    drop(src);
    std::fs::copy(d.join("src.db"), d.join("rep.db")).unwrap();
    let src = Connection::open(d.join("src.db")).unwrap();
    let rep = Connection::open(d.join("rep.db")).unwrap();
    let at = |ago: i64| format!("datetime({}, 'unixepoch')", now - ago);
    // 20: changed a minute ago on the source (recent); 30: changed an hour
    // ago (drift); 40: inserted 5 s ago, not yet in the replica (recent);
    // 50: an extra replica row of a day ago (drift); 60: changed 3 days
    // ago on one side only by its name (drift: its update time is old).
    src.execute_batch(&format!(
        "UPDATE t0 SET name = 'x', updated = {} WHERE id = 20;
         UPDATE t0 SET name = 'x', updated = {} WHERE id = 30;
         INSERT INTO t0 VALUES (9040, 'n', {});
         UPDATE t0 SET name = 'x' WHERE id = 60;",
        at(60),
        at(3600),
        at(5)
    ))
    .unwrap();
    rep.execute_batch(&format!(
        "INSERT INTO t0 VALUES (9050, 'n', {});",
        at(86400)
    ))
    .unwrap();
    let tiers = "[tiers.t]\nkeys = \"5m\"\nfull = \"5m\"\nmin_age = \"10m\"\n\
                 [defaults]\ntier = \"t\"\nupdated_column = \"updated\"\n";
    let config = write_config(&d, "sqlite:src.db", tiers);
    let kinds = |pairs: &[(&str, i64)]| -> Listed {
        pairs.iter().map(|(k, i)| (k.to_string(), *i)).collect()
    };
    let recent = |l: &J| listed(&serde_json::json!({"differences": l["recent"]}));
    let (code, doc) = check(&config, &[], Some(now));
    let f = level(&doc, "t0", "full");
    assert_eq!(
        listed(f),
        kinds(&[("changed", 30), ("extra", 9050), ("changed", 60)]),
        "{doc}"
    );
    assert_eq!(
        recent(f),
        kinds(&[("changed", 20), ("missing", 9040)]),
        "{doc}"
    );
    assert_eq!(f["counts"]["changed"], 2, "{doc}");
    let k = level(&doc, "t0", "keys");
    assert_eq!(listed(k), kinds(&[("extra", 9050)]), "{doc}");
    assert_eq!(recent(k), kinds(&[("missing", 9040)]), "{doc}");
    assert_eq!(code, 1);
    // The history keeps them apart.
    let (_, h) = history(&config, &[], Some(now));
    let full = h["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["level"] == "full")
        .unwrap();
    assert_eq!(
        (full["recent"].as_i64(), full["changed"].as_i64()),
        (Some(2), Some(2)),
        "{h}"
    );
    assert_eq!(full["recent_rows"].as_array().unwrap().len(), 2, "{h}");
    // Off: everything is judged.
    let (_, doc) = check(&config, &["--min-age", "off"], Some(now));
    assert_eq!(listed(level(&doc, "t0", "full")).len(), 5, "{doc}");
    assert!(level(&doc, "t0", "full").get("recent").is_none(), "{doc}");
    // Two days: only the rows of three days ago are judged.
    let (code, doc) = check(&config, &["--min-age", "2d", "--level", "full"], Some(now));
    assert_eq!(
        listed(level(&doc, "t0", "full")),
        kinds(&[("changed", 60)]),
        "{doc}"
    );
    assert_eq!(code, 1);
    // Put right where old: what is left is recent, so in sync.
    rep.execute_batch("UPDATE t0 SET name = 'x' WHERE id = 60;")
        .unwrap();
    let (code, doc) = check(&config, &["--min-age", "2d", "--level", "full"], Some(now));
    assert_eq!(
        (code, level(&doc, "t0", "full")["status"].as_str()),
        (0, Some("in_sync")),
        "{doc}"
    );
    assert_eq!(recent(level(&doc, "t0", "full")).len(), 4, "{doc}");
    // A min_age without an update-time column is refused before reading.
    let bare = write_config(
        &d,
        "sqlite:src.db",
        "[tiers.t]\nfull = \"5m\"\n[defaults]\ntier = \"t\"\n",
    );
    // So is a min_age that is not an interval.
    for (config, min_age, needles) in [
        (&bare, "10m", &["updated_column", "t0"][..]),
        (&config, "10 minutes", &["--min-age"][..]),
    ] {
        let args = [
            "check",
            "--config",
            config.to_str().unwrap(),
            "--min-age",
            min_age,
        ];
        let (code, _, err) = driftsum(&args, Some(now));
        assert_eq!(code, 2, "{err}");
        assert!(needles.iter().all(|n| err.contains(n)), "{err}");
    }
}
