//! The route tree as the running config has it, and the route tester: a payload through a
//! source and the routes, showing each alert's event and endpoints (what `route-test`
//! prints), sending nothing.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::view::{self, Nav, Page};
use super::{failure, may_change, respond, signed_in, Console, SignedIn};
use crate::http::admin::ops;
use crate::http::AppState;
use crate::router::table::RouteView;

/// `GET /ui/routes`
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
) -> HttpResponse {
    let signed = match signed_in(&req, &state, &console) {
        Ok(s) => s,
        Err(refused) => return refused.response(),
    };
    page(&req, &signed, "", "", html! {}).await
}

async fn page(
    req: &HttpRequest,
    signed: &SignedIn<'_>,
    source: &str,
    payload: &str,
    result: Markup,
) -> HttpResponse {
    let running = match ops::running(signed.admin).await {
        Ok(r) => r,
        Err(e) => return failure(signed, "Routes", e),
    };
    let tree = running.routes.tree();
    let default = running.routes.default_endpoints();
    let sources: Vec<&str> = running.sources.iter().map(|s| &*s.name).collect();
    let body = html! {
        h2 { "Route tree" }
        @if tree.is_empty() { p { "No routes." } } @else { (routes(&tree)) }
        p { "Default (when no route matches): "
            @if default.is_empty() { "none (the event is dropped)" } @else { (default.join(", ")) } }
        h2 #tester { "Route tester" }
        p.muted { "Runs a payload through a source's adapter and the routes above, as "
            code { "switchyard route-test" } " does: nothing is recorded or sent." }
        form method="post" action="/ui/routes/test" {
            (view::csrf_field(&signed.csrf))
            div.row {
                label {
                    "Source"
                    select name="source" required {
                        @for s in &sources { option value=(s) selected[*s == source] { (s) } }
                    }
                }
            }
            label { "Payload (as the tool sends it)" textarea name="payload" required spellcheck="false" { (payload) } }
            div.actions { button type="submit" { "Test the routes" } }
        }
        (result)
    };
    respond(req, Page::new(signed, "Routes", Nav::Routes, body))
}

fn routes(list: &[RouteView]) -> Markup {
    html! {
        ul.tree {
            @for r in list {
                li {
                    strong { (r.name) }
                    " "
                    @if r.matchers.is_empty() { span.muted { "(matches everything)" } }
                    @for m in &r.matchers { code { (m) } " " }
                    " → " @if r.to.is_empty() { span.muted { "no endpoints" } } @else { (r.to.join(", ")) }
                    @if r.continue_ { " " span.badge.b-info { "continue" } }
                    @if let Some(g) = &r.grouping { div.muted { (g) } }
                    @if !r.routes.is_empty() { (routes(&r.routes)) }
                }
            }
        }
    }
}

/// `POST /ui/routes/test`
pub async fn test(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let signed = match may_change(&req, &state, &console, form.get("csrf").map(String::as_str)) {
        Ok(s) => s,
        Err(refused) => return refused.response(),
    };
    let source = form.get("source").map(String::as_str).unwrap_or("");
    let payload = form.get("payload").map(String::as_str).unwrap_or("");
    let result = match ops::test_route(signed.admin, source, payload.as_bytes().to_vec()).await {
        Ok(report) => html! {
            section #route-result aria-label="Route test result" {
                h2 { "Result" }
                p { "Endpoints reached: "
                    @if report.endpoints.is_empty() { "none" }
                    @else { strong #route-endpoints { (report.endpoints.iter().cloned().collect::<Vec<_>>().join(", ")) } } }
                pre { (report.text) }
            }
        },
        Err(e) => html! { section #route-result { (view::error_box(&e.to_string())) } },
    };
    page(&req, &signed, source, payload, result).await
}
