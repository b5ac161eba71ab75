//! The one-byte type tags that open every encoded value, shared by the
//! canonical encoding ([`crate::canon`], which hashes values) and the agent
//! protocol's value codec ([`crate::protocol::value`], which ships them).
//! Both encodings agree on which tag means which type; they differ in the
//! payload that follows. A tag's number is part of the canonical encoding:
//! changing one changes every hash.

/// SQL NULL.
pub const NULL: u8 = 0;
/// An integer.
pub const INT: u8 = 1;
/// A float.
pub const FLOAT: u8 = 2;
/// A decimal, as canonical text.
pub const DECIMAL: u8 = 3;
/// Text.
pub const TEXT: u8 = 4;
/// Bytes.
pub const BYTES: u8 = 5;
/// A boolean.
pub const BOOL: u8 = 6;
/// A timestamp with time zone (UTC microseconds).
pub const TIMESTAMP: u8 = 7;
/// A timestamp without time zone (wall-clock microseconds).
pub const TIMESTAMP_NAIVE: u8 = 8;
/// A date (days since the epoch).
pub const DATE: u8 = 9;
/// A time of day (microseconds).
pub const TIME: u8 = 10;
/// A UUID.
pub const UUID: u8 = 11;
/// JSON, as canonical text.
pub const JSON: u8 = 12;
/// A stored value its column's type cannot hold, as text.
pub const INVALID: u8 = 13;
