//! What the delivery of an event to an endpoint looks like from outside: where it stands
//! ([`DeliveryState`]) and the record of each attempt ([`Attempt`]). Shared by the delivery
//! actors, the stores that keep deliveries and the admin API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Pending,
    /// Acknowledged with 2xx by the endpoint.
    Delivered,
    /// Failed at least once and waiting for a retry.
    Failed,
    /// Out of attempts (or the endpoint is disabled); kept and replayable.
    Dead,
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// The first bytes of the response body (lossy UTF-8).
    pub response: String,
}
