//! `kind: google_chat`: a space's incoming webhook
//! (<https://developers.google.com/workspace/chat/quickstart/webhooks>) with a card v2
//! (`cardsV2`: a header, the severity / status / source / occurrences as `decoratedText`, the
//! description, what changed, the labels, link buttons) and a `text` fallback. Every event of
//! an incident goes to one thread: `thread.threadKey` is the incident id and the URL asks for
//! `messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD`.
//!
//! Limits kept: the message's text 4096 characters (the documented 4,096 for `text`), card
//! header title and subtitle 200, each widget text 2000 (labels of 200 listed while they fit, then
//! `… and N more`), at most [`MAX_BUTTONS`] buttons, each part cut
//! with `…`.

use serde_json::{json, Value};

use super::{changes_text, escape_html, fit_list, headline, truncate};
use crate::model::Event;

/// Link buttons.
pub const MAX_BUTTONS: usize = 6;
const MAX_TEXT: usize = 4096;
const MAX_HEADER: usize = 200;
const MAX_WIDGET: usize = 2000;
const MAX_LABEL: usize = 200;

/// The webhook URL with the thread reply option added.
pub fn url(webhook: &str) -> String {
    let sep = if webhook.contains('?') { '&' } else { '?' };
    format!("{webhook}{sep}messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD")
}

fn decorated(label: &str, text: &str) -> Value {
    json!({"decoratedText": {"topLabel": label, "text": escape_html(&truncate(text, MAX_WIDGET))}})
}

/// The message for an event.
pub fn body(event: &Event) -> Value {
    let inc = &event.incident;
    let mut widgets = vec![
        decorated("Severity", inc.severity.as_str()),
        decorated("Status", inc.status.as_str()),
        decorated("Source", &event.source.name),
        decorated("Occurrences", &inc.occurrences.to_string()),
    ];
    if !inc.description.trim().is_empty() {
        widgets.push(
            json!({"textParagraph": {"text": escape_html(&truncate(&inc.description, MAX_WIDGET))}}),
        );
    }
    if let Some(c) = changes_text(event) {
        widgets.push(decorated("Changed", &c));
    }
    if !inc.labels.is_empty() {
        let labels: Vec<String> = inc
            .labels
            .iter()
            .map(|(k, v)| truncate(&format!("{k}={v}"), MAX_LABEL))
            .collect();
        widgets.push(decorated("Labels", &fit_list(&labels, ", ", MAX_WIDGET)));
    }
    let buttons: Vec<Value> = inc
        .links
        .iter()
        .filter(|l| !l.url.is_empty() && l.url.len() <= 2000)
        .take(MAX_BUTTONS)
        .map(|l| {
            json!({"text": truncate(if l.label.is_empty() { &l.url } else { &l.label }, 60),
                   "onClick": {"openLink": {"url": l.url}}})
        })
        .collect();
    if !buttons.is_empty() {
        widgets.push(json!({"buttonList": {"buttons": buttons}}));
    }
    json!({
        "text": truncate(&format!("{} ({})", headline(event), event.source.name), MAX_TEXT),
        "thread": {"threadKey": inc.id},
        "cardsV2": [{
            "cardId": "switchyard",
            "card": {
                "header": {
                    "title": truncate(&headline(event), MAX_HEADER),
                    "subtitle": truncate(&format!("switchyard · {} · {}", event.kind, event.source.name), MAX_HEADER),
                },
                "sections": [{"widgets": widgets}],
            }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kinds::tests::event;
    use crate::model::EventType;

    #[test]
    fn one_thread_per_incident_and_a_card_v2() {
        assert_eq!(
            url("https://chat.googleapis.com/v1/spaces/S/messages?key=k&token=t"),
            "https://chat.googleapis.com/v1/spaces/S/messages?key=k&token=t&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
        );
        let c = body(&event(EventType::Created));
        let r = body(&event(EventType::Resolved));
        assert_eq!(c["thread"]["threadKey"], "inc_1");
        assert_eq!(c["thread"], r["thread"]);
        let card = &c["cardsV2"][0]["card"];
        assert_eq!(card["header"]["title"], "[CRITICAL] Disk full on db-1");
        let widgets = card["sections"][0]["widgets"].as_array().unwrap();
        assert_eq!(widgets[0]["decoratedText"]["topLabel"], "Severity");
        assert_eq!(
            widgets[4]["textParagraph"]["text"],
            "Only 2% left on /var &lt;see runbook&gt;"
        );
        assert_eq!(
            widgets.last().unwrap()["buttonList"]["buttons"][0]["onClick"]["openLink"]["url"],
            "https://runbooks.example.com/disk"
        );
    }
}
