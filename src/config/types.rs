//! The routes.yaml schema (version 1), as serde types.
//!
//! The doc comments here are the user documentation of each key. Every struct denies unknown
//! keys, so a typo is an error with its line and column rather than a silently ignored option.
//! These types hold what the user wrote (strings, durations as text); `build()` steps elsewhere
//! turn them into runtime objects, so runtime code never sees raw strings.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

pub use super::endpoint_options::{SigningConfig, SigningScheme, SmtpConfig, SmtpSecurity};
pub use super::source_options::{
    AuthConfig, AuthOptions, HmacConfig, MappingConfig, SentryConfig, SnsConfig,
};
pub use super::storms::{
    InhibitRuleConfig, SilenceConfig, TimeIntervalConfig, TimeIntervalSpec, TimeRangeConfig,
};

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
    /// Alertmanager's inhibition rules: while a source incident is open, matching targets
    /// stay quiet.
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    /// Named time intervals, for routes' `mute_time_intervals` and `active_time_intervals`.
    #[serde(default)]
    pub time_intervals: Vec<TimeIntervalConfig>,
    /// Silences kept in the file (more are created through the silences API).
    #[serde(default)]
    pub silences: Vec<SilenceConfig>,
    /// Endpoints told when a delivery goes dead (`delivery.dead`) or an endpoint is disabled
    /// (`endpoint.disabled`: a 410 Gone, or `disable_after`): the dead delivery's endpoint,
    /// event, attempts and last answer. Webhook and chat kinds only. A notice that dies is not
    /// noticed in turn.
    #[serde(default)]
    pub on_dead: Vec<String>,
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
    /// `file` (default: durable in local files, one process), `memory` (nothing survives a
    /// restart: tests and throwaway runs) or `redis` (durable, shared by instances).
    #[serde(default)]
    pub kind: StoreKind,
    /// The data directory, for `kind: file` (made if missing; relative paths are relative to
    /// this file's directory). Default `switchyard-data`.
    #[serde(default)]
    pub path: Option<String>,
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
            kind: StoreKind::File,
            path: None,
            url: None,
            key_prefix: default_key_prefix(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    File,
    Memory,
    Redis,
}

/// The file store's data directory when `store.path` names none.
pub const DEFAULT_FILE_STORE_PATH: &str = "switchyard-data";

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
    /// A header whose value is the same each time the tool sends a request again (GitHub's
    /// `X-GitHub-Delivery`, Bitbucket's `X-Request-UUID`): a request whose id was recorded in
    /// the last hour is answered 202 and not recorded again. Built in for sentry
    /// (`Request-ID`), sns (`x-amz-sns-message-id`) and Standard Webhooks (`webhook-id`).
    #[serde(default)]
    pub delivery_id_header: Option<String>,
    /// Labels added to every alert of this source (a payload's own label wins).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Severity used when the payload names none (critical, error, warning, info).
    /// Default `warning`.
    #[serde(default)]
    pub severity: Option<String>,
    /// Resolve an incident that no alert has renewed for this long (e.g. `24h`), for tools
    /// that never send a resolve (Sentry `event_alert`s, log alerts, one-shot webhooks).
    /// Each firing alert starts the wait again. A generic source's `mapping.resolve_after`
    /// may set it per alert; Prometheus' `endsAt` on the Alertmanager API path wins over both.
    /// At most `365d`. Default: incidents stay open until the tool resolves them.
    #[serde(default)]
    pub resolve_after: Option<String>,
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
    /// The secret being replaced, during a rotation (`webhook`): Standard Webhooks signs
    /// with both (`webhook-signature` carries two signatures), so a receiver verifies with
    /// either; `hmac` signs with `secret`, the newest.
    #[serde(default)]
    pub previous_secret: Option<Secret>,
    /// How requests are signed and which headers carry the event (`webhook`). Default: the
    /// Standard Webhooks headers.
    #[serde(default)]
    pub signing: Option<SigningConfig>,
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
    /// Jira: API token; ServiceNow: password; Slack: a bot token (`xoxb-...`, with
    /// `channel`: messages are posted with `chat.postMessage`, threaded per incident, instead
    /// of through an incoming webhook); Telegram: the bot token.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Slack (with a bot `token`): the channel id (`C0123...`) or name; Telegram: the chat id
    /// (`-100...`) or `@channelname`.
    #[serde(default)]
    pub channel: Option<String>,
    /// Email: the SMTP relay, sender and recipients.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
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
    /// Disable the endpoint once it has failed this long without a single success (e.g.
    /// `5d`), as a 410 Gone does (its queued deliveries die; a replay or recovery enables it
    /// again), with an `endpoint.disabled` notice to `on_dead:`. The first failure's time is
    /// kept in the store (Redis with the redis store), so restarts keep counting. Default:
    /// never.
    #[serde(default)]
    pub disable_after: Option<String>,
    /// Send a `ping` when the config that adds this endpoint is loaded (start-up, or a reload
    /// that adds it); the answer is logged and shown by `GET /api/v1/deliveries`
    /// (`endpoints[].last_ping`). Default `false`.
    #[serde(default)]
    pub ping_on_load: bool,
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
            .field("previous_secret", &self.previous_secret)
            .field("signing", &self.signing)
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
    #[serde(rename = "google_chat")]
    GoogleChat,
    Telegram,
    Mattermost,
    Email,
}

impl EndpointKind {
    /// Whether `delivery.dead` notices can be sent to it: webhooks and chats (paging and
    /// ticketing kinds would open an incident or a ticket for each).
    pub fn takes_notices(self) -> bool {
        matches!(
            self,
            EndpointKind::Webhook
                | EndpointKind::Slack
                | EndpointKind::Teams
                | EndpointKind::Discord
                | EndpointKind::GoogleChat
                | EndpointKind::Telegram
                | EndpointKind::Mattermost
                | EndpointKind::Email
        )
    }

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
            EndpointKind::GoogleChat => "google_chat",
            EndpointKind::Telegram => "telegram",
            EndpointKind::Mattermost => "mattermost",
            EndpointKind::Email => "email",
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
    /// Notify incidents in groups (Alertmanager's `group_by`): incidents with equal values of
    /// these labels (or the fields `severity`, `status`, `source`, `kind`, `title`) are sent
    /// together as one `group.notification` per endpoint. `['...']` groups by every label.
    /// Inherited by child routes; `[]` on a child turns grouping off again. Absent: every
    /// incident event goes out on its own.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    /// How long a new group waits to collect incidents before its first notification.
    /// Inherited. Default `30s`.
    #[serde(default)]
    pub group_wait: Option<String>,
    /// Later changes to a group (new, changed or resolved incidents) go out at most this
    /// often. Inherited. Default `5m`.
    #[serde(default)]
    pub group_interval: Option<String>,
    /// A group with firing incidents is notified again this long after its last
    /// notification. Inherited. Default `4h`. On a route without `group_by`: an open,
    /// unacknowledged incident is reminded (`incident.reminder`) this long after its last
    /// notification, only when set (on the route or a parent).
    #[serde(default)]
    pub repeat_interval: Option<String>,
    /// Names of `time_intervals` during which this route's notifications are held (sent at
    /// the interval's end: each incident's latest state once). Inherited.
    #[serde(default)]
    pub mute_time_intervals: Option<Vec<String>>,
    /// Names of `time_intervals` outside of which this route's notifications are held.
    /// Inherited; empty: always active.
    #[serde(default)]
    pub active_time_intervals: Option<Vec<String>>,
}
