//! The Sentry adapter (`kind: sentry`).
//!
//! It reads the integration platform webhooks (a Sentry App or internal integration), whose
//! resource is the `Sentry-Hook-Resource` header (read from the body's shape when the header
//! is missing, e.g. in `switchyard route-test`), and the legacy per-project "WebHooks" plugin:
//!
//! | resource | action | alert |
//! |---|---|---|
//! | `issue` | `created`, `unresolved` | firing |
//! | `issue` | `assigned` | acknowledged (someone took it) |
//! | `issue` | `resolved` | resolved |
//! | `issue` | `ignored`, `archived` | resolved (annotation `resolution: archived`) |
//! | `event_alert` | `triggered` | firing (an issue alert rule fired) |
//! | `metric_alert` | `critical`, `warning` | firing, with that severity |
//! | `metric_alert` | `resolved` | resolved |
//! | legacy plugin body (`id`, `project`, `url`, `level`, ...) | | firing |
//! | `installation`, `comment`, `error`, ... | | none (accepted, nothing to record) |
//!
//! Dedup key: `data.issue.id`, `data.event.issue_id`, `data.metric_alert.id`, or the legacy
//! body's `id` (the issue id): so an issue alert and the issue's own webhooks fold into one
//! incident. Severity: Sentry's `level` (fatal critical, error, warning, info, debug info);
//! for metric alerts the action. Title: the issue or event title, or the metric alert rule's
//! name. Links: the issue's page in Sentry (`web_url`/`permalink`, the event's page, or
//! `<sentry.base_url>/issues/<id>/`: `https://sentry.io` unless the source names a
//! self-hosted Sentry).

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use super::grafana::{scalar, text};
use super::{NormalizeError, SourceSpec};
use crate::model::{Alert, AlertStatus, Labels, Link, Severity};

/// The header naming the webhook's resource.
pub const RESOURCE_HEADER: &str = "sentry-hook-resource";
/// The per-delivery id Sentry sends; a redelivery carries the same one.
pub const REQUEST_ID_HEADER: &str = "request-id";

/// Normalizes a Sentry webhook. `resource` is the `Sentry-Hook-Resource` header, if sent.
pub fn normalize(
    spec: &SourceSpec,
    resource: Option<&str>,
    body: &[u8],
) -> Result<Vec<Alert>, NormalizeError> {
    let value: Value = serde_json::from_slice(body).map_err(NormalizeError::from_json)?;
    let Value::Object(obj) = &value else {
        return Err(NormalizeError::Shape(
            "expected a Sentry webhook object".into(),
        ));
    };
    let data = obj.get("data").and_then(Value::as_object);
    let resource = match resource.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => r.to_ascii_lowercase(),
        None => infer_resource(obj, data).to_string(),
    };
    let action = text(obj, "action").unwrap_or_default().to_ascii_lowercase();
    let alert = match resource.as_str() {
        "issue" => issue(spec, &action, need_data(data, "issue")?)?,
        "event_alert" => event_alert(spec, &action, need_data(data, "event_alert")?)?,
        "metric_alert" => metric_alert(spec, &action, need_data(data, "metric_alert")?)?,
        "legacy" => legacy(spec, obj)?,
        other => {
            tracing::debug!(source = %spec.name, resource = other, "Sentry resource without alerts; ignored");
            return Ok(Vec::new());
        }
    };
    Ok(alert.into_iter().collect())
}

fn infer_resource(obj: &Map<String, Value>, data: Option<&Map<String, Value>>) -> &'static str {
    match data {
        Some(d) if d.contains_key("metric_alert") => "metric_alert",
        Some(d) if d.contains_key("issue") => "issue",
        Some(d) if d.contains_key("event") => "event_alert",
        Some(_) => "unknown",
        None if obj.contains_key("id")
            && (obj.contains_key("url") || obj.contains_key("event")) =>
        {
            "legacy"
        }
        None => "unknown",
    }
}

fn need_data<'v>(
    data: Option<&'v Map<String, Value>>,
    resource: &str,
) -> Result<&'v Map<String, Value>, NormalizeError> {
    data.ok_or_else(|| {
        NormalizeError::Shape(format!(
            "a Sentry `{resource}` webhook needs a `data` object"
        ))
    })
}

fn object<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Map<String, Value>> {
    obj.get(key).and_then(Value::as_object)
}

fn required_id(obj: &Map<String, Value>, key: &str, at: &str) -> Result<String, NormalizeError> {
    scalar(obj, key).ok_or_else(|| NormalizeError::Shape(format!("{at}.{key} is missing")))
}

fn severity_of(spec: &SourceSpec, level: Option<&str>) -> Severity {
    level
        .and_then(Severity::from_word)
        .unwrap_or(spec.default_severity)
}

fn rfc3339(obj: &Map<String, Value>, key: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text(obj, key)?)
        .ok()
        .map(|t| t.to_utc())
}

fn link(label: &str, url: &str) -> Link {
    Link {
        label: label.into(),
        url: url.into(),
    }
}

/// Where issue links point when the payload has no web URL (`sentry.base_url`).
pub const DEFAULT_BASE_URL: &str = "https://sentry.io";

/// The issue's page: a web URL in the payload, else `<base_url>/issues/<id>/` (the source's
/// `sentry.base_url` for a self-hosted Sentry, else sentry.io).
fn issue_link(spec: &SourceSpec, issue_id: &str, candidates: &[Option<&str>]) -> Link {
    let url = candidates
        .iter()
        .flatten()
        .find(|u| u.starts_with("http") && !u.contains("/api/0/"))
        .map(|u| u.to_string())
        .unwrap_or_else(|| {
            let base = spec.sentry_base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
            format!("{}/issues/{issue_id}/", base.trim_end_matches('/'))
        });
    link("Sentry issue", &url)
}

fn base_labels(level: Option<&str>, project: Option<&str>, platform: Option<&str>) -> Labels {
    let mut labels = Labels::new();
    for (k, v) in [
        ("level", level),
        ("project", project),
        ("platform", platform),
    ] {
        if let Some(v) = v {
            labels.insert(k.into(), v.to_string());
        }
    }
    labels
}

fn issue(
    spec: &SourceSpec,
    action: &str,
    data: &Map<String, Value>,
) -> Result<Option<Alert>, NormalizeError> {
    let issue = object(data, "issue")
        .ok_or_else(|| NormalizeError::Shape("data.issue is missing".into()))?;
    let id = required_id(issue, "id", "data.issue")?;
    let mut annotations = Labels::new();
    let status = match action {
        "created" | "unresolved" => AlertStatus::Firing,
        "assigned" => AlertStatus::Acknowledged,
        "resolved" => AlertStatus::Resolved,
        "ignored" | "archived" => {
            annotations.insert("resolution".into(), "archived".into());
            AlertStatus::Resolved
        }
        other => {
            return Err(NormalizeError::Shape(format!(
                "action: unknown Sentry issue action `{other}` (expected created, resolved, \
                 assigned, archived, ignored or unresolved)"
            )))
        }
    };
    annotations.insert("action".into(), action.to_string());
    if let Some(s) = text(issue, "shortId") {
        annotations.insert("short_id".into(), s.into());
    }
    if let Some(s) = text(issue, "culprit") {
        annotations.insert("culprit".into(), s.into());
    }
    if let Some(s) = text(issue, "substatus") {
        annotations.insert("substatus".into(), s.into());
    }
    if let Some(s) = text(data, "resolution_type") {
        annotations.insert("resolution_type".into(), s.into());
    }
    if let Some(a) = object(data, "assignee") {
        if let Some(name) = text(a, "name").or_else(|| text(a, "email")) {
            annotations.insert("assignee".into(), name.into());
        }
    }
    let level = text(issue, "level");
    let project = object(issue, "project");
    let mut labels = base_labels(
        level,
        project.and_then(|p| text(p, "slug")),
        text(issue, "platform"),
    );
    spec.add_source_labels(&mut labels);
    let title = text(issue, "title")
        .or_else(|| object(issue, "metadata").and_then(|m| text(m, "title")))
        .unwrap_or("Sentry issue")
        .to_string();
    Ok(Some(Alert {
        links: vec![issue_link(
            spec,
            &id,
            &[
                text(issue, "web_url"),
                text(issue, "permalink"),
                text(issue, "url"),
            ],
        )],
        dedup_key: id,
        status,
        severity: severity_of(spec, level),
        title,
        description: text(issue, "culprit").unwrap_or_default().to_string(),
        labels,
        annotations,
        started_at: rfc3339(issue, "firstSeen"),
        ended_at: None,
        expires_at: None,
        source: spec.source_ref(),
    }))
}

fn event_alert(
    spec: &SourceSpec,
    action: &str,
    data: &Map<String, Value>,
) -> Result<Option<Alert>, NormalizeError> {
    if !action.is_empty() && action != "triggered" {
        return Err(NormalizeError::Shape(format!(
            "action: unknown Sentry event_alert action `{action}` (expected triggered)"
        )));
    }
    let event = object(data, "event")
        .ok_or_else(|| NormalizeError::Shape("data.event is missing".into()))?;
    let id = required_id(event, "issue_id", "data.event")?;
    let rule = text(data, "triggered_rule")
        .or_else(|| object(data, "issue_alert").and_then(|a| text(a, "title")));
    let mut annotations = Labels::new();
    if let Some(r) = rule {
        annotations.insert("rule".into(), r.into());
    }
    if let Some(e) = text(event, "event_id") {
        annotations.insert("event_id".into(), e.into());
    }
    if let Some(c) = text(event, "culprit") {
        annotations.insert("culprit".into(), c.into());
    }
    let level = text(event, "level");
    let mut labels = base_labels(level, None, text(event, "platform"));
    if let Some(p) = scalar(event, "project") {
        labels.insert("project_id".into(), p);
    }
    if let Some(env) = text(event, "environment") {
        labels.insert("environment".into(), env.into());
    }
    spec.add_source_labels(&mut labels);
    let web_url = text(event, "web_url");
    let issue_url = web_url.and_then(|u| u.split_once("/events/").map(|(i, _)| format!("{i}/")));
    let mut links = vec![issue_link(spec, &id, &[issue_url.as_deref()])];
    if let Some(u) = web_url {
        links.push(link("Sentry event", u));
    }
    let title = text(event, "title")
        .or(rule)
        .unwrap_or("Sentry issue alert")
        .to_string();
    let started_at = rfc3339(event, "datetime").or_else(|| {
        event
            .get("timestamp")
            .and_then(Value::as_f64)
            .and_then(|t| Utc.timestamp_millis_opt((t * 1000.0) as i64).single())
    });
    Ok(Some(Alert {
        dedup_key: id,
        status: AlertStatus::Firing,
        severity: severity_of(spec, level),
        title,
        description: rule
            .map(|r| format!("Alert rule `{r}` triggered"))
            .unwrap_or_default(),
        labels,
        annotations,
        links,
        started_at,
        ended_at: None,
        expires_at: None,
        source: spec.source_ref(),
    }))
}

fn metric_alert(
    spec: &SourceSpec,
    action: &str,
    data: &Map<String, Value>,
) -> Result<Option<Alert>, NormalizeError> {
    let ma = object(data, "metric_alert")
        .ok_or_else(|| NormalizeError::Shape("data.metric_alert is missing".into()))?;
    let id = required_id(ma, "id", "data.metric_alert")?;
    let (status, severity) = match action {
        "critical" => (AlertStatus::Firing, Severity::Critical),
        "warning" => (AlertStatus::Firing, Severity::Warning),
        "resolved" => (AlertStatus::Resolved, spec.default_severity),
        other => {
            return Err(NormalizeError::Shape(format!(
                "action: unknown Sentry metric_alert action `{other}` (expected critical, \
                 warning or resolved)"
            )))
        }
    };
    let rule = object(ma, "alert_rule");
    let title = rule
        .and_then(|r| text(r, "name"))
        .or_else(|| text(data, "description_title"))
        .or_else(|| text(ma, "title"))
        .unwrap_or("Sentry metric alert")
        .to_string();
    let mut labels = Labels::new();
    labels.insert("alertname".into(), title.clone());
    if let Some(r) = rule {
        if let Some(rid) = scalar(r, "id") {
            labels.insert("alert_rule_id".into(), rid);
        }
        if let Some(env) = text(r, "environment") {
            labels.insert("environment".into(), env.into());
        }
        if let Some(Value::Array(projects)) = r.get("projects") {
            let joined = projects
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",");
            if !joined.is_empty() {
                labels.insert("project".into(), joined);
            }
        }
    }
    spec.add_source_labels(&mut labels);
    let mut annotations = Labels::new();
    annotations.insert("action".into(), action.to_string());
    if let Some(t) = text(data, "description_title") {
        annotations.insert("description_title".into(), t.into());
    }
    if let Some(r) = rule {
        if let Some(q) = text(r, "query") {
            annotations.insert("query".into(), q.into());
        }
        if let Some(a) = text(r, "aggregate") {
            annotations.insert("aggregate".into(), a.into());
        }
    }
    let links = text(data, "web_url")
        .map(|u| vec![link("Sentry alert", u)])
        .unwrap_or_default();
    Ok(Some(Alert {
        dedup_key: id,
        status,
        severity,
        title,
        description: text(data, "description_text")
            .unwrap_or_default()
            .to_string(),
        labels,
        annotations,
        links,
        started_at: rfc3339(ma, "date_started"),
        ended_at: rfc3339(ma, "date_closed"),
        expires_at: None,
        source: spec.source_ref(),
    }))
}

fn legacy(spec: &SourceSpec, obj: &Map<String, Value>) -> Result<Option<Alert>, NormalizeError> {
    let id = required_id(obj, "id", "body")?;
    let event = object(obj, "event");
    let level = text(obj, "level").or_else(|| event.and_then(|e| text(e, "level")));
    let mut labels = base_labels(
        level,
        text(obj, "project_slug").or_else(|| text(obj, "project")),
        event.and_then(|e| text(e, "platform")),
    );
    if let Some(env) = event.and_then(|e| text(e, "environment")) {
        labels.insert("environment".into(), env.into());
    }
    spec.add_source_labels(&mut labels);
    let mut annotations = Labels::new();
    if let Some(c) = text(obj, "culprit") {
        annotations.insert("culprit".into(), c.into());
    }
    if let Some(e) = event.and_then(|e| text(e, "event_id")) {
        annotations.insert("event_id".into(), e.into());
    }
    let title = text(obj, "message")
        .or_else(|| event.and_then(|e| text(e, "title")))
        .unwrap_or("Sentry issue")
        .to_string();
    let started_at = event
        .and_then(|e| e.get("timestamp"))
        .and_then(Value::as_f64)
        .and_then(|t| Utc.timestamp_millis_opt((t * 1000.0) as i64).single());
    Ok(Some(Alert {
        links: vec![issue_link(spec, &id, &[text(obj, "url")])],
        dedup_key: id,
        status: AlertStatus::Firing,
        severity: severity_of(spec, level),
        title,
        description: text(obj, "culprit").unwrap_or_default().to_string(),
        labels,
        annotations,
        started_at,
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
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
    use std::collections::BTreeMap;

    fn spec() -> SourceSpec {
        SourceSpec::build(&SourceConfig {
            labels: BTreeMap::from([("team".to_string(), "web".to_string())]),
            ..source_config("sentry", SourceKind::Sentry)
        })
        .unwrap()
    }

    /// Normalizes a fixture as Sentry sends it: with its `Sentry-Hook-Resource` header.
    fn run(name: &str, resource: Option<&'static str>) -> Vec<Alert> {
        let mut headers = HeaderMap::new();
        if let Some(r) = resource {
            headers.insert(
                HeaderName::from_static(RESOURCE_HEADER),
                HeaderValue::from_static(r),
            );
        }
        spec()
            .normalize_request(&headers, &fixture(name), Utc::now())
            .unwrap()
    }

    fn one(name: &str, resource: Option<&'static str>) -> Alert {
        let mut alerts = run(name, resource);
        assert_eq!(alerts.len(), 1, "{name}");
        alerts.remove(0)
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// Every sentry-*.json fixture has a test below.
    const COVERED: [&str; 7] = [
        "sentry-event-alert-triggered-docs.json",
        "sentry-issue-assigned.json",
        "sentry-issue-created-docs.json",
        "sentry-issue-ignored.json",
        "sentry-issue-resolved.json",
        "sentry-legacy-plugin-webhook.json",
        "sentry-metric-alert-resolved-docs.json",
    ];

    #[test]
    fn every_sentry_fixture_is_covered() {
        assert_eq!(
            crate::sources::test_fixtures::fixture_names("sentry-"),
            COVERED
        );
    }

    #[test]
    fn issue_created() {
        let a = one("sentry-issue-created-docs.json", Some("issue"));
        assert_eq!(a.dedup_key, "1170820242");
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.severity, Severity::Error);
        assert_eq!(a.title, "ReferenceError: blooopy is not defined");
        assert_eq!(a.description, "?(runner)");
        assert_eq!(a.labels["project"], "front-end");
        assert_eq!(a.labels["platform"], "javascript");
        assert_eq!(a.labels["level"], "error");
        assert_eq!(a.labels["team"], "web");
        assert_eq!(a.annotations["short_id"], "FRONT-END-9");
        assert_eq!(a.annotations["substatus"], "escalating");
        assert_eq!(
            a.links,
            vec![link("Sentry issue", "https://sentry.io/issues/1170820242/")]
        );
        assert_eq!(a.started_at, Some(t("2019-08-19T20:58:37.391000Z")));
        assert_eq!(&*a.source.kind, "sentry");
    }

    #[test]
    fn issue_resolved_and_ignored_resolve_the_same_key() {
        let r = one("sentry-issue-resolved.json", Some("issue"));
        assert_eq!(r.dedup_key, "1638821441");
        assert_eq!(r.status, AlertStatus::Resolved);
        assert_eq!(r.title, "Exception: program has entered an invalid state.");
        assert_eq!(r.annotations["resolution_type"], "now");
        let i = one("sentry-issue-ignored.json", Some("issue"));
        assert_eq!(i.dedup_key, "1638821441");
        assert_eq!(i.status, AlertStatus::Resolved);
        assert_eq!(i.annotations["resolution"], "archived");
        assert_eq!(i.annotations["action"], "ignored");
    }

    #[test]
    fn issue_assigned_acknowledges() {
        let a = one("sentry-issue-assigned.json", Some("issue"));
        assert_eq!(a.dedup_key, "1638844654");
        assert_eq!(a.status, AlertStatus::Acknowledged);
        assert_eq!(a.severity, Severity::Info, "level info");
        assert_eq!(a.title, "A test message event from golang.");
        assert_eq!(a.annotations["assignee"], "Hemanth V. Alluri");
        assert_eq!(a.labels["project"], "zulip-integration-testing");
    }

    #[test]
    fn event_alert_triggered_folds_into_the_issue() {
        let a = one(
            "sentry-event-alert-triggered-docs.json",
            Some("event_alert"),
        );
        assert_eq!(a.dedup_key, "1117540176", "data.event.issue_id");
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.severity, Severity::Error);
        assert_eq!(a.title, "ReferenceError: heck is not defined");
        assert_eq!(a.annotations["rule"], "Very Important Alert Rule!");
        assert_eq!(
            a.annotations["event_id"],
            "e4874d664c3540c1a32eab185f12c5ab"
        );
        assert_eq!(
            a.links,
            vec![
                link("Sentry issue", "https://sentry.io/organizations/test-org/issues/1117540176/"),
                link("Sentry event", "https://sentry.io/organizations/test-org/issues/1117540176/events/e4874d664c3540c1a32eab185f12c5ab/"),
            ]
        );
        assert_eq!(a.started_at, Some(t("2019-08-19T21:06:17.677000Z")));
    }

    #[test]
    fn metric_alert_resolved_and_its_firing_actions() {
        let a = one(
            "sentry-metric-alert-resolved-docs.json",
            Some("metric_alert"),
        );
        assert_eq!(a.dedup_key, "4", "data.metric_alert.id");
        assert_eq!(a.status, AlertStatus::Resolved);
        assert_eq!(a.title, "Too many errors");
        assert_eq!(
            a.description,
            "1000 events in the last 10 minutes\\nFilter: level:error"
        );
        assert_eq!(a.labels["alert_rule_id"], "7");
        assert_eq!(a.labels["project"], "bar");
        assert_eq!(a.annotations["query"], "level:error");
        assert_eq!(
            a.links,
            vec![link(
                "Sentry alert",
                "https://sentry.io/organizations/baz/alerts/1/"
            )]
        );
        // critical and warning have the same shape with another action.
        let body = String::from_utf8(fixture("sentry-metric-alert-resolved-docs.json")).unwrap();
        for (action, severity) in [
            ("critical", Severity::Critical),
            ("warning", Severity::Warning),
        ] {
            let b = body.replace(
                "\"action\": \"resolved\"",
                &format!("\"action\": \"{action}\""),
            );
            assert_ne!(b, body);
            let a = &spec().normalize(b.as_bytes(), Utc::now()).unwrap()[0];
            assert_eq!((a.status, a.severity), (AlertStatus::Firing, severity));
            assert_eq!(a.dedup_key, "4");
        }
    }

    #[test]
    fn legacy_plugin_body() {
        let a = one("sentry-legacy-plugin-webhook.json", None);
        assert_eq!(a.dedup_key, "4218258981");
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.severity, Severity::Error);
        assert_eq!(a.title, "This is an example Python exception");
        assert_eq!(a.description, "raven.scripts.runner in main");
        assert_eq!(a.labels["project"], "python");
        assert_eq!(a.labels["environment"], "prod");
        assert_eq!(
            a.links,
            vec![link(
                "Sentry issue",
                "https://nitk-46.sentry.io/issues/4218258981/?referrer=webhooks_plugin"
            )]
        );
    }

    #[test]
    fn resource_is_read_from_the_body_without_the_header() {
        for (name, key) in [
            ("sentry-issue-created-docs.json", "1170820242"),
            ("sentry-event-alert-triggered-docs.json", "1117540176"),
            ("sentry-metric-alert-resolved-docs.json", "4"),
        ] {
            assert_eq!(one(name, None).dedup_key, key, "{name}");
        }
    }

    #[test]
    fn other_resources_carry_no_alerts_and_bad_bodies_are_refused() {
        assert_eq!(
            run("sentry-issue-created-docs.json", Some("installation")),
            vec![]
        );
        let s = spec();
        let bad_action = br#"{"action":"exploded","data":{"issue":{"id":"1"}}}"#;
        assert!(matches!(
            s.normalize(bad_action, Utc::now()),
            Err(NormalizeError::Shape(m)) if m.contains("exploded")
        ));
        let no_id = br#"{"action":"created","data":{"issue":{"title":"x"}}}"#;
        assert!(matches!(
            s.normalize(no_id, Utc::now()),
            Err(NormalizeError::Shape(m)) if m.contains("data.issue.id")
        ));
        assert!(matches!(
            s.normalize(b"[1]", Utc::now()),
            Err(NormalizeError::Shape(_))
        ));
        assert!(matches!(
            s.normalize(b"{,", Utc::now()),
            Err(NormalizeError::Json { .. })
        ));
    }
}
