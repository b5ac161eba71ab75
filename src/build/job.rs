//! What a tree build is asked to do: which rows, hashed how, on how many
//! threads, reporting progress to whom. Shared by `scan_tree` and the first
//! passes, so neither imports the other's file.

use driftsum_core::canon::CanonOptions;
use driftsum_core::row::RowHasher;
use driftsum_core::{Key, Shape, Side};

use crate::source::{ScanSpec, SourceError};

/// Progress callback: rows scanned so far on a side.
pub type Progress<'a> = &'a (dyn Fn(Side, u64) + Sync);

/// A hasher of `spec`'s scanned rows, as the tree builder hashes them.
pub fn row_hasher(spec: &ScanSpec, opts: &CanonOptions) -> RowHasher {
    RowHasher::new(spec.key.len(), spec.width(), opts)
}

/// How a scan spreads its work over threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// Read, canonicalize and hash on one thread: right when another scan
    /// already keeps the other core busy (a diff of two local databases).
    One,
    /// Read and canonicalize on one thread, hash and build on a second, fed
    /// batches of canonical row bytes.
    ReadAndHash,
    /// Key ranges scanned at once over this many connections to one
    /// snapshot, when the source can open them and cut its key (see
    /// [`Source::fork`]); otherwise as [`Threads::ReadAndHash`].
    KeyRanges(usize),
    /// Key ranges over one connection per core (three or four) where
    /// connections are cheap ([`Source::cheap_forks`]: SQLite) and there are
    /// more than two cores, otherwise [`Threads::ReadAndHash`]. On two cores
    /// reading and hashing already fill both, and SQLite's key ranges
    /// measured slower than that; a server's extra connections are
    /// extra server processes, and with the server on the same cores (as on
    /// the development machine) two measured slower than one.
    Auto,
}

impl Threads {
    /// Connections for key ranges: one per core, two to four.
    pub fn per_core() -> usize {
        Threads::cores().clamp(2, 4)
    }

    /// Whether a build with these threads reads the whole table through
    /// one connection: all but key ranges, which [`Threads::Auto`] takes
    /// only where forks are cheap and there are more than two cores.
    pub(super) fn one_connection(self, cheap_forks: bool) -> bool {
        match self {
            Threads::One | Threads::ReadAndHash => true,
            Threads::Auto => !cheap_forks || Threads::cores() <= 2,
            Threads::KeyRanges(_) => false,
        }
    }

    pub(super) fn cores() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

/// One tree to build: what to read and how to hash it.
#[derive(Clone, Copy, Debug)]
pub struct TreeScan<'a> {
    pub spec: &'a ScanSpec,
    pub opts: &'a CanonOptions,
    pub shape: Shape,
    pub side: Side,
    pub threads: Threads,
}

/// The error for a key that occurs twice in `spec`'s table.
pub(super) fn duplicate(spec: &ScanSpec, k: &Key) -> SourceError {
    SourceError::Other(format!(
        "table {:?}: key {k:?} occurs more than once, so ({}) is not a key; name a unique key with --key",
        spec.table,
        spec.key.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
    ))
}
