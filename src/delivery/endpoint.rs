//! The runtime form of one `endpoints:` entry: URL, kind settings and credentials, signing key,
//! headers, body template, time limit, retry schedule, rate limit and circuit breaker, all
//! checked and converted once when the config is loaded.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use thiserror::Error;

use super::kinds::email::EmailSpec;
use super::kinds::jira::{JiraSpec, DEFAULT_ISSUE_TYPE, DEFAULT_RESOLVE_TRANSITION};
use super::kinds::servicenow::{ServicenowSpec, DEFAULT_CLOSE_CODE, DEFAULT_RESOLVE_STATE};
use super::kinds::slack_bot::SlackBotSpec;
use super::kinds::telegram::TelegramSpec;
use super::kinds::{opsgenie, pagerduty, slack_bot, teams, telegram};
use super::policy::AddressPolicy;
use super::signer::Signer;
use super::template::BodyTemplate;
use crate::config::duration::{parse_duration, parse_rate, Rate};
use crate::config::types::Secret;
use crate::config::types::{EndpointConfig, EndpointKind};
use crate::model::EventType;

/// Time limit of one delivery request when the endpoint sets no `timeout`.
pub const DEFAULT_ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits before each retry when the endpoint sets no `retry.schedule`: 1m, 5m, 15m, 1h, 1h
/// (six attempts over about 2h21m); after the last the delivery is dead.
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 5] = [
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(900),
    Duration::from_secs(3600),
    Duration::from_secs(3600),
];

/// Consecutive failed attempts after which an endpoint's circuit opens (no attempts are made
/// while it is open; the queue keeps filling).
pub const DEFAULT_CIRCUIT_FAILURES: u32 = 5;

/// How long an open circuit waits before one probe attempt; a failed probe opens it again
/// for twice as long, up to [`DEFAULT_CIRCUIT_MAX_OPEN`].
pub const DEFAULT_CIRCUIT_OPEN_FOR: Duration = Duration::from_secs(30);

/// The longest an open circuit waits before probing.
pub const DEFAULT_CIRCUIT_MAX_OPEN: Duration = Duration::from_secs(600);

/// Slack accepts one message per second per incoming webhook, and `chat.postMessage` about one
/// per second per channel: the rate of a slack endpoint (either form) that sets no
/// `rate_limit`.
pub const DEFAULT_SLACK_RATE: Rate = Rate {
    count: 1,
    per: Duration::from_secs(1),
};

/// What each kind needs besides the URL.
#[derive(Debug, Clone)]
pub enum KindSpec {
    Webhook,
    Slack,
    Teams,
    Discord,
    Pagerduty {
        routing_key: Secret,
    },
    Opsgenie {
        api_key: Secret,
    },
    Jira(JiraSpec),
    Servicenow(ServicenowSpec),
    /// Slack with a bot token: the Web API, threaded per incident.
    SlackBot(SlackBotSpec),
    GoogleChat,
    Telegram(TelegramSpec),
    Mattermost,
    Email(Arc<EmailSpec>),
}

/// The circuit breaker of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitSettings {
    pub failures: u32,
    pub open_for: Duration,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        CircuitSettings {
            failures: DEFAULT_CIRCUIT_FAILURES,
            open_for: DEFAULT_CIRCUIT_OPEN_FOR,
        }
    }
}

/// Why an endpoint could not be built.
#[derive(Debug, Error)]
pub enum EndpointBuildError {
    #[error(
        "endpoint `{name}`: kind `{kind}` is not available in this build yet (only `webhook` is)"
    )]
    UnsupportedKind { name: String, kind: &'static str },
    #[error("endpoint `{name}`: `url` is required")]
    MissingUrl { name: String },
    #[error("endpoint `{name}`: {field}: {reason}")]
    Invalid {
        name: String,
        field: &'static str,
        reason: String,
    },
}

/// One endpoint, ready to deliver to. Its `Debug` shows the URL's scheme and host only (a
/// Slack, Teams or Discord webhook URL is itself a credential).
#[derive(Clone)]
pub struct EndpointSpec {
    pub name: Arc<str>,
    pub kind: EndpointKind,
    pub kind_spec: KindSpec,
    pub url: String,
    pub template: Option<BodyTemplate>,
    pub rate_limit: Option<Rate>,
    pub circuit: CircuitSettings,
    /// The webhook's signing headers (`signing:`, `secret`, `previous_secret`).
    pub signer: Signer,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub schedule: Vec<Duration>,
    pub events: Option<Vec<EventType>>,
    /// `server.endpoint_policy`: the addresses attempts may connect to.
    pub policy: AddressPolicy,
    /// The top-level `on_dead:` endpoints: told when a delivery of this one goes dead.
    pub on_dead: Arc<[Arc<str>]>,
    /// Disabled after failing this long without a success.
    pub disable_after: Option<Duration>,
    /// Pinged when the config that adds it loads.
    pub ping_on_load: bool,
}

/// `scheme://host/…` of a URL, for logs and `Debug`.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}/…")
        }
        None => "…".to_string(),
    }
}

impl std::fmt::Debug for EndpointSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("kind_spec", &self.kind_spec)
            .field("url", &redact_url(&self.url))
            .field("template", &self.template.is_some())
            .field("rate_limit", &self.rate_limit)
            .field("circuit", &self.circuit)
            .field("signer", &self.signer)
            .field("headers", &self.headers.len())
            .field("timeout", &self.timeout)
            .field("schedule", &self.schedule)
            .field("events", &self.events)
            .finish()
    }
}

impl EndpointSpec {
    pub fn build(cfg: &EndpointConfig) -> Result<EndpointSpec, EndpointBuildError> {
        let name = cfg.name.clone();
        let invalid = |field: &'static str, reason: String| EndpointBuildError::Invalid {
            name: name.clone(),
            field,
            reason,
        };
        let required_secret = |field: &'static str, v: &Option<Secret>| {
            v.clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(field, format!("required for kind `{}`", cfg.kind.as_str())))
        };
        let required_text = |field: &'static str, v: &Option<String>| {
            v.clone()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| invalid(field, format!("required for kind `{}`", cfg.kind.as_str())))
        };
        let given_url = cfg.url.clone().filter(|u| !u.trim().is_empty());
        let url_required = || {
            given_url
                .clone()
                .ok_or_else(|| EndpointBuildError::MissingUrl { name: name.clone() })
        };
        let (kind_spec, url) = match cfg.kind {
            EndpointKind::Webhook => (KindSpec::Webhook, url_required()?),
            EndpointKind::Slack if cfg.token.is_some() => (
                KindSpec::SlackBot(SlackBotSpec {
                    token: required_secret("token", &cfg.token)?,
                    channel: required_text("channel", &cfg.channel)?,
                }),
                given_url.unwrap_or_else(|| slack_bot::DEFAULT_URL.to_string()),
            ),
            EndpointKind::Slack => (KindSpec::Slack, url_required()?),
            EndpointKind::GoogleChat => (KindSpec::GoogleChat, url_required()?),
            EndpointKind::Mattermost => (KindSpec::Mattermost, url_required()?),
            EndpointKind::Telegram => (
                KindSpec::Telegram(TelegramSpec {
                    token: required_secret("token", &cfg.token)?,
                    chat_id: required_text("channel", &cfg.channel)?,
                }),
                given_url.unwrap_or_else(|| telegram::DEFAULT_URL.to_string()),
            ),
            EndpointKind::Email => {
                if given_url.is_some() {
                    return Err(invalid(
                        "url",
                        "kind `email` sends through `smtp:`, not to a `url`".to_string(),
                    ));
                }
                let smtp = cfg
                    .smtp
                    .as_ref()
                    .ok_or_else(|| invalid("smtp", "required for kind `email`".to_string()))?;
                let timeout = match &cfg.timeout {
                    Some(t) => parse_duration(t).map_err(|e| invalid("timeout", e.to_string()))?,
                    None => DEFAULT_ENDPOINT_TIMEOUT,
                };
                let spec = EmailSpec::build(smtp, timeout)
                    .map_err(|(field, reason)| invalid(field, reason))?;
                // Not an HTTP address: the relay, for logs and `Debug`.
                (
                    KindSpec::Email(Arc::new(spec)),
                    format!("smtp://{}/", smtp.host.trim()),
                )
            }
            EndpointKind::Discord => (KindSpec::Discord, url_required()?),
            EndpointKind::Teams => {
                let url = url_required()?;
                if let Some(why) = teams::retired_connector(&url) {
                    return Err(invalid("url", why.to_string()));
                }
                (KindSpec::Teams, url)
            }
            EndpointKind::Pagerduty => (
                KindSpec::Pagerduty {
                    routing_key: required_secret("routing_key", &cfg.routing_key)?,
                },
                given_url.unwrap_or_else(|| pagerduty::DEFAULT_URL.to_string()),
            ),
            EndpointKind::Opsgenie => {
                let default = match cfg.region.as_deref().unwrap_or("us") {
                    "us" => opsgenie::DEFAULT_US_URL,
                    "eu" => opsgenie::DEFAULT_EU_URL,
                    other => {
                        return Err(invalid(
                            "region",
                            format!("`{other}`: expected `us` or `eu`"),
                        ))
                    }
                };
                (
                    KindSpec::Opsgenie {
                        api_key: required_secret("api_key", &cfg.api_key)?,
                    },
                    given_url.unwrap_or_else(|| default.to_string()),
                )
            }
            EndpointKind::Jira => (
                KindSpec::Jira(JiraSpec {
                    username: required_text("username", &cfg.username)?,
                    token: required_secret("token", &cfg.token)?,
                    project: required_text("project", &cfg.project)?,
                    issue_type: cfg
                        .issue_type
                        .clone()
                        .unwrap_or_else(|| DEFAULT_ISSUE_TYPE.into()),
                    resolve_transition: cfg
                        .resolve_transition
                        .clone()
                        .unwrap_or_else(|| DEFAULT_RESOLVE_TRANSITION.into()),
                }),
                url_required()?,
            ),
            EndpointKind::Servicenow => (
                KindSpec::Servicenow(ServicenowSpec {
                    username: required_text("username", &cfg.username)?,
                    password: required_secret("token", &cfg.token)?,
                    resolve_state: cfg
                        .resolve_state
                        .clone()
                        .unwrap_or_else(|| DEFAULT_RESOLVE_STATE.into()),
                    close_code: cfg
                        .close_code
                        .clone()
                        .unwrap_or_else(|| DEFAULT_CLOSE_CODE.into()),
                }),
                url_required()?,
            ),
        };
        if !(url.starts_with("http://")
            || url.starts_with("https://")
            || cfg.kind == EndpointKind::Email)
        {
            return Err(invalid(
                "url",
                "must start with http:// or https://".to_string(),
            ));
        }
        let template = match &cfg.template {
            Some(t) => {
                Some(BodyTemplate::compile(t).map_err(|e| invalid("template", e.to_string()))?)
            }
            None => None,
        };
        let rate_limit = match &cfg.rate_limit {
            Some(r) => Some(parse_rate(r).map_err(|e| invalid("rate_limit", e.to_string()))?),
            None if cfg.kind == EndpointKind::Slack => Some(DEFAULT_SLACK_RATE),
            None => None,
        };
        let mut circuit = CircuitSettings::default();
        if let Some(c) = &cfg.circuit_breaker {
            if let Some(n) = c.failures {
                if n == 0 {
                    return Err(invalid(
                        "circuit_breaker",
                        "failures must be at least 1".to_string(),
                    ));
                }
                circuit.failures = n;
            }
            if let Some(d) = &c.open_for {
                circuit.open_for =
                    parse_duration(d).map_err(|e| invalid("circuit_breaker", e.to_string()))?;
            }
        }
        let timeout = match &cfg.timeout {
            Some(t) => parse_duration(t).map_err(|e| invalid("timeout", e.to_string()))?,
            None => DEFAULT_ENDPOINT_TIMEOUT,
        };
        let schedule = match &cfg.retry {
            Some(r) => r
                .schedule
                .iter()
                .map(|d| parse_duration(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid("retry.schedule", e.to_string()))?,
            None => DEFAULT_RETRY_SCHEDULE.to_vec(),
        };
        let events = match &cfg.events {
            Some(list) => Some(
                list.iter()
                    .map(|e| EventType::matching(e))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("events", e))?
                    .into_iter()
                    .flatten()
                    .collect(),
            ),
            None => None,
        };
        let mut headers = Vec::with_capacity(cfg.headers.len());
        for (k, v) in &cfg.headers {
            let hn = HeaderName::try_from(k.as_str())
                .map_err(|e| invalid("headers", format!("`{k}`: {e}")))?;
            let hv = HeaderValue::try_from(v.as_str())
                .map_err(|e| invalid("headers", format!("value of `{k}`: {e}")))?;
            headers.push((hn, hv));
        }
        if cfg.kind != EndpointKind::Webhook {
            if cfg.signing.is_some() {
                return Err(invalid("signing", "only for `kind: webhook`".to_string()));
            }
            if cfg.previous_secret.is_some() {
                return Err(invalid(
                    "previous_secret",
                    "only for `kind: webhook`".to_string(),
                ));
            }
        }
        let signer = Signer::build(
            cfg.secret.as_ref(),
            cfg.previous_secret.as_ref(),
            cfg.signing.as_ref(),
        )
        .map_err(|e| invalid(e.field, e.reason))?;
        Ok(EndpointSpec {
            name: name.as_str().into(),
            kind: cfg.kind,
            kind_spec,
            url,
            template,
            rate_limit,
            circuit,
            signer,
            headers,
            timeout,
            schedule,
            events,
            policy: AddressPolicy::default(),
            on_dead: Arc::from(Vec::new()),
            disable_after: match &cfg.disable_after {
                Some(d) => {
                    let d =
                        parse_duration(d).map_err(|e| invalid("disable_after", e.to_string()))?;
                    if d.is_zero() {
                        return Err(invalid(
                            "disable_after",
                            "must be longer than 0s".to_string(),
                        ));
                    }
                    Some(d)
                }
                None => None,
            },
            ping_on_load: cfg.ping_on_load,
        })
    }
}

#[cfg(test)]
impl EndpointSpec {
    /// A webhook endpoint at `url` with defaults, for unit tests of the kinds.
    pub(crate) fn for_tests(url: &str) -> EndpointSpec {
        EndpointSpec {
            name: "test".into(),
            kind: EndpointKind::Webhook,
            kind_spec: KindSpec::Webhook,
            url: url.to_string(),
            template: None,
            rate_limit: None,
            circuit: CircuitSettings::default(),
            signer: Signer::default(),
            headers: Vec::new(),
            timeout: DEFAULT_ENDPOINT_TIMEOUT,
            schedule: DEFAULT_RETRY_SCHEDULE.to_vec(),
            events: None,
            policy: AddressPolicy::default(),
            on_dead: Arc::from(Vec::new()),
            disable_after: None,
            ping_on_load: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> EndpointConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn retired_teams_connectors_are_refused_with_a_clear_message() {
        let e = EndpointSpec::build(&cfg(
            "{name: t, kind: teams, url: 'https://contoso.webhook.office.com/webhookb2/a/IncomingWebhook/b/c'}",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("Office 365 connector"), "{e}");
    }

    #[test]
    fn service_urls_have_defaults_and_overrides() {
        let pd = EndpointSpec::build(&cfg("{name: p, kind: pagerduty, routing_key: k}")).unwrap();
        assert_eq!(pd.url, "https://events.pagerduty.com/v2/enqueue");
        let og =
            EndpointSpec::build(&cfg("{name: o, kind: opsgenie, api_key: k, region: eu}")).unwrap();
        assert_eq!(og.url, "https://api.eu.opsgenie.com");
        let local = EndpointSpec::build(&cfg(
            "{name: o, kind: opsgenie, api_key: k, url: 'http://127.0.0.1:9'}",
        ))
        .unwrap();
        assert_eq!(local.url, "http://127.0.0.1:9");
        let e = EndpointSpec::build(&cfg("{name: p, kind: pagerduty}")).unwrap_err();
        assert!(e.to_string().contains("routing_key: required"), "{e}");
    }

    #[test]
    fn slack_defaults_to_one_per_second_and_templates_compile_at_build() {
        let s = EndpointSpec::build(&cfg(
            "{name: s, kind: slack, url: 'https://hooks.slack.com/services/T/B/X'}",
        ))
        .unwrap();
        assert_eq!(s.rate_limit, Some(DEFAULT_SLACK_RATE));
        let bot = EndpointSpec::build(&cfg("{name: b, kind: slack, token: xoxb-1, channel: C1}"))
            .unwrap();
        assert_eq!(bot.rate_limit, Some(DEFAULT_SLACK_RATE));
        assert_eq!(bot.url, "https://slack.com/api");
        let e = EndpointSpec::build(&cfg("{name: b, kind: slack, token: xoxb-1}")).unwrap_err();
        assert!(e.to_string().contains("channel: required"), "{e}");
        let e = EndpointSpec::build(&cfg(
            "{name: w, kind: webhook, url: 'http://x', template: '{{ incident.title'}",
        ))
        .unwrap_err();
        assert!(
            // minijinja points at the last token before the missing `}}`: `title`, column 13.
            e.to_string().contains(
                "template: template line 1 column 13: syntax error: unexpected end of input"
            ),
            "{e}"
        );
    }

    #[test]
    fn debug_hides_webhook_urls_and_credentials() {
        let s = EndpointSpec::build(&cfg(
            "{name: j, kind: jira, url: 'https://acme.atlassian.net/x', username: u, token: SECRETTOKEN, project: OPS}",
        ))
        .unwrap();
        let d = format!("{s:?}");
        assert!(
            !d.contains("SECRETTOKEN") && d.contains("https://acme.atlassian.net/…"),
            "{d}"
        );
        let slack_cfg = cfg(
            "{name: s, kind: slack, url: 'https://hooks.slack.com/services/T0/B0/SECRETPATH', headers: {Authorization: 'Bearer SECRETHEADER'}}",
        );
        let slack = EndpointSpec::build(&slack_cfg).unwrap();
        for d in [format!("{slack:?}"), format!("{slack_cfg:?}")] {
            assert!(
                !d.contains("SECRETPATH") && !d.contains("SECRETHEADER"),
                "{d}"
            );
            assert!(d.contains("https://hooks.slack.com/…"), "{d}");
        }
    }
}
