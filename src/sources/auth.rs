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

use std::fmt;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName};
use chrono::{DateTime, Utc};
use hmac::Mac;
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::config::duration::parse_duration;
use crate::config::types::{AuthConfig, HmacConfig, SourceKind};
use crate::signing::{decode_base64, new_mac, sha256, standard_webhooks_key, HmacSha256};

/// Length in bytes of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

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
}

/// How the signature bytes are written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    Hex,
    Base64,
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

/// The HMAC signature header check (`auth: { hmac: {...} }`).
#[derive(Clone)]
struct HmacVerifier {
    /// The keyed MAC state, cloned for each request (the key is hashed in only once).
    mac: HmacSha256,
    /// Candidate signature headers; the first one present is used.
    headers: Vec<NamedHeader>,
    encoding: SignatureEncoding,
    /// Stripped from the header value when present (ASCII case-insensitive); optional.
    prefix: Option<String>,
    timestamp_header: Option<NamedHeader>,
    tolerance: Duration,
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
        }
    }
}

/// Default signature headers and prefix when `hmac.header` / `hmac.prefix` are not set.
fn default_hmac_headers(kind: SourceKind) -> (&'static [&'static str], Option<&'static str>) {
    match kind {
        SourceKind::Sentry => (&["Sentry-Hook-Signature"], None),
        SourceKind::Grafana => (
            &["X-Grafana-Alerting-Signature", "X-Grafana-Alert-Signature"],
            None,
        ),
        SourceKind::Alertmanager | SourceKind::Generic | SourceKind::Sns | SourceKind::Plugin => {
            (&["X-Signature", "X-Webhook-Signature"], Some("sha256="))
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

    /// Checks one request. `body` is the raw body as received (signatures cover its bytes).
    /// The part of [`verify`](Self::verify) that needs no body, for ingest to run before it
    /// reads one: bearer and basic credentials in full; for signatures, that the headers are
    /// there and the signed timestamp is within tolerance. A request refused here would be
    /// refused by `verify` with the same error; one accepted here still needs `verify`.
    pub fn verify_headers(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Result<(), AuthError> {
        match &self.0 {
            Inner::Bearer { .. } | Inner::Basic { .. } => self.verify(headers, &[], now),
            Inner::Hmac(v) => {
                v.headers
                    .iter()
                    .find(|h| headers.contains_key(&h.name))
                    .ok_or_else(|| {
                        AuthError::Missing(v.headers.iter().map(|h| h.display.clone()).collect())
                    })?;
                if let Some(ts_header) = &v.timestamp_header {
                    let raw = headers
                        .get(&ts_header.name)
                        .ok_or_else(|| AuthError::Missing(vec![ts_header.display.clone()]))?;
                    let raw = header_str(&ts_header.display, raw)?.trim();
                    check_timestamp(&ts_header.display, raw, now, v.tolerance)?;
                }
                Ok(())
            }
            Inner::StandardWebhooks { .. } => {
                sw_header(headers, SW_ID)?;
                let ts_raw = sw_header(headers, SW_TIMESTAMP)?.trim();
                sw_header(headers, SW_SIGNATURE)?;
                check_timestamp(SW_TIMESTAMP[0], ts_raw, now, DEFAULT_TOLERANCE).map(|_| ())
            }
        }
    }

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
            Inner::StandardWebhooks { mac } => verify_standard_webhooks(mac, headers, body, now),
        }
    }
}

fn build_hmac(h: &HmacConfig, kind: SourceKind) -> Result<HmacVerifier, AuthConfigError> {
    if h.secret.is_empty() {
        return Err(AuthConfigError::EmptySecret("hmac.secret"));
    }
    let (default_headers, default_prefix) = default_hmac_headers(kind);
    let headers = match &h.header {
        Some(name) => vec![NamedHeader::new("hmac.header", name)?],
        None => default_headers
            .iter()
            .map(|n| NamedHeader::new("hmac.header", n))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let encoding = match h.encoding.as_deref().map(|e| e.trim().to_ascii_lowercase()) {
        None => SignatureEncoding::Hex,
        Some(e) if e == "hex" => SignatureEncoding::Hex,
        Some(e) if e == "base64" => SignatureEncoding::Base64,
        Some(_) => {
            return Err(AuthConfigError::Encoding(
                h.encoding.clone().unwrap_or_default(),
            ))
        }
    };
    let prefix = match &h.prefix {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(p.clone()),
        None => default_prefix.map(str::to_string),
    };
    let timestamp_header = h
        .timestamp_header
        .as_deref()
        .map(|n| NamedHeader::new("hmac.timestamp_header", n))
        .transpose()?;
    let tolerance = match &h.tolerance {
        Some(t) => parse_duration(t).map_err(|e| AuthConfigError::Tolerance(e.to_string()))?,
        None => DEFAULT_TOLERANCE,
    };
    Ok(HmacVerifier {
        mac: new_mac(h.secret.expose().as_bytes()),
        headers,
        encoding,
        prefix,
        timestamp_header,
        tolerance,
    })
}

impl HmacVerifier {
    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let (header, value) = self
            .headers
            .iter()
            .find_map(|h| headers.get(&h.name).map(|v| (h, v)))
            .ok_or_else(|| {
                AuthError::Missing(self.headers.iter().map(|h| h.display.clone()).collect())
            })?;
        let value = header_str(&header.display, value)?;
        let mut sig = value.trim();
        if let Some(prefix) = &self.prefix {
            if sig.len() >= prefix.len()
                && sig.is_char_boundary(prefix.len())
                && sig[..prefix.len()].eq_ignore_ascii_case(prefix)
            {
                sig = &sig[prefix.len()..];
            }
        }
        let tag = match self.encoding {
            SignatureEncoding::Hex => hex::decode(sig).map_err(|_| AuthError::Malformed {
                header: header.display.clone(),
                reason: format!(
                    "expected {}64 hex characters (an HMAC-SHA256 digest)",
                    self.prefix
                        .as_deref()
                        .map(|p| format!("an optional `{p}` and "))
                        .unwrap_or_default()
                ),
            })?,
            SignatureEncoding::Base64 => {
                decode_base64(sig).ok_or_else(|| AuthError::Malformed {
                    header: header.display.clone(),
                    reason: "expected the base64 of an HMAC-SHA256 digest".into(),
                })?
            }
        };
        if tag.len() != TAG_LEN {
            return Err(AuthError::Malformed {
                header: header.display.clone(),
                reason: format!(
                    "the signature is {} bytes long; an HMAC-SHA256 digest has {TAG_LEN}",
                    tag.len()
                ),
            });
        }
        let mut mac = self.mac.clone();
        if let Some(ts_header) = &self.timestamp_header {
            let raw = headers
                .get(&ts_header.name)
                .ok_or_else(|| AuthError::Missing(vec![ts_header.display.clone()]))?;
            let raw = header_str(&ts_header.display, raw)?.trim();
            check_timestamp(&ts_header.display, raw, now, self.tolerance)?;
            mac.update(raw.as_bytes());
            mac.update(b":");
        }
        mac.update(body);
        mac.verify_slice(&tag).map_err(|_| AuthError::Mismatch)
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
        reason: "expected a unix timestamp in seconds".into(),
    })?;
    let skew = i128::from(now.timestamp()) - i128::from(ts);
    if skew.unsigned_abs() > u128::from(tolerance.as_secs()) {
        return Err(AuthError::TimestampOutOfTolerance {
            header: display.to_string(),
            skew_secs: i64::try_from(skew).unwrap_or(i64::MAX),
            tolerance_secs: tolerance.as_secs(),
        });
    }
    Ok(ts)
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
mod tests {
    use super::*;
    use crate::config::types::Secret;
    use crate::signing::{hmac_sha256_hex, standard_webhooks_signature};
    use actix_web::http::header::HeaderValue;
    use base64::Engine as _;

    // The Standard Webhooks specification's published test vector.
    const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW_ID_VAL: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW_TS: i64 = 1614265330;
    const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn at(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(ts, 0).unwrap()
    }

    fn hmac_cfg(secret: &str) -> HmacConfig {
        HmacConfig {
            secret: Secret::new(secret),
            header: None,
            encoding: None,
            prefix: None,
            timestamp_header: None,
            tolerance: None,
        }
    }

    fn build(cfg: AuthConfig, kind: SourceKind) -> Authenticator {
        Authenticator::build(&cfg, kind).unwrap()
    }

    fn sw() -> Authenticator {
        build(
            AuthConfig::StandardWebhooks {
                secret: Secret::new(SW_SECRET),
            },
            SourceKind::Generic,
        )
    }

    fn sw_headers(sig: &str) -> HeaderMap {
        headers(&[
            ("webhook-id", SW_ID_VAL),
            ("webhook-timestamp", &SW_TS.to_string()),
            ("webhook-signature", sig),
        ])
    }

    #[test]
    fn standard_webhooks_vector_signs() {
        let key = standard_webhooks_key(SW_SECRET);
        assert_eq!(
            standard_webhooks_signature(&key, SW_ID_VAL, SW_TS, SW_BODY),
            SW_SIG
        );
    }

    #[test]
    fn standard_webhooks_vector_verifies() {
        let now = at(SW_TS);
        assert_eq!(sw().verify(&sw_headers(SW_SIG), SW_BODY, now), Ok(()));
        // Any one of several signatures is enough; unknown versions are ignored.
        let list = format!("v1a,abcd v1,AAAA {SW_SIG}");
        assert_eq!(sw().verify(&sw_headers(&list), SW_BODY, now), Ok(()));
        // Svix' header names are accepted too.
        let svix = headers(&[
            ("svix-id", SW_ID_VAL),
            ("svix-timestamp", &SW_TS.to_string()),
            ("svix-signature", SW_SIG),
        ]);
        assert_eq!(sw().verify(&svix, SW_BODY, now), Ok(()));
        // Within the 5 minute tolerance on both sides.
        assert_eq!(
            sw().verify(&sw_headers(SW_SIG), SW_BODY, at(SW_TS + 300)),
            Ok(())
        );
        assert_eq!(
            sw().verify(&sw_headers(SW_SIG), SW_BODY, at(SW_TS - 300)),
            Ok(())
        );
    }

    #[test]
    fn standard_webhooks_refusals() {
        let now = at(SW_TS);
        // Tampered body.
        assert_eq!(
            sw().verify(&sw_headers(SW_SIG), br#"{"test": 2432232315}"#, now),
            Err(AuthError::Mismatch)
        );
        // Wrong secret.
        let other = build(
            AuthConfig::StandardWebhooks {
                secret: Secret::new("whsec_bm90IHRoZSBzYW1lIHNlY3JldA=="),
            },
            SourceKind::Generic,
        );
        assert_eq!(
            other.verify(&sw_headers(SW_SIG), SW_BODY, now),
            Err(AuthError::Mismatch)
        );
        // Stale and future timestamps.
        for t in [SW_TS + 301, SW_TS - 301] {
            assert!(matches!(
                sw().verify(&sw_headers(SW_SIG), SW_BODY, at(t)),
                Err(AuthError::TimestampOutOfTolerance { .. })
            ));
        }
        // A different id changes the signed message.
        let h = headers(&[
            ("webhook-id", "msg_other"),
            ("webhook-timestamp", &SW_TS.to_string()),
            ("webhook-signature", SW_SIG),
        ]);
        assert_eq!(sw().verify(&h, SW_BODY, now), Err(AuthError::Mismatch));
        // Missing headers, each named.
        for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let mut h = sw_headers(SW_SIG);
            h.remove(missing);
            assert_eq!(
                sw().verify(&h, SW_BODY, now),
                Err(AuthError::Missing(vec![missing.to_string()]))
            );
        }
        // Unreadable.
        assert!(matches!(
            sw().verify(&sw_headers("g0hM9SsE+OTPJTGt"), SW_BODY, now),
            Err(AuthError::Malformed { .. })
        ));
        let mut h = sw_headers(SW_SIG);
        h.insert(
            HeaderName::from_static("webhook-timestamp"),
            HeaderValue::from_static("yesterday"),
        );
        assert!(matches!(
            sw().verify(&h, SW_BODY, now),
            Err(AuthError::Malformed { .. })
        ));
    }

    #[test]
    fn standard_webhooks_keys() {
        assert_eq!(standard_webhooks_key("whsec_c2VjcmV0"), b"secret".to_vec());
        assert_eq!(standard_webhooks_key("plain"), b"plain".to_vec());
        // A plain (non-whsec) secret signs with its bytes.
        let a = build(
            AuthConfig::StandardWebhooks {
                secret: Secret::new("plain"),
            },
            SourceKind::Generic,
        );
        let sig = standard_webhooks_signature(b"plain", "m1", SW_TS, b"x");
        let h = headers(&[
            ("webhook-id", "m1"),
            ("webhook-timestamp", &SW_TS.to_string()),
            ("webhook-signature", &sig),
        ]);
        assert_eq!(a.verify(&h, b"x", at(SW_TS)), Ok(()));
        assert_eq!(
            Authenticator::build(
                &AuthConfig::StandardWebhooks {
                    secret: Secret::new("whsec_***")
                },
                SourceKind::Generic
            )
            .unwrap_err(),
            AuthConfigError::WhsecBase64
        );
    }

    #[test]
    fn bearer() {
        let a = build(
            AuthConfig::Bearer(Secret::new("s3cret-token")),
            SourceKind::Alertmanager,
        );
        let now = Utc::now();
        let ok = headers(&[("Authorization", "Bearer s3cret-token")]);
        assert_eq!(a.verify(&ok, b"", now), Ok(()));
        let lower = headers(&[("authorization", "bearer s3cret-token")]);
        assert_eq!(a.verify(&lower, b"", now), Ok(()));
        for wrong in ["Bearer s3cret-toke", "Bearer s3cret-token2", "Bearer x"] {
            assert_eq!(
                a.verify(&headers(&[("Authorization", wrong)]), b"", now),
                Err(AuthError::BadCredentials)
            );
        }
        assert_eq!(
            a.verify(&HeaderMap::new(), b"", now),
            Err(AuthError::Missing(vec!["Authorization".into()]))
        );
        for malformed in ["s3cret-token", "Basic s3cret-token", "Bearer "] {
            assert!(matches!(
                a.verify(&headers(&[("Authorization", malformed)]), b"", now),
                Err(AuthError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn basic() {
        let a = build(
            AuthConfig::Basic {
                username: "am".into(),
                password: Secret::new("pa:ss"),
            },
            SourceKind::Alertmanager,
        );
        let now = Utc::now();
        let enc = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert_eq!(
            a.verify(&headers(&[("Authorization", &enc("am:pa:ss"))]), b"", now),
            Ok(())
        );
        for wrong in ["am:pa:sS", "AM:pa:ss", "am:", ":pa:ss"] {
            assert_eq!(
                a.verify(&headers(&[("Authorization", &enc(wrong))]), b"", now),
                Err(AuthError::BadCredentials),
                "{wrong}"
            );
        }
        assert_eq!(
            a.verify(&HeaderMap::new(), b"", now),
            Err(AuthError::Missing(vec!["Authorization".into()]))
        );
        assert!(matches!(
            a.verify(&headers(&[("Authorization", "Basic %%%")]), b"", now),
            Err(AuthError::Malformed { .. })
        ));
        assert!(matches!(
            a.verify(&headers(&[("Authorization", "Bearer am:pa:ss")]), b"", now),
            Err(AuthError::Malformed { .. })
        ));
    }

    #[test]
    fn hmac_generic_defaults() {
        let a = build(AuthConfig::Hmac(hmac_cfg("topsecret")), SourceKind::Generic);
        let body = br#"{"title":"x"}"#;
        let sig = hmac_sha256_hex(b"topsecret", body);
        let now = Utc::now();
        for (h, v) in [
            ("X-Signature", format!("sha256={sig}")),
            ("X-Webhook-Signature", format!("sha256={sig}")),
            ("X-Signature", sig.clone()),
            ("X-Signature", format!("sha256={}", sig.to_uppercase())),
            ("X-Signature", format!("SHA256={sig}")),
        ] {
            assert_eq!(
                a.verify(&headers(&[(h, &v)]), body, now),
                Ok(()),
                "{h}: {v}"
            );
        }
        // Tampered body, wrong secret.
        let good = headers(&[("X-Signature", &format!("sha256={sig}"))]);
        assert_eq!(
            a.verify(&good, br#"{"title":"y"}"#, now),
            Err(AuthError::Mismatch)
        );
        let other = build(
            AuthConfig::Hmac(hmac_cfg("othersecret")),
            SourceKind::Generic,
        );
        assert_eq!(other.verify(&good, body, now), Err(AuthError::Mismatch));
        // Missing: both accepted names are listed.
        let err = a.verify(&HeaderMap::new(), body, now).unwrap_err();
        assert_eq!(
            err,
            AuthError::Missing(vec!["X-Signature".into(), "X-Webhook-Signature".into()])
        );
        assert_eq!(
            err.to_string(),
            "missing header `X-Signature` or `X-Webhook-Signature`"
        );
        // Not hex; wrong length.
        for bad in ["sha256=zz", "sha256=abcd", "sha256="] {
            assert!(matches!(
                a.verify(&headers(&[("X-Signature", bad)]), body, now),
                Err(AuthError::Malformed { .. })
            ));
        }
        // Alertmanager sources have the same defaults.
        let am = build(
            AuthConfig::Hmac(hmac_cfg("topsecret")),
            SourceKind::Alertmanager,
        );
        assert_eq!(am.verify(&good, body, now), Ok(()));
    }

    #[test]
    fn hmac_sentry_defaults() {
        let a = build(
            AuthConfig::Hmac(hmac_cfg("client-secret")),
            SourceKind::Sentry,
        );
        let body = br#"{"action":"created"}"#;
        let sig = hmac_sha256_hex(b"client-secret", body);
        let now = Utc::now();
        assert_eq!(
            a.verify(&headers(&[("Sentry-Hook-Signature", &sig)]), body, now),
            Ok(())
        );
        assert_eq!(
            a.verify(&headers(&[("X-Signature", &sig)]), body, now),
            Err(AuthError::Missing(vec!["Sentry-Hook-Signature".into()]))
        );
        assert_eq!(
            a.verify(&headers(&[("Sentry-Hook-Signature", &sig)]), b"{}", now),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn hmac_grafana_with_timestamp() {
        let mut cfg = hmac_cfg("grafana-secret");
        cfg.timestamp_header = Some("X-Grafana-Alerting-Timestamp".into());
        let a = build(AuthConfig::Hmac(cfg), SourceKind::Grafana);
        let body = br#"{"receiver":"x","status":"firing","alerts":[]}"#;
        let ts = 1_700_000_000i64;
        // Grafana signs "<unix seconds>:<body>".
        let mut msg = format!("{ts}:").into_bytes();
        msg.extend_from_slice(body);
        let sig = hmac_sha256_hex(b"grafana-secret", &msg);
        for header in ["X-Grafana-Alerting-Signature", "X-Grafana-Alert-Signature"] {
            let h = headers(&[
                (header, &sig),
                ("X-Grafana-Alerting-Timestamp", &ts.to_string()),
            ]);
            assert_eq!(a.verify(&h, body, at(ts + 10)), Ok(()), "{header}");
        }
        let h = headers(&[
            ("X-Grafana-Alerting-Signature", &sig),
            ("X-Grafana-Alerting-Timestamp", &ts.to_string()),
        ]);
        // The signature of the bare body is not enough.
        let bare = headers(&[
            (
                "X-Grafana-Alerting-Signature",
                &hmac_sha256_hex(b"grafana-secret", body),
            ),
            ("X-Grafana-Alerting-Timestamp", &ts.to_string()),
        ]);
        assert_eq!(a.verify(&bare, body, at(ts)), Err(AuthError::Mismatch));
        // Stale (default tolerance 5m).
        assert_eq!(
            a.verify(&h, body, at(ts + 301)),
            Err(AuthError::TimestampOutOfTolerance {
                header: "X-Grafana-Alerting-Timestamp".into(),
                skew_secs: 301,
                tolerance_secs: 300
            })
        );
        // A replayed signature with a fresh timestamp does not match.
        let replay = headers(&[
            ("X-Grafana-Alerting-Signature", &sig),
            ("X-Grafana-Alerting-Timestamp", &(ts + 400).to_string()),
        ]);
        assert_eq!(
            a.verify(&replay, body, at(ts + 400)),
            Err(AuthError::Mismatch)
        );
        // Tampered body, missing timestamp.
        assert_eq!(a.verify(&h, b"{}", at(ts)), Err(AuthError::Mismatch));
        let no_ts = headers(&[("X-Grafana-Alerting-Signature", &sig)]);
        assert_eq!(
            a.verify(&no_ts, body, at(ts)),
            Err(AuthError::Missing(vec![
                "X-Grafana-Alerting-Timestamp".into()
            ]))
        );
        // Grafana has no prefix by default: `sha256=` is not stripped.
        let prefixed = headers(&[
            ("X-Grafana-Alerting-Signature", &format!("sha256={sig}")),
            ("X-Grafana-Alerting-Timestamp", &ts.to_string()),
        ]);
        assert!(matches!(
            a.verify(&prefixed, body, at(ts)),
            Err(AuthError::Malformed { .. })
        ));
    }

    #[test]
    fn hmac_custom_header_base64_prefix_and_tolerance() {
        let cfg = HmacConfig {
            secret: Secret::new("k"),
            header: Some("X-Hub-Sig".into()),
            encoding: Some("base64".into()),
            prefix: Some("v0=".into()),
            timestamp_header: Some("X-Ts".into()),
            tolerance: Some("1m".into()),
        };
        let a = build(AuthConfig::Hmac(cfg), SourceKind::Generic);
        let body = b"payload";
        let ts = 1_800_000_000i64;
        let mut mac = new_mac(b"k");
        mac.update(format!("{ts}:").as_bytes());
        mac.update(body);
        let b64 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let h = headers(&[
            ("x-hub-sig", &format!("v0={b64}")),
            ("X-Ts", &ts.to_string()),
        ]);
        assert_eq!(a.verify(&h, body, at(ts - 60)), Ok(()));
        assert!(matches!(
            a.verify(&h, body, at(ts + 61)),
            Err(AuthError::TimestampOutOfTolerance { .. })
        ));
        // The default headers are not consulted when `header` is set.
        let other = headers(&[
            ("X-Signature", &format!("v0={b64}")),
            ("X-Ts", &ts.to_string()),
        ]);
        assert_eq!(
            a.verify(&other, body, at(ts)),
            Err(AuthError::Missing(vec!["X-Hub-Sig".into()]))
        );
        let not_b64 = headers(&[("X-Hub-Sig", "v0=###"), ("X-Ts", &ts.to_string())]);
        assert!(matches!(
            a.verify(&not_b64, body, at(ts)),
            Err(AuthError::Malformed { .. })
        ));
    }

    #[test]
    fn config_errors() {
        let mut c = hmac_cfg("s");
        c.encoding = Some("base32".into());
        assert_eq!(
            Authenticator::build(&AuthConfig::Hmac(c), SourceKind::Generic).unwrap_err(),
            AuthConfigError::Encoding("base32".into())
        );
        let mut c = hmac_cfg("s");
        c.tolerance = Some("5 minutes".into());
        assert!(matches!(
            Authenticator::build(&AuthConfig::Hmac(c), SourceKind::Generic),
            Err(AuthConfigError::Tolerance(_))
        ));
        let mut c = hmac_cfg("s");
        c.header = Some("Bad Header".into());
        assert!(matches!(
            Authenticator::build(&AuthConfig::Hmac(c), SourceKind::Generic),
            Err(AuthConfigError::HeaderName { .. })
        ));
        assert_eq!(
            Authenticator::build(&AuthConfig::Hmac(hmac_cfg("")), SourceKind::Generic).unwrap_err(),
            AuthConfigError::EmptySecret("hmac.secret")
        );
    }

    #[test]
    fn secrets_never_show() {
        let secret = "do-not-print-me";
        let all = [
            build(AuthConfig::Bearer(Secret::new(secret)), SourceKind::Generic),
            build(
                AuthConfig::Basic {
                    username: "u".into(),
                    password: Secret::new(secret),
                },
                SourceKind::Generic,
            ),
            build(AuthConfig::Hmac(hmac_cfg(secret)), SourceKind::Generic),
            build(
                AuthConfig::StandardWebhooks {
                    secret: Secret::new(secret),
                },
                SourceKind::Generic,
            ),
        ];
        let now = Utc::now();
        let requests = [
            HeaderMap::new(),
            headers(&[
                ("Authorization", "Bearer nope"),
                ("X-Signature", "sha256=00"),
            ]),
            headers(&[
                ("webhook-id", "m"),
                ("webhook-timestamp", &now.timestamp().to_string()),
                ("webhook-signature", "v1,AAAA"),
            ]),
        ];
        for a in &all {
            assert!(!format!("{a:?}").contains(secret), "{a:?}");
            for h in &requests {
                if let Err(e) = a.verify(h, b"body", now) {
                    assert!(!e.to_string().contains(secret), "{e}");
                }
            }
        }
    }
}
