//! The Uptime Kuma adapter plugin (`plugin: uptime-kuma`).
//!
//! Uptime Kuma's "Webhook" notification (body preset `application/json`) POSTs
//! `{heartbeat, monitor, msg}`. One request is one alert about one monitor:
//!
//! | `heartbeat.status` | meaning | alert |
//! |---|---|---|
//! | 0 | down | firing, critical, "NAME is down" |
//! | 1 | up | resolved |
//! | 2 | pending (retrying) | firing, warning, "NAME is pending" |
//! | 3 | maintenance | resolved, annotation `maintenance: true` |
//!
//! The dedup key is `monitor.id` (Uptime Kuma sends no per-incident id). The "Test"
//! button sends `heartbeat: null`: no alert. Source config (optional):
//! `config: { base_url: https://kuma.example.com }` adds a link to the monitor's page.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use switchyard_adapter_sdk::{
    export_adapter, Adapter, AdapterError, Alert, Link, Request, Severity, Status,
};

/// The plugin.
pub struct UptimeKuma;

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    heartbeat: Option<Heartbeat>,
    #[serde(default)]
    monitor: Option<Monitor>,
    #[serde(default)]
    msg: Option<String>,
}

#[derive(Deserialize)]
struct Heartbeat {
    #[serde(rename = "monitorID", default)]
    monitor_id: Option<Value>,
    status: i64,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    ping: Option<Value>,
}

#[derive(Deserialize)]
struct Monitor {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize, Default)]
struct Config {
    #[serde(default)]
    base_url: Option<String>,
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// Uptime Kuma's `YYYY-MM-DD HH:MM:SS.mmm` (UTC) as RFC 3339.
fn rfc3339(time: &str) -> Option<String> {
    let (date, clock) = time.trim().split_once(' ')?;
    let ok = date.len() == 10 && clock.len() >= 8 && date.as_bytes().get(4) == Some(&b'-');
    ok.then(|| format!("{date}T{clock}Z"))
}

impl Adapter for UptimeKuma {
    const NAME: &'static str = "uptime-kuma";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn normalize(req: &Request) -> Result<Vec<Alert>, AdapterError> {
        let body: Body = req.json()?;
        let Some(hb) = body.heartbeat else {
            // The "Test" notification: only `msg`.
            return Ok(Vec::new());
        };
        let config: Config = serde_json::from_value(req.config.clone()).unwrap_or_default();
        let monitor = body.monitor;
        let id = monitor
            .as_ref()
            .and_then(|m| m.id.as_ref())
            .or(hb.monitor_id.as_ref())
            .and_then(id_text)
            .ok_or_else(|| {
                AdapterError::InvalidPayload("neither monitor.id nor heartbeat.monitorID".into())
            })?;
        let name = monitor
            .as_ref()
            .and_then(|m| m.name.clone())
            .unwrap_or_else(|| format!("monitor {id}"));

        let mut annotations = BTreeMap::new();
        let (status, severity, state) = match hb.status {
            0 => (Status::Firing, Some(Severity::Critical), "down"),
            1 => (Status::Resolved, None, "up"),
            2 => (Status::Firing, Some(Severity::Warning), "pending"),
            3 => {
                annotations.insert("maintenance".to_string(), "true".to_string());
                (Status::Resolved, None, "under maintenance")
            }
            other => {
                return Err(AdapterError::InvalidPayload(format!(
                    "heartbeat.status {other} (expected 0 down, 1 up, 2 pending, 3 maintenance)"
                )))
            }
        };
        if let Some(m) = &body.msg {
            annotations.insert("message".to_string(), m.clone());
        }
        if let Some(p) = hb.ping.as_ref().and_then(id_text) {
            annotations.insert("ping_ms".to_string(), p);
        }

        let mut labels = BTreeMap::new();
        labels.insert("monitor".to_string(), name.clone());
        let mut links = Vec::new();
        if let Some(m) = &monitor {
            if let Some(kind) = &m.kind {
                labels.insert("monitor_type".to_string(), kind.clone());
            }
            for tag in &m.tags {
                labels.insert(tag.name.clone(), tag.value.clone().unwrap_or_default());
            }
            let target = m.url.as_deref().filter(|u| u.starts_with("http"));
            if let Some(url) = target {
                links.push(Link {
                    label: "Monitored URL".into(),
                    url: url.into(),
                });
            }
            if let Some(host) = m.hostname.as_deref().filter(|h| !h.is_empty()) {
                labels.insert("hostname".to_string(), host.to_string());
            }
        }
        if let Some(base) = config.base_url.as_deref().map(|b| b.trim_end_matches('/')) {
            links.push(Link {
                label: "Uptime Kuma".into(),
                url: format!("{base}/dashboard/{id}"),
            });
        }

        let mut alert = Alert::new(id, status, format!("{name} is {state}"));
        alert.severity = severity;
        alert.description = hb.msg.unwrap_or_default();
        alert.labels = labels;
        alert.annotations = annotations;
        alert.links = links;
        let at = hb.time.as_deref().and_then(rfc3339);
        if status == Status::Firing {
            alert.started_at = at;
        } else {
            alert.ended_at = at;
        }
        Ok(vec![alert])
    }
}

export_adapter!(UptimeKuma);

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../../tests/fixtures/payloads/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    fn run(body: String, config: Value) -> Result<Vec<Alert>, AdapterError> {
        UptimeKuma::normalize(&Request {
            source: "kuma".into(),
            headers: BTreeMap::new(),
            body,
            config,
        })
    }

    #[test]
    fn down_fires_critical_keyed_by_monitor_id() {
        let alerts = run(
            fixture("uptimekuma-webhook-down.json"),
            serde_json::json!({"base_url": "https://kuma.example.com/"}),
        )
        .unwrap();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.dedup_key, "89");
        assert_eq!(a.status, Status::Firing);
        assert_eq!(a.severity, Some(Severity::Critical));
        assert_eq!(a.title, "test is down");
        assert_eq!(a.description, "getaddrinfo ENOTFOUND exampleasdsda.com");
        assert_eq!(a.labels["monitor"], "test");
        assert_eq!(a.labels["monitor_type"], "http");
        assert_eq!(a.started_at.as_deref(), Some("2023-07-31T18:57:44.037Z"));
        assert_eq!(
            a.links,
            vec![
                Link {
                    label: "Monitored URL".into(),
                    url: "https://exampleasdsda.com".into()
                },
                Link {
                    label: "Uptime Kuma".into(),
                    url: "https://kuma.example.com/dashboard/89".into()
                }
            ]
        );
    }

    #[test]
    fn up_resolves_the_same_key() {
        let a = &run(fixture("uptimekuma-webhook-up.json"), Value::Null).unwrap()[0];
        assert_eq!(a.dedup_key, "89");
        assert_eq!(a.status, Status::Resolved);
        assert_eq!(a.annotations["ping_ms"], "55");
        assert_eq!(a.ended_at.as_deref(), Some("2023-07-31T18:56:57.151Z"));
    }

    #[test]
    fn pending_maintenance_test_and_bad_bodies() {
        let body = |s: i64| {
            format!(r#"{{"heartbeat":{{"monitorID":7,"status":{s}}},"monitor":null,"msg":"m"}}"#)
        };
        let p = &run(body(2), Value::Null).unwrap()[0];
        assert_eq!(
            (p.status, p.severity, p.dedup_key.as_str()),
            (Status::Firing, Some(Severity::Warning), "7")
        );
        let m = &run(body(3), Value::Null).unwrap()[0];
        assert_eq!(m.status, Status::Resolved);
        assert_eq!(m.annotations["maintenance"], "true");
        assert!(matches!(
            run(body(9), Value::Null),
            Err(AdapterError::InvalidPayload(_))
        ));
        let test = r#"{"heartbeat":null,"monitor":null,"msg":"Uptime Kuma Webhook Testing"}"#;
        assert_eq!(run(test.into(), Value::Null).unwrap(), vec![]);
        assert!(matches!(
            run("{".into(), Value::Null),
            Err(AdapterError::InvalidPayload(_))
        ));
    }
}
