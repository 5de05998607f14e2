//! The HTTP side: ingest (`POST /ingest/{source}`), health, readiness and metrics, and the
//! mapping of errors to answers (`error`).

pub mod error;
pub mod ingest;

use std::collections::HashMap;
use std::sync::Arc;

use actix::Addr;
use actix_web::{web, HttpResponse};
use tokio::sync::Semaphore;

use crate::delivery::Backlog;
use crate::metrics::Metrics;
use crate::sources::actor::SourceActor;
use crate::store::IncidentStore;

/// How many ingest requests are processed at once; more get 503 with `Retry-After`.
pub const DEFAULT_MAX_INFLIGHT_INGEST: usize = 512;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub sources: Arc<HashMap<String, Addr<SourceActor>>>,
    pub max_body_bytes: usize,
    pub metrics: Arc<Metrics>,
    pub backlog: Arc<Backlog>,
    pub inflight: Arc<Semaphore>,
    pub store: Arc<dyn IncidentStore>,
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ingest/{source}", web::post().to(ingest::ingest))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, error::ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|e| error::ApiError::unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.encode())
}
