//! Row filters that mean the same on both sides: per-side SQL
//! (`--source-where`, `--target-where`, the config's `where`), the typed
//! range `--since`/`--until` on decoded values, and `--min-age`/`--max-age`
//! on an update-time column, through the real binary against SQLite files,
//! the test PostgreSQL and MariaDB servers and an agent; with a property
//! test against a naive reference over timestamps in mixed storage forms.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use rusqlite::{params, Connection};
use serde_json::Value;

use crate::util::{self, run, Run, Scratch};

/// `diff --format json` of `src` and `tgt` with `extra`; the report, checked
/// against the published schema.
fn diff(src: &str, tgt: &str, extra: &[&str]) -> (Run, Value) {
    let mut args = vec!["diff", "--format", "json", "--source", src, "--target", tgt];
    args.extend_from_slice(extra);
    let r = run(&args);
    let doc: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", r.stdout, r.stderr));
    let errors = crate::json_contract::violations(&doc);
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
    (r, doc)
}

fn sqlite(path: &Path, sql: &str) -> String {
    Connection::open(path)
        .expect("open")
        .execute_batch(sql)
        .unwrap_or_else(|e| panic!("{e}\n{sql}"));
    format!("sqlite:{}", path.display())
}

fn counts(doc: &Value) -> (u64, u64, u64) {
    let c = &doc["tables"][0]["counts"];
    let n = |k: &str| c[k].as_u64().expect("count");
    (n("missing"), n("extra"), n("changed"))
}

/// [`diff`] that must find the sides in sync (exit 0) having read
/// `rows_read` rows on each side (source, target); the report.
fn in_sync(src: &str, tgt: &str, extra: &[&str], rows_read: (u64, u64)) -> Value {
    let (r, doc) = diff(src, tgt, extra);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(rows(&doc), rows_read);
    doc
}

fn rows(doc: &Value) -> (u64, u64) {
    let t = &doc["tables"][0];
    (
        t["source_rows"].as_u64().expect("source_rows"),
        t["target_rows"].as_u64().expect("target_rows"),
    )
}

/// Orders on 2024-01-01 from 08:00 to 10:59, one every 10 minutes: the
/// source writes ISO text with a space, the replica with a `T`.
fn orders(dir: &Scratch) -> (String, String) {
    let make = |sep: &str| {
        let mut sql = String::from(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, placed_at TIMESTAMP, total INTEGER);\n",
        );
        for i in 0..18 {
            sql.push_str(&format!(
                "INSERT INTO orders VALUES ({i}, '2024-01-01{sep}{:02}:{:02}:00', {});\n",
                8 + i / 6,
                (i % 6) * 10,
                i * 10
            ));
        }
        sql
    };
    (
        sqlite(&dir.join("src.db"), &make(" ")),
        sqlite(&dir.join("rep.db"), &make("T")),
    )
}

/// The case: `--where` compares text with text, so a replica
/// holding `T` gives false extra rows; `--since` compares instants and is
/// in sync, while a real change inside the range is still found and one
/// outside it is not.
#[test]
fn since_gives_no_false_drift_where_text_where_did() {
    let dir = Scratch::new("filters-issue");
    let (src, rep) = orders(&dir);
    let (r, doc) = diff(
        &src,
        &rep,
        &["--where", "placed_at >= '2024-01-01 09:00:00'"],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    let (missing, extra, changed) = counts(&doc);
    assert_eq!((missing, changed), (0, 0));
    assert_eq!(
        extra, 6,
        "the 08:xx replica rows sort after '2024-01-01 09'"
    );

    let doc = in_sync(
        &src,
        &rep,
        &["--since", "placed_at=2024-01-01T09:00:00"],
        (12, 12),
    );
    let f = &doc["tables"][0]["filters"];
    assert_eq!(f["source"], "placed_at >= 2024-01-01T09:00:00", "{doc:#}");
    assert_eq!(f["source"], f["target"]);

    // Half-open: since inclusive, until exclusive.
    in_sync(
        &src,
        &rep,
        &[
            "--since",
            "placed_at=2024-01-01 09:00:00",
            "--until",
            "placed_at=2024-01-01T10:00:00",
        ],
        (6, 6),
    );

    let conn = Connection::open(dir.join("rep.db")).expect("open");
    conn.execute("UPDATE orders SET total = -1 WHERE id IN (3, 9)", [])
        .expect("update");
    let (r, doc) = diff(&src, &rep, &["--since", "placed_at=2024-01-01T09:00:00"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(counts(&doc), (0, 0, 1), "only id 9 is in the range");
    assert_eq!(doc["tables"][0]["differences"][0]["key"]["id"], 9);

    // The text report says a filter applied.
    let t = run(&[
        "diff",
        "--source",
        &src,
        "--target",
        &rep,
        "--until",
        "placed_at=2024-01-01T09:00:00",
    ]);
    assert_eq!(t.code, 1, "{}", t.stdout);
    assert!(t.stdout.contains("filtered"), "{}", t.stdout);
    assert!(
        t.stdout
            .contains("filter   both sides: placed_at < 2024-01-01T09:00:00"),
        "{}",
        t.stdout
    );
}

/// A column the config renames is filtered by its source name on both
/// sides, from the command line and from the config's `since`/`until`;
/// the config's per-side SQL applies to its side only.
/// A replica whose ids are stored as text (so SQL gives its rows out of key
/// order, and its drifted ranges are read by one scan of it) under a range
/// filter: the exact drift among the rows the range admits, and its rows
/// read counting only those (a broken first pass, the sorted rescan and
/// the fetch), never the rows the range leaves out.
#[test]
fn an_unordered_replica_under_a_range_counts_the_rows_it_admits() {
    let dir = Scratch::new("filters-unordered");
    let mut src = String::from("CREATE TABLE t (id INTEGER PRIMARY KEY, w INTEGER, v TEXT);\n");
    let mut rep = String::from("CREATE TABLE t (id PRIMARY KEY, w INTEGER, v TEXT);\n");
    for i in 0..2000i64 {
        src.push_str(&format!("INSERT INTO t VALUES ({i}, {}, 'v{i}');\n", i * 3));
        // Written in a shuffled order, as text.
        let j = i * 7919 % 2000;
        let v = match j {
            1500 | 1777 => "'drift'".to_string(),
            _ => format!("'v{j}'"),
        };
        if j != 1234 && j != 10 {
            rep.push_str(&format!("INSERT INTO t VALUES ('{j}', {}, {v});\n", j * 3));
        }
    }
    let (src, rep) = (
        sqlite(&dir.join("src.db"), &src),
        sqlite(&dir.join("rep.db"), &rep),
    );
    // Ids 500 and up: '1000' sorts before '500'.
    let (r, doc) = diff(&src, &rep, &["--since", "w=1500"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    // Row 10 is outside the range: not missing.
    assert_eq!(counts(&doc), (1, 0, 2), "{doc:#}");
    let admitted = 1499;
    assert_eq!(rows(&doc), (1500, admitted));
    let read = doc["tables"][0]["stats"]["target_rows_read"]
        .as_u64()
        .expect("rows read");
    assert!(
        (2 * admitted..=3 * admitted).contains(&read),
        "{read} rows read for {admitted} admitted\n{doc:#}"
    );
}

#[test]
fn renamed_columns_and_config_filters() {
    let dir = Scratch::new("filters-config");
    let src = sqlite(
        &dir.join("src.db"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TIMESTAMPTZ, v TEXT);
         INSERT INTO t VALUES (1, '2024-05-01T00:00:00Z', 'x'), (2, '2024-05-02T00:00:00Z', 'y'),
                              (3, '2024-05-03T00:00:00Z', 'z');",
    );
    // The replica keeps `a` as Unix seconds in a column named z, and row 1
    // differs.
    let rep = sqlite(
        &dir.join("rep.db"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, z INTEGER, v TEXT, gone INTEGER);
         INSERT INTO t VALUES (1, 1714521600, 'DIFFERENT', 0), (2, 1714608000, 'y', 0),
                              (3, 1714694400, 'z', 0), (4, 1714780800, 'w', 1);",
    );
    let config = dir.join("driftsum.toml");
    let write = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "[tables.t]\nexclude_columns = [\"gone\"]\n{extra}\n[tables.t.columns.a]\nreplica = \"z\"\n"
            ),
        )
        .expect("config")
    };
    let cfg = config.to_str().expect("utf-8");

    write("");
    let (r, doc) = diff(&src, &rep, &["--config", cfg]);
    assert_eq!(r.code, 1);
    assert_eq!(counts(&doc), (0, 1, 1));

    let doc = in_sync(
        &src,
        &rep,
        &[
            "--config",
            cfg,
            "--since",
            "a=2024-05-02",
            "--until",
            "a=2024-05-04",
        ],
        (2, 2),
    );
    assert_eq!(
        doc["tables"][0]["filters"]["target"],
        "z >= 2024-05-02T00:00:00Z AND z < 2024-05-04T00:00:00Z"
    );

    write("since = \"a=2024-05-02T00:00:00Z\"\nuntil = \"a=2024-05-04\"");
    in_sync(&src, &rep, &["--config", cfg], (2, 2));

    // Per-side SQL: the replica's extra marker column exists only there.
    write("where = \"id >= 2\"\ntarget_where = \"gone = 0\"");
    let doc = in_sync(&src, &rep, &["--config", cfg], (2, 2));
    let f = &doc["tables"][0]["filters"];
    assert_eq!(f["source"], "id >= 2");
    assert_eq!(f["target"], "(id >= 2) AND (gone = 0)");

    // From the command line too, ANDed with --where.
    write("");
    in_sync(
        &src,
        &rep,
        &[
            "--config",
            cfg,
            "--where",
            "id <> 1",
            "--target-where",
            "gone = 0",
        ],
        (2, 2),
    );
}

/// Bad filters stop with exit 2 and a message naming the problem and the
/// fix.
#[test]
fn bad_filters_are_refused_clearly() {
    let dir = Scratch::new("filters-bad");
    let (src, rep) = orders(&dir);
    let cases: &[(&[&str], &str)] = &[
        (
            &["--since", "placed=2024-01-01"],
            "\"placed\", which the source table",
        ),
        (
            &["--since", "placed_at=yesterday"],
            "is not a value of the column's type (timestamp)",
        ),
        (
            &["--until", "total=12x"],
            "is not a value of the column's type (integer)",
        ),
        (&["--since", "placed_at"], "--since takes COL=VALUE"),
        (&["--until", "=5"], "--until takes COL=VALUE"),
        (&["--min-age", "5m"], "--age-column"),
        (
            &["--min-age", "5m", "--age-column", "total"],
            "not a point in time",
        ),
        (
            &["--max-age", "soon", "--age-column", "placed_at"],
            "not an interval",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["diff", "--source", &src, "--target", &rep];
        all.extend_from_slice(args);
        let r = run(&all);
        assert_eq!(r.code, 2, "{args:?}: {}\n{}", r.stdout, r.stderr);
        let said = format!("{}{}", r.stdout, r.stderr);
        assert!(said.contains(needle), "{args:?}: {said}");
    }
    let bad_config = dir.join("bad.toml");
    std::fs::write(&bad_config, "[tables.orders]\nsince = \"placed_at\"\n").expect("write");
    let r = run(&[
        "diff",
        "--source",
        &src,
        "--target",
        &rep,
        "--config",
        bad_config.to_str().expect("utf-8"),
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("since takes \"COL=VALUE\""),
        "{}",
        r.stderr
    );
}

/// Rows updated in the last `--min-age` (still being replicated) and rows
/// older than `--max-age` are left out on both sides.
#[test]
fn ages_leave_out_rows_in_flight_and_old_rows() {
    let dir = Scratch::new("filters-age");
    let table = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, updated_at TIMESTAMPTZ);";
    // One instant for both files: each file's own 'now' could fall either
    // side of a second's turn.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let settled = now - 2 * 3600;
    let iso = |secs: u64| format!("strftime('%Y-%m-%dT%H:%M:%SZ', {secs}, 'unixepoch')");
    let src = sqlite(
        &dir.join("src.db"),
        &format!(
            "{table}
             INSERT INTO t VALUES (1, 'old', '2020-01-01T00:00:00Z'),
                                  (2, 'settled', {}),
                                  (3, 'fresh', {});",
            iso(settled),
            iso(now)
        ),
    );
    // The replica has not caught up with row 3 and lost an old change to
    // row 1; it stores instants as Unix seconds.
    let rep = sqlite(
        &dir.join("rep.db"),
        &format!(
            "{table}
             INSERT INTO t VALUES (1, 'OLD', 1577836800),
                                  (2, 'settled', {settled});"
        ),
    );
    let (r, doc) = diff(&src, &rep, &[]);
    assert_eq!(r.code, 1);
    assert_eq!(counts(&doc), (1, 0, 1));

    let (r, doc) = diff(
        &src,
        &rep,
        &["--min-age", "10m", "--age-column", "updated_at"],
    );
    assert_eq!(r.code, 1);
    assert_eq!(counts(&doc), (0, 0, 1), "row 3 is in flight, row 1 differs");

    let doc = in_sync(
        &src,
        &rep,
        &[
            "--min-age",
            "10m",
            "--max-age",
            "30d",
            "--age-column",
            "updated_at",
        ],
        (1, 1),
    );
    assert!(doc["tables"][0]["filters"]["source"]
        .as_str()
        .is_some_and(|f| f.contains("updated_at >= ") && f.contains("updated_at < ")));

    // The config's updated_column and ages do the same.
    let config = dir.join("age.toml");
    std::fs::write(
        &config,
        "[tables.t]\nupdated_column = \"updated_at\"\nmin_age = \"10m\"\nmax_age = \"30d\"\n",
    )
    .expect("config");
    let (r, _) = diff(&src, &rep, &["--config", config.to_str().expect("utf-8")]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

/// A typed range through an agent: the agent applies it itself, with no
/// `--allow-where`, and the result equals the one in process.
#[test]
fn ranges_go_through_agents() {
    use driftsum::agent::{ServeOptions, Server};
    let dir = Scratch::new("filters-agent");
    let (src, rep) = orders(&dir);
    let token = "h3-filter-token-0123456789";
    let handle = Server::bind("127.0.0.1:0", ServeOptions::new(&rep, token))
        .expect("bind")
        .spawn()
        .expect("spawn");
    let token_file = dir.join("token");
    std::fs::write(&token_file, token).expect("token");
    let agent = format!("driftsum://{}", handle.addr());
    let tf = token_file.to_str().expect("utf-8");
    in_sync(
        &src,
        &agent,
        &[
            "--token-file",
            tf,
            "--since",
            "placed_at=2024-01-01T09:00:00",
        ],
        (12, 12),
    );
    // Without the range the agent's rows differ in nothing either, but a
    // text --where is refused by an agent not allowing it.
    let r = run(&[
        "diff",
        "--source",
        &src,
        "--target",
        &agent,
        "--token-file",
        tf,
        "--where",
        "id > 3",
    ]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    Connection::open(dir.join("rep.db"))
        .expect("open")
        .execute("UPDATE orders SET total = -1 WHERE id IN (3, 9)", [])
        .expect("update");
    let (r, doc) = diff(
        &src,
        &agent,
        &[
            "--token-file",
            tf,
            "--since",
            "placed_at=2024-01-01T09:00:00",
        ],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(counts(&doc), (0, 0, 1));
}

/// Drops a server table at the end, also when the test panics.
struct ServerTable<'a> {
    url: &'a str,
    name: String,
}

impl Drop for ServerTable<'_> {
    fn drop(&mut self) {
        let q = match self.url.starts_with("mysql") {
            true => format!("DROP TABLE IF EXISTS `{}`", self.name),
            false => format!("DROP TABLE IF EXISTS \"{}\"", self.name),
        };
        let url = self.url.to_string();
        let _ = std::panic::catch_unwind(move || util::server_exec(&url, &q));
    }
}

/// A server source and a SQLite replica holding its instants in mixed
/// forms (ISO with `T`, with a space, Unix seconds): `--since`/`--until`
/// keep the same rows on both sides, and per-side SQL lets each side use
/// its own dialect.
fn server_to_sqlite(url: &str, create: &str, stamp_type: &str) {
    let name = util::unique("h3_orders");
    let _table = ServerTable {
        url,
        name: name.clone(),
    };
    let mut sql = create.replace("{t}", &name).replace("{ts}", stamp_type);
    let dir = Scratch::new("filters-server");
    let mut rep = format!(
        "CREATE TABLE \"{name}\" (id INTEGER PRIMARY KEY, placed_at TIMESTAMP, total INTEGER);\n"
    );
    for i in 0..18i64 {
        let (h, m) = (8 + i / 6, (i % 6) * 10);
        sql.push_str(&format!(
            "INSERT INTO {q}{name}{q} VALUES ({i}, '2024-01-01 {h:02}:{m:02}:00', {});\n",
            i * 10,
            q = if url.starts_with("mysql") { "`" } else { "\"" }
        ));
        let stored = match i % 3 {
            0 => format!("'2024-01-01T{h:02}:{m:02}:00'"),
            1 => format!("'2024-01-01 {h:02}:{m:02}:00'"),
            _ => (1_704_067_200 + h * 3600 + m * 60).to_string(),
        };
        rep.push_str(&format!(
            "INSERT INTO \"{name}\" VALUES ({i}, {stored}, {});\n",
            i * 10
        ));
    }
    util::server_exec(url, &sql);
    let rep = sqlite(&dir.join("rep.db"), &rep);
    let table = ["--table", &name];
    in_sync(
        url,
        &rep,
        &[
            table[0],
            table[1],
            "--since",
            "placed_at=2024-01-01T09:00:00",
            "--until",
            "placed_at=2024-01-01 10:30:00",
        ],
        (9, 9),
    );

    // The same rows by SQL, each side in its own engine's terms.
    let source_where = match url.starts_with("mysql") {
        true => {
            "placed_at >= TIMESTAMP '2024-01-01 09:00:00' AND placed_at < '2024-01-01 10:30:00'"
        }
        false => {
            "placed_at >= '2024-01-01 09:00:00'::timestamp AND placed_at < '2024-01-01 10:30:00'"
        }
    };
    in_sync(
        url,
        &rep,
        &[
            table[0],
            table[1],
            "--source-where",
            source_where,
            "--target-where",
            "id BETWEEN 6 AND 14",
        ],
        (9, 9),
    );
}

#[test]
fn postgres_to_sqlite() {
    let Some(url) = util::postgres_url() else {
        return util::skip("DRIFTSUM_TEST_POSTGRES is not set");
    };
    server_to_sqlite(
        &url,
        "CREATE TABLE \"{t}\" (id bigint PRIMARY KEY, placed_at {ts}, total integer);\n",
        "timestamp",
    );
}

#[test]
fn mariadb_to_sqlite() {
    let Some(url) = util::mysql_url() else {
        return util::skip("DRIFTSUM_TEST_MYSQL is not set");
    };
    server_to_sqlite(
        &url,
        "CREATE TABLE `{t}` (id BIGINT PRIMARY KEY, placed_at {ts}, total INT);\n",
        "DATETIME",
    );
}

/// The forms a replica may hold one instant in (stored_as = "auto").
fn stored(secs: i64, form: u8) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    let iso = driftsum::core::time::format_timestamp(secs as i128 * 1_000_000);
    match form {
        0 => Sql::Text(iso.clone()),
        1 => Sql::Text(iso.replace('T', " ")),
        2 => Sql::Text(format!("{iso}Z")),
        3 => Sql::Text(format!("{iso}+00:00")),
        _ => Sql::Integer(secs),
    }
}

/// One row of the model: id, instant (Unix seconds), a value.
type Row = (i64, Option<i64>, u8);

fn write(path: &Path, rows: &[(Row, u8)]) -> String {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, at TIMESTAMPTZ, v INTEGER)")
        .expect("create");
    let tx = conn.unchecked_transaction().expect("tx");
    for ((id, at, v), form) in rows {
        let at = at.map_or(rusqlite::types::Value::Null, |s| stored(s, *form));
        tx.execute("INSERT INTO t VALUES (?1, ?2, ?3)", params![id, at, v])
            .expect("insert");
    }
    tx.commit().expect("commit");
    format!("sqlite:{}", path.display())
}

/// The naive reference: both tables filtered by `since <= at < until`,
/// then compared by key.
fn reference(src: &[Row], rep: &[Row], since: Option<i64>, until: Option<i64>) -> (u64, u64, u64) {
    // No bound, no filter: NULL rows too are compared.
    let open = since.is_none() && until.is_none();
    let keep = |r: &&Row| {
        open || r
            .1
            .is_some_and(|at| since.is_none_or(|s| at >= s) && until.is_none_or(|u| at < u))
    };
    let a: std::collections::BTreeMap<i64, &Row> =
        src.iter().filter(keep).map(|r| (r.0, r)).collect();
    let b: std::collections::BTreeMap<i64, &Row> =
        rep.iter().filter(keep).map(|r| (r.0, r)).collect();
    let missing = a.keys().filter(|k| !b.contains_key(k)).count() as u64;
    let extra = b.keys().filter(|k| !a.contains_key(k)).count() as u64;
    let changed = a
        .iter()
        .filter(|(k, r)| b.get(k).is_some_and(|s| s != *r))
        .count() as u64;
    (missing, extra, changed)
}

/// Random tables whose instants the replica stores in random forms, random
/// drift (missing, extra, changed value, moved instant) and random bounds
/// written in random forms: the binary's counts equal the reference's.
#[test]
fn ranges_match_the_naive_reference() {
    let base = 1_704_067_200i64; // 2024-01-01T00:00:00Z
    let instant = prop_oneof![
        1 => Just(None),
        8 => (0i64..200).prop_map(move |m| Some(base + m * 60)),
    ];
    let row = (instant, 0u8..4, 0u8..5, 0u8..8);
    let bound = proptest::option::of((0i64..200, 0u8..4));
    let strategy = (proptest::collection::vec(row, 0..40), bound.clone(), bound);
    let mut runner = TestRunner::new(PtConfig {
        cases: 24,
        failure_persistence: None,
        ..PtConfig::default()
    });
    let dir = Scratch::new("filters-prop");
    let case = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&strategy, |(model, since, until)| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut src: Vec<Row> = Vec::new();
            let mut rep: Vec<(Row, u8)> = Vec::new();
            for (id, (at, v, form, drift)) in model.into_iter().enumerate() {
                let id = id as i64;
                let r = (id, at, v);
                match drift {
                    0 => src.push(r),         // missing from the replica
                    1 => rep.push((r, form)), // extra in the replica
                    2 => {
                        src.push(r);
                        rep.push(((id, at, v + 10), form)); // changed value
                    }
                    3 => {
                        src.push(r);
                        rep.push(((id, at.map(|a| a + 3600), v), form)); // moved instant
                    }
                    _ => {
                        src.push(r);
                        rep.push((r, form));
                    }
                }
            }
            let rep_rows: Vec<Row> = rep.iter().map(|(r, _)| *r).collect();
            let sp = write(
                &dir.join(&format!("s{n}.db")),
                &src.iter().map(|r| (*r, 0)).collect::<Vec<_>>(),
            );
            let rp = write(&dir.join(&format!("r{n}.db")), &rep);
            let text = |(m, form): (i64, u8)| {
                let iso =
                    driftsum::core::time::format_timestamp((base + m * 60) as i128 * 1_000_000);
                match form {
                    0 => iso,
                    1 => iso.replace('T', " "),
                    2 => format!("{iso}Z"),
                    _ => format!(
                        "{}+01:00",
                        driftsum::core::time::format_timestamp(
                            (base + m * 60 + 3600) as i128 * 1_000_000
                        )
                    ),
                }
            };
            let mut args: Vec<String> = Vec::new();
            if let Some(s) = since {
                args.extend(["--since".into(), format!("at={}", text(s))]);
            }
            if let Some(u) = until {
                args.extend(["--until".into(), format!("at={}", text(u))]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (r, doc) = diff(&sp, &rp, &args);
            let expected = reference(
                &src,
                &rep_rows,
                since.map(|(m, _)| base + m * 60),
                until.map(|(m, _)| base + m * 60),
            );
            prop_assert_eq!(counts(&doc), expected, "{:?} {}", args, r.stderr);
            prop_assert_eq!(r.code, if expected == (0, 0, 0) { 0 } else { 1 });
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
