//! Reconciliation: what exactly differs inside the drifted key ranges.
//!
//! [`rows`] re-reads both sides' rows in a range and classifies each key as
//! missing, extra or changed. Repair of the replica will live here too: this
//! is the only place allowed to write to a database, and only to the replica.

pub mod rows;

pub use rows::{compare_rows, fetch_ranges, DiffKind, Difference, KeyedRow};
