//! The dashboard in a real browser: Debian's headless Chromium driven
//! through chromedriver over WebDriver (JSON over HTTP/1.1, spoken here
//! with std's TcpStream and serde_json), on a page written by the real
//! binary from a real history: `driftsum demo`, then one more drifted
//! check. Screenshots at desktop and phone widths are left under target/
//! for a person to look at. Without chromedriver the test fails in CI
//! (CI=true) and is skipped, saying so, elsewhere.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value as J};

use crate::util::{skip, Scratch};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

fn driftsum(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(args)
        .output()
        .expect("run driftsum");
    assert!(
        out.status.code() != Some(2),
        "driftsum {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Where screenshots go: the build's target folder.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// A chromedriver of our own on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let d = Driver { child, port };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, v)) = d.call("GET", "/status", None) {
                if v["value"]["ready"] == json!(true) {
                    return d;
                }
            }
            assert!(Instant::now() < until, "chromedriver did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One WebDriver request: its HTTP status and JSON body.
    fn call(&self, method: &str, path: &str, body: Option<&J>) -> std::io::Result<(u16, J)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        // chromedriver may keep the connection open: read the head, then
        // as many bytes as it announces (or to the end when it does not).
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut buf)? {
                0 => break raw.len(),
                n => raw.extend_from_slice(&buf[..n]),
            }
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let length = head.lines().find_map(|l| {
            l.strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
        match length {
            Some(n) => {
                while raw.len() < head_end + n {
                    match s.read(&mut buf)? {
                        0 => break,
                        k => raw.extend_from_slice(&buf[..k]),
                    }
                }
            }
            None => {
                s.read_to_end(&mut raw)?;
            }
        }
        let rest = String::from_utf8_lossy(&raw[head_end..]).into_owned();
        let chunked = head.contains("transfer-encoding: chunked");
        let body = if chunked { unchunk(&rest) } else { rest };
        Ok((status, serde_json::from_str(&body).unwrap_or(J::Null)))
    }

    /// A request that must succeed; its `value`.
    fn ok(&self, method: &str, path: &str, body: Option<&J>) -> J {
        let (status, v) = self.call(method, path, body).expect("talk to chromedriver");
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }
}

fn unchunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Standard base64, as WebDriver sends screenshots.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = s.bytes().filter_map(val).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &d)| acc | (d as u32) << (18 - 6 * i));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}

/// A browser session, deleted on drop.
struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self
            .driver
            .call("DELETE", &format!("/session/{}", self.id), None);
    }
}

impl Session<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.id)
    }

    fn js(&self, script: &str) -> J {
        let body = json!({ "script": script, "args": [] });
        self.driver
            .ok("POST", &self.path("/execute/sync"), Some(&body))
    }

    fn size(&self, width: u32, height: u32) {
        let body = json!({ "width": width, "height": height });
        self.driver
            .ok("POST", &self.path("/window/rect"), Some(&body));
    }

    fn screenshot(&self, to: &Path) {
        let png = self.driver.ok("GET", &self.path("/screenshot"), None);
        let bytes = base64_decode(png.as_str().expect("base64 text"));
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::create_dir_all(to.parent().expect("a folder")).expect("target folder");
        std::fs::write(to, bytes).expect("write the screenshot");
    }

    /// The browser's console entries at SEVERE (errors), since the last call.
    fn console_errors(&self) -> Vec<J> {
        let body = json!({ "type": "browser" });
        let log = self.driver.ok("POST", &self.path("/se/log"), Some(&body));
        log.as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["level"] == json!("SEVERE"))
            .collect()
    }
}

fn start_session(driver: &Driver) -> Session<'_> {
    let caps = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "chrome",
        "goog:loggingPrefs": { "browser": "ALL" },
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--hide-scrollbars",
                     "--window-size=1280,900"]
        }
    }}});
    let v = driver.ok("POST", "/session", Some(&caps));
    Session {
        driver,
        id: v["sessionId"].as_str().expect("a session id").to_string(),
    }
}

/// A chromedriver to use, or `None` after saying why not (outside CI).
fn have_browser() -> bool {
    if Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists() {
        return true;
    }
    let why = format!(
        "{CHROMEDRIVER} or {CHROMIUM} is missing (apt-get install chromium chromium-driver)"
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "in CI: {why}");
    skip(&why);
    false
}

/// `driftsum demo` into `dir`/demo: the folder of its watched copy (config,
/// replica, history) and the command's output.
fn run_demo(dir: &Scratch) -> (PathBuf, std::process::Output) {
    let demo = dir.join("demo");
    let out = driftsum(&["demo", "--dir", demo.to_str().expect("utf-8 path")]);
    (demo.join("watched"), out)
}

/// The demo's watched copy and history, one more check after a row goes missing, and the
/// page `report` writes from it: orders drifted, customers in sync.
fn page(dir: &Scratch) -> (PathBuf, i64) {
    let (demo, out) = run_demo(dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Open the dashboard: file://"), "{text}");
    assert!(demo.join("status.html").exists());
    let replica = rusqlite::Connection::open(demo.join("replica.db")).expect("open the replica");
    replica
        .execute("DELETE FROM orders WHERE id = 10", [])
        .expect("lose a row");
    drop(replica);
    let config = demo.join("driftsum.toml");
    let config = config.to_str().expect("utf-8 path");
    let out = driftsum(&["check", "--config", config]);
    assert_eq!(out.status.code(), Some(1), "the lost row is drift");
    let html = dir.join("status.html");
    driftsum(&[
        "report",
        "--config",
        config,
        "--out",
        html.to_str().expect("utf-8"),
    ]);
    let hist = rusqlite::Connection::open(demo.join("driftsum-history.sqlite")).expect("history");
    let runs: i64 = hist
        .query_row(
            "SELECT count(DISTINCT run_id) FROM results WHERE table_name = 'orders'",
            [],
            |r| r.get(0),
        )
        .expect("count the runs");
    (html, runs)
}

#[test]
fn the_dashboard_in_a_real_browser() {
    if !have_browser() {
        return;
    }
    let dir = Scratch::new("dashboard");
    let (html, runs) = page(&dir);
    assert_eq!(runs, 3, "the demo's two checks and ours");
    let driver = Driver::start();
    let s = start_session(&driver);
    let url = format!("file://{}", html.display());
    driver.ok("POST", &s.path("/url"), Some(&json!({ "url": url })));

    assert_eq!(s.console_errors(), Vec::<J>::new(), "no console errors");
    assert_eq!(
        s.js("return performance.getEntriesByType('resource').map(e => e.name)"),
        json!([]),
        "nothing fetched beyond the page"
    );
    assert_eq!(s.js("return location.href"), json!(url));

    let rows = s.js(
        "return Array.from(document.querySelectorAll('#status tr.table-row'))
           .map(r => [r.dataset.table, r.innerText])",
    );
    let rows = rows.as_array().expect("rows");
    let names: Vec<&str> = rows.iter().filter_map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["customers", "orders"], "one row per table");
    let text = |i: usize| rows[i][1].as_str().unwrap_or("").to_string();
    assert!(text(1).contains("drift"), "orders: {}", text(1));
    assert!(
        text(0).contains("in sync") && !text(0).contains("drift"),
        "customers: {}",
        text(0)
    );

    let points = s.js(
        "return document.querySelectorAll('details[data-table=\"orders\"] .drift-chart circle.pt').length",
    );
    assert_eq!(points, json!(runs), "one point per run");

    let open = "return document.querySelector('details[data-table=\"orders\"]').open";
    assert_eq!(s.js(open), json!(false));
    let found = driver.ok(
        "POST",
        &s.path("/element"),
        Some(&json!({ "using": "css selector",
                      "value": "tr.table-row[data-table=\"orders\"] button.open" })),
    );
    let element = found
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(J::as_str)
        .expect("the orders button")
        .to_string();
    driver.ok(
        "POST",
        &s.path(&format!("/element/{element}/click")),
        Some(&json!({})),
    );
    assert_eq!(
        s.js(open),
        json!(true),
        "clicking a table opens its drill-down"
    );
    assert_eq!(
        s.console_errors(),
        Vec::<J>::new(),
        "no console errors after the click"
    );

    let shots = target_dir();
    s.size(1280, 900);
    s.js("window.scrollTo(0, 0); return true");
    s.screenshot(&shots.join("dashboard-desktop.png"));
    s.size(390, 844);
    let overflow = s.js("return document.documentElement.scrollWidth - window.innerWidth");
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "no sideways scrolling at phone width: {overflow}"
    );
    s.js("window.scrollTo(0, 0); return true");
    s.screenshot(&shots.join("dashboard-phone.png"));
}

/// `watch --listen ADDR [extra]` on the demo's config, killed on drop.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: signals our own child; SIGTERM lets it record its checks.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn watch(config: &Path, listen: &str, extra: &[&str]) -> Watch {
    let child = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(["watch", "--config", config.to_str().expect("utf-8")])
        .args(["--listen", listen])
        .args(extra)
        .env_remove("DRIFTSUM_NOW")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start watch");
    Watch(child)
}

/// GET / on loopback `port`, with a bearer token if given: status, body.
fn get_page(port: u16, token: Option<&str>) -> (u16, String) {
    let until = Instant::now() + Duration::from_secs(20);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < until, "connecting to watch: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let (head, body) = resp.split_once("\r\n\r\n").expect("a whole response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn watch_serves_the_page_on_loopback_and_asks_a_token_elsewhere() {
    let dir = Scratch::new("dashboard-watch");
    let config = run_demo(&dir).0.join("driftsum.toml");

    let port = free_port();
    let w = watch(&config, &format!("127.0.0.1:{port}"), &[]);
    let (status, body) = get_page(port, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("<!doctype html><!-- driftsum dashboard -->"));
    assert_eq!(body.matches("<tr class=\"table-row\"").count(), 2);
    drop(w);

    // Beyond loopback without a token: the page is refused.
    let port = free_port();
    let w = watch(&config, &format!("0.0.0.0:{port}"), &[]);
    let (status, body) = get_page(port, None);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--token-file"), "{body}");
    drop(w);

    // With a token: only a request bearing it.
    let token = "h2-dashboard-token-0123456789";
    let file = dir.join("token");
    std::fs::write(&file, token).expect("token file");
    let port = free_port();
    let w = watch(
        &config,
        &format!("0.0.0.0:{port}"),
        &["--token-file", file.to_str().expect("utf-8")],
    );
    assert_eq!(get_page(port, None).0, 401);
    assert_eq!(get_page(port, Some("h2-wrong-token-0123456789")).0, 401);
    let (status, body) = get_page(port, Some(token));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("driftsum status"));
    drop(w);
}

#[test]
fn history_shows_incidents_and_patterns_of_the_demo() {
    let dir = Scratch::new("dashboard-history");
    let config = run_demo(&dir).0.join("driftsum.toml");
    let config = config.to_str().expect("utf-8");

    // The demo's first check opened incidents on orders, its second closed them.
    let out = driftsum(&["history", "--config", config, "--format", "json"]);
    let j: J = serde_json::from_slice(&out.stdout).expect("history JSON");
    let incidents = j["incidents"].as_array().expect("incidents");
    assert!(!incidents.is_empty());
    assert!(incidents
        .iter()
        .all(|i| i["table"] == json!("orders") && i["closed"].is_i64()));
    let out = driftsum(&["history", "--config", config]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("incident") && text.contains("closed"),
        "{text}"
    );

    let out = driftsum(&[
        "history", "patterns", "--config", config, "--format", "json",
    ]);
    let j: J = serde_json::from_slice(&out.stdout).expect("patterns JSON");
    let p = &j["patterns"];
    let first = &p["tables"][0];
    assert_eq!(first["table"], json!("orders"));
    assert_eq!(first["drifting_runs"], json!(1));
    assert_eq!(first["runs"], json!(2));
    let customers: Vec<&J> = p["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter(|t| t["table"] == json!("customers"))
        .collect();
    assert!(customers.iter().all(|t| t["behaviour"] == json!("in_sync")));
    assert_eq!(
        p["recurring_ranges"],
        json!([]),
        "one drifting check recurs nowhere"
    );
    assert!(p["recovery"]
        .as_array()
        .expect("recovery")
        .iter()
        .all(|r| r["closed_by"] == json!("in_sync")));
    let out = driftsum(&["history", "patterns", "--config", config]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Recurring ranges:"));
}
