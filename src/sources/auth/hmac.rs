//! `auth: { hmac: {...} }`: an HMAC-SHA256 signature in a header, in the schemes real senders
//! use: the signed message is the body, or the body after a timestamp (`<ts>.<body>`,
//! `<ts>:<body>`, or any text around `{timestamp}` before `{body}`, e.g. Slack's
//! `v0:{timestamp}:{body}`); any header names for the signature and the timestamp; hex or
//! base64; an optional prefix; and a second secret (`previous_secret`) during a rotation.

use std::time::Duration;

use actix_web::http::header::HeaderMap;
use chrono::{DateTime, Utc};
use hmac::Mac;

use super::{
    check_timestamp, header_str, AuthConfigError, AuthError, NamedHeader, DEFAULT_TOLERANCE,
    TAG_LEN,
};
use crate::config::duration::parse_duration;
use crate::config::types::{HmacConfig, SourceKind};
pub use crate::signing::SignatureEncoding;
use crate::signing::{decode_base64, new_mac, HmacSha256, MessageTemplate};

/// The HMAC signature header check (`auth: { hmac: {...} }`).
#[derive(Clone)]
pub(super) struct HmacVerifier {
    /// The keyed MAC states, cloned for each request (each key is hashed in only once): the
    /// secret, then `previous_secret` when set.
    macs: Vec<HmacSha256>,
    /// Candidate signature headers; the first one present is used.
    pub(super) headers: Vec<NamedHeader>,
    pub(super) encoding: SignatureEncoding,
    /// Stripped from the header value when present (ASCII case-insensitive); optional.
    pub(super) prefix: Option<String>,
    pub(super) timestamp_header: Option<NamedHeader>,
    message: MessageTemplate,
    pub(super) tolerance: Duration,
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

pub(super) fn build_hmac(
    h: &HmacConfig,
    kind: SourceKind,
) -> Result<HmacVerifier, AuthConfigError> {
    if h.secret.is_empty() {
        return Err(AuthConfigError::EmptySecret("hmac.secret"));
    }
    let mut macs = vec![new_mac(h.secret.expose().as_bytes())];
    if let Some(previous) = &h.previous_secret {
        if previous.is_empty() {
            return Err(AuthConfigError::EmptySecret("hmac.previous_secret"));
        }
        macs.push(new_mac(previous.expose().as_bytes()));
    }
    let (default_headers, default_prefix) = default_hmac_headers(kind);
    let headers = match &h.header {
        Some(name) => vec![NamedHeader::new("hmac.header", name)?],
        None => default_headers
            .iter()
            .map(|n| NamedHeader::new("hmac.header", n))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let encoding =
        SignatureEncoding::parse(h.encoding.as_deref()).map_err(AuthConfigError::Encoding)?;
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
    let message = MessageTemplate::resolve(h.message.as_deref(), timestamp_header.is_some())
        .map_err(AuthConfigError::Message)?;
    let tolerance = match &h.tolerance {
        Some(t) => parse_duration(t).map_err(|e| AuthConfigError::Tolerance(e.to_string()))?,
        None => DEFAULT_TOLERANCE,
    };
    Ok(HmacVerifier {
        macs,
        headers,
        encoding,
        prefix,
        timestamp_header,
        message,
        tolerance,
    })
}

impl HmacVerifier {
    /// The signature header and the timestamp, checked without the body.
    pub(super) fn verify_headers(
        &self,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        self.headers
            .iter()
            .find(|h| headers.contains_key(&h.name))
            .ok_or_else(|| {
                AuthError::Missing(self.headers.iter().map(|h| h.display.clone()).collect())
            })?;
        self.timestamp(headers, now).map(|_| ())
    }

    /// The timestamp header's value, within tolerance (`None` without a timestamp header).
    fn timestamp<'h>(
        &self,
        headers: &'h HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<Option<&'h str>, AuthError> {
        let Some(ts_header) = &self.timestamp_header else {
            return Ok(None);
        };
        let raw = headers
            .get(&ts_header.name)
            .ok_or_else(|| AuthError::Missing(vec![ts_header.display.clone()]))?;
        let raw = header_str(&ts_header.display, raw)?.trim();
        check_timestamp(&ts_header.display, raw, now, self.tolerance)?;
        Ok(Some(raw))
    }

    pub(super) fn verify(
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
        let timestamp = self.timestamp(headers, now)?;
        let mut matched = false;
        for key in &self.macs {
            let mut mac = key.clone();
            self.message.update(&mut mac, timestamp, body);
            // Every key is tried, so the time taken does not say which one matched.
            matched |= mac.verify_slice(&tag).is_ok();
        }
        if matched {
            Ok(())
        } else {
            Err(AuthError::Mismatch)
        }
    }
}
