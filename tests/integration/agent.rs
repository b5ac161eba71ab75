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
use proptest::test_runner::TestRunner;
use rusqlite::Connection;

use driftsum::agent::{AgentClient, ServeOptions, Server, ServerHandle};
use driftsum::check::{self, DiffOptions, Endpoint, RunOutcome};
use driftsum::core::{Shape, Value};
use driftsum::reconcile::DiffKind;
use driftsum::source::sqlite::SqliteSource;

use crate::util::{self, Scratch};

const TOKEN: &str = "0123456789abcdef-test-token";

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
            &mut Endpoint::agent(&mut ca),
            &mut Endpoint::agent(&mut cb),
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
            &mut Endpoint::database(&mut sa),
            &mut Endpoint::agent(&mut cb),
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
        // Bound, so the endpoints are dropped before what they borrow.
        let run = check::diff_endpoints(
            &mut Endpoint::database(&mut sa),
            &mut Endpoint::agent(cb),
            &DiffOptions::default(),
            &|_, _| {},
        );
        run.expect("diff")
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
            &mut Endpoint::database(&mut sa),
            &mut Endpoint::agent(&mut cb),
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

/// One agent (and one scratch folder) for every case, made and removed by
/// the test itself: held in a `static`, they would outlive the test program's
/// last test and leave the folder behind.
#[test]
fn garbage_on_the_socket_never_brings_the_agent_down() {
    let s = Scratch::new("agent-garbage");
    let rows: BTreeMap<u32, u8> = (0..300).map(|k| (k, 1)).collect();
    let a = sqlite(&s.join("a.db"), &rows);
    let h = agent(&a);
    // A tree to aim at (id 1).
    let mut c = client(&h);
    let mut sa = SqliteSource::open(&s.join("a.db")).expect("open");
    check::diff_endpoints(
        &mut Endpoint::database(&mut sa),
        &mut Endpoint::agent(&mut c),
        &DiffOptions::default(),
        &|_, _| {},
    )
    .expect("diff");
    let addr = h.addr().to_string();
    let cases = (
        prop_oneof![
            Just("/v1/root"),
            Just("/v1/children"),
            Just("/v1/entries"),
            Just("/v1/rows"),
            Just("/v1/tree"),
            Just("/v1/schema"),
            Just("/v1/invalidate"),
        ],
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(any::<u8>(), 0..300),
    );
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 64,
        source_file: Some(file!()),
        ..ProptestConfig::default()
    });
    let result = runner.run(&cases, |(path, body, junk)| {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        let r = raw(&addr, &req);
        prop_assert!(r.starts_with("HTTP/1.1 "), "{}", r);
        let _ = raw(&addr, &junk);
        let health = raw(&addr, b"GET /healthz HTTP/1.1\r\n\r\n");
        prop_assert!(health.starts_with("HTTP/1.1 200"), "{}", health);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
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
    let line = util::first_stderr_line(&mut serve);
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
        &mut Endpoint::agent(&mut ca),
        &mut Endpoint::agent(&mut cb),
        &DiffOptions::default(),
        &|_, _| {},
    )
    .expect("diff");
    assert_eq!(essence(&remote), essence(&local));
    assert!(remote.tables[0].stats.transfer.entries.round_trips > 2);
}

// ------------------------------------------------------------ odd keys

/// A new SQLite file built by `sql`.
fn scripted(path: &Path, sql: &str) -> String {
    Connection::open(path)
        .and_then(|c| c.execute_batch(sql))
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
    format!("sqlite:{}", path.display())
}

/// The same comparison four ways: in process, agent against agent, and a
/// database read here against an agent, each way round.
fn four_ways(a: &str, b: &str, o: &DiffOptions) -> Vec<(&'static str, RunOutcome)> {
    let local = in_process(a, b, o);
    let path = |u: &str| PathBuf::from(u.trim_start_matches("sqlite:"));
    let (ha, hb) = (agent(a), agent(b));
    let (mut ca, mut cb) = (client(&ha), client(&hb));
    let run = |s: &mut Endpoint<'_>, t: &mut Endpoint<'_>| {
        check::diff_endpoints(s, t, o, &|_, _| {}).expect("diff runs")
    };
    let aa = run(&mut Endpoint::agent(&mut ca), &mut Endpoint::agent(&mut cb));
    let mut sa = SqliteSource::open(&path(a)).expect("open a");
    let da = run(
        &mut Endpoint::database(&mut sa),
        &mut Endpoint::agent(&mut cb),
    );
    let mut sb = SqliteSource::open(&path(b)).expect("open b");
    let ad = run(
        &mut Endpoint::agent(&mut ca),
        &mut Endpoint::database(&mut sb),
    );
    vec![
        ("in process", local),
        ("agent against agent", aa),
        ("database against agent", da),
        ("agent against database", ad),
    ]
}

/// Dense drift in many ranges, each smaller than a chunk, over several
/// chunks: in process, both sides are read once more and compared as they
/// stream, and that run reports the ranges, differences and transfer
/// figures that range reads through agents exchange, every way round.
#[test]
fn dense_drift_streamed_costs_what_agents_exchange() {
    let s = Scratch::new("densecost");
    // Even ids; blocks of 3,000 rows alternately drifted (changed, some
    // missing, extra odd ids among them) and equal but for a row here and
    // there.
    let src: BTreeMap<u32, u8> = (0..150_000u32).map(|i| (2 * i, (i % 200) as u8)).collect();
    let mut tgt = BTreeMap::new();
    for (&k, &v) in &src {
        let i = k / 2;
        let drifted = (i / 3_000) % 2 == 1;
        if drifted && i % 89 == 0 {
            tgt.insert(k + 1, 7);
        }
        if drifted && i % 97 == 0 {
            continue;
        }
        let changed = drifted || i % 5_000 == 17;
        tgt.insert(k, if changed { v.wrapping_add(1) } else { v });
    }
    let (a, b) = (sqlite(&s.join("a.db"), &src), sqlite(&s.join("b.db"), &tgt));
    let runs = four_ways(&a, &b, &DiffOptions::default());
    let local = &runs[0].1.tables[0];
    // Streamed: each side read once for its tree and once more.
    assert_eq!(local.stats.source_rows_read, 2 * src.len() as u64);
    assert_eq!(local.stats.target_rows_read, 2 * tgt.len() as u64);
    // More drifted rows than one chunk holds, and no range wider than one.
    let rows: u64 = local.ranges.iter().map(|r| r.source_rows).sum();
    assert!(rows > 65_536, "{rows} drifted rows");
    assert!(local.ranges.iter().all(|r| r.source_rows < 65_536));
    assert!(local.ranges.len() > 25, "{} ranges", local.ranges.len());
    for (how, run) in &runs {
        let t = &run.tables[0];
        assert_eq!(t.stats.transfer, local.stats.transfer, "{how}");
        assert_eq!(t.ranges, local.ranges, "{how}");
        // (Thousands of them: not printed.)
        assert!(
            t.differences == local.differences,
            "{how}: other differences"
        );
    }
}

/// Keys SQL range reads cannot reach (a NULL in a TEXT key, text keys
/// stored as blobs, integer keys an untyped replica holds as text): through
/// agents, every way round, exactly the in-process differences, which are
/// the right ones.
#[test]
fn odd_keys_through_agents_find_exactly_the_local_differences() {
    let s = Scratch::new("oddkeys");
    let fill = |v: &str| {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 299)
             INSERT INTO t SELECT printf('k%03d', i), {v} FROM n;"
        )
    };
    let cases: Vec<(&str, String, String, Vec<Value>)> = vec![
        (
            "null key",
            format!(
                "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER); {} INSERT INTO t VALUES (NULL, 1);",
                fill("1")
            ),
            format!(
                "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER); {} INSERT INTO t VALUES (NULL, 2);",
                fill("1")
            ),
            vec![Value::Null],
        ),
        (
            "blob keys",
            "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 299)
             INSERT INTO t SELECT CAST(printf('k%03d', i) AS BLOB), 1 FROM n;"
                .to_string(),
            "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 299)
             INSERT INTO t SELECT CAST(printf('k%03d', i) AS BLOB),
                                  CASE WHEN i IN (7, 150, 299) THEN 2 ELSE 1 END FROM n;"
                .to_string(),
            ["k007", "k150", "k299"]
                .map(|k| Value::Text(k.into()))
                .to_vec(),
        ),
        (
            "untyped key holding text",
            "CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
             INSERT INTO t SELECT i, i FROM n;"
                .to_string(),
            "CREATE TABLE t (k, v INTEGER, PRIMARY KEY (k));
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
             INSERT INTO t SELECT CASE WHEN i < 100 THEN i ELSE CAST(i AS TEXT) END,
                                  CASE WHEN i % 25 = 0 THEN -i - 1 ELSE i END FROM n;"
                .to_string(),
            (0..1000)
                .filter(|i| i % 25 == 0)
                .map(Value::Int)
                .collect(),
        ),
    ];
    for (name, sa, sb, changed) in cases {
        let a = scripted(&s.join(&format!("{name}-a.db")), &sa);
        let b = scripted(&s.join(&format!("{name}-b.db")), &sb);
        for shape in [
            Shape::default(),
            Shape {
                leaf_target: 4,
                fanout: 3,
            },
        ] {
            let runs = four_ways(&a, &b, &opts(shape));
            let local = &runs[0].1.tables[0];
            let keys: Vec<Value> = local
                .differences
                .iter()
                .map(|d| {
                    assert_eq!(d.kind, DiffKind::Changed, "{name}: {d:?}");
                    d.key[0].clone()
                })
                .collect();
            assert_eq!(keys, changed, "{name}, in process");
            for (how, run) in &runs {
                assert_eq!(run.exit_code(), 1, "{name}, {how}: {:#?}", run.tables);
                assert_eq!(essence(run), essence(&runs[0].1), "{name}, {how}");
            }
        }
    }
}

/// One key as the reference sees it, whatever storage class holds it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum MKey {
    Null,
    Int(i64),
    /// A finite, non-integral float, by its bits.
    Real(u64),
    Text(String),
    Bytes(Vec<u8>),
}

impl MKey {
    fn from_value(v: &Value) -> MKey {
        match v {
            Value::Null => MKey::Null,
            Value::Int(i) => MKey::Int(i64::try_from(*i).expect("fits")),
            Value::Float(f) => MKey::Real(f.to_bits()),
            Value::Text(s) => MKey::Text(s.clone()),
            Value::Bytes(b) => MKey::Bytes(b.clone()),
            other => panic!("unexpected key {other:?}"),
        }
    }
}

/// How the key column is declared on each side, and how keys are stored.
#[derive(Clone, Copy, Debug)]
enum OddKind {
    /// `k TEXT PRIMARY KEY`, each key stored as text or as a UTF-8 blob
    /// (chosen per side), and a NULL key.
    TextOrBlob,
    /// `k BLOB PRIMARY KEY`, each key stored as a blob or, when it is
    /// UTF-8, as text.
    BlobOrText,
    /// `INTEGER PRIMARY KEY` in the source; in the replica an untyped key
    /// holding each key as an integer, as text or as a REAL.
    IntLoose,
    /// An untyped key on both sides, holding integers, reals, text, blobs
    /// and a NULL: each its own key.
    Untyped,
    /// `k REAL PRIMARY KEY`.
    Real,
}

const REALS: &[f64] = &[0.5, -0.5, 1.25, -1e300, 1e-300, 3.75, 1e15 + 0.5, -7.125];

fn odd_key(kind: OddKind) -> BoxedStrategy<MKey> {
    let text = proptest::collection::vec(
        proptest::sample::select(vec!['a', 'b', 'Z', 'é', '\0', '9']),
        0..4,
    )
    .prop_map(|c| MKey::Text(c.into_iter().collect()));
    let bytes = proptest::collection::vec(
        proptest::sample::select(vec![0u8, 0x61, 0x62, 0x7f, 0x80, 0xff]),
        0..4,
    )
    .prop_map(MKey::Bytes);
    let int = prop_oneof![
        4 => -20i64..300,
        1 => proptest::sample::select(vec![i64::MIN, -1, 0, i64::MAX]),
    ]
    .prop_map(MKey::Int);
    let real = proptest::sample::select(REALS.to_vec()).prop_map(|f| MKey::Real(f.to_bits()));
    match kind {
        OddKind::TextOrBlob => prop_oneof![20 => text, 1 => Just(MKey::Null)].boxed(),
        OddKind::BlobOrText => bytes.boxed(),
        OddKind::IntLoose => int.boxed(),
        OddKind::Untyped => {
            prop_oneof![3 => int, 2 => real, 3 => text, 3 => bytes, 1 => Just(MKey::Null)].boxed()
        }
        OddKind::Real => real.boxed(),
    }
}

/// How side `salt` stores `k` (a choice per key and side).
fn stored(kind: OddKind, k: &MKey, salt: u64, replica: bool) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    let mut h = salt ^ 0xcbf2_9ce4_8422_2325;
    for b in format!("{k:?}").bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let r = (h ^ (h >> 29)) % 3;
    match (kind, k) {
        (_, MKey::Null) => Sql::Null,
        (OddKind::TextOrBlob, MKey::Text(t)) if r == 0 => Sql::Blob(t.as_bytes().to_vec()),
        (OddKind::BlobOrText, MKey::Bytes(b)) if r == 0 => match String::from_utf8(b.clone()) {
            Ok(t) => Sql::Text(t),
            Err(_) => Sql::Blob(b.clone()),
        },
        (OddKind::IntLoose, MKey::Int(i)) if replica && r == 1 => Sql::Text(i.to_string()),
        (OddKind::IntLoose, MKey::Int(i)) if replica && r == 2 && i.unsigned_abs() < 1 << 53 => {
            Sql::Real(*i as f64)
        }
        (_, MKey::Int(i)) => Sql::Integer(*i),
        (_, MKey::Real(bits)) => Sql::Real(f64::from_bits(*bits)),
        (_, MKey::Text(t)) => Sql::Text(t.clone()),
        (_, MKey::Bytes(b)) => Sql::Blob(b.clone()),
    }
}

fn odd_table(path: &Path, kind: OddKind, replica: bool, salt: u64, rows: &BTreeMap<MKey, i64>) {
    let key = match (kind, replica) {
        (OddKind::TextOrBlob, _) => "k TEXT PRIMARY KEY",
        (OddKind::BlobOrText, _) => "k BLOB PRIMARY KEY",
        (OddKind::IntLoose, false) => "k INTEGER PRIMARY KEY",
        (OddKind::IntLoose, true) | (OddKind::Untyped, _) => "k PRIMARY KEY",
        (OddKind::Real, _) => "k REAL PRIMARY KEY",
    };
    let conn = Connection::open(path).expect("open");
    conn.execute_batch(&format!("CREATE TABLE t ({key}, v INTEGER);"))
        .expect("create");
    let tx = conn.unchecked_transaction().expect("tx");
    for (k, v) in rows {
        tx.execute(
            "INSERT INTO t VALUES (?1, ?2)",
            rusqlite::params![stored(kind, k, salt, replica), v],
        )
        .unwrap_or_else(|e| panic!("insert {k:?}: {e}"));
    }
    tx.commit().expect("commit");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    /// Keys in every storage class SQLite has (and NULL), declared or
    /// untyped, text, blob, integer and real: in process and through agents
    /// every way round, the differences are exactly the naive reference's
    /// (match rows by key, compare the value).
    #[test]
    fn odd_keys_through_agents_match_the_reference(
        (kind, src, edits, inserts) in prop_oneof![
            Just(OddKind::TextOrBlob), Just(OddKind::BlobOrText), Just(OddKind::IntLoose),
            Just(OddKind::Untyped), Just(OddKind::Real),
        ].prop_flat_map(|kind| (
            Just(kind),
            proptest::collection::btree_map(odd_key(kind), 0i64..3, 0..150),
            proptest::collection::vec((any::<proptest::sample::Index>(), proptest::option::of(0i64..3)), 0..8),
            proptest::collection::btree_map(odd_key(kind), 0i64..3, 0..4),
        )),
        salts in any::<(u64, u64)>(),
        small in any::<bool>(),
    ) {
        let mut tgt = src.clone();
        for (at, v) in &edits {
            if tgt.is_empty() {
                break;
            }
            let k = tgt.keys().nth(at.index(tgt.len())).cloned().expect("in range");
            match v {
                Some(v) => { tgt.insert(k, *v); }
                None => { tgt.remove(&k); }
            }
        }
        for (k, v) in inserts {
            tgt.entry(k).or_insert(v);
        }
        let mut want: Vec<(DiffKind, MKey)> = Vec::new();
        for (k, v) in &src {
            match tgt.get(k) {
                None => want.push((DiffKind::Missing, k.clone())),
                Some(w) if w != v => want.push((DiffKind::Changed, k.clone())),
                Some(_) => {}
            }
        }
        want.extend(tgt.keys().filter(|k| !src.contains_key(*k)).map(|k| (DiffKind::Extra, k.clone())));
        want.sort_by(|a, b| a.1.cmp(&b.1));

        let s = Scratch::new("oddprop");
        odd_table(&s.join("a.db"), kind, false, salts.0, &src);
        odd_table(&s.join("b.db"), kind, true, salts.1, &tgt);
        let (a, b) = (
            format!("sqlite:{}", s.join("a.db").display()),
            format!("sqlite:{}", s.join("b.db").display()),
        );
        let shape = if small { Shape { leaf_target: 4, fanout: 3 } } else { Shape::default() };
        for (how, run) in four_ways(&a, &b, &opts(shape)) {
            let t = &run.tables[0];
            prop_assert!(t.error.is_none(), "{:?} {}: {:?}", kind, how, t.error);
            prop_assert_eq!((t.source_rows, t.target_rows), (src.len() as u64, tgt.len() as u64));
            let mut got: Vec<(DiffKind, MKey)> = t
                .differences
                .iter()
                .map(|d| (d.kind, MKey::from_value(&d.key[0])))
                .collect();
            got.sort_by(|a, b| a.1.cmp(&b.1));
            prop_assert_eq!(&got, &want, "{:?} {}", kind, how);
            prop_assert_eq!(run.exit_code(), u8::from(!want.is_empty()), "{}", how);
        }
    }
}

// ------------------------------------------------------------ one snapshot

/// Flips table `t` of the replica between two states, each 200 rows away
/// from the source (names of ids 1000-1199, or of 2000-2199, changed), until
/// told to stop; `flip` runs one state's statement, and `flipped` counts
/// the flips so far (so diffs go on until they overlapped enough writes,
/// however slow a loaded machine makes the writer).
fn flipper(
    stop: Arc<std::sync::atomic::AtomicBool>,
    flipped: Arc<AtomicUsize>,
    mut flip: impl FnMut(bool) + Send + 'static,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut flips = 0;
        let mut state = false;
        while !stop.load(Ordering::SeqCst) {
            state = !state;
            flip(state);
            flips += 1;
            flipped.store(flips, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis((flips as u64 * 37) % 60));
        }
        flips
    })
}

const FLIP_SQL: &str = "UPDATE t SET name = CASE WHEN id / 1000 = ?1 THEN 'x' ELSE 'n1' END
                        WHERE id BETWEEN 1000 AND 1199 OR id BETWEEN 2000 AND 2199";

/// What one diff against a flipping replica may say: exactly one state's
/// 200 differences, or an error (exit 2). Returns whether it was an answer.
fn one_state_or_refused(run: &RunOutcome) -> bool {
    let t = &run.tables[0];
    if let Some(e) = &t.error {
        assert_eq!(run.exit_code(), 2, "{e}");
        return false;
    }
    assert_eq!(
        t.differences.len(),
        200,
        "a mixed answer: {} differences",
        t.differences.len()
    );
    let block = |d: &driftsum::reconcile::Difference| match d.key[0] {
        Value::Int(i) => i / 1000,
        _ => -1,
    };
    let first = block(&t.differences[0]);
    assert!(
        (first == 1 || first == 2) && t.differences.iter().all(|d| block(d) == first),
        "differences from two states: {:?}",
        t.differences.iter().map(|d| &d.key).collect::<Vec<_>>()
    );
    assert_eq!(run.exit_code(), 1);
    true
}

/// A writer flipping a SQLite replica between two states while diffs run
/// through its agent: every diff reports exactly one state's 200
/// differences or fails (410, exit 2), in rollback-journal and WAL mode.
#[test]
fn a_sqlite_replica_written_during_diffs_never_gives_a_mixed_answer() {
    for mode in ["DELETE", "WAL"] {
        let s = Scratch::new("flip");
        let rows: BTreeMap<u32, u8> = (0..4000).map(|k| (k, 1)).collect();
        let a = sqlite(&s.join("a.db"), &rows);
        let b = sqlite(&s.join("b.db"), &rows);
        let writer = Connection::open(s.join("b.db")).expect("writer");
        writer
            .busy_timeout(Duration::from_secs(30))
            .expect("timeout");
        writer
            .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |_| Ok(()))
            .expect("mode");
        writer.execute(FLIP_SQL, [1]).expect("first state");
        let hb = agent(&b);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flipped = Arc::new(AtomicUsize::new(0));
        let flips = flipper(stop.clone(), flipped.clone(), move |state| {
            writer
                .execute(FLIP_SQL, [if state { 2 } else { 1 }])
                .expect("flip");
        });
        let (mut answered, mut refused) = (0, 0);
        let mut diffs = 0;
        while diffs < 20 || (flipped.load(Ordering::SeqCst) <= 5 && diffs < 1000) {
            diffs += 1;
            let mut sa = SqliteSource::open(Path::new(a.trim_start_matches("sqlite:"))).expect("a");
            let mut cb = client(&hb);
            let run = check::diff_endpoints(
                &mut Endpoint::database(&mut sa),
                &mut Endpoint::agent(&mut cb),
                &DiffOptions::default(),
                &|_, _| {},
            )
            .expect("diff runs");
            if one_state_or_refused(&run) {
                answered += 1;
            } else {
                refused += 1;
            }
        }
        stop.store(true, Ordering::SeqCst);
        let flips = flips.join().expect("writer");
        assert!(flips > 5, "{mode}: the writer flipped {flips} times");
        assert!(answered > 0, "{mode}: every diff refused ({refused})");
    }
}

/// A file changed in place (same length) with its modification time put
/// back: the header's change counter tells the agent, which rebuilds.
#[test]
fn a_file_changed_with_its_mtime_restored_is_noticed() {
    let s = Scratch::new("mtime");
    let rows: BTreeMap<u32, u8> = (0..2000).map(|k| (k, 1)).collect();
    let a = sqlite(&s.join("a.db"), &rows);
    let b = sqlite(&s.join("b.db"), &rows);
    let hb = agent(&b);
    let diff = || {
        let mut sa = SqliteSource::open(&s.join("a.db")).expect("open");
        let mut cb = client(&hb);
        // Bound, so the endpoints are dropped before what they borrow.
        let run = check::diff_endpoints(
            &mut Endpoint::database(&mut sa),
            &mut Endpoint::agent(&mut cb),
            &DiffOptions::default(),
            &|_, _| {},
        );
        run.expect("diff")
    };
    assert!(diff().tables[0].in_sync());
    let path = s.join("b.db");
    let before = std::fs::metadata(&path).expect("meta");
    let conn = Connection::open(&path).expect("open");
    conn.execute("UPDATE t SET name = 'n2' WHERE id = 777", [])
        .expect("update");
    drop(conn);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(before.modified().expect("mtime")))
        .expect("restore the mtime");
    let after = std::fs::metadata(&path).expect("meta");
    assert_eq!(
        (after.len(), after.modified().ok()),
        (before.len(), before.modified().ok())
    );
    let run = diff();
    let t = &run.tables[0];
    assert_eq!(t.differences.len(), 1, "{t:#?}");
    assert_eq!(t.differences[0].key, vec![Value::Int(777)]);
    assert_eq!(
        in_process(&a, &b, &DiffOptions::default()).tables[0].differences,
        t.differences
    );
}

/// PostgreSQL behind an agent, written during diffs: the agent keeps the
/// tree's connection and snapshot, so every diff reports exactly one
/// state's 200 differences. Skipped without `DRIFTSUM_TEST_POSTGRES`.
#[test]
fn a_postgres_source_written_during_diffs_answers_from_one_snapshot() {
    type Admin = util::Admin<sqlx::PgConnection>;
    let Some(url) = util::postgres_url() else {
        return;
    };
    let schema = util::unique("ds_agentflip");
    let mut setup = Admin::connect(&url);
    setup.exec(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
         CREATE TABLE {schema}.t (id int PRIMARY KEY, name text, price double precision);
         INSERT INTO {schema}.t SELECT i, 'n1', 0.25 FROM generate_series(0, 3999) i;
         UPDATE {schema}.t SET name = 'x' WHERE id BETWEEN 1000 AND 1199;"
    ));
    struct DropSchema(Admin, String);
    impl Drop for DropSchema {
        fn drop(&mut self) {
            let _ = self
                .0
                .try_exec(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.1));
        }
    }
    let _cleanup = DropSchema(setup, schema.clone());

    let s = Scratch::new("pgflip");
    let rows: BTreeMap<u32, u8> = (0..4000).map(|k| (k, 1)).collect();
    sqlite(&s.join("b.db"), &rows);
    let sep = if url.contains('?') { '&' } else { '?' };
    let pg = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let ha = agent(&pg);

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writer = Admin::connect(&url);
    let flip_sql = FLIP_SQL.replace("UPDATE t", &format!("UPDATE {schema}.t"));
    let flipped = Arc::new(AtomicUsize::new(0));
    let flips = flipper(stop.clone(), flipped.clone(), move |state| {
        let sql = flip_sql.replace("?1", if state { "2" } else { "1" });
        writer.try_exec(&sql).expect("flip");
    });
    let mut diffs = 0;
    while diffs < 20 || (flipped.load(Ordering::SeqCst) <= 5 && diffs < 1000) {
        diffs += 1;
        let mut ca = client(&ha);
        // A new tree (and snapshot) for every diff.
        ca.invalidate(None).expect("invalidate");
        let mut sb = SqliteSource::open(&s.join("b.db")).expect("b");
        let run = check::diff_endpoints(
            &mut Endpoint::agent(&mut ca),
            &mut Endpoint::database(&mut sb),
            &DiffOptions::default(),
            &|_, _| {},
        )
        .expect("diff runs");
        assert!(one_state_or_refused(&run), "{:?}", run.tables[0].error);
    }
    stop.store(true, Ordering::SeqCst);
    let flips = flips.join().expect("writer");
    assert!(flips > 5, "the writer flipped {flips} times");
}

// ------------------------------------------------------------ connections

/// Holds `n` connections that send half a request and never finish it,
/// opening a new one whenever one is cut off, until `stop`.
fn slow_clients(
    addr: std::net::SocketAddr,
    n: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<usize>> {
    (0..n)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut opened = 0;
                while !stop.load(Ordering::SeqCst) {
                    let Ok(mut c) = TcpStream::connect(addr) else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    opened += 1;
                    let _ = c.write_all(b"POST /v1/tree HTTP/1.1\r\nContent-Le");
                    let _ = c.set_read_timeout(Some(Duration::from_millis(100)));
                    let mut buf = [0u8; 256];
                    loop {
                        match c.read(&mut buf) {
                            Ok(_) => break,
                            Err(_) if stop.load(Ordering::SeqCst) => break,
                            Err(_) => continue,
                        }
                    }
                }
                opened
            })
        })
        .collect()
}

/// 64 slow connections without a token (as many as `max_connections`),
/// reopened as soon as they are cut off, do not make comparers fail.
#[test]
fn slow_unauthenticated_connections_do_not_crowd_out_comparers() {
    let s = Scratch::new("crowd");
    let src: BTreeMap<u32, u8> = (0..3000).map(|k| (k, 1)).collect();
    let tgt = edited(&src, &[(5, Some(2)), (2500, None)], None);
    sqlite(&s.join("a.db"), &src);
    let b = sqlite(&s.join("b.db"), &tgt);
    {
        let h = agent(&b);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let slow = slow_clients(h.addr(), 64, stop.clone());
        std::thread::sleep(Duration::from_millis(500));
        let results: Vec<Result<usize, String>> = std::thread::scope(|scope| {
            let diffs: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..7)
                            .map(|_| {
                                let mut sa = SqliteSource::open(&s.join("a.db")).expect("a");
                                let mut c = client(&h);
                                let run = check::diff_endpoints(
                                    &mut Endpoint::database(&mut sa),
                                    &mut Endpoint::agent(&mut c),
                                    &DiffOptions::default(),
                                    &|_, _| {},
                                )
                                .map_err(|e| e.to_string())?;
                                let t = &run.tables[0];
                                match &t.error {
                                    Some(e) => Err(e.clone()),
                                    None => Ok(t.differences.len()),
                                }
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            diffs
                .into_iter()
                .flat_map(|d| d.join().expect("diff thread"))
                .collect()
        });
        stop.store(true, Ordering::SeqCst);
        let opened: usize = slow.into_iter().map(|t| t.join().expect("slow")).sum();
        assert!(opened >= 64);
        assert_eq!(results.len(), 28);
        for r in &results {
            assert_eq!(r, &Ok(2), "{results:?}");
        }
    }
}

/// The `Bearer` scheme name in any case, as RFC 7235 has it.
#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let s = Scratch::new("bearer");
    let rows: BTreeMap<u32, u8> = (0..10).map(|k| (k, 1)).collect();
    let a = sqlite(&s.join("a.db"), &rows);
    let h = agent(&a);
    let addr = h.addr().to_string();
    let ask = |auth: &str| {
        raw(
            &addr,
            format!("GET /v1/tables HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n")
                .as_bytes(),
        )
    };
    for scheme in ["Bearer", "bearer", "BEARER", "beaRER"] {
        for gap in [" ", "  "] {
            let r = ask(&format!("{scheme}{gap}{TOKEN}"));
            assert!(
                r.starts_with("HTTP/1.1 200") && r.ends_with(r#"["t"]"#),
                "{scheme}: {r}"
            );
        }
    }
    for auth in [
        format!("Basic {TOKEN}"),
        format!("Bearer{TOKEN}"),
        TOKEN.to_string(),
    ] {
        assert!(ask(&auth).starts_with("HTTP/1.1 401"), "{auth}");
    }
}

// ------------------------------------------------------------ every key kind

/// The key kinds of the local property tests (tests/diff_reference.rs), here
/// through agents: how table `t`'s key is declared.
#[derive(Clone, Copy, Debug)]
enum KeyKind {
    /// `k INTEGER PRIMARY KEY`, over the whole i64 range.
    Int,
    /// `k TEXT PRIMARY KEY`, from the hostile alphabet.
    Text,
    /// `a INTEGER, b TEXT, PRIMARY KEY (a, b)`.
    IntText,
    /// `a TEXT, b INTEGER, PRIMARY KEY (a, b)`.
    TextInt,
    /// `k UUID PRIMARY KEY`, each key stored (per side) as text in either
    /// case, mixed case, with or without hyphens, or as a 16-byte blob.
    Uuid,
    /// `k BLOB PRIMARY KEY`.
    Blob,
    /// `k TEXT PRIMARY KEY COLLATE NOCASE`, hostile text (NUL aside) with
    /// its ASCII letters' case set by position (so no two keys are equal
    /// under NOCASE, whose order is not byte order).
    TextNocase,
    /// `k TIMESTAMPTZ PRIMARY KEY`, stored as text in one form per side
    /// (no suffix, `Z` or `+00:00`), many keys to a second: their key
    /// order is not time order within it (`…:00.05Z`, `…:00.5Z`, `…:00Z`).
    Instant,
}

/// One key column's value as the reference sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum KCell {
    I(i64),
    T(String),
    B(Vec<u8>),
    U([u8; 16]),
    /// An instant, in microseconds since 1970.
    Ts(i64),
}

impl KCell {
    fn from_value(v: &Value) -> KCell {
        match v {
            Value::Int(i) => KCell::I(i64::try_from(*i).expect("key fits i64")),
            Value::Text(s) => KCell::T(s.clone()),
            Value::Bytes(b) => KCell::B(b.clone()),
            Value::Uuid(u) => KCell::U(*u),
            Value::Timestamp(m) => KCell::Ts(i64::try_from(*m).expect("key fits i64")),
            other => panic!("unexpected key {other:?}"),
        }
    }
}

type AKey = Vec<KCell>;
/// A row's values: `v INTEGER, w TEXT`.
type AVals = (i64, String);

/// Key characters: shared prefixes, NUL, multi-byte and 4-byte UTF-8, DEL.
const HOSTILE_CHARS: &[char] = &['a', 'b', 'A', ' ', '\0', '\u{7f}', 'é', '😀'];
const HOSTILE_BYTES: &[u8] = &[0x00, 0x01, 0x61, 0x7f, 0x80, 0xfe, 0xff];

fn hostile_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(HOSTILE_CHARS), 0..max)
        .prop_map(String::from_iter)
}

fn extreme_int() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -20i64..300,
        1 => any::<i64>(),
        2 => proptest::sample::select(vec![
            i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX,
        ]),
    ]
}

fn a_key(kind: KeyKind) -> BoxedStrategy<AKey> {
    let small_or_any = || prop_oneof![-3i64..8, extreme_int()];
    match kind {
        KeyKind::Int => extreme_int().prop_map(|i| vec![KCell::I(i)]).boxed(),
        KeyKind::Text => hostile_text(5).prop_map(|s| vec![KCell::T(s)]).boxed(),
        KeyKind::IntText => (small_or_any(), hostile_text(4))
            .prop_map(|(a, b)| vec![KCell::I(a), KCell::T(b)])
            .boxed(),
        KeyKind::TextInt => (hostile_text(4), small_or_any())
            .prop_map(|(a, b)| vec![KCell::T(a), KCell::I(b)])
            .boxed(),
        KeyKind::Uuid => prop_oneof![
            // Few distinct bytes, so keys share prefixes.
            proptest::collection::vec(proptest::sample::select(vec![0u8, 0x0f, 0xa0, 0xff]), 16)
                .prop_map(|v| {
                    let mut u = [0u8; 16];
                    u.copy_from_slice(&v);
                    u
                }),
            any::<[u8; 16]>(),
        ]
        .prop_map(|u| vec![KCell::U(u)])
        .boxed(),
        KeyKind::Blob => proptest::collection::vec(proptest::sample::select(HOSTILE_BYTES), 0..5)
            .prop_map(|b| vec![KCell::B(b)])
            .boxed(),
        KeyKind::TextNocase => hostile_text(5)
            .prop_map(|s| {
                let cased = s
                    .chars()
                    .enumerate()
                    .map(|(i, c)| match (c, i % 2) {
                        // NOCASE compares as C strings: past a NUL, keys
                        // of one length collate equal.
                        ('\0', _) => '_',
                        (c, 0) => c.to_ascii_uppercase(),
                        (c, _) => c.to_ascii_lowercase(),
                    })
                    .collect();
                vec![KCell::T(cased)]
            })
            .boxed(),
        KeyKind::Instant => (
            0i64..40,
            prop_oneof![
                Just(0i64),
                Just(50_000),
                Just(500_000),
                0i64..10,
                0i64..1_000_000
            ],
        )
            .prop_map(|(s, f)| vec![KCell::Ts(1_700_000_000_000_000 + s * 1_000_000 + f)])
            .boxed(),
    }
}

/// How a side stores one key cell; UUIDs take one of five spellings,
/// chosen per key and side by `salt`.
fn key_sql(cell: &KCell, salt: u64) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    match cell {
        KCell::I(i) => Sql::Integer(*i),
        KCell::T(s) => Sql::Text(s.clone()),
        KCell::B(b) => Sql::Blob(b.clone()),
        KCell::U(u) => {
            let mut h = salt ^ 0xcbf2_9ce4_8422_2325;
            for b in u {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
            let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
            let hyphens = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            // Bare hex of decimal digits only is stored by SQLite as a number
            // (a_uuid_sqlite_stored_as_a_number_is_not_that_uuid): hyphens then.
            let bare = !hex.bytes().all(|c| c.is_ascii_digit());
            match (h ^ (h >> 29)) % 5 {
                0 => Sql::Text(hyphens),
                1 => Sql::Text(hyphens.to_uppercase()),
                2 if bare => Sql::Text(
                    hex.chars()
                        .enumerate()
                        .map(|(i, c)| {
                            if i % 2 == 0 {
                                c.to_ascii_uppercase()
                            } else {
                                c
                            }
                        })
                        .collect(),
                ),
                3 if bare => Sql::Text(hex),
                2 | 3 => Sql::Text(hyphens),
                _ => Sql::Blob(u.to_vec()),
            }
        }
        KCell::Ts(m) => {
            let text = driftsum::core::time::format_timestamp(*m);
            // `YYYY-MM-DDTHH:MM:SS[.f]` with six fraction digits always.
            let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
            let suffix = ["", "Z", "+00:00"][(salt % 3) as usize];
            Sql::Text(format!(
                "{}.{frac:0<6}{suffix}",
                whole.replacen('T', " ", 1)
            ))
        }
    }
}

fn key_table(
    path: &Path,
    kind: KeyKind,
    without_rowid: bool,
    salt: u64,
    rows: &BTreeMap<AKey, AVals>,
) {
    let key = match kind {
        KeyKind::Int => "k INTEGER PRIMARY KEY",
        KeyKind::Text => "k TEXT PRIMARY KEY",
        KeyKind::IntText => "a INTEGER, b TEXT, PRIMARY KEY (a, b)",
        KeyKind::TextInt => "a TEXT, b INTEGER, PRIMARY KEY (a, b)",
        KeyKind::Uuid => "k UUID PRIMARY KEY",
        KeyKind::Blob => "k BLOB PRIMARY KEY",
        KeyKind::TextNocase => "k TEXT PRIMARY KEY COLLATE NOCASE",
        KeyKind::Instant => "k TIMESTAMPTZ PRIMARY KEY",
    };
    let rowid = if without_rowid { " WITHOUT ROWID" } else { "" };
    let conn = Connection::open(path).expect("open");
    // Value columns first, so the key columns are not the leading ones.
    conn.execute_batch(&format!(
        "CREATE TABLE t (v INTEGER, w TEXT, {key}){rowid};"
    ))
    .expect("create");
    let (cols, marks) = if matches!(kind, KeyKind::IntText | KeyKind::TextInt) {
        ("v, w, a, b", "?, ?, ?, ?")
    } else {
        ("v, w, k", "?, ?, ?")
    };
    let tx = conn.unchecked_transaction().expect("tx");
    {
        let mut ins = tx
            .prepare(&format!("INSERT INTO t ({cols}) VALUES ({marks})"))
            .expect("prepare");
        for (k, (v, w)) in rows {
            let mut params: Vec<rusqlite::types::Value> = vec![(*v).into(), w.clone().into()];
            params.extend(k.iter().map(|c| key_sql(c, salt)));
            ins.execute(rusqlite::params_from_iter(params))
                .unwrap_or_else(|e| panic!("insert {k:?}: {e}"));
        }
    }
    tx.commit().expect("commit");
}

/// A kind, the source rows, edits by position (a new value or deletion),
/// rows only the replica has, and a run of consecutive rows it lacks.
type KeyCase = (
    KeyKind,
    BTreeMap<AKey, AVals>,
    Vec<(proptest::sample::Index, Option<AVals>)>,
    BTreeMap<AKey, AVals>,
    Option<(proptest::sample::Index, usize)>,
);

fn key_kind_case() -> impl Strategy<Value = KeyCase> {
    prop_oneof![
        Just(KeyKind::Int),
        Just(KeyKind::Text),
        Just(KeyKind::IntText),
        Just(KeyKind::TextInt),
        Just(KeyKind::Uuid),
        Just(KeyKind::Blob),
        Just(KeyKind::TextNocase),
        Just(KeyKind::Instant),
    ]
    .prop_flat_map(|kind| {
        let vals = || (0i64..3, hostile_text(2));
        (
            Just(kind),
            proptest::collection::btree_map(a_key(kind), vals(), 0..300),
            proptest::collection::vec(
                (
                    any::<proptest::sample::Index>(),
                    proptest::option::of(vals()),
                ),
                0..16,
            ),
            proptest::collection::btree_map(a_key(kind), vals(), 0..12),
            // A run of consecutive rows gone: whole subtrees missing.
            proptest::option::of((any::<proptest::sample::Index>(), 1usize..60)),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every key kind the local property tests cover (integers at the i64
    /// extremes, hostile text, compound keys either way round, UUIDs in any
    /// spelling, blobs, text in NOCASE, instants stored as text), with rows
    /// missing (singly and in runs), extra and
    /// changed, in rowid and WITHOUT ROWID tables: in process
    /// and through agents every way round, the differences are exactly the
    /// naive reference's, and all four runs agree to the byte.
    #[test]
    fn every_key_kind_through_agents_matches_the_reference(
        (kind, src, edits, inserts, burst) in key_kind_case(),
        salts in any::<(u64, u64)>(),
        without_rowid in any::<bool>(),
        small in any::<bool>(),
    ) {
        let mut tgt = src.clone();
        for (at, v) in &edits {
            if tgt.is_empty() {
                break;
            }
            let k = tgt.keys().nth(at.index(tgt.len())).cloned().expect("in range");
            match v {
                Some(v) => { tgt.insert(k, v.clone()); }
                None => { tgt.remove(&k); }
            }
        }
        if let Some((at, len)) = burst {
            if !tgt.is_empty() {
                let run: Vec<AKey> = tgt.keys().skip(at.index(tgt.len())).take(len).cloned().collect();
                for k in run {
                    tgt.remove(&k);
                }
            }
        }
        for (k, v) in inserts {
            tgt.entry(k).or_insert(v);
        }
        // The naive reference: match rows by key, compare the values.
        let mut want: Vec<(DiffKind, AKey)> = Vec::new();
        for (k, v) in &src {
            match tgt.get(k) {
                None => want.push((DiffKind::Missing, k.clone())),
                Some(w) if w != v => want.push((DiffKind::Changed, k.clone())),
                Some(_) => {}
            }
        }
        want.extend(tgt.keys().filter(|k| !src.contains_key(*k)).map(|k| (DiffKind::Extra, k.clone())));
        want.sort_by(|a, b| a.1.cmp(&b.1));

        let s = Scratch::new("keykinds");
        key_table(&s.join("a.db"), kind, without_rowid, salts.0, &src);
        key_table(&s.join("b.db"), kind, without_rowid, salts.1, &tgt);
        let (a, b) = (
            format!("sqlite:{}", s.join("a.db").display()),
            format!("sqlite:{}", s.join("b.db").display()),
        );
        let shape = if small { Shape { leaf_target: 4, fanout: 3 } } else { Shape::default() };
        let runs = four_ways(&a, &b, &opts(shape));
        for (how, run) in &runs {
            let t = &run.tables[0];
            prop_assert!(t.error.is_none(), "{:?} {}: {:?}", kind, how, t.error);
            prop_assert_eq!((t.source_rows, t.target_rows), (src.len() as u64, tgt.len() as u64));
            let mut got: Vec<(DiffKind, AKey)> = t
                .differences
                .iter()
                .map(|d| (d.kind, d.key.iter().map(KCell::from_value).collect()))
                .collect();
            got.sort_by(|a, b| a.1.cmp(&b.1));
            prop_assert_eq!(&got, &want, "{:?} {}", kind, how);
            prop_assert_eq!(run.exit_code(), u8::from(!want.is_empty()), "{}", how);
            // The same ranges, differences (in order) and transfer counts.
            prop_assert_eq!(essence(run), essence(&runs[0].1), "{:?} {}", kind, how);
        }
    }
}

/// A UUID written without hyphens whose hex digits are all decimal digits:
/// SQLite's NUMERIC affinity (a column declared `UUID`) stores it as a
/// number, leading zeros and (past 2^63) digits lost. That number is not the
/// UUID, so it must never match it: every way round, the source's UUID is
/// missing and the replica's number an extra key that is no UUID; sides that
/// both hold the same number agree.
#[test]
fn a_uuid_sqlite_stored_as_a_number_is_not_that_uuid() {
    let s = Scratch::new("numuuid");
    let table = |name: &str, key: &str| {
        scripted(
            &s.join(name),
            &format!(
                "CREATE TABLE t (k UUID PRIMARY KEY, v INTEGER);
                 INSERT INTO t VALUES ({key}, 1), (x'ffffffffffffffffffffffffffffffff', 2);"
            ),
        )
    };
    for (n, (digits, number)) in [
        ("00000000000000000000000000000000", "0"),
        ("00000000000000000000000000000123", "123"),
        (
            "01000000000000000000000000000000",
            "1000000000000000000000000000000",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let blob = table(&format!("{n}-blob.db"), &format!("x'{digits}'"));
        let text = table(&format!("{n}-text.db"), &format!("'{digits}'"));
        let text2 = table(&format!("{n}-text2.db"), &format!("'{digits}'"));
        let mut uuid = [0u8; 16];
        for (i, b) in uuid.iter_mut().enumerate() {
            *b = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).expect("hex");
        }
        for (how, run) in four_ways(&blob, &text, &opts(Shape::default())) {
            let t = &run.tables[0];
            let got: Vec<(DiffKind, &[Value])> =
                t.differences.iter().map(|d| (d.kind, &d.key[..])).collect();
            assert_eq!(
                got,
                [
                    (DiffKind::Missing, &[Value::Uuid(uuid)][..]),
                    (DiffKind::Extra, &[Value::Invalid(number.into())][..]),
                ],
                "{digits} {how}"
            );
            assert_eq!(run.exit_code(), 1, "{digits} {how}");
        }
        for (how, run) in four_ways(&text, &text2, &opts(Shape::default())) {
            assert!(run.tables[0].differences.is_empty(), "{digits} {how}");
            assert_eq!(run.exit_code(), 0, "{digits} {how}");
        }
    }
}
