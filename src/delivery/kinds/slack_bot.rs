//! `kind: slack` with a bot `token` and a `channel`: Slack's Web API
//! (<https://api.slack.com/methods/chat.postMessage>, `chat.update`). The first event of an
//! incident posts a message (the same Block Kit body as the incoming-webhook form) and its
//! channel and `ts` are remembered per incident in [`ExternalRefs`] (in Redis with the redis
//! store); later events reply in that message's thread, and an acknowledge or resolve also
//! updates the first message (`chat.update`), so the channel shows the current state. When no
//! message is remembered (a restart with the memory store) the event posts a new one.
//!
//! Slack answers HTTP 200 with `{"ok": false, "error": ...}` for most failures: errors that
//! can pass (`ratelimited`, `internal_error`, `service_unavailable`, `request_timeout`,
//! `fatal`) are retried, the others (a bad token, an unknown channel, a bot not in the
//! channel) make the delivery dead at once with Slack's error.

use actix_web::http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use actix_web::http::Method;
use serde_json::{json, Value};

use super::{base, secret_header, slack, Exchange, OutboundRequest, Response, Steps};
use crate::config::types::Secret;
use crate::delivery::endpoint::EndpointSpec;
use crate::model::delivery::Verdict;
use crate::model::{Event, EventType};
use crate::store::refs::ExternalRefs;

/// The Web API's address when the endpoint sets no `url`.
pub const DEFAULT_URL: &str = "https://slack.com/api";

/// Slack errors that may pass: the delivery is retried.
const RETRYABLE: &[&str] = &[
    "ratelimited",
    "internal_error",
    "service_unavailable",
    "request_timeout",
    "fatal",
];

/// The bot endpoint's settings.
#[derive(Debug, Clone)]
pub struct SlackBotSpec {
    pub token: Secret,
    pub channel: String,
}

/// A call to the Web API method `method` with `body`.
pub fn call(
    spec: &EndpointSpec,
    bot: &SlackBotSpec,
    method: &str,
    body: &Value,
) -> OutboundRequest {
    OutboundRequest::json(Method::POST, format!("{}/{method}", base(&spec.url)), body)
        .header(AUTHORIZATION, secret_header("Bearer ", &bot.token))
        .header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )
}

/// `chat.postMessage` of `event` to the channel, in `thread_ts`'s thread when given.
pub fn post_body(bot: &SlackBotSpec, event: &Event, thread_ts: Option<&str>) -> Value {
    let mut body = slack::body(event);
    body["channel"] = json!(bot.channel);
    body["unfurl_links"] = json!(false);
    if let Some(ts) = thread_ts {
        body["thread_ts"] = json!(ts);
    }
    body
}

/// `chat.update` of the first message (`channel`, `ts`) to show `event`'s state.
pub fn update_body(channel: &str, ts: &str, event: &Event) -> Value {
    let mut body = slack::body(event);
    body["channel"] = json!(channel);
    body["ts"] = json!(ts);
    body
}

/// The answer's `ok`; a Slack error becomes the attempt's outcome.
fn check(resp: Response, sent: usize) -> Result<Value, Exchange> {
    let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    if v["ok"] == json!(true) {
        return Ok(v);
    }
    let error = v["error"]
        .as_str()
        .unwrap_or("an answer without `ok`")
        .to_string();
    let verdict = if RETRYABLE.contains(&error.as_str()) {
        Verdict::Retry {
            retry_after: resp.retry_after,
        }
    } else {
        Verdict::Fatal
    };
    Err(Exchange {
        verdict,
        error: Some(format!("Slack: {error}")),
        response: Some(resp),
        requests: sent,
    })
}

/// Posts, replies and updates as the module says.
pub(crate) async fn deliver(
    steps: Steps<'_>,
    spec: &EndpointSpec,
    bot: &SlackBotSpec,
    refs: &dyn ExternalRefs,
    event: &Event,
) -> Exchange {
    let mut steps = steps;
    let result = run(&mut steps, spec, bot, refs, event).await;
    steps.finish(result)
}

async fn run(
    steps: &mut Steps<'_>,
    spec: &EndpointSpec,
    bot: &SlackBotSpec,
    refs: &dyn ExternalRefs,
    event: &Event,
) -> Result<Option<String>, Exchange> {
    let first = if event.kind == EventType::Ping {
        None
    } else {
        match refs.get(&spec.name, &event.incident.id).await {
            Ok(r) => r.and_then(|r| {
                r.split_once(' ')
                    .map(|(c, ts)| (c.to_string(), ts.to_string()))
            }),
            Err(e) => {
                return Err(Exchange {
                    verdict: Verdict::Retry { retry_after: None },
                    response: None,
                    error: Some(format!("message lookup failed: {e}")),
                    requests: 0,
                })
            }
        }
    };
    let Some((channel, ts)) = first else {
        let resp = steps
            .send(call(
                spec,
                bot,
                "chat.postMessage",
                &post_body(bot, event, None),
            ))
            .await?;
        let v = check(resp, steps.sent)?;
        if event.kind != EventType::Ping {
            if let (Some(channel), Some(ts)) = (v["channel"].as_str(), v["ts"].as_str()) {
                if let Err(e) = refs
                    .put(&spec.name, &event.incident.id, &format!("{channel} {ts}"))
                    .await
                {
                    tracing::warn!(endpoint = &*spec.name, error = %e, "the message's ts could not be stored; later events post new messages");
                }
            }
        }
        return Ok(None);
    };
    let resp = steps
        .send(call(
            spec,
            bot,
            "chat.postMessage",
            &post_body(bot, event, Some(&ts)),
        ))
        .await?;
    check(resp, steps.sent)?;
    if matches!(event.kind, EventType::Acknowledged | EventType::Resolved) {
        let resp = steps
            .send(call(
                spec,
                bot,
                "chat.update",
                &update_body(&channel, &ts, event),
            ))
            .await?;
        check(resp, steps.sent)?;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::endpoint::KindSpec;
    use crate::delivery::kinds::tests::{attempt, event, Script};
    use crate::store::refs::MemoryRefs;

    fn spec() -> EndpointSpec {
        let mut spec = EndpointSpec::for_tests(DEFAULT_URL);
        spec.kind = crate::config::types::EndpointKind::Slack;
        spec.kind_spec = KindSpec::SlackBot(SlackBotSpec {
            token: Secret::new("xoxb-1"),
            channel: "C1".into(),
        });
        spec
    }

    #[actix_rt::test]
    async fn the_first_event_posts_later_ones_reply_and_resolve_updates_the_first() {
        let (spec, refs) = (spec(), MemoryRefs::default());
        let t = Script::answering(&[(200, r#"{"ok":true,"channel":"C1ID","ts":"111.222"}"#)]);
        let o = super::super::deliver(attempt(&spec, &event(EventType::Created), &refs, &t)).await;
        assert_eq!(o.verdict, Verdict::Success);
        let r = t.sent.borrow()[0].clone();
        assert_eq!(r.url, "https://slack.com/api/chat.postMessage");
        assert_eq!(r.body_json()["channel"], "C1");
        assert!(r.body_json().get("thread_ts").is_none());
        let t = Script::answering(&[(200, r#"{"ok":true}"#), (200, r#"{"ok":true}"#)]);
        let o = super::super::deliver(attempt(&spec, &event(EventType::Resolved), &refs, &t)).await;
        assert_eq!((o.verdict, o.requests), (Verdict::Success, 2));
        let sent = t.sent.borrow();
        assert_eq!(sent[0].body_json()["thread_ts"], "111.222");
        assert_eq!(sent[1].url, "https://slack.com/api/chat.update");
        assert_eq!(
            (&sent[1].body_json()["channel"], &sent[1].body_json()["ts"]),
            (&json!("C1ID"), &json!("111.222"))
        );
        assert_eq!(
            sent[1].body_json()["blocks"][0]["text"]["text"],
            "[RESOLVED] Disk full on db-1"
        );
    }

    #[actix_rt::test]
    async fn slack_errors_are_dead_or_retried_by_kind() {
        let (spec, refs) = (spec(), MemoryRefs::default());
        let t = Script::answering(&[(200, r#"{"ok":false,"error":"channel_not_found"}"#)]);
        let o = super::super::deliver(attempt(&spec, &event(EventType::Created), &refs, &t)).await;
        assert_eq!(o.verdict, Verdict::Fatal);
        assert_eq!(o.error.as_deref(), Some("Slack: channel_not_found"));
        let t = Script::answering(&[(200, r#"{"ok":false,"error":"internal_error"}"#)]);
        let o = super::super::deliver(attempt(&spec, &event(EventType::Created), &refs, &t)).await;
        assert_eq!(o.verdict, Verdict::Retry { retry_after: None });
    }
}
