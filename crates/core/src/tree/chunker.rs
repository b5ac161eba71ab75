//! The boundary rule: where a leaf or an inner node ends.
//!
//! A row ends its leaf when the boundary hash of its key falls under
//! `u64::MAX / leaf_target`; a node on level `L` ends its parent when the
//! boundary hash of its last key falls under that threshold divided by
//! `fanout^L`. Boundaries depend on keys alone, so two sides holding the same
//! keys chunk identically without talking, and since each level's threshold
//! is below the one beneath it, a boundary on a level is a boundary on every
//! level under it: an edit disturbs one node per level.

use serde::{Deserialize, Serialize};

/// Default expected rows per leaf (see the README for how it was chosen).
pub const DEFAULT_LEAF_TARGET: u32 = 16;
/// Default expected children per inner node.
pub const DEFAULT_FANOUT: u32 = 8;

/// Tree shape parameters; both sides of a comparison must use the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    pub leaf_target: u32,
    pub fanout: u32,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape {
            leaf_target: DEFAULT_LEAF_TARGET,
            fanout: DEFAULT_FANOUT,
        }
    }
}

impl Shape {
    /// The boundary threshold for nodes on `level` (0 = leaves).
    pub fn threshold(&self, level: usize) -> u64 {
        let mut div = self.leaf_target.max(1) as u128;
        for _ in 0..level {
            div = div.saturating_mul(self.fanout.max(2) as u128);
            if div > u64::MAX as u128 {
                return 0;
            }
        }
        (u64::MAX as u128 / div) as u64
    }

    /// Whether a node on `level` whose last key has boundary hash `bh` ends its chunk.
    pub fn is_boundary(&self, level: usize, bh: u64) -> bool {
        bh < self.threshold(level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_nest() {
        let s = Shape::default();
        assert!(s.threshold(0) > s.threshold(1));
        assert!(s.threshold(1) > s.threshold(2));
        assert_eq!(s.threshold(40), 0);
    }
}
