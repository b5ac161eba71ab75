//! The key-range Merkle tree: its [`shape`], the content-defined
//! [`boundary`] rule, a streaming [`builder`], the [`node`] layout, the
//! tree in memory ([`built`]), mending a tree built without some rows
//! ([`splice`], from the leaves a builder [`kept`]), the [`side`] a walk asks, and the tree [`file`] format. A
//! tree is levels of nodes, leaves first; the last level holds the root.

pub mod boundary;
pub mod builder;
pub mod built;
pub mod file;
pub mod kept;
pub mod node;
pub mod shape;
pub mod side;
pub mod splice;

pub use builder::{Builder, OrderError};
pub use built::{NoSuchNode, Tree};
pub use file::{TreeMeta, TreeReader};
pub use kept::KeptLeaves;
pub use node::{Entry, HashPrefix, Node, NodeSummary, HASH_PREFIX_LEN};
pub use shape::Shape;
pub use side::TreeSide;
pub use splice::{LeafRun, MendError, SpliceMismatch};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{row_hash, Hash};

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
