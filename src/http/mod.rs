//! The HTTP side: ingest (`POST /ingest/{source}`), health, readiness and metrics, the admin
//! API (`admin`) and its OpenAPI document (`openapi`), and the mapping of errors to answers
//! (`error`). Every route is listed once in [`ROUTES`]; `configure` registers exactly those,
//! and a test holds the OpenAPI document to the same list.

pub mod admin;
pub mod error;
pub mod ingest;
pub mod openapi;
pub mod silences;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use tokio::sync::Semaphore;

use crate::control::SourceDirectory;
use crate::delivery::Backlog;
use crate::metrics::Metrics;
use crate::store::IncidentStore;

/// How many ingest requests are processed at once (from a body read whole to the answer);
/// more get 503 with `Retry-After`. A request takes its place only once its body has arrived,
/// so slow senders hold none.
pub const DEFAULT_MAX_INFLIGHT_INGEST: usize = 512;

/// How long an ingest body may take to arrive (`server.body_timeout`); a slower one gets 408.
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The least memory, in bytes, that ingest bodies being read may hold together. The budget is
/// `max_inflight_requests` x `max_body_bytes`, at least this; a chunk that does not fit gets
/// 503 with `Retry-After` (senders must send real bytes to hold any of it, and give it back
/// at `body_timeout` at the latest).
pub const DEFAULT_MIN_BODY_BUDGET: usize = 64 << 20;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub sources: Arc<SourceDirectory>,
    pub max_body_bytes: usize,
    pub metrics: Arc<Metrics>,
    pub backlog: Arc<Backlog>,
    pub inflight: Arc<Semaphore>,
    /// `server.body_timeout`.
    pub body_timeout: std::time::Duration,
    /// Bytes of ingest bodies that may be held at once (see [`DEFAULT_MIN_BODY_BUDGET`]).
    pub body_bytes: Arc<Semaphore>,
    pub store: Arc<dyn IncidentStore>,
    /// The admin API; None (no `admin_token`) turns it off: its routes answer 404.
    pub admin: Option<Arc<admin::AdminState>>,
}

/// Every route of the HTTP API: (method, path).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/ingest/{source}"),
    ("POST", "/ingest/{source}/api/v2/alerts"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/incidents"),
    ("GET", "/api/v1/incidents/{id}"),
    ("POST", "/api/v1/incidents/{id}/acknowledge"),
    ("POST", "/api/v1/incidents/{id}/resolve"),
    ("GET", "/api/v1/deliveries"),
    ("POST", "/api/v1/deliveries/{id}/replay"),
    ("GET", "/api/v1/endpoints"),
    ("GET", "/api/v1/groups"),
    ("POST", "/api/v1/endpoints/{name}/test"),
    ("POST", "/api/v1/endpoints/{name}/recover"),
    ("POST", "/api/v1/route-test"),
    ("POST", "/api/v1/reload"),
    ("POST", "/api/v1/store/backup"),
    ("GET", "/api/v2/silences"),
    ("POST", "/api/v2/silences"),
    ("GET", "/api/v2/silence/{id}"),
    ("DELETE", "/api/v2/silence/{id}"),
    ("GET", "/api/v2/status"),
];

/// The handler of one entry of [`ROUTES`].
fn handler(method: &str, path: &str) -> Option<actix_web::Route> {
    Some(match (method, path) {
        ("POST", INGEST_ROUTE | INGEST_AM_ROUTE) => web::post().to(ingest::ingest),
        ("GET", "/healthz") => web::get().to(healthz),
        ("GET", "/readyz") => web::get().to(readyz),
        ("GET", "/metrics") => web::get().to(metrics),
        ("GET", "/api/v1/openapi.json") => web::get().to(openapi::serve),
        ("GET", "/api/v1/incidents") => web::get().to(admin::list_incidents),
        ("GET", "/api/v1/incidents/{id}") => web::get().to(admin::get_incident),
        ("POST", "/api/v1/incidents/{id}/acknowledge") => web::post().to(admin::acknowledge),
        ("POST", "/api/v1/incidents/{id}/resolve") => web::post().to(admin::resolve),
        ("GET", "/api/v1/deliveries") => web::get().to(admin::list_deliveries),
        ("POST", "/api/v1/deliveries/{id}/replay") => web::post().to(admin::replay),
        ("GET", "/api/v1/endpoints") => web::get().to(admin::list_endpoints),
        ("GET", "/api/v1/groups") => web::get().to(admin::list_groups),
        ("POST", "/api/v1/endpoints/{name}/test") => web::post().to(admin::test_endpoint),
        ("POST", "/api/v1/endpoints/{name}/recover") => web::post().to(admin::recover),
        ("POST", "/api/v1/route-test") => web::post().to(admin::test_route),
        ("POST", "/api/v1/reload") => web::post().to(admin::reload),
        ("POST", "/api/v1/store/backup") => web::post().to(admin::backup),
        ("GET", "/api/v2/silences") => web::get().to(silences::list),
        ("POST", "/api/v2/silences") => web::post().to(silences::post),
        ("GET", "/api/v2/silence/{id}") => web::get().to(silences::get),
        ("DELETE", "/api/v2/silence/{id}") => web::delete().to(silences::expire),
        ("GET", "/api/v2/status") => web::get().to(silences::status),
        _ => return None,
    })
}

/// The ingest route's path as listed in [`ROUTES`].
const INGEST_ROUTE: &str = "/ingest/{source}";

/// The Alertmanager API path of an ingest route (`path_prefix: /ingest/{source}` in
/// Prometheus' `alerting.alertmanagers`), served by the same prefix scope.
const INGEST_AM_ROUTE: &str = "/ingest/{source}/api/v2/alerts";

/// `POST /ingest/{source}` is registered as a static prefix whose rest of the path is the
/// source's name (`ingest::source_name`): a `{source}` pattern would be matched by
/// actix-router's regex on every request, about 12,000 instructions of the hottest route.
const INGEST_PREFIX: &str = "/ingest";

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Every route of [`ROUTES`] (no `server.admin_listen`).
    All,
    /// Ingest, health, readiness and metrics: the admin API (`/api/v1/...`) answers 404.
    Public,
    /// The admin API, its OpenAPI document, health, readiness and metrics (`server.admin_listen`).
    Admin,
}

impl Listener {
    fn serves(self, path: &str) -> bool {
        let admin = path.starts_with("/api/v1/") || path.starts_with("/api/v2/");
        let ingest = path.starts_with(INGEST_PREFIX);
        match self {
            Listener::All => true,
            Listener::Public => !admin,
            Listener::Admin => !ingest,
        }
    }
}

/// Registers every route of [`ROUTES`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    configure_listener(cfg, Listener::All)
}

/// Registers the routes of [`ROUTES`] that `listener` serves. A path asked for with a method
/// it does not take answers 405 with `Allow`.
pub fn configure_listener(cfg: &mut web::ServiceConfig, listener: Listener) {
    // Each path once, with its methods, in the order of ROUTES.
    let mut paths: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for (method, path) in ROUTES {
        if !listener.serves(path) {
            continue;
        }
        match paths.iter_mut().find(|(p, _)| p == path) {
            Some((_, methods)) => methods.push(method),
            None => paths.push((path, vec![method])),
        }
    }
    for (path, methods) in paths {
        match path {
            // Served by the ingest scope registered for INGEST_ROUTE.
            INGEST_AM_ROUTE => {}
            // Every method reaches the handler, which answers 405 to all but POST.
            INGEST_ROUTE => {
                cfg.service(web::scope(INGEST_PREFIX).default_service(web::to(ingest::ingest)));
            }
            _ => {
                let allow = methods.join(", ");
                let mut resource = web::resource(path);
                for method in &methods {
                    if let Some(route) = handler(method, path) {
                        resource = resource.route(route);
                    }
                }
                cfg.service(resource.default_service(web::to(move || {
                    let allow = allow.clone();
                    async move { method_not_allowed(&allow) }
                })));
            }
        }
    }
}

/// 405 for a known path asked for with another method.
fn method_not_allowed(allow: &str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allow.to_string()))
        .json(serde_json::json!({
            "error": "method_not_allowed",
            "detail": format!("this path takes {allow}"),
        }))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, error::ApiError> {
    state.store.ping().await.map_err(|e| {
        // The store's own text stays in the log: this route needs no credentials.
        tracing::warn!(error = %e, "readiness: the store does not answer");
        error::ApiError::unavailable("the store does not answer")
    })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_route_has_a_handler() {
        for (m, p) in ROUTES {
            assert!(handler(m, p).is_some(), "{m} {p} has no handler");
        }
    }
}
