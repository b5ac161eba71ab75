//! A tree node: the key range it covers, how many rows lie under it, and the
//! hash of its content. Leaves cover rows; inner nodes cover a run of
//! children on the level below. Also the [`NodeSummary`] a side tells the
//! comparer about a node, and the [`HashPrefix`] it carries instead of the
//! full hash.

use std::ops::Range;

use crate::hash::Hash;
use crate::key::Key;

/// One node of a [`super::Tree`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Smallest key under this node.
    pub first_key: Key,
    /// Largest key under this node; nodes are aligned across trees by it.
    pub last_key: Key,
    /// Rows under this node.
    pub rows: u64,
    /// The node's hash (leaf or node domain).
    pub hash: Hash,
    /// For inner nodes, the indexes of their children on the level below;
    /// empty for leaves.
    pub children: Range<u32>,
}

/// Bytes of a node or row hash that the sides exchange.
///
/// The walk calls two nodes equal when their last keys, row counts and the
/// first 16 bytes of their BLAKE3 hashes agree. For data nobody crafted, two
/// different subtrees pass for equal with probability 2^-128 per comparison
/// (about 10^-38; a walk compares at most a few million pairs). Crafting a
/// collision takes about 2^64 BLAKE3 evaluations *and* control of the rows on
/// both sides. Full 32-byte hashes would double the walk's bytes for no
/// practical gain. (Leaves hash the same prefixes of their rows' hashes.)
pub use crate::hash::HASH_PREFIX_LEN;

/// The first [`HASH_PREFIX_LEN`] bytes of a node or row hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct HashPrefix(pub [u8; HASH_PREFIX_LEN]);

impl From<&Hash> for HashPrefix {
    fn from(h: &Hash) -> HashPrefix {
        let mut p = [0u8; HASH_PREFIX_LEN];
        p.copy_from_slice(&h.0[..HASH_PREFIX_LEN]);
        HashPrefix(p)
    }
}

/// What one side tells the comparer about a node during a walk: everything
/// the walk needs to align and compare it, and an id (level, index) to ask
/// for its children by. The first key is left out: the walk never needs it,
/// and it would cost a key per node on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSummary {
    /// The node's level (0 for leaves).
    pub level: u8,
    /// Position of the node within its level.
    pub index: u32,
    /// Largest key under the node.
    pub last_key: Key,
    /// Rows under the node.
    pub rows: u64,
    /// The prefix of the node's hash.
    pub hash: HashPrefix,
}

impl NodeSummary {
    /// Whether the node is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.level == 0
    }

    /// The summary of `node`, found at `index` on `level`.
    pub fn of(node: &Node, level: u8, index: u32) -> NodeSummary {
        NodeSummary {
            level,
            index,
            last_key: node.last_key.clone(),
            rows: node.rows,
            hash: HashPrefix::from(&node.hash),
        }
    }
}

/// One leaf entry as the sides exchange it: a row's key and the prefix of
/// its row hash (see [`HASH_PREFIX_LEN`] for why a prefix is enough).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The row's key.
    pub key: Key,
    /// The prefix of the row's hash.
    pub hash: HashPrefix,
}
