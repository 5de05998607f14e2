//! The admin API (`/api/v1/...`): incidents (list, get, acknowledge, resolve), the delivery log
//! with every attempt, replays, test pings and config reloads. Every call needs
//! `Authorization: Bearer <server.admin_token>`; without a token in the config the whole API
//! is off and answers 404. Acknowledge and resolve go through the `IncidentActor`, so they
//! emit and route the same events as alerts do. The handlers here check the token and turn
//! the plain functions of [`ops`] (which the console calls too) into JSON.

pub mod ops;

use std::collections::HashMap;
use std::sync::Arc;

use actix::Addr;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use subtle::ConstantTimeEq;
use thiserror::Error;

use super::error::ApiError;
use super::AppState;
use crate::config::types::Secret;
use crate::control::ControlActor;
use crate::holding::{hold_key, Cause, Holding};
use crate::incidents::actor::{ChangeError, IncidentActor};
use crate::model::{AlertStatus, Incident, SourceRef};
use crate::store::groups::Groups;
use crate::store::query::IncidentQuery;
use crate::store::timers::Timers;
use ops::{DeliverySearch, IncidentSearch};

/// What the admin handlers need.
pub struct AdminState {
    pub token: Secret,
    pub control: Addr<ControlActor>,
    pub incidents: Addr<IncidentActor>,
    pub query: Arc<dyn IncidentQuery>,
    /// The file store, for backups; None with another store.
    pub file_store: Option<Arc<crate::store::file::FileStore>>,
    /// Notification groups and their timers (`GET /api/v1/groups`).
    pub groups: Arc<dyn Groups>,
    pub timers: Arc<dyn Timers>,
    /// Silences and held incidents (`/api/v2/silences`, `silenced_by`).
    pub holding: Arc<Holding>,
}

/// Why an admin call failed; `http::error` maps each to its answer.
#[derive(Debug, Error)]
pub enum AdminError {
    #[error("the admin API is off (no server.admin_token)")]
    Off,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    Unavailable(String),
}

impl From<ChangeError> for AdminError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::NotFound(_) => AdminError::NotFound(e.to_string()),
            ChangeError::Conflict { .. } => AdminError::Conflict(e.to_string()),
            ChangeError::Unsupported | ChangeError::Store(_) | ChangeError::Record(_) => {
                AdminError::Unavailable(e.to_string())
            }
        }
    }
}

/// Whether `given` is the admin token (constant time).
pub fn token_matches(admin: &AdminState, given: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(admin.token.expose().as_bytes()))
}

/// The admin state when the request carries the right bearer token.
pub(super) fn authorize<'a>(
    req: &HttpRequest,
    state: &'a AppState,
) -> Result<&'a AdminState, AdminError> {
    let admin = state.admin.as_deref().ok_or(AdminError::Off)?;
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AdminError::Unauthorized)?;
    if token_matches(admin, given) {
        Ok(admin)
    } else {
        Err(AdminError::Unauthorized)
    }
}

/// An incident as the admin API shows it: the webhook fields plus its source and what holds
/// its events now (silences, inhibiting incidents, time intervals).
#[derive(Serialize)]
pub struct IncidentView<'a> {
    #[serde(flatten)]
    pub incident: &'a Incident,
    pub source: Option<&'a SourceRef>,
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
    pub muted_by: Vec<String>,
}

/// The views of `incidents`, with their holds (one store read for all of them).
async fn incident_views<'a>(
    admin: &AdminState,
    incidents: &'a [Incident],
) -> Result<Vec<IncidentView<'a>>, AdminError> {
    let key = |i: &Incident| i.source.as_ref().map(|s| hold_key(&s.name, &i.dedup_key));
    let keys: Vec<String> = incidents.iter().filter_map(key).collect();
    let holds = admin
        .holding
        .holds_of(keys)
        .await
        .map_err(|e| AdminError::Unavailable(e.to_string()))?;
    Ok(incidents
        .iter()
        .map(|i| {
            let mut v = IncidentView {
                incident: i,
                source: i.source.as_ref(),
                silenced_by: Vec::new(),
                inhibited_by: Vec::new(),
                muted_by: Vec::new(),
            };
            let hold = key(i).and_then(|k| holds.get(&k));
            for c in hold.iter().flat_map(|h| &h.causes) {
                match c {
                    Cause::Silence(id) => v.silenced_by.push(id.clone()),
                    Cause::Inhibition(id) => v.inhibited_by.push(id.clone()),
                    Cause::Interval(name) => v.muted_by.push(name.clone()),
                }
            }
            v
        })
        .collect())
}

/// `GET /api/v1/incidents?status=&source=&severity=&matchers=&q=&limit=`
pub async fn list_incidents(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let list = ops::list_incidents(admin, &IncidentSearch::from_query(&q)?).await?;
    let views = incident_views(admin, &list).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "incidents": views })))
}

/// `GET /api/v1/groups`: every notification group (up to
/// [`crate::store::groups::DEFAULT_GROUP_LIST_LIMIT`]) with its incidents and when it is
/// notified next.
pub async fn list_groups(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let groups = ops::list_groups(admin).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "groups": groups })))
}

/// `GET /api/v1/incidents/{id}`
pub async fn get_incident(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let incident = ops::get_incident(admin, &id).await?;
    let one = std::slice::from_ref(&incident);
    Ok(HttpResponse::Ok().json(&incident_views(admin, one).await?[0]))
}

async fn change(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: String,
    to: AlertStatus,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let incident = ops::change_incident(admin, id, to).await?;
    let one = std::slice::from_ref(&incident);
    Ok(HttpResponse::Ok().json(&incident_views(admin, one).await?[0]))
}

/// `POST /api/v1/incidents/{id}/acknowledge`
pub async fn acknowledge(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    change(req, state, id.into_inner(), AlertStatus::Acknowledged).await
}

/// `POST /api/v1/incidents/{id}/resolve`
pub async fn resolve(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    change(req, state, id.into_inner(), AlertStatus::Resolved).await
}

/// `GET /api/v1/deliveries?endpoint=&state=&incident=`
pub async fn list_deliveries(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let list = ops::list_deliveries(admin, &DeliverySearch::from_query(&q)?).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// `POST /api/v1/deliveries/{id}/replay`
pub async fn replay(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    Ok(HttpResponse::Accepted().json(ops::replay(admin, &id).await?))
}

/// `GET /api/v1/endpoints`
pub async fn list_endpoints(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let list = ops::list_endpoints(admin, &state.metrics).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "endpoints": list })))
}

/// `?since=` of a recovery.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverQuery {
    /// RFC 3339: only deliveries of events at or after this time.
    since: Option<String>,
}

/// `POST /api/v1/endpoints/{name}/recover`
pub async fn recover(
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let query = web::Query::<RecoverQuery>::from_query(req.query_string())
        .map_err(|e| AdminError::BadRequest(e.to_string()))?;
    let since = match query.since.as_deref() {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| {
                    AdminError::BadRequest(format!(
                        "since: `{s}` is not an RFC 3339 time (2026-11-22T10:30:00Z): {e}"
                    ))
                })?
                .to_utc(),
        ),
    };
    Ok(HttpResponse::Accepted().json(ops::recover(admin, &name, since).await?))
}

/// `POST /api/v1/endpoints/{name}/test`
pub async fn test_endpoint(
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    Ok(HttpResponse::Ok().json(ops::test_endpoint(admin, &name).await?))
}

/// `POST /api/v1/route-test?source=`: the body is the payload.
pub async fn test_route(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<HashMap<String, String>>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let source = q
        .get("source")
        .ok_or_else(|| AdminError::BadRequest("source: missing".into()))?;
    let report = ops::test_route(admin, source, body.to_vec()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "text": report.text,
        "endpoints": report.endpoints,
    })))
}

/// `POST /api/v1/store/backup`: a consistent snapshot of the file store, kept in
/// `<store.path>/backups/<time>/` (a data directory of its own). 409 with another store.
pub async fn backup(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let Some(store) = admin.file_store.clone() else {
        return Err(AdminError::Conflict(
            "backups are made by the file store (`store: {kind: file}`); this instance runs another store".into(),
        )
        .into());
    };
    let info = tokio::task::spawn_blocking(move || store.backup())
        .await
        .map_err(|e| AdminError::Unavailable(format!("backup task: {e}")))?
        .map_err(|e| AdminError::Unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "dir": info.dir,
        "generation": info.generation,
        "bytes": info.bytes,
    })))
}

/// `POST /api/v1/reload`
pub async fn reload(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    Ok(HttpResponse::Ok().json(ops::reload(admin).await?))
}
