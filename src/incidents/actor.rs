//! `IncidentActor`: owns recording alerts into the incident store. It records one group of
//! requests at a time (the requests that waited while the previous group was recorded: one
//! store call, one Redis script, for all of them), so the events of an incident leave it in
//! the order they were decided. It hands each group's events to the router with the group's
//! answers, which the router gives once the events are queued for delivery; the next group is
//! recorded meanwhile.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::oneshot;

use super::query::IncidentQuery;
use crate::metrics::{EventLabels, Metrics, OutcomeLabels};
use crate::model::{Alert, AlertStatus, Incident, IncidentStatus};
use crate::router::actor::{AfterRouting, RouteEvents, RouterActor};
use crate::store::{IncidentStore, Recorded, StoreError};

/// Mailbox size of the incident actor for callers that wait (the admin API's changes wait
/// when it is full). Adapters' `RecordAlerts` are bounded by the ingest permits instead: each
/// carries a request that holds one until it is answered.
pub const DEFAULT_INCIDENT_MAILBOX: usize = 1024;

/// Records alerts; answers with what each did once their events are queued for delivery.
/// Where the outcome of recording one request's alerts goes (called once).
pub type RecordReply = Box<dyn FnOnce(Result<Vec<Recorded>, StoreError>) + Send>;

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
/// the rest wait for the next call. The waiting requests are bounded by ingest admission
/// (`server.max_inflight_requests`): each holds one permit until it is answered.
pub const DEFAULT_RECORD_GROUP_ALERTS: usize = 1024;

/// One request waiting to be recorded.
struct Waiting {
    alerts: Vec<Alert>,
    reply: RecordReply,
}

pub struct IncidentActor {
    store: Arc<dyn IncidentStore>,
    router: Addr<RouterActor>,
    metrics: Arc<Metrics>,
    waiting: VecDeque<Waiting>,
    /// A group is being recorded and routed; the next waits for it (order).
    busy: bool,
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
    pub fn new(
        store: Arc<dyn IncidentStore>,
        router: Addr<RouterActor>,
        metrics: Arc<Metrics>,
    ) -> Self {
        IncidentActor {
            store,
            router,
            metrics,
            waiting: VecDeque::new(),
            busy: false,
            query: None,
        }
    }

    /// Enables admin changes (acknowledge, resolve), which read the incident first.
    pub fn with_query(mut self, query: Arc<dyn IncidentQuery>) -> Self {
        self.query = Some(query);
        self
    }

    /// Records every waiting request (up to [`DEFAULT_RECORD_GROUP_ALERTS`] alerts) in one
    /// store call, routes their events, then answers each request with its part.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.waiting.is_empty() {
            return;
        }
        let group = take_group(&mut self.waiting, DEFAULT_RECORD_GROUP_ALERTS);
        self.busy = true;
        let mut sizes = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        let mut alerts = Vec::new();
        for w in group {
            sizes.push(w.alerts.len());
            replies.push(w.reply);
            alerts.extend(w.alerts);
        }
        let fut = record(self.store.clone(), self.metrics.clone(), alerts);
        ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
            match result {
                Ok((recorded, events)) => {
                    let parts = split(recorded, &sizes);
                    let answer: AfterRouting = Box::new(move || {
                        for (part, reply) in parts.into_iter().zip(replies) {
                            reply(Ok(part));
                        }
                    });
                    if events.is_empty() {
                        answer();
                    } else {
                        // Bounded: the message holds requests that each hold an ingest
                        // permit until `answer` runs (see the router's module docs).
                        act.router.do_send(RouteEvents {
                            events,
                            after: Some(answer),
                        });
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for reply in replies {
                        reply(Err(StoreError::Unavailable(msg.clone())));
                    }
                }
            }
            act.busy = false;
            act.flush(ctx);
        }));
    }
}

fn take_group(waiting: &mut VecDeque<Waiting>, max_alerts: usize) -> Vec<Waiting> {
    let mut group = Vec::new();
    let mut n = 0;
    while let Some(next) = waiting.front() {
        if !group.is_empty() && n + next.alerts.len() > max_alerts {
            break;
        }
        n += next.alerts.len();
        group.extend(waiting.pop_front());
    }
    group
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
        self.waiting.push_back(Waiting {
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

/// Records one group in the store; returns what each alert did and the events to route.
async fn record(
    store: Arc<dyn IncidentStore>,
    metrics: Arc<Metrics>,
    alerts: Vec<Alert>,
) -> Result<(Vec<Recorded>, Vec<Arc<crate::model::Event>>), StoreError> {
    let recorded = store.record(&alerts, Utc::now()).await?;
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
            events.push(e.clone());
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
    if let Ok(open) = store.open_count().await {
        metrics.incidents_open.set(open as i64);
    }
    Ok((recorded, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_take_whole_requests_in_order_and_results_split_back() {
        let mut waiting = VecDeque::new();
        let mut answers = Vec::new();
        for n in [2, 3, 1] {
            let (tx, rx) = oneshot::channel();
            answers.push(rx);
            waiting.push_back(Waiting {
                alerts: std::iter::repeat_n(alert(), n).collect(),
                reply: Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            });
        }
        let group = take_group(&mut waiting, 5);
        assert_eq!(
            group.iter().map(|w| w.alerts.len()).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert_eq!(waiting.len(), 1);
        // A request larger than the limit still goes, alone.
        assert_eq!(take_group(&mut waiting, 0).len(), 1);
        assert_eq!(
            split(vec![1, 2, 3, 4, 5], &[2, 3]),
            vec![vec![1, 2], vec![3, 4, 5]]
        );
    }

    fn alert() -> Alert {
        use crate::model::{AlertStatus, Labels, Severity, SourceRef};
        Alert {
            dedup_key: "k".into(),
            status: AlertStatus::Firing,
            severity: Severity::Info,
            title: "t".into(),
            description: String::new(),
            labels: Labels::new(),
            annotations: Labels::new(),
            links: vec![],
            started_at: None,
            ended_at: None,
            source: SourceRef {
                name: "s".into(),
                kind: "generic".into(),
            },
        }
    }
}
