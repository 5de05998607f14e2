//! The one place where errors become HTTP answers: `{"error": "...", "detail": "..."}` with
//! the right status (and `Retry-After` on 503).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use super::admin::AdminError;
use crate::incidents::actor::RecordError;
use crate::sources::actor::IngestError;
use crate::sources::NormalizeError;
use crate::store::StoreError;

/// Seconds a client is told to wait after a 503.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub detail: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    detail: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            detail: detail.into(),
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.insert_header((header::RETRY_AFTER, DEFAULT_RETRY_AFTER_SECS.to_string()));
        }
        resp.json(Body {
            error: self.error,
            detail: &self.detail,
        })
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Auth(e) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
            }
            IngestError::Sns(e) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
            }
            IngestError::Normalize(NormalizeError::Json {
                line,
                column,
                message,
            }) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("line {line} column {column}: {message}"),
            ),
            IngestError::Normalize(
                e @ (NormalizeError::Shape(_) | NormalizeError::PluginRejected { .. }),
            ) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string()),
            IngestError::Normalize(e @ NormalizeError::Upstream(_)) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "upstream_failed", e.to_string())
            }
            IngestError::Normalize(e @ NormalizeError::PluginFailed { .. }) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "plugin_failed", e.to_string())
            }
            IngestError::Normalize(e @ NormalizeError::PluginPanicked { .. }) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "plugin_panicked",
                e.to_string(),
            ),
            IngestError::Normalize(e @ NormalizeError::PluginTimeout { .. }) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "plugin_timeout", e.to_string())
            }
            IngestError::Normalize(e @ NormalizeError::PluginBusy { .. }) => {
                ApiError::unavailable(e.to_string())
            }
            IngestError::Normalize(e) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "adapter_error",
                e.to_string(),
            ),
            // The store's own text (Redis's errors, say) is logged where it happened; a
            // caller, who may not be authenticated, is only told to try again.
            IngestError::Store(e) | IngestError::Record(RecordError::Store(e)) => store_error(e),
            e @ (IngestError::Record(RecordError::Partial { .. })
            | IngestError::BacklogFull { .. }
            | IngestError::Recording) => ApiError::unavailable(e.to_string()),
        }
    }
}

/// A store's error as a caller sees it: the store's own text (Redis's errors, say) is logged
/// where it happened; a caller, who may not be authenticated, is only told to try again.
fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(_) => ApiError::unavailable("the store is unavailable; try again"),
        StoreError::Rejected(detail) => {
            ApiError::new(StatusCode::BAD_REQUEST, "unrecordable", detail)
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let detail = e.to_string();
        match e {
            AdminError::Off => ApiError::new(StatusCode::NOT_FOUND, "not_found", detail),
            AdminError::Unauthorized => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            }
            AdminError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", detail),
            AdminError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", detail),
            AdminError::BadRequest(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
            }
            AdminError::InvalidConfig(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_config", detail)
            }
            AdminError::Unavailable(_) => ApiError::unavailable(detail),
        }
    }
}
