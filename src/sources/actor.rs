//! `SourceActor`: one per configured source. It checks a request's credentials, normalizes
//! its payload with the source's adapter and hands the alerts to the incident actor. The work
//! itself is the plain functions of [`SourceSpec`]; this is the actor layer around them.

use std::sync::Arc;

use actix::prelude::*;
use actix_web::http::header::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use thiserror::Error;

use super::auth::AuthError;
use super::{NormalizeError, SourceSpec};
use crate::incidents::actor::{IncidentActor, RecordAlerts};
use crate::metrics::{Metrics, PluginCallLabels, SourceLabels};
use crate::store::{Recorded, StoreError};

/// Mailbox size of a source actor; ingest admission keeps fewer requests than this in flight.
pub const DEFAULT_SOURCE_MAILBOX: usize = 1024;

/// Why a request was refused; `http::error` maps each to its status.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal pipeline error: {0}")]
    Pipeline(String),
}

/// One request to a source.
#[derive(Message)]
#[rtype(result = "Result<Vec<Recorded>, IngestError>")]
pub struct Ingest {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub received_at: DateTime<Utc>,
}

pub struct SourceActor {
    spec: Arc<SourceSpec>,
    incidents: Addr<IncidentActor>,
    metrics: Arc<Metrics>,
    labels: SourceLabels,
}

impl SourceActor {
    pub fn new(
        spec: Arc<SourceSpec>,
        incidents: Addr<IncidentActor>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let labels = SourceLabels {
            source: spec.name.to_string(),
        };
        SourceActor {
            spec,
            incidents,
            metrics,
            labels,
        }
    }
}

impl Actor for SourceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(DEFAULT_SOURCE_MAILBOX);
    }
}

impl Handler<Ingest> for SourceActor {
    type Result = ResponseFuture<Result<Vec<Recorded>, IngestError>>;

    fn handle(&mut self, msg: Ingest, _ctx: &mut Self::Context) -> Self::Result {
        let spec = self.spec.clone();
        let incidents = self.incidents.clone();
        let metrics = self.metrics.clone();
        let labels = self.labels.clone();
        Box::pin(async move {
            spec.authenticate(&msg.headers, &msg.body, msg.received_at)?;
            let delivery_id = spec.delivery_id(&msg.headers);
            if let Some(id) = &delivery_id {
                if spec.is_redelivery(id) {
                    tracing::info!(source = %spec.name, delivery_id = %id, "redelivered request dropped");
                    metrics.redeliveries_dropped.get_or_create(&labels).inc();
                    return Ok(Vec::new());
                }
            }
            let alerts = match spec.plugin() {
                // Plugins run on the blocking pool, with a time limit.
                Some(plugin) => {
                    let result = plugin.normalize(&spec, &msg.headers, &msg.body).await;
                    let outcome = match &result {
                        Ok(_) => "ok",
                        Err(e) => e.plugin_outcome().unwrap_or("rejected"),
                    };
                    metrics
                        .plugin_calls
                        .get_or_create(&PluginCallLabels {
                            plugin: plugin.plugin_name().to_string(),
                            outcome: outcome.to_string(),
                        })
                        .inc();
                    result?
                }
                None => spec.normalize_request(&msg.headers, &msg.body, msg.received_at)?,
            };
            metrics
                .alerts_received
                .get_or_create(&labels)
                .inc_by(alerts.len() as u64);
            if alerts.is_empty() {
                return Ok(Vec::new());
            }
            let recorded = incidents
                .send(RecordAlerts(alerts))
                .await
                .map_err(|e| IngestError::Pipeline(e.to_string()))?
                .map_err(IngestError::from)?;
            if let Some(id) = &delivery_id {
                spec.remember_delivery(id);
            }
            Ok(recorded)
        })
    }
}
