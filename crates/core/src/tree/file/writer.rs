//! Writing a tree (and optionally its leaf entries) in the tree-file layout
//! (see [`super`]) to any [`Write`]. Where the bytes go, and how a file is
//! replaced atomically, is the tool's business, not this module's.

use std::io::{self, Write};

use crate::hash::Hash;
use crate::tree::node::HASH_PREFIX_LEN;
use crate::tree::Tree;

use super::meta::{Layout, TreeHeader, TreeMeta};
use super::{pad8, FORMAT_VERSION, MAGIC, NODE_SIZE, PREAMBLE};

/// Leaf entries collected during a scan, in key order, laid out as they will
/// be written: about 45 bytes a row in memory.
#[derive(Default)]
pub struct EntryLog {
    records: Vec<u8>,
    heap: Vec<u8>,
    count: u64,
}

impl EntryLog {
    /// An empty log.
    pub fn new() -> EntryLog {
        EntryLog::default()
    }

    /// Adds a row's entry; rows must come in key order (as the builder
    /// checks).
    pub fn push(&mut self, key: &[u8], row_hash: &Hash) {
        self.records
            .extend_from_slice(&(self.heap.len() as u64).to_le_bytes());
        self.records
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.records
            .extend_from_slice(&row_hash.0[..HASH_PREFIX_LEN]);
        self.heap.extend_from_slice(key);
        self.count += 1;
    }

    /// Entries logged.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no entry was logged.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// A writer that hashes what it writes.
struct Hashing<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `tree` (and `entries`, when given) in the tree-file layout to
/// `out`, checksum last, and returns `out` (flushed) so the caller can sync
/// and place it. A partial write leaves partial bytes: write to a temporary
/// file and rename it into place, as the tool does.
pub fn write<W: Write>(
    out: W,
    meta: &TreeMeta,
    tree: &Tree,
    entries: Option<&EntryLog>,
) -> io::Result<W> {
    let entry_heap = entries.map_or(0, |e| e.heap.len());
    let node_heap: usize = tree
        .levels
        .iter()
        .flatten()
        .map(|n| n.first_key.as_bytes().len() + n.last_key.as_bytes().len())
        .sum();
    let header = TreeHeader {
        meta: meta.clone(),
        layout: Layout {
            rows: tree.rows,
            levels: tree.levels.iter().map(|l| l.len() as u64).collect(),
            entries: entries.map(EntryLog::len),
            heap_bytes: (entry_heap + node_heap) as u64,
        },
    };
    let json = serde_json::to_vec(&header)?;
    let mut w = Hashing {
        inner: out,
        hasher: blake3::Hasher::new(),
    };
    w.write_all(MAGIC)?;
    w.write_all(&FORMAT_VERSION.to_le_bytes())?;
    w.write_all(&(json.len() as u32).to_le_bytes())?;
    w.write_all(&json)?;
    w.write_all(&[0u8; 8][..pad8(PREAMBLE + json.len())])?;
    // Node keys go after the entry keys in the heap.
    let mut heap_at = entry_heap as u64;
    let mut rec = [0u8; NODE_SIZE];
    for n in tree.levels.iter().flatten() {
        let (first, last) = (n.first_key.as_bytes(), n.last_key.as_bytes());
        rec[0..32].copy_from_slice(&n.hash.0);
        rec[32..40].copy_from_slice(&n.rows.to_le_bytes());
        rec[40..44].copy_from_slice(&n.children.start.to_le_bytes());
        rec[44..48].copy_from_slice(&n.children.end.to_le_bytes());
        rec[48..56].copy_from_slice(&heap_at.to_le_bytes());
        rec[56..60].copy_from_slice(&(first.len() as u32).to_le_bytes());
        heap_at += first.len() as u64;
        rec[60..68].copy_from_slice(&heap_at.to_le_bytes());
        rec[68..72].copy_from_slice(&(last.len() as u32).to_le_bytes());
        heap_at += last.len() as u64;
        w.write_all(&rec)?;
    }
    if let Some(e) = entries {
        w.write_all(&e.records)?;
        w.write_all(&e.heap)?;
    }
    for n in tree.levels.iter().flatten() {
        w.write_all(n.first_key.as_bytes())?;
        w.write_all(n.last_key.as_bytes())?;
    }
    let sum = *w.hasher.finalize().as_bytes();
    let mut out = w.inner;
    out.write_all(&sum)?;
    out.flush()?;
    Ok(out)
}
