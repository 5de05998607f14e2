//! Silences: the list (state, matchers, times, author, comment) with an expire button, and a
//! form to create one (matchers in Alertmanager's syntax, prefilled from an incident's labels,
//! and a duration). The same `Holding` calls as the Alertmanager v2 API (`http::silences`).

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use maud::html;

use super::incidents::encode_query;
use super::view::{self, Nav, Page};
use super::{failure, may_change, redirect, respond, signed_in, Console};
use crate::config::matcher::parse_set;
use crate::holding::silences::{PostableSilence, SilenceMatcher, SilenceState};
use crate::http::admin::AdminError;
use crate::http::AppState;

/// The durations the form offers: (value, label).
const DURATIONS: &[(&str, &str)] = &[
    ("1h", "1 hour"),
    ("2h", "2 hours"),
    ("4h", "4 hours"),
    ("12h", "12 hours"),
    ("24h", "1 day"),
    ("168h", "1 week"),
];

/// `GET /ui/silences?matchers=`
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
    let now = Utc::now();
    let mut silences = match signed.admin.holding.silences(now).await {
        Ok(s) => s,
        Err(e) => return failure(&signed, "Silences", AdminError::from(e)),
    };
    // Active first, then pending, then expired; newest first within each.
    silences.sort_by_key(|s| {
        let rank = match s.state(now) {
            SilenceState::Active => 0,
            SilenceState::Pending => 1,
            SilenceState::Expired => 2,
        };
        (rank, std::cmp::Reverse(s.starts_at))
    });
    let get = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    let body = html! {
        @match get("notice") {
            "created" => (view::notice_box("Silence created.")),
            "expired" => (view::notice_box("Silence expired.")),
            _ => {}
        }
        details #new open[!get("matchers").is_empty()] {
            summary { "New silence" }
            form method="post" action="/ui/silences" {
                (view::csrf_field(&signed.csrf))
                label { "Matchers (all must hold)" input type="text" name="matchers" required value=(get("matchers")) placeholder="{alertname=\"DiskFull\", team=\"db\"}"; }
                div.row {
                    label {
                        "Duration"
                        select name="duration" {
                            @for (v, l) in DURATIONS { option value=(v) selected[*v == "2h"] { (l) } }
                        }
                    }
                }
                label { "Comment" input type="text" name="comment" required maxlength="4096" placeholder="why, and who to ask"; }
                div.actions { button type="submit" { "Create silence" } }
            }
        }
    };
    let live = html! {
        @if silences.is_empty() { p { "No silences." } } @else {
            (view::table_wrap("Silences", html! {
                table {
                    thead { tr {
                        th scope="col" { "State" } th scope="col" { "Matchers" } th scope="col" { "Ends" }
                        th scope="col" .hide-narrow { "Starts" } th scope="col" .hide-narrow { "By" } th scope="col" { "Comment" }
                        th scope="col" { span.skip { "Actions" } }
                    } }
                    tbody {
                        @for s in &silences {
                            @let st = s.state(now);
                            tr {
                                td { span class=(match st { SilenceState::Active => "badge b-warn", SilenceState::Pending => "badge b-info", SilenceState::Expired => "badge b-ok" }) {
                                    (match st { SilenceState::Active => "active", SilenceState::Pending => "pending", SilenceState::Expired => "expired" }) } }
                                td { @for m in &s.matchers { code { (matcher_text(m)) } " " } }
                                td { (view::time(s.ends_at)) }
                                td.hide-narrow { (view::time(s.starts_at)) }
                                td.hide-narrow { (s.created_by) }
                                td { (s.comment) }
                                td {
                                    @if st != SilenceState::Expired && !s.is_static() {
                                        (view::post_button(&signed.csrf, &format!("/ui/silences/{}/expire", s.id), "Expire", true))
                                    }
                                    @if s.is_static() { span.muted { "routes.yaml" } }
                                }
                            }
                        }
                    }
                }
            }))
        }
    };
    respond(
        &req,
        Page::new(&signed, "Silences", Nav::Silences, body).with_live(live),
    )
}

fn matcher_text(m: &SilenceMatcher) -> String {
    let op = match (m.is_regex, m.is_equal) {
        (false, true) => "=",
        (false, false) => "!=",
        (true, true) => "=~",
        (true, false) => "!~",
    };
    format!("{}{op}{:?}", m.name, m.value)
}

/// `POST /ui/silences`: matchers, duration, comment.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let signed = match may_change(&req, &state, &console, form.get("csrf").map(String::as_str)) {
        Ok(s) => s,
        Err(refused) => return refused.response(),
    };
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let matchers = match parse_set(field("matchers")) {
        Ok(m) if !m.is_empty() => m,
        Ok(_) => {
            return failure(
                &signed,
                "Silences",
                AdminError::BadRequest("a silence needs at least one matcher".into()),
            )
        }
        Err(e) => {
            return failure(
                &signed,
                "Silences",
                AdminError::BadRequest(format!("matchers: {e}")),
            )
        }
    };
    let hours: i64 = match DURATIONS.iter().find(|(v, _)| *v == field("duration")) {
        Some((v, _)) => v.trim_end_matches('h').parse().unwrap_or(2),
        None => {
            return failure(
                &signed,
                "Silences",
                AdminError::BadRequest(format!(
                    "duration `{}`: pick one of the list",
                    field("duration")
                )),
            )
        }
    };
    let now = Utc::now();
    let silence = PostableSilence {
        id: None,
        matchers: matchers.iter().map(SilenceMatcher::of).collect(),
        starts_at: now,
        ends_at: now + chrono::Duration::hours(hours),
        created_by: "console".into(),
        comment: field("comment").to_string(),
    };
    match signed.admin.holding.put_silence(silence, now).await {
        Ok(_) => redirect("/ui/silences?notice=created"),
        Err(e) => failure(&signed, "Silences", AdminError::from(e)),
    }
}

/// `POST /ui/silences/{id}/expire`
pub async fn expire(
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
    match signed.admin.holding.expire_silence(&id, Utc::now()).await {
        Ok(()) => redirect("/ui/silences?notice=expired"),
        Err(e) => failure(&signed, "Silences", AdminError::from(e)),
    }
}

/// The link that opens the new-silence form with an incident's labels.
pub fn link_for(labels: &crate::model::Labels) -> String {
    let set = labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "/ui/silences?{}#new",
        encode_query(&[("matchers", &format!("{{{set}}}"))])
    )
}
