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
//!
//! Its parts: `options` (how it runs), `stamp` (what tells data changed),
//! `state` (the served database and its cached trees), `handlers` and
//! `reads` (the answers), `answer` (their shape); this file binds, accepts
//! connections and lets go of unused trees.

mod answer;
mod handlers;
mod options;
mod reads;
mod stamp;
mod state;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::admit::Admission;
use super::client::AgentError;
use super::http::{self, HttpError};
use crate::source::{self, DbUrl};
use answer::text;
use state::State;

pub use options::{ServeOptions, DEFAULT_LISTEN};

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
                let Ok(mut stream) =
                    crate::agent::tls::Stream::accept(stream, state.opts.tls.as_ref())
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
