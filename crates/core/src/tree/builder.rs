//! Building a tree from a key-ordered stream of `(key, row hash)` entries,
//! holding only the nodes (never the rows) in memory.

use crate::hash::{self, Domain, Hash};
use crate::key::Key;

use super::boundary::{self, Boundaries};
use super::built::Tree;
use super::kept::KeptLeaves;
use super::node::{HashPrefix, Node};
use super::shape::Shape;

/// The stream broke key order: the builder cannot place this entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("keys arrived out of order")]
    /// A key smaller than the one before it.
    OutOfOrder,
    #[error("the key {0:?} occurs twice")]
    /// A key equal to the one before it.
    Duplicate(Key),
}

/// A node being filled on one level.
struct Open {
    /// The bytes the node's hash covers (leaf entries or child hashes),
    /// hashed in one call when it closes: cheaper than a streaming hasher
    /// fed a few dozen bytes at a time.
    bytes: Vec<u8>,
    first_key: Option<Key>,
    rows: u64,
    child_start: u32,
}

impl Open {
    fn new(child_start: u32) -> Open {
        Open {
            bytes: Vec::with_capacity(1024),
            first_key: None,
            rows: 0,
            child_start,
        }
    }
}

/// Streaming tree builder; feed it entries in strictly increasing key order.
pub struct Builder {
    shape: Shape,
    boundaries: Boundaries,
    levels: Vec<Vec<Node>>,
    open: Vec<Open>,
    /// A whole leaf handed in by [`Builder::push_leaf`] whose last key is
    /// not a boundary: it can only be the tree's last leaf, and is attached
    /// by [`Builder::finish`] as an open leaf would be.
    last_leaf: Option<Node>,
    /// Every leaf's entry bytes, while they fit (see
    /// [`Builder::keeping_leaves`]).
    kept: Option<KeptLeaves>,
    prev_key: Vec<u8>,
    rows: u64,
}

impl Builder {
    /// A builder for trees of `shape`.
    pub fn new(shape: Shape) -> Builder {
        Builder {
            shape,
            boundaries: Boundaries::new(shape),
            levels: vec![Vec::new()],
            open: vec![Open::new(0)],
            last_leaf: None,
            kept: None,
            prev_key: Vec::new(),
            rows: 0,
        }
    }

    /// A builder that also keeps every leaf's entries, up to `most` bytes
    /// of them (about 22 a row for an integer key), so that rows left out
    /// can be put in afterwards without reading the others again
    /// ([`Tree::mend`]); past that it keeps none.
    pub fn keeping_leaves(shape: Shape, most: usize) -> Builder {
        Builder {
            kept: Some(KeptLeaves::new(most)),
            ..Builder::new(shape)
        }
    }

    /// Adds one row's entry.
    pub fn push(&mut self, key: &[u8], row_hash: &Hash) -> Result<(), OrderError> {
        self.push_prefix(key, &HashPrefix::from(row_hash))
    }

    /// Adds one row's entry by the prefix of its row hash, which is all a
    /// leaf holds of it.
    pub(super) fn push_prefix(
        &mut self,
        key: &[u8],
        prefix: &HashPrefix,
    ) -> Result<(), OrderError> {
        if self.rows > 0 {
            match key.cmp(&self.prev_key[..]) {
                std::cmp::Ordering::Greater => {}
                std::cmp::Ordering::Equal => {
                    return Err(OrderError::Duplicate(Key::from_bytes(key)))
                }
                std::cmp::Ordering::Less => return Err(OrderError::OutOfOrder),
            }
        }
        self.rows += 1;
        self.prev_key.clear();
        self.prev_key.extend_from_slice(key);
        let leaf = &mut self.open[0];
        if leaf.first_key.is_none() {
            leaf.first_key = Some(Key::from_bytes(key));
        }
        leaf.rows += 1;
        hash::leaf_entry_prefix(&mut leaf.bytes, key, &prefix.0);
        let bh = boundary::key_hash(key);
        if self.boundaries.ends(0, bh) {
            self.close(0, Key::from_bytes(key), Some(bh));
        }
        Ok(())
    }

    /// Adds a whole leaf, built elsewhere from the rows after every row so
    /// far: how [`Tree::splice`](super::Tree::splice) builds the levels above
    /// a leaf level it has edited. Refused like a row when its first key is
    /// not above the last key so far. Rows and leaves are not mixed: a
    /// builder takes one or the other.
    pub(super) fn push_leaf(&mut self, leaf: Node) -> Result<(), OrderError> {
        debug_assert_eq!(self.open[0].rows, 0, "rows and leaves mixed");
        debug_assert!(self.last_leaf.is_none(), "a leaf after the last one");
        if self.rows > 0 {
            match leaf.first_key.as_bytes().cmp(&self.prev_key[..]) {
                std::cmp::Ordering::Greater => {}
                std::cmp::Ordering::Equal => return Err(OrderError::Duplicate(leaf.first_key)),
                std::cmp::Ordering::Less => return Err(OrderError::OutOfOrder),
            }
        }
        self.rows += leaf.rows;
        self.prev_key.clear();
        self.prev_key.extend_from_slice(leaf.last_key.as_bytes());
        let bh = boundary::key_hash(leaf.last_key.as_bytes());
        if self.boundaries.ends(0, bh) {
            self.attach(0, leaf, Some(bh));
        } else {
            self.last_leaf = Some(leaf);
        }
        Ok(())
    }

    /// Closes the open node on `level`, ending at `last_key`, and hands it to
    /// the level above (which closes in turn if `bh` is a boundary there);
    /// `bh: None` closes the root, which has no level above.
    fn close(&mut self, level: usize, last_key: Key, bh: Option<u64>) {
        let child_end = if level == 0 {
            0
        } else {
            self.levels[level - 1].len() as u32
        };
        let open = &mut self.open[level];
        let domain = if level == 0 {
            Domain::Leaf
        } else {
            Domain::Node
        };
        let hash = hash::node_hash(domain, &open.bytes);
        if level == 0 {
            if let Some(kept) = self.kept.as_mut() {
                if !kept.keep(&open.bytes) {
                    self.kept = None;
                }
            }
        }
        open.bytes.clear();
        let node = Node {
            first_key: open.first_key.take().unwrap_or_default(),
            last_key,
            rows: std::mem::take(&mut open.rows),
            hash,
            children: if level == 0 {
                0..0
            } else {
                std::mem::replace(&mut open.child_start, child_end)..child_end
            },
        };
        self.attach(level, node, bh);
    }

    /// Puts a closed `node` on `level` and hands it to the level above
    /// (see [`Builder::close`] for `bh`).
    fn attach(&mut self, level: usize, node: Node, bh: Option<u64>) {
        self.levels[level].push(node);
        let Some(bh) = bh else { return };
        if self.levels.len() == level + 1 {
            self.levels.push(Vec::new());
            self.open.push(Open::new(0));
        }
        self.add_child(level + 1, bh);
    }

    /// Adds the newest node of `level - 1` to the open node on `level`.
    fn add_child(&mut self, level: usize, bh: u64) {
        let child = self.levels[level - 1]
            .last()
            .expect("a child was just pushed");
        let open = &mut self.open[level];
        if open.first_key.is_none() {
            open.first_key = Some(child.first_key.clone());
        }
        open.rows += child.rows;
        open.bytes.extend_from_slice(&child.hash.0);
        let last = child.last_key.clone();
        if self.boundaries.ends(level, bh) {
            self.close(level, last, Some(bh));
        }
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes every open node and returns the tree.
    pub fn finish(self) -> Tree {
        self.finish_keeping().0
    }

    /// [`Builder::finish`], with every leaf's entries when this builder
    /// kept them all ([`Builder::keeping_leaves`]).
    pub fn finish_keeping(mut self) -> (Tree, Option<KeptLeaves>) {
        if self.rows == 0 {
            let tree = Tree {
                shape: self.shape,
                levels: Vec::new(),
                rows: 0,
            };
            return (tree, self.kept);
        }
        let mut level = 0;
        loop {
            let above_empty = self.open.get(level + 1).is_none_or(|o| o.rows == 0)
                && self.levels.get(level + 1).is_none_or(|l| l.is_empty());
            let last_leaf = if level == 0 {
                self.last_leaf.take()
            } else {
                None
            };
            if self.open[level].rows > 0 || last_leaf.is_some() {
                let is_root = self.levels[level].is_empty() && above_empty;
                // u64::MAX is never a boundary: closing at the end of the
                // stream must not close the parent early.
                let bh = (!is_root).then_some(u64::MAX);
                match last_leaf {
                    Some(leaf) => self.attach(0, leaf, bh),
                    None => {
                        let last = if level == 0 {
                            Key::from_bytes(&self.prev_key)
                        } else {
                            self.levels[level - 1]
                                .last()
                                .expect("open node has children")
                                .last_key
                                .clone()
                        };
                        self.close(level, last, bh);
                    }
                }
                if is_root {
                    break;
                }
            } else if self.levels[level].len() == 1 && above_empty {
                break;
            }
            level += 1;
        }
        self.levels.truncate(level + 1);
        let tree = Tree {
            shape: self.shape,
            levels: self.levels,
            rows: self.rows,
        };
        (tree, self.kept)
    }
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
}
