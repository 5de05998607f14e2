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
use crate::metrics::{EventLabels, Metrics, OutcomeLabels};
use crate::model::Event;
use crate::model::{Alert, AlertStatus, Incident, IncidentStatus};
use crate::router::actor::{AfterRouting, RouteEvents, RouterActor, SharedRoutes};
use crate::store::leases::{LeaseOffer, LeaseRooms};
use crate::store::query::IncidentQuery;
use crate::store::{IncidentStore, Recorded, Recording, StoreError};

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
            }),
            router,
            schedule,
            query: None,
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

    /// Enables admin changes (acknowledge, resolve), which read the incident first.
    pub fn with_query(mut self, query: Arc<dyn IncidentQuery>) -> Self {
        self.query = Some(query);
        self
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
type Routed = (Arc<Event>, Vec<Arc<str>>);

/// Each request's answer, the events to hand on (in the order they were decided), and the
/// store's count of unfinished deliveries after the last call, when it keeps one.
type GroupResult = (
    Vec<Result<Vec<Recorded>, RecordError>>,
    Vec<Routed>,
    Option<usize>,
);

/// What a record call needs besides the alerts.
struct Recorder {
    store: Arc<dyn IncidentStore>,
    routes: Arc<SharedRoutes>,
    /// The delivery actors' room for lanes leased at record (None: none is leased).
    leases: Option<Arc<LeaseRooms>>,
    metrics: Arc<Metrics>,
    /// Groups of grouped routes (None: no grouping).
    grouper: Option<Arc<Grouper>>,
}

/// Records a group of requests (`sizes`: each request's number of alerts, in order) in one
/// store call. When the store rejects the group's input ([`StoreError::Rejected`]: one
/// request's body it cannot keep), each request is recorded on its own, one after the
/// other, so only the request that carried it is refused and no request suffers for
/// another's body. When the store is unavailable, every request gets that error.
async fn record_requests(
    recorder: Arc<Recorder>,
    alerts: Vec<Alert>,
    sizes: Vec<usize>,
) -> GroupResult {
    if sizes.len() == 1 && alerts.len() > DEFAULT_RECORD_GROUP_ALERTS {
        return record_in_calls(&recorder, &alerts, DEFAULT_RECORD_GROUP_ALERTS).await;
    }
    match record(&recorder, &alerts).await {
        Ok((recorded, events, pending)) => (
            split(recorded, &sizes).into_iter().map(Ok).collect(),
            events,
            pending,
        ),
        Err(e @ StoreError::Rejected(_)) if sizes.len() > 1 => {
            tracing::warn!(requests = sizes.len(), error = %e, "a group was rejected by the store; recording its requests one by one");
            let mut answers = Vec::with_capacity(sizes.len());
            let mut events = Vec::new();
            let mut pending = None;
            let mut rest = alerts.as_slice();
            for n in sizes {
                let (part, after) = rest.split_at(n.min(rest.len()));
                rest = after;
                match record(&recorder, part).await {
                    Ok((recorded, part_events, part_pending)) => {
                        events.extend(part_events);
                        pending = part_pending.or(pending);
                        answers.push(Ok(recorded));
                    }
                    Err(e) => answers.push(Err(e.into())),
                }
            }
            (answers, events, pending)
        }
        Err(e) => {
            if let StoreError::Unavailable(_) = &e {
                tracing::warn!(requests = sizes.len(), error = %e, "recording failed");
            }
            (
                sizes.iter().map(|_| Err(e.clone().into())).collect(),
                Vec::new(),
                None,
            )
        }
    }
}

/// Records one request's alerts in store calls of at most `per_call` alerts, one after the
/// other (so no call blocks the store for long, nor runs past its timeout). Stops at the
/// first call that fails: what the earlier calls recorded stays recorded and its events are
/// routed (see [`RecordError::Partial`]).
async fn record_in_calls(recorder: &Recorder, alerts: &[Alert], per_call: usize) -> GroupResult {
    let mut recorded = Vec::with_capacity(alerts.len());
    let mut events = Vec::new();
    let mut pending = None;
    for chunk in alerts.chunks(per_call.max(1)) {
        match record(recorder, chunk).await {
            Ok((r, e, p)) => {
                recorded.extend(r);
                events.extend(e);
                pending = p.or(pending);
            }
            Err(cause) => {
                tracing::warn!(recorded = recorded.len(), total = alerts.len(), error = %cause, "a large request was recorded in part");
                let answer = if recorded.is_empty() {
                    RecordError::Store(cause)
                } else {
                    RecordError::Partial {
                        recorded: recorded.len(),
                        total: alerts.len(),
                        cause,
                    }
                };
                return (vec![Err(answer)], events, pending);
            }
        }
    }
    (vec![Ok(recorded)], events, pending)
}

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

/// Cuts a group's results back into one part per request.
fn split<T>(mut all: Vec<T>, sizes: &[usize]) -> Vec<Vec<T>> {
    let mut parts = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let rest = all.split_off(n.min(all.len()));
        parts.push(std::mem::replace(&mut all, rest));
    }
    parts
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

/// Records one group in the store, routing its events with the current table and handing
/// the lanes it leased to their delivery actors; returns what each alert did, the events with
/// their endpoints, and the store's count of unfinished deliveries when it keeps one.
async fn record(
    recorder: &Recorder,
    alerts: &[Alert],
) -> Result<(Vec<Recorded>, Vec<Routed>, Option<usize>), StoreError> {
    let Recorder {
        store,
        routes,
        leases,
        metrics,
        grouper,
    } = recorder;
    let table = routes.current();
    let mut offer = leases.as_ref().map_or_else(LeaseOffer::none, |l| l.offer());
    let recording = match store.record(alerts, Utc::now(), &*table, &mut offer).await {
        Ok(recording) => recording,
        Err(e) => {
            offer.finish(Vec::new(), &[]);
            return Err(e);
        }
    };
    let Recording {
        recorded,
        leased,
        due,
        pending,
    } = recording;
    offer.finish(leased, &due);
    let mut events = Vec::new();
    // Counted per group, not per alert: a metric lookup hashes and allocates its labels.
    let mut outcomes: Vec<(&'static str, u64)> = Vec::new();
    let mut kinds: Vec<(&'static str, u64)> = Vec::new();
    let tally = |counts: &mut Vec<(&'static str, u64)>, name: &'static str| match counts
        .iter_mut()
        .find(|(n, _)| *n == name)
    {
        Some((_, c)) => *c += 1,
        None => counts.push((name, 1)),
    };
    for r in &recorded {
        tally(&mut outcomes, r.outcome.as_str());
        if let Some(e) = &r.event {
            tally(&mut kinds, e.kind.as_str());
            tracing::debug!(event_id = %e.id, event_type = %e.kind, incident_id = %e.incident.id, source = %e.source.name, dedup_key = %e.incident.dedup_key, "incident event");
            events.push((e.clone(), r.endpoints.clone()));
        }
    }
    for (outcome, n) in outcomes {
        metrics
            .alert_outcomes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc_by(n);
    }
    for (kind, n) in kinds {
        metrics
            .events_emitted
            .get_or_create(&EventLabels {
                r#type: kind.to_string(),
            })
            .inc_by(n);
    }
    if let Some(grouper) = grouper.as_ref().filter(|_| table.has_groups()) {
        let all: Vec<Arc<Event>> = events.iter().map(|(e, _)| e.clone()).collect();
        match grouper.join(&table, &all, Utc::now()).await {
            // An event that joined a group and went to no endpoint of its own was routed.
            Ok(joined) => {
                let mut joined = joined.into_iter();
                events.retain(|(_, endpoints)| {
                    !(joined.next() == Some(true) && endpoints.is_empty())
                });
            }
            Err(e) => {
                // The events are recorded (and their own deliveries queued): answering 503
                // would make the sender's retry a repeat that joins nothing, so go on.
                tracing::error!(error = %e, "could not add incidents to their groups");
            }
        }
    }
    if let Ok(open) = store.open_count().await {
        metrics.incidents_open.set(open as i64);
    }
    Ok((recorded, events, pending))
}

#[cfg(test)]
mod tests;
