//! Incidents: the actor that owns recording alerts (`actor`) and the auto-resolve of
//! incidents whose alerts expire (`expiry`); one group's store call is `record`. The transition table is
//! `model::transition`; reading incidents for the admin API is `store::query`.

pub mod actor;
pub mod expiry;
mod record;
