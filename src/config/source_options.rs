//! The options of a source in routes.yaml that are not the same for every kind: `auth:`,
//! `mapping:` of a generic source, `sentry:` and `sns:`, as serde types; re-exported by
//! [`super::types`]. Their doc comments are the user documentation of each key.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::types::Secret;

/// `mapping:` of a generic source. Every key is optional; a pointer that finds nothing in a
/// payload falls back to the field names switchyard looks for by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// JSON pointer to the title, e.g. `/alert/name`.
    #[serde(default)]
    pub title: Option<String>,
    /// JSON pointer to the description.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON pointer to the severity word (see `severity_values`).
    #[serde(default)]
    pub severity: Option<String>,
    /// JSON pointer to the status word (see `status_values`).
    #[serde(default)]
    pub status: Option<String>,
    /// JSON pointer to the dedup key: alerts with the same key are one incident.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// JSON pointer to the sending system; becomes the label `source`.
    #[serde(default)]
    pub source: Option<String>,
    /// JSON pointer to the labels: an object (its scalar values), an array of `key:value`
    /// strings, or one string of them separated by commas (`env:prod,team:db`).
    #[serde(default)]
    pub labels: Option<String>,
    /// Labels taken one by one: label name -> JSON pointer to its value, e.g.
    /// `{region: /data/region}`; they win over the labels of `labels`.
    #[serde(default)]
    pub label_fields: BTreeMap<String, String>,
    /// JSON pointer to the annotations (read like `labels`).
    #[serde(default)]
    pub annotations: Option<String>,
    /// JSON pointer to a URL, added as a link.
    #[serde(default)]
    pub url: Option<String>,
    /// The text of the link `url` makes. Default `Link`.
    #[serde(default)]
    pub url_label: Option<String>,
    /// JSON pointer to when the problem started.
    #[serde(default)]
    pub started_at: Option<String>,
    /// How `started_at` is written: `rfc3339` (default), `epoch_seconds` or `epoch_millis`
    /// (a number, or a string of digits).
    #[serde(default)]
    pub started_at_format: Option<String>,
    /// JSON pointer to how long the alert's incident stays open without a renewal: a
    /// duration (`24h`, `90m`) or a number of seconds; wins over the source's
    /// `resolve_after`. An item without it uses the source's.
    #[serde(default)]
    pub resolve_after: Option<String>,
    /// The tool's status words and what they mean: `firing`, `resolved`, `acknowledged`, or
    /// `ignore` (the item makes no alert), e.g. `{ALARM: firing, OK: resolved}`. Words are
    /// compared without case; words not listed are read as switchyard reads them by itself.
    /// The word `""` stands for "no status in the item" (default: firing), and `*` for any
    /// word not listed (e.g. `{recovered: resolved, "*": firing}`).
    #[serde(default)]
    pub status_values: BTreeMap<String, String>,
    /// The tool's severity words and what they mean (`critical`, `error`, `warning`,
    /// `info`), e.g. `{P1: critical, P3: warning}`; compared without case.
    #[serde(default)]
    pub severity_values: BTreeMap<String, String>,
}

impl MappingConfig {
    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        *self == MappingConfig::default()
    }

    /// This mapping with every key it does not set taken from `base` (a preset's); value
    /// maps are merged word by word, this one's words winning.
    pub fn over(&self, base: &MappingConfig) -> MappingConfig {
        fn pick(mine: &Option<String>, theirs: &Option<String>) -> Option<String> {
            mine.clone().or_else(|| theirs.clone())
        }
        fn merge(
            mine: &BTreeMap<String, String>,
            theirs: &BTreeMap<String, String>,
        ) -> BTreeMap<String, String> {
            let mut out = theirs.clone();
            out.extend(mine.iter().map(|(k, v)| (k.clone(), v.clone())));
            out
        }
        MappingConfig {
            title: pick(&self.title, &base.title),
            description: pick(&self.description, &base.description),
            severity: pick(&self.severity, &base.severity),
            status: pick(&self.status, &base.status),
            dedup_key: pick(&self.dedup_key, &base.dedup_key),
            source: pick(&self.source, &base.source),
            labels: pick(&self.labels, &base.labels),
            label_fields: merge(&self.label_fields, &base.label_fields),
            annotations: pick(&self.annotations, &base.annotations),
            url: pick(&self.url, &base.url),
            url_label: pick(&self.url_label, &base.url_label),
            started_at: pick(&self.started_at, &base.started_at),
            started_at_format: pick(&self.started_at_format, &base.started_at_format),
            resolve_after: pick(&self.resolve_after, &base.resolve_after),
            status_values: merge(&self.status_values, &base.status_values),
            severity_values: merge(&self.severity_values, &base.severity_values),
        }
    }

    /// A mapping of pointers only, from `(field, pointer)` pairs (tests and fuzzing).
    pub fn pointers(pairs: &[(&str, &str)]) -> Result<MappingConfig, String> {
        let obj: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(obj)).map_err(|e| e.to_string())
    }
}

/// `sentry:` of a `kind: sentry` source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentryConfig {
    /// The Sentry's address, e.g. `https://sentry.example.com`. Default `https://sentry.io`.
    #[serde(default)]
    pub base_url: Option<String>,
}

/// `sns:` of a `kind: sns` source (AWS CloudWatch alarms through an SNS topic).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsConfig {
    /// Check each message's RSA signature with SNS' certificate (fetched only from
    /// `https://sns.<region>.amazonaws.com` and cached). Default `true`.
    #[serde(default)]
    pub verify_signatures: Option<bool>,
    /// Confirm a new subscription by fetching its `SubscribeURL` (only an
    /// `https://sns.<region>.amazonaws.com` URL). `false`: the URL is logged for you to
    /// open. Default `true`.
    #[serde(default)]
    pub confirm_subscriptions: Option<bool>,
    /// What an alarm's `INSUFFICIENT_DATA` state means: `ignore` (default), `firing` or
    /// `resolved`.
    #[serde(default)]
    pub insufficient_data: Option<String>,
    /// Only messages from these topics (ARNs) are accepted. Default: any topic.
    #[serde(default)]
    pub topic_arns: Vec<String>,
}

/// `auth:` of a source: exactly one of the options.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "AuthOptions")]
pub enum AuthConfig {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic ...` with these credentials.
    Basic { username: String, password: Secret },
    /// An HMAC-SHA256 signature of the body in a header.
    Hmac(HmacConfig),
    /// Standard Webhooks signing (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    StandardWebhooks { secret: Secret },
    /// A shared token in a header the tool names (`X-Honeycomb-Webhook-Token`, ...).
    Header { name: String, value: Secret },
}

/// `auth:` as written: a mapping with exactly one of these keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthOptions {
    /// `bearer: TOKEN`: the request carries `Authorization: Bearer TOKEN`.
    #[serde(default)]
    bearer: Option<Secret>,
    /// `basic: {username, password}`: the request carries `Authorization: Basic ...`.
    #[serde(default)]
    basic: Option<BasicAuth>,
    /// `hmac: {...}`: an HMAC-SHA256 signature of the body (see below).
    #[serde(default)]
    hmac: Option<HmacConfig>,
    /// `standard_webhooks: {secret}`: Standard Webhooks signing.
    #[serde(default)]
    standard_webhooks: Option<StandardWebhooksAuth>,
    /// `header: {name, value}`: the request carries the header `name` with `value` (a shared
    /// token, e.g. Honeycomb's `X-Honeycomb-Webhook-Token`).
    #[serde(default)]
    header: Option<HeaderAuth>,
}

/// `auth: { header: {...} }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderAuth {
    /// The header's name.
    name: String,
    /// The token it must carry.
    value: Secret,
}

/// `auth: { basic: {...} }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicAuth {
    username: String,
    password: Secret,
}

/// `auth: { standard_webhooks: {...} }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StandardWebhooksAuth {
    /// `whsec_<base64>` or any string.
    secret: Secret,
}

impl TryFrom<AuthOptions> for AuthConfig {
    type Error = String;
    fn try_from(o: AuthOptions) -> Result<Self, String> {
        let mut found = Vec::new();
        if let Some(t) = o.bearer {
            found.push(AuthConfig::Bearer(t));
        }
        if let Some(b) = o.basic {
            found.push(AuthConfig::Basic {
                username: b.username,
                password: b.password,
            });
        }
        if let Some(h) = o.hmac {
            found.push(AuthConfig::Hmac(h));
        }
        if let Some(s) = o.standard_webhooks {
            found.push(AuthConfig::StandardWebhooks { secret: s.secret });
        }
        if let Some(h) = o.header {
            found.push(AuthConfig::Header {
                name: h.name,
                value: h.value,
            });
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(
                "auth needs one of `bearer`, `basic`, `hmac`, `standard_webhooks`, `header`".into(),
            ),
            _ => Err(
                "auth takes exactly one of `bearer`, `basic`, `hmac`, `standard_webhooks`, `header`"
                    .into(),
            ),
        }
    }
}

/// `auth: { hmac: {...} }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacConfig {
    /// The shared secret (its UTF-8 bytes are the key).
    pub secret: Secret,
    /// A second secret that is accepted too, while the tool moves from one to the other
    /// (rotation): a signature made with either verifies.
    #[serde(default)]
    pub previous_secret: Option<Secret>,
    /// Header holding the signature. Default by kind: sentry `Sentry-Hook-Signature`,
    /// grafana `X-Grafana-Alerting-Signature` (or `X-Grafana-Alert-Signature`), others
    /// `X-Signature` or `X-Webhook-Signature`.
    #[serde(default)]
    pub header: Option<String>,
    /// `hex` (default) or `base64`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// Text before the signature in the header, e.g. `sha256=`. Default: `sha256=` for
    /// generic and alertmanager sources, none for sentry and grafana.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Header holding the unix timestamp (seconds, or milliseconds); when set, the signed
    /// message is `<ts>:<body>` unless `message` says otherwise.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// What is signed: `{body}` (default without `timestamp_header`), `{timestamp}:{body}`
    /// (default with one), `{timestamp}.{body}`, or any text around `{timestamp}` before
    /// `{body}` (Slack: `v0:{timestamp}:{body}`).
    #[serde(default)]
    pub message: Option<String>,
    /// How far the timestamp may be from now. Default `5m`.
    #[serde(default)]
    pub tolerance: Option<String>,
}
