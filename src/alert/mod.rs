//! Telling people: Prometheus [`metrics`] from the run history (incidents
//! and their alerts are added beside it).

pub mod metrics;
