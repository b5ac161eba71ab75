//! The tree file: one table's tree (and optionally its leaf entries) in a
//! fixed-width, little-endian layout that is memory-mapped and read in place.
//!
//! ```text
//! offset  size        content
//! 0       8           magic "DSUMTREE"
//! 8       4           format version (u32)
//! 12      4           header length H (u32)
//! 16      H           header: JSON TreeHeader (what was hashed, and the
//!                     counts below)
//! …       0–7         zero padding to a multiple of 8
//! N       72 × nodes  node records, leaves first, level by level:
//!                     hash[32] rows:u64 child_start:u32 child_end:u32
//!                     first_key_off:u64 first_key_len:u32
//!                     last_key_off:u64 last_key_len:u32
//! E       28 × rows   entry records (only with entries), in key order:
//!                     key_off:u64 key_len:u32 row_hash_prefix[16]
//! K       heap_bytes  key bytes referred to by the records above
//! end-32  32          BLAKE3 of every byte before it
//! ```
//!
//! Fixed-width records make a node or an entry a bounds check and a few
//! loads away, with nothing decoded up front: opening a file costs one pass
//! to verify the checksum and no allocation per node. Opening checks, in
//! order, the magic, the format version, the length the header promises and
//! the checksum, so a damaged, truncated or foreign file is refused with a
//! message that says which. Every offset read later is still bounds-checked:
//! a file is input, and a bad one must give an error, never a panic.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::canon::CanonOptions;
use crate::diff::TreeSide;
use crate::hash::Hash;
use crate::key::Key;
use crate::value::LogicalType;

use super::chunker::Shape;
use super::node::{Entry, HashPrefix, NodeSummary, HASH_PREFIX_LEN};
use super::Tree;

pub const MAGIC: &[u8; 8] = b"DSUMTREE";
/// The layout version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const NODE_SIZE: usize = 72;
const ENTRY_SIZE: usize = 12 + HASH_PREFIX_LEN;
const CHECKSUM_SIZE: usize = 32;
const PREAMBLE: usize = 16;
/// Headers are small JSON; a larger one is not a tree file of ours.
const MAX_HEADER: usize = 16 * 1024 * 1024;

/// A column as a tree was built over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMeta {
    pub name: String,
    #[serde(rename = "logical_type")]
    pub ty: LogicalType,
}

/// What a tree was built from and how: everything two trees must share to be
/// comparable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeMeta {
    pub encoding_version: u32,
    pub canon: CanonOptions,
    pub shape: Shape,
    pub table: String,
    pub key_columns: Vec<ColumnMeta>,
    /// The compared value columns, in scan order.
    pub columns: Vec<ColumnMeta>,
    /// The `--where` condition the rows were selected by.
    pub filter: Option<String>,
    /// The database it was read from, for messages (never with credentials).
    pub built_from: String,
}

/// Why two trees cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(pub String);

fn names(cols: &[ColumnMeta]) -> String {
    cols.iter()
        .map(|c| format!("{} {}", c.name, c.ty))
        .collect::<Vec<_>>()
        .join(", ")
}

impl TreeMeta {
    /// Whether a tree described by `self` (called `mine`) can be compared
    /// with one described by `other` (`theirs`): same encoding version,
    /// canonical options, shape, key and value columns (names and types) and
    /// row filter. The table names may differ.
    pub fn comparable(&self, other: &TreeMeta, mine: &str, theirs: &str) -> Result<(), Mismatch> {
        let why = |what: &str, a: String, b: String| {
            Err(Mismatch(format!(
                "{mine} and {theirs} were built with different {what} ({a} vs {b}); \
                 trees compare only when built the same way"
            )))
        };
        if self.encoding_version != other.encoding_version {
            return why(
                "canonical encoding versions",
                self.encoding_version.to_string(),
                other.encoding_version.to_string(),
            );
        }
        if self.canon != other.canon {
            let d = |c: &CanonOptions| match c.float_digits {
                Some(n) => format!("--float-digits {n}"),
                None => "exact floats".into(),
            };
            return why("float options", d(&self.canon), d(&other.canon));
        }
        if self.shape != other.shape {
            let d = |s: &Shape| format!("--leaf-target {} --fanout {}", s.leaf_target, s.fanout);
            return why("tree shapes", d(&self.shape), d(&other.shape));
        }
        if self.key_columns != other.key_columns {
            return why(
                "key columns",
                names(&self.key_columns),
                names(&other.key_columns),
            );
        }
        if self.columns != other.columns {
            return why("columns", names(&self.columns), names(&other.columns));
        }
        if self.filter != other.filter {
            let d = |f: &Option<String>| f.clone().unwrap_or_else(|| "no --where".into());
            return why("row filters", d(&self.filter), d(&other.filter));
        }
        Ok(())
    }
}

/// The counts that place the sections of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub rows: u64,
    /// Nodes per level, leaves first.
    pub levels: Vec<u64>,
    /// Leaf entries stored (one per row), or `None` without entries.
    pub entries: Option<u64>,
    pub heap_bytes: u64,
}

/// The JSON header of a tree file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHeader {
    pub meta: TreeMeta,
    pub layout: Layout,
}

/// A tree file that cannot be written, read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}: not a driftsum tree file (no DSUMTREE magic at its start)")]
    NotATreeFile(PathBuf),
    #[error(
        "{path}: tree file format version {found}, but this driftsum reads version \
         {FORMAT_VERSION}; rebuild it with `driftsum build`"
    )]
    Version { path: PathBuf, found: u32 },
    #[error(
        "{path}: the file is {found} bytes but its header promises {expected}: it is \
         truncated or has bytes appended"
    )]
    Length {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error(
        "{0}: checksum mismatch: the file is damaged (some byte changed since it was written)"
    )]
    Checksum(PathBuf),
    #[error("{path}: bad header: {message}")]
    Header { path: PathBuf, message: String },
    #[error("{path}: damaged tree: {message}")]
    Corrupt {
        path: PathBuf,
        message: &'static str,
    },
    #[error("{0}: the tree file holds no leaf entries (build it with --with-entries)")]
    NoEntries(PathBuf),
}

/// Leaf entries collected during a scan, in key order, laid out as they will
/// be written: about 45 bytes a row in memory.
#[derive(Default)]
pub struct EntryLog {
    records: Vec<u8>,
    heap: Vec<u8>,
    count: u64,
}

impl EntryLog {
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

    pub fn len(&self) -> u64 {
        self.count
    }

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

fn pad8(n: usize) -> usize {
    (8 - n % 8) % 8
}

/// Writes `tree` (and `entries`, when given) to `path`, through a temporary
/// file beside it (see [`temporary_beside`]) renamed into place, so a file
/// being read is never changed under its reader's memory map, an interrupted
/// write leaves the old file whole, and whatever is at `path` (a file or a
/// symbolic link) is replaced, never written into.
pub fn write(
    path: &Path,
    meta: &TreeMeta,
    tree: &Tree,
    entries: Option<&EntryLog>,
) -> Result<(), FileError> {
    let io_err = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
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
    let json = serde_json::to_vec(&header).map_err(|e| FileError::Header {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let tmp = temporary_beside(path).map_err(io_err)?;
    let mut w = Hashing {
        inner: BufWriter::with_capacity(1 << 20, tmp.as_file()),
        hasher: blake3::Hasher::new(),
    };
    let mut body = || -> io::Result<()> {
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
        w.inner.write_all(&sum)?;
        w.inner.flush()?;
        w.inner.get_ref().sync_all()
    };
    // On any error the temporary file is dropped, which deletes it.
    body().map_err(io_err)?;
    drop(w);
    // rename(2) replaces the directory entry at `path`, whatever it is: a
    // link planted there is replaced, never written through.
    tmp.persist(path).map(drop).map_err(|e| io_err(e.error))
}

/// A new, empty file in `path`'s directory, created exclusively (`O_EXCL`:
/// an existing file or symbolic link of the same name is never opened) under
/// a random name, so no one can plant a link where it will be written. It is
/// deleted when dropped unless persisted. Permissions are those of a file
/// created normally (0666 less the umask), not tempfile's private 0600: a
/// tree file is meant to be copied and shared like any output.
pub fn temporary_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "driftsum".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.");
    let mut b = tempfile::Builder::new();
    b.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(fs::Permissions::from_mode(0o666));
    }
    b.tempfile_in(dir)
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

/// An opened, verified tree file.
pub struct TreeFile {
    path: PathBuf,
    map: memmap2::Mmap,
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

impl TreeFile {
    /// Opens and verifies a tree file: magic, format version, length and
    /// checksum.
    pub fn open(path: &Path) -> Result<TreeFile, FileError> {
        let p = || path.to_path_buf();
        let file = fs::File::open(path).map_err(|source| FileError::Io { path: p(), source })?;
        // SAFETY: the map is only read. A tree file is replaced by rename,
        // never rewritten in place, by driftsum; another program truncating
        // it while it is open could fault the reader, as with any mapped file.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|source| FileError::Io { path: p(), source })?;
        let found = map.len() as u64;
        if map.len() < PREAMBLE || &map[..8] != MAGIC {
            return Err(FileError::NotATreeFile(p()));
        }
        let version = le_u32(&map[8..12]);
        if version != FORMAT_VERSION {
            return Err(FileError::Version {
                path: p(),
                found: version,
            });
        }
        let hlen = le_u32(&map[12..16]) as usize;
        if hlen > MAX_HEADER || PREAMBLE + hlen > map.len() {
            return Err(FileError::Length {
                path: p(),
                expected: (PREAMBLE + hlen + CHECKSUM_SIZE) as u64,
                found,
            });
        }
        let header: TreeHeader =
            serde_json::from_slice(&map[PREAMBLE..PREAMBLE + hlen]).map_err(|e| {
                FileError::Header {
                    path: p(),
                    message: e.to_string(),
                }
            })?;
        let l = &header.layout;
        let nodes: u64 = l
            .levels
            .iter()
            .try_fold(0u64, |a, &n| a.checked_add(n))
            .ok_or(FileError::Corrupt {
                path: p(),
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
            return Err(FileError::Length {
                path: p(),
                expected,
                found,
            });
        }
        let body = map.len() - CHECKSUM_SIZE;
        if blake3::hash(&map[..body]).as_bytes()[..] != map[body..] {
            return Err(FileError::Checksum(p()));
        }
        let entries_at = nodes_at + nodes as usize * NODE_SIZE;
        let heap_start = entries_at + l.entries.unwrap_or(0) as usize * ENTRY_SIZE;
        let mut level_start = Vec::with_capacity(l.levels.len());
        let mut at = 0u64;
        for &n in &l.levels {
            level_start.push(at);
            at += n;
        }
        let f = TreeFile {
            path: p(),
            map,
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
    fn check_shape(&self) -> Result<(), FileError> {
        let l = &self.header.layout;
        let bad = |message| FileError::Corrupt {
            path: self.path.clone(),
            message,
        };
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

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> &TreeMeta {
        &self.header.meta
    }

    pub fn layout(&self) -> &Layout {
        &self.header.layout
    }

    pub fn has_entries(&self) -> bool {
        self.header.layout.entries.is_some()
    }

    fn corrupt(&self, message: &'static str) -> FileError {
        FileError::Corrupt {
            path: self.path.clone(),
            message,
        }
    }

    fn heap_slice(&self, off: u64, len: u32) -> Result<&[u8], FileError> {
        let start = self
            .heap
            .start
            .checked_add(off as usize)
            .ok_or_else(|| self.corrupt("key offset out of range"))?;
        let end = start
            .checked_add(len as usize)
            .filter(|&e| e <= self.heap.end)
            .ok_or_else(|| self.corrupt("key offset out of range"))?;
        Ok(&self.map[start..end])
    }

    fn node(&self, level: u8, index: u32) -> Result<FileNode<'_>, FileError> {
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
        let r = &self.map[at..at + NODE_SIZE];
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

    fn summary(&self, level: u8, index: u32) -> Result<NodeSummary, FileError> {
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

    fn entry(&self, i: u64) -> Result<Entry, FileError> {
        let n = self.header.layout.entries.unwrap_or(0);
        if i >= n {
            return Err(self.corrupt("no such entry"));
        }
        let at = self.entries_at + i as usize * ENTRY_SIZE;
        let r = &self.map[at..at + ENTRY_SIZE];
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
    ) -> Result<(Vec<Entry>, bool), FileError> {
        let Some(n) = self.header.layout.entries else {
            return Err(FileError::NoEntries(self.path.clone()));
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
    pub fn first_key_after(&self, after: Option<&Key>) -> Result<Option<Key>, FileError> {
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

impl TreeSide for &TreeFile {
    type Error = FileError;

    fn root(&mut self) -> Result<Option<NodeSummary>, FileError> {
        match self.header.layout.levels.len() {
            0 => Ok(None),
            n => self.summary((n - 1) as u8, 0).map(Some),
        }
    }

    fn children(&mut self, nodes: &[NodeSummary]) -> Result<Vec<Vec<NodeSummary>>, FileError> {
        nodes.iter().map(|n| self.children_of(n)).collect()
    }
}

impl TreeFile {
    fn children_of(&self, node: &NodeSummary) -> Result<Vec<NodeSummary>, FileError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::Walk;
    use crate::hash::row_hash;
    use crate::tree::Builder;

    fn meta() -> TreeMeta {
        TreeMeta {
            encoding_version: crate::ENCODING_VERSION,
            canon: CanonOptions::default(),
            shape: Shape::default(),
            table: "t".into(),
            key_columns: vec![ColumnMeta {
                name: "id".into(),
                ty: LogicalType::Integer,
            }],
            columns: vec![],
            filter: None,
            built_from: "test".into(),
        }
    }

    fn build(n: u64, changed: u64) -> (Tree, EntryLog) {
        let mut b = Builder::new(Shape::default());
        let mut log = EntryLog::new();
        for k in 0..n {
            let key = k.to_be_bytes();
            let v: &[u8] = if k == changed { b"x" } else { b"v" };
            let h = row_hash(v);
            b.push(&key, &h).unwrap();
            log.push(&key, &h);
        }
        (b.finish(), log)
    }

    #[test]
    fn round_trip_and_walk() {
        let dir = std::env::temp_dir().join(format!("dsum-file-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (ta, la) = build(20_000, u64::MAX);
        let (tb, _) = build(20_000, 777);
        let (pa, pb) = (dir.join("a.tree"), dir.join("b.tree"));
        write(&pa, &meta(), &ta, Some(&la)).unwrap();
        write(&pb, &meta(), &tb, None).unwrap();
        let (fa, fb) = (TreeFile::open(&pa).unwrap(), TreeFile::open(&pb).unwrap());
        assert_eq!(fa.layout().rows, 20_000);
        // Walking the files finds what walking the trees finds, at the same cost.
        let mut mem = Walk::new(&ta, &tb);
        let expect: Vec<_> = mem.by_ref().map(|r| r.unwrap()).collect();
        let mut files = Walk::new(&fa, &fb);
        let got: Vec<_> = files.by_ref().map(|r| r.unwrap()).collect();
        assert_eq!(got, expect);
        assert_eq!(files.stats(), mem.stats());
        assert_eq!(got.len(), 1);
        let (e, more) = fa
            .entries(got[0].after.as_ref(), &got[0].through, 1 << 20)
            .unwrap();
        assert!(!more);
        assert_eq!(e.len() as u64, got[0].source_rows);
        assert!(matches!(
            fb.entries(None, &got[0].through, 5),
            Err(FileError::NoEntries(_))
        ));
        assert!(fa.first_key_after(got[0].after.as_ref()).unwrap().is_some());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A link planted where the old code put its temporary file, or at the
    /// target itself, is never written through; no temporary file is left.
    #[cfg(unix)]
    #[test]
    fn links_are_replaced_never_followed() {
        let dir = std::env::temp_dir().join(format!("dsum-file-links-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim.db");
        fs::write(&victim, b"precious").unwrap();
        let out = dir.join("out.dstree");
        let mut planted = out.as_os_str().to_owned();
        planted.push(".tmp");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let (t, _) = build(500, u64::MAX);
        write(&out, &meta(), &t, None).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(TreeFile::open(&out).unwrap().layout().rows, 500);
        // The target a link: the link is replaced by the file.
        let linked = dir.join("linked.dstree");
        std::os::unix::fs::symlink(&victim, &linked).unwrap();
        write(&linked, &meta(), &t, None).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&linked).unwrap().is_file());
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["linked.dstree", "out.dstree", "out.dstree.tmp", "victim.db"]
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
