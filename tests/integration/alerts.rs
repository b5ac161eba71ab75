//! `[[alerts]]` end to end: the real `driftsum check` binary on real SQLite
//! files, alerting a real HTTP receiver started here (a `TcpListener` in a
//! thread that records every request) or a real command. Intervals are
//! real and short (seconds); no clock is injected.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::Value as J;

use crate::util::{self, Scratch};

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Got {
    head: String,
    body: J,
}

/// An HTTP receiver on a free loopback port: answers each request with
/// the next status of `statuses` (then 200), recording what it got.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn start(statuses: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/hook/h6-secret-token",
            listener.local_addr().unwrap()
        );
        let got = Arc::new(Mutex::new(Vec::new()));
        let (rec, mut statuses) = (got.clone(), statuses.to_vec());
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                let Some(g) = read_request(&mut s) else {
                    continue;
                };
                let status = match statuses.is_empty() {
                    true => 200,
                    false => statuses.remove(0),
                };
                rec.lock().unwrap().push(g);
                let _ = s.write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    )
                    .as_bytes(),
                );
            }
        });
        Receiver { url, got }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

fn read_request(s: &mut TcpStream) -> Option<Got> {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Got {
        head,
        body: serde_json::from_slice(&body).unwrap_or(J::Null),
    })
}

/// A source and an identical replica, table `t0` of 20 rows (and `t1`
/// when `two`), and a config with `rest` appended.
fn setup(d: &Path, two: bool, rest: &str) -> PathBuf {
    for f in ["src.db", "rep.db"] {
        let c = Connection::open(d.join(f)).unwrap();
        for t in ["t0", "t1"].iter().take(1 + two as usize) {
            c.execute_batch(&format!(
                "CREATE TABLE {t} (id INTEGER PRIMARY KEY, name TEXT);
                 WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 20)
                 INSERT INTO {t} SELECT v, 'n' || v FROM s;"
            ))
            .unwrap();
        }
    }
    let path = d.join("driftsum.toml");
    std::fs::write(
        &path,
        format!("[source]\nurl = \"sqlite:src.db\"\n[replica]\nurl = \"sqlite:rep.db\"\n{rest}"),
    )
    .unwrap();
    path
}

/// Runs `driftsum check` on the config; its exit code and stderr.
fn check(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftsum"));
    cmd.args(["check", "--format", "json", "--config"])
        .arg(config)
        .args(extra)
        .env_remove("DRIFTSUM_NOW");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run driftsum");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        serde_json::from_str::<J>(&stdout).is_ok(),
        "the report is still JSON: {stdout}\n{stderr}"
    );
    (out.status.code().unwrap_or(-1), stderr)
}

fn replica(d: &Path) -> Connection {
    Connection::open(d.join("rep.db")).unwrap()
}

/// (alert, event, outcome, attempts) of every delivery in the history.
fn deliveries(d: &Path) -> Vec<(String, String, String, i64)> {
    let h = Connection::open(d.join("driftsum-history.sqlite")).unwrap();
    let mut q = h
        .prepare("SELECT alert, event, outcome, attempts FROM deliveries ORDER BY id")
        .unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

const KEYS_ONLY: &str = "[tiers.t]\nkeys = \"1h\"\n[defaults]\ntier = \"t\"\n";

/// Drift that persists gets one alert (after `after_runs`), a reminder
/// after `remind`, and a `recovered` once the replica is repaired by hand;
/// nothing while in sync; an alert with `min_rows` above the drift gets
/// nothing at all.
#[test]
fn one_alert_per_incident_a_reminder_and_a_recovery() {
    let d = Scratch::new("alerts-incident");
    let hook = Receiver::start(&[]);
    let quiet = Receiver::start(&[]);
    let config = setup(
        d.path(),
        false,
        &format!(
            "{KEYS_ONLY}[[alerts]]\nto = \"webhook\"\nurl_env = \"H6_HOOK\"\n\
             after_runs = 2\nremind = \"3s\"\nheaders.X-Token = {{ env = \"H6_TOKEN\" }}\n\
             [[alerts]]\nto = \"webhook\"\nurl = \"{}\"\nmin_rows = 2\n",
            quiet.url
        ),
    );
    let env = [("H6_HOOK", hook.url.as_str()), ("H6_TOKEN", "tok-h6")];
    let run = || check(&config, &[], &env);
    assert_eq!(run().0, 0);
    assert!(hook.got().is_empty(), "in sync: no alert");

    replica(d.path())
        .execute("DELETE FROM t0 WHERE id = 7", [])
        .unwrap();
    assert_eq!(run().0, 1);
    assert!(hook.got().is_empty(), "after_runs = 2: not after one run");
    for _ in 0..2 {
        assert_eq!(run().0, 1);
    }
    let got = hook.got();
    assert_eq!(
        got.len(),
        1,
        "one alert across three drifting runs: {got:?}"
    );
    let a = &got[0].body;
    assert_eq!(a["event"], "open");
    assert_eq!(a["kind"], "drift");
    assert_eq!(
        (a["table"].as_str(), a["tier"].as_str()),
        (Some("t0"), Some("t"))
    );
    assert_eq!(a["level"], "keys");
    assert_eq!(a["counts"]["missing"], 1);
    assert_eq!(a["differences"][0]["key"]["id"], 7);
    assert_eq!(a["drifted_ranges"].as_array().map(Vec::len), Some(1));
    assert_eq!(a["runs"], 2);
    assert!(a["run_id"].as_i64().unwrap() >= 3);
    assert!(got[0].head.contains("X-Token: tok-h6"), "{}", got[0].head);
    assert!(got[0]
        .head
        .starts_with("POST /hook/h6-secret-token HTTP/1.1"));

    // The reminder: `remind` after the alert, while it stays open.
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(run().0, 1);
    let got = hook.got();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].body["event"], "reminder");
    assert_eq!(got[1].body["incident"], a["incident"]);
    assert!(got[1].body["open_seconds"].as_i64().unwrap() >= 3);

    // Repaired by hand.
    replica(d.path())
        .execute("INSERT INTO t0 VALUES (7, 'n7')", [])
        .unwrap();
    assert_eq!(run().0, 0);
    assert_eq!(run().0, 0);
    let got = hook.got();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[2].body["event"], "recovered");
    assert_eq!(got[2].body["incident"], a["incident"]);
    assert!(quiet.got().is_empty(), "min_rows = 2 ignores one row");

    let all = deliveries(d.path());
    let events: Vec<(&str, &str)> = all.iter().map(|x| (x.1.as_str(), x.2.as_str())).collect();
    assert_eq!(
        events,
        [
            ("open", "delivered"),
            ("reminder", "delivered"),
            ("recovered", "delivered")
        ]
    );
}

/// A receiver answering 500 first gets the same alert again, after a
/// backoff; the history records two attempts and the delivery.
#[test]
fn retries_when_the_receiver_first_answers_500() {
    let d = Scratch::new("alerts-retry");
    let hook = Receiver::start(&[500]);
    let config = setup(
        d.path(),
        false,
        &format!(
            "{KEYS_ONLY}[[alerts]]\nto = \"webhook\"\nurl = \"{}\"\n",
            hook.url
        ),
    );
    replica(d.path())
        .execute("DELETE FROM t0 WHERE id = 3", [])
        .unwrap();
    assert_eq!(check(&config, &[], &[]).0, 1);
    let got = hook.got();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[1].body["event"], "open");
    assert_eq!(deliveries(d.path())[0].2, "delivered");
    assert_eq!(deliveries(d.path())[0].3, 2);
    assert_eq!(check(&config, &[], &[]).0, 1);
    assert_eq!(hook.got().len(), 2, "delivered once: not again");
}

/// `format = "slack"` posts `{"text": …}`, naming the table and the drift.
#[test]
fn a_slack_payload_has_text() {
    let d = Scratch::new("alerts-slack");
    let hook = Receiver::start(&[]);
    let config = setup(
        d.path(),
        false,
        &format!(
            "{KEYS_ONLY}[[alerts]]\nto = \"webhook\"\nformat = \"slack\"\nurl = \"{}\"\n",
            hook.url
        ),
    );
    replica(d.path())
        .execute("UPDATE t0 SET id = 100 WHERE id = 3", [])
        .unwrap();
    assert_eq!(check(&config, &[], &[]).0, 1);
    let got = hook.got();
    assert_eq!(got.len(), 1);
    let body = got[0].body.as_object().unwrap();
    assert_eq!(body.keys().collect::<Vec<_>>(), ["text"]);
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("drift in t0") && text.contains("1 missing, 1 extra"),
        "{text}"
    );
    assert!(got[0].head.contains("Content-Type: application/json"));
}

/// A command hook gets the incident's JSON document on stdin; an `error`
/// incident (a table the source lacks) is one too.
#[test]
fn a_command_hook_receives_the_incident_on_stdin() {
    let d = Scratch::new("alerts-command");
    let config = setup(
        d.path(),
        false,
        &format!(
            "{KEYS_ONLY}[tables.ghost]\ntier = \"t\"\n\
             [[alerts]]\nto = \"command\"\nrun = [\"sh\", \"-c\", \"cat > got-$$.json\"]\n"
        ),
    );
    replica(d.path())
        .execute("DELETE FROM t0 WHERE id = 9", [])
        .unwrap();
    assert_eq!(check(&config, &[], &[]).0, 2, "the ghost table fails");
    assert_eq!(check(&config, &[], &[]).0, 2);
    let mut docs: Vec<J> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("got-"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    docs.sort_by_key(|j| j["table"].as_str().unwrap().to_string());
    assert_eq!(docs.len(), 2, "one per incident, once: {docs:?}");
    assert_eq!(
        (docs[0]["table"].as_str(), docs[0]["kind"].as_str()),
        (Some("ghost"), Some("error"))
    );
    assert!(docs[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(
        (docs[1]["table"].as_str(), docs[1]["kind"].as_str()),
        (Some("t0"), Some("drift"))
    );
    assert_eq!(docs[1]["differences"][0]["key"]["id"], 9);
    assert_eq!(docs[1]["format_version"], 1);
}

/// A tier whose check does not run (its cron line is dead) is `overdue`
/// once twice its interval has passed, and recovers when it runs.
#[test]
fn overdue_fires_for_a_tier_whose_check_did_not_run() {
    let d = Scratch::new("alerts-overdue");
    let hook = Receiver::start(&[]);
    let config = setup(
        d.path(),
        true,
        &format!(
            "[tiers.hot]\ncount = \"1s\"\n[tiers.cold]\ncount = \"1s\"\n\
             [tables.t0]\ntier = \"hot\"\n[tables.t1]\ntier = \"cold\"\n\
             [[alerts]]\nto = \"webhook\"\nurl = \"{}\"\n",
            hook.url
        ),
    );
    assert_eq!(check(&config, &["--tier", "hot"], &[]).0, 0);
    assert!(hook.got().is_empty(), "nothing is late yet");
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(check(&config, &["--tier", "hot"], &[]).0, 0);
    let got = hook.got();
    assert_eq!(got.len(), 1, "{got:?}");
    let a = &got[0].body;
    assert_eq!(
        (a["kind"].as_str(), a["event"].as_str()),
        (Some("overdue"), Some("open"))
    );
    assert_eq!(
        (a["table"].as_str(), a["level"].as_str()),
        (Some("t1"), Some("count"))
    );
    assert_eq!(a["tier"], "cold");
    assert_eq!(a["last_completed"], J::Null);
    assert_eq!(check(&config, &["--tier", "cold"], &[]).0, 0);
    let got = hook.got();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].body["event"], "recovered");
    assert_eq!(got[1].body["kind"], "overdue");
}

/// A webhook that refuses connections, or accepts and never answers,
/// changes nothing in what check reports or exits with, takes a bounded
/// time, and its URL is not printed; the failure is recorded.
#[test]
fn a_dead_webhook_does_not_change_checks_exit_code() {
    let d = Scratch::new("alerts-dead");
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming() {
            held.push(s);
        }
    });
    let config = setup(
        d.path(),
        false,
        &format!(
            "{KEYS_ONLY}[[alerts]]\nto = \"webhook\"\nurl = \"http://{closed}/h6-secret-a\"\n\
             [[alerts]]\nto = \"webhook\"\nurl = \"http://{silent_addr}/h6-secret-b\"\n\
             timeout = \"1s\"\n"
        ),
    );
    let (code, err) = check(&config, &[], &[]);
    assert_eq!(code, 0, "{err}");
    replica(d.path())
        .execute("DELETE FROM t0 WHERE id = 1", [])
        .unwrap();
    let started = Instant::now();
    let (code, err) = check(&config, &[], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains("alert-1") && err.contains("alert-2"), "{err}");
    assert!(!err.contains("h6-secret"), "{err}");
    let all = deliveries(d.path());
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|x| x.2 == "failed" && x.3 == 3), "{all:?}");
    // Owed still: tried again after the next run.
    let (code, _) = check(&config, &[], &[]);
    assert_eq!(code, 1);
    assert_eq!(deliveries(d.path()).len(), 4);
}

/// A bad `[[alerts]]` entry is refused before anything is read or
/// written, naming what to fix.
#[test]
fn a_bad_alert_is_refused() {
    let d = Scratch::new("alerts-bad");
    for (alert, says) in [
        ("to = \"pager\"", "pager"),
        ("to = \"webhook\"", "url and url_env"),
        ("to = \"command\"", "run"),
        (
            "to = \"webhook\"\nurl = \"http://x/\"\non = [\"drfit\"]",
            "drfit",
        ),
        (
            "to = \"webhook\"\nurl = \"http://x/\"\nremind = \"daily\"",
            "remind",
        ),
    ] {
        let config = setup(
            d.path(),
            false,
            &format!("{KEYS_ONLY}[[alerts]]\n{alert}\n"),
        );
        let out = Command::new(env!("CARGO_BIN_EXE_driftsum"))
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{alert}: {err}");
        assert!(err.contains(says), "{alert}: {err}");
        assert!(!d.join("driftsum-history.sqlite").exists());
        for f in ["src.db", "rep.db"] {
            std::fs::remove_file(d.join(f)).unwrap();
        }
    }
}

/// Runs `driftsum check` whatever it prints (a run that fails prints no
/// report); its exit code and stderr.
fn check_any(config: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(["check", "--format", "json", "--config"])
        .arg(config)
        .env_remove("DRIFTSUM_NOW")
        .output()
        .expect("run driftsum");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `driftsum_open_incidents` samples of a textfile, as (labels, value).
fn open_incident_samples(textfile: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(textfile)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("driftsum_open_incidents{"))
        .filter_map(|l| l.split_once("} "))
        .map(|(labels, v)| (labels.to_string(), v.to_string()))
        .collect()
}

/// A run that cannot reach its source opens the run's error incident:
/// one alert however often it fails, the open-incidents metric says so,
/// and the first run that reaches a table closes it with `recovered`.
#[test]
fn a_run_that_reaches_no_table_opens_an_error_incident() {
    let d = Scratch::new("h4-alerts-run-error");
    let hook = Receiver::start(&[]);
    let rest = format!(
        "{KEYS_ONLY}[metrics]\ntextfile = \"m.prom\"\n\
         [[alerts]]\nto = \"webhook\"\nurl = \"{}\"\n",
        hook.url
    );
    let config = setup(d.path(), false, &rest);
    // Port 1 on loopback: nothing listens, the connection is refused.
    let unreachable = "postgres://h4user:h4-Secret-pw@127.0.0.1:1/nowhere";
    std::fs::write(
        &config,
        format!("[source]\nurl = \"{unreachable}\"\n[replica]\nurl = \"sqlite:rep.db\"\n{rest}"),
    )
    .unwrap();
    for _ in 0..2 {
        let (code, stderr) = check_any(&config);
        assert_eq!(code, 2, "{stderr}");
    }
    let got = hook.got();
    assert_eq!(got.len(), 1, "one alert for two failed runs: {got:?}");
    let a = &got[0].body;
    assert_eq!(
        (&a["event"], &a["kind"], &a["table"], &a["level"]),
        (
            &J::from("open"),
            &J::from("error"),
            &J::from("*"),
            &J::from("run")
        ),
        "{a}"
    );
    // Sent at the first failed run (after_runs = 1), not again at the second.
    assert_eq!(a["runs"], 1, "{a}");
    let error = a["error"].as_str().unwrap_or_default();
    assert!(error.contains("source"), "{a}");
    assert!(!a.to_string().contains("h4-Secret-pw"), "{a}");
    assert!(
        a["summary"]
            .as_str()
            .is_some_and(|s| s.contains("before any table")),
        "{a}"
    );
    assert_eq!(
        open_incident_samples(&d.join("m.prom")),
        [("table=\"*\",level=\"run\"".to_string(), "1".to_string())]
    );

    // The source is back.
    std::fs::write(
        &config,
        format!("[source]\nurl = \"sqlite:src.db\"\n[replica]\nurl = \"sqlite:rep.db\"\n{rest}"),
    )
    .unwrap();
    let (code, stderr) = check_any(&config);
    assert_eq!(code, 0, "{stderr}");
    let got = hook.got();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].body["event"], "recovered");
    assert_eq!(got[1].body["incident"], a["incident"]);
    assert_eq!(
        open_incident_samples(&d.join("m.prom")),
        [("table=\"t0\",level=\"keys\"".to_string(), "0".to_string())]
    );
}

/// The open-incidents metric counts a drift incident while it is open.
#[test]
fn the_textfile_counts_open_incidents() {
    let d = Scratch::new("h4-alerts-metric");
    let config = setup(
        d.path(),
        false,
        &format!("{KEYS_ONLY}[metrics]\ntextfile = \"m.prom\"\n"),
    );
    replica(d.path())
        .execute("DELETE FROM t0 WHERE id = 2", [])
        .unwrap();
    assert_eq!(check(&config, &[], &[]).0, 1);
    assert_eq!(
        open_incident_samples(&d.join("m.prom")),
        [("table=\"t0\",level=\"keys\"".to_string(), "1".to_string())]
    );
}

#[test]
fn postgres_to_sqlite_alerts_once_and_recovers() {
    let Some(pg) = crate::util::postgres_url() else {
        return;
    };
    server_alerts(&pg);
}

#[test]
fn mariadb_to_sqlite_alerts_once_and_recovers() {
    let Some(my) = crate::util::mysql_url() else {
        return;
    };
    server_alerts(&my);
}

/// The "done when": a server source and a SQLite replica; drift
/// appears: exactly one webhook; it persists: none; `driftsum repair`
/// puts it right: one `recovered`.
fn server_alerts(server: &str) {
    let table = crate::util::unique("h4_alerts");
    util::server_exec(server, &format!("DROP TABLE IF EXISTS {table}"));
    util::server_exec(
        server,
        &format!(
            "CREATE TABLE {table} (id bigint PRIMARY KEY, name text);
             INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd');"
        ),
    );
    let d = Scratch::new("h4-alerts-server");
    Connection::open(d.join("rep.db"))
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd');"
        ))
        .unwrap();
    let hook = Receiver::start(&[]);
    let config = d.join("driftsum.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nurl_env = \"H4_SOURCE\"\n[replica]\nurl = \"sqlite:rep.db\"\n\
             {KEYS_ONLY}[[alerts]]\nto = \"webhook\"\nurl = \"{}\"\n",
            hook.url
        ),
    )
    .unwrap();
    let env = [("H4_SOURCE", server)];
    let run = || check(&config, &["--table", &table], &env).0;
    let codes_in_sync = run();
    Connection::open(d.join("rep.db"))
        .unwrap()
        .execute(&format!("DELETE FROM {table} WHERE id = 3"), [])
        .unwrap();
    let codes_drift = [run(), run()];
    let after_drift = hook.got();
    let repaired = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(["repair", "--apply", "--table", &table, "--config"])
        .arg(&config)
        .env("H4_SOURCE", server)
        .output()
        .unwrap();
    let codes_after = run();
    let got = hook.got();
    util::server_exec(server, &format!("DROP TABLE IF EXISTS {table}"));
    assert_eq!(codes_in_sync, 0);
    assert_eq!(codes_drift, [1, 1]);
    assert_eq!(
        after_drift.len(),
        1,
        "one webhook for drift: {after_drift:?}"
    );
    assert_eq!(after_drift[0].body["event"], "open");
    assert_eq!(after_drift[0].body["kind"], "drift");
    assert_eq!(after_drift[0].body["differences"][0]["key"]["id"], 3);
    assert!(
        repaired.status.success(),
        "{}",
        String::from_utf8_lossy(&repaired.stderr)
    );
    assert_eq!(codes_after, 0);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].body["event"], "recovered");
    assert_eq!(got[1].body["incident"], after_drift[0].body["incident"]);
}
