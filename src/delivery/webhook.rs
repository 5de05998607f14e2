//! `kind: webhook`: the JSON body every webhook endpoint receives, and its request with the
//! endpoint's signing headers (`delivery::signer`).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

use actix_web::http::Method;

use super::endpoint::EndpointSpec;
use super::kinds::OutboundRequest;
use crate::model::delivery::DeadNotice;
use crate::model::group::{GroupCounts, GroupNotice, GroupStatus};
use crate::model::{Changes, Event, Incident, Link};

fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn rfc3339_secs<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn rfc3339_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    /// The delivery's id: the same on every retry of it, a new one on a replay (a receiver
    /// that deduplicates on it still gets a replay). None for a test ping.
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(serialize_with = "rfc3339_secs")]
    timestamp: &'a DateTime<Utc>,
    source: SourceBody<'a>,
    data: Data<'a>,
}

#[derive(Serialize)]
struct SourceBody<'a> {
    name: &'a str,
    kind: &'a str,
}

#[derive(Serialize)]
struct Data<'a> {
    incident: IncidentBody<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<&'a Changes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<GroupBody<'a>>,
    /// A `delivery.dead` / `endpoint.disabled` notice's delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<&'a DeadNotice>,
}

/// `data.group` of a `group.notification`: its incidents as the incident objects of the
/// other events.
#[derive(Serialize)]
struct GroupBody<'a> {
    key: &'a str,
    route: &'a str,
    labels: &'a BTreeMap<String, String>,
    status: GroupStatus,
    incidents: Vec<IncidentBody<'a>>,
    changed: &'a [String],
    counts: GroupCounts,
}

impl<'a> From<&'a GroupNotice> for GroupBody<'a> {
    fn from(g: &'a GroupNotice) -> Self {
        GroupBody {
            key: &g.key,
            route: &g.route,
            labels: &g.labels,
            status: g.status,
            incidents: g.incidents.iter().map(IncidentBody::from).collect(),
            changed: &g.changed,
            counts: g.counts,
        }
    }
}

#[derive(Serialize)]
struct IncidentBody<'a> {
    id: &'a str,
    dedup_key: &'a str,
    status: &'a str,
    severity: &'a str,
    title: &'a str,
    description: &'a str,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    links: &'a [Link],
    #[serde(serialize_with = "rfc3339")]
    started_at: &'a DateTime<Utc>,
    #[serde(serialize_with = "rfc3339_opt")]
    resolved_at: &'a Option<DateTime<Utc>>,
    occurrences: u64,
}

impl<'a> From<&'a Incident> for IncidentBody<'a> {
    fn from(i: &'a Incident) -> Self {
        IncidentBody {
            id: &i.id,
            dedup_key: &i.dedup_key,
            status: i.status.as_str(),
            severity: i.severity.as_str(),
            title: &i.title,
            description: &i.description,
            labels: &i.labels,
            annotations: &i.annotations,
            links: &i.links,
            started_at: &i.started_at,
            resolved_at: &i.resolved_at,
            occurrences: i.occurrences,
        }
    }
}

/// The webhook body of an event, exactly as the spec gives it.
pub fn body(event: &Event, delivery_id: Option<&str>) -> Vec<u8> {
    let body = Body {
        id: &event.id,
        delivery_id,
        kind: event.kind.as_str(),
        timestamp: &event.timestamp,
        source: SourceBody {
            name: &event.source.name,
            kind: &event.source.kind,
        },
        data: Data {
            incident: IncidentBody::from(&event.incident),
            changes: event.changes.as_ref(),
            group: event.group.as_deref().map(GroupBody::from),
            delivery: event.notice.as_deref(),
        },
    };
    // Serializing plain structs of strings and maps cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The request of one attempt: `body` POSTed with the endpoint's signing headers.
/// `timestamp` is this attempt's, in unix seconds.
pub fn request(
    spec: &EndpointSpec,
    event: &Event,
    body: bytes::Bytes,
    timestamp: i64,
) -> OutboundRequest {
    OutboundRequest {
        method: Method::POST,
        url: spec.url.clone(),
        headers: spec
            .signer
            .headers(&event.id, event.kind.as_str(), timestamp, &body),
        body: Some(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, EventType, IncidentStatus, Labels, Severity, SourceRef};
    use crate::signing::standard_webhooks_key;

    fn event() -> Event {
        let t = DateTime::parse_from_rfc3339("2026-11-22T10:30:00Z")
            .unwrap()
            .to_utc();
        let mut changes = Changes::new();
        changes.insert(
            "severity".into(),
            Change {
                from: "warning".into(),
                to: "critical".into(),
            },
        );
        Event {
            id: "evt_1".into(),
            kind: EventType::Updated,
            timestamp: t,
            source: SourceRef {
                name: "prometheus".into(),
                kind: "alertmanager".into(),
            },
            incident: Incident {
                id: "inc_1".into(),
                dedup_key: "abc".into(),
                status: IncidentStatus::Triggered,
                severity: Severity::Critical,
                title: "Disk full".into(),
                description: "d".into(),
                labels: Labels::from([("team".to_string(), "ops".to_string())]),
                annotations: Labels::new(),
                links: vec![],
                started_at: t,
                resolved_at: None,
                last_seen_at: t,
                occurrences: 3,
                source: None,
            },
            changes: Some(changes),
            group: None,
            notice: None,
        }
    }

    #[test]
    fn body_has_exactly_the_spec_shape() {
        let v: serde_json::Value = serde_json::from_slice(&body(&event(), Some("dlv_1"))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": "evt_1", "delivery_id": "dlv_1", "type": "incident.updated", "timestamp": "2026-11-22T10:30:00Z",
                "source": {"name": "prometheus", "kind": "alertmanager"},
                "data": {"incident": {"id": "inc_1", "dedup_key": "abc", "status": "triggered",
                    "severity": "critical", "title": "Disk full", "description": "d",
                    "labels": {"team": "ops"}, "annotations": {}, "links": [],
                    "started_at": "2026-11-22T10:30:00Z", "resolved_at": null, "occurrences": 3},
                    "changes": {"severity": {"from": "warning", "to": "critical"}}}
            })
        );
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The Standard Webhooks specification's published test vector.
        let secret = crate::config::types::Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let mut spec = EndpointSpec::for_tests("https://x");
        spec.signer = crate::delivery::signer::Signer::build(Some(&secret), None, None).unwrap();
        let mut e = event();
        e.id = "msg_p5jXN8AQM9LWM0D4loKWxJek".into();
        let body = bytes::Bytes::from_static(br#"{"test": 2432232314}"#);
        let req = request(&spec, &e, body.clone(), 1614265330);
        let header = |n: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            header("webhook-signature").as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        let key = standard_webhooks_key(secret.expose());
        assert_eq!(
            header("x-webhook-signature"),
            Some(format!(
                "sha256={}",
                crate::signing::hmac_sha256_hex(&key, &body)
            ))
        );
        assert_eq!(
            header("webhook-id").as_deref(),
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
        );
        assert_eq!(
            header("x-webhook-event").as_deref(),
            Some("incident.updated")
        );
    }
}
