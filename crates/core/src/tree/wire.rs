//! The wire encoding of everything a walk exchanges with a side: the
//! requests (root, children of a node, leaf entries of a key range, rows by
//! key) and their responses. It is defined once, here, so that a walk over
//! two trees in memory counts exactly the bytes a walk over two agents sends.
//!
//! Integers are LEB128 varints unless fixed width is noted. A list of keys is
//! prefix-compressed: each key is the length of the prefix it shares with
//! the key before it, then the length and bytes of the rest. A node summary
//! carries its last key, row count and a [`HashPrefix`]; the children of a
//! node are sent as the index of the first child and the children in order,
//! and the last child's key is left out, since it is the parent's last key.
//!
//! Every decoder takes untrusted bytes: it checks every length against what
//! is left before allocating, and every structural promise (keys ascending,
//! children's rows adding up to the parent's) before returning.

use crate::key::Key;
use crate::value::Value;

use super::node::{Entry, HashPrefix, NodeSummary, HASH_PREFIX_LEN};

/// The id an agent gives one built tree; requests name the tree they walk.
/// Fixed width (4 bytes), so a request's size does not depend on which build
/// of a tree it walks.
pub type TreeId = u32;

/// The longest key accepted on the wire.
pub const MAX_KEY_LEN: usize = 64 * 1024;
/// The most children a node may have on the wire (boundaries are
/// content-defined, so this is far above any real fanout).
pub const MAX_CHILDREN: u64 = 1 << 20;
/// Key ranges per entries request.
pub const RANGES_BATCH: usize = 1024;
/// Nodes per children request.
pub const CHILDREN_BATCH: usize = 1024;
/// Leaf entries per page of an entries request.
pub const ENTRIES_PAGE: u32 = 16 * 1024;
/// Keys per rows request.
pub const ROWS_PAGE: usize = 1024;
/// Values per row accepted on the wire.
pub const MAX_COLUMNS: u64 = 4096;

/// Bytes that are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the message ends early")]
    Truncated,
    #[error("the message has {0} bytes left over at its end")]
    TrailingBytes(usize),
    #[error("invalid message: {0}")]
    Invalid(&'static str),
}

/// Appends `v` as a LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A cursor over untrusted bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.left() {
            return Err(WireError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let bits = (b & 0x7F) as u64;
            if shift == 63 && bits > 1 {
                return Err(WireError::Invalid("varint overflows 64 bits"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::Invalid("varint longer than 10 bytes"))
    }

    /// A varint that must fit `max`.
    fn bounded(&mut self, max: u64, what: &'static str) -> Result<u64, WireError> {
        let v = self.varint()?;
        if v > max {
            return Err(WireError::Invalid(what));
        }
        Ok(v)
    }

    fn tree(&mut self) -> Result<TreeId, WireError> {
        Ok(TreeId::from_le_bytes(self.array()?))
    }

    /// A count of items each at least `min_size` bytes long: checked against
    /// what is left, so no claimed count can make a decoder allocate more
    /// than the message could hold.
    fn count(&mut self, min_size: usize, max: u64) -> Result<usize, WireError> {
        let n = self.bounded(max, "count out of range")?;
        if n.saturating_mul(min_size as u64) > self.left() as u64 {
            return Err(WireError::Truncated);
        }
        Ok(n as usize)
    }

    fn key(&mut self) -> Result<Key, WireError> {
        let len = self.bounded(MAX_KEY_LEN as u64, "key too long")? as usize;
        Ok(Key::from_bytes(self.bytes(len)?))
    }

    /// A prefix-compressed key following `prev` (whose bytes it overwrites).
    fn key_after(&mut self, prev: &mut Vec<u8>) -> Result<(), WireError> {
        let shared = self.bounded(
            prev.len() as u64,
            "shared prefix longer than the key before",
        )?;
        let rest = self.bounded(MAX_KEY_LEN as u64, "key too long")? as usize;
        let rest = self.bytes(rest)?;
        prev.truncate(shared as usize);
        if prev.len() + rest.len() > MAX_KEY_LEN {
            return Err(WireError::Invalid("key too long"));
        }
        prev.extend_from_slice(rest);
        Ok(())
    }

    fn finish(self) -> Result<(), WireError> {
        match self.left() {
            0 => Ok(()),
            n => Err(WireError::TrailingBytes(n)),
        }
    }
}

fn put_key(out: &mut Vec<u8>, key: &[u8]) {
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
}

fn put_key_after(out: &mut Vec<u8>, prev: &[u8], key: &[u8]) {
    let shared = prev.iter().zip(key).take_while(|(a, b)| a == b).count();
    put_varint(out, shared as u64);
    put_varint(out, (key.len() - shared) as u64);
    out.extend_from_slice(&key[shared..]);
}

/// Request: the root of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootRequest {
    pub tree: TreeId,
}

impl RootRequest {
    pub fn encode(&self) -> Vec<u8> {
        self.tree.to_le_bytes().to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<RootRequest, WireError> {
        let mut r = Reader::new(bytes);
        let tree = r.tree()?;
        r.finish()?;
        Ok(RootRequest { tree })
    }
}

/// Request: the children of several nodes of one level (ascending indexes,
/// at most [`CHILDREN_BATCH`]), so that a walk opens all the nodes of a
/// level it needs in one round trip per side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildrenRequest {
    pub tree: TreeId,
    pub level: u8,
    pub indexes: Vec<u32>,
}

impl ChildrenRequest {
    /// The tree id, the level, the count, then each index as its distance
    /// from the one before.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.tree.to_le_bytes().to_vec();
        out.push(self.level);
        put_varint(&mut out, self.indexes.len() as u64);
        let mut prev = 0u64;
        for &i in &self.indexes {
            put_varint(&mut out, i as u64 - prev);
            prev = i as u64;
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<ChildrenRequest, WireError> {
        let mut r = Reader::new(bytes);
        let tree = r.tree()?;
        let level = r.u8()?;
        let n = r.count(1, CHILDREN_BATCH as u64)?;
        if n == 0 {
            return Err(WireError::Invalid("no nodes"));
        }
        let mut indexes: Vec<u32> = Vec::with_capacity(n);
        let mut at = 0u64;
        for k in 0..n {
            let d = r.varint()?;
            if k > 0 && d == 0 {
                return Err(WireError::Invalid("node indexes not ascending"));
            }
            at = at
                .checked_add(d)
                .filter(|&v| v <= u32::MAX as u64)
                .ok_or(WireError::Invalid("node index out of range"))?;
            indexes.push(at as u32);
        }
        r.finish()?;
        Ok(ChildrenRequest {
            tree,
            level,
            indexes,
        })
    }
}

/// A key interval `(after, through]`; `after: None` starts at the first key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub after: Option<Key>,
    pub through: Key,
}

impl KeyRange {
    pub fn contains(&self, key: &[u8]) -> bool {
        self.after.as_ref().is_none_or(|a| key > a.as_bytes()) && key <= self.through.as_bytes()
    }
}

fn put_range(out: &mut Vec<u8>, r: &KeyRange) {
    match &r.after {
        None => out.push(0),
        Some(k) => {
            out.push(1);
            put_key(out, k.as_bytes());
        }
    }
    put_key(out, r.through.as_bytes());
}

fn get_range(r: &mut Reader<'_>) -> Result<KeyRange, WireError> {
    let after = match r.u8()? {
        0 => None,
        1 => Some(r.key()?),
        _ => return Err(WireError::Invalid("bad lower bound flag")),
    };
    let through = r.key()?;
    if after.as_ref().is_some_and(|a| *a >= through) {
        return Err(WireError::Invalid("empty key range"));
    }
    Ok(KeyRange { after, through })
}

/// Request: the leaf entries of several key ranges (ascending, disjoint, at
/// most [`RANGES_BATCH`]), at most `limit` entries in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntriesRequest {
    pub tree: TreeId,
    pub ranges: Vec<KeyRange>,
    pub limit: u32,
}

impl EntriesRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.tree.to_le_bytes().to_vec();
        put_varint(&mut out, self.ranges.len() as u64);
        for r in &self.ranges {
            put_range(&mut out, r);
        }
        put_varint(&mut out, self.limit as u64);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<EntriesRequest, WireError> {
        let mut r = Reader::new(bytes);
        let tree = r.tree()?;
        let n = r.count(3, RANGES_BATCH as u64)?;
        let mut ranges: Vec<KeyRange> = Vec::with_capacity(n);
        for _ in 0..n {
            let k = get_range(&mut r)?;
            if ranges
                .last()
                .is_some_and(|p| k.after.as_ref().is_none_or(|a| *a < p.through))
            {
                return Err(WireError::Invalid("ranges overlap or are out of order"));
            }
            ranges.push(k);
        }
        let limit = r.bounded(u32::MAX as u64, "limit out of range")? as u32;
        r.finish()?;
        if limit == 0 || ranges.is_empty() {
            return Err(WireError::Invalid("nothing asked for"));
        }
        Ok(EntriesRequest {
            tree,
            ranges,
            limit,
        })
    }
}

/// Request: rows by key, in groups that each lie in one key range
/// `(after, last key of the group]` (which bounds the agent's scan); at most
/// [`ROWS_PAGE`] keys in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowsRequest {
    pub tree: TreeId,
    pub groups: Vec<(Option<Key>, Vec<Key>)>,
}

impl RowsRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.tree.to_le_bytes().to_vec();
        put_varint(&mut out, self.groups.len() as u64);
        for (after, keys) in &self.groups {
            match after {
                None => out.push(0),
                Some(k) => {
                    out.push(1);
                    put_key(&mut out, k.as_bytes());
                }
            }
            put_keys(&mut out, keys);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<RowsRequest, WireError> {
        let mut r = Reader::new(bytes);
        let tree = r.tree()?;
        let n = r.count(2, ROWS_PAGE as u64)?;
        let mut groups: Vec<(Option<Key>, Vec<Key>)> = Vec::with_capacity(n);
        let mut total = 0usize;
        for _ in 0..n {
            let after = match r.u8()? {
                0 => None,
                1 => Some(r.key()?),
                _ => return Err(WireError::Invalid("bad lower bound flag")),
            };
            let keys = get_keys(&mut r, ROWS_PAGE as u64)?;
            let Some(first) = keys.first() else {
                return Err(WireError::Invalid("a group without keys"));
            };
            if after.as_ref().is_some_and(|a| first <= a) {
                return Err(WireError::Invalid("a key at or before its lower bound"));
            }
            if groups
                .last()
                .and_then(|g| g.1.last())
                .is_some_and(|p| after.as_ref().is_none_or(|a| a < p))
            {
                return Err(WireError::Invalid("groups overlap or are out of order"));
            }
            total += keys.len();
            if total > ROWS_PAGE {
                return Err(WireError::Invalid("too many keys"));
            }
            groups.push((after, keys));
        }
        r.finish()?;
        if groups.is_empty() {
            return Err(WireError::Invalid("no keys"));
        }
        Ok(RowsRequest { tree, groups })
    }
}

/// Splits rows-by-key requests into pages of at most [`ROWS_PAGE`] keys:
/// `groups` are `(range, keys in it)`, in key order.
pub fn rows_pages(tree: TreeId, groups: &[(Option<Key>, Vec<Key>)]) -> Vec<RowsRequest> {
    let mut out = Vec::new();
    let mut cur: Vec<(Option<Key>, Vec<Key>)> = Vec::new();
    let mut n = 0;
    for (after, keys) in groups {
        // A group split over pages goes on after the last key already sent.
        let mut after = after.clone();
        for chunk in keys.chunks(ROWS_PAGE) {
            if n + chunk.len() > ROWS_PAGE {
                out.push(RowsRequest {
                    tree,
                    groups: std::mem::take(&mut cur),
                });
                n = 0;
            }
            cur.push((after.clone(), chunk.to_vec()));
            n += chunk.len();
            after = chunk.last().cloned();
        }
    }
    if !cur.is_empty() {
        out.push(RowsRequest { tree, groups: cur });
    }
    out
}

fn put_keys(out: &mut Vec<u8>, keys: &[Key]) {
    put_varint(out, keys.len() as u64);
    let mut prev: &[u8] = &[];
    for k in keys {
        put_key_after(out, prev, k.as_bytes());
        prev = k.as_bytes();
    }
}

/// Prefix-compressed keys, strictly ascending.
fn get_keys(r: &mut Reader<'_>, max: u64) -> Result<Vec<Key>, WireError> {
    let n = r.count(2, max)?;
    let mut keys: Vec<Key> = Vec::with_capacity(n);
    let mut cur = Vec::new();
    for _ in 0..n {
        r.key_after(&mut cur)?;
        if keys.last().is_some_and(|p| p.as_bytes() >= &cur[..]) {
            return Err(WireError::Invalid("keys not ascending"));
        }
        keys.push(Key::from_bytes(&cur));
    }
    Ok(keys)
}

/// Response to a [`RootRequest`]: `0` for an empty tree, or `1`, the level,
/// the index (a varint), the full last key, the rows and the hash prefix.
pub fn encode_root(root: Option<&NodeSummary>) -> Vec<u8> {
    let mut out = Vec::new();
    match root {
        None => out.push(0),
        Some(n) => {
            out.push(1);
            out.push(n.level);
            put_varint(&mut out, n.index as u64);
            put_key(&mut out, n.last_key.as_bytes());
            put_varint(&mut out, n.rows);
            out.extend_from_slice(&n.hash.0);
        }
    }
    out
}

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
        put_varint(&mut out, kids.first().map_or(0, |k| k.index as u64));
        put_varint(&mut out, kids.len() as u64);
        let mut prev: &[u8] = &[];
        for (i, k) in kids.iter().enumerate() {
            if i + 1 < kids.len() {
                put_key_after(&mut out, prev, k.last_key.as_bytes());
                prev = k.last_key.as_bytes();
            }
            put_varint(&mut out, k.rows);
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
pub fn encode_entries(per_range: &[Vec<Entry>], more: bool) -> Vec<u8> {
    let mut out = vec![more as u8];
    let mut prev: &[u8] = &[];
    for entries in per_range {
        put_varint(&mut out, entries.len() as u64);
        for e in entries {
            put_key_after(&mut out, prev, e.key.as_bytes());
            prev = e.key.as_bytes();
            out.extend_from_slice(&e.hash.0);
        }
    }
    out
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

/// The requests an agent would be sent for the entries of `ranges`, and the
/// page each answers with, given all the entries (`per_range`, one list per
/// range): what fetching entries costs whether they came from an agent or
/// not. A page holds at most `ENTRIES_PAGE` entries, filled range by range;
/// the next request goes on after the last entry sent, in its range, with
/// the ranges after it.
pub fn entry_pages(
    tree: TreeId,
    ranges: &[KeyRange],
    per_range: &[Vec<Entry>],
) -> Vec<(EntriesRequest, Vec<Vec<Entry>>, bool)> {
    let mut out = Vec::new();
    for (rs, es) in ranges
        .chunks(RANGES_BATCH)
        .zip(per_range.chunks(RANGES_BATCH))
    {
        let mut todo: Vec<(KeyRange, &[Entry])> = rs
            .iter()
            .cloned()
            .zip(es.iter().map(Vec::as_slice))
            .collect();
        loop {
            let req = EntriesRequest {
                tree,
                ranges: todo.iter().map(|t| t.0.clone()).collect(),
                limit: ENTRIES_PAGE,
            };
            let mut room = ENTRIES_PAGE as usize;
            let page: Vec<Vec<Entry>> = todo
                .iter()
                .map(|(_, left)| {
                    let take = left.len().min(room);
                    room -= take;
                    left[..take].to_vec()
                })
                .collect();
            let more = todo.iter().zip(&page).any(|(t, p)| p.len() < t.1.len());
            let last = page.iter().rposition(|p| !p.is_empty());
            out.push((req, page.clone(), more));
            let (true, Some(j)) = (more, last) else {
                break;
            };
            let taken = page[j].len();
            let mut next = vec![(
                KeyRange {
                    after: page[j].last().map(|e| e.key.clone()),
                    through: todo[j].0.through.clone(),
                },
                &todo[j].1[taken..],
            )];
            next.extend(todo[j + 1..].iter().cloned());
            todo = next;
        }
    }
    out
}

const V_NULL: u8 = 0;
const V_INT: u8 = 1;
const V_FLOAT: u8 = 2;
const V_DECIMAL: u8 = 3;
const V_TEXT: u8 = 4;
const V_BYTES: u8 = 5;
const V_BOOL: u8 = 6;
const V_TIMESTAMP: u8 = 7;
const V_TIMESTAMP_NAIVE: u8 = 8;
const V_DATE: u8 = 9;
const V_TIME: u8 = 10;
const V_UUID: u8 = 11;
const V_JSON: u8 = 12;
const V_INVALID: u8 = 13;

fn put_str(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends one value: a tag, then a fixed little-endian payload or a
/// varint length and bytes. Unlike the canonical encoding this one is
/// lossless and decodable, since rows are shown to people.
pub fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(V_NULL),
        Value::Int(i) => {
            out.push(V_INT);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(V_FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Decimal(s) => put_str(out, V_DECIMAL, s.as_bytes()),
        Value::Text(s) => put_str(out, V_TEXT, s.as_bytes()),
        Value::Bytes(b) => put_str(out, V_BYTES, b),
        Value::Bool(b) => out.extend_from_slice(&[V_BOOL, *b as u8]),
        Value::Timestamp(t) => {
            out.push(V_TIMESTAMP);
            out.extend_from_slice(&t.to_le_bytes());
        }
        Value::TimestampNaive(t) => {
            out.push(V_TIMESTAMP_NAIVE);
            out.extend_from_slice(&t.to_le_bytes());
        }
        Value::Date(d) => {
            out.push(V_DATE);
            out.extend_from_slice(&d.to_le_bytes());
        }
        Value::Time(t) => {
            out.push(V_TIME);
            out.extend_from_slice(&t.to_le_bytes());
        }
        Value::Uuid(u) => {
            out.push(V_UUID);
            out.extend_from_slice(u);
        }
        Value::Json(s) => put_str(out, V_JSON, s.as_bytes()),
        Value::Invalid(s) => put_str(out, V_INVALID, s.as_bytes()),
    }
}

fn get_value(r: &mut Reader<'_>) -> Result<Value, WireError> {
    let string = |r: &mut Reader<'_>| -> Result<String, WireError> {
        let n = r.bounded(u32::MAX as u64, "value too long")? as usize;
        String::from_utf8(r.bytes(n)?.to_vec()).map_err(|_| WireError::Invalid("text is not UTF-8"))
    };
    Ok(match r.u8()? {
        V_NULL => Value::Null,
        V_INT => Value::Int(i128::from_le_bytes(r.array()?)),
        V_FLOAT => Value::Float(f64::from_bits(u64::from_le_bytes(r.array()?))),
        V_DECIMAL => Value::Decimal(string(r)?),
        V_TEXT => Value::Text(string(r)?),
        V_BYTES => {
            let n = r.bounded(u32::MAX as u64, "value too long")? as usize;
            Value::Bytes(r.bytes(n)?.to_vec())
        }
        V_BOOL => match r.u8()? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err(WireError::Invalid("bad bool")),
        },
        V_TIMESTAMP => Value::Timestamp(i128::from_le_bytes(r.array()?)),
        V_TIMESTAMP_NAIVE => Value::TimestampNaive(i128::from_le_bytes(r.array()?)),
        V_DATE => Value::Date(i32::from_le_bytes(r.array()?)),
        V_TIME => Value::Time(i64::from_le_bytes(r.array()?)),
        V_UUID => Value::Uuid(r.array()?),
        V_JSON => Value::Json(string(r)?),
        V_INVALID => Value::Invalid(string(r)?),
        _ => return Err(WireError::Invalid("unknown value tag")),
    })
}

/// Response to a [`RowsRequest`]: the number of rows, then each row as its
/// number of values and the values (key columns first, as scanned).
pub fn encode_rows(rows: &[Vec<Value>]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, rows.len() as u64);
    for row in rows {
        put_varint(&mut out, row.len() as u64);
        for v in row {
            put_value(&mut out, v);
        }
    }
    out
}

/// Decodes rows, each of exactly `width` values.
pub fn decode_rows(bytes: &[u8], width: usize) -> Result<Vec<Vec<Value>>, WireError> {
    let mut r = Reader::new(bytes);
    let n = r.count(1 + width, ROWS_PAGE as u64)?;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let w = r.count(1, MAX_COLUMNS)?;
        if w != width {
            return Err(WireError::Invalid("a row of the wrong width"));
        }
        let mut row = Vec::with_capacity(w);
        for _ in 0..w {
            row.push(get_value(&mut r)?);
        }
        rows.push(row);
    }
    r.finish()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn summary(level: u8, index: u32, key: &[u8], rows: u64, h: u8) -> NodeSummary {
        NodeSummary {
            level,
            index,
            last_key: Key::from_bytes(key),
            rows,
            hash: HashPrefix([h; HASH_PREFIX_LEN]),
        }
    }

    #[test]
    fn children_round_trip() {
        let parent = summary(2, 7, b"zz", 30, 1);
        let kids = vec![
            summary(1, 40, b"abc", 10, 2),
            summary(1, 41, b"abd", 15, 3),
            summary(1, 42, b"zz", 5, 4),
        ];
        let other = summary(2, 9, b"zzz", 3, 9);
        let more = vec![summary(1, 50, b"zzz", 3, 8)];
        let groups = vec![kids.clone(), more];
        let bytes = encode_children(&groups);
        assert_eq!(
            decode_children(&[parent.clone(), other.clone()], &bytes).unwrap(),
            groups
        );
        // The last child's key costs nothing.
        let mut shifted = kids.clone();
        shifted[2].last_key = Key::from_bytes(b"zzzzzzzz");
        assert_eq!(
            encode_children(&[shifted]).len(),
            encode_children(std::slice::from_ref(&kids)).len()
        );
        // Rows that do not add up are refused.
        let mut wrong = parent.clone();
        wrong.rows = 31;
        assert!(decode_children(&[wrong, other], &bytes).is_err());
        assert!(decode_children(&[parent], &bytes).is_err());
    }

    #[test]
    fn requests_round_trip() {
        let r = EntriesRequest {
            tree: 9,
            ranges: vec![
                KeyRange {
                    after: Some(Key::from_bytes(b"a")),
                    through: Key::from_bytes(b"b"),
                },
                KeyRange {
                    after: Some(Key::from_bytes(b"c")),
                    through: Key::from_bytes(b"d"),
                },
            ],
            limit: 5,
        };
        assert_eq!(EntriesRequest::decode(&r.encode()).unwrap(), r);
        let c = ChildrenRequest {
            tree: 1,
            level: 3,
            indexes: vec![3, 300, 70_000],
        };
        assert_eq!(ChildrenRequest::decode(&c.encode()).unwrap(), c);
        let q = RowsRequest {
            tree: 2,
            groups: vec![
                (
                    Some(Key::from_bytes(b"k0")),
                    vec![Key::from_bytes(b"k1"), Key::from_bytes(b"k2")],
                ),
                (Some(Key::from_bytes(b"k2")), vec![Key::from_bytes(b"k3")]),
            ],
        };
        assert_eq!(RowsRequest::decode(&q.encode()).unwrap(), q);
        let root = summary(4, 0, b"last", 99, 5);
        assert_eq!(decode_root(&encode_root(Some(&root))).unwrap(), Some(root));
        assert_eq!(decode_root(&encode_root(None)).unwrap(), None);
    }

    #[test]
    fn rows_round_trip() {
        let rows = vec![vec![
            Value::Int(-5),
            Value::Float(1.5),
            Value::Decimal("1.20".into()),
            Value::Null,
            Value::Uuid([3; 16]),
            Value::Bool(true),
            Value::Bytes(vec![0, 1]),
            Value::Date(-3),
        ]];
        assert_eq!(decode_rows(&encode_rows(&rows), 8).unwrap(), rows);
        assert!(decode_rows(&encode_rows(&rows), 7).is_err());
    }

    #[test]
    fn pages_cover_everything() {
        let entries = |from: u32, n: u32| -> Vec<Entry> {
            (from..from + n)
                .map(|i| Entry {
                    key: Key::from_bytes(&i.to_be_bytes()),
                    hash: HashPrefix::default(),
                })
                .collect()
        };
        let k = |i: u32| Key::from_bytes(&i.to_be_bytes());
        let ranges = vec![
            KeyRange {
                after: None,
                through: k(ENTRIES_PAGE * 2),
            },
            KeyRange {
                after: Some(k(ENTRIES_PAGE * 3)),
                through: k(ENTRIES_PAGE * 4),
            },
        ];
        let per = vec![
            entries(0, ENTRIES_PAGE * 2 + 1),
            entries(ENTRIES_PAGE * 3 + 1, 10),
        ];
        let pages = entry_pages(0, &ranges, &per);
        assert_eq!(pages.len(), 3);
        let total: usize = pages.iter().flat_map(|p| &p.1).map(Vec::len).sum();
        assert_eq!(total, per.iter().map(Vec::len).sum::<usize>());
        assert!(pages[0].2 && pages[1].2 && !pages[2].2);
        // Each page decodes against its own request.
        for (req, page, more) in &pages {
            let back = decode_entries(req, &encode_entries(page, *more)).unwrap();
            assert_eq!(&back.0, page);
        }
        assert_eq!(entry_pages(0, &ranges[..1], &[vec![]]).len(), 1);
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let parent = summary(1, 0, b"\xff\xff", 1000, 0);
            let _ = decode_root(&bytes);
            let _ = decode_children(&[parent.clone(), parent], &bytes);
            let req = EntriesRequest { tree: 0, ranges: vec![KeyRange { after: None, through: Key::from_bytes(b"\x80") }, KeyRange { after: Some(Key::from_bytes(b"\x80")), through: Key::from_bytes(b"\xff") }], limit: 100 };
            let _ = decode_entries(&req, &bytes);
            let _ = decode_rows(&bytes, 3);
            let _ = RootRequest::decode(&bytes);
            let _ = ChildrenRequest::decode(&bytes);
            let _ = EntriesRequest::decode(&bytes);
            let _ = RowsRequest::decode(&bytes);
        }

        #[test]
        fn entries_round_trip(keys in proptest::collection::btree_set(proptest::collection::vec(any::<u8>(), 1..8), 0..50)) {
            let entries: Vec<Entry> = keys.iter().map(|k| Entry { key: Key::from_bytes(k), hash: HashPrefix([k[0]; HASH_PREFIX_LEN]) }).collect();
            let req = EntriesRequest { tree: 0, ranges: vec![KeyRange { after: None, through: Key::from_bytes(&[0xff; 9]) }], limit: 100 };
            let (back, more) = decode_entries(&req, &encode_entries(std::slice::from_ref(&entries), false)).unwrap();
            prop_assert_eq!(back, vec![entries]);
            prop_assert!(!more);
        }
    }
}
