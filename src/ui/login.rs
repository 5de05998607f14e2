//! Signing in (the admin token, checked as the admin API checks its bearer token) and out.

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

use super::session::{clear_cookie, cookie_value, set_cookie, COOKIE, DEFAULT_SESSION_TTL};
use super::{html, not_found, now_secs, redirect, view, Console};
use crate::http::admin::token_matches;
use crate::http::AppState;

fn page(error: Option<&str>) -> maud::Markup {
    view::bare_page(
        "Sign in",
        html! {
            p { "Sign in to the switchyard console with the admin token (" code { "server.admin_token" } ")." }
            @if let Some(e) = error { (view::error_box(e)) }
            form method="post" action="/ui/login" {
                label {
                    "Admin token"
                    input type="password" name="token" autocomplete="current-password" required autofocus;
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

fn secure(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// `GET /ui/login`
pub async fn form(state: web::Data<AppState>) -> HttpResponse {
    if state.admin.is_none() {
        return not_found();
    }
    html(StatusCode::OK, page(None))
}

/// `POST /ui/login`: the right token sets the session cookie; a wrong one is refused (401).
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let Some(admin) = state.admin.as_deref() else {
        return not_found();
    };
    let given = form.get("token").map(String::as_str).unwrap_or("");
    if given.is_empty() || !token_matches(admin, given) {
        tracing::warn!(peer = ?req.peer_addr(), "console: sign-in with a wrong token refused");
        return html(
            StatusCode::UNAUTHORIZED,
            page(Some("Wrong token: not signed in.")),
        );
    }
    let cookie = console.sessions.issue(now_secs(), DEFAULT_SESSION_TTL);
    tracing::info!(peer = ?req.peer_addr(), "console: signed in");
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/incidents"))
        .insert_header((
            header::SET_COOKIE,
            set_cookie(&cookie, DEFAULT_SESSION_TTL, secure(&req)),
        ))
        .finish()
}

/// `POST /ui/logout`: ends the session (with its CSRF token, so another site cannot sign an
/// operator out either).
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    console: web::Data<Console>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let signed =
        match super::may_change(&req, &state, &console, form.get("csrf").map(String::as_str)) {
            Ok(s) => s,
            // No valid session: there is nothing to end, only a cookie to clear.
            Err(refused) if has_valid_cookie(&req, &console) => return refused.response(),
            Err(_) => return cleared(&req),
        };
    console.sessions.revoke(&signed.session, now_secs());
    tracing::info!(peer = ?req.peer_addr(), "console: signed out");
    cleared(&req)
}

fn has_valid_cookie(req: &HttpRequest, console: &Console) -> bool {
    req.headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| cookie_value(h, COOKIE))
        .and_then(|c| console.sessions.check(c, now_secs()))
        .is_some()
}

fn cleared(req: &HttpRequest) -> HttpResponse {
    let mut resp = redirect("/ui/login");
    if let Ok(v) = header::HeaderValue::from_str(&clear_cookie(secure(req))) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
