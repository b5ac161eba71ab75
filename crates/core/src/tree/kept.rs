//! The entries of every leaf a builder closed, kept while they fit in a
//! bound, so that rows left out of a build can be put in afterwards
//! without reading the others again (see [`super::splice`]).

use std::ops::Range;

use crate::hash::HASH_PREFIX_LEN;
use crate::varint;

use super::node::{Entry, HashPrefix, Node};
use crate::key::Key;

/// Every leaf's entry bytes as a builder hashed them, kept while they fit
/// in a bound (see [`Builder::keeping_leaves`]).
#[derive(Debug)]
pub struct KeptLeaves {
    bytes: Vec<u8>,
    /// Where each leaf's entries end in `bytes`.
    ends: Vec<usize>,
    most: usize,
}

impl KeptLeaves {
    pub(super) fn new(most: usize) -> KeptLeaves {
        KeptLeaves {
            bytes: Vec::new(),
            ends: Vec::new(),
            most,
        }
    }

    /// Keeps the next leaf's entries; `false` when they do not fit.
    pub(super) fn keep(&mut self, leaf: &[u8]) -> bool {
        if self.bytes.len() + leaf.len() > self.most {
            return false;
        }
        self.bytes.extend_from_slice(leaf);
        self.ends.push(self.bytes.len());
        true
    }

    /// The entries of `leaves`, in key order; `None` where the bytes are
    /// not entries (they never fail to be).
    pub(super) fn entries(&self, leaves: Range<usize>) -> Option<Vec<(&[u8], HashPrefix)>> {
        let start = match leaves.start {
            0 => 0,
            i => *self.ends.get(i - 1)?,
        };
        let end = *self.ends.get(leaves.end.checked_sub(1)?)?;
        let mut buf = self.bytes.get(start..end)?;
        let mut out = Vec::new();
        while !buf.is_empty() {
            let (len, n) = varint::get(buf).ok()?;
            let len = usize::try_from(len).ok()?;
            let key = buf.get(n..n + len)?;
            let prefix = buf.get(n + len..n + len + HASH_PREFIX_LEN)?;
            out.push((key, HashPrefix(prefix.try_into().ok()?)));
            buf = &buf[n + len + HASH_PREFIX_LEN..];
        }
        Some(out)
    }

    /// How many leaves are kept.
    pub fn leaves(&self) -> usize {
        self.ends.len()
    }
}

impl KeptLeaves {
    /// The kept entries with keys in `(after, through]`, in key order:
    /// `leaves` are the leaf level of the tree whose builder kept these
    /// (leaf `i`'s entries are the `i`th kept), so only the leaves that
    /// can hold such keys are decoded. `None` when `leaves` are not the
    /// kept ones' tree's (their number differs), or the bytes are not
    /// entries (they never fail to be).
    pub fn entries_in(
        &self,
        leaves: &[Node],
        after: Option<&[u8]>,
        through: &[u8],
    ) -> Option<Vec<Entry>> {
        if leaves.len() != self.leaves() {
            return None;
        }
        let start = leaves.partition_point(|l| after.is_some_and(|a| l.last_key.as_bytes() <= a));
        let end = leaves.partition_point(|l| l.first_key.as_bytes() <= through);
        if start >= end {
            return Some(Vec::new());
        }
        let inside = |k: &[u8]| after.is_none_or(|a| k > a) && k <= through;
        Some(
            self.entries(start..end)?
                .into_iter()
                .filter(|(k, _)| inside(k))
                .map(|(k, hash)| Entry {
                    key: Key::from_bytes(k),
                    hash,
                })
                .collect(),
        )
    }

    /// Bytes the kept entries take.
    pub fn bytes(&self) -> usize {
        self.bytes.len() + self.ends.len() * std::mem::size_of::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{Builder, Shape};
    use super::*;
    use crate::hash::row_hash;

    proptest! {
        /// The entries of any key range, read from the kept leaves, are
        /// the rows pushed with keys in it, in order.
        #[test]
        fn entries_in_a_range_are_the_rows_in_it(
            keys in prop::collection::btree_set(prop::collection::vec(0u8..4, 0..5), 0..300),
            after in prop::option::of(prop::collection::vec(0u8..4, 0..5)),
            through in prop::collection::vec(0u8..4, 0..6),
            leaf_target in 1u32..20,
        ) {
            let shape = Shape { leaf_target, fanout: 4 };
            let mut b = Builder::keeping_leaves(shape, usize::MAX);
            let rows: Vec<(Vec<u8>, HashPrefix)> = keys
                .iter()
                .map(|k| (k.clone(), HashPrefix::from(&row_hash(k))))
                .collect();
            for (k, h) in &rows {
                b.push_prefix(k, h).expect("in order");
            }
            let (tree, kept) = b.finish_keeping();
            let kept = kept.expect("all kept");
            let leaves = tree.levels.first().map_or(&[][..], Vec::as_slice);
            let got = kept.entries_in(leaves, after.as_deref(), &through).expect("entries");
            let want: Vec<Entry> = rows
                .iter()
                .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a) && *k <= through)
                .map(|(k, h)| Entry { key: Key::from_bytes(k), hash: *h })
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
