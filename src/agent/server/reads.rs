//! Reading a served tree's leaf entries and rows back from its snapshot,
//! every leaf touched recomputed and checked against the tree, so that an
//! answer is the tree's data or a `410`.

use std::ops::ControlFlow;

use driftsum_core::protocol::{self as wire, EntriesRequest, RowsRequest};
use driftsum_core::tree::Entry;
use driftsum_core::{key, Key, Value};

use super::answer::{bad_request, binary, not_the_trees, source_answer, Answer, Answered};
use super::state::{Served, State};
use crate::agent::verify::{spans, spans_holding, LeafCheck, RangeRead};
use crate::build::{row_hasher, scan_range};
use crate::source::sql::decode_key;
use crate::source::Source;

impl State {
    /// Reads `(after, through]` of a served tree's table with the range in
    /// the query (a tree with [`Served::ranged`]; see [`scan_range`]),
    /// handing each row inside it (with its key bytes) to `each` until that
    /// returns false.
    pub(super) fn scan_range(
        src: &mut dyn Source,
        s: &Served,
        after: Option<&Key>,
        through: &Key,
        each: &mut (dyn FnMut(&[u8], &[Value]) -> bool + Send),
    ) -> Result<(), Answer> {
        if after.is_some_and(|a| decode_key(a).is_err()) || decode_key(through).is_err() {
            return Err(bad_request("a key that is not a key"));
        }
        scan_range(src, &s.spec, after, through, &mut |k, row| {
            if each(k, row) {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        })
        .map(|_| ())
        .map_err(source_answer)
    }

    /// For a tree without [`Served::ranged`], one scan of the whole table,
    /// sorting each row's key and hash into every span holding it, with its
    /// values when `keep` says so; each span's rows in key order. `None`
    /// for a tree whose spans are read range by range.
    pub(super) fn scan_spans(
        src: &mut dyn Source,
        s: &Served,
        spans: &[(Option<Key>, Key)],
        keep: &(dyn Fn(usize, &Key) -> bool + Sync),
    ) -> Result<Option<Vec<Vec<SpanRow>>>, Answer> {
        if s.ranged {
            return Ok(None);
        }
        let mut hasher = row_hasher(&s.spec, &s.canon);
        let mut found: Vec<Vec<SpanRow>> = vec![Vec::new(); spans.len()];
        let nkey = s.spec.key.len();
        let mut kbuf = Vec::new();
        let scanned = src.scan(&s.spec, None, &mut |row| {
            key::encode_into(&mut kbuf, &row[..nkey]);
            let mut hash = None;
            for i in spans_holding(spans, &kbuf) {
                let h = *hash.get_or_insert_with(|| hasher.hash(row).1);
                let key = Key::from_bytes(&kbuf);
                let values = keep(i, &key).then(|| row.to_vec());
                found[i].push(SpanRow {
                    key,
                    hash: h,
                    values,
                });
            }
            ControlFlow::Continue(())
        });
        scanned.map_err(source_answer)?;
        for f in &mut found {
            f.sort_by(|a, b| a.key.cmp(&b.key));
        }
        Ok(Some(found))
    }

    pub(super) fn entries(&self, body: &[u8]) -> Answered {
        let req = EntriesRequest::decode(body).map_err(bad_request)?;
        let s = self.tree(req.tree)?;
        let bounds: Vec<(Option<&Key>, &Key)> = req
            .ranges
            .iter()
            .map(|r| (r.after.as_ref(), &r.through))
            .collect();
        if !ascending(&bounds) {
            return Err(bad_request(
                "key ranges must be ascending, disjoint and not empty",
            ));
        }
        let mut reader = self.reader(&s)?;
        let src = reader.source();
        let leaves = s.tree.levels.first().map_or(&[][..], Vec::as_slice);
        let spans = spans(leaves, &bounds);
        // Without ranges in the query, one scan reads every range.
        let whole = Self::scan_spans(src, &s, &spans, &|_, _| false)?;
        let mut hasher = row_hasher(&s.spec, &s.canon);
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
                    Self::scan_range(src, &s, start.as_ref(), end, &mut |_, row| {
                        let (k, h) = hasher.hash(row);
                        read.feed(k, &h)
                    })?;
                }
            }
            let mut found = read.finish().ok_or_else(not_the_trees)?;
            if found.len() > room {
                more = true;
                found.truncate(room);
            }
            room -= found.len();
            pages.push(found);
        }
        Ok(binary(wire::encode_entries(&pages, more)))
    }

    pub(super) fn rows(&self, body: &[u8]) -> Answered {
        let req = RowsRequest::decode(body).map_err(bad_request)?;
        let s = self.tree(req.tree)?;
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
            return Err(bad_request(
                "key groups must be ascending, disjoint and not empty",
            ));
        }
        let mut reader = self.reader(&s)?;
        let src = reader.source();
        let leaves = s.tree.levels.first().map_or(&[][..], Vec::as_slice);
        let spans = spans(leaves, &bounds);
        let wanted = |i: usize, k: &Key| groups[i].1.binary_search(k).is_ok();
        let mut rows: Vec<(Key, Vec<Value>)> = Vec::new();
        let mut whole = Self::scan_spans(src, &s, &spans, &wanted)?;
        let mut hasher = row_hasher(&s.spec, &s.canon);
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
                    Self::scan_range(src, &s, start.as_ref(), end, &mut |_, row| {
                        let (k, h) = hasher.hash(row);
                        check.push(k, &h);
                        let k = Key::from_bytes(k);
                        if wanted(i, &k) {
                            rows.push((k, row.to_vec()));
                        }
                        check.ok()
                    })?;
                }
            }
            check.finish(bounds[i].1);
            if !check.ok() {
                return Err(not_the_trees());
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.dedup_by(|a, b| a.0 == b.0);
        let rows: Vec<Vec<Value>> = rows.into_iter().map(|(_, r)| r).collect();
        Ok(binary(wire::encode_rows(&rows)))
    }
}

/// A row a whole-table scan found in a span.
#[derive(Clone)]
pub(super) struct SpanRow {
    pub(super) key: Key,
    pub(super) hash: driftsum_core::Hash,
    /// Its values, when asked for.
    pub(super) values: Option<Vec<Value>>,
}

/// Whether ranges `(after, through]` are ascending, disjoint and not empty,
/// as a walk asks for them.
pub(super) fn ascending(ranges: &[(Option<&Key>, &Key)]) -> bool {
    ranges.iter().all(|(a, t)| a.is_none_or(|a| a < *t))
        && ranges
            .windows(2)
            .all(|w| w[1].0.is_some_and(|a| a >= w[0].1))
}
