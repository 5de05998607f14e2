//! The options of an endpoint in routes.yaml that only some kinds take: `signing:` of a
//! webhook endpoint, as serde types; re-exported by [`super::types`]. Their doc comments are
//! the user documentation of each key.

use serde::Deserialize;

/// `signing:` of a `kind: webhook` endpoint: how each request is signed (with `secret`, and
/// `previous_secret` during a rotation) and which headers carry the event's type and id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// `standard_webhooks` (default): `webhook-id`, `webhook-timestamp` and `webhook-signature:
    /// v1,<base64>` over `id.timestamp.body` (a `whsec_` secret is base64-decoded), plus
    /// `X-Webhook-Signature: sha256=<hex of the body>`; with `previous_secret`,
    /// `webhook-signature` carries both signatures. `hmac`: one HMAC-SHA256 signature in
    /// `header`, made with `secret` (its UTF-8 bytes), as the keys below say.
    #[serde(default)]
    pub scheme: SigningScheme,
    /// `hmac`: the signature header. Default `X-Webhook-Signature`.
    #[serde(default)]
    pub header: Option<String>,
    /// `hmac`: text before the signature, e.g. `sha256=`. Default none.
    #[serde(default)]
    pub prefix: Option<String>,
    /// `hmac`: `hex` (default) or `base64`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// `hmac`: what is signed: `{body}` (default without `timestamp_header`),
    /// `{timestamp}:{body}` (default with one), `{timestamp}.{body}`, or any text around
    /// `{timestamp}` before `{body}`.
    #[serde(default)]
    pub message: Option<String>,
    /// `hmac`: the header carrying the attempt's unix time in seconds (the `{timestamp}`
    /// signed). Default none.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// The header carrying the event type (`incident.created`, ...). Default
    /// `X-Webhook-Event`; `""` leaves it out.
    #[serde(default)]
    pub event_header: Option<String>,
    /// `hmac`: the header carrying the event id (the same on every retry). Default
    /// `X-Webhook-Id`; `""` leaves it out. (`standard_webhooks` sends it as `webhook-id`.)
    #[serde(default)]
    pub id_header: Option<String>,
}

/// `signing.scheme`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigningScheme {
    #[default]
    StandardWebhooks,
    Hmac,
}
