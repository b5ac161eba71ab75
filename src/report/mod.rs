//! Reports: one serde [`model`] of a run, rendered as JSON (whole, or
//! [`stream`]ed as the run goes) or as [`text`].

pub mod hints;
pub mod model;
pub mod stream;
pub mod text;

pub use model::Report;
