//! Typed errors of the driftsum library. Every message names the problem and,
//! where there is one, the fix; none ever contains a credential.

use std::path::PathBuf;

/// Anything that can go wrong reading one side of a comparison.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    BadUrl(String),
    #[error("no such database file: {0} (driftsum never creates one; check the path)")]
    NoFile(PathBuf),
    #[error("cannot open {location}: {message}")]
    Open { location: String, message: String },
    #[error("no table {table:?} in {location}")]
    NoTable { table: String, location: String },
    #[error("table {table:?} has no primary key; name its key columns with --key COL,...")]
    NoPrimaryKey { table: String },
    #[error("table {table:?} has no column {column:?}")]
    NoColumn { table: String, column: String },
    #[error(
        "table {table:?}, column {column:?}: unsupported type {declared:?}; \
         leave the column out with --exclude-columns {column}"
    )]
    UnsupportedType {
        table: String,
        column: String,
        declared: String,
    },
    #[error("{context}: {message}")]
    Query { context: String, message: String },
    #[error("{0}")]
    Other(String),
    /// A stored value that could be read two ways; never guessed.
    #[error("cannot be sure of the result: {0}")]
    Unsure(String),
}

impl SourceError {
    pub fn query(context: impl Into<String>, e: impl std::fmt::Display) -> SourceError {
        SourceError::Query {
            context: context.into(),
            message: e.to_string(),
        }
    }
}

/// Comparing one table failed (the run goes on with the other tables).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("source: {0}")]
    Source(SourceError),
    #[error("target: {0}")]
    Target(SourceError),
    #[error("{0}")]
    Invalid(String),
    /// The comparison could not be sure of its answer; it never guesses.
    #[error("cannot be sure of the result: {0}")]
    Unsure(String),
    #[error(transparent)]
    Walk(#[from] driftsum_core::diff::WalkError),
    /// The report could not be written as the differences were found.
    /// The cause is in the message, not also a source (a chain printed
    /// whole would say it twice).
    #[error("writing the report: {0}")]
    Output(std::io::Error),
}
