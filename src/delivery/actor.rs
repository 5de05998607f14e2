//! `DeliveryActor`: one per endpoint. It owns the endpoint's queue, retry timers and HTTP
//! client, and runs attempts concurrently across incidents (one at a time per incident, so an
//! incident's events arrive in order). The decisions live in `queue`; this is the thin actor
//! layer around it. With the redis store the actor takes its work from the shared durable
//! queue instead (`durable`).

mod durable;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::http::header::{self, HeaderMap};
use bytes::Bytes;
use chrono::Utc;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::endpoint::EndpointSpec;
use super::queue::{Attempt, AttemptResult, Delivery, DeliveryQueue, Settled};
use super::{webhook, Backlog};
use crate::metrics::{EndpointLabels, Metrics};
use crate::model::Event;
use crate::store::{DeliveryDedup, DeliveryQueueStore};

pub use durable::{DEFAULT_LEASE_MARGIN, DEFAULT_QUEUE_POLL_INTERVAL, DEFAULT_SETTLE_ATTEMPTS};

/// How many requests one endpoint has in flight at once (each for a different incident).
/// When reached, due deliveries wait in the queue until an attempt finishes.
pub const DEFAULT_ENDPOINT_CONCURRENCY: usize = 16;

/// How much of a response body is kept with an attempt; the rest is not read.
pub const DEFAULT_RESPONSE_CAPTURE_BYTES: usize = 1024;

/// Mailbox size of a delivery actor. Senders wait (backpressure) when it is full.
pub const DEFAULT_DELIVERY_MAILBOX: usize = 1024;

/// Hands events to the endpoint's queue. Answered once they are queued.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enqueue(pub Vec<Arc<Event>>);

/// Tells an actor with a durable queue that new work is in the store: it claims at once
/// (else it would notice at its next poll). The router sends it instead of `Enqueue` when
/// the store wrote the deliveries with their events.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClaimDue;

/// One endpoint's delivery actor.
pub struct DeliveryActor {
    spec: Arc<EndpointSpec>,
    client: Option<awc::Client>,
    dedup: Arc<dyn DeliveryDedup>,
    queue: DeliveryQueue,
    metrics: Arc<Metrics>,
    backlog: Arc<Backlog>,
    in_flight: usize,
    timer: Option<(Instant, SpawnHandle)>,
    labels: EndpointLabels,
    /// Set with the redis store: work is claimed from the shared durable queue.
    durable: Option<durable::Durable>,
}

impl DeliveryActor {
    pub fn new(
        spec: Arc<EndpointSpec>,
        dedup: Arc<dyn DeliveryDedup>,
        metrics: Arc<Metrics>,
        backlog: Arc<Backlog>,
    ) -> Self {
        let labels = EndpointLabels {
            endpoint: spec.name.to_string(),
        };
        DeliveryActor {
            queue: DeliveryQueue::new(spec.schedule.clone()),
            spec,
            client: None,
            dedup,
            metrics,
            backlog,
            in_flight: 0,
            timer: None,
            labels,
            durable: None,
        }
    }

    /// Takes its work from `queue` (shared by every instance, kept across restarts): it claims
    /// due deliveries at start, on `ClaimDue`, after each settle and at each poll. `Enqueue`
    /// still delivers from memory (events that are not in the store).
    pub fn with_durable_queue(mut self, queue: Arc<dyn DeliveryQueueStore>) -> Self {
        self.durable = Some(durable::Durable::new(queue));
        self
    }

    /// Unfinished deliveries: this queue's, or with a durable queue, the store's count.
    fn depth(&self) -> usize {
        self.durable
            .as_ref()
            .and_then(|d| d.depth)
            .unwrap_or_else(|| self.queue.pending())
    }

    /// The request body of an event for this endpoint, made once per delivery.
    fn render(&self, event: &Event) -> Bytes {
        Bytes::from(webhook::body(event))
    }

    fn client(&mut self) -> awc::Client {
        self.client
            .get_or_insert_with(|| {
                awc::Client::builder()
                    .disable_redirects()
                    .timeout(self.spec.timeout)
                    .add_default_header((
                        header::USER_AGENT,
                        concat!("switchyard/", env!("CARGO_PKG_VERSION")),
                    ))
                    .finish()
            })
            .clone()
    }

    fn update_depth(&self) {
        self.metrics
            .queue_depth
            .get_or_create(&self.labels)
            .set(self.depth() as i64);
    }

    /// Starts every due attempt the concurrency limit allows, and arms the retry timer.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let room = DEFAULT_ENDPOINT_CONCURRENCY.saturating_sub(self.in_flight);
        if room > 0 {
            for (lane, delivery) in self.queue.take_ready(now, room) {
                self.in_flight += 1;
                let fut = attempt(
                    self.client(),
                    self.spec.clone(),
                    self.dedup.clone(),
                    delivery,
                );
                ctx.spawn(
                    fut.into_actor(self)
                        .map(move |(att, result, event), act, ctx| {
                            act.in_flight -= 1;
                            act.settle(lane, att, result, event, ctx);
                        }),
                );
            }
        }
        self.arm_timer(ctx);
    }

    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        let Some(at) = self.queue.next_wakeup() else {
            return;
        };
        if let Some((armed_at, handle)) = self.timer {
            if armed_at <= at {
                return;
            }
            ctx.cancel_future(handle);
        }
        let wait = at.saturating_duration_since(Instant::now());
        let handle = ctx.run_later(wait, |act, ctx| {
            act.timer = None;
            act.pump(ctx);
        });
        self.timer = Some((at, handle));
    }

    fn settle(
        &mut self,
        lane: Arc<str>,
        attempt: Option<Attempt>,
        result: AttemptResult,
        event: Arc<Event>,
        ctx: &mut Context<Self>,
    ) {
        let status = attempt.as_ref().and_then(|a| a.status);
        let error = attempt.as_ref().and_then(|a| a.error.clone());
        if let Some(a) = &attempt {
            self.metrics
                .delivery_duration
                .get_or_create(&self.labels)
                .observe(a.duration_ms as f64 / 1000.0);
        }
        let durable_attempt = if self.durable.is_some() {
            attempt.clone()
        } else {
            None
        };
        let settled = self.queue.settle(&lane, attempt, result, Instant::now());
        let endpoint = &*self.spec.name;
        match settled {
            Settled::Delivered => {
                self.backlog.done(1);
                self.metrics.delivery(endpoint, "delivered");
                let latency = (Utc::now() - event.timestamp)
                    .num_microseconds()
                    .unwrap_or(0);
                self.metrics
                    .delivery_latency
                    .get_or_create(&self.labels)
                    .observe(latency.max(0) as f64 / 1e6);
                tracing::debug!(endpoint, event_id = %event.id, event_type = %event.kind, "delivered");
            }
            Settled::Duplicate => {
                self.backlog.done(1);
                self.metrics.delivery(endpoint, "duplicate");
                tracing::info!(endpoint, event_id = %event.id, "already delivered; not sent again");
            }
            Settled::RetryIn(wait) => {
                self.metrics.delivery(endpoint, "failed");
                tracing::warn!(endpoint, event_id = %event.id, status, error, retry_in_ms = wait.as_millis() as u64, "delivery failed; will retry");
            }
            Settled::Dead => {
                self.backlog.done(1);
                self.metrics.delivery(endpoint, "dead");
                tracing::error!(endpoint, event_id = %event.id, status, error, "delivery dead after its last attempt");
            }
            Settled::Disabled { also_dead } => {
                self.backlog.done(1 + also_dead);
                self.metrics.delivery(endpoint, "dead");
                tracing::error!(endpoint, event_id = %event.id, also_dead, "endpoint answered 410 Gone: disabled");
            }
        }
        if self.durable.is_some() {
            durable::settled(self, &lane, &event.id, durable_attempt, settled, ctx);
        }
        self.update_depth();
        self.pump(ctx);
    }
}

impl Actor for DeliveryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(DEFAULT_DELIVERY_MAILBOX);
        self.update_depth();
        durable::claim(self, ctx);
    }
}

impl Handler<Enqueue> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Self::Context) {
        let now = Instant::now();
        for event in msg.0 {
            let body = self.render(&event);
            if self.queue.push(event.clone(), body, now) {
                self.backlog.add(1);
            } else {
                self.metrics.delivery(&self.spec.name, "dead");
                tracing::warn!(endpoint = &*self.spec.name, event_id = %event.id, "endpoint disabled (410 Gone): event marked dead");
            }
        }
        self.update_depth();
        self.pump(ctx);
    }
}

impl Handler<ClaimDue> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _msg: ClaimDue, ctx: &mut Self::Context) {
        durable::claim(self, ctx);
    }
}

/// One attempt: skip if already delivered, else POST, classify the answer, and record the
/// dedup key on success. Returns the attempt (None when nothing was sent) and its result.
async fn attempt(
    client: awc::Client,
    spec: Arc<EndpointSpec>,
    dedup: Arc<dyn DeliveryDedup>,
    delivery: Delivery,
) -> (Option<Attempt>, AttemptResult, Arc<Event>) {
    let event = delivery.event.clone();
    match dedup.is_delivered(&spec.name, &event.id).await {
        Ok(true) => return (None, AttemptResult::AlreadyDelivered, event),
        Ok(false) => {}
        Err(e) => {
            // Without the dedup key we cannot promise "once": retry later instead of risking a
            // second delivery.
            let att = Attempt {
                at: Utc::now(),
                status: None,
                duration_ms: 0,
                error: Some(format!("dedup check failed: {e}")),
                response: String::new(),
            };
            return (Some(att), AttemptResult::Retry { retry_after: None }, event);
        }
    }
    let at = Utc::now();
    let started = std::time::Instant::now();
    let ts = at.timestamp();
    let mut req = client
        .post(&spec.url)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header(("webhook-id", event.id.as_str()))
        .insert_header(("webhook-timestamp", ts.to_string()))
        .insert_header(("X-Webhook-Event", event.kind.as_str()));
    if let Some(key) = &spec.signing_key {
        let (sw, hex) = webhook::signatures(key.bytes(), &event.id, ts, &delivery.body);
        req = req
            .insert_header(("webhook-signature", sw))
            .insert_header(("X-Webhook-Signature", hex));
    }
    for (k, v) in &spec.headers {
        req = req.insert_header((k.clone(), v.clone()));
    }
    let sent = req.send_body(delivery.body.clone()).await;
    let (status, error, response, retry_after) = match sent {
        Ok(mut resp) => {
            let status = resp.status();
            let retry_after = retry_after(resp.headers());
            let remaining = spec.timeout.saturating_sub(started.elapsed());
            let mut captured = Vec::new();
            let _ = tokio::time::timeout(remaining, async {
                while let Some(chunk) = resp.next().await {
                    let Ok(chunk) = chunk else { break };
                    let room = DEFAULT_RESPONSE_CAPTURE_BYTES - captured.len();
                    captured.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if captured.len() >= DEFAULT_RESPONSE_CAPTURE_BYTES {
                        break;
                    }
                }
            })
            .await;
            (
                Some(status),
                None,
                String::from_utf8_lossy(&captured).into_owned(),
                retry_after,
            )
        }
        Err(e) => (None, Some(e.to_string()), String::new(), None),
    };
    let att = Attempt {
        at,
        status: status.map(|s| s.as_u16()),
        duration_ms: started.elapsed().as_millis() as u64,
        error: error.or_else(|| {
            status
                .filter(|s| !s.is_success())
                .map(|s| format!("HTTP {}", s.as_u16()))
        }),
        response,
    };
    let result = match status {
        Some(s) if s.is_success() => {
            if let Err(e) = dedup.mark_delivered(&spec.name, &event.id).await {
                tracing::warn!(endpoint = &*spec.name, event_id = %event.id, error = %e, "delivered, but the dedup key could not be stored");
            }
            AttemptResult::Success
        }
        Some(s) if s.as_u16() == 410 => AttemptResult::Gone,
        _ => AttemptResult::Retry { retry_after },
    };
    (Some(att), result, event)
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (when.to_utc() - Utc::now()).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = (Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        h.insert(header::RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
