//! `kind: slack`: an incoming webhook message (<https://api.slack.com/messaging/webhooks>):
//! `text` (the notification fallback) and Block Kit `blocks`: a header, the severity / status /
//! source fields, the description, what changed, the labels and the links. Every event is its
//! own message (an incoming webhook cannot edit an earlier one). Slack allows one message per
//! second per webhook: a slack endpoint without `rate_limit` gets `1/s`.
//!
//! Limits kept: header text 150, section text 3000, field text 2000, context text 3000 (labels
//! of 200 listed while they fit, then `… and N more`), button text 75, button URL 3000, 25
//! buttons.

use serde_json::{json, Value};

use super::{changes_text, fit_list, headline, title, truncate};
use crate::model::Event;

/// Slack's mrkdwn escaping: `&`, `<` and `>`.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The message for an event.
pub fn body(event: &Event) -> Value {
    let inc = &event.incident;
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&headline(event), 150), "emoji": true}
    })];
    blocks.push(json!({
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": format!("*Severity*\n{}", inc.severity)},
            {"type": "mrkdwn", "text": format!("*Status*\n{}", inc.status.as_str())},
            {"type": "mrkdwn", "text": truncate(&format!("*Source*\n{}", escape(&event.source.name)), 2000)},
            {"type": "mrkdwn", "text": format!("*Occurrences*\n{}", inc.occurrences)},
        ]
    }));
    if !inc.description.trim().is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&escape(&inc.description), 3000)}
        }));
    }
    if let Some(changes) = changes_text(event) {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": truncate(&format!("*Changed:* {}", escape(&changes)), 3000)}]
        }));
    }
    if !inc.labels.is_empty() {
        let labels = inc
            .labels
            .iter()
            .map(|(k, v)| format!("`{}`", escape(&truncate(&format!("{k}={v}"), 200))))
            .collect::<Vec<_>>();
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": fit_list(&labels, " ", 3000)}]
        }));
    }
    let buttons: Vec<Value> = inc
        .links
        .iter()
        .filter(|l| l.url.len() <= 3000 && !l.url.is_empty())
        .take(25)
        .map(|l| {
            json!({
                "type": "button",
                "text": {"type": "plain_text", "text": truncate(if l.label.is_empty() { &l.url } else { &l.label }, 75)},
                "url": l.url,
            })
        })
        .collect();
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate(&format!("switchyard · {} · {} · `{}`", event.kind, inc.id, escape(&inc.dedup_key)), 3000)}]
    }));
    let fallback = format!("{} ({})", headline(event), event.source.name);
    let _ = title;
    json!({"text": truncate(&escape(&fallback), 3000), "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kinds::tests::event;
    use crate::model::EventType;

    #[test]
    fn created_has_text_and_the_documented_blocks() {
        let v = body(&event(EventType::Created));
        assert_eq!(v["text"], "[CRITICAL] Disk full on db-1 (prometheus)");
        let blocks = v["blocks"].as_array().unwrap();
        let types: Vec<_> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            ["header", "section", "section", "context", "actions", "context"]
        );
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert_eq!(blocks[0]["text"]["text"], "[CRITICAL] Disk full on db-1");
        assert_eq!(blocks[1]["fields"][0]["text"], "*Severity*\ncritical");
        assert_eq!(
            blocks[2]["text"]["text"], "Only 2% left on /var &lt;see runbook&gt;",
            "mrkdwn is escaped"
        );
        assert_eq!(
            blocks[3]["elements"][0]["text"],
            "`alertname=DiskFull` `team=ops`"
        );
        assert_eq!(
            blocks[4]["elements"][0],
            serde_json::json!({"type": "button", "text": {"type": "plain_text", "text": "Runbook"}, "url": "https://runbooks.example.com/disk"})
        );
    }

    #[test]
    fn resolved_is_its_own_message_and_updated_says_what_changed() {
        let v = body(&event(EventType::Resolved));
        assert_eq!(
            v["blocks"][0]["text"]["text"],
            "[RESOLVED] Disk full on db-1"
        );
        assert_eq!(v["blocks"][1]["fields"][1]["text"], "*Status*\nresolved");
        let u = body(&event(EventType::Updated));
        assert!(u.to_string().contains("severity: warning → critical"));
    }

    #[test]
    fn long_titles_are_cut_to_the_header_limit() {
        let mut e = event(EventType::Created);
        e.incident.title = "x".repeat(500);
        let v = body(&e);
        assert_eq!(
            v["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            150
        );
    }
}
