//! The entries of every leaf a builder closed, kept while they fit in a
//! bound, so that rows left out of a build can be put in afterwards
//! without reading the others again (see [`super::splice`]).

use std::ops::Range;

use crate::hash::HASH_PREFIX_LEN;
use crate::varint;

use super::node::HashPrefix;

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
