//! Reading a tree file from its bytes, in place: [`TreeReader`] verifies a
//! buffer (the magic, format version, length, checksum and shape, in that
//! order, so a damaged, truncated or foreign file is refused with a message
//! that says which) and then answers nodes and entries with a bounds check
//! and a few loads each. Where the bytes come from (a memory map, a `Vec`)
//! is the caller's choice; no file is opened here.

use std::ops::Range;

use crate::key::Key;
use crate::tree::node::{Entry, HashPrefix, NodeSummary, HASH_PREFIX_LEN};
use crate::tree::side::TreeSide;

use super::meta::{Layout, TreeHeader, TreeMeta};
use super::{
    pad8, CHECKSUM_SIZE, ENTRY_SIZE, FORMAT_VERSION, MAGIC, MAX_HEADER, NODE_SIZE, PREAMBLE,
};

/// Bytes that are not a sound tree file, or a question the file cannot
/// answer. The messages name no file: the caller that knows the path puts it
/// in front.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The bytes do not start with the magic.
    #[error("not a driftsum tree file (no DSUMTREE magic at its start)")]
    NotATreeFile,
    /// A layout version this code does not read.
    #[error(
        "tree file format version {found}, but this driftsum reads version \
         {FORMAT_VERSION}; rebuild it with `driftsum build`"
    )]
    Version {
        /// The version the file declares.
        found: u32,
    },
    /// The length the header promises is not the length of the bytes.
    #[error(
        "the file is {found} bytes but its header promises {expected}: it is \
         truncated or has bytes appended"
    )]
    Length {
        /// Bytes the header promises.
        expected: u64,
        /// Bytes there are.
        found: u64,
    },
    /// The trailing checksum does not match the bytes before it.
    #[error("checksum mismatch: the file is damaged (some byte changed since it was written)")]
    Checksum,
    /// The JSON header does not parse.
    #[error("bad header: {message}")]
    Header {
        /// What the JSON parser said.
        message: String,
    },
    /// A record points outside the file or the levels make no sense.
    #[error("damaged tree: {message}")]
    Corrupt {
        /// What is wrong.
        message: &'static str,
    },
    /// Entries were asked of a file built without them.
    #[error("the tree file holds no leaf entries (build it with --with-entries)")]
    NoEntries,
}

/// A node as read from a file.
#[derive(Clone, Debug)]
struct FileNode<'a> {
    hash: [u8; 32],
    rows: u64,
    children: Range<u32>,
    first_key: &'a [u8],
    last_key: &'a [u8],
}

/// A verified tree file over the bytes `B` holds (a memory map, a `Vec`, a
/// slice).
pub struct TreeReader<B> {
    bytes: B,
    header: TreeHeader,
    /// Index of each level's first record among all node records.
    level_start: Vec<u64>,
    nodes_at: usize,
    entries_at: usize,
    heap: Range<usize>,
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("4 bytes"))
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("8 bytes"))
}

impl<B: AsRef<[u8]>> TreeReader<B> {
    /// Verifies `bytes` as a tree file: magic, format version, length,
    /// checksum and shape.
    pub fn parse(bytes: B) -> Result<TreeReader<B>, FormatError> {
        let map = bytes.as_ref();
        let found = map.len() as u64;
        if map.len() < PREAMBLE || &map[..8] != MAGIC {
            return Err(FormatError::NotATreeFile);
        }
        let version = le_u32(&map[8..12]);
        if version != FORMAT_VERSION {
            return Err(FormatError::Version { found: version });
        }
        let hlen = le_u32(&map[12..16]) as usize;
        if hlen > MAX_HEADER || PREAMBLE + hlen > map.len() {
            return Err(FormatError::Length {
                expected: (PREAMBLE + hlen + CHECKSUM_SIZE) as u64,
                found,
            });
        }
        let header: TreeHeader =
            serde_json::from_slice(&map[PREAMBLE..PREAMBLE + hlen]).map_err(|e| {
                FormatError::Header {
                    message: e.to_string(),
                }
            })?;
        let l = &header.layout;
        let nodes: u64 = l
            .levels
            .iter()
            .try_fold(0u64, |a, &n| a.checked_add(n))
            .ok_or(FormatError::Corrupt {
                message: "node counts overflow",
            })?;
        let nodes_at = PREAMBLE + hlen + pad8(PREAMBLE + hlen);
        let expected = (|| {
            (nodes_at as u64)
                .checked_add(nodes.checked_mul(NODE_SIZE as u64)?)?
                .checked_add(l.entries.unwrap_or(0).checked_mul(ENTRY_SIZE as u64)?)?
                .checked_add(l.heap_bytes)?
                .checked_add(CHECKSUM_SIZE as u64)
        })()
        .unwrap_or(u64::MAX);
        if expected != found {
            return Err(FormatError::Length { expected, found });
        }
        let body = map.len() - CHECKSUM_SIZE;
        if blake3::hash(&map[..body]).as_bytes()[..] != map[body..] {
            return Err(FormatError::Checksum);
        }
        let entries_at = nodes_at + nodes as usize * NODE_SIZE;
        let heap_start = entries_at + l.entries.unwrap_or(0) as usize * ENTRY_SIZE;
        let mut level_start = Vec::with_capacity(l.levels.len());
        let mut at = 0u64;
        for &n in &l.levels {
            level_start.push(at);
            at += n;
        }
        let f = TreeReader {
            bytes,
            level_start,
            nodes_at,
            entries_at,
            heap: heap_start..body,
            header,
        };
        f.check_shape()?;
        Ok(f)
    }

    /// Cheap structural checks the checksum cannot give: a file written by
    /// something else with a valid checksum must still make sense.
    fn check_shape(&self) -> Result<(), FormatError> {
        let l = &self.header.layout;
        let bad = |message| FormatError::Corrupt { message };
        if l.levels.contains(&0) {
            return Err(bad("an empty level"));
        }
        if l.levels.last().is_some_and(|&n| n != 1) {
            return Err(bad("the top level holds more than a root"));
        }
        if l.levels.is_empty() != (l.rows == 0) {
            return Err(bad("row count and levels disagree"));
        }
        if l.levels.len() > 64 || l.levels.iter().any(|&n| n > u32::MAX as u64) {
            return Err(bad("too many nodes"));
        }
        if l.entries.is_some_and(|e| e != l.rows) {
            return Err(bad("entry count and row count disagree"));
        }
        Ok(())
    }

    /// What the tree was built from and how.
    pub fn meta(&self) -> &TreeMeta {
        &self.header.meta
    }

    /// The counts that place the file's sections.
    pub fn layout(&self) -> &Layout {
        &self.header.layout
    }

    /// Whether the file holds leaf entries (built with `--with-entries`).
    pub fn has_entries(&self) -> bool {
        self.header.layout.entries.is_some()
    }

    fn corrupt(&self, message: &'static str) -> FormatError {
        FormatError::Corrupt { message }
    }

    fn heap_slice(&self, off: u64, len: u32) -> Result<&[u8], FormatError> {
        let start = self
            .heap
            .start
            .checked_add(off as usize)
            .ok_or_else(|| self.corrupt("key offset out of range"))?;
        let end = start
            .checked_add(len as usize)
            .filter(|&e| e <= self.heap.end)
            .ok_or_else(|| self.corrupt("key offset out of range"))?;
        Ok(&self.bytes.as_ref()[start..end])
    }

    fn node(&self, level: u8, index: u32) -> Result<FileNode<'_>, FormatError> {
        let level = level as usize;
        let count = *self
            .header
            .layout
            .levels
            .get(level)
            .ok_or_else(|| self.corrupt("no such level"))?;
        if index as u64 >= count {
            return Err(self.corrupt("no such node"));
        }
        let at = self.nodes_at + (self.level_start[level] + index as u64) as usize * NODE_SIZE;
        let r = &self.bytes.as_ref()[at..at + NODE_SIZE];
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&r[..32]);
        Ok(FileNode {
            hash,
            rows: le_u64(&r[32..40]),
            children: le_u32(&r[40..44])..le_u32(&r[44..48]),
            first_key: self.heap_slice(le_u64(&r[48..56]), le_u32(&r[56..60]))?,
            last_key: self.heap_slice(le_u64(&r[60..68]), le_u32(&r[68..72]))?,
        })
    }

    fn summary(&self, level: u8, index: u32) -> Result<NodeSummary, FormatError> {
        let n = self.node(level, index)?;
        let mut hash = [0u8; HASH_PREFIX_LEN];
        hash.copy_from_slice(&n.hash[..HASH_PREFIX_LEN]);
        Ok(NodeSummary {
            level,
            index,
            last_key: Key::from_bytes(n.last_key),
            rows: n.rows,
            hash: HashPrefix(hash),
        })
    }

    fn entry(&self, i: u64) -> Result<Entry, FormatError> {
        let n = self.header.layout.entries.unwrap_or(0);
        if i >= n {
            return Err(self.corrupt("no such entry"));
        }
        let at = self.entries_at + i as usize * ENTRY_SIZE;
        let r = &self.bytes.as_ref()[at..at + ENTRY_SIZE];
        let mut hash = [0u8; HASH_PREFIX_LEN];
        hash.copy_from_slice(&r[12..]);
        Ok(Entry {
            key: Key::from_bytes(self.heap_slice(le_u64(&r[..8]), le_u32(&r[8..12]))?),
            hash: HashPrefix(hash),
        })
    }

    /// The first `limit` entries with keys in `(after, through]`, and whether
    /// more follow.
    pub fn entries(
        &self,
        after: Option<&Key>,
        through: &Key,
        limit: u32,
    ) -> Result<(Vec<Entry>, bool), FormatError> {
        let Some(n) = self.header.layout.entries else {
            return Err(FormatError::NoEntries);
        };
        // First entry with key > after.
        let (mut lo, mut hi) = (0u64, n);
        if let Some(a) = after {
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.entry(mid)?.key <= *a {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
        }
        let mut out = Vec::new();
        let mut i = lo;
        while i < n {
            let e = self.entry(i)?;
            if e.key > *through {
                break;
            }
            if out.len() == limit as usize {
                return Ok((out, true));
            }
            out.push(e);
            i += 1;
        }
        Ok((out, false))
    }

    /// The first key of the leaf holding the first key after `after`, when
    /// that leaf starts after `after`: the best a file without entries can
    /// say about where a range starts.
    pub fn first_key_after(&self, after: Option<&Key>) -> Result<Option<Key>, FormatError> {
        let Some(&leaves) = self.header.layout.levels.first() else {
            return Ok(None);
        };
        let (mut lo, mut hi) = (0u64, leaves);
        if let Some(a) = after {
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.node(0, mid as u32)?.last_key <= a.as_bytes() {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
        }
        if lo == leaves {
            return Ok(None);
        }
        let first = Key::from_bytes(self.node(0, lo as u32)?.first_key);
        Ok((after.is_none_or(|a| first > *a)).then_some(first))
    }
}

impl<B: AsRef<[u8]>> TreeSide for &TreeReader<B> {
    type Error = FormatError;

    fn root(&mut self) -> Result<Option<NodeSummary>, FormatError> {
        match self.header.layout.levels.len() {
            0 => Ok(None),
            n => self.summary((n - 1) as u8, 0).map(Some),
        }
    }

    fn children(&mut self, nodes: &[NodeSummary]) -> Result<Vec<Vec<NodeSummary>>, FormatError> {
        nodes.iter().map(|n| self.children_of(n)).collect()
    }
}

impl<B: AsRef<[u8]>> TreeReader<B> {
    fn children_of(&self, node: &NodeSummary) -> Result<Vec<NodeSummary>, FormatError> {
        if node.level == 0 {
            return Err(self.corrupt("a leaf has no children"));
        }
        let n = self.node(node.level, node.index)?;
        let below = self.header.layout.levels[node.level as usize - 1];
        if n.children.start >= n.children.end || n.children.end as u64 > below {
            return Err(self.corrupt("a node's children are out of range"));
        }
        n.children
            .map(|i| self.summary(node.level - 1, i))
            .collect()
    }
}
