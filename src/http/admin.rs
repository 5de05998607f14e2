//! The admin API (`/api/v1/...`): incidents (list, get, acknowledge, resolve), the delivery log
//! with every attempt, replays, test pings and config reloads. Every call needs
//! `Authorization: Bearer <server.admin_token>`; without a token in the config the whole API
//! is off and answers 404. Acknowledge and resolve go through the `IncidentActor`, so they
//! emit and route the same events as alerts do.

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
use crate::control::{ControlActor, ListEndpoints, Reload};
use crate::delivery::actor::ReplayError;
use crate::delivery::actor::{DeliveryView, ListDeliveries, Ping, Replay};
use crate::grouping::{GroupMeta, GROUP_TIMERS};
use crate::incidents::actor::{ChangeError, ChangeIncident, IncidentActor};
use crate::model::delivery::DeliveryState;
use crate::model::{AlertStatus, Incident, IncidentStatus, SourceRef};
use crate::store::groups::{Groups, DEFAULT_GROUP_LIST_LIMIT};
use crate::store::query::{
    IncidentFilter, IncidentQuery, DEFAULT_INCIDENT_LIST_LIMIT, MAX_INCIDENT_LIST_LIMIT,
};
use crate::store::timers::Timers;

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

fn mailbox(e: actix::MailboxError) -> AdminError {
    AdminError::Unavailable(format!("actor unavailable: {e}"))
}

/// The admin state when the request carries the right bearer token.
fn authorize<'a>(req: &HttpRequest, state: &'a AppState) -> Result<&'a AdminState, AdminError> {
    let admin = state.admin.as_deref().ok_or(AdminError::Off)?;
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AdminError::Unauthorized)?;
    if bool::from(given.as_bytes().ct_eq(admin.token.expose().as_bytes())) {
        Ok(admin)
    } else {
        Err(AdminError::Unauthorized)
    }
}

/// An incident as the admin API shows it: the webhook fields plus its source.
#[derive(Serialize)]
pub struct IncidentView<'a> {
    #[serde(flatten)]
    pub incident: &'a Incident,
    pub source: Option<&'a SourceRef>,
}

fn incident_view(i: &Incident) -> IncidentView<'_> {
    IncidentView {
        incident: i,
        source: i.source.as_ref(),
    }
}

fn parse_status(s: &str) -> Result<IncidentStatus, AdminError> {
    match s {
        "triggered" => Ok(IncidentStatus::Triggered),
        "acknowledged" => Ok(IncidentStatus::Acknowledged),
        "resolved" => Ok(IncidentStatus::Resolved),
        other => Err(AdminError::BadRequest(format!(
            "status `{other}`: expected triggered, acknowledged or resolved"
        ))),
    }
}

/// `GET /api/v1/incidents?status=&source=&limit=`
pub async fn list_incidents(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let status = q
        .get("status")
        .filter(|s| !s.is_empty())
        .map(|s| parse_status(s))
        .transpose()?;
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| AdminError::BadRequest(format!("limit `{l}`: expected a number")))?
            .min(MAX_INCIDENT_LIST_LIMIT),
        None => DEFAULT_INCIDENT_LIST_LIMIT,
    };
    let filter = IncidentFilter {
        status,
        source: q.get("source").filter(|s| !s.is_empty()).cloned(),
        limit,
    };
    let list = admin
        .query
        .list_incidents(&filter)
        .await
        .map_err(|e| AdminError::Unavailable(e.to_string()))?;
    let views: Vec<_> = list.iter().map(incident_view).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "incidents": views })))
}

/// `GET /api/v1/groups`: every notification group (up to [`DEFAULT_GROUP_LIST_LIMIT`]) with
/// its incidents and when it is notified next.
pub async fn list_groups(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let unavailable = |e: crate::store::StoreError| AdminError::Unavailable(e.to_string());
    let groups = admin
        .groups
        .list(DEFAULT_GROUP_LIST_LIMIT)
        .await
        .map_err(unavailable)?;
    let mut views = Vec::with_capacity(groups.len());
    for g in groups {
        let meta: Option<GroupMeta> = serde_json::from_str(&g.meta).ok();
        let next = admin
            .timers
            .get(GROUP_TIMERS, &g.key)
            .await
            .map_err(unavailable)?
            .map(|t| t.due);
        let changed: Vec<&String> = g
            .members
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(id, _)| id)
            .collect();
        views.push(serde_json::json!({
            "key": g.key,
            "route": meta.as_ref().map(|m| m.route.as_str()),
            "labels": meta.as_ref().map(|m| &m.labels),
            "endpoints": meta.as_ref().map(|m| &m.endpoints),
            "incident_ids": g.members.keys().collect::<Vec<_>>(),
            "changed": changed,
            "notified_at": g.notified_at,
            "next_notification_at": next,
        }));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "groups": views })))
}

/// `GET /api/v1/incidents/{id}`
pub async fn get_incident(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let incident = admin
        .query
        .get_incident(&id)
        .await
        .map_err(|e| AdminError::Unavailable(e.to_string()))?
        .ok_or_else(|| AdminError::NotFound(format!("no incident with id `{id}`")))?;
    Ok(HttpResponse::Ok().json(incident_view(&incident)))
}

async fn change(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: String,
    to: AlertStatus,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let incident = admin
        .incidents
        .send(ChangeIncident { id, to })
        .await
        .map_err(mailbox)?
        .map_err(AdminError::from)?;
    Ok(HttpResponse::Ok().json(incident_view(&incident)))
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

fn parse_state(s: &str) -> Result<DeliveryState, AdminError> {
    match s {
        "pending" => Ok(DeliveryState::Pending),
        "delivered" => Ok(DeliveryState::Delivered),
        "failed" => Ok(DeliveryState::Failed),
        "dead" => Ok(DeliveryState::Dead),
        other => Err(AdminError::BadRequest(format!(
            "state `{other}`: expected pending, delivered, failed or dead"
        ))),
    }
}

#[derive(Serialize)]
struct EndpointStatus {
    name: String,
    circuit: crate::delivery::pacing::CircuitState,
    disabled: bool,
}

/// `GET /api/v1/deliveries?endpoint=&state=`
pub async fn list_deliveries(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let want_state = q
        .get("state")
        .filter(|s| !s.is_empty())
        .map(|s| parse_state(s))
        .transpose()?;
    let want_endpoint = q.get("endpoint").filter(|s| !s.is_empty());
    let mut actors = admin.control.send(ListEndpoints).await.map_err(mailbox)?;
    if let Some(name) = want_endpoint {
        actors.retain(|(n, _)| n == name);
        if actors.is_empty() {
            return Err(AdminError::NotFound(format!("no endpoint named `{name}`")).into());
        }
    }
    let mut deliveries: Vec<DeliveryView> = Vec::new();
    let mut endpoints = Vec::new();
    for (_, addr) in actors {
        let list = addr
            .send(ListDeliveries)
            .await
            .map_err(mailbox)?
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        endpoints.push(EndpointStatus {
            name: list.endpoint,
            circuit: list.circuit,
            disabled: list.disabled,
        });
        deliveries.extend(
            list.deliveries
                .into_iter()
                .filter(|d| want_state.is_none_or(|s| d.state == s)),
        );
    }
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "endpoints": endpoints, "deliveries": deliveries })))
}

/// `POST /api/v1/deliveries/{id}/replay`
pub async fn replay(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let actors = admin.control.send(ListEndpoints).await.map_err(mailbox)?;
    for (name, addr) in actors {
        match addr.send(Replay(id.to_string())).await.map_err(mailbox)? {
            Ok(new_id) => {
                return Ok(HttpResponse::Accepted().json(serde_json::json!({
                    "replay_of": id.as_str(), "delivery_id": new_id, "endpoint": name,
                })));
            }
            Err(ReplayError::Unavailable(e)) => return Err(AdminError::Unavailable(e).into()),
            Err(ReplayError::NotFound) => {}
        }
    }
    // Not finished anywhere: a delivery still being tried is a conflict, not a missing one.
    for (_, addr) in admin.control.send(ListEndpoints).await.map_err(mailbox)? {
        let Ok(Ok(list)) = addr.send(ListDeliveries).await else {
            continue;
        };
        if let Some(d) = list.deliveries.iter().find(|d| d.id == id.as_str()) {
            return Err(AdminError::Conflict(format!(
                "delivery `{id}` is {} (still being tried); replay it once it is delivered or dead",
                serde_json::to_value(d.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ))
            .into());
        }
    }
    Err(AdminError::NotFound(format!("no delivery with id `{id}`")).into())
}

/// `POST /api/v1/endpoints/{name}/test`
pub async fn test_endpoint(
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let actors = admin.control.send(ListEndpoints).await.map_err(mailbox)?;
    let (_, addr) = actors
        .into_iter()
        .find(|(n, _)| n == name.as_str())
        .ok_or_else(|| AdminError::NotFound(format!("no endpoint named `{name}`")))?;
    let report = addr.send(Ping).await.map_err(mailbox)?;
    Ok(HttpResponse::Ok().json(report))
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
    match admin.control.send(Reload).await.map_err(mailbox)? {
        Ok(summary) => Ok(HttpResponse::Ok().json(summary)),
        Err(errors) => Err(AdminError::InvalidConfig(
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .into()),
    }
}
