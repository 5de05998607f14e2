//! `IncidentActor`: owns recording alerts into the incident store. It handles one batch at a
//! time (atomically), so the events of an incident leave it in the order they were decided,
//! and hands them to the router before answering.

use std::sync::Arc;

use actix::prelude::*;
use chrono::Utc;

use crate::metrics::{EventLabels, Metrics, OutcomeLabels};
use crate::model::Alert;
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
        }
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
            async move {
                let recorded = store.record(&msg.0, Utc::now()).await?;
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
            .into_actor(self),
        ))
    }
}
