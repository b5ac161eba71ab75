//! The boundary rule: where a leaf or an inner node ends.
//!
//! A row ends its leaf when the boundary hash of its key falls under
//! `u64::MAX / leaf_target`; a node on level `L` ends its parent when the
//! boundary hash of its last key falls under that threshold divided by
//! `fanout^L`. Boundaries depend on keys alone, so two sides holding the same
//! keys chunk identically without talking, and since each level's threshold
//! is below the one beneath it, a boundary on a level is a boundary on every
//! level under it: an edit disturbs one node per level.

//!
//! Everything that decides a boundary is here: the key hash, the
//! per-level thresholds and the test. The [`super::builder`] asks
//! [`Boundaries::ends`] and nothing else, so the rule has one home.

use super::shape::Shape;

/// A fast, fixed, non-cryptographic 64-bit hash of key bytes, used only to
/// place chunk boundaries. It is part of the tree format: changing it changes
/// every tree's shape (never its correctness).
pub fn key_hash(key: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0x243F_6A88_85A3_08D3 ^ (key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(buf))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    // splitmix64 finalizer: every input bit reaches every output bit.
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// The boundary threshold for nodes on `level` (0 = leaves) of a tree of
/// `shape`: `u64::MAX / (leaf_target × fanout^level)`, 0 (never a boundary)
/// once the divisor passes `u64::MAX`.
pub fn threshold(shape: &Shape, level: usize) -> u64 {
    let mut div = shape.leaf_target.max(1) as u128;
    for _ in 0..level {
        div = div.saturating_mul(shape.fanout.max(2) as u128);
        if div > u64::MAX as u128 {
            return 0;
        }
    }
    (u64::MAX as u128 / div) as u64
}

/// Levels whose thresholds are kept; above them the threshold is 0 for any
/// shape (the divisor is at least 2^40).
const LEVELS: usize = 40;

/// The boundary rule for one shape, with its thresholds computed once.
#[derive(Clone, Debug)]
pub struct Boundaries {
    thresholds: Vec<u64>,
}

impl Boundaries {
    /// The rule for trees of `shape`.
    pub fn new(shape: Shape) -> Boundaries {
        Boundaries {
            thresholds: (0..LEVELS).map(|l| threshold(&shape, l)).collect(),
        }
    }

    /// Whether a node on `level` whose last key has key hash `bh` (see
    /// [`key_hash`]) ends its parent; for a row (`level` 0), whether it ends
    /// its leaf.
    #[inline]
    pub fn ends(&self, level: usize, bh: u64) -> bool {
        bh < self.thresholds.get(level).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_nest() {
        let s = Shape::default();
        assert!(threshold(&s, 0) > threshold(&s, 1));
        assert!(threshold(&s, 1) > threshold(&s, 2));
        assert_eq!(threshold(&s, 40), 0);
        let b = Boundaries::new(s);
        assert!(b.ends(0, threshold(&s, 0) - 1));
        assert!(!b.ends(0, threshold(&s, 0)));
        assert!(!b.ends(41, 0));
    }

    #[test]
    fn key_hash_spreads() {
        // About 1 in 64 of consecutive integer keys falls under 1/64 of the range.
        let threshold = u64::MAX / 64;
        let hits = (0..64_000u64)
            .filter(|i| key_hash(&i.to_be_bytes()) < threshold)
            .count();
        assert!((800..1200).contains(&hits), "{hits}");
    }
}
