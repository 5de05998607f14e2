//! switchyard: a self-hosted alert router.
//!
//! Alerts come in over HTTP (`http`), an adapter per source normalizes them (`sources`), the
//! incident store folds them into incidents and emits events (`incidents`), the route table
//! picks endpoints for each event (`router`), and a delivery actor per endpoint sends them,
//! signed and retried (`delivery`). `config` reads routes.yaml; `app` wires it all together.
//! See docs/ARCHITECTURE.md for the whole path of one alert.

pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod delivery;
pub mod grouping;
pub mod holding;
pub mod http;
pub mod incidents;
pub mod logfmt;
pub mod metrics;
pub mod model;
pub mod router;
pub mod runtime;
pub mod signing;
pub mod sources;
pub mod store;
pub mod tls;
pub mod ui;

#[cfg(test)]
mod fuzz;
