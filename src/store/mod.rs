//! The state backends: one set of traits, several implementations (`memory`; `file`, the
//! memory store journaled to local files; and `redis`).
//! The incident actor and the delivery actors only see these traits.
//!
//! - [`IncidentStore`]: incidents by (source, dedup key) and their transitions.
//! - [`DeliveryQueueStore`]: the delivery queue: the deliveries a recording produced, in
//!   lanes per incident, claimed under leases by the delivery actors and settled with their
//!   results (memory: plain data under a lock; redis: Lua scripts, shared by instances).
//! - [`groups::Groups`]: notification groups (grouped routes) and their changed members.
//! - [`documents::Documents`]: small durable documents by collection and key (silences,
//!   held incidents, inhibition sources).
//! - [`timers::Timers`]: durable timers (a key, a due time, a payload), claimed under leases
//!   so that one instance fires each.

pub mod backlog;
pub mod documents;
pub mod file;
pub mod groups;
pub mod leases;
pub mod memory;
pub mod query;
pub mod redis;
pub mod refs;
pub mod request_ids;
pub mod sharded;
pub mod timers;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::model::delivery::{Attempt, DeliveryState, Settlement};
use crate::model::transition::{self, Outcome};
use crate::model::{Alert, Event, Incident};
use leases::LeaseOffer;

/// A store that could not do what was asked; nothing was changed.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    /// The store cannot be reached or failed (ingest answers 503: try again). The text is
    /// for the log, not for callers: it may name the store's internals.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store cannot keep this input, now or later (ingest answers 400 to the request
    /// that carried it, and records the other requests of its group on their own).
    #[error("{0}")]
    Rejected(String),
}

/// What recording one alert did.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub outcome: Outcome,
    pub incident_id: Option<String>,
    /// The event it emitted, if any (shared with the router and the delivery queues).
    pub event: Option<Arc<Event>>,
    /// The endpoints the event goes to (routed once, when it was recorded).
    pub endpoints: Vec<Arc<str>>,
}

/// What one record call did.
#[derive(Debug, Default)]
pub struct Recording {
    /// What each alert did, in order.
    pub recorded: Vec<Recorded>,
    /// Heads of new lanes leased to this instance at record, by endpoint (see [`LeaseOffer`]).
    pub leased: Vec<(Arc<str>, Claimed)>,
    /// Endpoints that got a new lane due for a claim (no room to lease it here).
    pub due: Vec<Arc<str>>,
    /// The store's count of unfinished deliveries after the call, when it writes them
    /// (shared by every instance).
    pub pending: Option<usize>,
}

/// Incidents by (source name, dedup key).
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Applies the alerts in order, each atomically (the transition table of
    /// `model::transition`), routes each event with `routes` (once) and, in a store with a
    /// delivery queue, writes its deliveries in the same step, leasing new lanes within
    /// `offer`. Either every alert is recorded or, on error, none is (and nothing is leased).
    /// Durable once [`IncidentStore::persist`] answers.
    async fn record(
        &self,
        alerts: &[Alert],
        now: DateTime<Utc>,
        routes: &dyn Routing,
        offer: &mut LeaseOffer,
    ) -> Result<Recording, StoreError>;

    /// Answers once every change made through this store so far survives a power loss. The
    /// ingest calls it last before answering, so one sync covers a record call and the group
    /// joins and timers that follow from it: `record`'s changes may be durable only then
    /// (the file store appends them to its journal and syncs it here). The memory store has
    /// nothing to do; a redis store's calls are as durable as Redis keeps them when they
    /// return.
    async fn persist(&self) -> Result<(), StoreError>;

    /// Number of open (triggered or acknowledged) incidents.
    async fn open_count(&self) -> Result<usize, StoreError>;

    /// Answers when the store is reachable (`/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// How many `record` calls the incident actor may run at once, for groups of alerts that
    /// share no incident (groups that share one are always recorded one after the other).
    /// 1: one call at a time, for a store whose calls do not wait on anything.
    fn concurrent_groups(&self) -> usize {
        1
    }
}

/// Picks the endpoints of an event (the router's route table): a store that writes each
/// event's deliveries in the same step as the event asks it once per event.
pub trait Routing: Send + Sync {
    /// The names of the endpoints `event` goes to, each once.
    fn endpoints_of(&self, event: &Event) -> Vec<Arc<str>>;
}

/// One delivery taken from a durable queue: the head of one incident's lane at one endpoint,
/// leased to this instance until it is settled or the lease runs out.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery's id (`dlv_...`), the same across restarts and instances.
    pub delivery_id: String,
    /// The lane: the incident id. One head per lane is out at a time, across all instances.
    pub lane: Arc<str>,
    /// Shared with the queue that sends it (and, for a head leased at record, with the batch
    /// that recorded it): never copied.
    pub event: Arc<Event>,
    /// The attempts made so far (by any instance), oldest first; when settled, every attempt
    /// so far, the one just made included.
    pub attempts: Vec<Attempt>,
    /// Proves the lease when settling; a settle with an outdated lease changes nothing.
    pub lease: String,
    /// A replay (made by the admin API): its latency is not its event's.
    pub replay: bool,
}

/// What one claim brought.
#[derive(Debug, Clone, Default)]
pub struct Claim {
    pub deliveries: Vec<Claimed>,
    /// The endpoint answered 410 once (on any instance): deliveries are settled dead.
    pub disabled: bool,
    /// When the next lane falls due (a retry, or a lease running out), if any waits.
    pub next_due_in: Option<Duration>,
    /// The endpoint's unfinished deliveries, across every instance.
    pub depth: usize,
    /// Due heads found delivered already (their dedup key exists): finished without a request.
    pub duplicates: usize,
    /// The store's count of unfinished deliveries (every endpoint's, every instance's).
    pub pending: usize,
}

/// A queue after a settle call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStatus {
    /// When a lane of the endpoint can be claimed next (its head falls due, or its lease
    /// runs out): zero: now, so the caller claims again at once; None: no lane waits.
    pub next_claimable_in: Option<Duration>,
    /// The store's count of unfinished deliveries (every endpoint's, every instance's).
    pub pending: usize,
    /// The endpoint's unfinished deliveries (every instance's).
    pub depth: usize,
}

/// One delivery as a durable queue holds it (the admin delivery log).
#[derive(Debug, Clone)]
pub struct StoredDelivery {
    pub id: String,
    pub event: Event,
    /// Pending (never attempted, or leased right now), failed (waiting for its retry),
    /// delivered or dead.
    pub state: DeliveryState,
    /// Every attempt settled so far, by any instance, oldest first.
    pub attempts: Vec<Attempt>,
    /// For a replay: the delivery it repeats.
    pub replay_of: Option<String>,
    /// For a failed delivery waiting for its retry: when it is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// An endpoint's deliveries in a durable queue.
#[derive(Debug, Clone, Default)]
pub struct StoredDeliveries {
    /// Unfinished ones (lane by lane, in lane order), then finished ones, oldest first.
    pub deliveries: Vec<StoredDelivery>,
    /// The endpoint answered 410 (on any instance) and was not re-enabled by a replay since.
    pub disabled: bool,
}

/// A delivery queue shared by every instance and kept across restarts. Deliveries are written
/// by [`IncidentStore::record`] in the same atomic step as the transition that made their
/// event; delivery actors claim due lane heads, attempt them and settle them.
#[async_trait]
pub trait DeliveryQueueStore: Send + Sync {
    /// Leases up to `limit` due lane heads of `endpoint` for `lease`.
    async fn claim(
        &self,
        endpoint: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Claim, StoreError>;

    /// Records the attempts of claimed deliveries of `endpoint` (each [`Claimed`] with every
    /// attempt so far) and what follows each, releasing their leases, in one step, all or
    /// none (an error settles none); each is judged on its own (a stale lease or a retry of
    /// one changes nothing for the others).
    async fn settle_many(
        &self,
        endpoint: &str,
        settles: &[(Claimed, Settlement)],
    ) -> Result<QueueStatus, StoreError>;

    /// Every delivery of `endpoint` the store holds (whichever instance holds its lease, or
    /// none): the admin delivery log.
    async fn deliveries(&self, endpoint: &str) -> Result<StoredDeliveries, StoreError>;

    /// Queues finished (delivered or dead) deliveries' events again, in the order given, each
    /// as a new delivery at the tail of its incident's lane, sent even though its dedup key
    /// exists, and re-enables a disabled endpoint, in one step. Returns each one's new
    /// delivery id; None for an id no finished delivery has.
    async fn replay_many(
        &self,
        endpoint: &str,
        delivery_ids: &[String],
    ) -> Result<Vec<Option<String>>, StoreError>;

    /// [`Self::replay_many`] of one delivery.
    async fn replay(
        &self,
        endpoint: &str,
        delivery_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut ids = self
            .replay_many(endpoint, &[delivery_id.to_string()])
            .await?;
        Ok(ids.pop().flatten())
    }

    /// Queues `event`, made outside a record call (a group's notification, a
    /// `delivery.dead` notice), to each of
    /// `endpoints`: a delivery at the tail of lane `event.incident.id`, due now if the lane
    /// was idle (nothing is leased). Answers the store's count of unfinished deliveries.
    async fn enqueue(&self, event: Arc<Event>, endpoints: &[Arc<str>])
        -> Result<usize, StoreError>;

    /// How many claimed deliveries one endpoint's actor may have out at once. Each delivery
    /// answered 2xx whose result is not settled yet is sent again after a crash (by whoever
    /// takes its lane over), so a store that survives crashes keeps this small.
    fn concurrency(&self) -> usize;

    /// Whether the queue outlives this process (a stopping process leaves what it has not
    /// claimed to the next one instead of sending it first).
    fn is_durable(&self) -> bool;
}

/// The incident's next state, as [`decide_once`] hands it over.
pub(crate) enum Next {
    /// Leave the stored incident as it is.
    Unchanged,
    /// Store this (no event was emitted).
    Incident(Box<Incident>),
    /// Store the emitted event's incident (not copied out of it).
    InEvent,
}

impl Next {
    /// The incident to store, if any.
    pub(crate) fn get<'a>(&'a self, recorded: &'a Recorded) -> Option<&'a Incident> {
        match self {
            Next::Unchanged => None,
            Next::Incident(i) => Some(i),
            Next::InEvent => recorded.event.as_ref().map(|e| &e.incident),
        }
    }
}

/// Applies one alert to the stored incident: what it did, and the incident's next state to
/// store, without a second copy of the incident when it emits an event (the event carries
/// the next state). Shared by every backend so they apply exactly the same table.
pub(crate) fn decide_once(
    current: Option<&Incident>,
    alert: &Alert,
    now: DateTime<Utc>,
) -> (Recorded, Next) {
    let t = transition::apply(current, alert, now);
    let mut recorded = Recorded {
        outcome: t.outcome,
        incident_id: current.map(|i| i.id.clone()),
        event: None,
        endpoints: Vec::new(),
    };
    let Some(next) = t.next else {
        return (recorded, Next::Unchanged);
    };
    recorded.incident_id = Some(next.id.clone());
    let Some(kind) = t.outcome.event() else {
        return (recorded, Next::Incident(Box::new(next)));
    };
    recorded.event = Some(Arc::new(Event {
        id: Event::new_id(),
        kind,
        timestamp: now,
        source: alert.source.clone(),
        incident: next,
        changes: t.changes,
        group: None,
        notice: None,
    }));
    (recorded, Next::InEvent)
}
