//! Every kind within its service's documented limits: an event with a 500-character title and
//! 60 labels (values of 300 characters) goes through each kind's `deliver`, and each request is
//! checked against the limits the kind's module documents; what is cut carries a visible
//! marker (`…`, or `… and N more`), and no delivery fails for it.

use serde_json::Value;

use super::tests::{attempt, event, Script};
use super::{deliver, email, OutboundRequest};
use crate::config::types::EndpointConfig;
use crate::delivery::endpoint::EndpointSpec;
use crate::model::delivery::Verdict;
use crate::model::{Event, EventType};
use crate::store::refs::MemoryRefs;

/// The 500-character title and 60 long labels.
fn big(kind: EventType) -> Event {
    let mut e = event(kind);
    e.incident.title = format!("{}END", "T".repeat(497));
    e.incident.labels = (0..60)
        .map(|i| (format!("label_{i:02}"), format!("v{i}-{}", "x".repeat(300))))
        .collect();
    e.incident.description = "d".repeat(20_000);
    e
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// Every string in a JSON value, with its length.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fn cut(v: &Value, max: usize, what: &str) {
    assert!(chars(v) <= max, "{what}: {} > {max}", chars(v));
    assert!(
        v.as_str().unwrap().ends_with('…'),
        "{what} has no marker: {v}"
    );
}

async fn sent(
    yaml: &str,
    kind: EventType,
    answers: &[(u16, &'static str)],
) -> Vec<OutboundRequest> {
    let cfg: EndpointConfig = serde_yaml::from_str(yaml).unwrap();
    let spec = EndpointSpec::build(&cfg).unwrap();
    let refs = MemoryRefs::default();
    let t = Script::answering(answers);
    let e = big(kind);
    let o = deliver(attempt(&spec, &e, &refs, &t)).await;
    assert_eq!(o.verdict, Verdict::Success, "{yaml}: {:?}", o.error);
    let sent = t.sent.borrow().clone();
    sent
}

fn slack_blocks(v: &Value) {
    let blocks = v["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    cut(&blocks[0]["text"]["text"], 150, "slack header");
    let mut labels_seen = false;
    for b in blocks {
        for f in b["fields"].as_array().into_iter().flatten() {
            assert!(chars(&f["text"]) <= 2000);
        }
        assert!(b["fields"].as_array().map_or(0, Vec::len) <= 10);
        assert!(chars(&b["text"]["text"]) <= 3000);
        for e in b["elements"].as_array().into_iter().flatten() {
            assert!(chars(&e["text"]) <= 3000);
            if let Some(t) = e["text"].as_str().filter(|t| t.contains("label_00")) {
                assert_counted(t);
                labels_seen = true;
            }
        }
    }
    assert!(labels_seen, "the labels are cut with a marker");
    assert!(chars(&v["text"]) <= 3000);
}

#[actix_rt::test]
async fn every_kind_keeps_its_limits_with_a_500_character_title_and_60_labels() {
    let created = EventType::Created;
    // webhook: no service limit; the receiver gets everything.
    let body: Value =
        serde_json::from_slice(&crate::delivery::webhook::body(&big(created), None)).unwrap();
    assert_eq!(chars(&body["data"]["incident"]["title"]), 500);
    assert_eq!(
        body["data"]["incident"]["labels"]
            .as_object()
            .unwrap()
            .len(),
        60
    );

    // slack, incoming webhook and bot.
    let s = sent(
        "{name: s, kind: slack, url: 'https://hooks.slack.com/services/x'}",
        created,
        &[],
    )
    .await;
    slack_blocks(&s[0].body_json());
    let s = sent(
        "{name: s, kind: slack, token: xoxb-1, channel: C1}",
        created,
        &[(200, r#"{"ok":true,"channel":"C1","ts":"1.2"}"#)],
    )
    .await;
    slack_blocks(&s[0].body_json());

    // teams: headline 300, 20 label facts then a count.
    let t = sent(
        "{name: t, kind: teams, url: 'https://x.logic.azure.com/workflows/1'}",
        created,
        &[],
    )
    .await;
    let card = &t[0].body_json()["attachments"][0]["content"];
    cut(&card["body"][0]["text"], 300, "teams headline");
    let facts = card["body"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "FactSet")
        .unwrap()["facts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(facts.last().unwrap()["value"], "… and 40 more");
    assert!(
        t[0].body.as_ref().unwrap().len() < 28 * 1024,
        "Teams' 28 KB"
    );

    // discord: title 256, 25 fields, 6000 characters in all.
    let d = sent(
        "{name: d, kind: discord, url: 'https://discord.com/api/webhooks/1/x'}",
        created,
        &[],
    )
    .await;
    let embed = &d[0].body_json()["embeds"][0];
    cut(&embed["title"], 256, "discord title");
    assert!(embed["fields"].as_array().unwrap().len() <= 25);
    let mut all = Vec::new();
    strings(&embed["title"], &mut all);
    strings(&embed["description"], &mut all);
    strings(&embed["footer"], &mut all);
    for f in embed["fields"].as_array().unwrap() {
        strings(&f["name"], &mut all);
        strings(&f["value"], &mut all);
    }
    assert!(all.iter().map(|s| s.chars().count()).sum::<usize>() <= 6000);
    assert_counted(all.iter().find(|s| s.starts_with("label_00")).unwrap());

    // pagerduty: summary 1024 (the title fits), dedup key 255.
    let p = sent("{name: p, kind: pagerduty, routing_key: k}", created, &[]).await;
    let v = p[0].body_json();
    assert_eq!(chars(&v["payload"]["summary"]), 500);
    assert!(v["dedup_key"].as_str().unwrap().len() <= 255);

    // opsgenie: message 130, 20 tags of 50, details 8000 with a count.
    let o = sent("{name: o, kind: opsgenie, api_key: k}", created, &[]).await;
    let v = o[0].body_json();
    cut(&v["message"], 130, "opsgenie message");
    let tags = v["tags"].as_array().unwrap();
    assert!(tags.len() <= 20 && tags.iter().all(|t| chars(t) <= 50));
    let details = v["details"].as_object().unwrap();
    let size: usize = details
        .iter()
        .map(|(k, v)| k.chars().count() + chars(v))
        .sum();
    assert!(size <= 8000, "{size}");
    assert!(details["…"].as_str().unwrap().starts_with("… and "));
    assert!(chars(&v["description"]) <= 15000);

    // jira: summary 255, description within 32,767 characters with a count of labels.
    let j = sent(
        "{name: j, kind: jira, url: 'https://a.atlassian.net', username: u, token: t, project: OPS}",
        created,
        &[(201, r#"{"key":"OPS-1"}"#)],
    )
    .await;
    let v = j[0].body_json();
    cut(&v["fields"]["summary"], 255, "jira summary");
    let mut texts = Vec::new();
    strings(&v["fields"]["description"], &mut texts);
    let text_len: usize = texts.iter().map(|s| s.chars().count()).sum();
    assert!(text_len <= 32_767, "{text_len}");
    assert!(texts.iter().any(|t| t == "… and 10 more"));

    // servicenow: short description 160, description 4000.
    let n = sent(
        "{name: n, kind: servicenow, url: 'https://a.service-now.com', username: u, token: t}",
        created,
        &[(201, r#"{"result":{"sys_id":"abc"}}"#)],
    )
    .await;
    let v = n[0].body_json();
    cut(&v["short_description"], 160, "servicenow short description");
    cut(&v["description"], 4000, "servicenow description");

    // google chat: text 4096, header 200, widgets 2000, 20 labels then a count.
    let g = sent("{name: g, kind: google_chat, url: 'https://chat.googleapis.com/v1/spaces/S/messages?key=k'}", created, &[]).await;
    let v = g[0].body_json();
    assert!(chars(&v["text"]) <= 4096);
    let card = &v["cardsV2"][0]["card"];
    cut(&card["header"]["title"], 200, "google chat title");
    let mut texts = Vec::new();
    strings(&card["sections"], &mut texts);
    assert!(texts.iter().all(|t| t.chars().count() <= 2000));
    let labels = texts.iter().find(|t| t.starts_with("label_00")).unwrap();
    assert_counted(labels);

    // telegram: 4096 characters as shown.
    let tg = sent(
        "{name: tg, kind: telegram, token: '1:A', channel: '-1'}",
        created,
        &[(200, r#"{"ok":true,"result":{"message_id":1}}"#)],
    )
    .await;
    let html = tg[0].body_json()["text"].as_str().unwrap().to_string();
    let shown = strip_html(&html);
    assert!(shown.chars().count() <= 4096, "{}", shown.chars().count());
    assert!(shown.contains("… and 45 more") && shown.contains("TTT…"));

    // mattermost: the whole post within 16,383 characters.
    let m = sent(
        "{name: m, kind: mattermost, url: 'https://mm.example.com/hooks/x'}",
        created,
        &[],
    )
    .await;
    let v = m[0].body_json();
    let mut texts = Vec::new();
    strings(&v, &mut texts);
    let total: usize = texts.iter().map(|s| s.chars().count()).sum();
    assert!(total <= 16_383, "{total}");
    assert!(v.to_string().contains("… and 40 more"));

    // email: subject 200, 50 labels then a count, in both parts.
    let (subject, text, html) = email::render(&big(created));
    assert!(subject.chars().count() <= email::MAX_SUBJECT && subject.ends_with('…'));
    assert!(text.contains("… and 10 more") && html.contains("… and 10 more"));
    assert!(text.contains(&format!("{}…", "d".repeat(100))));
}

/// A list cut between items: the labels shown and the `… and N more` make the 60.
fn assert_counted(list: &str) {
    let shown = list.matches("label_").count();
    let more: usize = list
        .rsplit_once("… and ")
        .and_then(|(_, n)| n.strip_suffix(" more"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {list}"));
    assert_eq!(shown + more, 60, "{list}");
}

/// Telegram's text as shown: tags dropped, the four entities read.
fn strip_html(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[actix_rt::test]
async fn the_new_kinds_render_a_group_notification_as_one_incident() {
    // `kinds::deliver` turns a group.notification into its group's incident for every kind
    // but webhook: the new kinds thread and reply per group like per incident.
    let mut e = event(EventType::Created);
    e.kind = EventType::GroupNotification;
    e.incident.id = "grp_1".into();
    e.group = Some(std::sync::Arc::new(crate::model::group::GroupNotice::new(
        "r:{team=\"ops\"}".into(),
        "r".into(),
        Default::default(),
        vec![e.incident.clone()],
        vec![e.incident.id.clone()],
        true,
    )));
    let refs = MemoryRefs::default();
    for yaml in [
        "{name: s, kind: slack, token: xoxb-1, channel: C1}",
        "{name: g, kind: google_chat, url: 'https://chat.googleapis.com/v1/spaces/S/messages'}",
        "{name: tg, kind: telegram, token: '1:A', channel: '-1'}",
        "{name: m, kind: mattermost, url: 'https://mm.example.com/hooks/x'}",
    ] {
        let cfg: EndpointConfig = serde_yaml::from_str(yaml).unwrap();
        let spec = EndpointSpec::build(&cfg).unwrap();
        let t = Script::answering(&[(
            200,
            r#"{"ok":true,"channel":"C1","ts":"1.2","result":{"message_id":5}}"#,
        )]);
        let o = deliver(attempt(&spec, &e, &refs, &t)).await;
        assert_eq!(o.verdict, Verdict::Success, "{yaml}");
        let body = t.sent.borrow()[0].body_json().to_string();
        assert!(body.contains("Disk full on db-1"), "{yaml}: {body}");
    }
}
