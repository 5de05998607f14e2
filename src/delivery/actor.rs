//! `DeliveryActor`: one per endpoint, the same for every store. It claims the endpoint's due
//! deliveries from the store's queue ([`DeliveryQueueStore`]) under a lease, holds them until
//! its concurrency, rate limit and circuit let them start (one at a time per incident, so an
//! incident's events arrive in order: `heads`), sends them (`attempt`), decides what follows
//! each (`retry`: the retry schedule and `Retry-After`) and settles the results back into the
//! store in batches. `claim` is how work comes in, `settle` how results go out. It also answers the admin API: the delivery log, replays,
//! test pings and config reloads.

mod admin;
mod claim;
mod heads;
mod held;
mod notices;
mod settle;

use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use actix_web::http::header;
use chrono::Utc;
use serde::Serialize;
use tokio::time::Instant;

use super::attempt::{self};
use super::endpoint::EndpointSpec;
use super::kinds::Transport;
use super::pacing::{CircuitBreaker, CircuitState, RateLimiter};
use super::policy::PolicyResolver;
use super::transport::AwcTransport;
use super::{retry, Backlog};
use crate::metrics::{EndpointMetrics, Metrics};
use crate::model::delivery::{Attempt, DeliveryState, Settlement, Verdict};
use crate::model::Event;
use crate::store::leases::LeaseRooms;
use crate::store::refs::ExternalRefs;
use crate::store::{DeliveryQueueStore, StoreError};

pub use claim::{DEFAULT_LEASE_MARGIN, DEFAULT_QUEUE_POLL_INTERVAL};
pub use settle::DEFAULT_SETTLE_ATTEMPTS;

/// The most requests one endpoint has in flight at once (each for a different incident),
/// whatever its store allows ([`DeliveryQueueStore::concurrency`]).
pub const DEFAULT_ENDPOINT_CONCURRENCY: usize = 256;

/// Mailbox size of a delivery actor. Senders wait (backpressure) when it is full.
pub const DEFAULT_DELIVERY_MAILBOX: usize = 1024;

/// One delivery, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub endpoint: String,
    pub event_id: String,
    pub event_type: &'static str,
    /// When the event happened.
    pub event_at: chrono::DateTime<chrono::Utc>,
    pub incident_id: String,
    pub state: DeliveryState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    pub attempts: Vec<Attempt>,
    /// A failed delivery's next attempt, when it waits for its retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The delivery log of this endpoint (unfinished first, then finished, oldest first): the
/// store's deliveries (with the redis store, every instance's).
#[derive(Message)]
#[rtype(result = "Result<EndpointDeliveries, StoreError>")]
pub struct ListDeliveries;

/// An endpoint's deliveries and its pacing state.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointDeliveries {
    pub endpoint: String,
    pub circuit: CircuitState,
    pub disabled: bool,
    /// The last ping's report (`ping_on_load`, or a test ping), if any.
    pub last_ping: Option<PingReport>,
    pub deliveries: Vec<DeliveryView>,
}

/// Why a delivery could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("no finished (delivered or dead) delivery with this id")]
    NotFound,
    /// The store's queue could not be read or written.
    #[error("{0}")]
    Unavailable(String),
}

/// Sends a finished delivery's event again.
#[derive(Message)]
#[rtype(result = "Result<String, ReplayError>")]
pub struct Replay(pub String);

/// Sends every dead delivery of this endpoint again (`recover::dead_to_recover`), in order;
/// answers the replays queued.
#[derive(Message)]
#[rtype(result = "Result<Vec<Recovered>, StoreError>")]
pub struct Recover {
    /// Only deliveries of events at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

/// One replay a recovery queued.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    pub replay_of: String,
    pub delivery_id: String,
}

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

/// Tells an actor that new work for its endpoint is in the store's queue (recorded by this
/// instance and not leased to it at record): it claims at once instead of at its next poll.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClaimDue;

/// One endpoint's delivery actor.
pub struct DeliveryActor {
    spec: Arc<EndpointSpec>,
    /// awc with the endpoint's settings (made when first needed), or a test's script.
    transport: Option<Rc<dyn Transport>>,
    /// The transport was given (a test): kept across spec changes.
    scripted: bool,
    refs: Arc<dyn ExternalRefs>,
    /// The lane heads this actor holds leases on, until their results are stored.
    heads: heads::Heads,
    limiter: Option<RateLimiter>,
    breaker: CircuitBreaker,
    /// Unfinished deliveries, for ingest's admission: the store's count, as its last answer
    /// gave it.
    backlog: Arc<Backlog>,
    in_flight: usize,
    timer: Option<(Instant, SpawnHandle)>,
    /// This endpoint's series, looked up once.
    counters: EndpointMetrics,
    /// The store's queue, and the lanes this actor holds leases on.
    claims: claim::Claims,
    /// Results on their way back to the store.
    settles: settle::Settles,
    /// Where finished attempts report back. Each attempt runs as its own task (an actix
    /// context polls every future it holds on every wake-up, which costs O(in flight) per
    /// completion); the channel holds at most `DEFAULT_ENDPOINT_CONCURRENCY` results, since
    /// that many attempts run at once.
    finished: tokio::sync::mpsc::Sender<Finished>,
    finished_rx: Option<tokio::sync::mpsc::Receiver<Finished>>,
    /// The process is stopping (see [`Drain`]): no new work is claimed from a durable queue.
    draining: bool,
    /// How long the endpoint has failed without a success (`disable_after`).
    failing: notices::FailingSince,
    /// The last ping's report.
    last_ping: Option<PingReport>,
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
    /// The actor of `spec`'s endpoint, taking its work from `queue`: it claims due
    /// deliveries at start, on `ClaimDue`, after each settle and at each poll. `leases`: where
    /// this instance's record calls find the actor's room for new lanes leased at record
    /// (None: every head is claimed).
    pub fn new(
        spec: Arc<EndpointSpec>,
        queue: Arc<dyn DeliveryQueueStore>,
        leases: Option<Arc<LeaseRooms>>,
        refs: Arc<dyn ExternalRefs>,
        metrics: Arc<Metrics>,
        backlog: Arc<Backlog>,
    ) -> Self {
        let counters = metrics.endpoint(&spec.name);
        let (finished, finished_rx) = tokio::sync::mpsc::channel(DEFAULT_ENDPOINT_CONCURRENCY);
        DeliveryActor {
            finished,
            finished_rx: Some(finished_rx),
            heads: heads::Heads::default(),
            limiter: spec.rate_limit.map(|r| RateLimiter::new(r, Instant::now())),
            breaker: CircuitBreaker::new(spec.circuit),
            spec,
            transport: None,
            scripted: false,
            refs,
            backlog,
            in_flight: 0,
            draining: false,
            timer: None,
            counters,
            claims: claim::Claims::new(queue, leases),
            settles: settle::Settles::default(),
            failing: notices::FailingSince::default(),
            last_ping: None,
        }
    }

    /// The store's count of unfinished deliveries, as its last answer gave it.
    fn store_pending(&self, pending: usize) {
        self.backlog.set(pending);
    }

    /// How many claimed deliveries may be out at once.
    fn concurrency(&self) -> usize {
        self.claims.concurrency().min(DEFAULT_ENDPOINT_CONCURRENCY)
    }

    /// The endpoint's unfinished deliveries, as of the last claim.
    fn depth(&self) -> usize {
        self.claims.depth.unwrap_or(0)
    }

    /// Sends its requests with `transport` instead of awc (tests: a scripted one).
    pub fn with_transport(mut self, transport: Rc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self.scripted = true;
        self
    }

    /// The transport: awc with the endpoint's settings, made once per spec.
    fn transport(&mut self) -> Rc<dyn Transport> {
        let timeout = self.spec.timeout;
        let policy = self.spec.policy;
        self.transport
            .get_or_insert_with(|| {
                // Every name is resolved by the policy's resolver: the address checked is the
                // address connected to.
                let tcp = actix_tls::connect::Connector::new(actix_tls::connect::Resolver::custom(
                    PolicyResolver(policy),
                ))
                .service();
                let client = awc::Client::builder()
                    .connector(
                        awc::Connector::new()
                            .connector(tcp)
                            .limit(DEFAULT_ENDPOINT_CONCURRENCY),
                    )
                    .disable_redirects()
                    .timeout(timeout)
                    .add_default_header((
                        header::USER_AGENT,
                        concat!("switchyard/", env!("CARGO_PKG_VERSION")),
                    ))
                    .finish();
                Rc::new(AwcTransport {
                    client,
                    timeout,
                    policy,
                })
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
        claim::unpark(self);
        let now = Instant::now();
        let mut room = self.concurrency().saturating_sub(self.in_flight);
        room = room.min(self.breaker.allowance(now));
        if let Some(l) = &mut self.limiter {
            room = room.min(l.available(now));
        }
        if room > 0 {
            let batch = self.heads.take_ready(room);
            self.breaker.started(batch.len());
            if let Some(l) = &mut self.limiter {
                l.take(batch.len(), now);
            }
            for (lane, delivery_id, event) in batch {
                self.in_flight += 1;
                let fut = attempt::attempt(
                    self.transport(),
                    self.spec.clone(),
                    self.refs.clone(),
                    delivery_id,
                    event,
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
        claim::publish_room(self);
    }

    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if !self.heads.has_ready() || self.in_flight >= self.concurrency() {
            return;
        }
        // Something is due but held back: wake when the circuit probes or a token comes.
        let next = match self.breaker.reopens_at() {
            Some(at) => Some(at),
            None => match (&mut self.limiter, self.breaker.state()) {
                (Some(l), CircuitState::Closed) => Some(l.next_token_at(now)),
                _ => None,
            },
        };
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
        let (verdict, persist) = self.failing.judge(
            verdict,
            attempt.is_some(),
            self.spec.disable_after,
            Utc::now(),
        );
        if let Some(p) = persist {
            notices::persist(self, p);
        }
        let status = attempt.as_ref().and_then(|a| a.status);
        let error = attempt.as_ref().and_then(|a| a.error.clone());
        if let Some(a) = &attempt {
            self.counters
                .duration
                .observe(a.duration_ms as f64 / 1000.0);
            self.counters
                .recent
                .record(verdict == Verdict::Success, a.duration_ms);
        }
        let endpoint = &*self.spec.name;
        // The circuit counts what the service did: failures to reach it or non-2xx answers.
        match &verdict {
            Verdict::Success => {
                let was = self.breaker.state();
                self.breaker.record(true, Instant::now());
                if was != CircuitState::Closed {
                    tracing::info!(endpoint, "circuit closed: the endpoint answers again");
                }
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
        let Some(mut claimed) = self.heads.finish(&lane, &event.id) else {
            // The lane's head is another one now (see `Heads::finish`): nothing to store.
            return;
        };
        claimed.attempts.extend(attempt);
        let duplicate = verdict == Verdict::Duplicate;
        let settlement = retry::decide(&self.spec.schedule, claimed.attempts.len(), verdict);
        match settlement {
            Settlement::Delivered if duplicate => {
                self.counters.duplicate.inc();
                tracing::info!(endpoint, event_id = %event.id, "already delivered; not sent again");
            }
            Settlement::Delivered => {
                self.counters.delivered.inc();
                // From the event to its delivery; a replay's would count from the original
                // event (hours or days), so replays are left out.
                if !claimed.replay {
                    let latency = (Utc::now() - event.timestamp)
                        .num_microseconds()
                        .unwrap_or(0);
                    self.counters.latency.observe(latency.max(0) as f64 / 1e6);
                }
                tracing::debug!(endpoint, event_id = %event.id, event_type = %event.kind, "delivered");
            }
            Settlement::Retry(wait) => {
                self.counters.failed.inc();
                tracing::warn!(endpoint, event_id = %event.id, status, error, retry_in_ms = wait.as_millis() as u64, "delivery failed; will retry");
            }
            Settlement::Dead | Settlement::Release => {
                self.counters.dead.inc();
                tracing::error!(endpoint, event_id = %event.id, status, error, "delivery dead");
            }
            Settlement::Gone => {
                // Every other delivery held here dies with it.
                let also_dead = self.heads.len() + self.claims.parked.len();
                self.counters.dead.inc();
                match self.failing.tripped() {
                    Some(d) => {
                        tracing::error!(endpoint, event_id = %event.id, also_dead, failing_for_s = d.as_secs(), "endpoint failing without a success for disable_after: disabled")
                    }
                    None => {
                        tracing::error!(endpoint, event_id = %event.id, also_dead, "endpoint answered 410 Gone: disabled")
                    }
                }
            }
        }
        settle::settled(self, claimed, settlement, ctx);
    }
}

impl StreamHandler<FinishedBatch> for DeliveryActor {
    fn handle(&mut self, batch: FinishedBatch, ctx: &mut Self::Context) {
        self.claims.finished.add(batch.0.len(), Instant::now());
        for f in batch.0 {
            self.in_flight -= 1;
            self.settle(f.lane, f.attempt, f.verdict, f.event, ctx);
        }
        // Once for the whole batch: every slot it freed is filled in one pass.
        self.update_depth();
        self.pump(ctx);
        claim::claim_if_waiting(self, ctx);
    }

    /// The actor holds a sender, so the stream ends only when the actor is gone.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

impl StreamHandler<claim::LeasedAtRecord> for DeliveryActor {
    fn handle(&mut self, heads: claim::LeasedAtRecord, ctx: &mut Self::Context) {
        claim::take_leased(self, heads.0, ctx);
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
        claim::start_record_leases(self, ctx);
        claim::claim(self, ctx);
        admin::ping_on_load(self, ctx);
        notices::load_failing(self, ctx);
    }
}

/// The process is stopping: from now on claim nothing new from a durable queue (what this
/// process holds is finished; the rest stays in the store for the next start), keep claiming
/// and sending from a memory queue. Answers what is still unfinished here; the caller asks
/// again until nothing is, or its grace period runs out.
#[derive(Message)]
#[rtype(result = "DrainState")]
pub struct Drain;

/// What a delivery actor still has to finish before the process can stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainState {
    /// Attempts sent and not answered yet.
    pub in_flight: usize,
    /// Answers not yet written to the queue.
    pub unsettled: usize,
    /// Deliveries still to finish (memory queue: the endpoint's unfinished ones, lost if the
    /// process stops now; durable queue: heads leased to this process, claimed by the next
    /// one once their leases run out).
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

    fn handle(&mut self, _msg: Drain, ctx: &mut Self::Context) -> Self::Result {
        self.draining = true;
        let durable = self.claims.is_durable();
        if !durable {
            // Keep delivering; the count of what is left comes with a claim (the next ask
            // sees it), also when pacing lets nothing be claimed now.
            claim::claim(self, ctx);
            claim::refresh_depth(self, ctx);
        }
        let (unsettled, held) = (
            self.settles.unwritten(),
            self.heads.len() + self.claims.parked.len(),
        );
        MessageResult(DrainState {
            in_flight: self.in_flight,
            unsettled,
            queued: if durable {
                held
            } else {
                self.depth().max(held)
            },
            durable,
        })
    }
}

impl Handler<ClaimDue> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _msg: ClaimDue, ctx: &mut Self::Context) {
        if claim::claim_due_needed(self) {
            claim::claim(self, ctx);
        }
    }
}

impl Handler<UpdateSpec> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, msg: UpdateSpec, ctx: &mut Self::Context) {
        let spec = msg.0;
        if spec.rate_limit != self.spec.rate_limit {
            self.limiter = spec.rate_limit.map(|r| RateLimiter::new(r, Instant::now()));
        }
        if spec.circuit != self.spec.circuit {
            self.breaker = CircuitBreaker::new(spec.circuit);
        }
        if !self.scripted {
            self.transport = None;
        }
        self.spec = spec;
        claim::spec_changed(self);
        self.pump(ctx);
    }
}

#[cfg(test)]
mod tests;
