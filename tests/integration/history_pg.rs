//! The run history in PostgreSQL (`[history] url = "postgres://…"`), end to
//! end: the real binary on real SQLite sides with its history in a schema
//! of its own on the real server (`DRIFTSUM_TEST_POSTGRES`); two `check
//! --due` and two `watch` processes sharing it; `driftsum history` read
//! back from it as from an SQLite history; retention of old incidents on
//! both stores; claims that expire; bad history URLs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use driftsum::history::incident::{Event, Kind, Outcome, Sighting};
use driftsum::history::{claim::Claim, History, Location};
use rusqlite::Connection;
use serde_json::Value as J;

use crate::util::{self, Admin, Scratch};

/// A schema of its own on the test server for one history, dropped (with
/// everything in it) at the end, also when the test panics.
struct PgHistory {
    admin: Admin<sqlx::PgConnection>,
    url: String,
    schema: String,
}

impl PgHistory {
    /// A history on the test server (`DRIFTSUM_TEST_POSTGRES`), or `None`
    /// after saying the test is skipped.
    fn on_test_server() -> Option<PgHistory> {
        util::postgres_url().map(|url| PgHistory::new(&url))
    }

    fn new(url: &str) -> PgHistory {
        let schema = util::unique("h1_hist");
        let mut admin = Admin::connect(url);
        admin.exec(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        PgHistory {
            admin,
            url: url.to_string(),
            schema,
        }
    }

    /// The `[history]` section naming it.
    fn section(&self) -> String {
        format!(
            "[history]\nurl = \"{}\"\nschema = \"{}\"\n",
            self.url, self.schema
        )
    }

    fn location(&self) -> Location {
        Location::Postgres {
            url: self.url.clone(),
            schema: self.schema.clone(),
        }
    }

    /// The first column of the first row of `sql` (`$S` stands for the
    /// schema) as an integer.
    fn scalar(&mut self, sql: &str) -> i64 {
        let sql = sql.replace("$S", &self.schema);
        let conn = self.admin.conn.as_mut().expect("open");
        self.admin
            .rt
            .block_on(
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.clone())).fetch_one(conn),
            )
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Rows of three columns: text, text, integer.
    fn rows(&mut self, sql: &str) -> Vec<(String, String, i64)> {
        let sql = sql.replace("$S", &self.schema);
        let conn = self.admin.conn.as_mut().expect("open");
        self.admin
            .rt
            .block_on(
                sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql.clone()))
                    .fetch_all(conn),
            )
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for PgHistory {
    fn drop(&mut self) {
        let _ = self
            .admin
            .try_exec(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}

/// A scratch folder `tag` with identical SQLite sides in it, as [`pair`]
/// makes them.
fn sides(tag: &str, tables: usize, rows: i64) -> Scratch {
    let d = Scratch::new(tag);
    pair(d.path(), tables, rows);
    d
}

/// Identical SQLite sides with `tables` tables `t0`, `t1`, … of `rows` rows.
fn pair(d: &Path, tables: usize, rows: i64) {
    let src = Connection::open(d.join("src.db")).unwrap();
    for t in 0..tables {
        src.execute_batch(&format!(
            "CREATE TABLE t{t} (id INTEGER PRIMARY KEY, name TEXT);
             WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < {rows})
             INSERT INTO t{t} SELECT v, 'n' || v FROM s;"
        ))
        .unwrap();
    }
    drop(src);
    std::fs::copy(d.join("src.db"), d.join("rep.db")).unwrap();
}

fn config(d: &Path, body: &str) -> PathBuf {
    let path = d.join("driftsum.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"sqlite:src.db\"\n[replica]\nurl = \"sqlite:rep.db\"\n\
             [defaults]\ntier = \"all\"\n{body}"
        ),
    )
    .unwrap();
    path
}

const ALL_LEVELS: &str = "[tiers.all]\ncount = \"5m\"\nkeys = \"15m\"\nfull = \"1h\"\n";

fn driftsum(args: &[&str], now: Option<i64>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftsum"));
    cmd.args(args).env_remove("DRIFTSUM_LOG");
    match now {
        Some(t) => cmd.env("DRIFTSUM_NOW", t.to_string()),
        None => cmd.env_remove("DRIFTSUM_NOW"),
    };
    cmd.output().expect("run driftsum")
}

/// `driftsum COMMAND --config CFG` with extra arguments, at `now`.
fn with_config(command: &str, cfg: &Path, extra: &[&str], now: Option<i64>) -> Output {
    let mut args = vec![command, "--config", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    driftsum(&args, now)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const NOW: i64 = 2_000_000_000;

#[test]
fn two_checkers_sharing_a_postgres_history_never_run_a_level_twice() {
    let Some(mut pg) = PgHistory::on_test_server() else {
        return;
    };
    let d = sides("h1-pg-claims", 8, 5_000);
    let cfg = config(d.path(), &format!("{ALL_LEVELS}{}", pg.section()));
    // Both start on a schema that does not exist yet: creating it and
    // migrating it is raced too.
    crate::check::two_checkers_at_once(&cfg, NOW);
    let got =
        pg.rows("SELECT table_name, level, count(*) FROM $S.results GROUP BY 1, 2 ORDER BY 1, 2");
    assert_eq!(got.len(), 8 * 3, "{got:?}");
    assert!(got.iter().all(|g| g.2 == 1), "a level ran twice: {got:?}");
    assert_eq!(
        pg.scalar("SELECT count(*) FROM $S.claims"),
        0,
        "claims left"
    );
    assert_eq!(
        pg.scalar("SELECT count(*) FROM $S.runs WHERE finished IS NULL"),
        0
    );
    let runs = pg.scalar("SELECT count(DISTINCT run_id) FROM $S.results");
    println!("work split over {runs} checker(s)");
    // A second round at the same time finds nothing due.
    let again = with_config("check", &cfg, &["--due", "--format", "json"], Some(NOW));
    let doc: J = serde_json::from_slice(&again.stdout).unwrap();
    let ran: usize = doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["levels"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(ran, 0, "{doc}");
}

/// A running `driftsum watch`, killed if the test ends without stopping it.
struct Watcher(Child);

impl Watcher {
    fn start(config: &Path) -> Watcher {
        let child = Command::new(env!("CARGO_BIN_EXE_driftsum"))
            .args(["watch", "--concurrency", "2", "--listen", "off", "--config"])
            .arg(config)
            .env_remove("DRIFTSUM_NOW")
            .env_remove("DRIFTSUM_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Watcher(child)
    }

    /// Stops it with SIGTERM; its exit code and log.
    fn stop(mut self) -> (Option<i32>, String) {
        // SAFETY: signals our own child.
        let rc = unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
        let until = Instant::now() + Duration::from_secs(30);
        while self.0.try_wait().unwrap().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let out = std::mem::replace(&mut self.0, dummy())
            .wait_with_output()
            .unwrap();
        (out.status.code(), text(&out.stderr))
    }
}

/// A finished child to leave in a stopped watcher's place.
fn dummy() -> Child {
    let mut c = Command::new("true").spawn().unwrap();
    let _ = c.wait();
    c
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn two_watchers_sharing_a_postgres_history_never_run_a_level_twice_at_once() {
    let Some(mut pg) = PgHistory::on_test_server() else {
        return;
    };
    let d = sides("h1-pg-watch", 3, 50);
    let cfg = config(
        d.path(),
        &format!(
            "[tiers.all]\ncount = \"2s\"\nkeys = \"2s\"\n{}",
            pg.section()
        ),
    );
    let (a, b) = (Watcher::start(&cfg), Watcher::start(&cfg));
    std::thread::sleep(Duration::from_secs(8));
    let ((ca, la), (cb, lb)) = (a.stop(), b.stop());
    assert_eq!(ca, Some(0), "{la}");
    assert_eq!(cb, Some(0), "{lb}");
    let mut rows = pg.rows(
        "SELECT table_name, level, started FROM $S.results ORDER BY table_name, level, started",
    );
    assert!(rows.len() >= 6, "{rows:?}\n{la}\n{lb}");
    // No two results of one (table, level) started within its interval of
    // each other: each was due once, and run once.
    rows.dedup_by(|b, a| {
        if a.0 == b.0 && a.1 == b.1 {
            assert!(b.2 - a.2 >= 2, "run twice: {a:?} {b:?}");
        }
        false
    });
    let hosts = pg.scalar("SELECT count(DISTINCT pid) FROM $S.runs");
    assert_eq!(
        pg.scalar("SELECT count(*) FROM $S.claims"),
        0,
        "claims left"
    );
    println!("{} results from {hosts} watcher(s)", rows.len());
}

/// `driftsum history --format json` of a config, its ids and durations
/// left out (they differ between any two runs).
fn history_json(cfg: &Path) -> J {
    let out = with_config(
        "history",
        cfg,
        &["--since", "off", "--format", "json"],
        Some(NOW + 10),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut doc: J = serde_json::from_slice(&out.stdout).unwrap();
    for run in doc["runs"].as_array_mut().unwrap() {
        run.as_object_mut().unwrap().remove("finished");
        for r in run["results"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("seconds");
        }
    }
    doc
}

#[test]
fn a_postgres_history_answers_history_like_an_sqlite_one() {
    let Some(mut pg) = PgHistory::on_test_server() else {
        return;
    };
    let d = sides("h1-pg-history", 2, 1_500);
    // Drift of every kind in t1: missing, extra and changed rows, more
    // differences than one statement stores.
    Connection::open(d.join("rep.db"))
        .unwrap()
        .execute_batch(
            "DELETE FROM t1 WHERE id IN (3, 4) OR id > 700;
             INSERT INTO t1 VALUES (9000, 'x');
             UPDATE t1 SET name = 'changed' WHERE id = 50;",
        )
        .unwrap();
    let lite = config(d.path(), ALL_LEVELS);
    let sub = d.join("pg");
    std::fs::create_dir(&sub).unwrap();
    for f in ["src.db", "rep.db"] {
        std::fs::copy(d.join(f), sub.join(f)).unwrap();
    }
    let on_pg = config(&sub, &format!("{ALL_LEVELS}{}", pg.section()));
    // Nothing there yet: `history` says so, and creates nothing.
    let out = with_config("history", &on_pg, &[], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no run history"),
        "{}",
        text(&out.stderr)
    );
    let schema = pg.schema.clone();
    assert_eq!(
        pg.scalar(&format!(
            "SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'"
        )),
        0,
        "history created a schema"
    );
    for (cfg, now) in [
        (&lite, NOW),
        (&on_pg, NOW),
        (&lite, NOW + 1),
        (&on_pg, NOW + 1),
    ] {
        let out = with_config("check", cfg, &["--format", "json"], Some(now));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    }
    let (a, b) = (history_json(&lite), history_json(&on_pg));
    assert_eq!(a["runs"].as_array().unwrap().len(), 2, "{a}");
    let t1_full = &a["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == "t1" && r["level"] == "full")
        .cloned()
        .unwrap();
    assert_eq!(
        (&t1_full["missing"], &t1_full["extra"], &t1_full["changed"]),
        (&J::from(802), &J::from(1), &J::from(1)),
        "{t1_full}"
    );
    assert_eq!(t1_full["differences"].as_array().unwrap().len(), 804);
    assert_eq!(a, b, "the two stores answer differently");
    // And in text.
    let t = |cfg: &Path| {
        let out = with_config(
            "history",
            cfg,
            &["--since", "off", "--table", "t1"],
            Some(NOW + 10),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let strip = |s: String| -> String {
        // Durations (a last word such as `0.01s`) differ; nothing else.
        s.lines()
            .map(|l| match l.rsplit_once(' ') {
                Some((head, d))
                    if d.strip_suffix('s')
                        .is_some_and(|n| n.parse::<f64>().is_ok()) =>
                {
                    head.trim_end().to_string()
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(strip(t(&lite)).contains("802 missing, 1 extra, 1 changed"));
    assert_eq!(strip(t(&lite)), strip(t(&on_pg)));
}

/// Old and new incidents in a store, `keep = "1d"` in its config, one
/// check at `NOW`: what is left.
fn prune_incidents(location: Location, dir: &Path, section: &str) {
    let day = 86_400;
    let mut h = History::open(&location).unwrap();
    let old_run = h.begin_run(NOW - 10 * day).unwrap();
    let sight = |h: &mut History, table: &'static str, at: i64| {
        h.sighted(&Sighting {
            table,
            tier: "all",
            level: "keys",
            kind: Kind::Drift,
            run: old_run,
            at,
            detail: serde_json::json!({}),
        })
        .unwrap()
    };
    let old_closed = sight(&mut h, "t0", NOW - 10 * day);
    h.close_incidents("t0", "keys", &[Kind::Drift], old_run, NOW - 9 * day)
        .unwrap();
    let (did, _) = h
        .claim_delivery(old_closed.id, "hook", NOW - 10 * day, 0, |_| {
            Some(Event::Open)
        })
        .unwrap()
        .unwrap();
    h.finish_delivery(did, Outcome::Delivered, 1, 0.1, None)
        .unwrap();
    let old_open = sight(&mut h, "t1", NOW - 10 * day);
    let recent_closed = sight(&mut h, "t2", NOW - 3600);
    h.close_incidents("t2", "keys", &[Kind::Drift], old_run, NOW - 60)
        .unwrap();
    drop(h);
    let cfg = config(dir, &format!("{ALL_LEVELS}{section}keep = \"1d\"\n"));
    let out = with_config("check", &cfg, &["--level", "count"], Some(NOW));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let h = History::open(&location).unwrap();
    let left: Vec<i64> = h
        .incidents(i64::MIN)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(left, [old_open.id, recent_closed.id], "{location:?}");
    assert!(h.deliveries(old_closed.id, "hook").unwrap().is_empty());
    // The old run went too; the new one stays.
    let runs = h.runs(i64::MIN, None).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].started, NOW);
}

#[test]
fn keep_prunes_old_closed_incidents_on_sqlite_and_postgres() {
    let d = sides("h1-prune-lite", 3, 10);
    prune_incidents(
        Location::Sqlite(d.join("driftsum-history.sqlite")),
        d.path(),
        "[history]\n",
    );
    let Some(pg) = PgHistory::on_test_server() else {
        return;
    };
    let d = sides("h1-prune-pg", 3, 10);
    prune_incidents(pg.location(), d.path(), &pg.section());
}

/// A claim held by a checker on another host: held until it expires,
/// then taken over (the owner-pid shortcut is for this host alone).
fn claims_expire(location: Location) {
    let mut h = History::open(&location).unwrap();
    let run = h.begin_run(NOW).unwrap();
    let theirs = h.begin_run(NOW).unwrap();
    // Their claim, as a checker elsewhere took it (with a pid that is not
    // running here: it must not count).
    assert_eq!(
        h.claim(theirs, "t", "keys", NOW, NOW + 100, |_| true)
            .unwrap(),
        Claim::Taken
    );
    h.release_claims(theirs).unwrap();
    let dead_pid = 999_999_999;
    let other = |sql: &str| match &location {
        Location::Sqlite(p) => {
            Connection::open(p).unwrap().execute_batch(sql).unwrap();
        }
        Location::Postgres { url, schema } => {
            let mut a = Admin::<sqlx::PgConnection>::connect(url);
            a.exec(&format!("SET search_path = {schema}; {sql}"));
        }
    };
    // Their claim on `table` from `host`, by a pid not running here,
    // written as that checker would have.
    let plant = |table: &str, host: &str| {
        other(&format!(
            "INSERT INTO claims (table_name, level, run_id, host, pid, expires) \
             VALUES ('{table}', 'keys', {theirs}, '{host}', {dead_pid}, {})",
            NOW + 100
        ))
    };
    plant("t", "elsewhere.example");
    assert_eq!(
        h.claim(run, "t", "keys", NOW + 50, NOW + 150, |_| true)
            .unwrap(),
        Claim::Held
    );
    assert_eq!(
        h.claim(run, "t", "keys", NOW + 101, NOW + 201, |_| true)
            .unwrap(),
        Claim::Taken
    );
    // The same dead pid on this host: taken at once.
    h.release_claims(run).unwrap();
    let host = driftsum::history::record::host_name().replace('\'', "''");
    plant("u", &host);
    assert_eq!(
        h.claim(run, "u", "keys", NOW + 1, NOW + 100, |_| true)
            .unwrap(),
        Claim::Taken
    );
}

#[test]
fn a_dead_hosts_claim_is_taken_over_after_it_expires() {
    let d = Scratch::new("h1-claims-expire");
    claims_expire(Location::Sqlite(d.join("h.sqlite")));
    let Some(pg) = PgHistory::on_test_server() else {
        return;
    };
    claims_expire(pg.location());
}

#[test]
fn a_bad_history_url_is_a_clear_error() {
    let d = sides("h1-bad-url", 1, 10);
    for (history, needle) in [
        (
            "[history]\nurl = \"mysql://root@127.0.0.1/x\"\n",
            "cannot be kept in a mysql: database",
        ),
        (
            "[history]\nurl = \"postgres://app:Sekr1tPw@127.0.0.1:1/x\"\n",
            "127.0.0.1:1/x (schema driftsum)",
        ),
        (
            "[history]\nurl_env = \"H1_NO_SUCH_VARIABLE\"\n",
            "H1_NO_SUCH_VARIABLE",
        ),
        (
            "[history]\nurl = \"sqlite:h.db\"\nschema = \"x\"\n",
            "schema is for a PostgreSQL history",
        ),
    ] {
        let cfg = config(d.path(), &format!("{ALL_LEVELS}{history}"));
        for cmd in ["check", "history"] {
            let out = with_config(cmd, &cfg, &[], None);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} {history}: {err}");
            assert!(err.contains(needle), "{cmd} {history}: {err}");
            assert!(!err.contains("Sekr1tPw"), "{err}");
            assert!(out.stdout.is_empty() || cmd == "check", "{cmd}");
        }
        assert!(!d.join("h.db").exists());
        assert!(!d.join("driftsum-history.sqlite").exists());
    }
}

#[test]
fn a_postgres_history_connects_again_after_losing_its_connection() {
    let Some(mut pg) = PgHistory::on_test_server() else {
        return;
    };
    let url = pg.url.clone();
    let app = util::unique("h1_revive");
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut h = History::open(Location::Postgres {
        url: format!("{url}{sep}application_name={app}"),
        schema: pg.schema.clone(),
    })
    .unwrap();
    let run = h.begin_run(NOW).unwrap();
    let killed = pg.scalar(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = '{app}'"
    ));
    assert_eq!(killed, 1);
    // The statement that finds the connection gone may fail; the next
    // ones run on a new connection.
    let _ = h.last_completed("t", "keys");
    h.finish_run(run, NOW + 1).unwrap();
    let runs = h.runs(i64::MIN, None).unwrap();
    assert_eq!((runs.len(), runs[0].finished), (1, Some(NOW + 1)));
}
