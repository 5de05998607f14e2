//! `SourceActor`: one per configured source. It checks a request's credentials, normalizes
//! its payload with the source's adapter and hands the alerts to the incident actor. The work
//! itself is the plain functions of [`SourceSpec`]; this is the actor layer around them.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::http::header::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::oneshot;

use super::auth::{AuthError, HeadersChecked};
use super::sns::SnsError;
use super::{NormalizeError, SourceSpec};
use crate::incidents::actor::{IncidentActor, RecordAlerts, RecordError};
use prometheus_client::metrics::counter::Counter;

use crate::delivery::Backlog;
use crate::metrics::{Metrics, PluginCallLabels, SourceLabels};
use crate::model::Alert;
use crate::store::request_ids::{IdState, RequestIds};
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
    /// An SNS message whose signature or topic was refused (401).
    #[error(transparent)]
    Sns(SnsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A request with the same id is being recorded right now (503, try again).
    #[error("a request with this id is being recorded; try again")]
    Recording,
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
    /// The headers passed the source's credential check (ingest made it before the body).
    pub checked: HeadersChecked,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub received_at: DateTime<Utc>,
    pub reply: IngestReply,
}

pub struct SourceActor {
    spec: Arc<SourceSpec>,
    request_ids: Arc<dyn RequestIds>,
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
        request_ids: Arc<dyn RequestIds>,
    ) -> Self {
        let labels = SourceLabels {
            source: spec.name.to_string(),
        };
        let received = metrics.alerts_received.get_or_create(&labels).clone();
        SourceActor {
            spec,
            request_ids,
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
    /// its own) and hands the alerts to the incident actor with the request's answer. A
    /// request with an id (see [`SourceSpec::delivery_id`]) first claims it in the store, in
    /// a task of its own: one already recorded is answered without recording it again.
    fn handle(&mut self, msg: Ingest, _ctx: &mut Self::Context) {
        let Ingest {
            checked,
            headers,
            body,
            received_at,
            reply,
        } = msg;
        if let Err(e) = self
            .spec
            .authenticate_body(checked, &headers, &body, received_at)
        {
            let _ = reply.send(Err(e.into()));
            return;
        }
        let pipeline = Pipeline {
            spec: self.spec.clone(),
            incidents: self.incidents.clone(),
            backlog: self.backlog.clone(),
            received: self.received.clone(),
            metrics: self.metrics.clone(),
        };
        let (Some(id), Some(window)) = (
            self.spec.delivery_id(&headers),
            self.spec.redelivery_window(),
        ) else {
            pipeline.run(
                headers,
                body,
                received_at,
                Box::new(move |r| {
                    let _ = reply.send(r);
                }),
            );
            return;
        };
        let ids = self.request_ids.clone();
        let dropped = self
            .metrics
            .redeliveries_dropped
            .get_or_create(&self.labels)
            .clone();
        actix_rt::spawn(async move {
            let source = pipeline.spec.name.clone();
            match ids.begin_recording(&source, &id).await {
                Ok(IdState::New) => {
                    let claimed = ClaimedId {
                        ids,
                        source,
                        id,
                        window,
                    };
                    pipeline.run(
                        headers,
                        body,
                        received_at,
                        Box::new(move |r| {
                            claimed.settle(r.is_ok());
                            let _ = reply.send(r);
                        }),
                    );
                }
                Ok(IdState::Recorded) => {
                    tracing::info!(source = %source, delivery_id = %id, "request sent again: recorded already, dropped");
                    dropped.inc();
                    let _ = reply.send(Ok(Vec::new()));
                }
                Ok(IdState::Recording) => {
                    let _ = reply.send(Err(IngestError::Recording));
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            }
        });
    }
}

/// Where one request's outcome goes (called once).
type Answer = Box<dyn FnOnce(Result<Vec<Recorded>, IngestError>) + Send>;

/// A request id claimed in the store while its request is recorded.
struct ClaimedId {
    ids: Arc<dyn RequestIds>,
    source: Arc<str>,
    id: String,
    window: Duration,
}

impl ClaimedId {
    /// Remembers the id for its window (`recorded`), or forgets it so a retry is recorded.
    fn settle(self, recorded: bool) {
        actix_rt::spawn(async move {
            let result = if recorded {
                self.ids.recorded(&self.source, &self.id, self.window).await
            } else {
                self.ids.forget(&self.source, &self.id).await
            };
            if let Err(e) = result {
                tracing::warn!(source = %self.source, delivery_id = %self.id, error = %e, "a request id could not be settled; its claim runs out by itself");
            }
        });
    }
}

/// What a request goes through after its credentials: the adapter, then the incident actor.
struct Pipeline {
    spec: Arc<SourceSpec>,
    incidents: Addr<IncidentActor>,
    backlog: Arc<Backlog>,
    received: Counter,
    metrics: Arc<Metrics>,
}

impl Pipeline {
    fn run(self, headers: HeaderMap, body: Bytes, received_at: DateTime<Utc>, answer: Answer) {
        let forward = Forward {
            incidents: self.incidents,
            backlog: self.backlog,
            received: self.received,
            answer,
            resolve_after: self.spec.resolve_after,
        };
        if self.spec.sns().is_some() {
            let spec = self.spec;
            actix_rt::spawn(async move {
                let Some(sns) = spec.sns() else { return };
                let result = sns.receive(&spec, &body).await.map_err(|e| match e {
                    SnsError::Normalize(n) => IngestError::Normalize(n),
                    other => IngestError::Sns(other),
                });
                forward.send_checked(result);
            });
            return;
        }
        match self.spec.plugin().cloned() {
            Some(plugin) => {
                let (spec, metrics) = (self.spec, self.metrics);
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
    incidents: Addr<IncidentActor>,
    backlog: Arc<Backlog>,
    received: Counter,
    answer: Answer,
    /// The source's `resolve_after`, for firing alerts without an expiry of their own.
    resolve_after: Option<std::time::Duration>,
}

impl Forward {
    fn send(self, normalized: Result<Vec<Alert>, NormalizeError>) {
        self.send_checked(normalized.map_err(IngestError::from))
    }

    /// [`send`](Self::send) for adapters that can also refuse a request's credentials.
    fn send_checked(self, normalized: Result<Vec<Alert>, IngestError>) {
        let mut alerts = match normalized {
            Ok(alerts) => alerts,
            Err(e) => {
                (self.answer)(Err(e));
                return;
            }
        };
        crate::sources::expiry::apply_default(&mut alerts, self.resolve_after, Utc::now());
        self.received.inc_by(alerts.len() as u64);
        if alerts.is_empty() {
            (self.answer)(Ok(Vec::new()));
            return;
        }
        // Room for what this request adds, held until it is answered (by then the router
        // has counted its deliveries).
        let Some(reservation) = self.backlog.reserve(alerts.len()) else {
            (self.answer)(Err(IngestError::BacklogFull {
                alerts: alerts.len(),
            }));
            return;
        };
        let answer = self.answer;
        // Bounded: the request holds an ingest permit until it is answered.
        self.incidents.do_send(RecordAlerts {
            alerts,
            reply: Box::new(move |recorded| {
                answer(recorded.map_err(IngestError::from));
                drop(reservation);
            }),
        });
    }
}
