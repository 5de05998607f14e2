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
    m.keys().filter_map(|k| Some((k.clone(), scalar(m, k)?))).collect()
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
    let title = annotations
        .get("summary")
        .or_else(|| labels.get("alertname"))
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| "Grafana alert".to_string());
    let description = annotations
        .get("description")
        .or_else(|| annotations.get("message"))
        .cloned()
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
        source: spec.source_ref(),
    })
}

fn legacy(spec: &SourceSpec, obj: &Map<String, Value>) -> Result<Option<Alert>, NormalizeError> {
    let state = text(obj, "state").ok_or_else(|| {
        NormalizeError::Shape("legacy Grafana alert without `state`".to_string())
    })?;
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
        source: spec.source_ref(),
    }))
}
