//! `IncidentActor`: owns recording alerts into the incident store. It records groups of
//! requests (the requests that waited while earlier groups were recorded: one store call, one
//! Redis script, for all of them). Groups that share an incident are recorded one after the
//! other, so the events of an incident leave it in the order they were decided; a store that
//! gains from it (redis: a call is two round trips) records up to
//! [`IncidentStore::concurrent_groups`] groups at once when no incident is in two of them
//! ([`RecordSchedule`]). It hands each group's events to the router with the group's
//! answers, which the router gives once the events are queued for delivery.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::oneshot;

use crate::grouping::Grouper;
use crate::holding::Holding;
use crate::metrics::Metrics;
use crate::model::Event;
use crate::model::{Alert, AlertStatus, Incident, IncidentStatus};
use crate::router::actor::{AfterRouting, RouteEvents, RouterActor, SharedRoutes};
use crate::store::leases::LeaseRooms;
use crate::store::query::IncidentQuery;
use crate::store::timers::Timers;
use crate::store::{IncidentStore, Recorded, StoreError};

use super::expiry::Expiry;
use super::record::{record_requests, Recorder};

/// Mailbox size of the incident actor for callers that wait (the admin API's changes wait
/// when it is full). Adapters' `RecordAlerts` are bounded by the ingest permits instead: each
/// carries a request that holds one until it is answered.
pub const DEFAULT_INCIDENT_MAILBOX: usize = 1024;

/// Records alerts; answers with what each did once their events are queued for delivery.
/// Where the outcome of recording one request's alerts goes (called once).
pub type RecordReply = Box<dyn FnOnce(Result<Vec<Recorded>, RecordError>) + Send>;

/// Why a request's alerts were not recorded (or not all of them).
#[derive(Debug, Clone, Error)]
pub enum RecordError {
    /// Nothing of the request was recorded.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request larger than one store call ([`DEFAULT_RECORD_GROUP_ALERTS`]) is recorded in
    /// calls of that size, one after the other; this one failed part way. The alerts of the
    /// calls that succeeded are recorded and their events routed: sent again, they are
    /// repeats of incidents already notified (the transition table makes an alert applied
    /// twice a repeat), so a retry of the whole request notifies nothing twice.
    #[error(
        "{recorded} of {total} alerts were recorded before the store failed; send the \
         request again: the recorded ones are repeats and notify nothing twice"
    )]
    Partial {
        recorded: usize,
        total: usize,
        cause: StoreError,
    },
}

/// Records these alerts (one request's) and calls `reply` once their events are queued for
/// delivery, or with the store's error.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecordAlerts {
    pub alerts: Vec<Alert>,
    pub reply: RecordReply,
}

/// Most alerts recorded in one store call. Requests that arrive while a call runs wait and are
/// then recorded together (with redis: one script for all of them), up to this many alerts;
/// the rest wait for the next call. A larger request is recorded alone, in calls of this
/// size one after the other ([`RecordError::Partial`] says what a failure part way means). The waiting requests are bounded by ingest admission
/// (`server.max_inflight_requests`): each holds one permit until it is answered.
pub const DEFAULT_RECORD_GROUP_ALERTS: usize = 1024;

/// One request waiting to be recorded.
struct Waiting {
    alerts: Vec<Alert>,
    reply: RecordReply,
}

/// Which waiting requests are recorded next: whole requests in arrival order, in groups of up
/// to `max_alerts` alerts, at most `max_groups` groups at once, and never two groups at once
/// that share an incident (a request that would waits, and everything behind it, until the
/// group it shares one with is done: the store decides an incident's alerts in the order
/// they came).
struct RecordSchedule {
    waiting: VecDeque<Waiting>,
    /// The groups being recorded: their number and their incidents' fingerprints (empty when
    /// one group at a time: nothing to compare).
    in_flight: Vec<(u64, HashSet<u64>)>,
    /// The first waiting request shares an incident with a group in flight: nothing starts
    /// until a group finishes (requests arriving meanwhile change nothing, so the check is
    /// not made again for each of them).
    blocked: bool,
    next_id: u64,
    max_groups: usize,
    max_alerts: usize,
}

impl RecordSchedule {
    fn new(max_groups: usize, max_alerts: usize) -> RecordSchedule {
        RecordSchedule {
            waiting: VecDeque::new(),
            in_flight: Vec::new(),
            blocked: false,
            next_id: 0,
            max_groups: max_groups.max(1),
            max_alerts,
        }
    }

    /// The next group to record and its number (for [`RecordSchedule::finished`]), if one may
    /// start now.
    fn next_group(&mut self) -> Option<(u64, Vec<Waiting>)> {
        if self.blocked || self.in_flight.len() >= self.max_groups {
            return None;
        }
        let n = group_len(&self.waiting, self.max_alerts);
        if n == 0 {
            return None;
        }
        let mut keys = HashSet::new();
        if self.max_groups > 1 {
            keys.extend(
                self.waiting
                    .iter()
                    .take(n)
                    .flat_map(|w| w.alerts.iter().map(incident_fingerprint)),
            );
            if self.in_flight.iter().any(|(_, k)| !k.is_disjoint(&keys)) {
                self.blocked = true;
                return None;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight.push((id, keys));
        Some((id, self.waiting.drain(..n).collect()))
    }

    /// Group `id` is recorded and its events handed on.
    fn finished(&mut self, id: u64) {
        self.in_flight.retain(|(g, _)| *g != id);
        self.blocked = false;
    }
}

/// An alert's incident (its source and dedup key) as 64 bits. Two incidents with the same
/// fingerprint only make their groups wait for each other.
fn incident_fingerprint(alert: &Alert) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    alert.source.name.hash(&mut h);
    alert.dedup_key.hash(&mut h);
    h.finish()
}

pub struct IncidentActor {
    recorder: Arc<Recorder>,
    router: Addr<RouterActor>,
    schedule: RecordSchedule,
    query: Option<Arc<dyn IncidentQuery>>,
    /// The auto-resolve timers (see `incidents::expiry`), when they are on.
    timers: Option<Arc<dyn Timers>>,
}

/// The admin API acknowledges or resolves an incident: recorded as an alert of that status
/// from the incident's own source, so the same transition runs and the same event is routed.
#[derive(Message)]
#[rtype(result = "Result<Incident, ChangeError>")]
pub struct ChangeIncident {
    pub id: String,
    pub to: AlertStatus,
}

/// Why an admin change was not made.
#[derive(Debug, Error)]
pub enum ChangeError {
    #[error("no incident with id `{0}`")]
    NotFound(String),
    #[error("incident `{id}` is {status}; it cannot be {wanted}")]
    Conflict {
        id: String,
        status: &'static str,
        wanted: &'static str,
    },
    #[error("incident reads are not available with this store")]
    Unsupported,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// The alert that moves `incident` to `to` (acknowledged or resolved) through the transition
/// table, as if its source had sent it.
pub fn admin_alert(incident: &Incident, to: AlertStatus, now: DateTime<Utc>) -> Option<Alert> {
    let source = incident.source.clone()?;
    Some(Alert {
        dedup_key: incident.dedup_key.clone(),
        status: to,
        severity: incident.severity,
        title: incident.title.clone(),
        description: incident.description.clone(),
        labels: incident.labels.clone(),
        annotations: incident.annotations.clone(),
        links: incident.links.clone(),
        started_at: Some(incident.started_at),
        ended_at: (to == AlertStatus::Resolved).then_some(now),
        expires_at: None,
        source,
    })
}

impl IncidentActor {
    /// Records into `store`, routing each event with the table in `routes`, and hands the
    /// events to `router`.
    pub fn new(
        store: Arc<dyn IncidentStore>,
        routes: Arc<SharedRoutes>,
        router: Addr<RouterActor>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let schedule = RecordSchedule::new(store.concurrent_groups(), DEFAULT_RECORD_GROUP_ALERTS);
        IncidentActor {
            recorder: Arc::new(Recorder {
                store,
                routes,
                leases: None,
                metrics,
                grouper: None,
                holding: None,
                expiry: None,
            }),
            router,
            schedule,
            query: None,
            timers: None,
        }
    }

    /// Lets record calls lease new lanes to this instance's delivery actors (their room is
    /// in `leases`).
    pub fn with_lease_rooms(mut self, leases: Arc<LeaseRooms>) -> Self {
        if let Some(r) = Arc::get_mut(&mut self.recorder) {
            r.leases = Some(leases);
        }
        self
    }

    /// Adds incidents routed to grouped routes to their groups (`grouping`) after each record
    /// call, before its requests are answered.
    pub fn with_grouper(mut self, grouper: Arc<Grouper>) -> Self {
        if let Some(r) = Arc::get_mut(&mut self.recorder) {
            r.grouper = Some(grouper);
        }
        self
    }

    /// Holds the events a silence holds (`holding`): recorded, not delivered.
    pub fn with_holding(mut self, holding: Arc<Holding>) -> Self {
        if let Some(r) = Arc::get_mut(&mut self.recorder) {
            r.holding = Some(holding);
        }
        self
    }

    /// Enables admin changes (acknowledge, resolve), which read the incident first.
    pub fn with_query(mut self, query: Arc<dyn IncidentQuery>) -> Self {
        self.query = Some(query);
        self
    }

    /// Arms an auto-resolve timer for each recorded firing alert with an `expires_at`, and
    /// lets [`ExpireIncident`](super::expiry::ExpireIncident) resolve incidents (with
    /// [`with_query`](Self::with_query)).
    pub fn with_expiry(mut self, timers: Arc<dyn Timers>) -> Self {
        if let Some(r) = Arc::get_mut(&mut self.recorder) {
            r.expiry = Some(Expiry::new(timers.clone(), r.metrics.clone()));
        }
        self.timers = Some(timers);
        self
    }

    pub(super) fn query(&self) -> Option<Arc<dyn IncidentQuery>> {
        self.query.clone()
    }

    pub(super) fn timers(&self) -> Option<Arc<dyn Timers>> {
        self.timers.clone()
    }

    /// Starts every group the schedule allows: records its requests (up to
    /// [`DEFAULT_RECORD_GROUP_ALERTS`] alerts) in one store call, routes their events, then
    /// answers each request with its part.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        while let Some((id, group)) = self.schedule.next_group() {
            self.record_group(id, group, ctx);
        }
    }

    fn record_group(&mut self, id: u64, group: Vec<Waiting>, ctx: &mut Context<Self>) {
        let mut sizes = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        let mut alerts = Vec::new();
        for w in group {
            sizes.push(w.alerts.len());
            replies.push(w.reply);
            alerts.extend(w.alerts);
        }
        let fut = record_requests(self.recorder.clone(), alerts, sizes);
        ctx.spawn(
            fut.into_actor(self)
                .map(move |(answers, events, pending), act, ctx| {
                    let answer: AfterRouting = Box::new(move || {
                        for (part, reply) in answers.into_iter().zip(replies) {
                            reply(part);
                        }
                    });
                    if events.is_empty() {
                        answer();
                    } else {
                        // Bounded: the message holds requests that each hold an ingest permit until
                        // `answer` runs (see the router's module docs).
                        act.router.do_send(RouteEvents {
                            events,
                            pending,
                            after: Some(answer),
                        });
                    }
                    act.schedule.finished(id);
                    act.flush(ctx);
                }),
        );
    }
}

/// An event and the endpoints it was routed to.
pub(super) type Routed = (Arc<Event>, Vec<Arc<str>>);

/// Each request's answer, the events to hand on (in the order they were decided), and the
/// store's count of unfinished deliveries after the last call, when it keeps one.
pub(super) type GroupResult = (
    Vec<Result<Vec<Recorded>, RecordError>>,
    Vec<Routed>,
    Option<usize>,
);

/// How many of the first waiting requests make the next group: whole requests, up to
/// `max_alerts` alerts (a larger request goes alone).
fn group_len(waiting: &VecDeque<Waiting>, max_alerts: usize) -> usize {
    let mut alerts = 0;
    let mut n = 0;
    for next in waiting {
        if n > 0 && alerts + next.alerts.len() > max_alerts {
            break;
        }
        alerts += next.alerts.len();
        n += 1;
    }
    n
}

impl Actor for IncidentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(DEFAULT_INCIDENT_MAILBOX);
    }
}

impl Handler<RecordAlerts> for IncidentActor {
    type Result = ();

    fn handle(&mut self, msg: RecordAlerts, ctx: &mut Self::Context) {
        self.schedule.waiting.push_back(Waiting {
            alerts: msg.alerts,
            reply: msg.reply,
        });
        self.flush(ctx);
    }
}

impl Handler<ChangeIncident> for IncidentActor {
    type Result = ResponseFuture<Result<Incident, ChangeError>>;

    /// Reads the incident, then records the admin's alert through `RecordAlerts` like any
    /// other, so it is ordered with the alerts being recorded.
    fn handle(&mut self, msg: ChangeIncident, ctx: &mut Self::Context) -> Self::Result {
        let query = self.query.clone();
        let me = ctx.address();
        Box::pin(async move {
            let query = query.ok_or(ChangeError::Unsupported)?;
            let incident = query
                .get_incident(&msg.id)
                .await?
                .ok_or_else(|| ChangeError::NotFound(msg.id.clone()))?;
            let wanted = msg.to.as_str();
            let allowed = match msg.to {
                AlertStatus::Acknowledged => incident.status == IncidentStatus::Triggered,
                AlertStatus::Resolved => incident.status.is_open(),
                AlertStatus::Firing => false,
            };
            let conflict = || ChangeError::Conflict {
                id: incident.id.clone(),
                status: incident.status.as_str(),
                wanted,
            };
            if !allowed {
                return Err(conflict());
            }
            let alert = admin_alert(&incident, msg.to, Utc::now()).ok_or_else(conflict)?;
            let (tx, rx) = oneshot::channel();
            me.do_send(RecordAlerts {
                alerts: vec![alert],
                reply: Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            });
            let recorded = rx
                .await
                .map_err(|_| StoreError::Unavailable("incident actor stopped".into()))??;
            let event = recorded
                .into_iter()
                .next()
                .and_then(|r| r.event)
                .filter(|e| e.incident.id == incident.id)
                .ok_or_else(conflict)?;
            tracing::info!(incident_id = %incident.id, status = wanted, "incident changed through the admin API");
            Ok(event.incident.clone())
        })
    }
}

#[cfg(test)]
mod tests;
