//! The runtime form of one `endpoints:` entry: URL, signing key, headers, time limit and retry
//! schedule, all checked and converted once at start-up.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use thiserror::Error;

use crate::config::duration::parse_duration;
use crate::config::types::{EndpointConfig, EndpointKind};
use crate::model::EventType;
use crate::sources::auth::standard_webhooks_key;

/// Time limit of one delivery request when the endpoint sets no `timeout`.
pub const DEFAULT_ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits before each retry when the endpoint sets no `retry.schedule`: 1m, 5m, 15m, 1h, 1h
/// (six attempts over about 2h21m); after the last the delivery is dead.
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 5] = [
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(900),
    Duration::from_secs(3600),
    Duration::from_secs(3600),
];

/// Why an endpoint could not be built.
#[derive(Debug, Error)]
pub enum EndpointBuildError {
    #[error(
        "endpoint `{name}`: kind `{kind}` is not available in this build yet (only `webhook` is)"
    )]
    UnsupportedKind { name: String, kind: &'static str },
    #[error("endpoint `{name}`: `url` is required")]
    MissingUrl { name: String },
    #[error("endpoint `{name}`: {field}: {reason}")]
    Invalid {
        name: String,
        field: &'static str,
        reason: String,
    },
}

/// One endpoint, ready to deliver to.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    pub name: Arc<str>,
    pub kind: EndpointKind,
    pub url: String,
    /// The signing key bytes (a `whsec_` secret base64-decoded, any other secret as bytes).
    /// Its `Debug` is not printed: see [`SigningKey`].
    pub signing_key: Option<SigningKey>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub schedule: Vec<Duration>,
    pub events: Option<Vec<EventType>>,
}

/// Key bytes whose `Debug` prints `***`.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl EndpointSpec {
    pub fn build(cfg: &EndpointConfig) -> Result<EndpointSpec, EndpointBuildError> {
        let name = cfg.name.clone();
        let invalid = |field: &'static str, reason: String| EndpointBuildError::Invalid {
            name: name.clone(),
            field,
            reason,
        };
        if cfg.kind != EndpointKind::Webhook {
            return Err(EndpointBuildError::UnsupportedKind {
                name: name.clone(),
                kind: cfg.kind.as_str(),
            });
        }
        let url = cfg
            .url
            .clone()
            .ok_or_else(|| EndpointBuildError::MissingUrl { name: name.clone() })?;
        let timeout = match &cfg.timeout {
            Some(t) => parse_duration(t).map_err(|e| invalid("timeout", e.to_string()))?,
            None => DEFAULT_ENDPOINT_TIMEOUT,
        };
        let schedule = match &cfg.retry {
            Some(r) => r
                .schedule
                .iter()
                .map(|d| parse_duration(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid("retry.schedule", e.to_string()))?,
            None => DEFAULT_RETRY_SCHEDULE.to_vec(),
        };
        let events = match &cfg.events {
            Some(list) => Some(
                list.iter()
                    .map(|e| e.parse::<EventType>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("events", e))?,
            ),
            None => None,
        };
        let mut headers = Vec::with_capacity(cfg.headers.len());
        for (k, v) in &cfg.headers {
            let hn = HeaderName::try_from(k.as_str())
                .map_err(|e| invalid("headers", format!("`{k}`: {e}")))?;
            let hv = HeaderValue::try_from(v.as_str())
                .map_err(|e| invalid("headers", format!("value of `{k}`: {e}")))?;
            headers.push((hn, hv));
        }
        let signing_key = cfg
            .secret
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| SigningKey(standard_webhooks_key(s.expose())));
        Ok(EndpointSpec {
            name: name.as_str().into(),
            kind: cfg.kind,
            url,
            signing_key,
            headers,
            timeout,
            schedule,
            events,
        })
    }
}
