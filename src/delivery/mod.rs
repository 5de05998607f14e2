//! Delivery: one `DeliveryActor` per endpoint (`actor`) taking its work from the store's
//! queue, one attempt (`attempt`) sent over the transport (`transport`, the address policy in
//! `policy`), what follows it (`retry`), the webhook body (`webhook`) and its signing headers
//! (`signer`), the runtime endpoint (`endpoint`), the per-kind request formats (`kinds`), body
//! templates (`template`), which dead deliveries a recovery sends again (`recover`), and the
//! rate limiter and circuit breaker (`pacing`).

pub mod actor;
pub mod attempt;
pub mod endpoint;
pub mod kinds;
pub mod pacing;
pub mod policy;
pub mod recover;
pub mod retry;
pub mod signer;
pub mod template;
pub mod transport;
pub mod webhook;

pub use crate::store::backlog::{Backlog, Reservation, DEFAULT_MAX_PENDING_DELIVERIES};
