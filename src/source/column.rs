//! A column of a server's table (PostgreSQL, MySQL / MariaDB) as its
//! connector reads it: the name and declared type the shared SQL layer
//! finds a scan's columns by, the engine's logical type and wire form, and
//! whether its collation already orders text as key bytes. The wire forms
//! and the type rules stay per engine (`postgres/column.rs`,
//! `mysql/column.rs`).

use crate::source::sql;

/// How an engine's column values come over the wire; one form says the
/// connector cannot read the column at all.
pub(super) trait WireForm: Copy + PartialEq {
    /// The form of a column whose type the connector cannot read.
    const UNSUPPORTED: Self;
}

/// One column of a server's table, as discovered: `W` is the engine's wire
/// form, `T` its logical type as that engine's discovery gives it.
#[derive(Clone, Debug)]
pub(super) struct ServerColumn<W, T> {
    pub(super) name: String,
    /// The type as declared, for messages and the schema.
    pub(super) declared: String,
    pub(super) ty: T,
    pub(super) wire: W,
    /// A text column whose collation compares UTF-8 bytes (code points,
    /// trailing spaces included): its own order is key-byte order, so its
    /// index serves key order and key ranges as is.
    pub(super) byte_order: bool,
}

impl<W: WireForm, T> sql::CatalogColumn for ServerColumn<W, T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn declared(&self) -> &str {
        &self.declared
    }
    fn supported(&self) -> bool {
        self.wire != W::UNSUPPORTED
    }
}
