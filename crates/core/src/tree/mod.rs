//! The key-range Merkle tree: its [`shape`], the content-defined
//! [`boundary`] rule, a streaming [`builder`], the [`node`] layout and the
//! tree [`file`] format. A tree is levels of
//! nodes, leaves first; the last level holds the root.

pub mod boundary;
pub mod builder;
pub mod file;
pub mod node;
pub mod shape;
pub mod side;

pub use builder::{Builder, OrderError};
pub use file::{TreeMeta, TreeReader};
pub use node::{Entry, HashPrefix, Node, NodeSummary, HASH_PREFIX_LEN};
pub use shape::Shape;
pub use side::TreeSide;

use crate::hash::Hash;
use crate::key::Key;

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
    /// Builds a tree from entries in any order, sorting them first: the
    /// fallback for sources whose scan order is not the key-byte order.
    pub fn from_unsorted(shape: Shape, mut entries: Vec<(Key, Hash)>) -> Result<Tree, OrderError> {
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut b = Builder::new(shape);
        for (k, h) in &entries {
            b.push(k.as_bytes(), h)?;
        }
        Ok(b.finish())
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::row_hash;

    fn build(keys: impl Iterator<Item = u64>, shape: Shape) -> Tree {
        let mut b = Builder::new(shape);
        for k in keys {
            let key = k.to_be_bytes();
            b.push(&key, &row_hash(b"v")).unwrap();
        }
        b.finish()
    }

    #[test]
    fn shape_is_sane() {
        let t = build(0..100_000, Shape::default());
        assert_eq!(t.rows, 100_000);
        assert_eq!(t.root().unwrap().rows, 100_000);
        let leaves = t.levels[0].len();
        let expected = 100_000 / Shape::default().leaf_target as usize;
        assert!(
            (expected * 7 / 10..expected * 13 / 10).contains(&leaves),
            "{leaves} leaves, about {expected} expected"
        );
        for (l, level) in t.levels.iter().enumerate().skip(1) {
            let covered: u64 = level.iter().map(|n| n.rows).sum();
            assert_eq!(covered, 100_000, "level {l}");
            for w in level.windows(2) {
                assert_eq!(w[0].children.end, w[1].children.start);
            }
        }
        assert_eq!(t.levels.last().unwrap().len(), 1);
    }

    #[test]
    fn tiny_and_empty() {
        assert!(build(0..0, Shape::default()).root().is_none());
        let one = build(5..6, Shape::default());
        assert_eq!(one.root().unwrap().rows, 1);
    }

    #[test]
    fn same_keys_same_shape_and_edits_stay_local() {
        let a = build(0..50_000, Shape::default());
        let mut b = Builder::new(Shape::default());
        for k in 0u64..50_000 {
            let key = k.to_be_bytes();
            let v: &[u8] = if k == 777 { b"changed" } else { b"v" };
            b.push(&key, &row_hash(v)).unwrap();
        }
        let b = b.finish();
        assert_eq!(a.levels.len(), b.levels.len());
        for (la, lb) in a.levels.iter().zip(&b.levels) {
            assert_eq!(la.len(), lb.len());
            let differing = la.iter().zip(lb).filter(|(x, y)| x.hash != y.hash).count();
            assert_eq!(differing, 1);
        }
    }

    #[test]
    fn order_is_checked() {
        let mut b = Builder::new(Shape::default());
        b.push(&[2], &Hash::default()).unwrap();
        assert_eq!(b.push(&[1], &Hash::default()), Err(OrderError::OutOfOrder));
        assert!(matches!(
            b.push(&[2], &Hash::default()),
            Err(OrderError::Duplicate(_))
        ));
    }
}
