//! The routes.yaml schema (version 1), as serde types.
//!
//! The doc comments here are the user documentation of each key. Every struct denies unknown
//! keys, so a typo is an error with its line and column rather than a silently ignored option.
//! These types hold what the user wrote (strings, durations as text); `build()` steps elsewhere
//! turn them into runtime objects, so runtime code never sees raw strings.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// A secret read from routes.yaml (usually through `${ENV}`). Its `Debug` and `Display`
/// print `***`, so it never reaches a log line or an error message.
#[derive(Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret's value. Call this only where the value is used (signing, comparing).
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The whole routes.yaml file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The format version; only `1` exists.
    pub version: u32,
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where incidents, delivery dedup keys and (with redis) the delivery queue live.
    #[serde(default)]
    pub store: StoreConfig,
    /// Adapter plugins loaded at start-up.
    #[serde(default)]
    pub plugins: Option<PluginsConfig>,
    /// The monitoring tools that POST alerts; each gets `POST /ingest/{name}`.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Where events are delivered.
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    /// The routing tree, tried in order with Alertmanager semantics.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Endpoints for events that no route matches; omitted or empty: such events are dropped
    /// (and counted in `switchyard_events_unrouted_total`).
    #[serde(default)]
    pub default: Vec<String>,
}

/// `server:` the HTTP listener and its limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest accepted request body in bytes; larger bodies get 413. Default 1 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Bearer token for the admin API (`/api/v1/...`); empty or absent turns it off.
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// Ingest requests processed at once; more get 503 with `Retry-After`. Default 512.
    #[serde(default)]
    pub max_inflight_requests: Option<usize>,
    /// Unfinished deliveries (all endpoints together) above which ingest answers 503 with
    /// `Retry-After` instead of queueing more. Default 1000000.
    #[serde(default)]
    pub max_pending_deliveries: Option<usize>,
    /// How long an ingest request's body may take to arrive, from the end of its headers;
    /// slower bodies get 408 and hold nothing meanwhile. Default `10s`.
    #[serde(default)]
    pub body_timeout: Option<String>,
    /// On SIGTERM or SIGINT: how long requests under way and deliveries held by this process
    /// get to finish before it exits. With the memory store what is left then is lost (the
    /// log says how many); with the redis store it stays in Redis. Default `30s`.
    #[serde(default)]
    pub shutdown_grace: Option<String>,
    /// Serve HTTPS instead of HTTP (both listeners): PEM files, relative to this file; read
    /// again on every reload (SIGHUP), so a renewed certificate needs no restart.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// A second listener for the admin API (`/api/v1/...`), e.g. `127.0.0.1:9090`: the admin
    /// API is then not served on `listen`, which monitoring tools post to.
    #[serde(default)]
    pub admin_listen: Option<String>,
    /// How often the log gets a summary line (requests accepted, alerts, deliveries
    /// delivered, failed and dead since the last one); `0s` turns it off. Default `1m`.
    #[serde(default)]
    pub log_summary_every: Option<String>,
    /// Where endpoints may point, for deployments where many hands write this file. The cloud
    /// metadata addresses (169.254.169.254, fd00:ec2::254) are refused always.
    #[serde(default)]
    pub endpoint_policy: EndpointPolicyConfig,
}

/// `server.endpoint_policy`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointPolicyConfig {
    /// Endpoint URLs must be `https://` (`switchyard check` refuses others). Default false.
    #[serde(default)]
    pub require_https: bool,
    /// Refuse loopback, private, link-local and unique-local addresses, checked on the address
    /// each attempt connects to (after DNS). Default false: self-hosted receivers often live
    /// on internal addresses.
    #[serde(default)]
    pub deny_private: bool,
}

/// `server.tls`: the certificate chain and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate, then any intermediates.
    pub cert_file: String,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_string()
}

fn default_max_body_bytes() -> usize {
    1024 * 1024
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            max_body_bytes: default_max_body_bytes(),
            admin_token: None,
            max_inflight_requests: None,
            max_pending_deliveries: None,
            body_timeout: None,
            shutdown_grace: None,
            tls: None,
            admin_listen: None,
            log_summary_every: None,
            endpoint_policy: EndpointPolicyConfig::default(),
        }
    }
}

/// `store:` the state backend.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory` (default: one process, nothing survives a restart) or `redis`.
    #[serde(default)]
    pub kind: StoreKind,
    /// Redis URL, for `kind: redis`.
    #[serde(default)]
    pub url: Option<String>,
    /// Prefix of every Redis key. Default `switchyard`.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

fn default_key_prefix() -> String {
    "switchyard".to_string()
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Memory,
            url: None,
            key_prefix: default_key_prefix(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Memory,
    Redis,
}

/// `plugins:` where adapter plugin libraries are loaded from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directory whose every library (`.so`, `.dylib`, `.dll`) is loaded at start-up;
    /// relative paths are relative to this file's directory.
    pub dir: String,
    /// Time limit of one plugin call; over it the request gets 504. Default `5s`.
    #[serde(default)]
    pub timeout: Option<String>,
}

/// One entry of `sources:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The source's name; its URL is `POST /ingest/{name}`. Letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Which adapter reads its payloads.
    pub kind: SourceKind,
    /// How requests prove they come from the tool. Omitted: no authentication.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Only senders with these addresses may post (CIDR blocks or addresses, e.g.
    /// `[192.30.252.0/22, 2001:db8::/32]`); others get 403 before their body is read.
    /// Omitted: any address.
    #[serde(default)]
    pub allow_from: Vec<String>,
    /// Reverse proxies in front of switchyard (CIDRs): when a request comes from one, the
    /// sender checked against `allow_from` is read from `X-Forwarded-For` (its right-most
    /// address that is not a trusted proxy). Not trusted: the header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Labels added to every alert of this source (a payload's own label wins).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Severity used when the payload names none (critical, error, warning, info).
    /// Default `warning`.
    #[serde(default)]
    pub severity: Option<String>,
    /// For `kind: generic`: a mapping shipped with switchyard for one tool (`datadog`,
    /// `azure-monitor`, ...; the list is in docs/INTEGRATIONS.md). Each key of `mapping:` set
    /// here wins over the preset's.
    #[serde(default)]
    pub preset: Option<String>,
    /// For `kind: generic`: where each field is in an alert object (JSON pointers, RFC 6901)
    /// and what the tool's words mean; they win over the field names switchyard looks for by
    /// itself.
    #[serde(default)]
    pub mapping: MappingConfig,
    /// For `kind: sentry`: `{base_url: https://sentry.example.com}` for a self-hosted Sentry,
    /// where issue links point when a payload carries no web URL. Default `https://sentry.io`.
    #[serde(default)]
    pub sentry: Option<SentryConfig>,
    /// For `kind: sns`: how SNS messages are checked and what CloudWatch states mean.
    #[serde(default)]
    pub sns: Option<SnsConfig>,
    /// For `kind: plugin`: the name the plugin reports.
    #[serde(default)]
    pub plugin: Option<String>,
    /// For `kind: plugin`: settings given to the plugin with each request (any mapping; the
    /// plugin's documentation says which keys it reads).
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

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
    /// The tool's status words and what they mean: `firing`, `resolved`, `acknowledged`, or
    /// `ignore` (the item makes no alert), e.g. `{ALARM: firing, OK: resolved}`. Words are
    /// compared without case; words not listed are read as switchyard reads them by itself.
    /// The word `""` stands for "no status in the item" (default: firing).
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Alertmanager,
    Grafana,
    Sentry,
    Generic,
    /// Amazon SNS (CloudWatch alarms).
    Sns,
    Plugin,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Alertmanager => "alertmanager",
            SourceKind::Grafana => "grafana",
            SourceKind::Sentry => "sentry",
            SourceKind::Generic => "generic",
            SourceKind::Sns => "sns",
            SourceKind::Plugin => "plugin",
        }
    }
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

/// One entry of `endpoints:`. Its `Debug` shows only the URL's host and the header names
/// (a chat webhook URL or an `Authorization` header is a credential).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The endpoint's name, as routes name it in `to:` and `default:`.
    pub name: String,
    /// The service it speaks to.
    pub kind: EndpointKind,
    /// Where events are POSTed.
    #[serde(default)]
    pub url: Option<String>,
    /// Event types this endpoint receives: names, `*`, or prefixes such as `incident.*`.
    /// Default: every type.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// `false` keeps the endpoint in the file (routes may still name it) but sends it
    /// nothing. Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// At most this many requests, as `N/s`, `N/m` or `N/h`.
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// Signing secret (`webhook`): `whsec_<base64>` or any string.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Time limit of one request. Default `10s`.
    #[serde(default)]
    pub timeout: Option<String>,
    /// When failed deliveries are tried again.
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// A minijinja template that replaces the body.
    #[serde(default)]
    pub template: Option<String>,
    /// PagerDuty: the integration's routing key.
    #[serde(default)]
    pub routing_key: Option<Secret>,
    /// Opsgenie: the API key (`GenieKey`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Opsgenie: `us` (default) or `eu`.
    #[serde(default)]
    pub region: Option<String>,
    /// Jira / ServiceNow: user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Jira: API token; ServiceNow: password.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Jira: project key.
    #[serde(default)]
    pub project: Option<String>,
    /// Jira: issue type. Default `Bug`.
    #[serde(default)]
    pub issue_type: Option<String>,
    /// Jira: the transition applied on resolve. Default `Done`.
    #[serde(default)]
    pub resolve_transition: Option<String>,
    /// ServiceNow: incident state on resolve. Default `6` (Resolved).
    #[serde(default)]
    pub resolve_state: Option<String>,
    /// ServiceNow: close code on resolve.
    #[serde(default)]
    pub close_code: Option<String>,
    /// Pause the endpoint after repeated failures. Default `{failures: 5, open_for: 30s}`.
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreakerConfig>,
}

impl fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.url.as_deref().map(|u| match u.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                format!("{scheme}://{}/…", host.rsplit('@').next().unwrap_or(host))
            }
            None => "…".to_string(),
        });
        f.debug_struct("EndpointConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &url)
            .field("events", &self.events)
            .field("rate_limit", &self.rate_limit)
            .field("secret", &self.secret)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("template", &self.template.is_some())
            .field("routing_key", &self.routing_key)
            .field("api_key", &self.api_key)
            .field("region", &self.region)
            .field("username", &self.username)
            .field("token", &self.token)
            .field("project", &self.project)
            .field("circuit_breaker", &self.circuit_breaker)
            .finish_non_exhaustive()
    }
}

/// `circuit_breaker:` of an endpoint: after `failures` failed attempts in a row no attempt is
/// made for `open_for`; then one probe is sent: success resumes delivery (in order), failure
/// waits twice as long (at most 10m). Deliveries keep queueing meanwhile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Consecutive failed attempts that open the circuit. Default 5.
    #[serde(default)]
    pub failures: Option<u32>,
    /// How long it stays open before a probe. Default `30s`.
    #[serde(default)]
    pub open_for: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    Slack,
    Teams,
    Discord,
    Pagerduty,
    Opsgenie,
    Jira,
    Servicenow,
    Webhook,
}

impl EndpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Slack => "slack",
            EndpointKind::Teams => "teams",
            EndpointKind::Discord => "discord",
            EndpointKind::Pagerduty => "pagerduty",
            EndpointKind::Opsgenie => "opsgenie",
            EndpointKind::Jira => "jira",
            EndpointKind::Servicenow => "servicenow",
            EndpointKind::Webhook => "webhook",
        }
    }
}

/// `retry:` of an endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Waits before each retry; attempts = 1 + its length. Default `[1m, 5m, 15m, 1h, 1h]`.
    /// Units: `ms`, `s`, `m`, `h`, `d`.
    pub schedule: Vec<String>,
}

/// One node of the routing tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A name for logs and `route-test`.
    #[serde(default)]
    pub name: Option<String>,
    /// Alertmanager matchers (`label="v"`, `!=`, `=~`, `!~`), all of which must hold.
    /// Besides labels they address the fields `severity`, `status`, `source`, `kind`,
    /// `title` and `event`.
    #[serde(default)]
    pub matchers: Vec<String>,
    /// Endpoints for the events this route takes. Children without `to` inherit it.
    #[serde(default)]
    pub to: Option<Vec<String>>,
    /// Keep trying the next sibling after this route matched. Default `false`.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    /// Children, tried only when this route matches.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}
