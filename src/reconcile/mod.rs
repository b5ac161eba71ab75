//! Reconciliation: what exactly differs inside the drifted key ranges.
//!
//! [`rows`] merges both sides' rows of a range by key and classifies each
//! key as missing, extra or changed: the row-level differences every report
//! shows. Reading the rows is the check's job.

pub mod rows;

pub use rows::{compare_rows, DiffKind, Difference, KeyedRow};
