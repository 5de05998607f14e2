//! The endpoints: kind, state, queue depth, this process's last hour (success rate, mean and
//! slowest attempt), and a test button that shows what the endpoint answered.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::view::{self, Nav, Page};
use super::{failure, may_change, respond, signed_in, Console, SignedIn};
use crate::delivery::actor::PingReport;
use crate::http::admin::ops;
use crate::http::AppState;

/// `GET /ui/endpoints`
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
) -> HttpResponse {
    let signed = match signed_in(&req, &state, &console) {
        Ok(s) => s,
        Err(refused) => return refused.response(),
    };
    page(&req, &state, &signed, html! {}).await
}

async fn page(
    req: &HttpRequest,
    state: &AppState,
    signed: &SignedIn<'_>,
    top: Markup,
) -> HttpResponse {
    let list = match ops::list_endpoints(signed.admin, &state.metrics).await {
        Ok(l) => l,
        Err(e) => return failure(signed, "Endpoints", e),
    };
    let body = html! {
        (top)
        p.muted { "Success rate and latency: this process's attempts over the last hour." }
    };
    let live = html! {
        (view::table_wrap("Endpoints", html! {
            table {
                thead { tr {
                    th scope="col" { "Endpoint" } th scope="col" .hide-narrow { "Kind" } th scope="col" { "State" }
                    th scope="col" .num { "Queue" } th scope="col" .num { "Success (1 h)" }
                    th scope="col" .num .hide-narrow { "Mean" } th scope="col" .num .hide-narrow { "Slowest" }
                    th scope="col" { span.skip { "Actions" } }
                } }
                tbody {
                    @for e in &list {
                        tr {
                            td { a href=(format!("/ui/deliveries?endpoint={}", crate::delivery::kinds::text::encode_component(&e.name))) { (e.name) } }
                            td.hide-narrow { (e.kind) }
                            td { span class=(match e.state { "ok" => "badge b-ok", "retired" => "badge b-info", "circuit_half_open" => "badge b-warn", _ => "badge b-bad" }) { (e.state.replace('_', " ")) } }
                            td.num { (e.queue_depth) }
                            td.num {
                                @match e.last_hour.success_rate {
                                    Some(r) => { (format!("{:.1} %", r * 100.0)) " " span.muted { "of " (e.last_hour.attempts) } }
                                    None => span.muted { "no attempts" },
                                }
                            }
                            td.num.hide-narrow { (e.last_hour.mean_ms.map(|m| format!("{m} ms")).unwrap_or_default()) }
                            td.num.hide-narrow { (e.last_hour.max_ms.map(|m| format!("{m} ms")).unwrap_or_default()) }
                            td {
                                @if e.state != "retired" {
                                    (view::post_button(&signed.csrf, &format!("/ui/endpoints/{}/test", e.name), "Test", true))
                                }
                            }
                        }
                    }
                }
            }
        }))
    };
    let mut page = Page::new(signed, "Endpoints", Nav::Endpoints, body).with_live(live);
    page.live_url = Some("/ui/endpoints".into());
    respond(req, page)
}

fn report(r: &PingReport) -> Markup {
    let a = &r.attempt;
    html! {
        section aria-label="Test result" {
            @if r.ok {
                (view::notice_box(&format!("Test of {}: answered {} in {} ms.", r.endpoint,
                    a.status.map(|s| format!("HTTP {s}")).unwrap_or_default(), a.duration_ms)))
            } @else {
                (view::error_box(&format!("Test of {} failed: {}.", r.endpoint,
                    match (a.status, &a.error) {
                        (Some(s), Some(e)) => format!("HTTP {s}, {e}"),
                        (Some(s), None) => format!("HTTP {s}"),
                        (None, Some(e)) => e.clone(),
                        (None, None) => "no answer".into(),
                    })))
            }
            @if !a.response.is_empty() {
                details open {
                    summary { "Its answer (first KiB)" }
                    pre #test-response { (a.response) }
                }
            }
        }
    }
}

/// `POST /ui/endpoints/{name}/test`: sends a test event now and shows the answer above the
/// list.
pub async fn test(
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
    match ops::test_endpoint(signed.admin, &name).await {
        Ok(r) => page(&req, &state, &signed, report(&r)).await,
        Err(e) => failure(&signed, "Endpoints", e),
    }
}
