//! The agent: real `driftsum serve` servers on 127.0.0.1 inside the test
//! process (and once as the real binary), real SQLite files, real HTTP.
//!
//! A diff through agents must equal the same diff done in process — the
//! same ranges, differences, and bytes and round trips to the byte — and an
//! agent that stops, a wrong token, a slow or oversized request and garbage
//! on the socket must each give a clear answer, never a hang or data.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rusqlite::Connection;

use driftsum::agent::{AgentClient, ServeOptions, Server, ServerHandle};
use driftsum::check::{self, DiffOptions, Endpoint, RunOutcome};
use driftsum::core::Shape;
use driftsum::source::sqlite::SqliteSource;

const TOKEN: &str = "0123456789abcdef-test-token";

struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "driftsum-agent-{}-{}-{test}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
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

/// Writes `rows` (id → value) as table `t` of a new SQLite file.
fn sqlite(path: &Path, rows: &BTreeMap<u32, u8>) -> String {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, price REAL);")
        .expect("create");
    let tx = conn.unchecked_transaction().expect("tx");
    {
        let mut ins = tx
            .prepare("INSERT INTO t VALUES (?1, ?2, ?3)")
            .expect("prepare");
        for (k, v) in rows {
            ins.execute(rusqlite::params![k, format!("n{v}"), *v as f64 / 4.0])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    format!("sqlite:{}", path.display())
}

fn agent(url: &str) -> ServerHandle {
    agent_with(ServeOptions::new(url, TOKEN))
}

fn agent_with(opts: ServeOptions) -> ServerHandle {
    Server::bind("127.0.0.1:0", opts)
        .expect("bind")
        .spawn()
        .expect("spawn")
}

fn client(h: &ServerHandle) -> AgentClient {
    AgentClient::new(&h.addr().to_string(), TOKEN)
}

fn opts(shape: Shape) -> DiffOptions {
    DiffOptions {
        shape,
        ..DiffOptions::default()
    }
}

fn in_process(a: &str, b: &str, o: &DiffOptions) -> RunOutcome {
    let path = |u: &str| PathBuf::from(u.trim_start_matches("sqlite:"));
    let mut sa = SqliteSource::open(&path(a)).expect("open a");
    let mut sb = SqliteSource::open(&path(b)).expect("open b");
    check::diff(&mut sa, &mut sb, o, &|_, _| {}).expect("diff")
}

/// What must agree between two runs of the same comparison (timings aside).
fn essence(run: &RunOutcome) -> String {
    let mut out = String::new();
    for t in &run.tables {
        let mut s = t.stats.clone();
        s.seconds = 0.0;
        s.scan_seconds = 0.0;
        s.walk_seconds = 0.0;
        s.fetch_seconds = 0.0;
        // Rows read are the agents' business, not the wire's.
        s.source_rows_read = 0;
        s.target_rows_read = 0;
        out += &format!(
            "{} {:?} {} {} {:?} {:?} {:?}\n",
            t.table, t.error, t.source_rows, t.target_rows, t.ranges, t.differences, s
        );
    }
    out
}

fn edited(
    src: &BTreeMap<u32, u8>,
    edits: &[(u32, Option<u8>)],
    burst: Option<(u32, u32)>,
) -> BTreeMap<u32, u8> {
    let mut tgt = src.clone();
    for (k, v) in edits {
        match v {
            Some(v) => {
                tgt.insert(*k, *v);
            }
            None => {
                tgt.remove(k);
            }
        }
    }
    if let Some((start, len)) = burst {
        for k in start..start + len {
            tgt.remove(&k);
        }
    }
    tgt
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn diff_through_agents_equals_in_process(
        src in proptest::collection::btree_map(0u32..3000, 0u8..4, 0..600),
        edits in proptest::collection::vec((0u32..3000, proptest::option::of(0u8..4)), 0..10),
        burst in proptest::option::of((0u32..3000, 1u32..300)),
        small in any::<bool>(),
    ) {
        let s = Scratch::new("equal");
        let tgt = edited(&src, &edits, burst);
        let (a, b) = (sqlite(&s.join("a.db"), &src), sqlite(&s.join("b.db"), &tgt));
        let shape = if small { Shape { leaf_target: 4, fanout: 3 } } else { Shape::default() };
        let o = opts(shape);
        let local = in_process(&a, &b, &o);

        let (ha, hb) = (agent(&a), agent(&b));
        let (mut ca, mut cb) = (client(&ha), client(&hb));
        let remote = check::diff_endpoints(
            &mut Endpoint::Agent(&mut ca),
            &mut Endpoint::Agent(&mut cb),
            &o,
            &|_, _| {},
        )
        .expect("diff through agents");
        prop_assert_eq!(essence(&remote), essence(&local));
        // What the report says was exchanged is what went over the wire.
        let t = &remote.tables[0];
        prop_assert_eq!(t.stats.bytes_exchanged, ca.walk_bytes + cb.walk_bytes);
        prop_assert_eq!(t.stats.round_trips, ca.walk_requests + cb.walk_requests);

        // One side an agent, the other read here.
        let mut sa = SqliteSource::open(&s.join("a.db")).expect("open");
        let mixed = check::diff_endpoints(
            &mut Endpoint::Db(&mut sa),
            &mut Endpoint::Agent(&mut cb),
            &o,
            &|_, _| {},
        )
        .expect("mixed diff");
        prop_assert_eq!(essence(&mixed), essence(&local));
    }
}

#[test]
fn cached_trees_follow_the_data() {
    let s = Scratch::new("cache");
    let rows: BTreeMap<u32, u8> = (0..2000).map(|k| (k, 1)).collect();
    let a = sqlite(&s.join("a.db"), &rows);
    let b = sqlite(&s.join("b.db"), &rows);
    let hb = agent(&b);
    let mut cb = client(&hb);
    let diff = |cb: &mut AgentClient| {
        let mut sa = SqliteSource::open(&s.join("a.db")).expect("open");
        check::diff_endpoints(
            &mut Endpoint::Db(&mut sa),
            &mut Endpoint::Agent(cb),
            &DiffOptions::default(),
            &|_, _| {},
        )
        .expect("diff")
    };
    assert!(diff(&mut cb).tables[0].in_sync());
    // The replica changes: the agent's tree must not hide it.
    let conn = Connection::open(s.join("b.db")).expect("open");
    conn.execute("UPDATE t SET name = 'changed' WHERE id = 777", [])
        .expect("update");
    drop(conn);
    let run = diff(&mut cb);
    let t = &run.tables[0];
    assert_eq!(t.differences.len(), 1, "{t:#?}");
    assert_eq!(
        in_process(&a, &b, &DiffOptions::default()).tables[0].differences,
        t.differences
    );
    assert!(cb.invalidate(None).expect("invalidate") >= 1);
}

/// A TCP relay that passes `allowed` connections through to `to`, then stops
/// the agent behind it and cuts every later connection: an agent that goes
/// away in the middle of a walk.
fn dying_relay(to: std::net::SocketAddr, allowed: usize, handle: ServerHandle) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("relay");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = Arc::new(Mutex::new(Some(handle)));
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut client) = conn else { continue };
            if n >= allowed {
                if let Some(h) = handle.lock().expect("lock").take() {
                    h.stop();
                }
                drop(client);
                continue;
            }
            let Ok(mut server) = TcpStream::connect(to) else {
                continue;
            };
            let (mut c2, mut s2) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
            });
            let _ = std::io::copy(&mut server, &mut client);
        }
    });
    addr
}

#[test]
fn an_agent_stopping_mid_walk_is_a_clear_error() {
    let s = Scratch::new("stop");
    let src: BTreeMap<u32, u8> = (0..20_000).map(|k| (k, 1)).collect();
    let tgt = edited(
        &src,
        &[(100, Some(2)), (9000, None), (15_000, Some(3))],
        None,
    );
    let (a, b) = (sqlite(&s.join("a.db"), &src), sqlite(&s.join("b.db"), &tgt));
    let hb = agent(&b);
    let to = hb.addr();
    // Schema, build, root and one children request get through; then it dies.
    let relay = dying_relay(to, 4, hb);
    let mut cb = AgentClient::new(&relay, TOKEN);
    let (tx, rx) = std::sync::mpsc::channel();
    let a2 = a.clone();
    std::thread::spawn(move || {
        let mut sa = SqliteSource::open(Path::new(a2.trim_start_matches("sqlite:"))).expect("open");
        let run = check::diff_endpoints(
            &mut Endpoint::Db(&mut sa),
            &mut Endpoint::Agent(&mut cb),
            &DiffOptions::default(),
            &|_, _| {},
        );
        let _ = tx.send(run.map(|r| r.tables));
    });
    let tables = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the diff must end, not hang")
        .expect("the run itself completes");
    let t = &tables[0];
    let err = t.error.as_deref().expect("a stopped agent is an error");
    assert!(
        err.contains("the agent at") && err.contains("stopped answering"),
        "{err}"
    );
    assert!(t.differences.is_empty() && t.ranges.is_empty(), "{t:#?}");
    assert_eq!(RunOutcome { tables }.exit_code(), 2);

    // Once it is gone altogether: refused at once, with a hint.
    let mut gone = AgentClient::new(&relay, TOKEN);
    let e = gone.tables().expect_err("gone").to_string();
    assert!(e.contains("agent at"), "{e}");
}

/// Sends raw bytes and returns the whole raw response.
fn raw(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let _ = s.write_all(request);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_wrong_token_gets_nothing() {
    let s = Scratch::new("token");
    let rows: BTreeMap<u32, u8> = (0..500).map(|k| (k, 1)).collect();
    let a = sqlite(&s.join("secret.db"), &rows);
    let h = agent(&a);
    let addr = h.addr().to_string();
    // The right token works, and builds a tree to try to read.
    let mut good = client(&h);
    assert_eq!(good.tables().expect("tables"), ["t"]);

    for token in [None, Some("0123456789abcdef-test-tokeX"), Some("short")] {
        let mut c = AgentClient::new(&addr, token.unwrap_or(""));
        let e = c.tables().expect_err("refused").to_string();
        assert!(
            e.contains("401") && e.contains("wrong or missing token"),
            "{e}"
        );
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        for (path, body) in [
            ("/v1/tables", "".to_string()),
            ("/v1/schema", r#"{"table":"t"}"#.to_string()),
            ("/v1/root", "\u{1}\0\0\0".to_string()),
        ] {
            let method = if path == "/v1/tables" { "GET" } else { "POST" };
            let r = raw(
                &addr,
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            assert!(r.starts_with("HTTP/1.1 401"), "{path}: {r}");
            assert!(
                !r.contains("\"t\"") && !r.contains("name"),
                "{path} leaked: {r}"
            );
        }
    }
    // Health needs no token, and says nothing else.
    let r = raw(&addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("ok"), "{r}");
}

#[test]
fn slow_and_large_requests_do_not_stall_others() {
    let s = Scratch::new("slow");
    let rows: BTreeMap<u32, u8> = (0..100).map(|k| (k, 1)).collect();
    let a = sqlite(&s.join("a.db"), &rows);
    let mut o = ServeOptions::new(&a, TOKEN);
    o.request_timeout = Duration::from_secs(2);
    o.max_body = 1024;
    let h = agent_with(o);
    let addr = h.addr().to_string();
    // A client that starts a request and never finishes it ...
    let mut slow = TcpStream::connect(&addr).expect("connect");
    slow.write_all(b"POST /v1/tree HTTP/1.1\r\nContent-Le")
        .expect("write");
    // ... does not hold up anyone else.
    let started = Instant::now();
    let mut c = client(&h);
    assert_eq!(c.tables().expect("tables"), ["t"]);
    assert!(started.elapsed() < Duration::from_secs(1));
    // And is cut off at the deadline.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A body over the limit is refused unread.
    let big = format!(
        "POST /v1/tree HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100000\r\n\r\n"
    );
    assert!(raw(&addr, big.as_bytes()).starts_with("HTTP/1.1 413"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn garbage_on_the_socket_never_brings_the_agent_down(
        path in prop_oneof![
            Just("/v1/root"), Just("/v1/children"), Just("/v1/entries"),
            Just("/v1/rows"), Just("/v1/tree"), Just("/v1/schema"), Just("/v1/invalidate"),
        ],
        body in proptest::collection::vec(any::<u8>(), 0..300),
        junk in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        static AGENT: std::sync::OnceLock<(Scratch, ServerHandle, String)> = std::sync::OnceLock::new();
        let (_, h, _) = AGENT.get_or_init(|| {
            let s = Scratch::new("garbage");
            let rows: BTreeMap<u32, u8> = (0..300).map(|k| (k, 1)).collect();
            let a = sqlite(&s.join("a.db"), &rows);
            let h = agent(&a);
            // A tree to aim at (id 1).
            let mut c = client(&h);
            let mut sa = SqliteSource::open(&s.join("a.db")).expect("open");
            check::diff_endpoints(&mut Endpoint::Db(&mut sa), &mut Endpoint::Agent(&mut c),
                &DiffOptions::default(), &|_, _| {}).expect("diff");
            (s, h, a)
        });
        let addr = h.addr().to_string();
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ).into_bytes();
        req.extend_from_slice(&body);
        let r = raw(&addr, &req);
        prop_assert!(r.starts_with("HTTP/1.1 "), "{}", r);
        let _ = raw(&addr, &junk);
        let health = raw(&addr, b"GET /healthz HTTP/1.1\r\n\r\n");
        prop_assert!(health.starts_with("HTTP/1.1 200"), "{}", health);
    }
}

#[test]
fn the_binary_serves_and_diffs_through_agents() {
    let s = Scratch::new("binary");
    let src: BTreeMap<u32, u8> = (0..3000).map(|k| (k, 1)).collect();
    let tgt = edited(&src, &[(5, Some(2)), (2500, None)], None);
    let (a, b) = (sqlite(&s.join("a.db"), &src), sqlite(&s.join("b.db"), &tgt));
    let token = s.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("token");
    let bin = env!("CARGO_BIN_EXE_driftsum");
    let mut serve = Command::new(bin)
        .args([
            "serve",
            "--db",
            &a,
            "--listen",
            "127.0.0.1:0",
            "--token-file",
        ])
        .arg(&token)
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut err = serve.stderr.take().expect("stderr");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while err.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    let addr = line
        .rsplit("http://")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let source = format!("driftsum://{addr}");
    let diff = |token_file: &Path| {
        Command::new(bin)
            .args([
                "diff", "--source", &source, "--target", &b, "--format", "json",
            ])
            .arg("--token-file")
            .arg(token_file)
            .output()
            .expect("diff")
    };
    let out = diff(&token);
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(out.status.code(), Some(1), "{line}: {out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let t = &j["tables"][0];
    assert_eq!(t["differences"].as_array().map(Vec::len), Some(2), "{t:#}");
    assert!(t["stats"]["transfer"]["levels"]
        .as_array()
        .is_some_and(|l| !l.is_empty()));
    assert!(t["stats"]["bytes_exchanged"].as_u64() > Some(0));
}

/// A table whose scan order is not the key-byte order (integers and reals
/// mixed in an untyped key column), with a drifted range longer than one
/// page of entries: the agent must page the range in key order.
#[test]
fn unordered_sources_page_in_key_order() {
    let s = Scratch::new("unordered");
    let make = |name: &str, n: i64| {
        let path = s.join(name);
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("CREATE TABLE u (k PRIMARY KEY, v TEXT);")
            .expect("create");
        let tx = conn.unchecked_transaction().expect("tx");
        for i in 0..n {
            tx.execute("INSERT INTO u VALUES (?1, 'x')", [i])
                .expect("int");
            tx.execute("INSERT INTO u VALUES (?1, 'y')", [i as f64 + 0.5])
                .expect("real");
        }
        tx.commit().expect("commit");
        format!("sqlite:{}", path.display())
    };
    let (a, b) = (make("a.db", 20_000), make("b.db", 300));
    let local = in_process(&a, &b, &DiffOptions::default());
    assert_eq!(local.tables[0].differences.len(), 2 * (20_000 - 300));
    let (ha, hb) = (agent(&a), agent(&b));
    let (mut ca, mut cb) = (client(&ha), client(&hb));
    let remote = check::diff_endpoints(
        &mut Endpoint::Agent(&mut ca),
        &mut Endpoint::Agent(&mut cb),
        &DiffOptions::default(),
        &|_, _| {},
    )
    .expect("diff");
    assert_eq!(essence(&remote), essence(&local));
    assert!(remote.tables[0].stats.transfer.entries.round_trips > 2);
}
