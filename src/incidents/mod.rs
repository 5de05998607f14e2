//! Incidents: the actor that owns recording alerts (`actor`). The transition table is
//! `model::transition`; reading incidents for the admin API is `store::query`.

pub mod actor;
