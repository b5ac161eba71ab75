//! Reports: one serde [`model`] of a run, rendered as JSON (whole, or
//! [`stream`]ed as the run goes, each [`difference`] written as a line) or
//! as [`text`]; and the dashboard over the
//! run history ([`dashboard`], drawn as [`html`] with [`svg`] charts).

pub mod dashboard;
pub mod difference;
pub mod hints;
pub mod html;
pub mod model;
pub mod stream;
pub mod svg;
pub mod text;

pub use model::Report;
