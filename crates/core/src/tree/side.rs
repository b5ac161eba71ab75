//! [`TreeSide`]: one side of a comparison as the walk sees it, whatever
//! holds the tree (memory, a tree file, an agent). The walk itself is in
//! [`crate::diff`]; this trait lives with the tree so that the tree and its
//! readers implement it without depending on the walk.

use std::error::Error as StdError;

use super::node::NodeSummary;

/// One side of a comparison, as the walk sees it.
pub trait TreeSide {
    /// Why the side could not answer.
    type Error: StdError + Send + Sync + 'static;
    /// The root, or `None` for an empty table.
    fn root(&mut self) -> Result<Option<NodeSummary>, Self::Error>;
    /// The children of each of `nodes` (inner nodes of one level, in key
    /// order), each in key order: one request.
    fn children(&mut self, nodes: &[NodeSummary]) -> Result<Vec<Vec<NodeSummary>>, Self::Error>;
}
