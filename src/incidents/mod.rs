//! Incidents: the transition table (`transition`) and the actor that owns recording alerts
//! (`actor`).

pub mod actor;
pub mod transition;
