//! Reports: one serde [`model`] of a run, rendered as JSON or as [`text`].

pub mod model;
pub mod text;

pub use model::Report;
