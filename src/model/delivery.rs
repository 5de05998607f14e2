//! What the delivery of an event to an endpoint looks like from outside: where it stands
//! ([`DeliveryState`]) and the record of each attempt ([`Attempt`]). Shared by the delivery
//! actors, the stores that keep deliveries and the admin API.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// What a `delivery.dead` / `endpoint.disabled` notice says about the delivery that died.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadNotice {
    /// The endpoint the delivery was for.
    pub endpoint: String,
    pub delivery_id: String,
    /// The event that was not delivered, and its type.
    pub event_id: String,
    pub event_type: super::EventType,
    /// Every attempt, oldest first; the last one holds the last answer.
    pub attempts: Vec<Attempt>,
    /// Why: `out of attempts`, `410 Gone`, `failing for 5d without a success`, ...
    pub reason: String,
}

/// The result of one attempt: what it means for the delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// 2xx.
    Success,
    /// Not sent: already delivered to this endpoint (its dedup key exists); counts as
    /// delivered.
    Duplicate,
    /// May succeed later (connection error, timeout, 429, 5xx, other non-2xx);
    /// `retry_after` from the response, if any.
    Retry { retry_after: Option<Duration> },
    /// 410: the endpoint is gone; disable it.
    Gone,
    /// Will never succeed as configured (a template that does not render, a Jira transition
    /// that does not exist): the delivery is dead at once, with the message.
    Fatal,
}

/// What follows an attempt (decided from its [`Verdict`] and the retry schedule): what the
/// queue does with the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Delivered (or found already delivered): the lane moves on.
    Delivered,
    /// Failed; the lane waits this long, then the delivery is attempted again.
    Retry(Duration),
    /// Out of attempts (or can never succeed): kept in the endpoint's log, the lane moves on.
    Dead,
    /// The endpoint answered 410: dead, and the endpoint is disabled (its queued deliveries
    /// die with it) until a replay.
    Gone,
    /// Not attempted (the rate limit or the circuit held it back): the lease is given up and
    /// the lane is due again at once, for any instance.
    Release,
}
