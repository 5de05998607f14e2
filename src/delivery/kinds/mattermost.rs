//! `kind: mattermost`: an incoming webhook
//! (<https://developers.mattermost.com/integrate/webhooks/incoming/>): `text` (Markdown) and
//! one message attachment coloured by severity, with the severity / status / source /
//! occurrences as short fields, the description, what changed, the labels and the links.
//! Every event is its own post (an incoming webhook cannot edit or thread by incident).
//!
//! Limits kept: a post's text is at most 16,383 characters, so text and attachment together
//! stay under [`MAX_POST`]: each part is cut with `…`, labels listed up to [`MAX_LABELS`].

use serde_json::{json, Value};

use super::{changes_text, colour, headline, omitted, truncate};
use crate::model::Event;

/// Mattermost's limit on a post's text (attachments count towards it).
pub const MAX_POST: usize = 16_383;
/// Labels shown; the rest are counted.
pub const MAX_LABELS: usize = 20;
const MAX_HEADLINE: usize = 256;
const MAX_DESCRIPTION: usize = 4000;
const MAX_FIELD: usize = 256;

/// Markdown's marks in text that is shown as typed.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The post for an event.
pub fn body(event: &Event) -> Value {
    let inc = &event.incident;
    let field = |title: &str, value: &str| json!({"short": true, "title": title, "value": escape(&truncate(value, MAX_FIELD))});
    let mut fields = vec![
        field("Severity", inc.severity.as_str()),
        field("Status", inc.status.as_str()),
        field("Source", &event.source.name),
        field("Occurrences", &inc.occurrences.to_string()),
    ];
    if let Some(c) = changes_text(event) {
        fields.push(json!({"short": false, "title": "Changed", "value": escape(&truncate(&c, MAX_FIELD * 2))}));
    }
    if !inc.labels.is_empty() {
        let mut labels: Vec<String> = inc
            .labels
            .iter()
            .take(MAX_LABELS)
            .map(|(k, v)| {
                format!(
                    "`{}`",
                    truncate(&format!("{k}={v}"), MAX_FIELD).replace('`', "'")
                )
            })
            .collect();
        labels.extend(omitted(inc.labels.len(), MAX_LABELS));
        fields.push(json!({"short": false, "title": "Labels", "value": labels.join(" ")}));
    }
    let links: Vec<String> = inc
        .links
        .iter()
        .filter(|l| !l.url.is_empty() && l.url.len() <= 512 && !l.url.contains(')'))
        .take(5)
        .map(|l| {
            let label = if l.label.is_empty() { &l.url } else { &l.label };
            format!("[{}]({})", escape(&truncate(label, 100)), l.url)
        })
        .collect();
    if !links.is_empty() {
        fields.push(json!({"short": false, "title": "Links", "value": links.join(" · ")}));
    }
    let head = escape(&truncate(&headline(event), MAX_HEADLINE));
    json!({
        "text": format!("**{head}**"),
        "attachments": [{
            "fallback": truncate(&format!("{} ({})", headline(event), event.source.name), MAX_HEADLINE),
            "color": format!("#{:06X}", colour(event)),
            "text": escape(&truncate(&inc.description, MAX_DESCRIPTION)),
            "fields": fields,
            "footer": truncate(&format!("switchyard · {} · {}", event.kind, inc.id), MAX_FIELD),
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kinds::tests::event;
    use crate::model::EventType;

    #[test]
    fn a_post_with_one_coloured_attachment() {
        let v = body(&event(EventType::Created));
        assert_eq!(
            v["text"],
            "**\\[CRITICAL\\] Disk full on db\\-1**".replace("\\-", "-")
        );
        let a = &v["attachments"][0];
        assert_eq!(a["color"], "#E01E5A");
        assert_eq!(
            a["fields"][0],
            json!({"short": true, "title": "Severity", "value": "critical"})
        );
        assert_eq!(a["text"], "Only 2% left on /var \\<see runbook\\>");
        assert!(a["fields"]
            .to_string()
            .contains("[Runbook](https://runbooks.example.com/disk)"));
        let r = body(&event(EventType::Resolved));
        assert_eq!(r["attachments"][0]["color"], "#2EB67D");
    }
}
