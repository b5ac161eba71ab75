//! The agent protocol: the wire encoding of everything a walk exchanges with a side: the
//! requests (root, children of a node, leaf entries of a key range, rows by
//! key) and their responses. It is defined once, here, so that a walk over
//! two trees in memory counts exactly the bytes a walk over two agents sends.
//!
//! Integers are LEB128 varints unless fixed width is noted. A list of keys is
//! prefix-compressed: each key is the length of the prefix it shares with
//! the key before it, then the length and bytes of the rest. A node summary
//! carries its last key, row count and a [`HashPrefix`]; the children of a
//! node are sent as the index of the first child and the children in order,
//! and the last child's key is left out, since it is the parent's last key.
//!
//! Every decoder takes untrusted bytes: it checks every length against what
//! is left before allocating, and every structural promise (keys ascending,
//! children's rows adding up to the parent's) before returning.
//!
//! The parts: [`requests`] (what a client asks), [`responses`] (what a side
//! answers), [`paging`] (how long answers are cut into pages), [`value`] (the
//! value codec for rows) and the private cursor the decoders share. No
//! socket is here: the tool's agent and client carry these bytes.

mod cursor;
pub mod meter;
pub mod paging;
pub mod requests;
pub mod responses;
pub mod value;

#[cfg(test)]
mod tests;

pub use meter::{EntriesMeter, PagesCost, RowsMeter};
pub use paging::{entry_pages, rows_pages};
pub use requests::{ChildrenRequest, EntriesRequest, RootRequest, RowsRequest};
pub use responses::{
    decode_children, decode_entries, decode_root, decode_row, decode_rows, encode_children,
    encode_entries, encode_root, encode_row, encode_rows, encoded_entries_len, encoded_row_len,
    encoded_rows_len, encoded_rows_len_of, row_spans,
};
pub use value::{put_value, value_from_bytes, value_len};

/// The id an agent gives one built tree; requests name the tree they walk.
/// Fixed width (4 bytes), so a request's size does not depend on which build
/// of a tree it walks.
pub type TreeId = u32;

/// The longest key accepted on the wire.
pub const MAX_KEY_LEN: usize = 64 * 1024;
/// The most children a node may have on the wire (boundaries are
/// content-defined, so this is far above any real fanout).
pub const MAX_CHILDREN: u64 = 1 << 20;
/// Key ranges per entries request.
pub const RANGES_BATCH: usize = 1024;
/// Nodes per children request.
pub const CHILDREN_BATCH: usize = 1024;
/// Leaf entries per page of an entries request.
pub const ENTRIES_PAGE: u32 = 16 * 1024;
/// Keys per rows request.
pub const ROWS_PAGE: usize = 1024;
/// Values per row accepted on the wire.
pub const MAX_COLUMNS: u64 = 4096;

/// Bytes that are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the message ends early")]
    /// The bytes end before the message does.
    Truncated,
    #[error("the message has {0} bytes left over at its end")]
    /// The message is followed by bytes that belong to none.
    TrailingBytes(usize),
    #[error("invalid message: {0}")]
    /// A broken promise of the format, named.
    Invalid(&'static str),
}
