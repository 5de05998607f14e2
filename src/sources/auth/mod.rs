//! Request authentication for sources: proves that a POST comes from the configured tool.
//!
//! An [`Authenticator`] is built once from a source's `auth:` option ([`AuthConfig`]) and its
//! kind, and checks each request's headers and raw body: a bearer token, basic credentials, an
//! HMAC-SHA256 signature header (optionally over `<timestamp>:<body>`), or Standard Webhooks
//! signing. Every comparison is constant time, MACs are checked with `verify_slice`, and no
//! error message or `Debug` output ever contains a secret.
//!
//! The MAC and signature primitives are [`crate::signing`], shared with the delivery side,
//! which signs outbound requests with them.

mod hmac;

use std::fmt;
use std::time::Duration;

use ::hmac::Mac;
use actix_web::http::header::{HeaderMap, HeaderName};
use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::config::types::{AuthConfig, SourceKind};
use crate::signing::{decode_base64, new_mac, sha256, standard_webhooks_key, HmacSha256};
pub use hmac::SignatureEncoding;
use hmac::{build_hmac, HmacVerifier};

/// Length in bytes of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

/// Timestamps at least this large are read as milliseconds (10^11 seconds is year 5138).
const MILLIS_THRESHOLD: u64 = 100_000_000_000;

/// Default `hmac.tolerance`, and the fixed tolerance of Standard Webhooks timestamps.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a request was refused. The messages help the sender fix the request; they name
/// headers and formats but never contain a secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// None of the headers that should carry the credentials or signature was sent.
    #[error("missing header {}", join_names(.0))]
    Missing(Vec<String>),
    /// The header is there but cannot be read (wrong scheme, not hex, not base64, ...).
    #[error("malformed `{header}` header: {reason}")]
    Malformed { header: String, reason: String },
    /// The signature is well-formed but was not made with this source's secret over this body.
    #[error("signature does not match")]
    Mismatch,
    /// The signed timestamp is too far from the server's clock (a replay, or a skewed clock).
    #[error(
        "timestamp in `{header}` is {skew_secs}s away from the server's clock \
         (tolerance {tolerance_secs}s)"
    )]
    TimestampOutOfTolerance {
        header: String,
        skew_secs: i64,
        tolerance_secs: u64,
    },
    /// The bearer token or basic credentials are wrong.
    #[error("bad credentials")]
    BadCredentials,
}

fn join_names(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Why an `auth:` option cannot be used. Paths are relative to the source's `auth:` key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthConfigError {
    #[error("{0}: the secret is empty (is its environment variable set?)")]
    EmptySecret(&'static str),
    #[error("hmac.encoding: unknown encoding `{0}` (expected hex or base64)")]
    Encoding(String),
    #[error("hmac.tolerance: {0}")]
    Tolerance(String),
    #[error("{field}: `{value}` is not a valid HTTP header name")]
    HeaderName { field: &'static str, value: String },
    #[error("standard_webhooks.secret: the part after `whsec_` is not valid base64")]
    WhsecBase64,
    #[error("hmac.message: {0}")]
    Message(String),
}

/// A header to read, with the spelling used in messages.
#[derive(Debug, Clone)]
struct NamedHeader {
    name: HeaderName,
    display: String,
}

impl NamedHeader {
    fn new(field: &'static str, value: &str) -> Result<Self, AuthConfigError> {
        let name = HeaderName::from_bytes(value.trim().as_bytes()).map_err(|_| {
            AuthConfigError::HeaderName {
                field,
                value: value.to_string(),
            }
        })?;
        Ok(NamedHeader {
            name,
            display: value.trim().to_string(),
        })
    }
}

/// Checks one source's requests. Built by [`Authenticator::build`]; its `Debug` output shows
/// the option and headers, never the secret.
#[derive(Clone)]
pub struct Authenticator(Inner);

#[derive(Clone)]
enum Inner {
    /// `Authorization: Bearer <token>`; holds the SHA-256 of the token.
    Bearer { digest: [u8; 32] },
    /// `Authorization: Basic base64(user:pass)`; holds the SHA-256 of `user:pass`.
    Basic { digest: [u8; 32] },
    /// An HMAC-SHA256 signature header.
    Hmac(Box<HmacVerifier>),
    /// A shared token in a header of the tool's choosing; holds the SHA-256 of the token.
    Header { name: NamedHeader, digest: [u8; 32] },
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    StandardWebhooks { mac: Box<HmacSha256> },
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Bearer { .. } => f.write_str("Bearer(***)"),
            Inner::Basic { .. } => f.write_str("Basic(***)"),
            Inner::Hmac(v) => f
                .debug_struct("Hmac")
                .field("secret", &"***")
                .field(
                    "headers",
                    &v.headers.iter().map(|h| &h.display).collect::<Vec<_>>(),
                )
                .field("encoding", &v.encoding)
                .field("prefix", &v.prefix)
                .field(
                    "timestamp_header",
                    &v.timestamp_header.as_ref().map(|h| &h.display),
                )
                .field("tolerance", &v.tolerance)
                .finish(),
            Inner::StandardWebhooks { .. } => f.write_str("StandardWebhooks(***)"),
            Inner::Header { name, .. } => write!(f, "Header({}: ***)", name.display),
        }
    }
}

impl Authenticator {
    /// Builds the check for one source from its `auth:` option and kind.
    pub fn build(cfg: &AuthConfig, kind: SourceKind) -> Result<Authenticator, AuthConfigError> {
        match cfg {
            AuthConfig::Bearer(token) => {
                if token.is_empty() {
                    return Err(AuthConfigError::EmptySecret("bearer"));
                }
                Ok(Authenticator(Inner::Bearer {
                    digest: sha256(token.expose().as_bytes()),
                }))
            }
            AuthConfig::Basic { username, password } => {
                if username.is_empty() && password.is_empty() {
                    return Err(AuthConfigError::EmptySecret("basic"));
                }
                let creds = format!("{username}:{}", password.expose());
                Ok(Authenticator(Inner::Basic {
                    digest: sha256(creds.as_bytes()),
                }))
            }
            AuthConfig::Hmac(h) => Ok(Authenticator(Inner::Hmac(Box::new(build_hmac(h, kind)?)))),
            AuthConfig::Header { name, value } => {
                if value.is_empty() {
                    return Err(AuthConfigError::EmptySecret("header.value"));
                }
                Ok(Authenticator(Inner::Header {
                    name: NamedHeader::new("header.name", name)?,
                    digest: sha256(value.expose().as_bytes()),
                }))
            }
            AuthConfig::StandardWebhooks { secret } => {
                if secret.is_empty() {
                    return Err(AuthConfigError::EmptySecret("standard_webhooks.secret"));
                }
                if let Some(b64) = secret.expose().strip_prefix("whsec_") {
                    if decode_base64(b64).is_none() {
                        return Err(AuthConfigError::WhsecBase64);
                    }
                }
                let key = standard_webhooks_key(secret.expose());
                Ok(Authenticator(Inner::StandardWebhooks {
                    mac: Box::new(new_mac(&key)),
                }))
            }
        }
    }

    /// The part of [`verify`](Self::verify) that needs no body, for ingest to run before it
    /// reads one: bearer, basic and header tokens in full; for signatures, that the headers
    /// are there and the signed timestamp is within tolerance. A request refused here would
    /// be refused by `verify` with the same error; one accepted here still needs
    /// [`verify_body`](Self::verify_body), which takes the proof this returns.
    pub fn verify_headers(
        &self,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<HeadersChecked, AuthError> {
        match &self.0 {
            Inner::Bearer { .. } | Inner::Basic { .. } | Inner::Header { .. } => {
                self.verify(headers, &[], now)?
            }
            Inner::Hmac(v) => v.verify_headers(headers, now)?,
            Inner::StandardWebhooks { .. } => {
                sw_header(headers, SW_ID)?;
                let ts_raw = sw_header(headers, SW_TIMESTAMP)?.trim();
                sw_header(headers, SW_SIGNATURE)?;
                check_timestamp(SW_TIMESTAMP[0], ts_raw, now, DEFAULT_TOLERANCE)?;
            }
        }
        Ok(HeadersChecked(()))
    }

    /// The rest of [`verify`](Self::verify) for a request whose headers passed
    /// [`verify_headers`](Self::verify_headers): the signature over the body. Credentials
    /// that live in headers alone are not checked twice.
    pub fn verify_body(
        &self,
        _checked: HeadersChecked,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        match &self.0 {
            Inner::Bearer { .. } | Inner::Basic { .. } | Inner::Header { .. } => Ok(()),
            Inner::Hmac(v) => v.verify(headers, body, now),
            Inner::StandardWebhooks { mac } => verify_standard_webhooks(mac, headers, body, now),
        }
    }

    /// Checks one request whole. `body` is the raw body as received (signatures cover its
    /// bytes).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        match &self.0 {
            Inner::Bearer { digest } => {
                let token = authorization(headers, "Bearer")?;
                ct_digest_eq(digest, token.as_bytes())
            }
            Inner::Basic { digest } => {
                let encoded = authorization(headers, "Basic")?;
                let creds = decode_base64(encoded).ok_or_else(|| AuthError::Malformed {
                    header: "Authorization".into(),
                    reason: "the Basic credentials are not valid base64".into(),
                })?;
                ct_digest_eq(digest, &creds)
            }
            Inner::Hmac(v) => v.verify(headers, body, now),
            Inner::Header { name, digest } => {
                let value = headers
                    .get(&name.name)
                    .ok_or_else(|| AuthError::Missing(vec![name.display.clone()]))?;
                ct_digest_eq(digest, header_str(&name.display, value)?.trim().as_bytes())
            }
            Inner::StandardWebhooks { mac } => verify_standard_webhooks(mac, headers, body, now),
        }
    }
}

/// Proof that a request's headers passed [`Authenticator::verify_headers`] (or that its
/// source checks no credentials): the body check takes it, so header credentials are checked
/// once and never skipped.
#[derive(Debug, Clone, Copy)]
pub struct HeadersChecked(());

impl HeadersChecked {
    /// For a source without `auth:`: there is nothing to check.
    pub(super) fn no_credentials() -> HeadersChecked {
        HeadersChecked(())
    }
}

/// The credentials after `Authorization: <scheme> ` (scheme compared case-insensitively).
fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Result<&'h str, AuthError> {
    let value = headers
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| AuthError::Missing(vec!["Authorization".into()]))?;
    let value = header_str("Authorization", value)?.trim();
    let malformed = || AuthError::Malformed {
        header: "Authorization".into(),
        reason: format!("expected `{scheme} <credentials>`"),
    };
    let (got_scheme, rest) = value.split_once(' ').ok_or_else(malformed)?;
    if !got_scheme.eq_ignore_ascii_case(scheme) {
        return Err(malformed());
    }
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(malformed());
    }
    Ok(rest)
}

/// Constant-time comparison through SHA-256 digests, so neither content nor length leaks.
fn ct_digest_eq(expected: &[u8; 32], given: &[u8]) -> Result<(), AuthError> {
    let given = sha256(given);
    if bool::from(expected.ct_eq(&given)) {
        Ok(())
    } else {
        Err(AuthError::BadCredentials)
    }
}

fn header_str<'h>(
    display: &str,
    value: &'h actix_web::http::header::HeaderValue,
) -> Result<&'h str, AuthError> {
    value.to_str().map_err(|_| AuthError::Malformed {
        header: display.to_string(),
        reason: "the value is not visible ASCII".into(),
    })
}

/// Parses a unix-seconds timestamp header and refuses it when it is outside `tolerance`.
fn check_timestamp(
    display: &str,
    raw: &str,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<i64, AuthError> {
    let ts: i64 = raw.parse().map_err(|_| AuthError::Malformed {
        header: display.to_string(),
        reason: "expected a unix timestamp in seconds (or milliseconds)".into(),
    })?;
    // Some senders write milliseconds: no time in seconds is that large before year 5138.
    let secs = if ts.unsigned_abs() >= MILLIS_THRESHOLD {
        ts / 1000
    } else {
        ts
    };
    let skew = i128::from(now.timestamp()) - i128::from(secs);
    if skew.unsigned_abs() > u128::from(tolerance.as_secs()) {
        return Err(AuthError::TimestampOutOfTolerance {
            header: display.to_string(),
            skew_secs: i64::try_from(skew).unwrap_or(i64::MAX),
            tolerance_secs: tolerance.as_secs(),
        });
    }
    Ok(secs)
}

const SW_ID: [&str; 2] = ["webhook-id", "svix-id"];
const SW_TIMESTAMP: [&str; 2] = ["webhook-timestamp", "svix-timestamp"];
const SW_SIGNATURE: [&str; 2] = ["webhook-signature", "svix-signature"];

/// The first of a header and its Svix alias that is present.
fn sw_header<'h>(headers: &'h HeaderMap, names: [&str; 2]) -> Result<&'h str, AuthError> {
    let value = names
        .iter()
        .find_map(|n| headers.get(*n).map(|v| (*n, v)))
        .ok_or_else(|| AuthError::Missing(vec![names[0].to_string()]))?;
    header_str(value.0, value.1)
}

fn verify_standard_webhooks(
    mac: &HmacSha256,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let id = sw_header(headers, SW_ID)?;
    let ts_raw = sw_header(headers, SW_TIMESTAMP)?.trim();
    let signatures = sw_header(headers, SW_SIGNATURE)?;
    check_timestamp(SW_TIMESTAMP[0], ts_raw, now, DEFAULT_TOLERANCE)?;

    let mut signed = mac.clone();
    signed.update(id.as_bytes());
    signed.update(b".");
    signed.update(ts_raw.as_bytes());
    signed.update(b".");
    signed.update(body);

    let mut readable = 0usize;
    for candidate in signatures.split_ascii_whitespace() {
        let Some(b64) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Some(tag) = decode_base64(b64) else {
            continue;
        };
        readable += 1;
        if signed.clone().verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    if readable == 0 {
        return Err(AuthError::Malformed {
            header: SW_SIGNATURE[0].into(),
            reason: "expected a space-separated list of `v1,<base64>` signatures".into(),
        });
    }
    Err(AuthError::Mismatch)
}

#[cfg(test)]
mod tests;
