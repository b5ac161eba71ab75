//! The tree's shape parameters ([`Shape`]): expected rows per leaf and
//! children per inner node, and their defaults. Where nodes end, given a
//! shape, is [`super::boundary`]'s business.

use serde::{Deserialize, Serialize};

/// Default expected rows per leaf (see the README for how it was chosen).
pub const DEFAULT_LEAF_TARGET: u32 = 16;
/// Default expected children per inner node.
pub const DEFAULT_FANOUT: u32 = 8;

/// Tree shape parameters; both sides of a comparison must use the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    /// Expected rows per leaf.
    pub leaf_target: u32,
    /// Expected children per inner node.
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
