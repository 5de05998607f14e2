//! One attempt of one delivery: render the body (a pure function of the event), send it as
//! the endpoint's kind does, and keep the record of the attempt ([`Attempt`]) with its
//! [`Verdict`]. The dedup keys are the store's: its claim skips delivered events.

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;

use super::endpoint::EndpointSpec;
use super::kinds::{self, Exchange, Transport};
use super::webhook;
use crate::model::delivery::{Attempt, Verdict};
use crate::model::Event;
use crate::store::refs::ExternalRefs;

/// How much of a response body is kept with an attempt (the delivery log).
pub const DEFAULT_RESPONSE_CAPTURE_BYTES: usize = 1024;

/// Sends one event as the endpoint's kind does; returns the attempt record and the outcome.
pub async fn send_event(
    transport: &dyn Transport,
    spec: &EndpointSpec,
    refs: &dyn ExternalRefs,
    event: &Event,
    webhook_body: &Bytes,
) -> (Attempt, Exchange) {
    let at = Utc::now();
    let started = std::time::Instant::now();
    let outcome = kinds::deliver(kinds::Job {
        spec,
        event,
        webhook_body,
        refs,
        transport,
        timestamp: at.timestamp(),
    })
    .await;
    let response = outcome
        .response
        .as_ref()
        .map(|r| {
            String::from_utf8_lossy(&r.body[..r.body.len().min(DEFAULT_RESPONSE_CAPTURE_BYTES)])
                .into_owned()
        })
        .unwrap_or_default();
    let attempt = Attempt {
        at,
        status: outcome.response.as_ref().map(|r| r.status),
        duration_ms: started.elapsed().as_millis() as u64,
        error: outcome.error.clone(),
        response,
    };
    (attempt, outcome)
}

/// One attempt: render and send as the kind does. Returns the record of the attempt, its
/// verdict, and the event.
pub async fn attempt(
    transport: Rc<dyn Transport>,
    spec: Arc<EndpointSpec>,
    refs: Arc<dyn ExternalRefs>,
    delivery_id: String,
    event: Arc<Event>,
) -> (Option<Attempt>, Verdict, Arc<Event>) {
    // Rendered at each attempt rather than kept with the delivery: the body is a pure
    // function of the event (the same bytes every time), and a queue of events alone takes
    // half the memory.
    let body = Bytes::from(webhook::body(&event, Some(&delivery_id)));
    let (att, exchange) = send_event(&*transport, &spec, refs.as_ref(), &event, &body).await;
    (Some(att), exchange.verdict, event)
}
