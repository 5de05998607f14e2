//! `kind: discord`: an execute-webhook request (<https://discord.com/developers/docs/resources/webhook#execute-webhook>)
//! with one embed coloured by severity (green when resolved). Mentions are never parsed
//! (`allowed_mentions: {parse: []}`), so an `@everyone` in an alert title pings nobody.
//!
//! Limits kept: title 256, description 4096 (we use 2048), 25 fields, field name 256, field
//! value 1024, footer 2048, and the 6000 characters of a whole embed.

use serde_json::{json, Value};

use super::{changes_text, colour, fit_list, headline, truncate};
use crate::model::Event;

/// The request body for an event.
pub fn body(event: &Event) -> Value {
    let inc = &event.incident;
    let mut fields = vec![
        json!({"name": "Severity", "value": inc.severity.as_str(), "inline": true}),
        json!({"name": "Status", "value": inc.status.as_str(), "inline": true}),
        json!({"name": "Source", "value": truncate(&event.source.name, 100), "inline": true}),
    ];
    if let Some(c) = changes_text(event) {
        fields.push(json!({"name": "Changed", "value": truncate(&c, 1024), "inline": false}));
    }
    if !inc.labels.is_empty() {
        let labels = inc
            .labels
            .iter()
            .map(|(k, v)| truncate(&format!("{k}={v}"), 200))
            .collect::<Vec<_>>();
        fields.push(
            json!({"name": "Labels", "value": fit_list(&labels, ", ", 1024), "inline": false}),
        );
    }
    if !inc.links.is_empty() {
        let links = inc
            .links
            .iter()
            .map(|l| {
                format!(
                    "[{}]({})",
                    if l.label.is_empty() { &l.url } else { &l.label },
                    l.url
                )
            })
            .collect::<Vec<_>>()
            .join(" · ");
        fields.push(json!({"name": "Links", "value": truncate(&links, 1024), "inline": false}));
    }
    let mut embed = json!({
        "title": truncate(&headline(event), 256),
        "color": colour(event),
        "fields": fields,
        "timestamp": event.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "footer": {"text": truncate(&format!("switchyard · {} · {}", event.kind, inc.id), 200)},
    });
    if !inc.description.trim().is_empty() {
        embed["description"] = Value::String(truncate(&inc.description, 2048));
    }
    if let Some(l) = inc.links.first().filter(|l| l.url.starts_with("http")) {
        embed["url"] = Value::String(l.url.clone());
    }
    json!({
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kinds::tests::event;
    use crate::model::EventType;

    #[test]
    fn one_embed_coloured_by_severity_and_no_mentions() {
        let v = body(&event(EventType::Created));
        assert_eq!(v["allowed_mentions"], json!({"parse": []}));
        let e = &v["embeds"][0];
        assert_eq!(e["title"], "[CRITICAL] Disk full on db-1");
        assert_eq!(e["color"], 0xE01E5A);
        assert_eq!(e["timestamp"], "2026-11-22T10:30:00Z");
        assert_eq!(
            e["fields"][0],
            json!({"name": "Severity", "value": "critical", "inline": true})
        );
        assert_eq!(e["url"], "https://runbooks.example.com/disk");
        let r = body(&event(EventType::Resolved));
        assert_eq!(r["embeds"][0]["color"], 0x2EB67D);
    }

    #[test]
    fn a_huge_embed_stays_under_6000_characters() {
        let mut e = event(EventType::Updated);
        e.incident.title = "t".repeat(1000);
        e.incident.description = "d".repeat(10_000);
        for i in 0..200 {
            e.incident
                .labels
                .insert(format!("label{i}"), "v".repeat(100));
        }
        let v = body(&e);
        let embed = &v["embeds"][0];
        let mut total = embed["title"].as_str().unwrap().chars().count()
            + embed["description"].as_str().unwrap().chars().count()
            + embed["footer"]["text"].as_str().unwrap().chars().count();
        for f in embed["fields"].as_array().unwrap() {
            total += f["name"].as_str().unwrap().chars().count()
                + f["value"].as_str().unwrap().chars().count();
        }
        assert!(total <= 6000, "{total}");
    }
}
