//! HMAC-SHA256 signing, shared by inbound verification (`sources::auth`) and outbound
//! signing (`delivery::webhook`, `delivery::endpoint`): keys made ready once
//! ([`SigningMac`]), hex signatures ([`hmac_sha256_hex`]) and Standard Webhooks signatures
//! ([`standard_webhooks_signature`], [`standard_webhooks_key`]).

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
}
