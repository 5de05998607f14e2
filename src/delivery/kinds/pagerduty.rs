//! `kind: pagerduty`: the Events API v2 (<https://developer.pagerduty.com/docs/send-alert-event>),
//! `POST https://events.pagerduty.com/v2/enqueue` (a `url` in the config replaces it).
//! `incident.created` and `incident.updated` send `trigger` (a trigger with the same
//! `dedup_key` updates the open alert), `incident.acknowledged` sends `acknowledge`,
//! `incident.resolved` sends `resolve`. The dedup key is the incident's, cut to 255 bytes
//! (with a hash when longer); the summary is cut to 1024 characters; severities map one to one
//! (critical, error, warning, info). A `ping` sends a trigger and its resolve.

use actix_web::http::Method;
use serde_json::{json, Value};

use super::{body_or_template, bounded_key, title, truncate, Exchange, OutboundRequest, Steps};
use crate::config::types::Secret;
use crate::delivery::endpoint::EndpointSpec;
use crate::model::{Event, EventType};

/// Where events go when the endpoint sets no `url`.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The `dedup_key` of an incident.
pub fn dedup_key(event: &Event) -> String {
    if event.kind == EventType::Ping {
        return bounded_key(&format!("switchyard-ping-{}", event.id), 255);
    }
    bounded_key(&event.incident.dedup_key, 255)
}

/// The event body for `action` (`trigger`, `acknowledge` or `resolve`).
pub fn body(event: &Event, routing_key: &Secret, action: &str) -> Value {
    let key = dedup_key(event);
    if action != "trigger" {
        return json!({
            "routing_key": routing_key.expose(),
            "event_action": action,
            "dedup_key": key,
        });
    }
    let inc = &event.incident;
    let mut details = serde_json::Map::new();
    details.insert("incident_id".into(), json!(inc.id));
    details.insert("switchyard_event".into(), json!(event.kind.as_str()));
    details.insert("status".into(), json!(inc.status.as_str()));
    details.insert("occurrences".into(), json!(inc.occurrences));
    if !inc.description.is_empty() {
        details.insert("description".into(), json!(inc.description));
    }
    details.insert("labels".into(), json!(inc.labels));
    if !inc.annotations.is_empty() {
        details.insert("annotations".into(), json!(inc.annotations));
    }
    if let Some(c) = &event.changes {
        details.insert("changes".into(), json!(c));
    }
    let mut payload = json!({
        "summary": truncate(title(event), 1024),
        "source": truncate(&event.source.name, 255),
        "severity": inc.severity.as_str(),
        "timestamp": inc.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "custom_details": details,
    });
    for (field, label) in [
        ("component", "service"),
        ("group", "job"),
        ("class", "alertname"),
    ] {
        if let Some(v) = inc.labels.get(label).filter(|v| !v.is_empty()) {
            payload[field] = json!(truncate(v, 255));
        }
    }
    let links: Vec<Value> = inc
        .links
        .iter()
        .map(|l| json!({"href": l.url, "text": if l.label.is_empty() { &l.url } else { &l.label }}))
        .collect();
    json!({
        "routing_key": routing_key.expose(),
        "event_action": "trigger",
        "dedup_key": key,
        "payload": payload,
        "client": "switchyard",
        "links": links,
    })
}

async fn request(
    spec: &EndpointSpec,
    event: &Event,
    key: &Secret,
    action: &str,
) -> Result<OutboundRequest, Exchange> {
    let bytes = body_or_template(spec, event, || body(event, key, action))
        .await
        .map_err(|e| Exchange::fatal(e, None, 0))?;
    Ok(OutboundRequest {
        method: Method::POST,
        url: spec.url.clone(),
        headers: Vec::new(),
        body: Some(bytes),
    })
}

pub(crate) async fn deliver(
    steps: &mut Steps<'_>,
    spec: &EndpointSpec,
    key: &Secret,
    event: &Event,
) -> Result<(), Exchange> {
    let actions: &[&str] = match event.kind {
        // A group notification arrives here as its incident's event (`kinds::as_incident`).
        // A reminder triggers again: PagerDuty keeps one alert per dedup_key.
        EventType::Created
        | EventType::Updated
        | EventType::GroupNotification
        | EventType::Reminder => &["trigger"],
        EventType::Acknowledged => &["acknowledge"],
        EventType::Resolved => &["resolve"],
        EventType::Ping => &["trigger", "resolve"],
        EventType::DeliveryDead | EventType::EndpointDisabled => &[],
    };
    for action in actions {
        let req = request(spec, event, key, action).await?;
        steps.send(req).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kinds::tests::event;

    #[test]
    fn trigger_follows_the_events_v2_schema() {
        let key = Secret::new("R0UTING");
        let v = body(&event(EventType::Created), &key, "trigger");
        assert_eq!(v["routing_key"], "R0UTING");
        assert_eq!(v["event_action"], "trigger");
        assert_eq!(v["dedup_key"], "fp-abc");
        let p = &v["payload"];
        assert_eq!(p["summary"], "Disk full on db-1");
        assert_eq!(p["source"], "prometheus");
        assert_eq!(p["severity"], "critical");
        assert_eq!(p["timestamp"], "2026-11-22T10:30:00Z");
        assert_eq!(p["class"], "DiskFull");
        assert_eq!(p["custom_details"]["labels"]["team"], "ops");
        assert_eq!(
            v["links"][0],
            json!({"href": "https://runbooks.example.com/disk", "text": "Runbook"})
        );
        for sev in ["critical", "error", "warning", "info"] {
            let mut e = event(EventType::Created);
            e.incident.severity = sev.parse().unwrap();
            assert_eq!(body(&e, &key, "trigger")["payload"]["severity"], sev);
        }
    }

    #[test]
    fn acknowledge_and_resolve_carry_only_the_key() {
        let key = Secret::new("R0UTING");
        assert_eq!(
            body(&event(EventType::Resolved), &key, "resolve"),
            json!({"routing_key": "R0UTING", "event_action": "resolve", "dedup_key": "fp-abc"})
        );
    }

    #[test]
    fn limits_are_kept() {
        let key = Secret::new("k");
        let mut e = event(EventType::Created);
        e.incident.title = "s".repeat(5000);
        e.incident.dedup_key = "d".repeat(1000);
        let v = body(&e, &key, "trigger");
        assert_eq!(
            v["payload"]["summary"].as_str().unwrap().chars().count(),
            1024
        );
        assert_eq!(v["dedup_key"].as_str().unwrap().len(), 255);
    }
}
