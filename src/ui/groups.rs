//! Notification groups (routes with `group_by`): each with its labels, endpoints, incidents
//! (those changed since the last notification marked), when it was last notified and when it
//! is notified next.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

use super::view::{self, Nav, Page};
use super::{failure, respond, signed_in, Console};
use crate::http::admin::ops;
use crate::http::AppState;

/// `GET /ui/groups`
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
) -> HttpResponse {
    let signed = match signed_in(&req, &state, &console) {
        Ok(s) => s,
        Err(refused) => return refused.response(),
    };
    let groups = match ops::list_groups(signed.admin).await {
        Ok(g) => g,
        Err(e) => return failure(&signed, "Groups", e),
    };
    let body = html! {
        p.muted { "Routes with " code { "group_by" } " gather their incidents' events into one notification per group." }
    };
    let live = html! {
        @if groups.is_empty() {
            p { "No groups: no grouped route has taken an event yet." }
        } @else {
            (view::table_wrap("Groups", html! {
                table {
                    thead { tr {
                        th scope="col" { "Group" } th scope="col" .hide-narrow { "Endpoints" }
                        th scope="col" { "Incidents" } th scope="col" { "Last notified" } th scope="col" { "Next" }
                    } }
                    tbody {
                        @for g in &groups {
                            tr {
                                td { strong { (g.route.as_deref().unwrap_or("")) } br; code { (g.key) } }
                                td.hide-narrow { (g.endpoints.as_ref().map(|e| e.join(", ")).unwrap_or_default()) }
                                td {
                                    ul {
                                        @for id in &g.incident_ids {
                                            li {
                                                a.mono href=(format!("/ui/incidents/{id}")) { (id) }
                                                @if g.changed.contains(id) { " " span.badge.b-warn { "changed" } }
                                            }
                                        }
                                    }
                                }
                                td { @match g.notified_at { Some(t) => (view::time(t)), None => span.muted { "not yet" } } }
                                td { @if let Some(t) = g.next_notification_at { (view::time(t)) " " span.muted { "(" (view::ago(t)) ")" } } }
                            }
                        }
                    }
                }
            }))
        }
    };
    respond(
        &req,
        Page::new(&signed, "Groups", Nav::Groups, body).with_live(live),
    )
}
