//! `POST /ingest/{source}`: admission, content checks, the credentials that need no body, and
//! reading the body (size limit, deadline, memory budget) here; the signature, parsing and
//! recording in the source's actor chain. Answers 202 once the alerts are recorded and their
//! events queued.
//!
//! The order guards ingest against senders who are slow or not allowed: a request is refused
//! on its headers when it can be (404, 415, 413, 403 for an address outside the source's
//! `allow_from`, 401) before a byte of its body is read; a
//! body must arrive within `server.body_timeout` (408) and its bytes are counted against a
//! shared budget (503); and a request takes one of the `max_inflight_requests` places only
//! once its body is whole, so connections that send nothing hold nothing that others need.

use std::time::Instant;

use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::BytesMut;
use chrono::Utc;
use futures_util::StreamExt;
use serde::Serialize;

use super::error::ApiError;
use super::AppState;
use crate::config::types::SourceKind;
use crate::metrics::{IngestLabels, SourceLabels};
use crate::sources::actor::{Ingest, IngestError, SourceEntry};
use bytes::Bytes;
use tokio::sync::SemaphorePermit;

/// Most events listed in a 202 answer; the rest are counted in `events_omitted`, so a body of
/// 100,000 alerts is not answered with megabytes the sender does not read.
pub const DEFAULT_MAX_EVENTS_ANSWERED: usize = 1_000;

#[derive(Serialize)]
struct Accepted {
    accepted: usize,
    events: Vec<EventRef>,
    #[serde(skip_serializing_if = "is_zero")]
    events_omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct EventRef {
    #[serde(rename = "type")]
    kind: &'static str,
    incident_id: String,
}

pub async fn ingest(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let Some((source, path)) = source_path(req.match_info().unprocessed()) else {
        return HttpResponse::NotFound().finish();
    };
    if req.method() != Method::POST {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "POST"))
            .finish();
    }
    let source = source.to_string();
    // One lookup: the entry is taken now, so a reload in between changes nothing here.
    let entry = state.sources.get(&source);
    let known = entry.is_some();
    let response = match handle(&state, &source, path, entry, &req, payload).await {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!(source = %source, status = e.status.as_u16(), error = %e, "ingest refused");
            } else {
                tracing::info!(source = %source, status = e.status.as_u16(), error = %e, "ingest refused");
            }
            actix_web::ResponseError::error_response(&e)
        }
    };
    // Unknown names are not used as label values (they are chosen by the caller).
    let label = if known {
        source
    } else {
        String::from("_unknown")
    };
    state
        .metrics
        .ingest_requests
        .get_or_create(&IngestLabels {
            source: label.clone(),
            code: response.status().as_u16(),
        })
        .inc();
    if known {
        state
            .metrics
            .ingest_duration
            .get_or_create(&SourceLabels { source: label })
            .observe(started.elapsed().as_secs_f64());
    }
    response
}

/// Which of a source's URLs a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IngestPath {
    /// `POST /ingest/{source}`.
    Source,
    /// `POST /ingest/{source}/api/v2/alerts` (or `/api/v1/alerts`): the path Prometheus posts
    /// to on an Alertmanager, so that `path_prefix: /ingest/{source}` points Prometheus straight
    /// at a `kind: alertmanager` source.
    AlertmanagerApi,
}

/// The paths under `/ingest/{source}` Prometheus calls on an Alertmanager (`api_version: v2`,
/// and `v1` of Prometheus before 3.0; the body is the same array of alerts).
const ALERTMANAGER_API_PATHS: [&str; 2] = ["/api/v2/alerts", "/api/v1/alerts"];

/// The source's name from the path after `/ingest`: exactly one non-empty segment, as a
/// `{source}` pattern would match (`/bench`, not `/`, `/a/b` or an empty rest), optionally
/// followed by one of [`ALERTMANAGER_API_PATHS`]. The name is taken as sent: source names are
/// letters, digits, `-`, `_` and `.` (checked at config load), so a percent-encoded one names
/// no source and gets 404.
fn source_path(rest: &str) -> Option<(&str, IngestPath)> {
    let rest = rest.strip_prefix('/')?;
    let (name, path) = match rest.split_once('/') {
        None => (rest, IngestPath::Source),
        Some((name, _)) => {
            let tail = &rest[name.len()..];
            if !ALERTMANAGER_API_PATHS.contains(&tail) {
                return None;
            }
            (name, IngestPath::AlertmanagerApi)
        }
    };
    (!name.is_empty()).then_some((name, path))
}

async fn handle(
    state: &AppState,
    source: &str,
    path: IngestPath,
    entry: Option<SourceEntry>,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Some(entry) = entry else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_source",
            format!("no source named `{}` is configured", shorten(source)),
        ));
    };
    if path == IngestPath::AlertmanagerApi && entry.spec.kind != SourceKind::Alertmanager {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_path",
            format!(
                "`/ingest/{source}/api/v2/alerts` is served for `kind: alertmanager` sources; \
                 `{source}` is `{}`: POST to /ingest/{source}",
                entry.spec.kind.as_str()
            ),
        ));
    }
    check_content_type(req)?;
    let limit = state.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    entry
        .spec
        .check_sender(req.peer_addr().map(|a| a.ip()), req.headers())
        .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()))?;
    let checked = entry
        .spec
        .authenticate_headers(req.headers(), Utc::now())
        .map_err(IngestError::from)?;
    if state.backlog.is_full() {
        return Err(ApiError::unavailable("delivery backlog is full"));
    }
    let (body, _bytes) = match tokio::time::timeout(
        state.body_timeout,
        read_body(state, payload, limit, declared),
    )
    .await
    {
        Ok(read) => read?,
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the body did not arrive within {}s (server.body_timeout)",
                    state.body_timeout.as_secs_f64()
                ),
            ))
        }
    };
    let Ok(_permit) = state.inflight.try_acquire() else {
        return Err(ApiError::unavailable("too many ingest requests in flight"));
    };
    state.metrics.ingest_in_flight.inc();
    let _gauge = GaugeGuard(&state.metrics.ingest_in_flight);
    let (reply, answer) = tokio::sync::oneshot::channel();
    // Bounded: this request holds an ingest permit (`_permit`) until it is answered.
    entry.actor.do_send(Ingest {
        checked,
        headers: req.headers().clone(),
        body,
        received_at: Utc::now(),
        reply,
    });
    let recorded = answer
        .await
        .map_err(|_| ApiError::unavailable("the source's actor stopped; try again"))??;
    let with_event = recorded.iter().filter(|r| r.event.is_some()).count();
    let events = recorded
        .iter()
        .filter_map(|r| {
            r.event.as_ref().map(|e| EventRef {
                kind: e.kind.as_str(),
                incident_id: e.incident.id.clone(),
            })
        })
        .take(DEFAULT_MAX_EVENTS_ANSWERED)
        .collect();
    Ok(HttpResponse::Accepted().json(Accepted {
        accepted: recorded.len(),
        events,
        events_omitted: with_event.saturating_sub(DEFAULT_MAX_EVENTS_ANSWERED),
    }))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("body larger than {limit} bytes"),
    )
}

/// Reads the body up to `limit` bytes, counting each chunk against the shared budget of
/// body memory (503 when it is spent); the budget's share is held until the request ends.
async fn read_body<'s>(
    state: &'s AppState,
    mut payload: web::Payload,
    limit: usize,
    declared: Option<usize>,
) -> Result<(Bytes, Option<SemaphorePermit<'s>>), ApiError> {
    let mut body = BytesMut::with_capacity(declared.unwrap_or(4096).min(limit));
    let mut held: Option<SemaphorePermit<'s>> = None;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("reading the body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        let n = u32::try_from(chunk.len()).map_err(|_| too_large(limit))?;
        let Ok(permit) = state.body_bytes.try_acquire_many(n) else {
            return Err(ApiError::unavailable(
                "too many request bodies are being read at once",
            ));
        };
        match &mut held {
            Some(h) => h.merge(permit),
            None => held = Some(permit),
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), held))
}

/// A name as sent, cut to a length fit for a message (it is the caller's text).
fn shorten(name: &str) -> String {
    const MAX: usize = 64;
    match name.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &name[..i]),
        None => name.to_string(),
    }
}

/// JSON bodies only: `application/json`, any `+json` type, `text/plain` (what AWS SNS sends),
/// or no content type at all; not compressed (`Content-Encoding` other than `identity`: 415).
fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    if let Some(enc) = req.headers().get(header::CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("").trim();
        if !enc.eq_ignore_ascii_case("identity") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!(
                    "Content-Encoding `{}` is not supported; send the body uncompressed",
                    shorten(enc)
                ),
            ));
        }
    }
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == "application/json" || essence.ends_with("+json") || essence == "text/plain" {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("content type `{essence}` is not JSON; send application/json"),
        ))
    }
}

struct GaugeGuard<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::{source_path, IngestPath};

    fn source_name(rest: &str) -> Option<&str> {
        source_path(rest).map(|(n, _)| n)
    }

    #[test]
    fn the_source_name_is_the_one_segment_after_the_prefix() {
        assert_eq!(source_name("/prometheus"), Some("prometheus"));
        assert_eq!(source_name("/grafana.prod-1"), Some("grafana.prod-1"));
        for rest in [
            "",
            "/",
            "prometheus",
            "/a/b",
            "//a",
            "/a/",
            "/a/api/v2",
            "/a/api/v2/alerts/x",
            "//api/v2/alerts",
        ] {
            assert_eq!(source_name(rest), None, "{rest:?}");
        }
    }

    #[test]
    fn the_alertmanager_api_paths_follow_the_name() {
        assert_eq!(
            source_path("/prometheus"),
            Some(("prometheus", IngestPath::Source))
        );
        for tail in ["/api/v2/alerts", "/api/v1/alerts"] {
            assert_eq!(
                source_path(&format!("/prom{tail}")),
                Some(("prom", IngestPath::AlertmanagerApi)),
                "{tail}"
            );
        }
    }
}
