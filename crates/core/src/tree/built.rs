//! A whole tree in memory ([`Tree`]): its levels of nodes, the root, the
//! children of a node, and the tree as a [`TreeSide`] for a walk. Building
//! one is in [`builder`](super::builder).

use super::node::{Node, NodeSummary};
use super::shape::Shape;
use super::side::TreeSide;
use crate::hash::Hash;

/// A whole tree in memory: about `rows / leaf_target` nodes, never the rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    /// The shape the tree was built with.
    pub shape: Shape,
    /// `levels[0]` are the leaves; the last level holds only the root.
    /// Empty for an empty table.
    pub levels: Vec<Vec<Node>>,
    /// Rows under the root.
    pub rows: u64,
}

impl Tree {
    /// The root, or `None` for an empty tree.
    pub fn root(&self) -> Option<&Node> {
        self.levels.last().and_then(|l| l.first())
    }

    /// The root's hash, or `None` for an empty tree.
    pub fn root_hash(&self) -> Option<Hash> {
        self.root().map(|n| n.hash)
    }

    /// Total number of nodes on all levels.
    pub fn node_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    fn summary(&self, level: usize, index: u32) -> NodeSummary {
        NodeSummary::of(&self.levels[level][index as usize], level as u8, index)
    }

    /// The summary of the root, as a [`TreeSide`] answers it.
    pub fn root_summary(&self) -> Option<NodeSummary> {
        self.levels
            .last()
            .map(|_| self.summary(self.levels.len() - 1, 0))
    }

    /// The children of node `index` on `level`, as a [`TreeSide`] answers
    /// them; `None` for a leaf or a node the tree does not have.
    pub fn children_of(&self, level: u8, index: u32) -> Option<Vec<NodeSummary>> {
        let level = level as usize;
        if level == 0 {
            return None;
        }
        let n = self.levels.get(level)?.get(index as usize)?;
        Some(
            n.children
                .clone()
                .map(|i| self.summary(level - 1, i))
                .collect(),
        )
    }
}

/// Asking for a node this tree does not have.
#[derive(Debug, thiserror::Error)]
#[error("the tree has no node {index} on level {level}")]
pub struct NoSuchNode {
    /// The level asked for.
    pub level: u8,
    /// The index asked for.
    pub index: u32,
}

impl TreeSide for &Tree {
    type Error = NoSuchNode;

    fn root(&mut self) -> Result<Option<NodeSummary>, NoSuchNode> {
        Ok(self.root_summary())
    }

    fn children(&mut self, nodes: &[NodeSummary]) -> Result<Vec<Vec<NodeSummary>>, NoSuchNode> {
        nodes
            .iter()
            .map(|n| {
                self.children_of(n.level, n.index).ok_or(NoSuchNode {
                    level: n.level,
                    index: n.index,
                })
            })
            .collect()
    }
}
