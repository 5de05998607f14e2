//! `IncidentActor`: owns recording alerts into the incident store. It handles one batch at a
//! time (atomically), so the events of an incident leave it in the order they were decided,
//! and hands them to the router before answering.

use std::sync::Arc;

use actix::prelude::*;
use chrono::Utc;

use crate::metrics::{EventLabels, Metrics, OutcomeLabels};
use chrono::DateTime;
use thiserror::Error;

use super::query::IncidentQuery;
use crate::model::{Alert, AlertStatus, Incident, IncidentStatus};
use crate::router::actor::{RouteEvents, RouterActor};
use crate::store::{IncidentStore, Recorded, StoreError};

/// Mailbox size of the incident actor; adapters wait when it is full.
pub const DEFAULT_INCIDENT_MAILBOX: usize = 1024;

/// Records alerts; answers with what each did once their events are queued for delivery.
#[derive(Message)]
#[rtype(result = "Result<Vec<Recorded>, StoreError>")]
pub struct RecordAlerts(pub Vec<Alert>);

pub struct IncidentActor {
    store: Arc<dyn IncidentStore>,
    router: Addr<RouterActor>,
    metrics: Arc<Metrics>,
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
            query: None,
        }
    }

    /// Enables admin changes (acknowledge, resolve), which read the incident first.
    pub fn with_query(mut self, query: Arc<dyn IncidentQuery>) -> Self {
        self.query = Some(query);
        self
    }
}

/// Records alerts, counts their outcomes, and routes their events (awaited).
async fn record_and_route(
    store: Arc<dyn IncidentStore>,
    router: Addr<RouterActor>,
    metrics: Arc<Metrics>,
    alerts: Vec<Alert>,
) -> Result<Vec<Recorded>, StoreError> {
    let recorded = store.record(&alerts, Utc::now()).await?;
    let mut events = Vec::new();
    for r in &recorded {
        metrics
            .alert_outcomes
            .get_or_create(&OutcomeLabels {
                outcome: r.outcome.as_str().to_string(),
            })
            .inc();
        if let Some(e) = &r.event {
            metrics
                .events_emitted
                .get_or_create(&EventLabels {
                    r#type: e.kind.as_str().to_string(),
                })
                .inc();
            tracing::debug!(event_id = %e.id, event_type = %e.kind, incident_id = %e.incident.id, source = %e.source.name, dedup_key = %e.incident.dedup_key, "incident event");
            events.push(e.clone());
        }
    }
    if let Ok(open) = store.open_count().await {
        metrics.incidents_open.set(open as i64);
    }
    if !events.is_empty() {
        router
            .send(RouteEvents(events))
            .await
            .map_err(|e| StoreError::Unavailable(format!("router: {e}")))?;
    }
    Ok(recorded)
}

impl Handler<ChangeIncident> for IncidentActor {
    type Result = AtomicResponse<Self, Result<Incident, ChangeError>>;

    fn handle(&mut self, msg: ChangeIncident, _ctx: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let router = self.router.clone();
        let metrics = self.metrics.clone();
        let query = self.query.clone();
        AtomicResponse::new(Box::pin(
            async move {
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
                let recorded = record_and_route(store, router, metrics, vec![alert]).await?;
                let event = recorded
                    .into_iter()
                    .next()
                    .and_then(|r| r.event)
                    .filter(|e| e.incident.id == incident.id)
                    .ok_or_else(conflict)?;
                tracing::info!(incident_id = %incident.id, status = wanted, "incident changed through the admin API");
                Ok(event.incident)
            }
            .into_actor(self),
        ))
    }
}

impl Actor for IncidentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(DEFAULT_INCIDENT_MAILBOX);
    }
}

impl Handler<RecordAlerts> for IncidentActor {
    type Result = AtomicResponse<Self, Result<Vec<Recorded>, StoreError>>;

    fn handle(&mut self, msg: RecordAlerts, _ctx: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let router = self.router.clone();
        let metrics = self.metrics.clone();
        AtomicResponse::new(Box::pin(
            record_and_route(store, router, metrics, msg.0).into_actor(self),
        ))
    }
}
