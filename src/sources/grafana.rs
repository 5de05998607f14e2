//! The Grafana adapter (`kind: grafana`).
//!
//! It reads both webhook bodies Grafana sends:
//! - **unified alerting** (Grafana 8+, `version: "1"`): an Alertmanager-like group
//!   `{receiver, status, alerts: [...], groupKey, truncatedAlerts, ...}`. Each alert of the
//!   group is its own alert with its own `status`: the group's top-level `status`/`state` only
//!   says `resolved` once *every* alert is, so it never decides. Dedup key: `fingerprint`
//!   (else the Alertmanager fingerprint of the labels). `values` and `valueString` become the
//!   annotations `values` and `value_string`; `generatorURL`, `silenceURL`, `dashboardURL`,
//!   `panelURL`, `imageURL` and the `runbook_url` annotation become links.
//! - **legacy alerting** (Grafana 7 and earlier): one rule, `{ruleId, ruleName, ruleUrl,
//!   state, evalMatches, message, tags, imageUrl}`. `state`: `alerting` and `no_data` fire,
//!   `ok` and `paused` resolve, `pending` carries no alert yet. Dedup key
//!   `legacy:<orgId>:<ruleId>`.
//!
//! Unknown fields are ignored; optional ones may be missing or `null`.

use chrono::{DateTime, Datelike, Utc};
use serde_json::{Map, Value};

use super::{fingerprint, NormalizeError, SourceSpec};
use crate::model::{Alert, AlertStatus, Labels, Link, Severity};

/// Normalizes a Grafana unified or legacy webhook body.
pub fn normalize(spec: &SourceSpec, body: &[u8]) -> Result<Vec<Alert>, NormalizeError> {
    let value: Value = serde_json::from_slice(body).map_err(NormalizeError::from_json)?;
    let Value::Object(obj) = &value else {
        return Err(NormalizeError::Shape(
            "expected a Grafana webhook object (unified `alerts` or legacy `ruleName`/`state`)"
                .into(),
        ));
    };
    match obj.get("alerts") {
        Some(Value::Array(alerts)) => {
            if let Some(n) = obj.get("truncatedAlerts").and_then(Value::as_u64) {
                if n > 0 {
                    tracing::warn!(
                        source = %spec.name,
                        truncated = n,
                        "Grafana truncated this group: {n} alert(s) were not sent (raise max_alerts on the contact point)"
                    );
                }
            }
            alerts
                .iter()
                .enumerate()
                .map(|(i, a)| unified(spec, i, a))
                .collect()
        }
        Some(_) => Err(NormalizeError::Shape("`alerts` must be an array".into())),
        None if obj.contains_key("state") || obj.contains_key("ruleName") => {
            legacy(spec, obj).map(|a| a.into_iter().collect())
        }
        None => Err(NormalizeError::Shape(
            "expected a Grafana webhook: an `alerts` array (unified alerting) or `ruleName` and \
             `state` (legacy alerting)"
                .into(),
        )),
    }
}

/// A non-empty string field.
pub(crate) fn text<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A string, number or boolean field as text.
pub(crate) fn scalar(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The scalar values of an object field as a string map (nested values skipped).
pub(crate) fn string_map(obj: &Map<String, Value>, key: &str) -> Labels {
    let Some(Value::Object(m)) = obj.get(key) else {
        return Labels::new();
    };
    m.keys()
        .filter_map(|k| Some((k.clone(), scalar(m, k)?)))
        .collect()
}

/// RFC 3339; Go's zero time (`0001-01-01T00:00:00Z`) and unreadable values give `None`.
fn time(obj: &Map<String, Value>, key: &str) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(text(obj, key)?).ok()?.to_utc();
    (t.year() > 1).then_some(t)
}

fn push_link(links: &mut Vec<Link>, label: &str, url: Option<&str>) {
    if let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) {
        if !links.iter().any(|l| l.url == url) {
            links.push(Link {
                label: label.into(),
                url: url.into(),
            });
        }
    }
}

fn unified(spec: &SourceSpec, index: usize, a: &Value) -> Result<Alert, NormalizeError> {
    let Value::Object(a) = a else {
        return Err(NormalizeError::Shape(format!(
            "alerts[{index}]: expected an object"
        )));
    };
    let mut labels = string_map(a, "labels");
    let mut annotations = string_map(a, "annotations");
    let dedup_key = text(a, "fingerprint")
        .map(str::to_string)
        .unwrap_or_else(|| fingerprint::fingerprint_hex(&labels));
    let started_at = time(a, "startsAt");
    let ended_at = time(a, "endsAt");
    let status = match text(a, "status") {
        Some(s) if s.eq_ignore_ascii_case("firing") => AlertStatus::Firing,
        Some(s) if s.eq_ignore_ascii_case("resolved") => AlertStatus::Resolved,
        Some(other) => {
            return Err(NormalizeError::Shape(format!(
                "alerts[{index}].status: unknown status `{other}` (expected firing or resolved)"
            )))
        }
        None if ended_at.is_some() => AlertStatus::Resolved,
        None => AlertStatus::Firing,
    };
    let severity = labels
        .get("severity")
        .and_then(|s| Severity::from_word(s))
        .unwrap_or(spec.default_severity);
    let non_empty = |m: &Labels, k: &str| m.get(k).filter(|v| !v.trim().is_empty()).cloned();
    let title = non_empty(&annotations, "summary")
        .or_else(|| non_empty(&labels, "alertname"))
        .unwrap_or_else(|| "Grafana alert".to_string());
    let description = non_empty(&annotations, "description")
        .or_else(|| non_empty(&annotations, "message"))
        .unwrap_or_default();

    if let Some(Value::Object(values)) = a.get("values") {
        let joined = values
            .keys()
            .filter_map(|k| Some(format!("{k}={}", scalar(values, k)?)))
            .collect::<Vec<_>>()
            .join(", ");
        if !joined.is_empty() {
            annotations.insert("values".into(), joined);
        }
    }
    if let Some(vs) = text(a, "valueString") {
        annotations.insert("value_string".into(), vs.to_string());
    }

    let mut links = Vec::new();
    push_link(&mut links, "Source", text(a, "generatorURL"));
    push_link(&mut links, "Dashboard", text(a, "dashboardURL"));
    push_link(&mut links, "Panel", text(a, "panelURL"));
    push_link(&mut links, "Silence", text(a, "silenceURL"));
    push_link(&mut links, "Image", text(a, "imageURL"));
    push_link(
        &mut links,
        "Runbook",
        annotations.get("runbook_url").map(String::as_str),
    );

    spec.add_source_labels(&mut labels);
    Ok(Alert {
        dedup_key,
        status,
        severity,
        title,
        description,
        labels,
        annotations,
        links,
        started_at,
        ended_at,
        expires_at: None,
        source: spec.source_ref(),
    })
}

fn legacy(spec: &SourceSpec, obj: &Map<String, Value>) -> Result<Option<Alert>, NormalizeError> {
    let state = text(obj, "state")
        .ok_or_else(|| NormalizeError::Shape("legacy Grafana alert without `state`".to_string()))?;
    let status = match state.to_ascii_lowercase().as_str() {
        "alerting" | "no_data" => AlertStatus::Firing,
        "ok" | "paused" => AlertStatus::Resolved,
        // The condition holds but not yet for the rule's `for`: nothing to report yet.
        "pending" => return Ok(None),
        other => {
            return Err(NormalizeError::Shape(format!(
                "state: unknown legacy Grafana state `{other}` (expected alerting, ok, no_data, \
                 paused or pending)"
            )))
        }
    };
    let rule_id = scalar(obj, "ruleId").unwrap_or_else(|| "0".into());
    let org_id = scalar(obj, "orgId").unwrap_or_else(|| "0".into());
    let rule_name = text(obj, "ruleName")
        .or_else(|| text(obj, "title"))
        .unwrap_or("Grafana alert")
        .to_string();

    let mut labels = string_map(obj, "tags");
    labels
        .entry("alertname".into())
        .or_insert_with(|| rule_name.clone());
    let severity = labels
        .get("severity")
        .and_then(|s| Severity::from_word(s))
        .unwrap_or(spec.default_severity);

    let mut annotations = Labels::new();
    annotations.insert("state".into(), state.to_ascii_lowercase());
    if let Some(Value::Array(matches)) = obj.get("evalMatches") {
        let joined = matches
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|m| Some(format!("{}={}", text(m, "metric")?, scalar(m, "value")?)))
            .collect::<Vec<_>>()
            .join(", ");
        if !joined.is_empty() {
            annotations.insert("eval_matches".into(), joined);
        }
    }
    let description = text(obj, "message").unwrap_or_default().to_string();
    if !description.is_empty() {
        annotations.insert("message".into(), description.clone());
    }

    let mut links = Vec::new();
    push_link(&mut links, "Rule", text(obj, "ruleUrl"));
    push_link(&mut links, "Image", text(obj, "imageUrl"));

    spec.add_source_labels(&mut labels);
    Ok(Some(Alert {
        dedup_key: format!("legacy:{org_id}:{rule_id}"),
        status,
        severity,
        title: rule_name,
        description,
        labels,
        annotations,
        links,
        started_at: None,
        ended_at: None,
        expires_at: None,
        source: spec.source_ref(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::types::{SourceConfig, SourceKind};
    use crate::sources::test_fixtures::{fixture, source_config};
    use std::collections::BTreeMap;

    fn spec() -> SourceSpec {
        SourceSpec::build(&SourceConfig {
            labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
            severity: Some("error".into()),
            ..source_config("grafana", SourceKind::Grafana)
        })
        .unwrap()
    }

    fn run(name: &str) -> Vec<Alert> {
        spec().normalize(&fixture(name), Utc::now()).unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn link(label: &str, url: &str) -> Link {
        Link {
            label: label.into(),
            url: url.into(),
        }
    }

    /// Every grafana-*.json fixture has a test below.
    const COVERED: [&str; 6] = [
        "grafana-legacy-alerting.json",
        "grafana-legacy-ok.json",
        "grafana-unified-firing-docs.json",
        "grafana-unified-firing-values-v11.json",
        "grafana-unified-mixed-firing-resolved.json",
        "grafana-unified-resolved.json",
    ];

    #[test]
    fn every_grafana_fixture_is_covered() {
        assert_eq!(
            crate::sources::test_fixtures::fixture_names("grafana-"),
            COVERED
        );
    }

    #[test]
    fn unified_firing_docs_gives_two_alerts_keyed_by_fingerprint() {
        let alerts = run("grafana-unified-firing-docs.json");
        assert_eq!(alerts.len(), 2);
        let a = &alerts[0];
        assert_eq!(a.dedup_key, "c6eadffa33fcdf37");
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(
            a.severity,
            Severity::Error,
            "no severity label: the default"
        );
        assert_eq!(a.title, "This alert was triggered for zone us-1");
        assert_eq!(a.description, "The system has high memory usage");
        assert_eq!(a.labels["alertname"], "High memory usage");
        assert_eq!(a.labels["zone"], "us-1");
        assert_eq!(a.labels["env"], "prod", "the source's labels are added");
        assert_eq!(a.annotations["values"], "B=44.23943737541908, C=1");
        assert_eq!(a.started_at, Some(t("2021-10-12T09:51:03.157076+02:00")));
        assert_eq!(a.ended_at, None, "Go's zero time is no time");
        assert_eq!(
            a.links,
            vec![
                link("Source", "https://play.grafana.org/alerting/1afz29v7z/edit"),
                link("Silence", "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1"),
                link("Runbook", "https://myrunbook.com/runbook/1234"),
            ]
        );
        assert_eq!(&*a.source.kind, "grafana");
        let b = &alerts[1];
        assert_eq!(b.dedup_key, "bc97ff14869b13e3");
        assert_eq!(b.title, "This alert was triggered for zone eu-1");
        assert_eq!(b.labels["alertname"], "High CPU usage");
    }

    #[test]
    fn unified_values_v11_has_every_link_and_the_values() {
        let alerts = run("grafana-unified-firing-values-v11.json");
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.dedup_key, "e6349a25f5ef0e9e");
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.title, "High memory usage");
        assert_eq!(a.labels["grafana_folder"], "device");
        assert_eq!(a.annotations["values"], "A=2473545728, B=0, C=1, minute=9");
        assert!(a.annotations["value_string"]
            .starts_with("[ var='A' labels={instance=node_exporter:9100"));
        let labels: Vec<&str> = a.links.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["Source", "Dashboard", "Panel", "Silence", "Image"]);
        assert_eq!(
            a.links[2].url,
            "https://play.grafana.org/d/ece9fb32-7f71-4be9-bd94-2f23608ae5b9?orgId=1&viewPanel=2",
            "the \\u0026 escapes are decoded"
        );
        assert_eq!(
            a.links[4].url,
            "https://grafana.com/assets/img/blog/mixed_styles.png"
        );
        assert_eq!(a.started_at, Some(t("2024-03-01T02:09:00Z")));
    }

    #[test]
    fn unified_mixed_group_reads_each_alerts_own_status() {
        let alerts = run("grafana-unified-mixed-firing-resolved.json");
        let got: Vec<(&str, AlertStatus)> = alerts
            .iter()
            .map(|a| (a.dedup_key.as_str(), a.status))
            .collect();
        assert_eq!(
            got,
            [
                ("aaafafe0953f0962", AlertStatus::Resolved),
                ("fb31814ac93dbe7d", AlertStatus::Resolved),
                ("6f9cd313db421ef1", AlertStatus::Firing),
            ],
            "the group's top-level status is firing, yet two alerts are resolved"
        );
        assert_eq!(
            alerts[0].title,
            "This is a summary field, failure on badhost.example.com"
        );
        assert_eq!(
            alerts[0].ended_at,
            Some(t("2022-06-17T01:08:28.652747827Z"))
        );
        assert_eq!(alerts[0].labels["instance"], "badhost.example.com");
        assert_eq!(alerts[2].title, "Testing **another** failing alert");
        assert_eq!(alerts[2].ended_at, None);
    }

    #[test]
    fn unified_resolved() {
        let alerts = run("grafana-unified-resolved.json");
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.dedup_key, "d8a21484c9c25a60");
        assert_eq!(a.status, AlertStatus::Resolved);
        assert_eq!(a.title, "This is a summary field, failure on <no value>");
        assert_eq!(a.ended_at, Some(t("2022-06-17T00:51:24.067337833Z")));
        assert_eq!(
            a.links.iter().map(|l| l.label.as_str()).collect::<Vec<_>>(),
            ["Source", "Silence", "Runbook"],
            "empty dashboardURL and panelURL are no links"
        );
    }

    #[test]
    fn legacy_alerting_and_ok_share_the_rule_key() {
        let firing = run("grafana-legacy-alerting.json");
        assert_eq!(firing.len(), 1);
        let a = &firing[0];
        assert_eq!(a.dedup_key, "legacy:0:0");
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.severity, Severity::Error);
        assert_eq!(a.title, "Test rule");
        assert_eq!(
            a.description,
            "Someone is testing the alert notification within grafana."
        );
        assert_eq!(a.labels["alertname"], "Test rule");
        assert_eq!(
            a.annotations["eval_matches"],
            "High value=100, Higher Value=200"
        );
        assert_eq!(a.annotations["state"], "alerting");
        assert_eq!(
            a.links,
            vec![
                link("Rule", "http://localhost:3000/"),
                link(
                    "Image",
                    "https://grafana.com/assets/img/blog/mixed_styles.png"
                ),
            ]
        );
        let ok = run("grafana-legacy-ok.json");
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].dedup_key, a.dedup_key);
        assert_eq!(ok[0].status, AlertStatus::Resolved);
        assert_eq!(ok[0].title, "Test rule");
    }

    #[test]
    fn legacy_states_severity_labels_and_bad_bodies() {
        let s = spec();
        let body = |state: &str| {
            format!(
                r#"{{"ruleId":7,"orgId":2,"ruleName":"r","state":"{state}","tags":{{"severity":"critical"}}}}"#
            )
        };
        let one = |state: &str| s.normalize(body(state).as_bytes(), Utc::now()).unwrap();
        assert_eq!(one("no_data")[0].status, AlertStatus::Firing);
        assert_eq!(one("no_data")[0].severity, Severity::Critical);
        assert_eq!(one("no_data")[0].dedup_key, "legacy:2:7");
        assert_eq!(one("paused")[0].status, AlertStatus::Resolved);
        assert_eq!(one("pending"), vec![], "pending is not an alert yet");
        assert!(matches!(
            s.normalize(body("weird").as_bytes(), Utc::now()),
            Err(NormalizeError::Shape(m)) if m.contains("weird")
        ));
        // A severity label is read; no fingerprint: the labels' fingerprint.
        let a = &s
            .normalize(
                br#"{"alerts":[{"status":"firing","labels":{"alertname":"x","severity":"warning"}}]}"#,
                Utc::now(),
            )
            .unwrap()[0];
        assert_eq!(a.severity, Severity::Warning);
        let own = BTreeMap::from([
            ("alertname".to_string(), "x".to_string()),
            ("severity".to_string(), "warning".to_string()),
        ]);
        assert_eq!(a.dedup_key, fingerprint::fingerprint_hex(&own));
        assert!(matches!(
            s.normalize(b"[]", Utc::now()),
            Err(NormalizeError::Shape(_))
        ));
        assert!(matches!(
            s.normalize(br#"{"foo":1}"#, Utc::now()),
            Err(NormalizeError::Shape(_))
        ));
        assert!(matches!(
            s.normalize(br#"{"alerts":[{"status":"weird"}]}"#, Utc::now()),
            Err(NormalizeError::Shape(_))
        ));
        assert!(matches!(
            s.normalize(b"{", Utc::now()),
            Err(NormalizeError::Json { .. })
        ));
        // An empty summary falls back to the alertname.
        let a = &s
            .normalize(
                br#"{"alerts":[{"labels":{"alertname":"Disk"},"annotations":{"summary":""}}]}"#,
                Utc::now(),
            )
            .unwrap()[0];
        assert_eq!((a.title.as_str(), a.status), ("Disk", AlertStatus::Firing));
    }
}
