//! Routing: the route tree (matchers are `config::matcher`) that picks endpoints for events.

pub mod actor;
pub mod table;
