//! driftsum: proves a SQLite replica still matches its source database, and
//! when it does not, finds exactly which rows drifted.
//!
//! The pure engine lives in `driftsum_core`; this crate holds the database
//! [`source`]s, the [`build`] of their trees, the [`check`]s that run
//! comparisons, row-level [`reconcile`]iation and the [`report`]s. The
//! `driftsum` binary is a thin layer over it (see `src/cli`).

pub mod agent;
pub mod alert;
pub mod bench;
pub mod build;
pub mod check;
pub mod config;
pub mod demo;
pub mod error;
pub mod history;
pub mod plan;
pub mod reconcile;
pub mod report;
pub mod source;
pub mod treefile;

pub use driftsum_core as core;
pub use error::{CheckError, SourceError};
