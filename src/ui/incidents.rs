//! The incidents list (filters, title search, counts by status) and an incident's page: its
//! labels, annotations and links, a timeline, each event's deliveries, and the acknowledge
//! and resolve buttons.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::view::{self, Nav, Page};
use super::{failure, may_change, redirect, respond, signed_in, Console};
use crate::delivery::actor::DeliveryView;
use crate::delivery::kinds::text::encode_component;
use crate::http::admin::ops::{self, DeliverySearch, IncidentSearch, StatusCounts};
use crate::http::AppState;
use crate::model::{AlertStatus, Incident, IncidentStatus};

fn q<'a>(query: &'a HashMap<String, String>, key: &str) -> &'a str {
    query.get(key).map(String::as_str).unwrap_or("")
}

/// `GET /ui/incidents?status=&source=&severity=&matchers=&q=`
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
    let search = match IncidentSearch::from_query(&query) {
        Ok(s) => s,
        Err(e) => return failure(&signed, "Incidents", e),
    };
    let (list, counts, running) = match futures_util::try_join!(
        ops::list_incidents(signed.admin, &search),
        ops::count_incidents(signed.admin, &search),
        ops::running(signed.admin),
    ) {
        Ok(r) => r,
        Err(e) => return failure(&signed, "Incidents", e),
    };
    let sources: Vec<&str> = running.sources.iter().map(|s| &*s.name).collect();
    let body = html! {
        @if let Some(n) = notice(&query) { (view::notice_box(&n)) }
        form.filters method="get" action="/ui/incidents" aria-label="Filter incidents" {
            div.row {
                (view::select("status", "Status", &["triggered", "acknowledged", "resolved"], q(&query, "status")))
                (view::select("source", "Source", &sources, q(&query, "source")))
                (view::select("severity", "Severity", &["critical", "error", "warning", "info"], q(&query, "severity")))
                label { "Label matchers" input type="text" name="matchers" value=(q(&query, "matchers")) placeholder="{team=\"db\", env=~\"prod|staging\"}"; }
                label { "Title" input type="search" name="q" value=(q(&query, "q")) placeholder="words of the title"; }
                button type="submit" { "Apply" }
                a href="/ui/incidents" { "Clear" }
            }
        }
    };
    let live = html! {
        (count_links(&counts, &query))
        @if list.is_empty() {
            p { "No incidents match." }
        } @else {
            (view::table_wrap("Incidents", html! {
                table {
                    thead { tr {
                        th scope="col" { "Status" } th scope="col" { "Severity" } th scope="col" { "Title" }
                        th scope="col" .hide-narrow { "Source" } th scope="col" { "Started" }
                        th scope="col" .hide-narrow { "Last seen" } th scope="col" .num .hide-narrow { "Alerts" }
                    } }
                    tbody {
                        @for i in &list {
                            tr {
                                td { (view::status_badge(i.status)) }
                                td { (view::severity_badge(i.severity)) }
                                td { a href=(format!("/ui/incidents/{}", i.id)) { (i.title) } }
                                td.hide-narrow { (i.source.as_ref().map(|s| &*s.name).unwrap_or("")) }
                                td { (view::time(i.started_at)) }
                                td.hide-narrow { (view::time(i.last_seen_at)) }
                                td.num.hide-narrow { (i.occurrences) }
                            }
                        }
                    }
                }
            }))
        }
    };
    respond(
        &req,
        Page::new(&signed, "Incidents", Nav::Incidents, body).with_live(live),
    )
}

/// The counts by status, each a link to that status with the other filters kept.
fn count_links(counts: &StatusCounts, query: &HashMap<String, String>) -> Markup {
    let link = |status: &str| {
        let mut params: Vec<(&str, &str)> = ["source", "severity", "matchers", "q"]
            .iter()
            .filter_map(|k| query.get(*k).map(|v| (*k, v.as_str())))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        params.push(("status", status));
        format!("/ui/incidents?{}", encode_query(&params))
    };
    html! {
        ul.counts aria-label="Incidents by status" {
            li { a.badge.b-bad href=(link("triggered")) { (counts.triggered) " triggered" } }
            li { a.badge.b-warn href=(link("acknowledged")) { (counts.acknowledged) " acknowledged" } }
            li { a.badge.b-ok href=(link("resolved")) { (counts.resolved) " resolved" } }
        }
    }
}

/// `k=v&...` with the values percent-encoded.
pub fn encode_query(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The message of a `notice` left by an action's redirect (fixed texts: nothing of the query
/// string is shown but an id).
fn notice(query: &HashMap<String, String>) -> Option<String> {
    let id = query.get("id").map(String::as_str).unwrap_or("");
    let id_ok = id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let text = match query.get("notice").map(String::as_str)? {
        "acknowledged" => "Incident acknowledged.",
        "resolved" => "Incident resolved.",
        "replayed" => "Replay queued as a new delivery",
        _ => return None,
    };
    Some(if id_ok && !id.is_empty() {
        format!("{text} ({id})")
    } else {
        text.to_string()
    })
}

/// `GET /ui/incidents/{id}`
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
    id: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let signed = match signed_in(&req, &state, &console) {
        Ok(s) => s,
        Err(refused) => return refused.response(),
    };
    let search = DeliverySearch {
        incident: Some(id.to_string()),
        ..DeliverySearch::default()
    };
    let (incident, deliveries) = match futures_util::try_join!(
        ops::get_incident(signed.admin, &id),
        ops::list_deliveries(signed.admin, &search),
    ) {
        Ok(r) => r,
        Err(e) => return failure(&signed, "Incident", e),
    };
    let body = html! {
        p { a href="/ui/incidents" { "← All incidents" } }
        @if let Some(n) = notice(&query) { (view::notice_box(&n)) }
    };
    let live = incident_detail(&incident, &deliveries.deliveries, &signed.csrf);
    respond(
        &req,
        Page::new(&signed, &incident.title, Nav::Incidents, body).with_live(live),
    )
}

fn incident_detail(i: &Incident, deliveries: &[DeliveryView], csrf: &str) -> Markup {
    html! {
        div.actions {
            (view::status_badge(i.status)) (view::severity_badge(i.severity))
            @if i.status == IncidentStatus::Triggered {
                (view::post_button(csrf, &format!("/ui/incidents/{}/acknowledge", i.id), "Acknowledge", false))
            }
            @if i.status != IncidentStatus::Resolved {
                (view::post_button(csrf, &format!("/ui/incidents/{}/resolve", i.id), "Resolve", false))
            }
            @if !i.labels.is_empty() {
                a href=(super::silences::link_for(&i.labels)) { "Silence…" }
            }
        }
        @if !i.description.is_empty() { p { (i.description) } }
        dl.kv {
            dt { "Id" } dd.mono { (i.id) }
            dt { "Source" } dd { (i.source.as_ref().map(|s| format!("{} ({})", s.name, s.kind)).unwrap_or_default()) }
            dt { "Dedup key" } dd.mono { (i.dedup_key) }
            dt { "Started" } dd { (view::time(i.started_at)) }
            dt { "Last seen" } dd { (view::time(i.last_seen_at)) }
            dt { "Alerts" } dd { (i.occurrences) }
            @if let Some(r) = i.resolved_at { dt { "Resolved" } dd { (view::time(r)) } }
        }
        h2 { "Labels" }
        (pairs("Labels", &i.labels))
        @if !i.annotations.is_empty() {
            h2 { "Annotations" }
            (pairs("Annotations", &i.annotations))
        }
        @if !i.links.is_empty() {
            h2 { "Links" }
            ul { @for l in &i.links { li { (view::safe_link(&l.url, if l.label.is_empty() { &l.url } else { &l.label })) } } }
        }
        h2 { "Timeline" }
        (timeline(i, deliveries))
        h2 { "Events and their deliveries" }
        (events(deliveries, csrf))
    }
}

fn pairs(label: &str, map: &BTreeMap<String, String>) -> Markup {
    html! {
        @if map.is_empty() { p.muted { "None." } } @else {
            (view::table_wrap(label, html! {
                table { tbody { @for (k, v) in map { tr { th scope="row" .mono { (k) } td.mono { (v) } } } } }
            }))
        }
    }
}

/// The incident's life in time order: opened, each event with where it went, last alert,
/// resolved. (Events appear through their deliveries; an event routed nowhere has none.)
fn timeline(i: &Incident, deliveries: &[DeliveryView]) -> Markup {
    let mut items: Vec<(DateTime<Utc>, Markup)> =
        vec![(i.started_at, html! { "First alert: incident opened" })];
    for (event, ds) in by_event(deliveries) {
        let first = ds[0];
        let targets: Vec<String> = ds
            .iter()
            .map(|d| format!("{} ({})", d.endpoint, ops::state_name(d.state)))
            .collect();
        items.push((
            first.event_at,
            html! { code { (first.event_type) } " → " (targets.join(", ")) " " span.muted.mono { (event) } },
        ));
    }
    if i.occurrences > 1 {
        items.push((
            i.last_seen_at,
            html! { "Latest alert (" (i.occurrences) " in all)" },
        ));
    }
    if let Some(r) = i.resolved_at {
        items.push((r, html! { "Resolved" }));
    }
    items.sort_by_key(|(t, _)| *t);
    html! {
        ol.timeline { @for (t, what) in &items { li { (view::time(*t)) " — " (what) } } }
    }
}

/// The deliveries grouped by event, events in time order.
fn by_event(deliveries: &[DeliveryView]) -> Vec<(&str, Vec<&DeliveryView>)> {
    let mut out: Vec<(&str, Vec<&DeliveryView>)> = Vec::new();
    for d in deliveries {
        match out.iter_mut().find(|(e, _)| *e == d.event_id) {
            Some((_, list)) => list.push(d),
            None => out.push((&d.event_id, vec![d])),
        }
    }
    out.sort_by_key(|(_, ds)| ds[0].event_at);
    out
}

fn events(deliveries: &[DeliveryView], csrf: &str) -> Markup {
    html! {
        @if deliveries.is_empty() { p { "No deliveries: no event of this incident was routed to an endpoint." } }
        @for (event, ds) in by_event(deliveries) {
            h3 { code { (ds[0].event_type) } " " span.muted.mono { (event) } }
            (super::deliveries::table(&ds, csrf, false))
        }
    }
}

async fn change(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
    id: String,
    form: web::Form<HashMap<String, String>>,
    to: AlertStatus,
) -> HttpResponse {
    let signed = match may_change(&req, &state, &console, form.get("csrf").map(String::as_str)) {
        Ok(s) => s,
        Err(refused) => return refused.response(),
    };
    match ops::change_incident(signed.admin, id.clone(), to).await {
        Ok(_) => redirect(&format!(
            "/ui/incidents/{}?notice={}",
            encode_component(&id),
            to.as_str()
        )),
        Err(e) => failure(&signed, "Incident", e),
    }
}

/// `POST /ui/incidents/{id}/acknowledge`
pub async fn acknowledge(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
    id: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    change(
        req,
        state,
        console,
        id.into_inner(),
        form,
        AlertStatus::Acknowledged,
    )
    .await
}

/// `POST /ui/incidents/{id}/resolve`
pub async fn resolve(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
    id: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    change(
        req,
        state,
        console,
        id.into_inner(),
        form,
        AlertStatus::Resolved,
    )
    .await
}
