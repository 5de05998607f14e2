//! Routing: Alertmanager-style matchers and the route tree that picks endpoints for events.

pub mod actor;
pub mod matcher;
pub mod table;
