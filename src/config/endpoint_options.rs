//! The options of an endpoint in routes.yaml that only some kinds take: `signing:` of a
//! webhook endpoint and `smtp:` of an email endpoint, as serde types; re-exported by
//! [`super::types`]. Their doc comments are the user documentation of each key.

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

/// `smtp:` of a `kind: email` endpoint: one message (plain text and HTML) per event to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The relay's host name (checked against its certificate).
    pub host: String,
    /// Default by `security`: 587 (`starttls`), 465 (`tls`), 25 (`none`).
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default: plain connection upgraded with STARTTLS, refused if the relay
    /// does not offer it), `tls` (TLS from the first byte), or `none` (no encryption: only for
    /// a relay on the same host or network).
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Login, when the relay needs one (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<super::types::Secret>,
    /// The sender, e.g. `switchyard <alerts@example.com>`.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// A PEM file of a certificate authority to trust besides the public ones (a relay with a
    /// certificate of your own); relative to this file.
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// `smtp.security`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}
