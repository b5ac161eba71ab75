//! driftsum-core: the pure computation behind driftsum.
//!
//! Canonical values ([`value`], [`coerce`], [`canon`], [`decimal`], [`json`], [`time`]), order-preserving
//! keys ([`key`]), hashes ([`hash`]), the key-range Merkle [`tree`] and the
//! [`diff`] walk over two trees. Nothing here touches a database, a socket or
//! a terminal, so it builds, tests and benchmarks on its own.

#![deny(missing_docs)]

pub mod canon;
pub mod coerce;
pub mod decimal;
pub mod diff;
pub mod filter;
pub mod hash;
pub mod json;
pub mod key;
pub mod merge;
pub mod protocol;
pub mod row;
pub mod tag;
pub mod time;
pub mod tree;
pub mod value;
pub mod varint;

pub use canon::{CanonOptions, ENCODING_VERSION};
pub use diff::{DriftRange, Side, Walk, WalkStats};
pub use hash::Hash;
pub use key::Key;
pub use tree::{Builder, Shape, Tree, TreeSide};
pub use value::{LogicalType, Value};
