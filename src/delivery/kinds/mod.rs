//! Endpoint kinds: how one event becomes the request(s) each service accepts.
//!
//! Each kind is a file of plain functions `event -> request` (tested against the service's
//! documented schema) plus, for kinds that talk more than once per event (Jira, ServiceNow,
//! Opsgenie), a short `deliver` that runs the steps through a [`Transport`]. The delivery
//! actor owns the transport (awc), the queue, retries, rate limit and circuit breaker; nothing
//! here knows about them.
//!
//! | kind | created | updated | acknowledged | resolved |
//! |---|---|---|---|---|
//! | webhook | body | body | body | body |
//! | slack (webhook), teams, discord, google_chat, mattermost, email | message | message | message | message |
//! | slack (bot token) | message | thread reply | thread reply + update the first | thread reply + update the first |
//! | telegram | message | reply to the first | reply to the first | reply to the first |
//! | pagerduty | `trigger` | `trigger` (same dedup key) | `acknowledge` | `resolve` |
//! | opsgenie | create alert | note (+ priority) | acknowledge | close |
//! | jira | create issue | comment | comment | transition |
//! | servicenow | create incident | update | state In Progress | resolve |

pub mod discord;
pub mod email;
pub mod google_chat;
pub mod jira;
pub mod mattermost;
pub mod opsgenie;
pub mod pagerduty;
pub mod servicenow;
pub mod slack;
pub mod slack_bot;
pub mod teams;
pub mod telegram;
pub mod text;

use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use async_trait::async_trait;
use bytes::Bytes;

use super::endpoint::{EndpointSpec, KindSpec};
use super::webhook;
use crate::model::delivery::Verdict;
use crate::model::{Event, EventType};
use crate::store::refs::ExternalRefs;

/// One HTTP request to an endpoint's service.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A JSON body (sent with `Content-Type: application/json`), if any.
    pub body: Option<Bytes>,
}

impl OutboundRequest {
    pub fn json(method: Method, url: impl Into<String>, body: &serde_json::Value) -> Self {
        OutboundRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Some(Bytes::from(serde_json::to_vec(body).unwrap_or_default())),
        }
    }

    pub fn get(url: impl Into<String>) -> Self {
        OutboundRequest {
            method: Method::GET,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The body parsed as JSON (tests and logs).
    pub fn body_json(&self) -> serde_json::Value {
        self.body
            .as_ref()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(serde_json::Value::Null)
    }
}

/// What the service answered.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// The first bytes of the body (up to `DEFAULT_RESPONSE_READ_BYTES`).
    pub body: Bytes,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends requests; the delivery actor's awc client in production, a script in tests.
#[async_trait(?Send)]
pub trait Transport {
    async fn send(&self, req: OutboundRequest) -> Result<Response, String>;
}

/// How one attempt (one or more requests) ended.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub verdict: Verdict,
    /// The last response received, if any.
    pub response: Option<Response>,
    pub error: Option<String>,
    /// Requests sent during the attempt.
    pub requests: usize,
}

impl Exchange {
    fn success(response: Option<Response>, requests: usize) -> Exchange {
        Exchange {
            verdict: Verdict::Success,
            response,
            error: None,
            requests,
        }
    }

    fn fatal(message: String, response: Option<Response>, requests: usize) -> Exchange {
        Exchange {
            verdict: Verdict::Fatal,
            response,
            error: Some(message),
            requests,
        }
    }
}

/// What a delivery attempt needs.
pub struct Job<'a> {
    pub spec: &'a EndpointSpec,
    pub event: &'a Event,
    /// The webhook body, serialized once per delivery.
    pub webhook_body: &'a Bytes,
    pub refs: &'a dyn ExternalRefs,
    pub transport: &'a dyn Transport,
    /// Unix seconds of this attempt (webhook signatures).
    pub timestamp: i64,
}

/// Runs the steps of a request sequence, stopping at the first failure.
pub(crate) struct Steps<'a> {
    spec: &'a EndpointSpec,
    transport: &'a dyn Transport,
    pub(crate) sent: usize,
    pub(crate) last: Option<Response>,
}

impl<'a> Steps<'a> {
    fn new(spec: &'a EndpointSpec, transport: &'a dyn Transport) -> Self {
        Steps {
            spec,
            transport,
            sent: 0,
            last: None,
        }
    }

    /// Sends one request (with the endpoint's extra headers); a non-2xx answer or a transport
    /// error ends the attempt with the matching outcome.
    pub(crate) async fn send(&mut self, mut req: OutboundRequest) -> Result<Response, Exchange> {
        for (k, v) in &self.spec.headers {
            req.headers.retain(|(n, _)| n != k);
            req.headers.push((k.clone(), v.clone()));
        }
        self.sent += 1;
        match self.transport.send(req).await {
            Ok(resp) if resp.is_success() => {
                self.last = Some(resp.clone());
                Ok(resp)
            }
            Ok(resp) => {
                let verdict = if resp.status == 410 {
                    Verdict::Gone
                } else {
                    Verdict::Retry {
                        retry_after: resp.retry_after,
                    }
                };
                Err(Exchange {
                    verdict,
                    error: Some(format!("HTTP {}", resp.status)),
                    response: Some(resp),
                    requests: self.sent,
                })
            }
            Err(e) => Err(Exchange {
                verdict: Verdict::Retry { retry_after: None },
                response: None,
                error: Some(e),
                requests: self.sent,
            }),
        }
    }

    pub(crate) fn done(self) -> Exchange {
        Exchange::success(self.last, self.sent)
    }

    /// Nothing needed sending (e.g. no remembered record to update): success, with the reason.
    pub(crate) fn nothing(self, why: String) -> Exchange {
        let mut o = Exchange::success(self.last, self.sent);
        o.error = Some(why);
        o
    }

    /// The outcome of a kind's sequence of steps: done, nothing to send (with the reason), or
    /// the step that ended it (counting every request sent before it).
    pub(crate) fn finish(self, result: Result<Option<String>, Exchange>) -> Exchange {
        match result {
            Ok(None) => self.done(),
            Ok(Some(why)) => self.nothing(why),
            Err(mut o) => {
                o.requests = o.requests.max(self.sent);
                o
            }
        }
    }
}

/// The body of a kind's main request: the endpoint's template if it has one, else `default`.
/// A template is rendered on the blocking pool, not on the thread that serves every
/// endpoint's deliveries: a slow one (bounded by its fuel) holds up only its own delivery.
pub(crate) async fn body_or_template(
    spec: &EndpointSpec,
    event: &Event,
    default: impl FnOnce() -> serde_json::Value,
) -> Result<Bytes, String> {
    match &spec.template {
        Some(t) => {
            let (t, event) = (t.clone(), event.clone());
            actix_rt::task::spawn_blocking(move || t.render(&event))
                .await
                .map_err(|e| format!("the template's render stopped: {e}"))?
                .map(Bytes::from)
                .map_err(|e| e.to_string())
        }
        None => Ok(Bytes::from(
            serde_json::to_vec(&default()).unwrap_or_default(),
        )),
    }
}

/// A `group.notification` as the event of the incident that stands for its group, for the
/// kinds that speak of incidents: its first notification opens the group's record
/// (`incident.created`: one PagerDuty alert, Opsgenie alert, Jira issue or ServiceNow incident
/// per group, keyed by the group), later ones update it (`incident.updated`, the counts and
/// what changed as `changes.group`), and the group's resolve closes it. Other events as they
/// are.
pub fn as_incident(event: &Event) -> std::borrow::Cow<'_, Event> {
    use crate::model::group::GroupStatus;
    let Some(g) = &event.group else {
        return std::borrow::Cow::Borrowed(event);
    };
    let mut e = event.clone();
    e.kind = match (g.status, g.first) {
        (GroupStatus::Resolved, _) => EventType::Resolved,
        (GroupStatus::Firing, true) => EventType::Created,
        (GroupStatus::Firing, false) => EventType::Updated,
    };
    if e.kind == EventType::Updated {
        let to = format!(
            "{} firing, {} resolved, {} changed",
            g.counts.firing,
            g.counts.resolved,
            g.changed.len()
        );
        let change = crate::model::Change {
            from: String::new(),
            to,
        };
        e.changes = Some([("group".to_string(), change)].into());
    }
    std::borrow::Cow::Owned(e)
}

/// Delivers one event to one endpoint, as its kind does.
pub async fn deliver(a: Job<'_>) -> Exchange {
    let mut steps = Steps::new(a.spec, a.transport);
    if a.event.kind.is_notice() && !a.spec.kind.takes_notices() {
        return steps.nothing(format!(
            "kind `{}` takes no `{}` notices",
            a.spec.kind.as_str(),
            a.event.kind
        ));
    }
    let event = if matches!(a.spec.kind_spec, KindSpec::Webhook) {
        std::borrow::Cow::Borrowed(a.event)
    } else {
        as_incident(a.event)
    };
    let a = Job { event: &event, ..a };
    let result = match &a.spec.kind_spec {
        KindSpec::Webhook => {
            let body = match &a.spec.template {
                Some(_) => body_or_template(a.spec, a.event, || serde_json::Value::Null).await,
                None => Ok(a.webhook_body.clone()),
            };
            match body {
                Ok(body) => {
                    let req = webhook::request(a.spec, a.event, body, a.timestamp);
                    steps.send(req).await.map(|_| ())
                }
                Err(e) => Err(Exchange::fatal(e, None, 0)),
            }
        }
        KindSpec::Slack => simple(&mut steps, a.spec, a.event, slack::body).await,
        KindSpec::SlackBot(bot) => {
            return slack_bot::deliver(steps, a.spec, bot, a.refs, a.event).await
        }
        KindSpec::GoogleChat => {
            let bytes = match body_or_template(a.spec, a.event, || google_chat::body(a.event)).await
            {
                Ok(b) => b,
                Err(e) => return Exchange::fatal(e, None, 0),
            };
            let req = OutboundRequest {
                method: Method::POST,
                url: google_chat::url(&a.spec.url),
                headers: Vec::new(),
                body: Some(bytes),
            };
            steps.send(req).await.map(|_| ())
        }
        KindSpec::Telegram(tg) => {
            return telegram::deliver(steps, a.spec, tg, a.refs, a.event).await
        }
        KindSpec::Mattermost => simple(&mut steps, a.spec, a.event, mattermost::body).await,
        KindSpec::Email(mail) => return email::deliver(mail, a.spec.policy, a.event).await,
        KindSpec::Teams => simple(&mut steps, a.spec, a.event, teams::body).await,
        KindSpec::Discord => simple(&mut steps, a.spec, a.event, discord::body).await,
        KindSpec::Pagerduty { routing_key } => {
            pagerduty::deliver(&mut steps, a.spec, routing_key, a.event).await
        }
        KindSpec::Opsgenie { api_key } => {
            opsgenie::deliver(&mut steps, a.spec, api_key, a.event).await
        }
        KindSpec::Jira(cfg) => return jira::deliver(steps, a.spec, cfg, a.refs, a.event).await,
        KindSpec::Servicenow(cfg) => {
            return servicenow::deliver(steps, a.spec, cfg, a.refs, a.event).await
        }
    };
    match result {
        Ok(()) => steps.done(),
        Err(o) => o,
    }
}

/// One POST of the kind's body (or the template) to the endpoint URL.
async fn simple(
    steps: &mut Steps<'_>,
    spec: &EndpointSpec,
    event: &Event,
    body: fn(&Event) -> serde_json::Value,
) -> Result<(), Exchange> {
    let bytes = body_or_template(spec, event, || body(event))
        .await
        .map_err(|e| Exchange::fatal(e, None, 0))?;
    let req = OutboundRequest {
        method: Method::POST,
        url: spec.url.clone(),
        headers: Vec::new(),
        body: Some(bytes),
    };
    steps.send(req).await.map(|_| ())
}

pub use text::{
    base, basic_auth, bounded_key, changes_text, colour, encode_component, escape_html, fit_list,
    headline, omitted, secret_header, title, truncate,
};

#[cfg(test)]
mod limits_tests;

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use chrono::DateTime;

    use super::*;
    use crate::config::types::Secret;
    use crate::model::{
        Change, Changes, EventType, Incident, IncidentStatus, Labels, Link, Severity, SourceRef,
    };

    /// A sample event of each type, from the same incident.
    pub(crate) fn event(kind: EventType) -> Event {
        let t = DateTime::parse_from_rfc3339("2026-11-22T10:30:00Z")
            .unwrap()
            .to_utc();
        let changes = (kind == EventType::Updated).then(|| {
            let mut c = Changes::new();
            c.insert(
                "severity".into(),
                Change {
                    from: "warning".into(),
                    to: "critical".into(),
                },
            );
            c
        });
        let status = match kind {
            EventType::Acknowledged => IncidentStatus::Acknowledged,
            EventType::Resolved => IncidentStatus::Resolved,
            _ => IncidentStatus::Triggered,
        };
        Event {
            id: "evt_1".into(),
            kind,
            timestamp: t,
            source: SourceRef {
                name: "prometheus".into(),
                kind: "alertmanager".into(),
            },
            incident: Incident {
                id: "inc_1".into(),
                dedup_key: "fp-abc".into(),
                status,
                severity: Severity::Critical,
                title: "Disk full on db-1".into(),
                description: "Only 2% left on /var <see runbook>".into(),
                labels: Labels::from([
                    ("alertname".to_string(), "DiskFull".to_string()),
                    ("team".to_string(), "ops".to_string()),
                ]),
                annotations: Labels::new(),
                links: vec![Link {
                    label: "Runbook".into(),
                    url: "https://runbooks.example.com/disk".into(),
                }],
                started_at: t,
                resolved_at: (kind == EventType::Resolved).then_some(t),
                last_seen_at: t,
                occurrences: 3,
                source: None,
            },
            changes,
            group: None,
            notice: None,
        }
    }

    /// An empty webhook body, for attempts whose kind does not send it.
    static NO_BODY: Bytes = Bytes::new();

    /// The attempt of `event` at `spec` with an empty webhook body, at time 0.
    pub(crate) fn attempt<'a>(
        spec: &'a EndpointSpec,
        event: &'a Event,
        refs: &'a dyn ExternalRefs,
        transport: &'a dyn Transport,
    ) -> Job<'a> {
        Job {
            spec,
            event,
            webhook_body: &NO_BODY,
            refs,
            transport,
            timestamp: 0,
        }
    }

    /// A transport that records requests and answers from a script (then 200 `{}`).
    #[derive(Default)]
    pub(crate) struct Script {
        pub(crate) sent: RefCell<Vec<OutboundRequest>>,
        pub(crate) answers: RefCell<VecDeque<(u16, &'static str)>>,
    }

    impl Script {
        pub(crate) fn answering(answers: &[(u16, &'static str)]) -> Script {
            let s = Script::default();
            s.answers.borrow_mut().extend(answers.iter().copied());
            s
        }
    }

    #[async_trait(?Send)]
    impl Transport for Script {
        async fn send(&self, req: OutboundRequest) -> Result<Response, String> {
            self.sent.borrow_mut().push(req);
            let (status, body) = self.answers.borrow_mut().pop_front().unwrap_or((200, "{}"));
            Ok(Response {
                status,
                retry_after: None,
                body: Bytes::from_static(body.as_bytes()),
            })
        }
    }

    async fn run_once(spec: &EndpointSpec, e: &Event, t: &Script) -> Exchange {
        let refs = crate::store::refs::MemoryRefs::default();
        deliver(attempt(spec, e, &refs, t)).await
    }

    #[actix_rt::test]
    async fn a_template_replaces_the_body_of_any_kind() {
        let mut spec = EndpointSpec::for_tests("https://hooks.slack.com/services/x");
        spec.kind_spec = KindSpec::Slack;
        spec.template = Some(
            crate::delivery::template::BodyTemplate::compile(
                r#"{"text": "{{ incident.title }} ({{ type }})"}"#,
            )
            .unwrap(),
        );
        let t = Script::default();
        let o = run_once(&spec, &event(EventType::Created), &t).await;
        assert_eq!(o.verdict, Verdict::Success);
        assert_eq!(
            t.sent.borrow()[0].body_json(),
            serde_json::json!({"text": "Disk full on db-1 (incident.created)"})
        );
    }

    #[actix_rt::test]
    async fn pagerduty_ping_triggers_then_resolves_its_own_key() {
        let mut spec = EndpointSpec::for_tests("https://events.pagerduty.com/v2/enqueue");
        spec.kind_spec = KindSpec::Pagerduty {
            routing_key: Secret::new("k"),
        };
        let t = Script::default();
        let o = run_once(&spec, &event(EventType::Ping), &t).await;
        assert_eq!((o.verdict, o.requests), (Verdict::Success, 2));
        let sent = t.sent.borrow().clone();
        assert_eq!(sent[0].body_json()["event_action"], "trigger");
        assert_eq!(sent[1].body_json()["event_action"], "resolve");
        assert_eq!(
            sent[0].body_json()["dedup_key"],
            sent[1].body_json()["dedup_key"]
        );
        assert!(sent[0].body_json()["dedup_key"]
            .as_str()
            .unwrap()
            .starts_with("switchyard-ping-"));
    }

    #[actix_rt::test]
    async fn a_failed_step_stops_the_attempt_with_its_status() {
        let mut spec = EndpointSpec::for_tests("https://api.opsgenie.com");
        spec.kind_spec = KindSpec::Opsgenie {
            api_key: Secret::new("k"),
        };
        let t = Script::answering(&[(202, "{}"), (503, "busy")]);
        let o = run_once(&spec, &event(EventType::Updated), &t).await;
        assert_eq!(o.verdict, Verdict::Retry { retry_after: None });
        assert_eq!(o.requests, 2);
        assert_eq!(o.error.as_deref(), Some("HTTP 503"));
        let gone = Script::answering(&[(410, "")]);
        let o = run_once(&spec, &event(EventType::Created), &gone).await;
        assert_eq!(o.verdict, Verdict::Gone);
    }

    #[test]
    fn bounded_keys_keep_short_ones_and_hash_long_ones() {
        assert_eq!(bounded_key("abc", 255), "abc");
        let long = "x".repeat(300);
        let k = bounded_key(&long, 255);
        assert_eq!(k.len(), 255);
        assert_ne!(k, bounded_key(&format!("{long}y"), 255));
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo!", 5), "héll…");
    }

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode_component("a b/c?d"), "a%20b%2Fc%3Fd");
    }
}
