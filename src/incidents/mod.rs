//! Incidents: the transition table (`transition`), the actor that owns recording alerts
//! (`actor`), and reading incidents for the admin API (`query`).

pub mod actor;
pub mod query;
pub mod transition;
