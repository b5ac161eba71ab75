//! The client side of the agent protocol: what a comparer asks a remote
//! agent, with every answer checked before it is believed.

use std::time::Duration;

use serde::de::DeserializeOwned;

use driftsum_core::canon::CanonOptions;
use driftsum_core::key::KeyRange;
use driftsum_core::protocol::{
    self as wire, ChildrenRequest, EntriesRequest, RootRequest, RowsRequest, TreeId, WireError,
};
use driftsum_core::tree::{Entry, NodeSummary};
use driftsum_core::{key, Key, Shape, Value};

use super::http::{self, CallError};
use super::protocol::{BuildRequest, BuildResponse, TableRequest, WireSchema};
use crate::reconcile::KeyedRow;
use crate::source::{ScanSpec, TableSchema};

/// How long one walk request may take, connection to last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an agent may take to build a tree (it scans the whole table).
const BUILD_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// The endpoints of the walk itself, whose bytes a diff reports.
const WALK_PATHS: [&str; 4] = ["/v1/root", "/v1/children", "/v1/entries", "/v1/rows"];
/// The largest answer accepted.
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

/// Something went wrong talking to an agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "cannot reach the agent at {addr} ({what}): {source} (is `driftsum serve` running there?)"
    )]
    Connect {
        addr: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the agent at {addr} stopped answering ({what}): {message}")]
    Broken {
        addr: String,
        what: &'static str,
        message: String,
    },
    #[error("the agent at {addr} refused {what}: HTTP {status}: {message}")]
    Refused {
        addr: String,
        what: &'static str,
        status: u16,
        message: String,
    },
    #[error("the agent at {addr} sent a bad answer ({what}): {message}")]
    BadAnswer {
        addr: String,
        what: &'static str,
        message: String,
    },
    #[error("the agent at {addr} ({what}): {message}")]
    Tls {
        addr: String,
        what: &'static str,
        message: String,
    },
    #[error("{0}")]
    Token(String),
    #[error("{0}")]
    Other(String),
}

/// A table built by an agent, ready to walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    pub tree: TreeId,
    pub rows: u64,
    pub rows_read: u64,
}

/// A connection-less client of one agent: every request is one HTTP
/// exchange, carrying the token.
pub struct AgentClient {
    addr: String,
    token: String,
    /// Request and response bodies exchanged so far (HTTP heads aside).
    pub bytes: u64,
    pub requests: u64,
    /// The same, for the walk's binary messages only (root, children,
    /// entries, rows): what a diff reports as `bytes_exchanged`.
    pub walk_bytes: u64,
    pub walk_requests: u64,
    /// HTTPS, trusting this CA; plain HTTP when `None`.
    tls: Option<super::tls::ClientTls>,
}

impl AgentClient {
    /// A client of the agent at `addr` (`HOST:PORT`).
    pub fn new(addr: &str, token: &str) -> AgentClient {
        AgentClient {
            addr: addr.to_string(),
            token: token.to_string(),
            bytes: 0,
            requests: 0,
            walk_bytes: 0,
            walk_requests: 0,
            tls: None,
        }
    }

    /// Speaks HTTPS to the agent, whose certificate must be signed by the
    /// CA of `tls`.
    pub fn use_tls(&mut self, tls: super::tls::ClientTls) {
        self.tls = Some(tls);
    }

    /// The agent's `HOST:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn describe(&self) -> String {
        format!("agent driftsum://{}", self.addr)
    }

    fn call(
        &mut self,
        what: &'static str,
        method: &str,
        path: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, AgentError> {
        let peer = super::tls::Peer {
            addr: &self.addr,
            tls: self.tls.as_ref(),
        };
        let (status, answer) = http::call(
            peer,
            method,
            path,
            Some(&self.token),
            body,
            timeout,
            MAX_RESPONSE,
        )
        .map_err(|e| match e {
            CallError::Connect(source) => AgentError::Connect {
                addr: self.addr.clone(),
                what,
                source,
            },
            CallError::Tls(message) => AgentError::Tls {
                addr: self.addr.clone(),
                what,
                message,
            },
            CallError::Http(e) => AgentError::Broken {
                addr: self.addr.clone(),
                what,
                message: match (&e, &self.tls) {
                    (http::HttpError::Closed | http::HttpError::Malformed(_), None) => {
                        format!("{e}{}", super::tls::PLAIN_HINT)
                    }
                    // An HTTPS agent drops a plain request unread; the
                    // peer then sees a reset rather than a close when the
                    // agent got there before it read the answer.
                    (http::HttpError::Io(io), None)
                        if io.kind() == std::io::ErrorKind::ConnectionReset =>
                    {
                        format!("{e}{}", super::tls::PLAIN_HINT)
                    }
                    _ => e.to_string(),
                },
            },
        })?;
        self.requests += 1;
        self.bytes += (body.len() + answer.len()) as u64;
        if WALK_PATHS.contains(&path) {
            self.walk_requests += 1;
            self.walk_bytes += (body.len() + answer.len()) as u64;
        }
        if status != 200 {
            let message = String::from_utf8_lossy(&answer[..answer.len().min(500)]).into_owned();
            return Err(AgentError::Refused {
                addr: self.addr.clone(),
                what,
                status,
                message,
            });
        }
        Ok(answer)
    }

    fn json<T: DeserializeOwned>(
        &self,
        what: &'static str,
        answer: &[u8],
    ) -> Result<T, AgentError> {
        serde_json::from_slice(answer).map_err(|e| self.bad(what, e))
    }

    fn bad(&self, what: &'static str, e: impl std::fmt::Display) -> AgentError {
        AgentError::BadAnswer {
            addr: self.addr.clone(),
            what,
            message: e.to_string(),
        }
    }

    fn wire<T>(&self, what: &'static str, r: Result<T, WireError>) -> Result<T, AgentError> {
        r.map_err(|e| self.bad(what, e))
    }

    pub fn tables(&mut self) -> Result<Vec<String>, AgentError> {
        let what = "listing tables";
        let answer = self.call(what, "GET", "/v1/tables", b"", REQUEST_TIMEOUT)?;
        self.json(what, &answer)
    }

    pub fn schema(&mut self, table: &str) -> Result<TableSchema, AgentError> {
        let body = serde_json::to_vec(&TableRequest {
            table: Some(table.to_string()),
        })
        .map_err(|e| AgentError::Other(e.to_string()))?;
        let what = "reading a schema";
        let answer = self.call(what, "POST", "/v1/schema", &body, REQUEST_TIMEOUT)?;
        let s: WireSchema = self.json(what, &answer)?;
        Ok(s.into())
    }

    /// Asks the agent for the tree of `spec` (built now, or reused).
    pub fn build(
        &mut self,
        spec: &ScanSpec,
        canon: &CanonOptions,
        shape: Shape,
    ) -> Result<Built, AgentError> {
        let body = serde_json::to_vec(&BuildRequest::new(spec, canon, shape))
            .map_err(|e| AgentError::Other(e.to_string()))?;
        let what = "building a tree";
        let answer = self.call(what, "POST", "/v1/tree", &body, BUILD_TIMEOUT)?;
        let r: BuildResponse = self.json(what, &answer)?;
        Ok(Built {
            tree: r.tree,
            rows: r.rows,
            rows_read: r.rows_read,
        })
    }

    /// Drops the agent's cached trees (of one table, or all).
    pub fn invalidate(&mut self, table: Option<&str>) -> Result<u64, AgentError> {
        let body = serde_json::to_vec(&TableRequest {
            table: table.map(str::to_string),
        })
        .map_err(|e| AgentError::Other(e.to_string()))?;
        let what = "dropping cached trees";
        let answer = self.call(what, "POST", "/v1/invalidate", &body, REQUEST_TIMEOUT)?;
        let r: super::protocol::InvalidateResponse = self.json(what, &answer)?;
        Ok(r.dropped)
    }

    pub fn root(&mut self, tree: TreeId) -> Result<Option<NodeSummary>, AgentError> {
        let what = "reading a tree root";
        let answer = self.call(
            what,
            "POST",
            "/v1/root",
            &RootRequest { tree }.encode(),
            REQUEST_TIMEOUT,
        )?;
        self.wire(what, wire::decode_root(&answer))
    }

    /// The children of `nodes` (all of one level), in one request.
    pub fn children(
        &mut self,
        tree: TreeId,
        nodes: &[NodeSummary],
    ) -> Result<Vec<Vec<NodeSummary>>, AgentError> {
        let what = "reading tree nodes";
        let req = ChildrenRequest {
            tree,
            level: nodes.first().map_or(0, |n| n.level),
            indexes: nodes.iter().map(|n| n.index).collect(),
        };
        let answer = self.call(what, "POST", "/v1/children", &req.encode(), REQUEST_TIMEOUT)?;
        self.wire(what, wire::decode_children(nodes, &answer))
    }

    /// A page of the entries of the requested ranges (one list per range),
    /// and whether more follow.
    pub fn entries(&mut self, req: &EntriesRequest) -> Result<(Vec<Vec<Entry>>, bool), AgentError> {
        let what = "reading leaf entries";
        let answer = self.call(what, "POST", "/v1/entries", &req.encode(), REQUEST_TIMEOUT)?;
        self.wire(what, wire::decode_entries(req, &answer))
    }

    /// Rows by key; each row holds `width` values (key columns first).
    pub fn rows(&mut self, req: &RowsRequest, width: usize) -> Result<Vec<Vec<Value>>, AgentError> {
        let what = "reading rows";
        let answer = self.call(what, "POST", "/v1/rows", &req.encode(), REQUEST_TIMEOUT)?;
        self.wire(what, wire::decode_rows(&answer, width))
    }

    /// The leaf entries of tree `tree` in each of `ranges` (ascending,
    /// disjoint), in key order: the ranges asked a batch at a time, each
    /// batch a page at a time, until the agent says no more follow.
    pub fn entries_of(
        &mut self,
        tree: TreeId,
        ranges: &[KeyRange],
    ) -> Result<Vec<Vec<Entry>>, AgentError> {
        let mut out: Vec<Vec<Entry>> = vec![Vec::new(); ranges.len()];
        for (batch, base) in ranges
            .chunks(wire::RANGES_BATCH)
            .zip((0..).step_by(wire::RANGES_BATCH))
        {
            // The ranges still to ask for, and where each one's entries go.
            let mut todo: Vec<(KeyRange, usize)> = batch.iter().cloned().zip(base..).collect();
            loop {
                let req = EntriesRequest {
                    tree,
                    ranges: todo.iter().map(|t| t.0.clone()).collect(),
                    limit: wire::ENTRIES_PAGE,
                };
                let (pages, more) = self.entries(&req)?;
                let next = still_to_ask(&todo, &pages, more);
                for (page, (_, at)) in pages.into_iter().zip(&todo) {
                    out[*at].extend(page);
                }
                if !more || next.is_empty() {
                    break;
                }
                todo = next;
            }
        }
        Ok(out)
    }

    /// The rows of tree `tree` with the keys of `groups` (each a range's
    /// lower bound and keys in it, all ascending), in key order; each row
    /// holds `width` values, the first `nkey` of them its key. Only rows
    /// asked for are kept, whatever the agent sent.
    pub fn rows_by_key(
        &mut self,
        tree: TreeId,
        groups: &[(Option<Key>, Vec<Key>)],
        width: usize,
        nkey: usize,
    ) -> Result<Vec<KeyedRow>, AgentError> {
        // Groups are ascending and disjoint, so their keys in a row are too.
        let all: Vec<&Key> = groups.iter().flat_map(|g| &g.1).collect();
        let mut out = Vec::new();
        for req in wire::rows_pages(tree, groups) {
            for values in self.rows(&req, width)? {
                let k = key::encode(&values[..nkey]);
                if all.binary_search(&&k).is_ok() {
                    out.push(KeyedRow { key: k, values });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out.dedup_by(|a, b| a.key == b.key);
        Ok(out)
    }
}

/// After a page of entries: the ranges to ask for next (with where their
/// entries go). The page stopped inside the last range it holds entries
/// of, so that one goes on after its last key, and the ranges after it
/// were not read at all.
fn still_to_ask(
    todo: &[(KeyRange, usize)],
    pages: &[Vec<Entry>],
    more: bool,
) -> Vec<(KeyRange, usize)> {
    let last = pages.iter().rposition(|p| !p.is_empty());
    let (Some(last), true) = (last, more) else {
        return Vec::new();
    };
    let mut next = Vec::new();
    for (k, page) in pages.iter().enumerate().skip(last) {
        let (range, at) = &todo[k];
        if k == last {
            let after = page.last().map(|e| e.key.clone());
            let through = range.through.clone();
            next.push((KeyRange { after, through }, *at));
        } else {
            next.push((range.clone(), *at));
        }
    }
    next
}
