//! `kind: telegram`: the Bot API's `sendMessage` (<https://core.telegram.org/bots/api#sendmessage>)
//! with `parse_mode: HTML`: every text is escaped (`&`, `<`, `>`, and `"` in link addresses:
//! the four entities Telegram's HTML knows). The first event of an incident sends a message
//! whose `message_id` is remembered per incident ([`ExternalRefs`]); later events reply to it
//! (`reply_parameters`, sent even if it was deleted), one reply chain per incident. A 429's
//! wait (`parameters.retry_after`) is honoured like `Retry-After`.
//!
//! Limits kept: 4096 characters of text as shown (after entities are parsed; link addresses
//! do not count): the headline 256, the description 1000, each label 100, up to
//! [`MAX_LABELS`] labels then `… and N more`, five links; each part cut with `…`, so the sum
//! stays under the limit.

use actix_web::http::Method;
use serde_json::{json, Value};

use super::{
    base, changes_text, escape_html, headline, omitted, truncate, Exchange, OutboundRequest, Steps,
};
use crate::config::types::Secret;
use crate::delivery::endpoint::EndpointSpec;
use crate::model::delivery::Verdict;
use crate::model::{Event, EventType};
use crate::store::refs::ExternalRefs;

/// The Bot API's address when the endpoint sets no `url`.
pub const DEFAULT_URL: &str = "https://api.telegram.org";
/// Telegram's limit on a message's text.
pub const MAX_TEXT: usize = 4096;
/// Labels shown; the rest are counted.
pub const MAX_LABELS: usize = 15;
/// Room kept for the headline, description, each label.
const MAX_HEADLINE: usize = 256;
const MAX_DESCRIPTION: usize = 1000;
const MAX_LABEL: usize = 100;

/// The bot endpoint's settings.
#[derive(Debug, Clone)]
pub struct TelegramSpec {
    pub token: Secret,
    pub chat_id: String,
}

/// The message text (HTML), at most [`MAX_TEXT`] characters as shown.
pub fn text(event: &Event) -> String {
    let inc = &event.incident;
    // Each part is cut before it is escaped, so an entity is never cut in half.
    let mut lines = vec![format!(
        "<b>{}</b>",
        escape_html(&truncate(&headline(event), MAX_HEADLINE))
    )];
    lines.push(format!(
        "Severity: <b>{}</b> · Status: {} · Source: {} · Occurrences: {}",
        inc.severity,
        inc.status.as_str(),
        escape_html(&truncate(&event.source.name, MAX_LABEL)),
        inc.occurrences
    ));
    if !inc.description.trim().is_empty() {
        lines.push(escape_html(&truncate(&inc.description, MAX_DESCRIPTION)));
    }
    if let Some(c) = changes_text(event) {
        lines.push(format!(
            "Changed: {}",
            escape_html(&truncate(&c, MAX_LABEL * 3))
        ));
    }
    if !inc.labels.is_empty() {
        let mut labels: Vec<String> = inc
            .labels
            .iter()
            .take(MAX_LABELS)
            .map(|(k, v)| {
                format!(
                    "<code>{}</code>",
                    escape_html(&truncate(&format!("{k}={v}"), MAX_LABEL))
                )
            })
            .collect();
        labels.extend(omitted(inc.labels.len(), MAX_LABELS));
        lines.push(labels.join(" "));
    }
    for l in inc.links.iter().take(5) {
        let label = if l.label.is_empty() { &l.url } else { &l.label };
        if l.url.len() <= 1024 {
            lines.push(format!(
                "<a href=\"{}\">{}</a>",
                escape_html(&l.url),
                escape_html(&truncate(label, MAX_LABEL))
            ));
        }
    }
    lines.push(format!(
        "<i>switchyard · {} · {}</i>",
        event.kind,
        escape_html(&truncate(&inc.id, MAX_LABEL))
    ));
    // The parts' bounds keep the whole under the limit (checked by the limits test).
    lines.join("\n")
}

/// The `sendMessage` body, replying to `reply_to` when given.
pub fn body(tg: &TelegramSpec, event: &Event, reply_to: Option<i64>) -> Value {
    let mut v = json!({
        "chat_id": tg.chat_id,
        "text": text(event),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": true},
    });
    if let Some(id) = reply_to {
        v["reply_parameters"] = json!({"message_id": id, "allow_sending_without_reply": true});
    }
    v
}

/// Sends the event, as the module says.
pub(crate) async fn deliver(
    mut steps: Steps<'_>,
    spec: &EndpointSpec,
    tg: &TelegramSpec,
    refs: &dyn ExternalRefs,
    event: &Event,
) -> Exchange {
    let url = format!("{}/bot{}/sendMessage", base(&spec.url), tg.token.expose());
    let remembered = if event.kind == EventType::Ping {
        None
    } else {
        match refs.get(&spec.name, &event.incident.id).await {
            Ok(r) => r.and_then(|id| id.parse::<i64>().ok()),
            Err(e) => {
                return Exchange {
                    verdict: Verdict::Retry { retry_after: None },
                    response: None,
                    error: Some(format!("message lookup failed: {e}")),
                    requests: 0,
                }
            }
        }
    };
    let req = OutboundRequest::json(Method::POST, url, &body(tg, event, remembered));
    let result = match steps.send(req).await {
        Ok(resp) => {
            if remembered.is_none() && event.kind != EventType::Ping {
                let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
                if let Some(id) = v["result"]["message_id"].as_i64() {
                    if let Err(e) = refs
                        .put(&spec.name, &event.incident.id, &id.to_string())
                        .await
                    {
                        tracing::warn!(endpoint = &*spec.name, error = %e, "the message id could not be stored; later events start new chains");
                    }
                }
            }
            Ok(None)
        }
        Err(mut e) => {
            // A 429's wait is in the body (`parameters.retry_after`, seconds).
            if let (Verdict::Retry { retry_after: None }, Some(resp)) = (&e.verdict, &e.response) {
                let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
                if let Some(secs) = v["parameters"]["retry_after"].as_u64() {
                    e.verdict = Verdict::Retry {
                        retry_after: Some(std::time::Duration::from_secs(secs)),
                    };
                }
            }
            Err(e)
        }
    };
    steps.finish(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::endpoint::KindSpec;
    use crate::delivery::kinds::tests::{attempt, event, Script};
    use crate::store::refs::MemoryRefs;

    #[test]
    fn html_is_escaped_once_and_links_quoted() {
        let mut e = event(EventType::Created);
        e.incident.title = "<b>x</b> & \"y\"".into();
        e.incident.links[0].url = "https://x.example/?a=1&b=\"2\"".into();
        let t = text(&e);
        assert!(
            t.starts_with("<b>[CRITICAL] &lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot;</b>"),
            "{t}"
        );
        assert!(
            t.contains("Only 2% left on /var &lt;see runbook&gt;"),
            "{t}"
        );
        assert!(
            t.contains("<a href=\"https://x.example/?a=1&amp;b=&quot;2&quot;\">Runbook</a>"),
            "{t}"
        );
    }

    #[actix_rt::test]
    async fn later_events_reply_to_the_first_message() {
        let mut spec = EndpointSpec::for_tests(DEFAULT_URL);
        spec.kind_spec = KindSpec::Telegram(TelegramSpec {
            token: Secret::new("123:ABC"),
            chat_id: "-1001".into(),
        });
        let refs = MemoryRefs::default();
        let t = Script::answering(&[(200, r#"{"ok":true,"result":{"message_id":42}}"#)]);
        let o = super::super::deliver(attempt(&spec, &event(EventType::Created), &refs, &t)).await;
        assert_eq!(o.verdict, Verdict::Success);
        assert_eq!(
            t.sent.borrow()[0].url,
            "https://api.telegram.org/bot123:ABC/sendMessage"
        );
        assert!(t.sent.borrow()[0]
            .body_json()
            .get("reply_parameters")
            .is_none());
        let t = Script::default();
        super::super::deliver(attempt(&spec, &event(EventType::Resolved), &refs, &t)).await;
        let b = t.sent.borrow()[0].body_json();
        assert_eq!(b["reply_parameters"]["message_id"], 42);
        assert_eq!(b["parse_mode"], "HTML");
        assert_eq!(b["chat_id"], "-1001");
        let t = Script::answering(&[(
            429,
            r#"{"ok":false,"error_code":429,"parameters":{"retry_after":7}}"#,
        )]);
        let o = super::super::deliver(attempt(&spec, &event(EventType::Resolved), &refs, &t)).await;
        assert_eq!(
            o.verdict,
            Verdict::Retry {
                retry_after: Some(std::time::Duration::from_secs(7))
            }
        );
    }
}
