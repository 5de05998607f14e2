//! `kind: opsgenie`: the Alert API (<https://docs.opsgenie.com/docs/alert-api>), with
//! `Authorization: GenieKey <api_key>`. The base is `https://api.opsgenie.com`
//! (`region: eu`: `https://api.eu.opsgenie.com`; a `url` replaces either). The alert's
//! `alias` is the incident's dedup key, so Opsgenie deduplicates on it and the later calls
//! address it with `identifierType=alias`:
//! created: `POST /v2/alerts`; updated: `PUT .../priority` when the severity changed and
//! `POST .../notes`; acknowledged: `POST .../acknowledge`; resolved: `POST .../close`.
//! Priorities: critical P1, error P2, warning P3, info P5.
//! Limits kept: message 130, alias 512, description 15000, 20 tags of 50, source 100, details
//! 8000 characters (labels and annotations that do not fit are counted under `…`).

use actix_web::http::header::AUTHORIZATION;
use actix_web::http::Method;
use serde_json::{json, Value};

use super::{
    base, body_or_template, bounded_key, changes_text, encode_component, omitted, secret_header,
    title, truncate, Exchange, OutboundRequest, Steps,
};
use crate::config::types::Secret;
use crate::delivery::endpoint::EndpointSpec;
use crate::model::{Event, EventType, Severity};

/// The API base for `region: us` (the default).
pub const DEFAULT_US_URL: &str = "https://api.opsgenie.com";
/// The API base for `region: eu`.
pub const DEFAULT_EU_URL: &str = "https://api.eu.opsgenie.com";

pub fn priority(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "P1",
        Severity::Error => "P2",
        Severity::Warning => "P3",
        Severity::Info => "P5",
    }
}

fn alias(event: &Event) -> String {
    if event.kind == EventType::Ping {
        return format!("switchyard-ping-{}", event.id);
    }
    bounded_key(&event.incident.dedup_key, 512)
}

/// Opsgenie's limit on an alert's details (keys and values).
pub const MAX_DETAILS: usize = 8000;

/// `POST /v2/alerts` body.
pub fn create_body(event: &Event) -> Value {
    let inc = &event.incident;
    let tags: Vec<String> = inc
        .labels
        .iter()
        .map(|(k, v)| truncate(&format!("{k}:{v}"), 50))
        .take(20)
        .collect();
    let mut details = serde_json::Map::new();
    details.insert("incident_id".into(), json!(inc.id));
    // Opsgenie keeps at most 8000 characters of details (keys and values): what does not fit
    // is counted under `…`.
    let mut room = MAX_DETAILS.saturating_sub(inc.id.len() + "incident_id".len() + 40);
    let (mut shown, total) = (0, inc.labels.len() + inc.annotations.len());
    for (k, v) in inc.labels.iter().chain(inc.annotations.iter()) {
        let (k, v) = (truncate(k, 100), truncate(v, 1000));
        let cost = k.chars().count() + v.chars().count();
        if cost > room {
            break;
        }
        room -= cost;
        details.insert(k, json!(v));
        shown += 1;
    }
    if let Some(more) = omitted(total, shown) {
        details.insert("…".into(), json!(more));
    }
    let mut description = inc.description.clone();
    for l in &inc.links {
        description.push_str(&format!("\n{}: {}", l.label, l.url));
    }
    json!({
        "message": truncate(title(event), 130),
        "alias": alias(event),
        "description": truncate(description.trim(), 15000),
        "tags": tags,
        "details": details,
        "entity": truncate(inc.labels.get("instance").map(String::as_str).unwrap_or(""), 512),
        "source": truncate(&format!("switchyard/{}", event.source.name), 100),
        "priority": priority(inc.severity),
    })
}

/// The requests for an event, in order.
pub fn requests(base_url: &str, api_key: &Secret, event: &Event) -> Vec<OutboundRequest> {
    let b = base(base_url);
    let alert = format!("{b}/v2/alerts/{}", encode_component(&alias(event)));
    let q = "identifierType=alias";
    let action = |what: &str, note: String| {
        OutboundRequest::json(
            Method::POST,
            format!("{alert}/{what}?{q}"),
            &json!({"source": "switchyard", "user": "switchyard", "note": truncate(&note, 25000)}),
        )
    };
    let mut out = match event.kind {
        EventType::Created => vec![OutboundRequest::json(
            Method::POST,
            format!("{b}/v2/alerts"),
            &create_body(event),
        )],
        EventType::Updated => {
            let mut v = Vec::new();
            if event
                .changes
                .as_ref()
                .is_some_and(|c| c.contains_key("severity"))
            {
                v.push(OutboundRequest::json(
                    Method::PUT,
                    format!("{alert}/priority?{q}"),
                    &json!({"priority": priority(event.incident.severity)}),
                ));
            }
            v.push(action(
                "notes",
                format!("Updated: {}", changes_text(event).unwrap_or_default()),
            ));
            v
        }
        EventType::Acknowledged => vec![action("acknowledge", "Acknowledged in switchyard".into())],
        // A group notification arrives here as its incident's event (`kinds::as_incident`).
        EventType::GroupNotification => vec![action("notes", "Group notified".into())],
        EventType::Reminder => vec![action("notes", "Reminder: still open".into())],
        EventType::Resolved => vec![action(
            "close",
            format!("Resolved ({} reported it resolved)", event.source.name),
        )],
        EventType::Ping => vec![
            OutboundRequest::json(Method::POST, format!("{b}/v2/alerts"), &create_body(event)),
            action("close", "switchyard test alert".into()),
        ],
        EventType::DeliveryDead | EventType::EndpointDisabled => Vec::new(),
    };
    for r in &mut out {
        r.headers
            .push((AUTHORIZATION, secret_header("GenieKey ", api_key)));
    }
    out
}

pub(crate) async fn deliver(
    steps: &mut Steps<'_>,
    spec: &EndpointSpec,
    api_key: &Secret,
    event: &Event,
) -> Result<(), Exchange> {
    for mut req in requests(&spec.url, api_key, event) {
        // A template replaces the create call's body only.
        if spec.template.is_some() && req.url.ends_with("/v2/alerts") {
            req.body = Some(
                body_or_template(spec, event, || Value::Null)
                    .await
                    .map_err(|e| Exchange::fatal(e, None, 0))?,
            );
        }
        steps.send(req).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kinds::tests::event;

    #[test]
    fn create_alert_follows_the_alert_api() {
        let key = Secret::new("g3nie");
        let reqs = requests(
            "https://api.opsgenie.com/",
            &key,
            &event(EventType::Created),
        );
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].method, Method::POST);
        assert_eq!(reqs[0].url, "https://api.opsgenie.com/v2/alerts");
        assert_eq!(reqs[0].headers[0].1.to_str().unwrap(), "GenieKey g3nie");
        assert!(reqs[0].headers[0].1.is_sensitive());
        let b = reqs[0].body_json();
        assert_eq!(b["message"], "Disk full on db-1");
        assert_eq!(b["alias"], "fp-abc");
        assert_eq!(b["priority"], "P1");
        assert_eq!(b["tags"], json!(["alertname:DiskFull", "team:ops"]));
        assert_eq!(b["details"]["team"], "ops");
        assert_eq!(b["source"], "switchyard/prometheus");
    }

    #[test]
    fn close_and_acknowledge_address_the_alias() {
        let key = Secret::new("g3nie");
        let mut e = event(EventType::Resolved);
        e.incident.dedup_key = "a b/c".into();
        let r = requests(DEFAULT_EU_URL, &key, &e);
        assert_eq!(
            r[0].url,
            "https://api.eu.opsgenie.com/v2/alerts/a%20b%2Fc/close?identifierType=alias"
        );
        assert_eq!(r[0].body_json()["source"], "switchyard");
        let a = requests(DEFAULT_US_URL, &key, &event(EventType::Acknowledged));
        assert!(a[0]
            .url
            .ends_with("/v2/alerts/fp-abc/acknowledge?identifierType=alias"));
        let u = requests(DEFAULT_US_URL, &key, &event(EventType::Updated));
        assert_eq!(u[0].method, Method::PUT);
        assert_eq!(u[0].body_json(), json!({"priority": "P1"}));
        assert!(u[1].url.ends_with("/notes?identifierType=alias"));
    }

    #[test]
    fn priorities_and_message_limit() {
        assert_eq!(Severity::ALL.map(priority), ["P1", "P2", "P3", "P5"]);
        let mut e = event(EventType::Created);
        e.incident.title = "m".repeat(300);
        assert_eq!(
            create_body(&e)["message"].as_str().unwrap().chars().count(),
            130
        );
    }
}
