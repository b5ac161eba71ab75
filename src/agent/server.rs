//! The agent's server: one database, its tables' trees built on request and
//! cached, and answers to the walk's questions — nothing else. It only ever
//! reads the database (through the same read-only connectors as `diff`).
//!
//! Every answer about a tree comes from the snapshot the tree was built
//! from, or is a `410`: a server database's tree keeps the connection (and
//! read transaction) that built it, and entries and rows are read through
//! it; a SQLite file is opened anew per request (holding its read
//! transaction would keep the replica's writers out), and each request
//! checks, inside its own read transaction, that the file is still the one
//! the tree was built from.
//!
//! Each connection gets its own thread and carries one request; reading a
//! request must finish within a deadline and fit a size limit, and
//! connections still sending theirs cannot crowd out the others (see
//! [`admit`](super::admit)). Every endpoint but `/healthz` needs the token,
//! compared in constant time.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use driftsum_core::canon::CanonOptions;
use driftsum_core::tree::wire::{
    self, ChildrenRequest, EntriesRequest, RootRequest, RowsRequest, TreeId,
};
use driftsum_core::tree::Entry;
use driftsum_core::{key, Key, Side, Tree, Value, ENCODING_VERSION};

use super::admit::Admission;
use super::auth::token_matches;
use super::http::{self, HttpError, Request};
use super::protocol::{
    BuildRequest, BuildResponse, InvalidateResponse, TableRequest, WireSchema, PROTOCOL_VERSION,
};
use super::verify::{spans, spans_holding, LeafCheck, RangeRead};
use super::AgentError;
use crate::check::endpoint::RowHasher;
use crate::check::tree::build_tree;
use crate::source::{self, DbUrl, KeyBounds, ScanSpec, Source, SourceError};

/// The default listening address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7420";

/// How the agent runs.
#[derive(Clone)]
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
    /// Requests carrying the token served at once; more are answered 503
    /// at once. Sixteen times as many connections may be sending their
    /// request; past that the oldest of them is cut off.
    pub max_connections: usize,
    /// Whether build requests may carry a `--where` condition (SQL run on
    /// this database): off unless the operator allows it.
    pub allow_where: bool,
    /// For server databases, whose changes the agent cannot see: how long a
    /// built tree is reused by new walks, and how long an unused one (with
    /// the snapshot it holds open) is kept. SQLite trees are reused until
    /// the file changes.
    pub cache_for: Duration,
    /// Trees kept at once.
    pub max_trees: usize,
    /// HTTPS: the agent's certificate and key; plain HTTP when `None`.
    pub tls: Option<super::tls::ServerTls>,
}

/// Written by hand so that printing the options never shows the token or
/// the database's password.
impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("db", &crate::source::url::redact(&self.db))
            .field("token", &"***")
            .field("request_timeout", &self.request_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("max_body", &self.max_body)
            .field("max_connections", &self.max_connections)
            .field("allow_where", &self.allow_where)
            .field("cache_for", &self.cache_for)
            .field("max_trees", &self.max_trees)
            .field("tls", &self.tls.is_some())
            .finish()
    }
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
            tls: None,
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
    /// Whether a range may be read with its bounds in the query: the scan
    /// came in key order and met no key such a query would skip. Otherwise
    /// a request's ranges are read in one scan of the whole table.
    ranged: bool,
    stamp: Stamp,
    /// A server database's connection that built the tree, still inside
    /// the read transaction the tree was built in.
    held: Option<Mutex<Box<dyn Source>>>,
    /// When a request last used the tree: a held snapshot is let go once
    /// unused for the cache lifetime.
    used: Mutex<Instant>,
}

impl Served {
    fn touch(&self) {
        *self.used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn idle(&self) -> Duration {
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
}

/// A source reading a served tree's snapshot, for one request.
enum Reader<'a> {
    /// A SQLite file opened for this request, checked to be the tree's.
    Own(Box<dyn Source>),
    /// The tree's own connection.
    Held(MutexGuard<'a, Box<dyn Source>>),
}

impl Reader<'_> {
    fn source(&mut self) -> &mut dyn Source {
        match self {
            Reader::Own(s) => s.as_mut(),
            Reader::Held(s) => s.as_mut(),
        }
    }
}

/// Opening a SQLite file is retried this often while commits land during
/// the opening.
const OPEN_TRIES: usize = 5;

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
    admission: Admission,
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

fn changed() -> Answer {
    text(
        410,
        "the data changed since this tree was built; run the diff again",
    )
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

    /// A connection to build a tree with, and the stamp of the data it
    /// sees. A SQLite file's stamp is taken before and after opening (which
    /// starts the read transaction, and so fixes its snapshot): equal, no
    /// commit landed in between, so the stamp is the snapshot's.
    fn open_pinned(&self) -> Result<(Box<dyn Source>, Stamp), Answer> {
        if self.sqlite.is_none() {
            let stamp = self.stamp();
            return Ok((self.open().map_err(source_answer)?, stamp));
        }
        for _ in 0..OPEN_TRIES {
            let before = self.stamp();
            let src = self.open().map_err(source_answer)?;
            if self.stamp() == before {
                return Ok((src, before));
            }
        }
        Err(text(
            503,
            "the database kept changing while the agent opened it; try again",
        ))
    }

    /// A source reading `s`'s snapshot: its held connection, or the SQLite
    /// file opened anew, if it is still the file the tree was built from.
    fn reader<'a>(&self, s: &'a Served) -> Result<Reader<'a>, Answer> {
        if let Some(held) = &s.held {
            return Ok(Reader::Held(held.lock().unwrap_or_else(|p| p.into_inner())));
        }
        let src = self.open().map_err(source_answer)?;
        // Opening started the read transaction: its snapshot is fixed now,
        // so a stamp equal to the tree's (taken when its snapshot was)
        // means no commit came between the two.
        if self.stamp() != s.stamp {
            return Err(changed());
        }
        Ok(Reader::Own(src))
    }

    /// Drops server trees unused for the cache lifetime, letting go of
    /// their connections and snapshots.
    fn prune(&self) {
        let mut trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        trees.retain(|s| s.held.is_none() || s.idle() <= self.opts.cache_for);
    }

    /// The tree a walk request names, if it still describes the data.
    fn tree(&self, id: TreeId) -> Result<Arc<Served>, Answer> {
        let trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        let Some(s) = trees.iter().find(|s| s.id == id).cloned() else {
            return Err(text(
                410,
                format!(
                    "no tree {id} here (dropped, or unused longer than the agent's \
                     --cache-seconds, or never built); run the diff again"
                ),
            ));
        };
        drop(trees);
        if !self.fresh(&s, false) {
            return Err(changed());
        }
        s.touch();
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
        let Some(_place) = self.admission.serve() else {
            return text(503, "busy: too many requests at once; try again");
        };
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
                s.touch();
                return json(&BuildResponse {
                    tree: s.id,
                    rows: s.tree.rows,
                    rows_read: 0,
                    levels: s.tree.levels.len() as u32,
                    cached: true,
                });
            }
        }
        let spec = req.spec();
        let (mut src, stamp) = match self.open_pinned() {
            Ok(s) => s,
            Err(a) => return a,
        };
        let built = build_tree(
            src.as_mut(),
            &spec,
            &req.canon,
            req.shape,
            Side::Source,
            &|_, _| {},
        );
        let built = match built {
            Ok(b) => b,
            Err(e) => return source_answer(e),
        };
        let ranged = built.ordered && src.ranges_find_every_row(&spec);
        // A SQLite file's read transaction ends here (see [`State::reader`]).
        let held = self.sqlite.is_none().then(|| Mutex::new(src));
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
            ranged,
            stamp,
            held,
            used: Mutex::new(Instant::now()),
        };
        let mut trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        // An older tree of the same request may be under a walk of another
        // comparer's: it stays while it can answer (a server tree until
        // unused; see [`State::prune`]).
        trees.retain(|s| s.request != served.request || self.fresh(s, false));
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

    /// Reads `(after, through]` of a served tree's table, with the range in
    /// the query (a tree with [`Served::ranged`]), handing each row inside
    /// it (with its key bytes) to `each` until that returns false.
    fn scan_range(
        src: &mut dyn Source,
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
        let inside = |k: &[u8]| after.is_none_or(|a| k > a.as_bytes()) && k <= through.as_bytes();
        Self::scan_rows(src, s, Some(&bounds), &mut |k, row| {
            !inside(k) || each(k, row)
        })
    }

    /// Scans a served tree's table (within `bounds`, when given), handing
    /// each row with its key bytes to `each` until that returns false.
    fn scan_rows(
        src: &mut dyn Source,
        s: &Served,
        bounds: Option<&KeyBounds>,
        each: &mut (dyn FnMut(&[u8], &[Value]) -> bool + Send),
    ) -> Result<(), Answer> {
        let nkey = s.spec.key.len();
        let mut kbuf = Vec::new();
        let mut stopped = false;
        let r = src.scan(&s.spec, bounds, &mut |row| {
            key::encode_into(&mut kbuf, &row[..nkey]);
            if !each(&kbuf, row) {
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

    /// One scan of the whole table (for a tree without
    /// [`Served::ranged`]), sorting each row's key and hash into every span
    /// holding it, with its values when `keep` says so; each span's rows in
    /// key order.
    fn scan_spans(
        src: &mut dyn Source,
        s: &Served,
        spans: &[(Option<Key>, Key)],
        keep: &(dyn Fn(usize, &Key) -> bool + Sync),
    ) -> Result<Vec<Vec<SpanRow>>, Answer> {
        let mut hasher = RowHasher::new(&s.spec, &s.canon);
        let mut found: Vec<Vec<SpanRow>> = vec![Vec::new(); spans.len()];
        Self::scan_rows(src, s, None, &mut |k, row| {
            let mut hash = None;
            for i in spans_holding(spans, k) {
                let h = *hash.get_or_insert_with(|| hasher.hash(row).1);
                let key = Key::from_bytes(k);
                let values = keep(i, &key).then(|| row.to_vec());
                found[i].push(SpanRow {
                    key,
                    hash: h,
                    values,
                });
            }
            true
        })?;
        for f in &mut found {
            f.sort_by(|a, b| a.key.cmp(&b.key));
        }
        Ok(found)
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
        let bounds: Vec<(Option<&Key>, &Key)> = req
            .ranges
            .iter()
            .map(|r| (r.after.as_ref(), &r.through))
            .collect();
        if !ascending(&bounds) {
            return text(400, "key ranges must be ascending, disjoint and not empty");
        }
        let mut reader = match self.reader(&s) {
            Ok(r) => r,
            Err(a) => return a,
        };
        let src = reader.source();
        let leaves = s.tree.levels.first().map_or(&[][..], Vec::as_slice);
        let spans = spans(leaves, &bounds);
        // Without ranges in the query, one scan reads every range.
        let mut whole = None;
        if !s.ranged {
            match Self::scan_spans(src, &s, &spans, &|_, _| false) {
                Ok(w) => whole = Some(w),
                Err(a) => return a,
            }
        }
        let mut hasher = RowHasher::new(&s.spec, &s.canon);
        // Fill the page range by range; once it is full, only look for one
        // more entry, to say whether more follow.
        let mut room = req.limit.min(wire::ENTRIES_PAGE) as usize;
        let mut more = false;
        let mut pages: Vec<Vec<Entry>> = Vec::with_capacity(req.ranges.len());
        for (i, range) in req.ranges.iter().enumerate() {
            if room == 0 && more {
                pages.push(Vec::new());
                continue;
            }
            let mut read = RangeRead::new(leaves, range.after.as_ref(), &range.through, room);
            match &whole {
                Some(w) => {
                    for r in &w[i] {
                        if !read.feed(r.key.as_bytes(), &r.hash) {
                            break;
                        }
                    }
                }
                None => {
                    let (start, end) = &spans[i];
                    let scanned = Self::scan_range(src, &s, start.as_ref(), end, &mut |_, row| {
                        let (k, h) = hasher.hash(row);
                        read.feed(k, &h)
                    });
                    if let Err(a) = scanned {
                        return a;
                    }
                }
            }
            let Some(mut found) = read.finish() else {
                return not_the_trees();
            };
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
        let mut groups: Vec<(Option<&Key>, Vec<Key>)> = Vec::with_capacity(req.groups.len());
        for (after, keys) in &req.groups {
            let mut keys = keys.clone();
            keys.sort();
            keys.dedup();
            groups.push((after.as_ref(), keys));
        }
        let bounds: Vec<(Option<&Key>, &Key)> = groups
            .iter()
            .filter_map(|(after, keys)| Some((*after, keys.last()?)))
            .collect();
        if bounds.len() != groups.len() || !ascending(&bounds) {
            return text(400, "key groups must be ascending, disjoint and not empty");
        }
        let mut reader = match self.reader(&s) {
            Ok(r) => r,
            Err(a) => return a,
        };
        let src = reader.source();
        let leaves = s.tree.levels.first().map_or(&[][..], Vec::as_slice);
        let spans = spans(leaves, &bounds);
        let wanted = |i: usize, k: &Key| groups[i].1.binary_search(k).is_ok();
        let mut rows: Vec<(Key, Vec<Value>)> = Vec::new();
        let mut whole = None;
        if !s.ranged {
            match Self::scan_spans(src, &s, &spans, &wanted) {
                Ok(w) => whole = Some(w),
                Err(a) => return a,
            }
        }
        let mut hasher = RowHasher::new(&s.spec, &s.canon);
        // Every leaf the asked keys fall in is read whole and checked.
        for (i, (start, end)) in spans.iter().enumerate() {
            let mut check = LeafCheck::new(leaves, bounds[i].0);
            match &mut whole {
                Some(w) => {
                    for r in std::mem::take(&mut w[i]) {
                        check.push(r.key.as_bytes(), &r.hash);
                        if let Some(v) = r.values {
                            rows.push((r.key, v));
                        }
                    }
                }
                None => {
                    let scanned = Self::scan_range(src, &s, start.as_ref(), end, &mut |_, row| {
                        let (k, h) = hasher.hash(row);
                        check.push(k, &h);
                        let k = Key::from_bytes(k);
                        if wanted(i, &k) {
                            rows.push((k, row.to_vec()));
                        }
                        check.ok()
                    });
                    if let Err(a) = scanned {
                        return a;
                    }
                }
            }
            check.finish(bounds[i].1);
            if !check.ok() {
                return not_the_trees();
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.dedup_by(|a, b| a.0 == b.0);
        let rows: Vec<Vec<Value>> = rows.into_iter().map(|(_, r)| r).collect();
        binary(wire::encode_rows(&rows))
    }
}

/// A row a whole-table scan found in a span.
#[derive(Clone)]
struct SpanRow {
    key: Key,
    hash: driftsum_core::Hash,
    /// Its values, when asked for.
    values: Option<Vec<Value>>,
}

/// Whether ranges `(after, through]` are ascending, disjoint and not empty,
/// as a walk asks for them.
fn ascending(ranges: &[(Option<&Key>, &Key)]) -> bool {
    ranges.iter().all(|(a, t)| a.is_none_or(|a| a < *t))
        && ranges
            .windows(2)
            .all(|w| w[1].0.is_some_and(|a| a >= w[0].1))
}

/// Rows read back that are not the tree's (whose leaves they fail to
/// recompute): the data changed since the tree was built.
fn not_the_trees() -> Answer {
    text(
        410,
        "the rows read back are not this tree's: the data changed since it was built \
         (or the database's range reads miss rows); run the diff again",
    )
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
    janitor: Option<JoinHandle<()>>,
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
                sqlite,
                trees: Mutex::new(Vec::new()),
                next_id: AtomicU32::new(1),
                admission: Admission::new(opts.max_connections),
                opts,
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
        let stop = Arc::new(AtomicBool::new(false));
        let _janitor = janitor(self.state.clone(), stop.clone());
        accept_loop(&self.listener, &self.state, &stop);
    }

    /// Serves on a thread of its own.
    pub fn spawn(self) -> Result<ServerHandle, AgentError> {
        let addr = self.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let janitor = janitor(self.state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("driftsum-agent".into())
            .spawn(move || accept_loop(&self.listener, &self.state, &flag))
            .map_err(|e| AgentError::Other(e.to_string()))?;
        Ok(ServerHandle {
            addr,
            stop,
            thread: Some(thread),
            janitor,
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
        if let Some(j) = self.janitor.take() {
            j.thread().unpark();
            let _ = j.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

/// How often the janitor looks for server trees to let go, at most.
const JANITOR_EVERY: Duration = Duration::from_secs(1);

/// Lets go of unused server trees (see [`State::prune`]) until `stop`,
/// then of every tree (unparking it makes it look at `stop` at once).
fn janitor(state: Arc<State>, stop: Arc<AtomicBool>) -> Option<JoinHandle<()>> {
    let every = (state.opts.cache_for / 4).clamp(Duration::from_millis(10), JANITOR_EVERY);
    std::thread::Builder::new()
        .name("driftsum-agent-janitor".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                std::thread::park_timeout(every);
                state.prune();
            }
            state
                .trees
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        })
        .ok()
}

fn accept_loop(listener: &TcpListener, state: &Arc<State>, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = conn else { continue };
        let Some(id) = state.admission.arrive(&stream) else {
            continue;
        };
        let mine = state.clone();
        let spawned = std::thread::Builder::new()
            .name("driftsum-agent-conn".into())
            .spawn(move || {
                let state = mine;
                let Ok(mut stream) = super::tls::Stream::accept(stream, state.opts.tls.as_ref())
                else {
                    state.admission.leave(id);
                    return;
                };
                let t = state.opts.response_timeout;
                let read = http::read_request(
                    &mut stream,
                    state.opts.request_timeout,
                    state.opts.max_body,
                );
                if !state.admission.leave(id) {
                    // Cut off to make room for newer connections.
                    return;
                }
                let answer = match read {
                    Ok(req) => state.handle(&req),
                    Err(HttpError::Closed) => return,
                    Err(HttpError::Timeout) => text(408, "the request did not arrive in time"),
                    Err(e @ HttpError::TooLarge(_)) => text(413, e),
                    Err(e) => text(400, e),
                };
                let _ = http::write_response(&mut stream, answer.0, answer.1, &answer.2, t);
            });
        if spawned.is_err() {
            state.admission.leave(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FileStamp, ServeOptions};
    use crate::source::sqlite::SqliteSource;

    /// Printing the options shows neither the token nor a password.
    #[test]
    fn debug_hides_the_token_and_the_password() {
        for (db, password) in [
            ("postgres://u:S3cr3tPw@h/db", "S3cr3tPw"),
            ("postgres://u:S3cr3t/Pa55@h/db", "S3cr3t"),
            ("mysql://u@h/db?password=Xy9zzQ", "Xy9zzQ"),
        ] {
            let shown = format!("{:?}", ServeOptions::new(db, "TokEn-1234567"));
            assert!(!shown.contains("TokEn-1234567"), "{shown}");
            assert!(!shown.contains(password), "{shown}");
            assert!(shown.contains("max_connections"), "{shown}");
        }
    }

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
