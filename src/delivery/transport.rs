//! The HTTP transport of deliveries: awc as a [`Transport`] (the kinds build the requests; a
//! script stands in for it in tests), and the reading of `Retry-After`.

use std::time::Duration;

use actix_web::http::header::{self, HeaderMap};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures_util::StreamExt;

use super::kinds::{OutboundRequest, Response, Transport};
use super::policy::AddressPolicy;

/// How much of a response body is read (to find a created Jira issue key or ServiceNow
/// `sys_id`); the rest is not read.
pub const DEFAULT_RESPONSE_READ_BYTES: usize = 64 * 1024;

/// awc as a [`Transport`]: the endpoint's time limit covers the request and reading up to
/// `DEFAULT_RESPONSE_READ_BYTES` of the answer.
pub struct AwcTransport {
    pub client: awc::Client,
    pub timeout: Duration,
    /// Checks a URL written with an address (names are checked by the client's resolver).
    pub policy: AddressPolicy,
}

#[async_trait(?Send)]
impl Transport for AwcTransport {
    async fn send(&self, req: OutboundRequest) -> Result<Response, String> {
        self.policy.check_url(&req.url)?;
        let started = std::time::Instant::now();
        let mut r = self.client.request(req.method, &req.url);
        let mut has_type = false;
        for (k, v) in req.headers {
            has_type |= k == header::CONTENT_TYPE;
            r = r.insert_header((k, v));
        }
        let sent = match req.body {
            Some(body) => {
                if !has_type {
                    r = r.insert_header((header::CONTENT_TYPE, "application/json"));
                }
                r.send_body(body).await
            }
            None => r.send().await,
        };
        let mut resp = sent.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let remaining = self.timeout.saturating_sub(started.elapsed());
        let mut captured = Vec::new();
        let _ = tokio::time::timeout(remaining, async {
            while let Some(chunk) = resp.next().await {
                let Ok(chunk) = chunk else { break };
                let room = DEFAULT_RESPONSE_READ_BYTES - captured.len();
                captured.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if captured.len() >= DEFAULT_RESPONSE_READ_BYTES {
                    break;
                }
            }
        })
        .await;
        Ok(Response {
            status,
            retry_after,
            body: Bytes::from(captured),
        })
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (when.to_utc() - Utc::now()).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = (Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        h.insert(header::RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
