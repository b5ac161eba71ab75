//! The agent's server: one database, its tables' trees built on request and
//! cached, and answers to the walk's questions — nothing else. It only ever
//! reads the database (through the same read-only connectors as `diff`).
//!
//! Each connection gets its own thread and carries one request; reading a
//! request must finish within a deadline and fit a size limit, and beyond a
//! number of open connections new ones are turned away at once, so one slow
//! or hostile client cannot stall the others. Every endpoint but `/healthz`
//! needs the token, compared in constant time.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use driftsum_core::canon::CanonOptions;
use driftsum_core::tree::wire::{
    self, ChildrenRequest, EntriesRequest, RootRequest, RowsRequest, TreeId,
};
use driftsum_core::tree::{Entry, HashPrefix};
use driftsum_core::{key, Key, Side, Tree, Value, ENCODING_VERSION};

use super::auth::token_matches;
use super::http::{self, HttpError, Request};
use super::protocol::{
    BuildRequest, BuildResponse, InvalidateResponse, TableRequest, WireSchema, PROTOCOL_VERSION,
};
use super::AgentError;
use crate::check::endpoint::RowHasher;
use crate::check::tree::build_tree;
use crate::source::{self, DbUrl, KeyBounds, ScanSpec, Source, SourceError};

/// The default listening address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7420";

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The database URL it serves.
    pub db: String,
    pub token: String,
    /// A request must arrive whole within this long.
    pub request_timeout: Duration,
    /// A response must be taken within this long.
    pub response_timeout: Duration,
    /// The largest request body accepted.
    pub max_body: usize,
    /// Connections served at once; more are answered 503 at once.
    pub max_connections: usize,
    /// Whether build requests may carry a `--where` condition (SQL run on
    /// this database): off unless the operator allows it.
    pub allow_where: bool,
    /// For server databases, whose changes the agent cannot see: how long a
    /// built tree is reused. SQLite trees are reused until the file changes.
    pub cache_for: Duration,
    /// Trees kept at once.
    pub max_trees: usize,
}

impl ServeOptions {
    pub fn new(db: &str, token: &str) -> ServeOptions {
        ServeOptions {
            db: db.to_string(),
            token: token.to_string(),
            request_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            max_body: 1024 * 1024,
            max_connections: 64,
            allow_where: false,
            cache_for: Duration::from_secs(60),
            max_trees: 16,
        }
    }
}

/// What tells a tree's data has changed since it was built.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stamp {
    /// A SQLite file and its WAL: lengths and modification times, and the
    /// headers' change counters (a file's modification time may be coarser
    /// than the time between two commits; the counters are not).
    Files(Vec<FileStamp>),
    /// A server database: only age tells.
    Built(Instant),
}

/// One file's part of a [`Stamp`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    /// The file's first bytes: the SQLite header's file change counter
    /// (offset 24), or the WAL header's checkpoint sequence and salts.
    header: Vec<u8>,
}

impl FileStamp {
    /// The stamp of the file at `path`, its header read through `open` when
    /// given (see [`State::db_file`]), else through a handle opened here.
    fn of(
        path: &std::path::Path,
        open: Option<&std::fs::File>,
        header: std::ops::Range<usize>,
    ) -> Option<FileStamp> {
        use std::io::Read;
        use std::os::unix::fs::FileExt;
        let meta = std::fs::metadata(path).ok()?;
        let mut head = vec![0u8; header.end];
        let read = match open {
            Some(f) => f.read_at(&mut head, 0),
            None => std::fs::File::open(path).and_then(|mut f| f.read(&mut head)),
        }
        .unwrap_or(0);
        head.truncate(read);
        Some(FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            header: head.get(header).map(<[u8]>::to_vec).unwrap_or_default(),
        })
    }
}

/// One built tree.
struct Served {
    id: TreeId,
    request: BuildRequest,
    spec: ScanSpec,
    canon: CanonOptions,
    tree: Tree,
    ordered: bool,
    stamp: Stamp,
}

struct State {
    opts: ServeOptions,
    sqlite: Option<PathBuf>,
    /// The SQLite file, open for the agent's whole life to read its header.
    /// Closing any handle on a file drops every POSIX lock this process
    /// holds on it, including the shared lock of a scan's read transaction
    /// on another thread, which is what keeps writers out while it reads;
    /// so the header is never read through a handle opened and closed per
    /// request.
    db_file: Option<std::fs::File>,
    trees: Mutex<Vec<Arc<Served>>>,
    next_id: AtomicU32,
    active: AtomicUsize,
}

/// A response: status, content type, body.
type Answer = (u16, &'static str, Vec<u8>);

fn text(status: u16, msg: impl std::fmt::Display) -> Answer {
    (
        status,
        "text/plain; charset=utf-8",
        msg.to_string().into_bytes(),
    )
}

fn binary(body: Vec<u8>) -> Answer {
    (200, "application/octet-stream", body)
}

fn json<T: serde::Serialize>(v: &T) -> Answer {
    match serde_json::to_vec(v) {
        Ok(b) => (200, "application/json", b),
        Err(e) => text(500, e),
    }
}

fn source_answer(e: SourceError) -> Answer {
    match e {
        SourceError::NoTable { .. } => text(404, e),
        _ => text(500, e),
    }
}

impl State {
    fn stamp(&self) -> Stamp {
        match &self.sqlite {
            Some(path) => {
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                let files = [
                    FileStamp::of(path, self.db_file.as_ref(), 24..28),
                    // SQLite keeps no POSIX lock on the log itself.
                    FileStamp::of(std::path::Path::new(&wal), None, 12..24),
                ];
                Stamp::Files(files.into_iter().flatten().collect())
            }
            None => Stamp::Built(Instant::now()),
        }
    }

    /// Whether a tree still describes the data.
    fn fresh(&self, s: &Served, reuse: bool) -> bool {
        match &s.stamp {
            Stamp::Files(_) => s.stamp == self.stamp(),
            // Age limits reuse by new walks; a walk under way keeps its tree.
            Stamp::Built(at) => !reuse || at.elapsed() < self.opts.cache_for,
        }
    }

    fn open(&self) -> Result<Box<dyn Source>, SourceError> {
        source::open(&self.opts.db)
    }

    /// The tree a walk request names, if it still describes the data.
    fn tree(&self, id: TreeId) -> Result<Arc<Served>, Answer> {
        let trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        let Some(s) = trees.iter().find(|s| s.id == id).cloned() else {
            return Err(text(
                410,
                format!("no tree {id} here (dropped or never built); run the diff again"),
            ));
        };
        drop(trees);
        if !self.fresh(&s, false) {
            return Err(text(
                410,
                "the data changed since this tree was built; run the diff again",
            ));
        }
        Ok(s)
    }

    fn handle(&self, req: &Request) -> Answer {
        if req.method == "GET" && req.path == "/healthz" {
            return text(200, "ok");
        }
        let given = req.token.as_deref().unwrap_or("");
        if !token_matches(given.as_bytes(), self.opts.token.as_bytes()) {
            return text(401, "wrong or missing token");
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v1/tables") => match self.open().and_then(|mut s| s.tables()) {
                Ok(t) => json(&t),
                Err(e) => source_answer(e),
            },
            ("POST", "/v1/schema") => self.schema(&req.body),
            ("POST", "/v1/tree") => self.build(&req.body),
            ("POST", "/v1/invalidate") => self.invalidate(&req.body),
            ("POST", "/v1/root") => self.root(&req.body),
            ("POST", "/v1/children") => self.children(&req.body),
            ("POST", "/v1/entries") => self.entries(&req.body),
            ("POST", "/v1/rows") => self.rows(&req.body),
            (_, "/healthz" | "/v1/tables" | "/v1/schema" | "/v1/tree" | "/v1/invalidate")
            | (_, "/v1/root" | "/v1/children" | "/v1/entries" | "/v1/rows") => {
                text(405, "wrong method for this endpoint")
            }
            _ => text(404, "no such endpoint"),
        }
    }

    fn schema(&self, body: &[u8]) -> Answer {
        let req: TableRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return text(400, e),
        };
        let Some(table) = req.table else {
            return text(400, "name a table");
        };
        match self.open().and_then(|mut s| s.schema(&table)) {
            Ok(s) => json(&WireSchema::from(&s)),
            Err(e) => source_answer(e),
        }
    }

    fn build(&self, body: &[u8]) -> Answer {
        let req: BuildRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return text(400, e),
        };
        if req.protocol != PROTOCOL_VERSION {
            return text(
                400,
                format!(
                    "protocol version {} asked, this agent speaks {PROTOCOL_VERSION}",
                    req.protocol
                ),
            );
        }
        if req.encoding_version != ENCODING_VERSION {
            return text(
                400,
                format!(
                    "canonical encoding version {} asked, this agent hashes with {ENCODING_VERSION}",
                    req.encoding_version
                ),
            );
        }
        if req.filter.is_some() && !self.opts.allow_where {
            return text(
                403,
                "this agent does not run --where conditions (start it with --allow-where)",
            );
        }
        if req.key.is_empty() {
            return text(400, "no key columns");
        }
        {
            let trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = trees
                .iter()
                .rev()
                .find(|s| s.request == req && self.fresh(s, true))
            {
                return json(&BuildResponse {
                    tree: s.id,
                    rows: s.tree.rows,
                    rows_read: 0,
                    levels: s.tree.levels.len() as u32,
                    cached: true,
                });
            }
        }
        let stamp = self.stamp();
        let spec = req.spec();
        let built = self.open().and_then(|mut s| {
            build_tree(
                s.as_mut(),
                &spec,
                &req.canon,
                req.shape,
                Side::Source,
                &|_, _| {},
            )
        });
        let built = match built {
            Ok(b) => b,
            Err(e) => return source_answer(e),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let answer = BuildResponse {
            tree: id,
            rows: built.tree.rows,
            rows_read: built.rows_read,
            levels: built.tree.levels.len() as u32,
            cached: false,
        };
        let served = Served {
            id,
            canon: req.canon,
            request: req,
            spec,
            tree: built.tree,
            ordered: built.ordered,
            stamp,
        };
        let mut trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        trees.retain(|s| s.request != served.request);
        trees.push(Arc::new(served));
        let excess = trees.len().saturating_sub(self.opts.max_trees.max(1));
        trees.drain(..excess);
        json(&answer)
    }

    fn invalidate(&self, body: &[u8]) -> Answer {
        let req: TableRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return text(400, e),
        };
        let mut trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        let before = trees.len();
        trees.retain(|s| req.table.as_ref().is_some_and(|t| *t != s.request.table));
        json(&InvalidateResponse {
            dropped: (before - trees.len()) as u64,
        })
    }

    fn root(&self, body: &[u8]) -> Answer {
        let req = match RootRequest::decode(body) {
            Ok(r) => r,
            Err(e) => return text(400, e),
        };
        match self.tree(req.tree) {
            Ok(s) => binary(wire::encode_root(s.tree.root_summary().as_ref())),
            Err(a) => a,
        }
    }

    fn children(&self, body: &[u8]) -> Answer {
        let req = match ChildrenRequest::decode(body) {
            Ok(r) => r,
            Err(e) => return text(400, e),
        };
        let s = match self.tree(req.tree) {
            Ok(s) => s,
            Err(a) => return a,
        };
        let mut groups = Vec::with_capacity(req.indexes.len());
        for &i in &req.indexes {
            match s.tree.children_of(req.level, i) {
                Some(kids) if !kids.is_empty() => groups.push(kids),
                _ => return text(404, format!("no inner node {i} on level {}", req.level)),
            }
        }
        binary(wire::encode_children(&groups))
    }

    /// Scans `(after, through]` of a served tree's table, handing each row
    /// (with its key bytes) to `each` until it returns false.
    fn scan_range(
        &self,
        s: &Served,
        after: Option<&Key>,
        through: &Key,
        each: &mut (dyn FnMut(&[u8], &[Value]) -> bool + Send),
    ) -> Result<(), Answer> {
        let decode =
            |k: &Key| key::decode(k.as_bytes()).ok_or_else(|| text(400, "a key that is not a key"));
        let bounds = KeyBounds {
            after: after.map(decode).transpose()?,
            through: decode(through)?,
        };
        let nkey = s.spec.key.len();
        let mut src = self.open().map_err(source_answer)?;
        let mut kbuf = Vec::new();
        let mut stopped = false;
        let r = src.scan(&s.spec, s.ordered.then_some(&bounds), &mut |row| {
            key::encode_into(&mut kbuf, &row[..nkey]);
            let inside =
                after.is_none_or(|a| kbuf[..] > *a.as_bytes()) && kbuf[..] <= *through.as_bytes();
            if inside && !each(&kbuf, row) {
                stopped = true;
                return Err(SourceError::Other("page full".into()));
            }
            Ok(())
        });
        match r {
            Err(_) if stopped => Ok(()),
            Err(e) => Err(source_answer(e)),
            Ok(()) => Ok(()),
        }
    }

    fn entries(&self, body: &[u8]) -> Answer {
        let req = match EntriesRequest::decode(body) {
            Ok(r) => r,
            Err(e) => return text(400, e),
        };
        let s = match self.tree(req.tree) {
            Ok(s) => s,
            Err(a) => return a,
        };
        let mut hasher = RowHasher::new(&s.spec, &s.canon);
        // Fill the page range by range; once it is full, only look for one
        // more entry, to say whether more follow.
        let mut room = req.limit.min(wire::ENTRIES_PAGE) as usize;
        let mut more = false;
        let mut pages: Vec<Vec<Entry>> = Vec::with_capacity(req.ranges.len());
        for range in &req.ranges {
            if room == 0 && more {
                pages.push(Vec::new());
                continue;
            }
            let mut found: Vec<Entry> = Vec::new();
            // A source that does not scan in key order is read to the end of
            // the range before a page can be cut from it.
            let ordered = s.ordered;
            let scanned =
                self.scan_range(&s, range.after.as_ref(), &range.through, &mut |_, row| {
                    if ordered && found.len() > room {
                        return false;
                    }
                    let (k, h) = hasher.hash(row);
                    found.push(Entry {
                        key: Key::from_bytes(k),
                        hash: HashPrefix::from(&h),
                    });
                    true
                });
            if let Err(a) = scanned {
                return a;
            }
            found.sort_by(|a, b| a.key.cmp(&b.key));
            if found.len() > room {
                more = true;
                found.truncate(room);
            }
            room -= found.len();
            pages.push(found);
        }
        binary(wire::encode_entries(&pages, more))
    }

    fn rows(&self, body: &[u8]) -> Answer {
        let req = match RowsRequest::decode(body) {
            Ok(r) => r,
            Err(e) => return text(400, e),
        };
        let s = match self.tree(req.tree) {
            Ok(s) => s,
            Err(a) => return a,
        };
        let mut rows: Vec<(Key, Vec<Value>)> = Vec::new();
        for (after, keys) in &req.groups {
            let Some(last) = keys.last() else {
                return text(400, "a group without keys");
            };
            let scanned = self.scan_range(&s, after.as_ref(), last, &mut |k, row| {
                let k = Key::from_bytes(k);
                if keys.binary_search(&k).is_ok() {
                    rows.push((k, row.to_vec()));
                }
                true
            });
            if let Err(a) = scanned {
                return a;
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let rows: Vec<Vec<Value>> = rows.into_iter().map(|(_, r)| r).collect();
        binary(wire::encode_rows(&rows))
    }
}

/// A bound agent, not yet serving.
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
}

/// A running agent, stopped by [`ServerHandle::stop`].
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Checks the database can be opened and binds `listen`.
    pub fn bind(listen: &str, opts: ServeOptions) -> Result<Server, AgentError> {
        let sqlite = match DbUrl::parse(&opts.db).map_err(|e| AgentError::Other(e.to_string()))? {
            DbUrl::Sqlite(p) => Some(p),
            _ => None,
        };
        source::open(&opts.db).map_err(|e| AgentError::Other(e.to_string()))?;
        let listener = TcpListener::bind(listen)
            .map_err(|e| AgentError::Other(format!("cannot listen on {listen}: {e}")))?;
        Ok(Server {
            listener,
            state: Arc::new(State {
                db_file: sqlite.as_ref().and_then(|p| std::fs::File::open(p).ok()),
                opts,
                sqlite,
                trees: Mutex::new(Vec::new()),
                next_id: AtomicU32::new(1),
                active: AtomicUsize::new(0),
            }),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, AgentError> {
        self.listener
            .local_addr()
            .map_err(|e| AgentError::Other(e.to_string()))
    }

    /// Serves until the process ends.
    pub fn run(self) {
        let stop = AtomicBool::new(false);
        accept_loop(&self.listener, &self.state, &stop);
    }

    /// Serves on a thread of its own.
    pub fn spawn(self) -> Result<ServerHandle, AgentError> {
        let addr = self.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("driftsum-agent".into())
            .spawn(move || accept_loop(&self.listener, &self.state, &flag))
            .map_err(|e| AgentError::Other(e.to_string()))?;
        Ok(ServerHandle {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl ServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and closes the listening socket (requests
    /// being answered finish on their own threads).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Decrements the open-connection count when a connection ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(listener: &TcpListener, state: &Arc<State>, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = conn else { continue };
        let open = state.active.fetch_add(1, Ordering::SeqCst) + 1;
        let mine = state.clone();
        let spawned = std::thread::Builder::new()
            .name("driftsum-agent-conn".into())
            .spawn(move || {
                let state = mine;
                let _slot = Slot(&state.active);
                let t = state.opts.response_timeout;
                if open > state.opts.max_connections {
                    let _ = http::write_response(
                        &mut stream,
                        503,
                        "text/plain",
                        b"busy: too many connections",
                        Duration::from_secs(1),
                    );
                    return;
                }
                let answer = match http::read_request(
                    &mut stream,
                    state.opts.request_timeout,
                    state.opts.max_body,
                ) {
                    Ok(req) => state.handle(&req),
                    Err(HttpError::Closed) => return,
                    Err(HttpError::Timeout) => text(408, "the request did not arrive in time"),
                    Err(e @ HttpError::TooLarge(_)) => text(413, e),
                    Err(e) => text(400, e),
                };
                let _ = http::write_response(&mut stream, answer.0, answer.1, &answer.2, t);
            });
        if spawned.is_err() {
            state.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FileStamp;
    use crate::source::sqlite::SqliteSource;

    /// The variable that makes [`writer_child`] a writer.
    const WRITER: &str = "DRIFTSUM_TEST_WRITER_DB";

    /// Run as a child process by [`stamps_keep_a_scans_lock`]: tries to
    /// commit a row to the file at once, and exits 3 if the file is locked.
    #[test]
    #[ignore = "a helper process, run by stamps_keep_a_scans_lock"]
    fn writer_child() {
        let Ok(path) = std::env::var(WRITER) else {
            return;
        };
        let c = rusqlite::Connection::open(path).expect("open");
        c.busy_timeout(std::time::Duration::ZERO).expect("timeout");
        match c.execute("INSERT INTO t VALUES (NULL)", []) {
            Ok(_) => std::process::exit(0),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(3)
            }
        }
    }

    /// Whether another process can commit to `path` right now.
    fn another_process_can_write(path: &std::path::Path) -> bool {
        let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "agent::server::tests::writer_child", "--ignored"])
            .env(WRITER, path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run the writer");
        match status.code() {
            Some(0) => true,
            Some(3) => false,
            other => panic!("writer failed: {other:?}"),
        }
    }

    /// Reading a stamp while a scan holds its read transaction leaves the
    /// scan's shared lock in place, so writers stay out. A handle opened and
    /// closed to read the header (as stamps once did) drops every POSIX lock
    /// the process holds on the file: the control shows that happening.
    #[test]
    fn stamps_keep_a_scans_lock() {
        let path = std::env::temp_dir().join(format!("driftsum-stamp-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        rusqlite::Connection::open(&path)
            .and_then(|c| c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY);"))
            .expect("create");
        let kept = std::fs::File::open(&path).expect("keep a handle");
        let reader = SqliteSource::open(&path).expect("reader");
        assert!(!another_process_can_write(&path), "the reader's lock holds");
        for _ in 0..3 {
            assert!(FileStamp::of(&path, Some(&kept), 24..28).is_some());
        }
        assert!(!another_process_can_write(&path), "stamps kept the lock");
        assert!(FileStamp::of(&path, None, 24..28).is_some());
        assert!(
            another_process_can_write(&path),
            "closing a handle dropped the lock (the hazard the kept handle avoids)"
        );
        drop(reader);
        let _ = std::fs::remove_file(&path);
    }
}
