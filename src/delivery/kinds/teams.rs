//! `kind: teams`: a Microsoft Teams Workflows webhook ("When a Teams webhook request is
//! received"), which takes a message with one Adaptive Card attachment
//! (<https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using>).
//! The retired Office 365 connector URLs (`*.webhook.office.com/webhookb2/...`,
//! `outlook.office.com/webhook/...`) are refused when the config is checked.
//!
//! Limits kept (a card must stay under Teams' 28 KB): headline 300, description 4000, up to
//! [`MAX_LABELS`] label facts (key 100, value 500) then `… and N more`, five link actions.

use serde_json::{json, Value};

use super::{changes_text, headline, omitted, truncate};
use crate::model::{Event, EventType, Severity};

/// Labels shown as facts; the rest are counted.
pub const MAX_LABELS: usize = 20;

/// Why a URL is the retired Office 365 connector, if it is.
pub fn retired_connector(url: &str) -> Option<&'static str> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if (host.ends_with(".webhook.office.com") && path.starts_with("webhookb2/"))
        || (host == "outlook.office.com" && path.starts_with("webhook/"))
    {
        return Some(
            "this is an Office 365 connector URL; Microsoft retired those connectors. Create a \
             Teams workflow from the template \"Send webhook alerts to a channel\" and use its URL",
        );
    }
    None
}

fn colour(event: &Event) -> &'static str {
    match event.kind {
        EventType::Resolved => "Good",
        EventType::Acknowledged => "Default",
        _ => match event.incident.severity {
            Severity::Critical | Severity::Error => "Attention",
            Severity::Warning => "Warning",
            Severity::Info => "Accent",
        },
    }
}

/// The message (an Adaptive Card 1.4) for an event.
pub fn body(event: &Event) -> Value {
    let inc = &event.incident;
    let mut card_body = vec![json!({
        "type": "TextBlock", "text": truncate(&headline(event), 300), "weight": "Bolder",
        "size": "Medium", "wrap": true, "color": colour(event)
    })];
    if !inc.description.trim().is_empty() {
        card_body.push(
            json!({"type": "TextBlock", "text": truncate(&inc.description, 4000), "wrap": true}),
        );
    }
    let mut facts = vec![
        json!({"title": "Severity", "value": inc.severity.as_str()}),
        json!({"title": "Status", "value": inc.status.as_str()}),
        json!({"title": "Source", "value": &*event.source.name}),
        json!({"title": "Occurrences", "value": inc.occurrences.to_string()}),
    ];
    if let Some(c) = changes_text(event) {
        facts.push(json!({"title": "Changed", "value": c}));
    }
    for (k, v) in inc.labels.iter().take(MAX_LABELS) {
        facts.push(json!({"title": truncate(k, 100), "value": truncate(v, 500)}));
    }
    if let Some(more) = omitted(inc.labels.len(), MAX_LABELS) {
        facts.push(json!({"title": "Labels", "value": more}));
    }
    card_body.push(json!({"type": "FactSet", "facts": facts}));
    card_body.push(json!({
        "type": "TextBlock", "text": format!("{} · {}", event.kind, inc.id),
        "isSubtle": true, "size": "Small", "wrap": true
    }));
    let actions: Vec<Value> = inc
        .links
        .iter()
        .filter(|l| !l.url.is_empty())
        .take(5)
        .map(|l| json!({"type": "Action.OpenUrl", "title": truncate(if l.label.is_empty() { &l.url } else { &l.label }, 100), "url": l.url}))
        .collect();
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": card_body,
    });
    if !actions.is_empty() {
        card["actions"] = Value::Array(actions);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kinds::tests::event;

    #[test]
    fn the_message_carries_one_adaptive_card() {
        let v = body(&event(EventType::Created));
        assert_eq!(v["type"], "message");
        let att = &v["attachments"][0];
        assert_eq!(
            att["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert!(att["contentUrl"].is_null());
        let card = &att["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        assert_eq!(card["body"][0]["text"], "[CRITICAL] Disk full on db-1");
        assert_eq!(card["body"][0]["color"], "Attention");
        assert_eq!(card["body"][2]["type"], "FactSet");
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(
            card["actions"][0]["url"],
            "https://runbooks.example.com/disk"
        );
        let r = body(&event(EventType::Resolved));
        assert_eq!(r["attachments"][0]["content"]["body"][0]["color"], "Good");
    }

    #[test]
    fn retired_connector_urls_are_recognised() {
        assert!(retired_connector(
            "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/x/y"
        )
        .is_some());
        assert!(retired_connector("https://outlook.office.com/webhook/abc").is_some());
        assert!(retired_connector(
            "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke"
        )
        .is_none());
    }
}
