//! The signing profile of a webhook endpoint (`signing:`, `secret`, `previous_secret`): which
//! headers an attempt carries and how its signature is made, in the receiver's dialect.
//! Standard Webhooks (the default) signs with every secret during a rotation; a plain HMAC
//! profile signs with the newest. The HMAC and message code is [`crate::signing`]'s, the same
//! that verifies inbound requests.

use actix_web::http::header::{HeaderName, HeaderValue};
use thiserror::Error;

use crate::config::types::{Secret, SigningConfig, SigningScheme};
use crate::signing::{
    hmac_sha256_hex_with, standard_webhooks_key, standard_webhooks_signature_with, MessageTemplate,
    SignatureEncoding, SigningMac,
};

/// Default event header of both schemes.
pub const DEFAULT_EVENT_HEADER: &str = "X-Webhook-Event";
/// Default signature header of the `hmac` scheme.
pub const DEFAULT_HMAC_HEADER: &str = "X-Webhook-Signature";
/// Default id header of the `hmac` scheme.
pub const DEFAULT_ID_HEADER: &str = "X-Webhook-Id";

/// Why a signing profile cannot be built: the key (relative to the endpoint) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {reason}")]
pub struct SignerError {
    pub field: &'static str,
    pub reason: String,
}

fn err(field: &'static str, reason: impl Into<String>) -> SignerError {
    SignerError {
        field,
        reason: reason.into(),
    }
}

/// The headers one attempt carries besides the body's; its `Debug` never shows a key.
#[derive(Clone, Debug)]
pub enum Signer {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` (one `v1,` signature per key,
    /// newest first), `X-Webhook-Signature: sha256=<hex>` (newest key) and the event header.
    StandardWebhooks {
        /// Newest first; empty: no signature headers.
        keys: Vec<Key>,
        event_header: Option<HeaderName>,
    },
    /// One HMAC-SHA256 signature in a header of the receiver's choosing.
    Hmac(Box<HmacSigner>),
}

/// The `hmac` scheme's settings.
#[derive(Clone, Debug)]
pub struct HmacSigner {
    key: Key,
    header: HeaderName,
    prefix: String,
    encoding: SignatureEncoding,
    message: MessageTemplate,
    timestamp_header: Option<HeaderName>,
    event_header: Option<HeaderName>,
    id_header: Option<HeaderName>,
}

/// A signing key made ready once; its `Debug` prints `***`.
#[derive(Clone)]
pub struct Key(SigningMac);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Default for Signer {
    /// Standard Webhooks without a secret: ids and event type only.
    fn default() -> Self {
        Signer::StandardWebhooks {
            keys: Vec::new(),
            event_header: Some(HeaderName::from_static("x-webhook-event")),
        }
    }
}

/// A header name from the config; `""` (or `Some("")`) means "leave the header out".
fn optional_header(
    field: &'static str,
    given: Option<&str>,
    default: &str,
) -> Result<Option<HeaderName>, SignerError> {
    let name = given.unwrap_or(default).trim();
    if name.is_empty() {
        return Ok(None);
    }
    HeaderName::try_from(name)
        .map(Some)
        .map_err(|_| err(field, format!("`{name}` is not a valid HTTP header name")))
}

fn nonempty(secret: Option<&Secret>) -> Option<&Secret> {
    secret.filter(|s| !s.is_empty())
}

impl Signer {
    /// The profile of one endpoint from its `secret`, `previous_secret` and `signing:`.
    pub fn build(
        secret: Option<&Secret>,
        previous: Option<&Secret>,
        cfg: Option<&SigningConfig>,
    ) -> Result<Signer, SignerError> {
        let (secret, previous) = (nonempty(secret), nonempty(previous));
        if previous.is_some() && secret.is_none() {
            return Err(err(
                "previous_secret",
                "needs `secret` (the new secret) beside it",
            ));
        }
        let default_cfg = SigningConfig::default();
        let cfg = cfg.unwrap_or(&default_cfg);
        let event_header = optional_header(
            "signing.event_header",
            cfg.event_header.as_deref(),
            DEFAULT_EVENT_HEADER,
        )?;
        match cfg.scheme {
            SigningScheme::StandardWebhooks => {
                let hmac_only = [
                    ("signing.header", cfg.header.is_some()),
                    ("signing.prefix", cfg.prefix.is_some()),
                    ("signing.encoding", cfg.encoding.is_some()),
                    ("signing.message", cfg.message.is_some()),
                    ("signing.timestamp_header", cfg.timestamp_header.is_some()),
                    ("signing.id_header", cfg.id_header.is_some()),
                ];
                if let Some((field, _)) = hmac_only.iter().find(|(_, set)| *set) {
                    return Err(err(
                        field,
                        "only for `scheme: hmac` (Standard Webhooks headers are fixed)",
                    ));
                }
                for (field, s) in [("secret", secret), ("previous_secret", previous)] {
                    if let Some(b64) = s.and_then(|s| s.expose().strip_prefix("whsec_")) {
                        if crate::signing::decode_base64(b64).is_none() {
                            return Err(err(field, "the part after `whsec_` is not valid base64"));
                        }
                    }
                }
                let keys = [secret, previous]
                    .into_iter()
                    .flatten()
                    .map(|s| Key(SigningMac::new(&standard_webhooks_key(s.expose()))))
                    .collect();
                Ok(Signer::StandardWebhooks { keys, event_header })
            }
            SigningScheme::Hmac => {
                let secret = secret.ok_or_else(|| err("secret", "required by `scheme: hmac`"))?;
                let header =
                    optional_header("signing.header", cfg.header.as_deref(), DEFAULT_HMAC_HEADER)?
                        .ok_or_else(|| err("signing.header", "must not be empty"))?;
                let timestamp_header = optional_header(
                    "signing.timestamp_header",
                    cfg.timestamp_header.as_deref(),
                    "",
                )?;
                let message =
                    MessageTemplate::resolve(cfg.message.as_deref(), timestamp_header.is_some())
                        .map_err(|e| err("signing.message", e))?;
                let encoding = SignatureEncoding::parse(cfg.encoding.as_deref()).map_err(|e| {
                    err(
                        "signing.encoding",
                        format!("unknown encoding `{e}` (expected hex or base64)"),
                    )
                })?;
                let prefix = cfg.prefix.clone().unwrap_or_default();
                if HeaderValue::try_from(prefix.as_str()).is_err() {
                    return Err(err("signing.prefix", "not valid in an HTTP header"));
                }
                Ok(Signer::Hmac(Box::new(HmacSigner {
                    key: Key(SigningMac::new(secret.expose().as_bytes())),
                    header,
                    prefix,
                    encoding,
                    message,
                    timestamp_header,
                    event_header,
                    id_header: optional_header(
                        "signing.id_header",
                        cfg.id_header.as_deref(),
                        DEFAULT_ID_HEADER,
                    )?,
                })))
            }
        }
    }

    /// The headers of one attempt of `body`: ids, event type, timestamp and signature(s).
    /// `timestamp` is the attempt's, in unix seconds.
    pub fn headers(
        &self,
        event_id: &str,
        event_type: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Vec<(HeaderName, HeaderValue)> {
        let h = |v: &str| HeaderValue::try_from(v).unwrap_or_else(|_| HeaderValue::from_static(""));
        let ts = timestamp.to_string();
        let mut headers = Vec::with_capacity(5);
        match self {
            Signer::StandardWebhooks { keys, event_header } => {
                headers.push((HeaderName::from_static("webhook-id"), h(event_id)));
                headers.push((HeaderName::from_static("webhook-timestamp"), h(&ts)));
                if let Some(name) = event_header {
                    headers.push((name.clone(), h(event_type)));
                }
                if let Some(newest) = keys.first() {
                    let signatures = keys
                        .iter()
                        .map(|k| standard_webhooks_signature_with(&k.0, event_id, timestamp, body))
                        .collect::<Vec<_>>()
                        .join(" ");
                    headers.push((HeaderName::from_static("webhook-signature"), h(&signatures)));
                    headers.push((
                        HeaderName::from_static("x-webhook-signature"),
                        h(&hmac_sha256_hex_with(&newest.0, "sha256=", body)),
                    ));
                }
            }
            Signer::Hmac(s) => {
                if let Some(name) = &s.id_header {
                    headers.push((name.clone(), h(event_id)));
                }
                if let Some(name) = &s.event_header {
                    headers.push((name.clone(), h(event_type)));
                }
                if let Some(name) = &s.timestamp_header {
                    headers.push((name.clone(), h(&ts)));
                }
                let tag = s.key.0.tag(&s.message, Some(&ts), body);
                let value = format!("{}{}", s.prefix, s.encoding.encode(&tag));
                headers.push((s.header.clone(), h(&value)));
            }
        }
        headers
    }
}

#[cfg(test)]
mod tests;
