//! The tree file: one table's tree (and optionally its leaf entries) in a
//! fixed-width, little-endian layout that is read in place.
//!
//! ```text
//! offset  size        content
//! 0       8           magic "DSUMTREE"
//! 8       4           format version (u32)
//! 12      4           header length H (u32)
//! 16      H           header: JSON TreeHeader (what was hashed, and the
//!                     counts below)
//! …       0–7         zero padding to a multiple of 8
//! N       72 × nodes  node records, leaves first, level by level:
//!                     hash[32] rows:u64 child_start:u32 child_end:u32
//!                     first_key_off:u64 first_key_len:u32
//!                     last_key_off:u64 last_key_len:u32
//! E       28 × rows   entry records (only with entries), in key order:
//!                     key_off:u64 key_len:u32 row_hash_prefix[16]
//! K       heap_bytes  key bytes referred to by the records above
//! end-32  32          BLAKE3 of every byte before it
//! ```
//!
//! Fixed-width records make a node or an entry a bounds check and a few
//! loads away, with nothing decoded up front: opening a file costs one pass
//! to verify the checksum and no allocation per node. Every offset read is
//! bounds-checked: a file is input, and a bad one must give an error, never
//! a panic.
//!
//! The header is in [`meta`], the writer in [`writer`], the reader in
//! [`reader`]. This module only lays out bytes: opening, mapping and
//! atomically replacing files belong to the tool (`driftsum::treefile`).

pub mod meta;
pub mod reader;
pub mod writer;

#[cfg(test)]
mod tests;

pub use meta::{ColumnMeta, Layout, Mismatch, TreeHeader, TreeMeta};
pub use reader::{FormatError, TreeReader};
pub use writer::{write, EntryLog};

use crate::tree::node::HASH_PREFIX_LEN;

/// The bytes every tree file starts with.
pub const MAGIC: &[u8; 8] = b"DSUMTREE";
/// The layout version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const NODE_SIZE: usize = 72;
const ENTRY_SIZE: usize = 12 + HASH_PREFIX_LEN;
const CHECKSUM_SIZE: usize = 32;
const PREAMBLE: usize = 16;
/// Headers are small JSON; a larger one is not a tree file of ours.
const MAX_HEADER: usize = 16 * 1024 * 1024;

/// Zero bytes that pad `n` to a multiple of 8.
fn pad8(n: usize) -> usize {
    (8 - n % 8) % 8
}
