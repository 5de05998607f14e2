//! The operator's console under `/ui`: server-rendered pages (maud) over the admin API's own
//! functions (`http::admin::ops`), a stylesheet and a small script compiled into the binary.
//! Served where the admin API is (the main listener, or `server.admin_listen`) and off (404)
//! without `server.admin_token`. Signing in with the token sets an HttpOnly, SameSite=Strict
//! cookie (`session`); every change is a POST carrying the session's CSRF token.
//!
//! Pages: incidents (`incidents`), deliveries (`deliveries`), endpoints (`endpoints`), routes
//! and the route tester (`routes`), notification groups (`groups`), silences (`silences`);
//! sign-in and out (`login`). A page's live part is fetched
//! again by `assets/console.js` every few seconds (the same handler answers only that part
//! when asked with `X-Console-Fragment`).

mod deliveries;
mod endpoints;
mod groups;
mod incidents;
mod login;
mod routes;
pub mod session;
mod silences;
mod view;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::Markup;

use crate::http::admin::{AdminError, AdminState};
use crate::http::AppState;
use session::{cookie_value, Session, Sessions, COOKIE};

/// What the console's handlers share (made once per process, so signing out holds in every
/// worker).
pub struct Console {
    pub sessions: Sessions,
}

impl Console {
    /// The console of the admin token; None without one (the console is off).
    pub fn new(admin_token: Option<&str>) -> Option<Arc<Console>> {
        admin_token.map(|t| {
            Arc::new(Console {
                sessions: Sessions::new(t),
            })
        })
    }
}

/// Every route of the console: (method, path).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/ui"),
    ("GET", "/ui/login"),
    ("POST", "/ui/login"),
    ("POST", "/ui/logout"),
    ("GET", "/ui/assets/console.css"),
    ("GET", "/ui/assets/console.js"),
    ("GET", "/ui/incidents"),
    ("GET", "/ui/incidents/{id}"),
    ("POST", "/ui/incidents/{id}/acknowledge"),
    ("POST", "/ui/incidents/{id}/resolve"),
    ("GET", "/ui/deliveries"),
    ("POST", "/ui/deliveries/{id}/replay"),
    ("GET", "/ui/endpoints"),
    ("POST", "/ui/endpoints/{name}/test"),
    ("POST", "/ui/endpoints/{name}/recover"),
    ("GET", "/ui/routes"),
    ("POST", "/ui/routes/test"),
    ("GET", "/ui/groups"),
    ("GET", "/ui/silences"),
    ("POST", "/ui/silences"),
    ("POST", "/ui/silences/{id}/expire"),
];

fn handler(method: &str, path: &str) -> Option<actix_web::Route> {
    Some(match (method, path) {
        ("GET", "/ui") => web::get().to(home),
        ("GET", "/ui/login") => web::get().to(login::form),
        ("POST", "/ui/login") => web::post().to(login::sign_in),
        ("POST", "/ui/logout") => web::post().to(login::sign_out),
        ("GET", "/ui/assets/console.css") => web::get().to(|| async {
            asset(
                "text/css; charset=utf-8",
                include_str!("ui/assets/console.css"),
            )
        }),
        ("GET", "/ui/assets/console.js") => web::get().to(|| async {
            asset(
                "text/javascript; charset=utf-8",
                include_str!("ui/assets/console.js"),
            )
        }),
        ("GET", "/ui/incidents") => web::get().to(incidents::list),
        ("GET", "/ui/incidents/{id}") => web::get().to(incidents::show),
        ("POST", "/ui/incidents/{id}/acknowledge") => web::post().to(incidents::acknowledge),
        ("POST", "/ui/incidents/{id}/resolve") => web::post().to(incidents::resolve),
        ("GET", "/ui/deliveries") => web::get().to(deliveries::list),
        ("POST", "/ui/deliveries/{id}/replay") => web::post().to(deliveries::replay),
        ("GET", "/ui/endpoints") => web::get().to(endpoints::list),
        ("POST", "/ui/endpoints/{name}/test") => web::post().to(endpoints::test),
        ("POST", "/ui/endpoints/{name}/recover") => web::post().to(deliveries::recover),
        ("GET", "/ui/routes") => web::get().to(routes::show),
        ("POST", "/ui/routes/test") => web::post().to(routes::test),
        ("GET", "/ui/groups") => web::get().to(groups::list),
        ("GET", "/ui/silences") => web::get().to(silences::list),
        ("POST", "/ui/silences") => web::post().to(silences::create),
        ("POST", "/ui/silences/{id}/expire") => web::post().to(silences::expire),
        _ => return None,
    })
}

/// Registers the console's routes with its shared state; without a console (no admin
/// token) every `/ui` path answers 404.
pub fn configure(cfg: &mut web::ServiceConfig, console: Option<Arc<Console>>) {
    let Some(console) = console else {
        cfg.service(web::scope("/ui").default_service(web::to(HttpResponse::NotFound)));
        return;
    };
    let mut scope = web::scope("/ui")
        .app_data(web::Data::from(console))
        // The route tester's payload: as large as the JSON API takes.
        .app_data(
            web::FormConfig::default().limit(crate::http::admin::ops::MAX_ROUTE_TEST_BYTES + 4096),
        );
    for (method, path) in ROUTES {
        if let Some(route) = handler(method, path) {
            scope = scope.route(path.strip_prefix("/ui").unwrap_or(path), route);
        }
    }
    cfg.service(scope);
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

async fn home() -> HttpResponse {
    redirect("/ui/incidents")
}

/// 303 to `to` (after a POST, the browser GETs it).
fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A signed-in request: the admin functions it may call and its session's CSRF token.
pub struct SignedIn<'a> {
    pub admin: &'a AdminState,
    pub console: &'a Console,
    pub session: Session,
    pub csrf: String,
}

/// Why a request does not reach a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The admin API is off: 404.
    Off,
    /// Not signed in: a page redirects to the sign-in form; a live part answers 401 (its
    /// script reloads the page).
    SignIn { fragment: bool },
    /// A change without a valid session or CSRF token: 403, nothing changed.
    Forbidden(&'static str),
}

impl Refused {
    /// The answer to give instead.
    pub fn response(self) -> HttpResponse {
        match self {
            Refused::Off => not_found(),
            Refused::SignIn { fragment: true } => HttpResponse::Unauthorized().finish(),
            Refused::SignIn { fragment: false } => redirect("/ui/login"),
            Refused::Forbidden(why) => forbidden(why),
        }
    }
}

/// The signed-in session of a request, or: 404 when the admin API is off, a redirect to the
/// sign-in page for a page, 401 for the live part of one (its script reloads the page).
fn signed_in<'a>(
    req: &HttpRequest,
    state: &'a AppState,
    console: &'a Console,
) -> Result<SignedIn<'a>, Refused> {
    let admin = state.admin.as_deref().ok_or(Refused::Off)?;
    let session = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| cookie_value(h, COOKIE))
        .and_then(|c| console.sessions.check(c, now_secs()));
    match session {
        Some(session) => Ok(SignedIn {
            admin,
            console,
            csrf: console.sessions.csrf(&session),
            session,
        }),
        None => Err(Refused::SignIn {
            fragment: fragment(req).is_some(),
        }),
    }
}

/// A signed-in request allowed to change something: its form's `csrf` field is the session's
/// token, and the browser did not send it from another site. Else 403 and nothing changes.
fn may_change<'a>(
    req: &HttpRequest,
    state: &'a AppState,
    console: &'a Console,
    csrf: Option<&str>,
) -> Result<SignedIn<'a>, Refused> {
    let signed = signed_in(req, state, console).map_err(|e| match e {
        Refused::Off => Refused::Off,
        _ => Refused::Forbidden("Sign in first: nothing was changed."),
    })?;
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let token_ok = csrf.is_some_and(|t| console.sessions.csrf_matches(&signed.session, t));
    if cross_site || !token_ok {
        tracing::warn!(
            path = req.path(),
            cross_site,
            "console: a change without its CSRF token refused"
        );
        return Err(Refused::Forbidden(
            "This form is stale or did not come from this console (CSRF check failed); nothing was changed. Reload the page and try again.",
        ));
    }
    Ok(signed)
}

/// The id of the live part a request asks for (`X-Console-Fragment`), if any.
fn fragment(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("x-console-fragment")
        .and_then(|v| v.to_str().ok())
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound().finish()
}

fn forbidden(why: &str) -> HttpResponse {
    html(
        actix_web::http::StatusCode::FORBIDDEN,
        view::bare_page("Refused", view::error_box(why)),
    )
}

/// An HTML answer with the console's security headers.
fn html(status: actix_web::http::StatusCode, body: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.into_string())
}

/// A page, or only its live part when the request asks for it.
fn respond(req: &HttpRequest, page: view::Page) -> HttpResponse {
    let status = page.status;
    match (fragment(req), &page.live) {
        (Some(_), Some(live)) => html(status, live.clone()),
        _ => html(status, page.render()),
    }
}

/// The answer to an admin call that failed: its message on the page it was made from.
fn failure(signed: &SignedIn<'_>, title: &str, e: AdminError) -> HttpResponse {
    let code = match &e {
        AdminError::NotFound(_) | AdminError::Off => actix_web::http::StatusCode::NOT_FOUND,
        AdminError::Conflict(_) => actix_web::http::StatusCode::CONFLICT,
        AdminError::BadRequest(_) | AdminError::InvalidConfig(_) => {
            actix_web::http::StatusCode::BAD_REQUEST
        }
        AdminError::Unauthorized => actix_web::http::StatusCode::UNAUTHORIZED,
        AdminError::Unavailable(_) => actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut page = view::Page::new(
        signed,
        title,
        view::Nav::None,
        view::error_box(&e.to_string()),
    );
    page.status = code;
    html(code, page.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_route_has_a_handler() {
        for (m, p) in ROUTES {
            assert!(handler(m, p).is_some(), "{m} {p} has no handler");
        }
    }
}
