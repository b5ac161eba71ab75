//! Logs of `driftsum check` through the real binary: JSON lines that parse
//! and carry the history's run id, text lines with `-v`, nothing unless
//! asked, the `DRIFTSUM_LOG` filter, and never a password — also with every
//! library's events on, against the real PostgreSQL server with a password
//! in the URL (the trust server ignores it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::Connection;
use serde_json::Value as J;
use sqlx::{AssertSqlSafe, Connection as _};

use crate::util::{self, Scratch};

fn pair(d: &Scratch) {
    let src = Connection::open(d.join("src.db")).unwrap();
    src.execute_batch(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);
         CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO a VALUES (1, 'x'), (2, 'y'), (3, 'z');
         INSERT INTO b VALUES (1, 'p');",
    )
    .unwrap();
    drop(src);
    std::fs::copy(d.join("src.db"), d.join("rep.db")).unwrap();
}

fn config(d: &Scratch, source: &str) -> PathBuf {
    let path = d.join("driftsum.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\n{source}\n[replica]\nurl = \"sqlite:rep.db\"\n\
             [tiers.all]\ncount = \"1h\"\nkeys = \"1h\"\n[defaults]\ntier = \"all\"\n"
        ),
    )
    .unwrap();
    path
}

fn check(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftsum"));
    cmd.args([
        "check",
        "--format",
        "json",
        "--config",
        config.to_str().unwrap(),
    ])
    .args(extra)
    .env_remove("DRIFTSUM_LOG")
    .env_remove("DRIFTSUM_NOW");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Every stderr line as a JSON object (a line that is not one fails).
fn json_lines(out: &Output) -> Vec<J> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| {
            let j: J = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
            assert!(j.is_object(), "{l}");
            j
        })
        .collect()
}

#[test]
fn json_lines_parse_and_carry_the_run_id() {
    let d = Scratch::new("h5-log-json");
    pair(&d);
    Connection::open(d.join("rep.db"))
        .unwrap()
        .execute_batch("DELETE FROM a WHERE id = 2")
        .unwrap();
    let cfg = config(&d, "url = \"sqlite:src.db\"");
    let out = check(&cfg, &["--log-format", "json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let report: J = serde_json::from_slice(&out.stdout).expect("the report alone on stdout");
    let run_id = report["run_id"].as_i64().unwrap();
    let lines = json_lines(&out);
    let finished: Vec<&J> = lines
        .iter()
        .filter(|j| j["message"] == "level finished")
        .collect();
    // a: count, keys; b: count, keys.
    assert_eq!(finished.len(), 4, "{lines:?}");
    for j in &finished {
        assert_eq!(j["run_id"], run_id, "{j}");
        for field in [
            "table",
            "tier",
            "check_level",
            "result",
            "seconds",
            "bytes",
            "rows_read",
        ] {
            assert!(!j[field].is_null(), "{field} in {j}");
        }
        assert!(
            j["timestamp"].is_string() && (j["level"] == "INFO" || j["level"] == "WARN"),
            "{j}"
        );
    }
    let a_keys = finished
        .iter()
        .find(|j| j["table"] == "a" && j["check_level"] == "keys")
        .unwrap();
    assert_eq!(a_keys["result"], "drift");
    assert_eq!(a_keys["missing"], 1);
    let started: Vec<&J> = lines
        .iter()
        .filter(|j| j["message"] == "level started")
        .collect();
    assert_eq!(started.len(), 4, "{lines:?}");
    assert!(lines
        .iter()
        .any(|j| j["message"] == "run started" && j["run_id"] == run_id));
    assert!(lines
        .iter()
        .any(|j| j["message"] == "run finished" && j["status"] == "drift"));
}

#[test]
fn text_logs_when_asked_and_only_then() {
    let d = Scratch::new("h5-log-text");
    pair(&d);
    let cfg = config(&d, "url = \"sqlite:src.db\"");
    let quiet = check(&cfg, &[], &[]);
    assert_eq!(quiet.status.code(), Some(0));
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    let verbose = check(&cfg, &["-v"], &[]);
    let err = String::from_utf8_lossy(&verbose.stderr);
    assert_eq!(err.matches("level finished").count(), 4, "{err}");
    assert!(err.contains("run_id="), "{err}");
    // DRIFTSUM_LOG filters: only warnings (none: all in sync).
    let filtered = check(&cfg, &["-v"], &[("DRIFTSUM_LOG", "driftsum=warn")]);
    assert!(
        filtered.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&filtered.stderr)
    );
    // A bad filter says so, and logs by the flags.
    let bad = check(&cfg, &["-v"], &[("DRIFTSUM_LOG", "driftsum=loud")]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("DRIFTSUM_LOG") && err.contains("level finished"),
        "{err}"
    );
    // An error is one JSON line with its cause in JSON mode.
    let broken = config(&d, "url_env = \"H5_UNSET_VARIABLE\"");
    let out = check(&broken, &["--log-format", "json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let lines = json_lines(&out);
    assert!(
        lines
            .iter()
            .any(|j| j["level"] == "ERROR"
                && j["error"].as_str().unwrap().contains("H5_UNSET_VARIABLE")),
        "{lines:?}"
    );
}

#[test]
fn no_password_in_logs_even_with_every_event_on() {
    let Some(url) = util::postgres_url() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut conn = rt.block_on(sqlx::PgConnection::connect(&url)).unwrap();
    let mut exec = |sql: &str| {
        rt.block_on(sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut conn))
            .unwrap();
    };
    exec(
        "DROP TABLE IF EXISTS h5_log_t;
         CREATE TABLE h5_log_t (id integer PRIMARY KEY, v text);
         INSERT INTO h5_log_t VALUES (1, 'x'), (2, 'y');",
    );
    let d = Scratch::new("h5-log-pw");
    let rep = Connection::open(d.join("rep.db")).unwrap();
    rep.execute_batch(
        "CREATE TABLE h5_log_t (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO h5_log_t VALUES (1, 'x');",
    )
    .unwrap();
    const PW: &str = "H5pw-Sekr1t";
    // postgres://postgres@host/db → postgres://postgres:PW@host/db
    let with_pw = url.replacen("postgres@", &format!("postgres:{PW}@"), 1);
    assert!(with_pw.contains(PW), "{with_pw}");
    let cfg = config(&d, "url_env = \"H5_PG_URL\"");
    for format in ["json", "text"] {
        let out = check(
            &cfg,
            &["--table", "h5_log_t", "--log-format", format],
            &[("H5_PG_URL", &with_pw), ("DRIFTSUM_LOG", "trace")],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("level finished"), "{err}");
        assert!(!err.contains(PW) && !stdout.contains(PW), "{err}");
        // The source is named, without its password.
        assert!(err.contains("127.0.0.1"), "{err}");
    }
    // A source that refuses the connection: the error is logged, scrubbed.
    let refused = format!("postgres://postgres:{PW}@127.0.0.1:1/test");
    let out = check(
        &cfg,
        &["--log-format", "json"],
        &[("H5_PG_URL", &refused), ("DRIFTSUM_LOG", "trace")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains(PW), "{err}");
    json_lines(&out);
    exec("DROP TABLE h5_log_t");
}
