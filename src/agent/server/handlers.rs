//! Answering one request: the token and admission checks, then the
//! handlers for tables, schemas, building and dropping trees, and the
//! walk's roots and children. Entries and rows are read in `reads`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use driftsum_core::protocol::{self as wire, ChildrenRequest, RootRequest};
use driftsum_core::{Side, ENCODING_VERSION};

use super::answer::{bad_request, binary, json, source_answer, text, Answer, Answered};
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
        let answered = match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v1/tables") => self.tables(),
            ("POST", "/v1/schema") => self.schema(&req.body),
            ("POST", "/v1/tree") => self.build(&req.body),
            ("POST", "/v1/invalidate") => self.invalidate(&req.body),
            ("POST", "/v1/root") => self.root(&req.body),
            ("POST", "/v1/children") => self.children(&req.body),
            ("POST", "/v1/entries") => self.entries(&req.body),
            ("POST", "/v1/rows") => self.rows(&req.body),
            (_, "/healthz" | "/v1/tables" | "/v1/schema" | "/v1/tree" | "/v1/invalidate")
            | (_, "/v1/root" | "/v1/children" | "/v1/entries" | "/v1/rows") => {
                Err(text(405, "wrong method for this endpoint"))
            }
            _ => Err(text(404, "no such endpoint")),
        };
        answered.unwrap_or_else(|a| a)
    }

    fn tables(&self) -> Answered {
        let tables = self.open().and_then(|mut s| s.tables());
        Ok(json(&tables.map_err(source_answer)?))
    }

    fn schema(&self, body: &[u8]) -> Answered {
        let req: TableRequest = serde_json::from_slice(body).map_err(bad_request)?;
        let table = req.table.ok_or_else(|| bad_request("name a table"))?;
        let schema = self.open().and_then(|mut s| s.schema(&table));
        Ok(json(&WireSchema::from(&schema.map_err(source_answer)?)))
    }

    fn build(&self, body: &[u8]) -> Answered {
        let req: BuildRequest = serde_json::from_slice(body).map_err(bad_request)?;
        if req.protocol != PROTOCOL_VERSION {
            return Err(text(
                400,
                format!(
                    "protocol version {} asked, this agent speaks {PROTOCOL_VERSION}",
                    req.protocol
                ),
            ));
        }
        if req.encoding_version != ENCODING_VERSION {
            return Err(text(
                400,
                format!(
                    "canonical encoding version {} asked, this agent hashes with {ENCODING_VERSION}",
                    req.encoding_version
                ),
            ));
        }
        if req.filter.is_some() && !self.opts.allow_where {
            return Err(text(
                403,
                "this agent does not run --where conditions (start it with --allow-where)",
            ));
        }
        if req.key.is_empty() {
            return Err(bad_request("no key columns"));
        }
        {
            let trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = trees
                .iter()
                .rev()
                .find(|s| s.request == req && self.fresh(s, true))
            {
                s.touch();
                return Ok(json(&BuildResponse {
                    tree: s.id,
                    rows: s.tree.rows,
                    rows_read: 0,
                    levels: s.tree.levels.len() as u32,
                    cached: true,
                }));
            }
        }
        let spec = req.spec().map_err(|e| text(400, e))?;
        let (mut src, stamp) = self.open_pinned()?;
        let built = build_tree(
            src.as_mut(),
            &spec,
            &req.canon,
            req.shape,
            Side::Source,
            &|_, _| {},
        )
        .map_err(source_answer)?;
        let ranged = built.ordered
            && src.ranges_find_every_row(&spec)
            && src.ranges_use_index(&spec).map_err(source_answer)?;
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
        Ok(json(&answer))
    }

    fn invalidate(&self, body: &[u8]) -> Answered {
        let req: TableRequest = serde_json::from_slice(body).map_err(bad_request)?;
        let mut trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        let before = trees.len();
        trees.retain(|s| req.table.as_ref().is_some_and(|t| *t != s.request.table));
        Ok(json(&InvalidateResponse {
            dropped: (before - trees.len()) as u64,
        }))
    }

    fn root(&self, body: &[u8]) -> Answered {
        let req = RootRequest::decode(body).map_err(bad_request)?;
        let s = self.tree(req.tree)?;
        Ok(binary(wire::encode_root(s.tree.root_summary().as_ref())))
    }

    fn children(&self, body: &[u8]) -> Answered {
        let req = ChildrenRequest::decode(body).map_err(bad_request)?;
        let s = self.tree(req.tree)?;
        let mut groups = Vec::with_capacity(req.indexes.len());
        for &i in &req.indexes {
            match s.tree.children_of(req.level, i) {
                Some(kids) if !kids.is_empty() => groups.push(kids),
                _ => {
                    return Err(text(
                        404,
                        format!("no inner node {i} on level {}", req.level),
                    ))
                }
            }
        }
        Ok(binary(wire::encode_children(&groups)))
    }
}
