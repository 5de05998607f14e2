//! Amazon SNS message signatures: the string SNS signs, the certificate's RSA key, and the
//! check (`SignatureVersion` 1: SHA1withRSA, 2: SHA256withRSA). Certificates are fetched only
//! from `https://sns.<region>.amazonaws.com/...pem` (see [`is_sns_host_url`]) through a
//! [`CertFetcher`], and kept in a small cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ring::signature::{
    UnparsedPublicKey, VerificationAlgorithm, RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
    RSA_PKCS1_2048_8192_SHA256,
};
use thiserror::Error;

use super::Envelope;
use crate::signing::decode_base64;

/// Certificates kept at once (SNS uses one per region and rotates it rarely).
pub const DEFAULT_MAX_CACHED_CERTS: usize = 32;
/// How long a fetched certificate is trusted before it is fetched again.
pub const DEFAULT_CERT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Largest certificate file accepted (a PEM certificate is about 2 KiB).
pub const DEFAULT_MAX_CERT_BYTES: usize = 64 * 1024;
/// Time limit of one certificate download.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a message's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("SignatureVersion `{0}` is not supported (expected 1 or 2)")]
    Version(String),
    #[error("SigningCertURL `{0}` is not an https URL on an sns.<region>.amazonaws.com host")]
    CertUrl(String),
    #[error("the signing certificate could not be fetched: {0}")]
    Fetch(String),
    #[error("the signing certificate is unreadable: {0}")]
    Certificate(String),
    #[error("`Signature` is not base64")]
    Encoding,
    #[error("the message's signature does not match")]
    Mismatch,
    #[error("the message lacks `{0}`, which its type signs")]
    Missing(&'static str),
}

/// Downloads a signing certificate (a PEM file). Injectable so tests can use a certificate
/// made locally.
#[async_trait(?Send)]
pub trait CertFetcher {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String>;
}

/// The fetcher switchyard uses: awc over https, bounded in time and size.
#[derive(Debug, Default)]
pub struct HttpsFetcher;

#[async_trait(?Send)]
impl CertFetcher for HttpsFetcher {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        let client = awc::Client::builder()
            .timeout(DEFAULT_FETCH_TIMEOUT)
            .finish();
        let mut resp = client.get(url).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status().as_u16()));
        }
        let body = resp
            .body()
            .limit(DEFAULT_MAX_CERT_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        Ok(body.to_vec())
    }
}

/// Whether `url` is `https://sns.<region>.amazonaws.com[.cn]/<path>`: the only place a
/// signing certificate or a subscription confirmation is fetched from.
pub fn is_sns_host_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.to_ascii_lowercase();
    let Some(region) = host.strip_prefix("sns.").and_then(|h| {
        h.strip_suffix(".amazonaws.com")
            .or_else(|| h.strip_suffix(".amazonaws.com.cn"))
    }) else {
        return false;
    };
    !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The string SNS signs for a message of this type: `name\nvalue\n` for each signed field in
/// order (`Subject` only when present).
pub fn string_to_sign(e: &Envelope) -> Result<String, SignatureError> {
    let mut out = String::new();
    let mut put = |name: &'static str, v: Option<&str>, required: bool| {
        match v {
            Some(v) => {
                out.push_str(name);
                out.push('\n');
                out.push_str(v);
                out.push('\n');
            }
            None if required => return Err(SignatureError::Missing(name)),
            None => {}
        }
        Ok(())
    };
    put("Message", e.message.as_deref(), true)?;
    put("MessageId", e.message_id.as_deref(), true)?;
    if e.kind == "Notification" {
        put("Subject", e.subject.as_deref(), false)?;
        put("Timestamp", e.timestamp.as_deref(), true)?;
        put("TopicArn", e.topic_arn.as_deref(), true)?;
        put("Type", Some(&e.kind), true)?;
    } else {
        put("SubscribeURL", e.subscribe_url.as_deref(), true)?;
        put("Timestamp", e.timestamp.as_deref(), true)?;
        put("Token", e.token.as_deref(), true)?;
        put("TopicArn", e.topic_arn.as_deref(), true)?;
        put("Type", Some(&e.kind), true)?;
    }
    Ok(out)
}

/// The RSA public key (PKCS#1 `RSAPublicKey` DER) of a PEM or DER X.509 certificate.
pub fn rsa_key_of_certificate(cert: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let bad = |why: &str| SignatureError::Certificate(why.to_string());
    let der = match std::str::from_utf8(cert) {
        Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => {
            let body = text
                .split("-----BEGIN CERTIFICATE-----")
                .nth(1)
                .and_then(|r| r.split("-----END CERTIFICATE-----").next())
                .ok_or_else(|| bad("no PEM certificate block"))?;
            let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            decode_base64(&b64).ok_or_else(|| bad("the PEM block is not base64"))?
        }
        _ => cert.to_vec(),
    };
    // Certificate ::= SEQUENCE { tbsCertificate, ... }
    let (cert_seq, _) = der::element(&der, der::SEQUENCE).ok_or_else(|| bad("not DER"))?;
    let (tbs, _) = der::element(cert_seq, der::SEQUENCE).ok_or_else(|| bad("no tbsCertificate"))?;
    // tbsCertificate: [0] version (optional), serial, signature, issuer, validity, subject, spki
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = der::skip(rest).ok_or_else(|| bad("bad version"))?;
    }
    for what in ["serial", "signature", "issuer", "validity", "subject"] {
        rest = der::skip(rest).ok_or_else(|| bad(what))?;
    }
    let (spki, _) = der::element(rest, der::SEQUENCE).ok_or_else(|| bad("no public key"))?;
    let after_alg = der::skip(spki).ok_or_else(|| bad("no key algorithm"))?;
    let (bits, _) = der::element(after_alg, der::BIT_STRING).ok_or_else(|| bad("no key bits"))?;
    match bits.split_first() {
        Some((0, key)) if !key.is_empty() => Ok(key.to_vec()),
        _ => Err(bad("malformed key bits")),
    }
}

/// A minimal DER reader: just enough to find a certificate's public key.
mod der {
    pub const SEQUENCE: u8 = 0x30;
    pub const BIT_STRING: u8 = 0x03;

    /// The contents of the element at the start of `input` (which must have tag `tag`), and
    /// what follows it.
    pub fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        if *input.first()? != tag {
            return None;
        }
        any(input)
    }

    /// (contents, rest) of the element at the start of `input`, whatever its tag.
    fn any(input: &[u8]) -> Option<(&[u8], &[u8])> {
        let first = *input.get(1)?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for b in input.get(2..2 + n)? {
                len = (len << 8) | usize::from(*b);
            }
            (len, 2 + n)
        };
        let end = header.checked_add(len)?;
        Some((input.get(header..end)?, input.get(end..)?))
    }

    /// What follows the element at the start of `input`.
    pub fn skip(input: &[u8]) -> Option<&[u8]> {
        any(input).map(|(_, rest)| rest)
    }
}

struct Cached {
    key: Vec<u8>,
    at: Instant,
}

/// Checks SNS signatures, fetching each signing certificate once per [`DEFAULT_CERT_TTL`].
pub struct SignatureChecker {
    fetcher: Box<dyn CertFetcher + Send + Sync>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for SignatureChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignatureChecker")
    }
}

impl SignatureChecker {
    pub fn new(fetcher: Box<dyn CertFetcher + Send + Sync>) -> Self {
        SignatureChecker {
            fetcher,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, url: &str) -> Option<Vec<u8>> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(url)
            .filter(|c| c.at.elapsed() < DEFAULT_CERT_TTL)
            .map(|c| c.key.clone())
    }

    fn remember(&self, url: &str, key: Vec<u8>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= DEFAULT_MAX_CACHED_CERTS && !cache.contains_key(url) {
                // Make room: the oldest goes.
                if let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, c)| c.at)
                    .map(|(u, _)| u.clone())
                {
                    cache.remove(&oldest);
                }
            }
            cache.insert(
                url.to_string(),
                Cached {
                    key,
                    at: Instant::now(),
                },
            );
        }
    }

    /// Checks the envelope's signature: its version, where its certificate comes from, and
    /// the RSA signature over [`string_to_sign`].
    pub async fn verify(&self, e: &Envelope) -> Result<(), SignatureError> {
        let version = e.signature_version.as_deref().unwrap_or("");
        let alg: &'static dyn VerificationAlgorithm = match version {
            "1" => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "2" => &RSA_PKCS1_2048_8192_SHA256,
            other => return Err(SignatureError::Version(other.to_string())),
        };
        let url = e
            .signing_cert_url
            .as_deref()
            .ok_or(SignatureError::Missing("SigningCertURL"))?;
        if !is_sns_host_url(url) {
            return Err(SignatureError::CertUrl(url.to_string()));
        }
        let signature = decode_base64(
            e.signature
                .as_deref()
                .ok_or(SignatureError::Missing("Signature"))?,
        )
        .ok_or(SignatureError::Encoding)?;
        let message = string_to_sign(e)?;
        let key = match self.cached(url) {
            Some(k) => k,
            None => {
                let pem = self
                    .fetcher
                    .fetch(url)
                    .await
                    .map_err(SignatureError::Fetch)?;
                let key = rsa_key_of_certificate(&pem)?;
                self.remember(url, key.clone());
                key
            }
        };
        UnparsedPublicKey::new(alg, &key)
            .verify(message.as_bytes(), &signature)
            .map_err(|_| SignatureError::Mismatch)
    }
}
