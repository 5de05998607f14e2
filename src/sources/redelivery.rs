//! Requests sent again: tools that retry a webhook send the same per-request id again
//! (Sentry's `Request-ID`, SNS' `x-amz-sns-message-id`), and a captured Standard Webhooks request can be replayed with its
//! `webhook-id` within the timestamp tolerance. A request whose id was recorded within its
//! window is answered 202 with nothing recorded; one whose id is being recorded right now
//! gets 503 (try again). The ids themselves live in the store ([`crate::store::request_ids`]).

use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName};

use super::auth::DEFAULT_TOLERANCE;

/// How long a Sentry `Request-ID` is remembered once its request is recorded.
pub const DEFAULT_SENTRY_REQUEST_ID_WINDOW: Duration = Duration::from_secs(3600);

/// How long an SNS `x-amz-sns-message-id` is remembered once its message is recorded (SNS
/// retries an HTTP(S) delivery for at most an hour by its default delivery policy).
pub const DEFAULT_SNS_MESSAGE_ID_WINDOW: Duration = Duration::from_secs(3600);

/// How long a Standard Webhooks `webhook-id` is remembered: a signed timestamp is accepted
/// up to the tolerance before or after the server's clock, so a captured request can be
/// replayed for twice the tolerance.
pub const DEFAULT_WEBHOOK_ID_WINDOW: Duration =
    Duration::from_secs(2 * DEFAULT_TOLERANCE.as_secs());

/// Which header carries a source's request id, and how long a recorded one is remembered.
#[derive(Debug, Clone)]
pub struct Redelivery {
    /// Read in order; the first present one is the id.
    pub headers: Vec<HeaderName>,
    pub window: Duration,
}

impl Redelivery {
    /// Sentry's `Request-ID`.
    pub fn sentry(header: &'static str) -> Redelivery {
        Redelivery {
            headers: vec![HeaderName::from_static(header)],
            window: DEFAULT_SENTRY_REQUEST_ID_WINDOW,
        }
    }

    /// Amazon SNS' `x-amz-sns-message-id`, the same on each retry of a message.
    pub fn sns() -> Redelivery {
        Redelivery {
            headers: vec![HeaderName::from_static("x-amz-sns-message-id")],
            window: DEFAULT_SNS_MESSAGE_ID_WINDOW,
        }
    }

    /// A source's own `delivery_id_header`, remembered as long as Sentry's ids.
    pub fn header(name: HeaderName) -> Redelivery {
        Redelivery {
            headers: vec![name],
            window: DEFAULT_SENTRY_REQUEST_ID_WINDOW,
        }
    }

    /// Standard Webhooks' `webhook-id` (or Svix's `svix-id`).
    pub fn standard_webhooks() -> Redelivery {
        Redelivery {
            headers: vec![
                HeaderName::from_static("webhook-id"),
                HeaderName::from_static("svix-id"),
            ],
            window: DEFAULT_WEBHOOK_ID_WINDOW,
        }
    }

    /// The request's id: the first of the headers present, trimmed, if not empty.
    pub fn id(&self, headers: &HeaderMap) -> Option<String> {
        let value = self.headers.iter().find_map(|h| headers.get(h))?;
        let id = value.to_str().ok()?.trim();
        (!id.is_empty()).then(|| id.to_string())
    }
}
