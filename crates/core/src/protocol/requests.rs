//! What a client asks a side: the root, the children of nodes, the leaf
//! entries of key ranges, and rows by key. Each request encodes itself and
//! decodes (checking) what a client sent.

use crate::key::{Key, KeyRange};
use crate::varint;

use super::cursor::{get_keys, key_after_len, put_key, put_keys, Reader};
use super::{TreeId, WireError, CHILDREN_BATCH, RANGES_BATCH, ROWS_PAGE};

/// Request: the root of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootRequest {
    /// The tree asked about.
    pub tree: TreeId,
}

impl RootRequest {
    /// The request's bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.tree.to_le_bytes().to_vec()
    }

    /// Decodes and checks a request.
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
    /// The tree asked about.
    pub tree: TreeId,
    /// The level of the nodes whose children are asked for.
    pub level: u8,
    /// The indexes of those nodes on their level, ascending.
    pub indexes: Vec<u32>,
}

impl ChildrenRequest {
    /// The tree id, the level, the count, then each index as its distance
    /// from the one before.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.tree.to_le_bytes().to_vec();
        out.push(self.level);
        varint::put(&mut out, self.indexes.len() as u64);
        let mut prev = 0u64;
        for &i in &self.indexes {
            varint::put(&mut out, i as u64 - prev);
            prev = i as u64;
        }
        out
    }

    /// Decodes and checks a request.
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
    /// The tree asked about.
    pub tree: TreeId,
    /// The key ranges, ascending and disjoint.
    pub ranges: Vec<KeyRange>,
    /// The most entries to answer with, in all.
    pub limit: u32,
}

impl EntriesRequest {
    /// The request's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.tree.to_le_bytes().to_vec();
        varint::put(&mut out, self.ranges.len() as u64);
        for r in &self.ranges {
            put_range(&mut out, r);
        }
        varint::put(&mut out, self.limit as u64);
        out
    }

    /// Decodes and checks a request.
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
    /// The tree whose side's rows are asked for.
    pub tree: TreeId,
    /// The keys asked for, grouped by the range (its exclusive lower bound) they lie in.
    pub groups: Vec<(Option<Key>, Vec<Key>)>,
}

impl RowsRequest {
    /// The request's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.tree.to_le_bytes().to_vec();
        varint::put(&mut out, self.groups.len() as u64);
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

    /// The length of [`encode`](RowsRequest::encode), without building it.
    pub fn encoded_len(&self) -> usize {
        let mut len = self.tree.to_le_bytes().len() + varint::len(self.groups.len() as u64);
        for (after, keys) in &self.groups {
            len += 1 + after.as_ref().map_or(0, |k| {
                varint::len(k.as_bytes().len() as u64) + k.as_bytes().len()
            });
            len += varint::len(keys.len() as u64);
            let mut prev: &[u8] = &[];
            for k in keys {
                len += key_after_len(prev, k.as_bytes());
                prev = k.as_bytes();
            }
        }
        len
    }

    /// Decodes and checks a request.
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
