//! HMAC-SHA256 signing, shared by inbound verification (`sources::auth`) and outbound
//! signing (`delivery::webhook`, `delivery::endpoint`): keys made ready once
//! ([`SigningMac`]), hex signatures ([`hmac_sha256_hex`]) and Standard Webhooks signatures
//! ([`standard_webhooks_signature`], [`standard_webhooks_key`]), and the plain HMAC forms
//! receivers and senders use ([`MessageTemplate`]: what is signed; [`SignatureEncoding`]: hex
//! or base64), the same code verifying inbound and signing outbound.

use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_NO_PAD_INDIFFERENT};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// HMAC with SHA-256.
pub(crate) type HmacSha256 = Hmac<Sha256>;

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(Sha256::digest(data).as_slice());
    out
}

pub(crate) fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// Standard base64, padded or not; URL-safe base64 is accepted too.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    STANDARD_PAD_INDIFFERENT
        .decode(s)
        .or_else(|_| URL_SAFE_NO_PAD_INDIFFERENT.decode(s))
        .ok()
}

/// The HMAC key of a Standard Webhooks secret: the base64-decoded part after `whsec_`, or the
/// secret's UTF-8 bytes when it has no `whsec_` prefix (or that part is not base64).
pub fn standard_webhooks_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(decode_base64)
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// An HMAC-SHA256 key made ready once: each signature starts from a copy of its keyed state
/// instead of hashing the key again (two of a short body's few SHA-256 blocks). Its `Debug`
/// prints `***`.
#[derive(Clone)]
pub struct SigningMac(HmacSha256);

impl SigningMac {
    pub fn new(key: &[u8]) -> SigningMac {
        SigningMac(new_mac(key))
    }
}

impl std::fmt::Debug for SigningMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The Standard Webhooks `webhook-signature` value: `v1,<base64 HMAC-SHA256 of
/// "id.timestamp.body">`.
pub fn standard_webhooks_signature(
    key: &[u8],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    standard_webhooks_signature_with(&SigningMac::new(key), msg_id, timestamp, body)
}

/// [`standard_webhooks_signature`] with a key made ready once.
pub fn standard_webhooks_signature_with(
    key: &SigningMac,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut mac = key.0.clone();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let mut out = String::with_capacity(3 + 44);
    out.push_str("v1,");
    base64::engine::general_purpose::STANDARD.encode_string(mac.finalize().into_bytes(), &mut out);
    out
}

/// Longest `message` template (`hmac.message` of a source, `signing.message` of an endpoint).
pub const DEFAULT_MAX_MESSAGE_TEMPLATE: usize = 128;

/// How the signature bytes are written in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

impl SignatureEncoding {
    /// `hex` (the default when absent) or `base64`, without case; `Err` names what was given.
    pub fn parse(given: Option<&str>) -> Result<SignatureEncoding, String> {
        match given.map(|e| e.trim().to_ascii_lowercase()) {
            None => Ok(SignatureEncoding::Hex),
            Some(e) if e == "hex" => Ok(SignatureEncoding::Hex),
            Some(e) if e == "base64" => Ok(SignatureEncoding::Base64),
            Some(_) => Err(given.unwrap_or_default().to_string()),
        }
    }

    /// The tag written this way (lowercase hex; standard padded base64).
    pub fn encode(self, tag: &[u8]) -> String {
        match self {
            SignatureEncoding::Hex => hex::encode(tag),
            SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(tag),
        }
    }
}

/// What is signed: `head`, the timestamp, `after_timestamp`, then the body; or the body alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate {
    /// Text before the timestamp (empty without one).
    head: String,
    /// Text between the timestamp and the body; `None`: no timestamp in the message.
    after_timestamp: Option<String>,
}

impl MessageTemplate {
    /// `{body}`, or text around `{timestamp}` before `{body}` (`{timestamp}.{body}`,
    /// `{timestamp}:{body}`, Slack's `v0:{timestamp}:{body}`). `Err` says what is wrong.
    pub fn parse(t: &str) -> Result<MessageTemplate, String> {
        let bad = |why: &str| format!("`{t}`: {why}");
        if t.len() > DEFAULT_MAX_MESSAGE_TEMPLATE {
            return Err(bad("too long"));
        }
        let before_body = t
            .strip_suffix("{body}")
            .ok_or_else(|| bad("it must end with `{body}`"))?;
        if before_body.contains("{body}") {
            return Err(bad("`{body}` may appear once"));
        }
        match before_body.split_once("{timestamp}") {
            None => {
                if !before_body.is_empty() {
                    return Err(bad(
                        "text before `{body}` needs a `{timestamp}` (or leave only `{body}`)",
                    ));
                }
                Ok(MessageTemplate {
                    head: String::new(),
                    after_timestamp: None,
                })
            }
            Some((head, after)) => {
                if after.contains("{timestamp}") {
                    return Err(bad("`{timestamp}` may appear once"));
                }
                Ok(MessageTemplate {
                    head: head.to_string(),
                    after_timestamp: Some(after.to_string()),
                })
            }
        }
    }

    /// The template of a `message` option and whether a timestamp header is set: the given
    /// one, else `{timestamp}:{body}` with a timestamp header (Grafana's scheme) and `{body}`
    /// without. A template with `{timestamp}` needs the header.
    pub fn resolve(given: Option<&str>, timestamp_header: bool) -> Result<MessageTemplate, String> {
        let message = match (given, timestamp_header) {
            (Some(t), _) => MessageTemplate::parse(t)?,
            (None, true) => MessageTemplate::parse("{timestamp}:{body}")?,
            (None, false) => MessageTemplate::parse("{body}")?,
        };
        if message.uses_timestamp() && !timestamp_header {
            return Err("a message with `{timestamp}` needs `timestamp_header`".into());
        }
        Ok(message)
    }

    pub fn uses_timestamp(&self) -> bool {
        self.after_timestamp.is_some()
    }

    /// Feeds the signed message into `mac`: the timestamp part when the template has one and
    /// `timestamp` is given, then the body.
    pub(crate) fn update(&self, mac: &mut HmacSha256, timestamp: Option<&str>, body: &[u8]) {
        if let (Some(ts), Some(after)) = (timestamp, &self.after_timestamp) {
            mac.update(self.head.as_bytes());
            mac.update(ts.as_bytes());
            mac.update(after.as_bytes());
        }
        mac.update(body);
    }
}

impl SigningMac {
    /// The HMAC-SHA256 tag of `message` filled with `timestamp` and `body`.
    pub fn tag(&self, message: &MessageTemplate, timestamp: Option<&str>, body: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        message.update(&mut mac, timestamp, body);
        let mut out = [0u8; 32];
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }
}

/// Lowercase hex of HMAC-SHA256(key, body).
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    hmac_sha256_hex_with(&SigningMac::new(key), "", body)
}

/// `prefix` and the lowercase hex of HMAC-SHA256(key, body), with a key made ready once.
pub fn hmac_sha256_hex_with(key: &SigningMac, prefix: &str, body: &[u8]) -> String {
    let mut mac = key.0.clone();
    mac.update(body);
    let mut hex = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(mac.finalize().into_bytes(), &mut hex);
    let mut out = String::with_capacity(prefix.len() + 64);
    out.push_str(prefix);
    out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_hex_matches_rfc_4231() {
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn message_templates_sign_what_they_say() {
        let key = SigningMac::new(b"k");
        let body = b"{}";
        let dot = MessageTemplate::resolve(Some("{timestamp}.{body}"), true).unwrap();
        let colon = MessageTemplate::resolve(None, true).unwrap();
        let plain = MessageTemplate::resolve(None, false).unwrap();
        let direct = |m: &[u8]| {
            let mut mac = new_mac(b"k");
            mac.update(m);
            mac.finalize().into_bytes().to_vec()
        };
        assert_eq!(key.tag(&dot, Some("17"), body).to_vec(), direct(b"17.{}"));
        assert_eq!(key.tag(&colon, Some("17"), body).to_vec(), direct(b"17:{}"));
        assert_eq!(key.tag(&plain, Some("17"), body).to_vec(), direct(b"{}"));
        assert!(MessageTemplate::resolve(Some("{timestamp}.{body}"), false).is_err());
        assert!(MessageTemplate::parse("{body}{body}").is_err());
        assert!(MessageTemplate::parse("x{body}").is_err());
        assert_eq!(
            SignatureEncoding::parse(Some("BASE64")),
            Ok(SignatureEncoding::Base64)
        );
        assert_eq!(SignatureEncoding::parse(Some("b32")), Err("b32".into()));
        assert_eq!(SignatureEncoding::Base64.encode(&[0xff]), "/w==");
    }
}
