//! Delivery: one `DeliveryActor` per endpoint (`actor`) driving a per-endpoint queue of lanes
//! (`queue`), the webhook body (`webhook`) and its signing headers (`signer`), the runtime
//! endpoint (`endpoint`), the per-kind request formats (`kinds`), body templates (`template`),
//! where attempts may connect (`policy`), which dead deliveries a recovery sends again
//! (`recover`), and the rate limiter and circuit breaker (`pacing`).

pub mod actor;
pub mod attempt;
pub mod endpoint;
pub mod kinds;
pub mod pacing;
pub mod policy;
pub mod queue;
pub mod recover;
pub mod signer;
pub mod template;
pub mod transport;
pub mod webhook;

pub use crate::store::backlog::{Backlog, Reservation, DEFAULT_MAX_PENDING_DELIVERIES};
