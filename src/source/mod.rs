//! Sources: one connector per database engine, behind the [`Source`] trait.
//!
//! A connector discovers schemas and streams rows in key order (or, where
//! the engine reads faster so, in storage order: `Source::scan_unordered`),
//! each value already decoded into its column's logical type. Connectors only read:
//! nothing here ever writes to a database.

mod column;
pub mod estimate;
pub mod filter;
pub mod key_order;
pub mod libpq;
pub mod mysql;
pub mod names;
pub mod postgres;
pub mod redact;
pub mod secrets;
pub mod server;
mod spec;
pub mod sql;
pub mod sqlite;
mod text;
pub mod tls;
pub mod url;
pub mod userinfo;

pub use crate::error::SourceError;
pub use spec::{
    even_cuts, quote_ident, type_args, Column, ColumnRange, ColumnSpec, EncodedSink, RowSink,
    ScanSpec, Source, TableSchema,
};
pub use url::DbUrl;

/// Opens a source by URL; its scans apply a spec's typed ranges
/// ([`filter`]).
pub fn open(url: &str) -> Result<Box<dyn Source>, SourceError> {
    open_unfiltered(url).map(filter::Filtered::wrap)
}

fn open_unfiltered(url: &str) -> Result<Box<dyn Source>, SourceError> {
    match DbUrl::parse(url)? {
        DbUrl::Sqlite(path) => Ok(Box::new(sqlite::SqliteSource::open_waiting(
            &path,
            Some(url::lock_timeout(url)?),
        )?)),
        DbUrl::Postgres(url) => Ok(Box::new(postgres::PgSource::connect(&url)?)),
        DbUrl::Mysql(url) => Ok(Box::new(mysql::MySqlSource::connect(&url)?)),
    }
}
