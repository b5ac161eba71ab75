//! A tree node: the key range it covers, how many rows lie under it, and the
//! hash of its content. Leaves cover rows; inner nodes cover a run of
//! children on the level below.

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
    pub hash: Hash,
    /// For inner nodes, the indexes of their children on the level below;
    /// empty for leaves.
    pub children: Range<u32>,
}

/// What one side tells the other about a node during a walk: everything the
/// comparer needs, and an id to ask for the node's children by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSummary {
    pub level: u8,
    /// Position of the node within its level.
    pub index: u32,
    pub first_key: Key,
    pub last_key: Key,
    pub rows: u64,
    pub hash: Hash,
}

impl NodeSummary {
    pub fn is_leaf(&self) -> bool {
        self.level == 0
    }

    /// Bytes this summary takes on the wire (level, index, two length-prefixed
    /// keys, row count, hash): what a remote walk would exchange for it.
    pub fn wire_size(&self) -> u64 {
        (1 + 4 + 4 + self.first_key.as_bytes().len() + 4 + self.last_key.as_bytes().len() + 8 + 32)
            as u64
    }
}
