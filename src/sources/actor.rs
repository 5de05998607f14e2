//! `SourceActor`: one per configured source. It checks a request's credentials, normalizes
//! its payload with the source's adapter and hands the alerts to the incident actor. The work
//! itself is the plain functions of [`SourceSpec`]; this is the actor layer around them.

use std::sync::Arc;

use actix::prelude::*;
use actix_web::http::header::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::oneshot;

use super::auth::AuthError;
use super::{NormalizeError, SourceSpec};
use crate::incidents::actor::{IncidentActor, RecordAlerts};
use prometheus_client::metrics::counter::Counter;

use crate::delivery::Backlog;
use crate::metrics::{Metrics, PluginCallLabels, SourceLabels};
use crate::model::Alert;
use crate::store::{Recorded, StoreError};

/// Mailbox size of a source actor for callers that wait. Ingest's `Ingest` messages are
/// bounded by the ingest permits instead: each request holds one until it is answered.
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
    /// The delivery backlog has no room for this request's alerts (503, try again).
    #[error("the delivery backlog is full ({alerts} alert(s) would not fit); try again")]
    BacklogFull { alerts: usize },
}

/// A started source: its actor, and its spec (ingest checks the credentials it can with the
/// spec before it reads a body).
#[derive(Clone)]
pub struct SourceEntry {
    pub actor: Addr<SourceActor>,
    pub spec: Arc<SourceSpec>,
}

/// One request to a source.
/// Where the outcome of one request goes: what each alert did, or why nothing was recorded.
pub type IngestReply = oneshot::Sender<Result<Vec<Recorded>, IngestError>>;

/// One request's body for this source. The answer goes to `reply` once the alerts' events
/// are queued for delivery.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ingest {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub received_at: DateTime<Utc>,
    pub reply: IngestReply,
}

pub struct SourceActor {
    spec: Arc<SourceSpec>,
    incidents: Addr<IncidentActor>,
    metrics: Arc<Metrics>,
    backlog: Arc<Backlog>,
    labels: SourceLabels,
    /// `alerts_received` for this source, looked up once.
    received: Counter,
}

impl SourceActor {
    pub fn new(
        spec: Arc<SourceSpec>,
        incidents: Addr<IncidentActor>,
        metrics: Arc<Metrics>,
        backlog: Arc<Backlog>,
    ) -> Self {
        let labels = SourceLabels {
            source: spec.name.to_string(),
        };
        let received = metrics.alerts_received.get_or_create(&labels).clone();
        SourceActor {
            spec,
            incidents,
            received,
            metrics,
            backlog,
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
    type Result = ();

    /// Authenticates and normalizes at once (a plugin runs on its bounded pool, in a task of
    /// its own) and hands the alerts to the incident actor with the request's answer.
    fn handle(&mut self, msg: Ingest, _ctx: &mut Self::Context) {
        let Ingest {
            headers,
            body,
            received_at,
            reply,
        } = msg;
        if let Err(e) = self.spec.authenticate(&headers, &body, received_at) {
            let _ = reply.send(Err(e.into()));
            return;
        }
        let delivery_id = self.spec.delivery_id(&headers);
        if let Some(id) = &delivery_id {
            if self.spec.is_redelivery(id) {
                tracing::info!(source = %self.spec.name, delivery_id = %id, "redelivered request dropped");
                self.metrics
                    .redeliveries_dropped
                    .get_or_create(&self.labels)
                    .inc();
                let _ = reply.send(Ok(Vec::new()));
                return;
            }
        }
        let forward = Forward {
            spec: self.spec.clone(),
            incidents: self.incidents.clone(),
            backlog: self.backlog.clone(),
            received: self.received.clone(),
            delivery_id,
            reply,
        };
        match self.spec.plugin().cloned() {
            Some(plugin) => {
                let spec = self.spec.clone();
                let metrics = self.metrics.clone();
                actix_rt::spawn(async move {
                    let result = plugin.normalize(&spec, &headers, &body).await;
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
                    forward.send(result);
                });
            }
            None => {
                let result = self.spec.normalize_request(&headers, &body, received_at);
                forward.send(result);
            }
        }
    }
}

/// What a normalized request still needs: the incident actor, and its answer.
struct Forward {
    spec: Arc<SourceSpec>,
    incidents: Addr<IncidentActor>,
    backlog: Arc<Backlog>,
    received: Counter,
    delivery_id: Option<String>,
    reply: IngestReply,
}

impl Forward {
    fn send(self, normalized: Result<Vec<Alert>, NormalizeError>) {
        let alerts = match normalized {
            Ok(alerts) => alerts,
            Err(e) => {
                let _ = self.reply.send(Err(e.into()));
                return;
            }
        };
        self.received.inc_by(alerts.len() as u64);
        if alerts.is_empty() {
            let _ = self.reply.send(Ok(Vec::new()));
            return;
        }
        // Room for what this request adds, held until it is answered (by then the router
        // has counted its deliveries).
        let Some(reservation) = self.backlog.reserve(alerts.len()) else {
            let _ = self.reply.send(Err(IngestError::BacklogFull {
                alerts: alerts.len(),
            }));
            return;
        };
        let (spec, delivery_id, reply) = (self.spec, self.delivery_id, self.reply);
        // Bounded: the request holds an ingest permit until it is answered.
        self.incidents.do_send(RecordAlerts {
            alerts,
            reply: Box::new(move |recorded| {
                if let (Ok(_), Some(id)) = (&recorded, &delivery_id) {
                    spec.remember_delivery(id);
                }
                let _ = reply.send(recorded.map_err(IngestError::from));
                drop(reservation);
            }),
        });
    }
}
