//! What a side answers each request with, and the checks a client makes of
//! an answer before believing it.

use crate::key::Key;
use crate::tree::{Entry, HashPrefix, NodeSummary, HASH_PREFIX_LEN};
use crate::value::Value;
use crate::varint;

use super::cursor::{key_after_len, put_key, put_key_after, Reader};
use super::requests::EntriesRequest;
use super::value::{get_value, put_value, skip_value, value_len};
use super::{WireError, CHILDREN_BATCH, MAX_CHILDREN, MAX_COLUMNS, ROWS_PAGE};

/// Response to a [`RootRequest`]: `0` for an empty tree, or `1`, the level,
/// the index (a varint), the full last key, the rows and the hash prefix.
pub fn encode_root(root: Option<&NodeSummary>) -> Vec<u8> {
    let mut out = Vec::new();
    match root {
        None => out.push(0),
        Some(n) => {
            out.push(1);
            out.push(n.level);
            varint::put(&mut out, n.index as u64);
            put_key(&mut out, n.last_key.as_bytes());
            varint::put(&mut out, n.rows);
            out.extend_from_slice(&n.hash.0);
        }
    }
    out
}

/// Decodes and checks an answer to a [`super::RootRequest`].
pub fn decode_root(bytes: &[u8]) -> Result<Option<NodeSummary>, WireError> {
    let mut r = Reader::new(bytes);
    let root = match r.u8()? {
        0 => None,
        1 => {
            let level = r.u8()?;
            let index = r.bounded(u32::MAX as u64, "node index out of range")? as u32;
            let last_key = r.key()?;
            let rows = r.varint()?;
            if rows == 0 {
                return Err(WireError::Invalid("a root with no rows"));
            }
            let hash = HashPrefix(r.array::<HASH_PREFIX_LEN>()?);
            Some(NodeSummary {
                level,
                index,
                last_key,
                rows,
                hash,
            })
        }
        _ => return Err(WireError::Invalid("bad root flag")),
    };
    r.finish()?;
    Ok(root)
}

/// Response to a [`ChildrenRequest`]: for each requested node in turn, the
/// first child's index, the number of children, then each child's key
/// (prefix-compressed; the last child's left out), rows and hash prefix.
/// Each of `groups` must be a node's children as its tree holds them:
/// consecutive, ending at the node's last key.
pub fn encode_children(groups: &[Vec<NodeSummary>]) -> Vec<u8> {
    let mut out = Vec::new();
    for kids in groups {
        varint::put(&mut out, kids.first().map_or(0, |k| k.index as u64));
        varint::put(&mut out, kids.len() as u64);
        let mut prev: &[u8] = &[];
        for (i, k) in kids.iter().enumerate() {
            if i + 1 < kids.len() {
                put_key_after(&mut out, prev, k.last_key.as_bytes());
                prev = k.last_key.as_bytes();
            }
            varint::put(&mut out, k.rows);
            out.extend_from_slice(&k.hash.0);
        }
    }
    out
}

/// Decodes the children of each of `parents`, checking that they are what
/// children of those nodes can be: one level down, consecutive, keys
/// ascending and ending at the parent's last key, rows adding up to the
/// parent's.
pub fn decode_children(
    parents: &[NodeSummary],
    bytes: &[u8],
) -> Result<Vec<Vec<NodeSummary>>, WireError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::with_capacity(parents.len().min(CHILDREN_BATCH));
    for parent in parents {
        out.push(read_children(&mut r, parent)?);
    }
    r.finish()?;
    Ok(out)
}

fn read_children(r: &mut Reader<'_>, parent: &NodeSummary) -> Result<Vec<NodeSummary>, WireError> {
    if parent.level == 0 {
        return Err(WireError::Invalid("a leaf has no children"));
    }
    let level = parent.level - 1;
    let first = r.bounded(u32::MAX as u64, "node index out of range")?;
    let n = r.count(1 + HASH_PREFIX_LEN, MAX_CHILDREN)?;
    if n == 0 {
        return Err(WireError::Invalid("an inner node with no children"));
    }
    if first + n as u64 - 1 > u32::MAX as u64 {
        return Err(WireError::Invalid("node index out of range"));
    }
    let mut kids: Vec<NodeSummary> = Vec::with_capacity(n);
    let mut cur = Vec::new();
    let mut rows_total: u64 = 0;
    for i in 0..n {
        let last_key = if i + 1 < n {
            r.key_after(&mut cur)?;
            if cur.as_slice() >= parent.last_key.as_bytes() {
                return Err(WireError::Invalid("a child ends after its parent"));
            }
            Key::from_bytes(&cur)
        } else {
            parent.last_key.clone()
        };
        if kids.last().is_some_and(|p| p.last_key >= last_key) {
            return Err(WireError::Invalid("children not in key order"));
        }
        let rows = r.varint()?;
        if rows == 0 {
            return Err(WireError::Invalid("a node with no rows"));
        }
        rows_total = rows_total
            .checked_add(rows)
            .ok_or(WireError::Invalid("row count overflows"))?;
        let hash = HashPrefix(r.array::<HASH_PREFIX_LEN>()?);
        kids.push(NodeSummary {
            level,
            index: (first + i as u64) as u32,
            last_key,
            rows,
            hash,
        });
    }
    if rows_total != parent.rows {
        return Err(WireError::Invalid(
            "children's rows do not add up to the parent's",
        ));
    }
    Ok(kids)
}

/// Response to an [`EntriesRequest`]: whether more entries follow the page
/// (`0`/`1`), then for each requested range its number of entries and the
/// entries: key (prefix-compressed against the entry before, across ranges)
/// and row-hash prefix. An agent fills the page range by range; when the
/// limit cuts it, the ranges after the cut are sent empty and `more` is set.
pub fn encode_entries<E: AsRef<[Entry]>>(per_range: &[E], more: bool) -> Vec<u8> {
    let mut out = vec![more as u8];
    let mut prev: &[u8] = &[];
    for entries in per_range {
        let entries = entries.as_ref();
        varint::put(&mut out, entries.len() as u64);
        for e in entries {
            put_key_after(&mut out, prev, e.key.as_bytes());
            prev = e.key.as_bytes();
            out.extend_from_slice(&e.hash.0);
        }
    }
    out
}

/// The length of [`encode_entries`] of `per_range`, without building it
/// (what a local diff reports it would have exchanged through agents).
pub fn encoded_entries_len<E: AsRef<[Entry]>>(per_range: &[E]) -> usize {
    let mut len = 1;
    let mut prev: &[u8] = &[];
    for entries in per_range {
        let entries = entries.as_ref();
        len += varint::len(entries.len() as u64);
        for e in entries {
            len += key_after_len(prev, e.key.as_bytes()) + e.hash.0.len();
            prev = e.key.as_bytes();
        }
    }
    len
}

/// Decodes a page of entries answering `req`: per range, ascending and
/// inside it; no more than asked for in all.
pub fn decode_entries(
    req: &EntriesRequest,
    bytes: &[u8],
) -> Result<(Vec<Vec<Entry>>, bool), WireError> {
    let mut r = Reader::new(bytes);
    let more = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(WireError::Invalid("bad continuation flag")),
    };
    let mut out: Vec<Vec<Entry>> = Vec::with_capacity(req.ranges.len());
    let mut cur = Vec::new();
    let mut total = 0u64;
    let mut last: Option<Key> = None;
    for range in &req.ranges {
        let n = r.count(2 + HASH_PREFIX_LEN, req.limit as u64 - total)?;
        total += n as u64;
        let mut page: Vec<Entry> = Vec::with_capacity(n);
        for _ in 0..n {
            r.key_after(&mut cur)?;
            if !range.contains(&cur) {
                return Err(WireError::Invalid("an entry outside its range"));
            }
            if last.as_ref().is_some_and(|p| p.as_bytes() >= &cur[..]) {
                return Err(WireError::Invalid("entries not in key order"));
            }
            let key = Key::from_bytes(&cur);
            last = Some(key.clone());
            let hash = HashPrefix(r.array::<HASH_PREFIX_LEN>()?);
            page.push(Entry { key, hash });
        }
        out.push(page);
    }
    r.finish()?;
    if more && total == 0 {
        return Err(WireError::Invalid("an empty page that promises more"));
    }
    Ok((out, more))
}

/// Response to a [`RowsRequest`]: the number of rows, then each row as its
/// number of values and the values (key columns first, as scanned).
pub fn encode_rows(rows: &[Vec<Value>]) -> Vec<u8> {
    let mut out = Vec::new();
    varint::put(&mut out, rows.len() as u64);
    for row in rows {
        encode_row(&mut out, row);
    }
    out
}

/// Appends one row of [`encode_rows`] to `out`: its number of values and
/// the values ([`encoded_row_len`] bytes).
pub fn encode_row(out: &mut Vec<u8>, row: &[Value]) {
    varint::put(out, row.len() as u64);
    for v in row {
        put_value(out, v);
    }
}

/// Decodes one row of exactly `width` values, as [`encode_row`] wrote it.
pub fn decode_row(bytes: &[u8], width: usize) -> Result<Vec<Value>, WireError> {
    let mut r = Reader::new(bytes);
    let row = get_row(&mut r, width)?;
    r.finish()?;
    Ok(row)
}

/// Where each of the `width` values of one row written by [`encode_row`]
/// lies in `bytes`, into `spans` (cleared first): a row's columns compared
/// by their bytes need no decoding, and [`value_from_bytes`] decodes the
/// ones that differ.
pub fn row_spans(
    bytes: &[u8],
    width: usize,
    spans: &mut Vec<std::ops::Range<usize>>,
) -> Result<(), WireError> {
    let mut r = Reader::new(bytes);
    if r.count(1, MAX_COLUMNS)? != width {
        return Err(WireError::Invalid("a row of the wrong width"));
    }
    spans.clear();
    for _ in 0..width {
        let start = bytes.len() - r.left();
        skip_value(&mut r)?;
        spans.push(start..bytes.len() - r.left());
    }
    r.finish()
}

fn get_row(r: &mut Reader<'_>, width: usize) -> Result<Vec<Value>, WireError> {
    let w = r.count(1, MAX_COLUMNS)?;
    if w != width {
        return Err(WireError::Invalid("a row of the wrong width"));
    }
    let mut row = Vec::with_capacity(w);
    for _ in 0..w {
        row.push(get_value(r)?);
    }
    Ok(row)
}

/// The length of [`encode_rows`] of `rows`, without building it (what a
/// local diff reports it would have exchanged through agents).
pub fn encoded_rows_len<'a>(rows: impl ExactSizeIterator<Item = &'a [Value]>) -> usize {
    encoded_rows_len_of(rows.len(), rows.map(encoded_row_len).sum())
}

/// One row's share of [`encoded_rows_len`].
pub fn encoded_row_len(row: &[Value]) -> usize {
    varint::len(row.len() as u64) + row.iter().map(value_len).sum::<usize>()
}

/// [`encoded_rows_len`] of `rows` rows whose [`encoded_row_len`]s add up
/// to `row_bytes`.
pub fn encoded_rows_len_of(rows: usize, row_bytes: usize) -> usize {
    varint::len(rows as u64) + row_bytes
}

/// Decodes rows, each of exactly `width` values.
pub fn decode_rows(bytes: &[u8], width: usize) -> Result<Vec<Vec<Value>>, WireError> {
    let mut r = Reader::new(bytes);
    let n = r.count(1 + width, ROWS_PAGE as u64)?;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        rows.push(get_row(&mut r, width)?);
    }
    r.finish()?;
    Ok(rows)
}
