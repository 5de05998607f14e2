//! Alertmanager's v2 silences API (`/api/v2/silences`, `/api/v2/silence/{id}`) and the
//! status `amtool` reads (`/api/v2/status`), so `amtool silence add|query|expire
//! --alertmanager.url=...` works against switchyard. Same bearer token as the admin API
//! (`amtool --http.config.file` with `authorization: {credentials: ...}`). The handlers only
//! translate: the operations are `holding::silences` functions.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use super::admin::{authorize, AdminError};
use super::error::ApiError;
use super::AppState;
use crate::config::matcher::Matcher;
use crate::holding::silences::{GettableSilence, PostableSilence, Silence, SilenceError};

impl From<SilenceError> for AdminError {
    fn from(e: SilenceError) -> Self {
        match e {
            SilenceError::NotFound(_) => AdminError::NotFound(e.to_string()),
            SilenceError::Invalid(_) | SilenceError::Static(_) | SilenceError::Expired(_) => {
                AdminError::BadRequest(e.to_string())
            }
            SilenceError::Store(_) => AdminError::Unavailable(e.to_string()),
        }
    }
}

/// When this process started (`uptime` of `/api/v2/status`).
static STARTED: std::sync::OnceLock<chrono::DateTime<Utc>> = std::sync::OnceLock::new();

/// Notes the process's start (called when the HTTP side starts).
pub fn mark_started() {
    STARTED.get_or_init(Utc::now);
}

/// Whether a silence's matchers, read as labels (name -> value), satisfy every filter
/// (Alertmanager's `filter` of `GET /api/v2/silences`).
fn passes(s: &Silence, filters: &[Matcher]) -> bool {
    let labels: HashMap<&str, &str> = s
        .matchers
        .iter()
        .map(|m| (m.name.as_str(), m.value.as_str()))
        .collect();
    filters
        .iter()
        .all(|f| f.matches(labels.get(f.name.as_str()).copied().unwrap_or("")))
}

/// `GET /api/v2/silences?filter=...`
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| AdminError::BadRequest(format!("query: {e}")))?;
    let filters = query
        .iter()
        .filter(|(k, _)| k == "filter")
        .map(|(_, v)| Matcher::parse(v).map_err(|e| AdminError::BadRequest(format!("filter: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let now = Utc::now();
    // What this lists, record calls here hold by from now on (another instance's changes
    // reach them within DEFAULT_SILENCE_REFRESH anyway).
    if let Err(e) = admin.holding.refresh_silences(now).await {
        return Err(AdminError::Unavailable(e.to_string()).into());
    }
    let all = admin
        .holding
        .silences(now)
        .await
        .map_err(AdminError::from)?;
    let out: Vec<GettableSilence> = all
        .into_iter()
        .filter(|s| passes(s, &filters))
        .map(|s| GettableSilence::of(s, now))
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

/// `POST /api/v2/silences`: creates a silence, or updates the one its `id` names.
pub async fn post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let silence: PostableSilence = serde_json::from_slice(&body)
        .map_err(|e| AdminError::BadRequest(format!("silence: {e}")))?;
    let id = admin
        .holding
        .put_silence(silence, Utc::now())
        .await
        .map_err(AdminError::from)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "silenceID": id })))
}

/// `GET /api/v2/silence/{id}`
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    let s = admin.holding.silence(&id).await.map_err(AdminError::from)?;
    Ok(HttpResponse::Ok().json(GettableSilence::of(s, Utc::now())))
}

/// `DELETE /api/v2/silence/{id}`: expires it now.
pub async fn expire(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = authorize(&req, &state)?;
    admin
        .holding
        .expire_silence(&id, Utc::now())
        .await
        .map_err(AdminError::from)?;
    Ok(HttpResponse::Ok().finish())
}

/// `GET /api/v2/status`: what `amtool` reads of an Alertmanager (no cluster).
pub async fn status(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let version = env!("CARGO_PKG_VERSION");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "cluster": {"status": "disabled", "peers": [], "name": ""},
        "versionInfo": {
            "version": version, "revision": "", "branch": "", "buildUser": "switchyard",
            "buildDate": "", "goVersion": "none (switchyard)"
        },
        "config": {"original": ""},
        "uptime": STARTED.get().copied().unwrap_or_else(Utc::now),
    })))
}
