//! `DeliveryActor`: one per endpoint. It owns the endpoint's queue, retry timers, rate
//! limiter, circuit breaker and HTTP client, and runs attempts concurrently across incidents
//! (one at a time per incident, so an incident's events arrive in order). The decisions live
//! in `queue`, `pacing` and `kinds`; this is the thin actor layer around them. It also answers
//! the admin API: the delivery log, replays, test pings and config reloads. With the redis
//! store the actor takes its work from the shared durable queue instead (`durable`).

mod durable;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::http::header::{self, HeaderMap};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::time::Instant;

use super::endpoint::EndpointSpec;
use super::kinds::{self, Exchange, OutboundRequest, Response, Transport};
use super::pacing::{CircuitBreaker, CircuitState, RateLimiter};
use super::queue::{Delivery, DeliveryQueue, ReplayError};
use super::{webhook, Backlog};
use crate::metrics::{EndpointMetrics, Metrics};
use crate::model::delivery::{Attempt, DeliveryState, Settlement, Verdict};
use crate::model::{Event, EventType, Incident, SourceRef};
use crate::store::leases::LeaseRooms;
use crate::store::refs::ExternalRefs;
use crate::store::{DeliveryDedup, DeliveryQueueStore, StoreError};

pub use durable::{DEFAULT_LEASE_MARGIN, DEFAULT_QUEUE_POLL_INTERVAL, DEFAULT_SETTLE_ATTEMPTS};

/// How many requests one endpoint has in flight at once (each for a different incident).
/// When reached, due deliveries wait in the queue until an attempt finishes.
pub const DEFAULT_ENDPOINT_CONCURRENCY: usize = 256;

/// How much of a response body is kept with an attempt (the delivery log).
pub const DEFAULT_RESPONSE_CAPTURE_BYTES: usize = 1024;

/// How much of a response body is read (to find a created Jira issue key or ServiceNow
/// `sys_id`); the rest is not read.
pub const DEFAULT_RESPONSE_READ_BYTES: usize = 64 * 1024;

/// Mailbox size of a delivery actor. Senders wait (backpressure) when it is full.
pub const DEFAULT_DELIVERY_MAILBOX: usize = 1024;

/// Hands events to the endpoint's queue. The sender has counted them in the backlog.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enqueue(pub Vec<Arc<Event>>);

/// One delivery, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub endpoint: String,
    pub event_id: String,
    pub event_type: &'static str,
    pub incident_id: String,
    pub state: DeliveryState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    pub attempts: Vec<Attempt>,
}

/// The delivery log of this endpoint (unfinished first, then finished, oldest first). With a
/// durable queue: the store's deliveries (every instance's), then any this instance holds
/// only in memory.
#[derive(Message)]
#[rtype(result = "Result<EndpointDeliveries, StoreError>")]
pub struct ListDeliveries;

/// An endpoint's deliveries and its pacing state.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointDeliveries {
    pub endpoint: String,
    pub circuit: CircuitState,
    pub disabled: bool,
    pub deliveries: Vec<DeliveryView>,
}

/// Sends a finished delivery's event again.
#[derive(Message)]
#[rtype(result = "Result<String, ReplayError>")]
pub struct Replay(pub String);

/// Sends a `ping` event now (outside the queue, rate limit and circuit) and reports.
#[derive(Message)]
#[rtype(result = "PingReport")]
pub struct Ping;

/// What a test ping got.
#[derive(Debug, Clone, Serialize)]
pub struct PingReport {
    pub endpoint: String,
    pub ok: bool,
    pub requests: usize,
    pub attempt: Attempt,
}

/// A new spec for this endpoint (config reload). Queued work is kept.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpdateSpec(pub Arc<EndpointSpec>);

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
    /// None with a durable queue: its claim checks the dedup keys and its settle writes them.
    dedup: Option<Arc<dyn DeliveryDedup>>,
    refs: Arc<dyn ExternalRefs>,
    queue: DeliveryQueue,
    limiter: Option<RateLimiter>,
    breaker: CircuitBreaker,
    /// Unfinished deliveries, for ingest's admission: counted here as this actor takes and
    /// finishes them, or with a durable queue, the store's count of every instance's.
    backlog: Arc<Backlog>,
    in_flight: usize,
    timer: Option<(Instant, SpawnHandle)>,
    /// This endpoint's series, looked up once.
    counters: EndpointMetrics,
    /// Set with the redis store: work is claimed from the shared durable queue.
    durable: Option<durable::Durable>,
    /// Where finished attempts report back. Each attempt runs as its own task (an actix
    /// context polls every future it holds on every wake-up, which costs O(in flight) per
    /// completion); the channel holds at most `DEFAULT_ENDPOINT_CONCURRENCY` results, since
    /// that many attempts run at once.
    finished: tokio::sync::mpsc::Sender<Finished>,
    finished_rx: Option<tokio::sync::mpsc::Receiver<Finished>>,
    /// The process is stopping (see [`Drain`]): no new work is claimed from a durable queue.
    draining: bool,
}

/// Attempts that finished since the actor last looked.
struct FinishedBatch(Vec<Finished>);

/// An attempt that has finished, on its way back to its actor.
struct Finished {
    lane: Arc<str>,
    attempt: Option<Attempt>,
    verdict: Verdict,
    event: Arc<Event>,
}

impl DeliveryActor {
    pub fn new(
        spec: Arc<EndpointSpec>,
        dedup: Arc<dyn DeliveryDedup>,
        refs: Arc<dyn ExternalRefs>,
        metrics: Arc<Metrics>,
        backlog: Arc<Backlog>,
    ) -> Self {
        let counters = metrics.endpoint(&spec.name);
        let (finished, finished_rx) = tokio::sync::mpsc::channel(DEFAULT_ENDPOINT_CONCURRENCY);
        DeliveryActor {
            finished,
            finished_rx: Some(finished_rx),
            queue: DeliveryQueue::new(spec.schedule.clone()),
            limiter: spec.rate_limit.map(|r| RateLimiter::new(r, Instant::now())),
            breaker: CircuitBreaker::new(spec.circuit),
            spec,
            client: None,
            dedup: Some(dedup),
            refs,
            backlog,
            in_flight: 0,
            draining: false,
            timer: None,
            counters,
            durable: None,
        }
    }

    /// Takes its work from `queue` (shared by every instance, kept across restarts): it claims
    /// due deliveries at start, on `ClaimDue`, after each settle and at each poll. `Enqueue`
    /// still delivers from memory (events that are not in the store).
    /// `leases`: where this instance's record calls find the actor's room for new lanes
    /// leased at record (None: every head is claimed).
    pub fn with_durable_queue(
        mut self,
        queue: Arc<dyn DeliveryQueueStore>,
        leases: Option<Arc<LeaseRooms>>,
    ) -> Self {
        self.durable = Some(durable::Durable::new(queue, leases));
        self.dedup = None;
        self
    }

    /// Counts deliveries taken in (`added`) and finished or handed back (`done`); with a
    /// durable queue, the store's count stands instead ([`Self::store_pending`]).
    fn count(&self, added: usize, done: usize) {
        if self.durable.is_none() {
            self.backlog.add(added);
            self.backlog.done(done);
        }
    }

    /// The store's count of unfinished deliveries, as its last answer gave it.
    fn store_pending(&self, pending: usize) {
        self.backlog.set(pending);
    }

    /// Unfinished deliveries: this queue's, or with a durable queue, the store's count.
    fn depth(&self) -> usize {
        self.durable
            .as_ref()
            .and_then(|d| d.depth)
            .unwrap_or_else(|| self.queue.pending())
    }

    fn client(&mut self) -> awc::Client {
        self.client
            .get_or_insert_with(|| {
                awc::Client::builder()
                    .connector(awc::Connector::new().limit(DEFAULT_ENDPOINT_CONCURRENCY))
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
        self.counters.queue_depth.set(self.depth() as i64);
        self.counters
            .circuit_open
            .set(i64::from(self.breaker.state() != CircuitState::Closed));
    }

    /// Starts every due attempt the concurrency limit, the rate limit and the circuit allow,
    /// and arms the timer for the next retry, token or probe.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        durable::unpark(self);
        let now = Instant::now();
        let mut room = DEFAULT_ENDPOINT_CONCURRENCY.saturating_sub(self.in_flight);
        room = room.min(self.breaker.allowance(now));
        if let Some(l) = &mut self.limiter {
            room = room.min(l.available(now));
        }
        if room > 0 {
            let batch = self.queue.take_ready(now, room);
            self.breaker.started(batch.len());
            if let Some(l) = &mut self.limiter {
                l.take(batch.len(), now);
            }
            for (lane, delivery) in batch {
                self.in_flight += 1;
                let fut = attempt(
                    self.client(),
                    self.spec.clone(),
                    self.dedup.clone(),
                    self.refs.clone(),
                    delivery,
                );
                let finished = self.finished.clone();
                actix_rt::spawn(async move {
                    let (attempt, verdict, event) = fut.await;
                    // Never waits: at most DEFAULT_ENDPOINT_CONCURRENCY attempts run at once.
                    let _ = finished
                        .send(Finished {
                            lane,
                            attempt,
                            verdict,
                            event,
                        })
                        .await;
                });
            }
        }
        self.arm_timer(ctx);
        durable::publish_room(self);
    }

    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let mut next = self.queue.next_wakeup();
        if self.queue.has_ready() && self.in_flight < DEFAULT_ENDPOINT_CONCURRENCY {
            // Something is due but held back: wake when the circuit probes or a token comes.
            let held = match self.breaker.reopens_at() {
                Some(at) => Some(at),
                None => match (&mut self.limiter, self.breaker.state()) {
                    (Some(l), CircuitState::Closed) => Some(l.next_token_at(now)),
                    _ => None,
                },
            };
            next = match (next, held) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let Some(at) = next else {
            return;
        };
        if let Some((armed_at, handle)) = self.timer {
            if armed_at <= at {
                return;
            }
            ctx.cancel_future(handle);
        }
        let wait = at.saturating_duration_since(now);
        let handle = ctx.run_later(wait, |act, ctx| {
            act.timer = None;
            act.pump(ctx);
        });
        self.timer = Some((at, handle));
    }

    /// Settles one finished attempt (the caller pumps once it has settled its batch).
    fn settle(
        &mut self,
        lane: Arc<str>,
        attempt: Option<Attempt>,
        verdict: Verdict,
        event: Arc<Event>,
        ctx: &mut Context<Self>,
    ) {
        let status = attempt.as_ref().and_then(|a| a.status);
        let error = attempt.as_ref().and_then(|a| a.error.clone());
        if let Some(a) = &attempt {
            self.counters
                .duration
                .observe(a.duration_ms as f64 / 1000.0);
        }
        let endpoint = &*self.spec.name;
        // The circuit counts what the service did: failures to reach it or non-2xx answers.
        match &verdict {
            Verdict::Success => {
                self.breaker.record(true, Instant::now());
            }
            Verdict::Retry { .. }
                if attempt.is_some() && self.breaker.record(false, Instant::now()) =>
            {
                tracing::warn!(
                    endpoint,
                    "circuit opened after repeated failures; attempts paused"
                );
            }
            // Nothing learnt about the service (or a failure that did not open the circuit):
            // a half-open circuit may probe again.
            _ => self.breaker.release(),
        }
        let durable_attempt = if self.durable.is_some() {
            attempt.clone()
        } else {
            None
        };
        let duplicate = verdict == Verdict::Duplicate;
        let before = self.queue.pending();
        let settlement = self.queue.settle(&lane, attempt, verdict, Instant::now());
        match settlement {
            Settlement::Delivered if duplicate => {
                self.count(0, 1);
                self.counters.duplicate.inc();
                tracing::info!(endpoint, event_id = %event.id, "already delivered; not sent again");
            }
            Settlement::Delivered => {
                self.count(0, 1);
                self.counters.delivered.inc();
                let latency = (Utc::now() - event.timestamp)
                    .num_microseconds()
                    .unwrap_or(0);
                self.counters.latency.observe(latency.max(0) as f64 / 1e6);
                tracing::debug!(endpoint, event_id = %event.id, event_type = %event.kind, "delivered");
            }
            Settlement::Retry(wait) => {
                self.counters.failed.inc();
                tracing::warn!(endpoint, event_id = %event.id, status, error, retry_in_ms = wait.as_millis() as u64, "delivery failed; will retry");
            }
            Settlement::Dead | Settlement::Release => {
                self.count(0, 1);
                self.counters.dead.inc();
                tracing::error!(endpoint, event_id = %event.id, status, error, "delivery dead");
            }
            Settlement::Gone => {
                // Every other queued delivery died with it.
                let also_dead = before.saturating_sub(1);
                self.count(0, before);
                self.counters.dead.inc();
                tracing::error!(endpoint, event_id = %event.id, also_dead, "endpoint answered 410 Gone: disabled");
            }
        }
        if self.durable.is_some() {
            durable::settled(self, &lane, &event.id, durable_attempt, settlement, ctx);
        }
    }
}

impl StreamHandler<FinishedBatch> for DeliveryActor {
    fn handle(&mut self, batch: FinishedBatch, ctx: &mut Self::Context) {
        for f in batch.0 {
            self.in_flight -= 1;
            self.settle(f.lane, f.attempt, f.verdict, f.event, ctx);
        }
        // Once for the whole batch: every slot it freed is filled in one pass.
        self.update_depth();
        self.pump(ctx);
    }

    /// The actor holds a sender, so the stream ends only when the actor is gone.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

impl StreamHandler<durable::LeasedAtRecord> for DeliveryActor {
    fn handle(&mut self, heads: durable::LeasedAtRecord, ctx: &mut Self::Context) {
        durable::take_leased(self, heads.0, ctx);
    }

    /// The store holds the sender; the actor goes on claiming without it.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

impl Actor for DeliveryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(DEFAULT_DELIVERY_MAILBOX);
        if let Some(rx) = self.finished_rx.take() {
            // Every finished attempt waiting at a wake-up is handled in that one poll (actix
            // handles 16 stream items per poll, then waits its turn behind every other task).
            ctx.add_stream(futures_util::stream::unfold(rx, |mut rx| async move {
                let mut batch = Vec::new();
                let n = rx.recv_many(&mut batch, DEFAULT_ENDPOINT_CONCURRENCY).await;
                (n > 0).then_some((FinishedBatch(batch), rx))
            }));
        }
        self.update_depth();
        durable::start_record_leases(self, ctx);
        durable::claim(self, ctx);
    }
}

impl Handler<Enqueue> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Self::Context) {
        let now = Instant::now();
        for event in msg.0 {
            // The router counted this delivery in the backlog when it queued it.
            if !self.queue.push(event.clone(), now) {
                self.count(0, 1);
                self.counters.dead.inc();
                tracing::warn!(endpoint = &*self.spec.name, event_id = %event.id, "endpoint disabled (410 Gone): event marked dead");
            }
        }
        self.update_depth();
        self.pump(ctx);
    }
}

/// The process is stopping: from now on claim nothing new from a durable queue (what this
/// process holds is finished; the rest stays in the store for the next start), keep sending
/// what a memory queue holds. Answers what is still unfinished here; the caller asks again
/// until nothing is, or its grace period runs out.
#[derive(Message)]
#[rtype(result = "DrainState")]
pub struct Drain;

/// What a delivery actor still has to finish before the process can stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainState {
    /// Attempts sent and not answered yet.
    pub in_flight: usize,
    /// Answers not yet written to the durable queue.
    pub unsettled: usize,
    /// Deliveries waiting here (memory queue: lost if the process stops now; durable queue:
    /// heads leased to this process, claimed by the next one once their leases run out).
    pub queued: usize,
    /// The deliveries live in a durable queue.
    pub durable: bool,
}

impl DrainState {
    /// Whether stopping now loses or repeats nothing this actor holds.
    pub fn is_done(&self) -> bool {
        self.in_flight == 0 && self.unsettled == 0 && (self.durable || self.queued == 0)
    }
}

impl Handler<Drain> for DeliveryActor {
    type Result = MessageResult<Drain>;

    fn handle(&mut self, _msg: Drain, _ctx: &mut Self::Context) -> Self::Result {
        self.draining = true;
        let (unsettled, held) = self
            .durable
            .as_ref()
            .map(|d| d.unsettled())
            .unwrap_or((0, 0));
        MessageResult(DrainState {
            in_flight: self.in_flight,
            unsettled,
            queued: if self.durable.is_some() {
                held
            } else {
                self.queue.pending()
            },
            durable: self.durable.is_some(),
        })
    }
}

impl Handler<ClaimDue> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _msg: ClaimDue, ctx: &mut Self::Context) {
        if durable::claim_due_needed(self) {
            durable::claim(self, ctx);
        }
    }
}

fn view(endpoint: &str, d: &Delivery) -> DeliveryView {
    DeliveryView {
        id: d.id.clone(),
        endpoint: endpoint.to_string(),
        event_id: d.event.id.clone(),
        event_type: d.event.kind.as_str(),
        incident_id: d.event.incident.id.clone(),
        state: d.state,
        replay_of: d.replay_of.clone(),
        attempts: d.attempts.clone(),
    }
}

impl Handler<ListDeliveries> for DeliveryActor {
    type Result = ResponseActFuture<Self, Result<EndpointDeliveries, StoreError>>;

    fn handle(&mut self, _: ListDeliveries, _: &mut Self::Context) -> Self::Result {
        let Some(store) = self.durable.as_ref().map(|d| d.store()) else {
            let list = EndpointDeliveries {
                endpoint: self.spec.name.to_string(),
                circuit: self.breaker.state(),
                disabled: self.queue.is_disabled(),
                deliveries: self.queue.all().map(|d| view(&self.spec.name, d)).collect(),
            };
            return Box::pin(actix::fut::ready(Ok(list)));
        };
        let endpoint = self.spec.name.clone();
        Box::pin(
            async move { store.deliveries(&endpoint).await }
                .into_actor(self)
                .map(|res, act, _| {
                    let stored = res?;
                    Ok(durable::merged_view(act, stored))
                }),
        )
    }
}

impl Handler<Replay> for DeliveryActor {
    type Result = ResponseActFuture<Self, Result<String, ReplayError>>;

    fn handle(&mut self, msg: Replay, ctx: &mut Self::Context) -> Self::Result {
        let Some(store) = self.durable.as_ref().map(|d| d.store()) else {
            return Box::pin(actix::fut::ready(self.replay_in_memory(&msg.0, ctx)));
        };
        // Durable: the replay is written into the store's queue, so any instance delivers
        // it and it survives a restart. A delivery only this instance knows (enqueued from
        // memory) is replayed from memory.
        let endpoint = self.spec.name.clone();
        let old = msg.0.clone();
        Box::pin(
            async move { store.replay(&endpoint, &old).await }
                .into_actor(self)
                .map(move |res, act, ctx| match res {
                    Ok(Some(id)) => {
                        act.queue.enable();
                        tracing::info!(endpoint = &*act.spec.name, delivery = %msg.0, replay = %id, "replay queued in the store");
                        durable::claim(act, ctx);
                        Ok(id)
                    }
                    Ok(None) => act.replay_in_memory(&msg.0, ctx),
                    Err(e) => Err(ReplayError::Unavailable(e.to_string())),
                }),
        )
    }
}

impl DeliveryActor {
    fn replay_in_memory(
        &mut self,
        delivery_id: &str,
        ctx: &mut Context<Self>,
    ) -> Result<String, ReplayError> {
        let id = self.queue.replay(delivery_id, Instant::now())?;
        self.count(1, 0);
        tracing::info!(endpoint = &*self.spec.name, delivery = %delivery_id, replay = %id, "replay queued");
        self.update_depth();
        self.pump(ctx);
        Ok(id)
    }
}

impl Handler<UpdateSpec> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, msg: UpdateSpec, ctx: &mut Self::Context) {
        let spec = msg.0;
        self.queue.set_schedule(spec.schedule.clone());
        if spec.rate_limit != self.spec.rate_limit {
            self.limiter = spec.rate_limit.map(|r| RateLimiter::new(r, Instant::now()));
        }
        if spec.circuit != self.spec.circuit {
            self.breaker = CircuitBreaker::new(spec.circuit);
        }
        self.client = None;
        self.spec = spec;
        durable::spec_changed(self);
        self.pump(ctx);
    }
}

/// The event a test ping sends: an info-level test incident of its own.
pub fn ping_event() -> Event {
    let now = Utc::now();
    let id = uuid::Uuid::now_v7().simple().to_string();
    Event {
        id: Event::new_id(),
        kind: EventType::Ping,
        timestamp: now,
        source: SourceRef {
            name: "switchyard".into(),
            kind: "ping".into(),
        },
        incident: Incident::bare(
            format!("inc_ping_{id}"),
            format!("switchyard-ping-{id}"),
            "switchyard test event".into(),
            "A test event sent by the switchyard admin API; no action needed.".into(),
            now,
        ),
        changes: None,
    }
}

impl Handler<Ping> for DeliveryActor {
    type Result = ResponseFuture<PingReport>;

    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> Self::Result {
        let client = self.client();
        let spec = self.spec.clone();
        let refs = self.refs.clone();
        Box::pin(async move {
            let event = ping_event();
            let body = Bytes::from(webhook::body(&event));
            let (attempt, outcome) = send_event(client, &spec, refs.as_ref(), &event, &body).await;
            tracing::info!(
                endpoint = &*spec.name,
                ok = outcome.verdict == Verdict::Success,
                status = attempt.status,
                "test ping sent"
            );
            PingReport {
                endpoint: spec.name.to_string(),
                ok: outcome.verdict == Verdict::Success,
                requests: outcome.requests,
                attempt,
            }
        })
    }
}

/// awc as a [`Transport`]: the endpoint's time limit covers the request and reading up to
/// `DEFAULT_RESPONSE_READ_BYTES` of the answer.
struct AwcTransport {
    client: awc::Client,
    timeout: Duration,
}

#[async_trait(?Send)]
impl Transport for AwcTransport {
    async fn send(&self, req: OutboundRequest) -> Result<Response, String> {
        let started = std::time::Instant::now();
        let mut r = self.client.request(req.method, &req.url);
        let mut has_type = false;
        for (k, v) in req.headers {
            has_type |= k == header::CONTENT_TYPE;
            r = r.insert_header((k, v));
        }
        let sent = match req.body {
            Some(body) => {
                if !has_type {
                    r = r.insert_header((header::CONTENT_TYPE, "application/json"));
                }
                r.send_body(body).await
            }
            None => r.send().await,
        };
        let mut resp = sent.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let remaining = self.timeout.saturating_sub(started.elapsed());
        let mut captured = Vec::new();
        let _ = tokio::time::timeout(remaining, async {
            while let Some(chunk) = resp.next().await {
                let Ok(chunk) = chunk else { break };
                let room = DEFAULT_RESPONSE_READ_BYTES - captured.len();
                captured.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if captured.len() >= DEFAULT_RESPONSE_READ_BYTES {
                    break;
                }
            }
        })
        .await;
        Ok(Response {
            status,
            retry_after,
            body: Bytes::from(captured),
        })
    }
}

/// Sends one event as the endpoint's kind does; returns the attempt record and the outcome.
async fn send_event(
    client: awc::Client,
    spec: &EndpointSpec,
    refs: &dyn ExternalRefs,
    event: &Event,
    webhook_body: &Bytes,
) -> (Attempt, Exchange) {
    let at = Utc::now();
    let started = std::time::Instant::now();
    let transport = AwcTransport {
        client,
        timeout: spec.timeout,
    };
    let outcome = kinds::deliver(kinds::Job {
        spec,
        event,
        webhook_body,
        refs,
        transport: &transport,
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

/// One attempt: skip if already delivered, else send as the kind does, classify the answer,
/// and record the dedup key on success. Returns the attempt (None when nothing was sent) and
/// its result.
async fn attempt(
    client: awc::Client,
    spec: Arc<EndpointSpec>,
    dedup: Option<Arc<dyn DeliveryDedup>>,
    refs: Arc<dyn ExternalRefs>,
    delivery: Delivery,
) -> (Option<Attempt>, Verdict, Arc<Event>) {
    let event = delivery.event.clone();
    if let (Some(dedup), None) = (&dedup, &delivery.replay_of) {
        match dedup.is_delivered(&spec.name, &event.id).await {
            Ok(true) => return (None, Verdict::Duplicate, event),
            Ok(false) => {}
            Err(e) => {
                // Without the dedup key we cannot promise "once": retry later instead of
                // risking a second delivery.
                let att = Attempt {
                    at: Utc::now(),
                    status: None,
                    duration_ms: 0,
                    error: Some(format!("dedup check failed: {e}")),
                    response: String::new(),
                };
                return (Some(att), Verdict::Retry { retry_after: None }, event);
            }
        }
    }
    // Rendered at each attempt rather than kept with the delivery: the body is a pure
    // function of the event (the same bytes every time), and a queue or log of events alone
    // takes half the memory.
    let body = Bytes::from(webhook::body(&event));
    let (att, outcome) = send_event(client, &spec, refs.as_ref(), &event, &body).await;
    if let (Verdict::Success, Some(dedup)) = (&outcome.verdict, &dedup) {
        if let Err(e) = dedup.mark_delivered(&spec.name, &event.id).await {
            tracing::warn!(endpoint = &*spec.name, event_id = %event.id, error = %e, "delivered, but the dedup key could not be stored");
        }
    }
    (Some(att), outcome.verdict, event)
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
