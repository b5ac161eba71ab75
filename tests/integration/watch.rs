//! Metrics and `driftsum watch` end to end: the real binary on real SQLite
//! files with a real run history; the textfile and `/metrics` read back
//! through a strict parser of the Prometheus text format written here; the
//! watcher stopped with real signals.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::util::Scratch;

/// One sample: name, labels, value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the Prometheus text exposition format strictly: every line is a
/// comment, a `# HELP`/`# TYPE` for a family not yet seen, or a sample of a
/// family whose TYPE came first and whose samples are contiguous; names,
/// label names, escapes and values are checked; no sample repeats; the text
/// ends with a newline.
pub fn parse_prometheus(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut helped: BTreeSet<String> = BTreeSet::new();
    let mut closed: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if kw != "HELP" && kw != "TYPE" {
                continue;
            }
            if !is_metric_name(name) {
                return Err(err("bad metric name"));
            }
            if closed.contains(name) || current.as_deref() == Some(name) && kw == "TYPE" {
                return Err(err("a family's metadata after its samples"));
            }
            if kw == "HELP" && !helped.insert(name.to_string()) {
                return Err(err("HELP twice"));
            }
            if kw == "TYPE" {
                let t = parts.next().unwrap_or("");
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                    return Err(err("unknown type"));
                }
                if typed.insert(name.to_string(), t.to_string()).is_some() {
                    return Err(err("TYPE twice"));
                }
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(err("not a comment, metadata or sample"));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value"))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(err("bad metric name"));
        }
        if !typed.contains_key(name) {
            return Err(err("a sample before its TYPE"));
        }
        if current.as_deref() != Some(name) {
            if let Some(c) = current.take() {
                closed.insert(c);
            }
            if closed.contains(name) {
                return Err(err("a family's samples are not together"));
            }
            current = Some(name.to_string());
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let end;
            loop {
                let Some(&(i, c)) = chars.peek() else {
                    return Err(err("unterminated labels"));
                };
                if c == '}' {
                    end = i + 1;
                    break;
                }
                let mut key = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c == '=' {
                        break;
                    }
                    key.push(c);
                    chars.next();
                }
                if !is_label_name(&key) {
                    return Err(err("bad label name"));
                }
                chars.next();
                if chars.next().map(|x| x.1) != Some('"') {
                    return Err(err("label value not quoted"));
                }
                let mut value = String::new();
                loop {
                    match chars.next().map(|x| x.1) {
                        None => return Err(err("unterminated label value")),
                        Some('"') => break,
                        Some('\\') => match chars.next().map(|x| x.1) {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            _ => return Err(err("bad escape")),
                        },
                        Some('\n') => return Err(err("newline in a label value")),
                        Some(c) => value.push(c),
                    }
                }
                if labels.insert(key, value).is_some() {
                    return Err(err("a label twice"));
                }
                match chars.peek().map(|x| x.1) {
                    Some(',') => {
                        chars.next();
                    }
                    Some('}') => {}
                    _ => return Err(err("labels not separated by commas")),
                }
            }
            rest = &r[end..];
        }
        let mut fields = rest.split(' ').filter(|s| !s.is_empty());
        let value = fields.next().ok_or_else(|| err("no value"))?;
        let value = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse::<f64>().map_err(|_| err("bad value"))?,
        };
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| err("bad timestamp"))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing text"));
        }
        let key = format!("{name}{labels:?}");
        if !seen.insert(key) {
            return Err(err("the same sample twice"));
        }
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(out)
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// The value of the sample `name` with these labels (among others).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[test]
fn the_parser_refuses_what_prometheus_refuses() {
    let good = "# HELP a_b x\n# TYPE a_b gauge\na_b{t=\"q\\\"\\n\\\\\"} 1\na_b 2.5\n";
    let s = parse_prometheus(good).expect("parses");
    assert_eq!(s[0].labels["t"], "q\"\n\\");
    for bad in [
        "a 1\n",                                                    // no TYPE
        "# TYPE a gauge\na 1",                                      // no final newline
        "# TYPE a gauge\na{t=\"x} 1\n",                             // unterminated
        "# TYPE a gauge\na{t=\"\\x\"} 1\n",                         // bad escape
        "# TYPE a gauge\na{1t=\"x\"} 1\n",                          // bad label name
        "# TYPE a gauge\na one\n",                                  // bad value
        "# TYPE a gauge\na 1\na 2\n",                               // duplicate
        "# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"1\"} 1\n", // split family
        "# TYPE a gauge\n# TYPE a gauge\n",                         // TYPE twice
        "# TYPE a-b gauge\n",                                       // bad name
        "# TYPE a gauge\na{t=\"x\" u=\"y\"} 1\n",                   // no comma
    ] {
        assert!(parse_prometheus(bad).is_err(), "{bad:?}");
    }
}

/// A source and replica, `tables` tables `w0`, `w1`, … of 50 rows.
fn pair(d: &Scratch, tables: usize) {
    let src = Connection::open(d.join("src.db")).unwrap();
    for t in 0..tables {
        src.execute_batch(&format!(
            "CREATE TABLE w{t} (id INTEGER PRIMARY KEY, name TEXT);
             WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 50)
             INSERT INTO w{t} SELECT v, 'n' || v FROM s;"
        ))
        .unwrap();
    }
    drop(src);
    std::fs::copy(d.join("src.db"), d.join("rep.db")).unwrap();
}

fn config(d: &Scratch, body: &str) -> PathBuf {
    let path = d.join("driftsum.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"sqlite:src.db\"\n[replica]\nurl = \"sqlite:rep.db\"\n\
             [metrics]\ntextfile = \"prom/driftsum.prom\"\n[defaults]\ntier = \"fast\"\n{body}"
        ),
    )
    .unwrap();
    path
}

fn check(config: &Path) -> i32 {
    let out = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(["check", "--config", config.to_str().unwrap()])
        .env_remove("DRIFTSUM_NOW")
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    code
}

#[test]
fn the_textfile_parses_names_every_table_and_is_never_half_written() {
    let d = Scratch::new("h5-textfile");
    pair(&d, 3);
    std::fs::create_dir(d.join("prom")).unwrap();
    let cfg = config(&d, "[tiers.fast]\ncount = \"1h\"\nkeys = \"1h\"\n");
    assert_eq!(check(&cfg), 0);
    let file = d.join("prom/driftsum.prom");
    let samples = parse_prometheus(&std::fs::read_to_string(&file).unwrap()).unwrap();
    for t in ["w0", "w1", "w2"] {
        for level in ["count", "keys"] {
            let l = [("table", t), ("level", level), ("status", "in_sync")];
            assert_eq!(
                value(&samples, "driftsum_check_status", &l),
                Some(1.0),
                "{t} {level}"
            );
            let l = [("table", t), ("level", level), ("status", "drift")];
            assert_eq!(value(&samples, "driftsum_check_status", &l), Some(0.0));
        }
        let l = [("table", t), ("level", "count")];
        assert_eq!(
            value(&samples, "driftsum_check_source_rows", &l),
            Some(50.0)
        );
    }
    // A reader polling the file while checks rewrite it sees whole files.
    let rep = Connection::open(d.join("rep.db")).unwrap();
    rep.execute_batch("DELETE FROM w1 WHERE id IN (3, 4); UPDATE w2 SET id = 99 WHERE id = 7;")
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, file) = (Arc::clone(&stop), file.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::SeqCst) {
                let text = std::fs::read_to_string(&file).expect("the file is always there");
                let s = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
                for t in ["w0", "w1", "w2"] {
                    assert!(
                        s.iter()
                            .any(|x| x.labels.get("table").map(String::as_str) == Some(t)),
                        "{t} missing from a read:\n{text}"
                    );
                }
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..4 {
        assert_eq!(check(&cfg), 1);
    }
    stop.store(true, Ordering::SeqCst);
    let reads = reader.join().expect("no torn read");
    assert!(reads > 10, "only {reads} reads");
    let samples = parse_prometheus(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let rows = |t, kind| {
        value(
            &samples,
            "driftsum_check_differing_rows",
            &[("table", t), ("level", "keys"), ("kind", kind)],
        )
    };
    assert_eq!(rows("w1", "missing"), Some(2.0));
    assert_eq!(rows("w2", "missing"), Some(1.0));
    assert_eq!(rows("w2", "extra"), Some(1.0));
    assert_eq!(rows("w0", "missing"), Some(0.0));
    let l = [("table", "w1"), ("level", "count"), ("status", "drift")];
    assert_eq!(value(&samples, "driftsum_check_status", &l), Some(1.0));
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(d.join("prom"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["driftsum.prom"]);
    // The file is readable by node_exporter running as another user.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o044, 0o044, "{mode:o}");
}

#[test]
fn an_unwritable_textfile_is_a_warning_not_a_failed_check() {
    let d = Scratch::new("h5-textfile-bad");
    pair(&d, 1);
    // The directory does not exist.
    let cfg = config(&d, "[tiers.fast]\ncount = \"1h\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(["check", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("metrics textfile") && err.contains("driftsum.prom"),
        "{err}"
    );
}

/// A free local port (taken and let go: the watcher binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running watcher, killed if the test ends without stopping it.
struct Watcher {
    child: Child,
    port: u16,
    stderr: Arc<std::sync::Mutex<String>>,
}

impl Watcher {
    fn start(config: &Path, extra: &[&str]) -> Watcher {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_driftsum"))
            .args([
                "watch",
                "--config",
                config.to_str().unwrap(),
                "--listen",
                &listen,
            ])
            .args(extra)
            .env_remove("DRIFTSUM_NOW")
            .env_remove("DRIFTSUM_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Watcher {
            child,
            port,
            stderr,
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: signals our own child.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0);
    }

    /// Waits for the exit (at most `limit`); its code.
    fn wait(&mut self, limit: Duration) -> i32 {
        let until = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < until,
                "watch did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// GET `path`: status and body.
    fn get(&self, path: &str) -> (u16, String) {
        let until = Instant::now() + Duration::from_secs(20);
        let mut s = loop {
            match TcpStream::connect(("127.0.0.1", self.port)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("connecting to watch: {e}\n{}", self.log()),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").expect("a whole response");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn history(d: &Scratch) -> Connection {
    Connection::open(d.join("driftsum-history.sqlite")).unwrap()
}

fn count(h: &Connection, sql: &str) -> i64 {
    h.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

/// Polls `cond` every 50 ms for at most `limit`.
fn eventually(limit: Duration, what: &str, w: &Watcher, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < until, "timed out: {what}\n{}", w.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn watch_runs_due_checks_serves_metrics_and_stops_cleanly() {
    let d = Scratch::new("h5-watch");
    pair(&d, 2);
    std::fs::create_dir(d.join("prom")).unwrap();
    let cfg = config(&d, "[tiers.fast]\ncount = \"1s\"\nkeys = \"1h\"\n");
    let mut w = Watcher::start(&cfg, &["--log-format", "json"]);
    // The count level is due every second: several runs of each table.
    eventually(
        Duration::from_secs(40),
        "three count results per table",
        &w,
        || {
            let h = history(&d);
            ["w0", "w1"].iter().all(|t| {
                count(
                    &h,
                    &format!(
                        "SELECT count(*) FROM results WHERE table_name = '{t}' AND level = 'count'"
                    ),
                ) >= 3
            })
        },
    );
    let h = history(&d);
    // keys is due hourly: it ran once per table.
    assert_eq!(
        count(&h, "SELECT count(*) FROM results WHERE level = 'keys'"),
        2,
        "{}",
        w.log()
    );
    // Never the same (table, level) twice at once: claims hold.
    let (status, body) = w.get("/metrics");
    assert_eq!(status, 200, "{body}");
    let samples = parse_prometheus(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    for t in ["w0", "w1"] {
        for level in ["count", "keys"] {
            let l = [("table", t), ("level", level), ("status", "in_sync")];
            assert_eq!(
                value(&samples, "driftsum_check_status", &l),
                Some(1.0),
                "{body}"
            );
        }
    }
    let text = std::fs::read_to_string(d.join("prom/driftsum.prom")).unwrap();
    parse_prometheus(&text).unwrap();
    assert_eq!(w.get("/healthz"), (200, "ok\n".to_string()));
    assert_eq!(w.get("/nothing").0, 404);
    // Drift shows on /metrics within a few runs.
    let rep = Connection::open(d.join("rep.db")).unwrap();
    rep.execute_batch("DELETE FROM w1 WHERE id = 5").unwrap();
    eventually(
        Duration::from_secs(30),
        "w1's count drift on /metrics",
        &w,
        || {
            let (_, body) = w.get("/metrics");
            let s = parse_prometheus(&body).unwrap();
            let l = [("table", "w1"), ("level", "count"), ("status", "drift")];
            value(&s, "driftsum_check_status", &l) == Some(1.0)
        },
    );
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait(Duration::from_secs(30)), 0, "{}", w.log());
    let h = history(&d);
    assert_eq!(count(&h, "SELECT count(*) FROM claims"), 0);
    assert_eq!(
        count(&h, "SELECT count(*) FROM runs WHERE finished IS NULL"),
        0
    );
    // Every log line is one JSON object; the level events carry the run id.
    let log = w.log();
    let mut finished = 0;
    for line in log.lines() {
        let j: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        if j["message"] == "level finished" {
            assert!(j["run_id"].as_i64().is_some_and(|id| id > 0), "{line}");
            finished += 1;
        }
    }
    assert!(finished >= 6, "{log}");
}

#[test]
fn sigterm_mid_check_records_the_level_and_leaves_no_claim() {
    let d = Scratch::new("h5-watch-term");
    pair(&d, 1);
    // The keys level finds drift, then waits 3 s to read it again: the
    // signal comes in that wait.
    Connection::open(d.join("rep.db"))
        .unwrap()
        .execute_batch("DELETE FROM w0 WHERE id = 9")
        .unwrap();
    let cfg = config(
        &d,
        "[tiers.fast]\nkeys = \"1h\"\nfull = \"1h\"\nrecheck_after = \"3s\"\n",
    );
    let mut w = Watcher::start(&cfg, &["-v"]);
    eventually(Duration::from_secs(30), "a claim taken", &w, || {
        count(&history(&d), "SELECT count(*) FROM claims") > 0
    });
    let claimed_at = Instant::now();
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait(Duration::from_secs(30)), 0, "{}", w.log());
    // It waited for the level: the recheck ran.
    assert!(
        claimed_at.elapsed() >= Duration::from_secs(2),
        "{}",
        w.log()
    );
    let h = history(&d);
    assert_eq!(count(&h, "SELECT count(*) FROM claims"), 0);
    assert_eq!(
        count(&h, "SELECT count(*) FROM runs WHERE finished IS NULL"),
        0
    );
    assert_eq!(
        count(
            &h,
            "SELECT count(*) FROM results WHERE level = 'keys' AND status = 'drift' AND rechecked = 1"
        ),
        1,
        "{}",
        w.log()
    );
    // Stopped after that level: full was not started.
    assert_eq!(
        count(&h, "SELECT count(*) FROM results WHERE level = 'full'"),
        0
    );
}

#[test]
fn sighup_reloads_the_config() {
    let d = Scratch::new("h5-watch-hup");
    pair(&d, 1);
    let cfg = config(&d, "[tiers.fast]\ncount = \"1h\"\n");
    let mut w = Watcher::start(&cfg, &[]);
    eventually(Duration::from_secs(30), "the first count", &w, || {
        count(&history(&d), "SELECT count(*) FROM results") >= 1
    });
    assert_eq!(
        count(
            &history(&d),
            "SELECT count(*) FROM results WHERE level = 'keys'"
        ),
        0
    );
    config(&d, "[tiers.fast]\ncount = \"1h\"\nkeys = \"1s\"\n");
    w.signal(libc::SIGHUP);
    eventually(Duration::from_secs(30), "keys after the reload", &w, || {
        count(
            &history(&d),
            "SELECT count(*) FROM results WHERE level = 'keys'",
        ) >= 2
    });
    // A broken config is not taken: the watcher goes on with the last one.
    std::fs::write(&cfg, "this is not toml [").unwrap();
    w.signal(libc::SIGHUP);
    let before = count(
        &history(&d),
        "SELECT count(*) FROM results WHERE level = 'keys'",
    );
    eventually(Duration::from_secs(30), "keys go on", &w, || {
        count(
            &history(&d),
            "SELECT count(*) FROM results WHERE level = 'keys'",
        ) > before
    });
    assert!(w.log().contains("config not reloaded"), "{}", w.log());
    w.signal(libc::SIGINT);
    assert_eq!(w.wait(Duration::from_secs(30)), 0, "{}", w.log());
}

#[test]
fn two_watchers_never_run_a_level_twice_at_once() {
    let d = Scratch::new("h5-watch-two");
    pair(&d, 3);
    let cfg = config(&d, "[tiers.fast]\ncount = \"2s\"\nkeys = \"2s\"\n");
    let mut a = Watcher::start(&cfg, &["--concurrency", "2"]);
    let mut b = Watcher::start(&cfg, &["--concurrency", "2"]);
    std::thread::sleep(Duration::from_secs(8));
    a.signal(libc::SIGTERM);
    b.signal(libc::SIGTERM);
    assert_eq!(a.wait(Duration::from_secs(30)), 0, "{}", a.log());
    assert_eq!(b.wait(Duration::from_secs(30)), 0, "{}", b.log());
    let h = history(&d);
    // No two results of one (table, level) started within its interval
    // of each other: each was due once, and run once.
    let mut q = h
        .prepare(
            "SELECT table_name, level, started FROM results ORDER BY table_name, level, started",
        )
        .unwrap();
    let rows: Vec<(String, String, i64)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(rows.len() >= 6, "{rows:?}");
    for pair in rows.windows(2) {
        if pair[0].0 == pair[1].0 && pair[0].1 == pair[1].1 {
            assert!(pair[1].2 - pair[0].2 >= 2, "run twice: {pair:?}");
        }
    }
    assert_eq!(count(&h, "SELECT count(*) FROM claims"), 0);
}

#[test]
fn watch_refuses_bad_arguments() {
    let d = Scratch::new("h5-watch-bad");
    pair(&d, 1);
    let cfg = config(&d, "[tiers.fast]\ncount = \"1s\"\n");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for (args, needle) in [
        (vec!["--concurrency", "0"], "--concurrency"),
        (vec!["--jitter", "soon"], "--jitter"),
        (vec!["--listen", addr.as_str()], "--listen"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_driftsum"))
            .args(["watch", "--config", cfg.to_str().unwrap()])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert_eq!(count(&history(&d), "SELECT count(*) FROM results"), 0);
}
