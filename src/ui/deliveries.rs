//! The delivery log by endpoint and state: each delivery with its attempts (time, status,
//! duration, error, the first KiB of the answer), the next retry of a failed one, and a
//! replay button for a finished one.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::incidents::encode_query;
use super::view::{self, Nav, Page};
use super::{failure, may_change, redirect, respond, signed_in, Console};
use crate::delivery::actor::DeliveryView;
use crate::http::admin::ops::{self, DeliverySearch};
use crate::http::AppState;
use crate::model::delivery::DeliveryState;

/// How many deliveries the page shows (unfinished first, then the newest finished).
pub const DEFAULT_DELIVERIES_SHOWN: usize = 200;

/// `GET /ui/deliveries?endpoint=&state=&incident=`
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let signed = match signed_in(&req, &state, &console) {
        Ok(s) => s,
        Err(refused) => return refused.response(),
    };
    let search = match DeliverySearch::from_query(&query) {
        Ok(s) => s,
        Err(e) => return failure(&signed, "Deliveries", e),
    };
    let (list, running) = match futures_util::try_join!(
        ops::list_deliveries(signed.admin, &search),
        ops::running(signed.admin),
    ) {
        Ok(r) => r,
        Err(e) => return failure(&signed, "Deliveries", e),
    };
    let names: Vec<&str> = running.endpoints.iter().map(|e| &*e.name).collect();
    let get = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    let body = html! {
        @if query.get("notice").map(String::as_str) == Some("replayed") {
            (view::notice_box(&format!("Replay queued as delivery {}.", short_id(get("id")))))
        }
        @if query.get("notice").map(String::as_str) == Some("recovered") {
            (view::notice_box(&format!("Recovered: {} dead deliveries of {} queued again.",
                get("count").parse::<usize>().unwrap_or(0), short_id(get("endpoint")))))
        }
        form.filters method="get" action="/ui/deliveries" aria-label="Filter deliveries" {
            div.row {
                (view::select("endpoint", "Endpoint", &names, get("endpoint")))
                (view::select("state", "State", &["pending", "failed", "delivered", "dead"], get("state")))
                @if !get("incident").is_empty() {
                    input type="hidden" name="incident" value=(get("incident"));
                }
                button type="submit" { "Apply" }
                a href="/ui/deliveries" { "Clear" }
            }
        }
        details #recover {
            summary { "Recover every dead delivery of an endpoint" }
            p.muted { "Sends each dead delivery of the endpoint again, oldest event first, as new deliveries (one already replayed is left out)." }
            div.actions {
                @for name in &names {
                    (view::post_button(&signed.csrf, &format!("/ui/endpoints/{name}/recover"), &format!("Recover dead of {name}"), true))
                }
            }
        }
    };
    let mut shown: Vec<&DeliveryView> = list
        .deliveries
        .iter()
        .filter(|d| matches!(d.state, DeliveryState::Pending | DeliveryState::Failed))
        .collect();
    // The log is oldest first: show the newest finished ones.
    shown.extend(
        list.deliveries
            .iter()
            .rev()
            .filter(|d| matches!(d.state, DeliveryState::Delivered | DeliveryState::Dead)),
    );
    let total = shown.len();
    shown.truncate(DEFAULT_DELIVERIES_SHOWN);
    let live = html! {
        ul.counts aria-label="Endpoints" {
            @for e in &list.endpoints {
                li {
                    span class=(if e.disabled { "badge b-bad" } else if e.circuit != crate::delivery::pacing::CircuitState::Closed { "badge b-warn" } else { "badge b-info" }) {
                        (e.name) ": "
                        (if e.disabled { "disabled (410)" } else { match e.circuit {
                            crate::delivery::pacing::CircuitState::Closed => "ok",
                            crate::delivery::pacing::CircuitState::Open => "circuit open",
                            crate::delivery::pacing::CircuitState::HalfOpen => "circuit half-open",
                        } })
                    }
                }
            }
        }
        @if total > shown.len() {
            p.muted { "Showing " (shown.len()) " of " (total) "; narrow by endpoint or state." }
        }
        (table(&shown, &signed.csrf, true))
    };
    respond(
        &req,
        Page::new(&signed, "Deliveries", Nav::Deliveries, body).with_live(live),
    )
}

/// An id or name from the query string, shown only if it looks like one.
fn short_id(id: &str) -> &str {
    if id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        id
    } else {
        ""
    }
}

/// Deliveries as a table, each with its attempts under a disclosure.
pub fn table(deliveries: &[&DeliveryView], csrf: &str, show_incident: bool) -> Markup {
    if deliveries.is_empty() {
        return html! { p { "No deliveries match." } };
    }
    html! {
        (view::table_wrap("Deliveries", html! {
            table {
                thead { tr {
                    th scope="col" { "Endpoint" } th scope="col" { "State" }
                    @if show_incident { th scope="col" .hide-narrow { "Event" } th scope="col" { "Incident" } }
                    th scope="col" { "Attempts" } th scope="col" { "Next retry" } th scope="col" { span.skip { "Actions" } }
                } }
                tbody {
                    @for d in deliveries {
                        tr id=(format!("row-{}", d.id)) {
                            td { (d.endpoint) }
                            td { (view::state_badge(d.state))
                                 @if d.replay_of.is_some() { " " span.muted { "(replay)" } } }
                            @if show_incident {
                                td.hide-narrow { code { (d.event_type) } }
                                td { a href=(format!("/ui/incidents/{}", d.incident_id)) .mono { (d.incident_id) } }
                            }
                            td { (attempts(d)) }
                            td { @if let Some(t) = d.next_attempt_at { (view::time(t)) } }
                            td {
                                @if matches!(d.state, DeliveryState::Delivered | DeliveryState::Dead) {
                                    (view::post_button(csrf, &format!("/ui/deliveries/{}/replay", d.id), "Replay", true))
                                }
                            }
                        }
                    }
                }
            }
        }))
    }
}

fn attempts(d: &DeliveryView) -> Markup {
    let last = d.attempts.last();
    let summary = match last {
        None => "none yet".to_string(),
        Some(a) => format!(
            "{} · last: {}",
            d.attempts.len(),
            match (a.status, &a.error) {
                (Some(s), _) => format!("HTTP {s}"),
                (None, Some(e)) => e.chars().take(40).collect(),
                (None, None) => "no answer".to_string(),
            }
        ),
    };
    if d.attempts.is_empty() {
        return html! { (summary) };
    }
    html! {
        details id=(format!("att-{}", d.id)) {
            summary { (summary) }
            ol {
                @for a in &d.attempts {
                    li {
                        (view::time(a.at)) " · "
                        (a.status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "no answer".into()))
                        " · " (a.duration_ms) " ms"
                        @if let Some(e) = &a.error { div { "Error: " (e) } }
                        @if !a.response.is_empty() { pre { (a.response) } }
                    }
                }
            }
            div.muted.mono { "delivery " (d.id) }
        }
    }
}

/// `POST /ui/deliveries/{id}/replay`
pub async fn replay(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
    id: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let signed = match may_change(&req, &state, &console, form.get("csrf").map(String::as_str)) {
        Ok(s) => s,
        Err(refused) => return refused.response(),
    };
    match ops::replay(signed.admin, &id).await {
        Ok(r) => redirect(&format!(
            "/ui/deliveries?{}",
            encode_query(&[
                ("endpoint", &r.endpoint),
                ("notice", "replayed"),
                ("id", &r.delivery_id)
            ])
        )),
        Err(e) => failure(&signed, "Deliveries", e),
    }
}

/// `POST /ui/endpoints/{name}/recover`: every dead delivery of the endpoint sent again.
pub async fn recover(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
    name: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let signed = match may_change(&req, &state, &console, form.get("csrf").map(String::as_str)) {
        Ok(s) => s,
        Err(refused) => return refused.response(),
    };
    match ops::recover(signed.admin, &name, None).await {
        Ok(r) => redirect(&format!(
            "/ui/deliveries?{}",
            encode_query(&[
                ("endpoint", &r.endpoint),
                ("notice", "recovered"),
                ("count", &r.replayed.to_string())
            ])
        )),
        Err(e) => failure(&signed, "Deliveries", e),
    }
}
