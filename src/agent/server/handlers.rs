//! Answering one request: the token and admission checks, then the
//! handlers for tables, schemas, building and dropping trees, and the
//! walk's roots and children. Entries and rows are read in `reads`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use driftsum_core::protocol::{self as wire, ChildrenRequest, RootRequest};
use driftsum_core::{Side, ENCODING_VERSION};

use super::answer::{binary, json, source_answer, text, Answer};
use super::state::{Served, State};
use crate::agent::auth::token_matches;
use crate::agent::http::Request;
use crate::agent::protocol::{
    BuildRequest, BuildResponse, InvalidateResponse, TableRequest, WireSchema, PROTOCOL_VERSION,
};
use crate::build::build_tree;

impl State {
    pub(super) fn handle(&self, req: &Request) -> Answer {
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

    pub(super) fn schema(&self, body: &[u8]) -> Answer {
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

    pub(super) fn build(&self, body: &[u8]) -> Answer {
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
        let spec = match req.spec() {
            Ok(spec) => spec,
            Err(e) => return text(400, e),
        };
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

    pub(super) fn invalidate(&self, body: &[u8]) -> Answer {
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

    pub(super) fn root(&self, body: &[u8]) -> Answer {
        let req = match RootRequest::decode(body) {
            Ok(r) => r,
            Err(e) => return text(400, e),
        };
        match self.tree(req.tree) {
            Ok(s) => binary(wire::encode_root(s.tree.root_summary().as_ref())),
            Err(a) => a,
        }
    }

    pub(super) fn children(&self, body: &[u8]) -> Answer {
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
}
