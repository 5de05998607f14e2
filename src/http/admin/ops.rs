//! The admin operations as plain functions: each action and read of the admin API is one
//! function here, called by the JSON handlers (`http::admin`) and by the console (`ui`), so
//! both reach the actors and the store by the same code. Query strings are parsed here too
//! (`IncidentSearch::from_query`, `DeliverySearch::from_query`): the console's filter forms
//! use the API's parameter names.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::{AdminError, AdminState};
use crate::config::matcher::{parse_set, Matcher};
use crate::control::{GetRunning, ListEndpoints, Reload, ReloadSummary, RunningConfig};
use crate::delivery::actor::ReplayError;
use crate::delivery::actor::{
    DeliveryView, ListDeliveries, Ping, PingReport, Recover, Recovered, Replay,
};
use crate::delivery::pacing::CircuitState;
use crate::grouping::{GroupMeta, GROUP_TIMERS};
use crate::incidents::actor::ChangeIncident;
use crate::metrics::recent::RecentSummary;
use crate::metrics::Metrics;
use crate::model::delivery::DeliveryState;
use crate::model::Labels;
use crate::model::{AlertStatus, Incident, IncidentStatus, Severity};
use crate::runtime::route_test::{route_test, HoldContext, RouteTestReport};
use crate::store::groups::DEFAULT_GROUP_LIST_LIMIT;
use crate::store::query::{IncidentFilter, DEFAULT_INCIDENT_LIST_LIMIT, MAX_INCIDENT_LIST_LIMIT};

/// The largest payload the route tester takes, in bytes (actix-web's default body limit).
pub const MAX_ROUTE_TEST_BYTES: usize = 256 << 10;

pub(super) fn mailbox(e: actix::MailboxError) -> AdminError {
    AdminError::Unavailable(format!("actor unavailable: {e}"))
}

fn nonempty<'a>(q: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    q.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

pub fn parse_status(s: &str) -> Result<IncidentStatus, AdminError> {
    match s {
        "triggered" => Ok(IncidentStatus::Triggered),
        "acknowledged" => Ok(IncidentStatus::Acknowledged),
        "resolved" => Ok(IncidentStatus::Resolved),
        other => Err(AdminError::BadRequest(format!(
            "status `{other}`: expected triggered, acknowledged or resolved"
        ))),
    }
}

pub fn parse_state(s: &str) -> Result<DeliveryState, AdminError> {
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

/// Which incidents to list: `status`, `source`, `severity`, `matchers` (Alertmanager's
/// syntax, over the labels), `q` (words of the title, any case), `limit`.
#[derive(Debug, Default)]
pub struct IncidentSearch {
    pub status: Option<IncidentStatus>,
    pub source: Option<String>,
    pub severity: Option<Severity>,
    pub matchers: Vec<Matcher>,
    /// Lowercased; every word must be in the title.
    pub title: Option<String>,
    pub limit: usize,
}

impl IncidentSearch {
    pub fn from_query(q: &HashMap<String, String>) -> Result<IncidentSearch, AdminError> {
        let limit = match nonempty(q, "limit") {
            Some(l) => l
                .parse::<usize>()
                .map_err(|_| AdminError::BadRequest(format!("limit `{l}`: expected a number")))?
                .min(MAX_INCIDENT_LIST_LIMIT),
            None => DEFAULT_INCIDENT_LIST_LIMIT,
        };
        Ok(IncidentSearch {
            status: nonempty(q, "status").map(parse_status).transpose()?,
            source: nonempty(q, "source").map(str::to_string),
            severity: nonempty(q, "severity")
                .map(|s| {
                    s.parse::<Severity>().map_err(|_| {
                        AdminError::BadRequest(format!(
                            "severity `{s}`: expected critical, error, warning or info"
                        ))
                    })
                })
                .transpose()?,
            matchers: nonempty(q, "matchers")
                .map(parse_set)
                .transpose()
                .map_err(|e| AdminError::BadRequest(format!("matchers: {e}")))?
                .unwrap_or_default(),
            title: nonempty(q, "q").map(str::to_lowercase),
            limit,
        })
    }

    /// Whether the filters the store does not apply hold.
    fn keeps(&self, i: &Incident) -> bool {
        self.severity.is_none_or(|s| s == i.severity)
            && self
                .matchers
                .iter()
                .all(|m| m.matches(i.labels.get(&m.name).map(String::as_str).unwrap_or("")))
            && self.title.as_deref().is_none_or(|t| {
                let title = i.title.to_lowercase();
                t.split_whitespace().all(|w| title.contains(w))
            })
    }

    fn filters_beyond_store(&self) -> bool {
        self.severity.is_some() || !self.matchers.is_empty() || self.title.is_some()
    }
}

/// Incidents matching `search`, open ones first, then most recently started first. The
/// filters beyond status and source look at the newest [`MAX_INCIDENT_LIST_LIMIT`].
pub async fn list_incidents(
    admin: &AdminState,
    search: &IncidentSearch,
) -> Result<Vec<Incident>, AdminError> {
    let filter = IncidentFilter {
        status: search.status,
        source: search.source.clone(),
        limit: if search.filters_beyond_store() {
            MAX_INCIDENT_LIST_LIMIT
        } else {
            search.limit
        },
    };
    let mut list = admin
        .query
        .list_incidents(&filter)
        .await
        .map_err(|e| AdminError::Unavailable(e.to_string()))?;
    list.retain(|i| search.keeps(i));
    // Stable: the store's newest-first order within open and within resolved.
    list.sort_by_key(|i| i.status == IncidentStatus::Resolved);
    list.truncate(search.limit);
    Ok(list)
}

/// How many incidents of each status `search` finds (its own status left out).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StatusCounts {
    pub triggered: usize,
    pub acknowledged: usize,
    pub resolved: usize,
}

pub async fn count_incidents(
    admin: &AdminState,
    search: &IncidentSearch,
) -> Result<StatusCounts, AdminError> {
    let all = IncidentSearch {
        status: None,
        source: search.source.clone(),
        severity: search.severity,
        matchers: search.matchers.clone(),
        title: search.title.clone(),
        limit: MAX_INCIDENT_LIST_LIMIT,
    };
    let mut counts = StatusCounts::default();
    for i in list_incidents(admin, &all).await? {
        match i.status {
            IncidentStatus::Triggered => counts.triggered += 1,
            IncidentStatus::Acknowledged => counts.acknowledged += 1,
            IncidentStatus::Resolved => counts.resolved += 1,
        }
    }
    Ok(counts)
}

pub async fn get_incident(admin: &AdminState, id: &str) -> Result<Incident, AdminError> {
    admin
        .query
        .get_incident(id)
        .await
        .map_err(|e| AdminError::Unavailable(e.to_string()))?
        .ok_or_else(|| AdminError::NotFound(format!("no incident with id `{id}`")))
}

/// Acknowledges or resolves an incident (recorded as an alert of that status by the
/// `IncidentActor`, so the same transition and events).
pub async fn change_incident(
    admin: &AdminState,
    id: String,
    to: AlertStatus,
) -> Result<Incident, AdminError> {
    Ok(admin
        .incidents
        .send(ChangeIncident { id, to })
        .await
        .map_err(mailbox)??)
}

/// Which deliveries to list: `endpoint`, `state`, `incident`.
#[derive(Debug, Default)]
pub struct DeliverySearch {
    pub endpoint: Option<String>,
    pub state: Option<DeliveryState>,
    pub incident: Option<String>,
}

impl DeliverySearch {
    pub fn from_query(q: &HashMap<String, String>) -> Result<DeliverySearch, AdminError> {
        Ok(DeliverySearch {
            endpoint: nonempty(q, "endpoint").map(str::to_string),
            state: nonempty(q, "state").map(parse_state).transpose()?,
            incident: nonempty(q, "incident").map(str::to_string),
        })
    }
}

/// An endpoint's pacing state beside its deliveries.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointStatus {
    pub name: String,
    pub circuit: CircuitState,
    pub disabled: bool,
    /// The answer to the ping sent when the config that added the endpoint loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ping: Option<PingReport>,
}

/// The delivery log of the endpoints searched.
#[derive(Debug, Serialize)]
pub struct DeliveryList {
    pub endpoints: Vec<EndpointStatus>,
    pub deliveries: Vec<DeliveryView>,
}

pub async fn list_deliveries(
    admin: &AdminState,
    search: &DeliverySearch,
) -> Result<DeliveryList, AdminError> {
    let mut actors = admin.control.send(ListEndpoints).await.map_err(mailbox)?;
    if let Some(name) = &search.endpoint {
        actors.retain(|(n, _)| n == name);
        if actors.is_empty() {
            return Err(AdminError::NotFound(format!("no endpoint named `{name}`")));
        }
    }
    let mut out = DeliveryList {
        endpoints: Vec::new(),
        deliveries: Vec::new(),
    };
    for (_, addr) in actors {
        let list = addr
            .send(ListDeliveries)
            .await
            .map_err(mailbox)?
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        out.endpoints.push(EndpointStatus {
            name: list.endpoint,
            circuit: list.circuit,
            disabled: list.disabled,
            last_ping: list.last_ping,
        });
        out.deliveries
            .extend(list.deliveries.into_iter().filter(|d| {
                search.state.is_none_or(|s| d.state == s)
                    && search
                        .incident
                        .as_deref()
                        .is_none_or(|i| d.incident_id == i)
            }));
    }
    Ok(out)
}

/// A replay's new delivery.
#[derive(Debug, Serialize)]
pub struct Replayed {
    pub replay_of: String,
    pub delivery_id: String,
    pub endpoint: String,
}

/// Sends a finished delivery's event again, as a new delivery.
pub async fn replay(admin: &AdminState, id: &str) -> Result<Replayed, AdminError> {
    let actors = admin.control.send(ListEndpoints).await.map_err(mailbox)?;
    for (name, addr) in actors {
        match addr.send(Replay(id.to_string())).await.map_err(mailbox)? {
            Ok(new_id) => {
                return Ok(Replayed {
                    replay_of: id.to_string(),
                    delivery_id: new_id,
                    endpoint: name,
                });
            }
            Err(ReplayError::Unavailable(e)) => return Err(AdminError::Unavailable(e)),
            Err(ReplayError::NotFound) => {}
        }
    }
    // Not finished anywhere: a delivery still being tried is a conflict, not a missing one.
    for (_, addr) in admin.control.send(ListEndpoints).await.map_err(mailbox)? {
        let Ok(Ok(list)) = addr.send(ListDeliveries).await else {
            continue;
        };
        if let Some(d) = list.deliveries.iter().find(|d| d.id == id) {
            return Err(AdminError::Conflict(format!(
                "delivery `{id}` is {} (still being tried); replay it once it is delivered or dead",
                state_name(d.state)
            )));
        }
    }
    Err(AdminError::NotFound(format!("no delivery with id `{id}`")))
}

/// What a recovery queued.
#[derive(Debug, Serialize)]
pub struct Recovery {
    pub endpoint: String,
    pub replayed: usize,
    pub replays: Vec<Recovered>,
}

/// Sends every dead delivery of endpoint `name` again (of events at or after `since`), in
/// order, each as a new delivery.
pub async fn recover(
    admin: &AdminState,
    name: &str,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Recovery, AdminError> {
    let actors = admin.control.send(ListEndpoints).await.map_err(mailbox)?;
    let (_, addr) = actors
        .into_iter()
        .find(|(n, _)| n == name)
        .ok_or_else(|| AdminError::NotFound(format!("no endpoint named `{name}`")))?;
    let replays = addr
        .send(Recover { since })
        .await
        .map_err(mailbox)?
        .map_err(|e| AdminError::Unavailable(e.to_string()))?;
    Ok(Recovery {
        endpoint: name.to_string(),
        replayed: replays.len(),
        replays,
    })
}

/// A delivery state's name as the API writes it.
pub fn state_name(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Failed => "failed",
        DeliveryState::Dead => "dead",
    }
}

/// Sends a test event to one endpoint (not queued, not retried) and returns what it got.
pub async fn test_endpoint(admin: &AdminState, name: &str) -> Result<PingReport, AdminError> {
    let actors = admin.control.send(ListEndpoints).await.map_err(mailbox)?;
    let (_, addr) = actors
        .into_iter()
        .find(|(n, _)| n == name)
        .ok_or_else(|| AdminError::NotFound(format!("no endpoint named `{name}`")))?;
    addr.send(Ping).await.map_err(mailbox)
}

/// Reloads routes.yaml.
pub async fn reload(admin: &AdminState) -> Result<ReloadSummary, AdminError> {
    match admin.control.send(Reload).await.map_err(mailbox)? {
        Ok(summary) => Ok(summary),
        Err(errors) => Err(AdminError::InvalidConfig(
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}

/// One endpoint as the endpoints list shows it.
#[derive(Debug, Serialize)]
pub struct EndpointOverview {
    pub name: String,
    pub kind: &'static str,
    /// `ok`, `circuit_open`, `circuit_half_open`, `disabled` (answered 410) or `retired`
    /// (no longer in the config; finishing what it holds).
    pub state: &'static str,
    /// Deliveries not yet finished (this process's gauge, as `/metrics` shows it).
    pub queue_depth: i64,
    /// This process's attempts over the last hour.
    pub last_hour: RecentSummary,
}

/// Every endpoint with its kind, state, queue depth and last hour.
pub async fn list_endpoints(
    admin: &AdminState,
    metrics: &Metrics,
) -> Result<Vec<EndpointOverview>, AdminError> {
    let running = running(admin).await?;
    let list = list_deliveries(admin, &DeliverySearch::default()).await?;
    let status_of = |name: &str| list.endpoints.iter().find(|e| e.name == name);
    let state = |name: &str, retired: bool| match status_of(name) {
        _ if retired => "retired",
        Some(e) if e.disabled => "disabled",
        Some(e) if e.circuit == CircuitState::Open => "circuit_open",
        Some(e) if e.circuit == CircuitState::HalfOpen => "circuit_half_open",
        _ => "ok",
    };
    let overview = |name: &str, kind: &'static str, retired: bool| EndpointOverview {
        name: name.to_string(),
        kind,
        state: state(name, retired),
        queue_depth: metrics.queue_depth_of(name),
        last_hour: metrics.recent(name).summary(),
    };
    Ok(running
        .endpoints
        .iter()
        .map(|e| overview(&e.name, e.kind.as_str(), false))
        .chain(running.retired.iter().map(|n| overview(n, "retired", true)))
        .collect())
}

/// The running config's sources, endpoints and routes.
pub async fn running(admin: &AdminState) -> Result<Arc<RunningConfig>, AdminError> {
    admin.control.send(GetRunning).await.map_err(mailbox)
}

/// Runs `body` through source `source` and the running routes, sending nothing: what
/// `switchyard route-test` prints for the config file.
pub async fn test_route(
    admin: &AdminState,
    source: &str,
    body: Vec<u8>,
) -> Result<RouteTestReport, AdminError> {
    if body.len() > MAX_ROUTE_TEST_BYTES {
        return Err(AdminError::BadRequest(format!(
            "the payload is larger than {MAX_ROUTE_TEST_BYTES} bytes"
        )));
    }
    let running = running(admin).await?;
    let source = source.to_string();
    let now = chrono::Utc::now();
    // The silences in force (the API's and routes.yaml's) and the inhibit rules.
    let ctx = HoldContext {
        at: now,
        silences: admin.holding.silences(now).await.unwrap_or_default(),
        inhibit_rules: admin.holding.inhibit_rules().to_vec(),
    };
    // route_test runs a runtime of its own: on the blocking pool, not on this worker.
    actix_web::web::block(move || {
        route_test(
            &running.sources,
            &running.routes,
            &ctx,
            &source,
            &body,
            None,
        )
    })
    .await
    .map_err(|e| AdminError::Unavailable(format!("route test: {e}")))?
    .map_err(|e| AdminError::BadRequest(e.to_string()))
}

/// One notification group as the admin API shows it.
#[derive(Debug, Serialize)]
pub struct GroupView {
    pub key: String,
    pub route: Option<String>,
    pub labels: Option<Labels>,
    pub endpoints: Option<Vec<String>>,
    pub incident_ids: Vec<String>,
    /// The incidents changed since the last notification.
    pub changed: Vec<String>,
    pub notified_at: Option<chrono::DateTime<chrono::Utc>>,
    pub next_notification_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Every notification group (up to [`DEFAULT_GROUP_LIST_LIMIT`]) with its incidents and when
/// it is notified next.
pub async fn list_groups(admin: &AdminState) -> Result<Vec<GroupView>, AdminError> {
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
        views.push(GroupView {
            changed: g
                .members
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(id, _)| id.clone())
                .collect(),
            incident_ids: g.members.into_keys().collect(),
            route: meta.as_ref().map(|m| m.route.clone()),
            labels: meta.as_ref().map(|m| m.labels.clone()),
            endpoints: meta.map(|m| m.endpoints),
            key: g.key,
            notified_at: g.notified_at,
            next_notification_at: next,
        });
    }
    Ok(views)
}
