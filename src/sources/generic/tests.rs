//! The generic adapter's tests: field names, mappings, and real fixtures through them.

use super::*;
use crate::config::types::{MappingConfig, SourceConfig, SourceKind};
use crate::sources::test_fixtures::fixture;
use chrono::Utc;
use serde_json::json;
use std::collections::BTreeMap;

fn spec_with(mapping: &[(&str, &str)]) -> SourceSpec {
    SourceSpec::build(&SourceConfig {
        name: "custom".into(),
        kind: SourceKind::Generic,
        auth: None,
        allow_from: Vec::new(),
        trusted_proxies: Vec::new(),
        delivery_id_header: None,
        labels: BTreeMap::from([("team".to_string(), "platform".to_string())]),
        severity: Some("warning".into()),
        resolve_after: None,
        preset: None,
        mapping: MappingConfig::pointers(mapping).unwrap(),
        sentry: None,
        sns: None,
        plugin: None,
        config: None,
    })
    .unwrap()
}

pub(super) fn run(spec: &SourceSpec, body: &Value) -> Vec<Alert> {
    spec.normalize(body.to_string().as_bytes(), Utc::now())
        .unwrap()
}

pub(super) fn one(spec: &SourceSpec, body: Value) -> Alert {
    let mut v = run(spec, &body);
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn run_fixture(spec: &SourceSpec, name: &str) -> Alert {
    let mut v = spec.normalize(&fixture(name), Utc::now()).unwrap();
    assert_eq!(v.len(), 1, "{name}");
    v.remove(0)
}

pub(super) fn link(label: &str, url: &str) -> Link {
    Link {
        label: label.into(),
        url: url.into(),
    }
}

#[test]
fn field_names_in_order() {
    let s = spec_with(&[]);
    let a = one(
        &s,
        json!({"title": "T", "name": "N", "details": "D", "body": "B", "level": "HIGH",
               "state": "Open", "alert_id": 42, "origin": "cron",
               "tags": {"env": "prod", "n": 3, "on": true, "nested": {"x": 1}, "nil": null},
               "annotations": {"note": "hi"},
               "links": [{"text": "Dash", "href": "https://d"}, {"url": "https://u"},
                         "https://s", {"label": "no url"}, 7],
               "url": "https://d"}),
    );
    assert_eq!(a.title, "T");
    assert_eq!(a.description, "D");
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.dedup_key, "42");
    assert_eq!(
        a.labels,
        Labels::from([
            ("env".into(), "prod".into()),
            ("n".into(), "3".into()),
            ("on".into(), "true".into()),
            ("source".into(), "cron".into()),
            ("team".into(), "platform".into()),
        ])
    );
    assert_eq!(a.annotations, Labels::from([("note".into(), "hi".into())]));
    assert_eq!(
        a.links,
        vec![
            link("Dash", "https://d"),
            link("Link", "https://u"),
            link("Link", "https://s"),
        ]
    );
    assert_eq!(&*a.source.kind, "generic");

    // `summary` beats `title`; `description` beats `details`; `severity` beats `level`.
    let a = one(
        &s,
        json!({"summary": "S", "title": "T", "description": "D1", "details": "D2",
               "severity": "info", "level": "critical", "status": "resolved",
               "action": "trigger", "dedup_key": "k", "id": "i"}),
    );
    assert_eq!((a.title.as_str(), a.description.as_str()), ("S", "D1"));
    assert_eq!(a.severity, Severity::Info);
    assert_eq!(a.status, AlertStatus::Resolved);
    assert_eq!(a.dedup_key, "k");
}

#[test]
fn keys_are_case_sensitive_values_are_not() {
    let s = spec_with(&[]);
    let a = one(
        &s,
        json!({"Title": "x", "Severity": "critical", "status": "RESOLVED"}),
    );
    assert_eq!(a.title, "alert");
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.status, AlertStatus::Resolved);
}

#[test]
fn severity_words_and_numbers() {
    let s = spec_with(&[]);
    for (v, want) in [
        (json!("critical"), Severity::Critical),
        (json!("High"), Severity::Critical),
        (json!("error"), Severity::Error),
        (json!("warning"), Severity::Warning),
        (json!("MEDIUM"), Severity::Warning),
        (json!("info"), Severity::Info),
        (json!("low"), Severity::Info),
        (json!("P1"), Severity::Critical),
        (json!(7), Severity::Warning),   // unknown number: default
        (json!("7"), Severity::Warning), // numeric string too
        (json!("shrug"), Severity::Warning),
        (json!(""), Severity::Warning),
    ] {
        assert_eq!(
            one(&s, json!({ "severity": v.clone() })).severity,
            want,
            "{v}"
        );
    }
    // A JSON number goes through from_word as its string form.
    let s = spec_with(&[("severity", "/sev")]);
    assert_eq!(one(&s, json!({"sev": "p2"})).severity, Severity::Error);
}

#[test]
fn status_words() {
    let s = spec_with(&[]);
    for w in [
        "triggered",
        "fired",
        "alert",
        "alerting",
        "critical",
        "error",
        "open",
        "firing",
        "problem",
        "down",
        "trigger",
    ] {
        assert_eq!(
            one(&s, json!({ "status": w })).status,
            AlertStatus::Firing,
            "{w}"
        );
    }
    for w in [
        "resolved",
        "ok",
        "normal",
        "closed",
        "fixed",
        "recovered",
        "up",
        "resolve",
    ] {
        assert_eq!(
            one(&s, json!({ "action": w })).status,
            AlertStatus::Resolved,
            "{w}"
        );
    }
    for w in ["acknowledge", "acknowledged", "ACK"] {
        assert_eq!(
            one(&s, json!({ "state": w })).status,
            AlertStatus::Acknowledged,
            "{w}"
        );
    }
    assert_eq!(one(&s, json!({})).status, AlertStatus::Firing);
    let err = s
        .normalize(br#"{"status": "exploded"}"#, Utc::now())
        .unwrap_err();
    assert!(
        matches!(&err, NormalizeError::Shape(m) if m.contains("`exploded`")),
        "{err}"
    );
    let err = s
        .normalize(br#"[{}, {"status": 0}]"#, Utc::now())
        .unwrap_err();
    assert!(
        matches!(&err, NormalizeError::Shape(m) if m.starts_with("item 1: ") && m.contains("`0`")),
        "{err}"
    );
}

#[test]
fn dedup_key_falls_back_to_a_hash_of_title_and_labels() {
    let s = spec_with(&[]);
    let a = one(&s, json!({"title": "Disk full", "labels": {"host": "a"}}));
    let b = one(
        &s,
        json!({"title": "Disk full", "labels": {"host": "a"}, "description": "x"}),
    );
    let c = one(&s, json!({"title": "Disk full", "labels": {"host": "b"}}));
    let d = one(&s, json!({"title": "Disk ful", "labels": {"host": "a"}}));
    assert_eq!(a.dedup_key.len(), 16);
    assert!(a.dedup_key.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(a.dedup_key, b.dedup_key);
    assert_ne!(a.dedup_key, c.dedup_key);
    assert_ne!(a.dedup_key, d.dedup_key);
    // The source's config labels are not part of the hash.
    let other = SourceSpec::build(&SourceConfig {
        name: "x".into(),
        kind: SourceKind::Generic,
        auth: None,
        allow_from: Vec::new(),
        trusted_proxies: Vec::new(),
        delivery_id_header: None,
        labels: BTreeMap::new(),
        severity: None,
        resolve_after: None,
        preset: None,
        mapping: MappingConfig::default(),
        sentry: None,
        sns: None,
        plugin: None,
        config: None,
    })
    .unwrap();
    assert_eq!(
        one(
            &other,
            json!({"title": "Disk full", "labels": {"host": "a"}})
        )
        .dedup_key,
        a.dedup_key
    );
    // Numeric ids are keys too; empty strings are skipped.
    assert_eq!(one(&s, json!({"id": 12345})).dedup_key, "12345");
    assert_eq!(one(&s, json!({"dedup_key": "", "id": "x"})).dedup_key, "x");
}

#[test]
fn source_field_does_not_override_a_payload_label() {
    let s = spec_with(&[]);
    let a = one(&s, json!({"source": "api", "labels": {"source": "own"}}));
    assert_eq!(a.labels["source"], "own");
    let a = one(&s, json!({"system": "billing"}));
    assert_eq!(a.labels["source"], "billing");
    // The payload's label wins over the source config's.
    let a = one(&s, json!({"labels": {"team": "db"}}));
    assert_eq!(a.labels["team"], "db");
}

#[test]
fn mapping_pointers_win() {
    let s = spec_with(&[
        ("title", "/alert/name"),
        ("dedup_key", "/alert/id"),
        ("severity", "/alert/sev"),
        ("status", "/alert/state"),
        ("description", "/alert/text"),
        ("source", "/meta/host~1name"),
    ]);
    let a = one(
        &s,
        json!({"alert": {"name": "Mapped", "id": 77, "sev": "error", "state": "closed",
                         "text": "mapped text"},
               "meta": {"host/name": "db-1"},
               "title": "Named", "id": "named-id", "severity": "info", "status": "firing",
               "description": "named text", "source": "named-source"}),
    );
    assert_eq!(a.title, "Mapped");
    assert_eq!(a.dedup_key, "77");
    assert_eq!(a.severity, Severity::Error);
    assert_eq!(a.status, AlertStatus::Resolved);
    assert_eq!(a.description, "mapped text");
    assert_eq!(a.labels["source"], "db-1");

    // A pointer that finds nothing falls back to the names.
    let a = one(&s, json!({"title": "Named", "id": "named-id"}));
    assert_eq!(
        (a.title.as_str(), a.dedup_key.as_str()),
        ("Named", "named-id")
    );

    // A pointer at an object is an error naming the mapping.
    let err = s
        .normalize(br#"{"alert": {"name": {"x": 1}}}"#, Utc::now())
        .unwrap_err();
    assert!(
        matches!(&err, NormalizeError::Shape(m) if m.contains("`title: /alert/name`")),
        "{err}"
    );
}

#[test]
fn mapping_is_validated_at_build() {
    let raw = |k: &str, v: &str| MappingConfig::pointers(&[(k, v)]);
    assert!(Mapping::build(&raw("title", "/a").unwrap()).is_ok());
    assert!(Mapping::build(&raw("title", "a/b").unwrap())
        .unwrap_err()
        .contains("JSON pointer"));
    assert!(raw("colour", "/a")
        .unwrap_err()
        .contains("unknown field `colour`"));
    assert!(Mapping::build(&MappingConfig::default())
        .unwrap()
        .is_empty());
}

#[test]
fn array_bodies_and_shape_errors() {
    let s = spec_with(&[("title", "/n")]);
    let alerts = run(
        &s,
        &json!([{"n": "one", "id": 1}, {"n": "two", "id": 2, "status": "ok"}]),
    );
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].title, "one");
    assert_eq!(alerts[1].title, "two");
    assert_eq!(alerts[1].status, AlertStatus::Resolved);
    assert_eq!(s.normalize(b"[]", Utc::now()), Ok(vec![]));

    let err = s.normalize(br#"[{"id": 1}, "x"]"#, Utc::now()).unwrap_err();
    assert!(
        matches!(&err, NormalizeError::Shape(m) if m.starts_with("item 1: ")),
        "{err}"
    );
    assert!(matches!(
        s.normalize(b"42", Utc::now()),
        Err(NormalizeError::Shape(_))
    ));
    assert!(matches!(
        s.normalize(b"{\"id\": ", Utc::now()),
        Err(NormalizeError::Json { line: 1, .. })
    ));
}

// ---- real fixtures through the generic names ----

#[test]
fn pagerduty_events_v2_trigger() {
    let s = spec_with(&[]);
    let a = run_fixture(&s, "pagerduty-events-v2-trigger.json");
    // Good: dedup key and links.
    assert_eq!(a.dedup_key, "srv01/mysql");
    assert_eq!(
        a.links,
        vec![link("An example link.", "http://pagerduty.example.com")]
    );
    assert_eq!(a.status, AlertStatus::Firing);
    // Poor: summary and severity sit under `payload`, so the names miss them.
    assert_eq!(a.title, "alert");
    assert_eq!(a.severity, Severity::Warning);

    // With a mapping it maps fully, `event_action` included.
    let s = spec_with(&[
        ("title", "/payload/summary"),
        ("severity", "/payload/severity"),
        ("source", "/payload/source"),
        ("status", "/event_action"),
    ]);
    let a = run_fixture(&s, "pagerduty-events-v2-trigger.json");
    assert_eq!(
        a.title,
        "DISK at 99% on machine prod-datapipe03.example.com"
    );
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.labels["source"], "prod-datapipe03.example.com");
    let a = run_fixture(&s, "pagerduty-events-v2-acknowledge.json");
    assert_eq!(
        (a.status, a.dedup_key.as_str()),
        (AlertStatus::Acknowledged, "dedupkeyhere")
    );
    let a = run_fixture(&s, "pagerduty-events-v2-resolve.json");
    assert_eq!(
        (a.status, a.dedup_key.as_str()),
        (AlertStatus::Resolved, "dedupkeyhere")
    );
}

#[test]
fn pagerduty_acknowledge_and_resolve_without_mapping_read_as_firing() {
    // `event_action` is not one of the status names: without a mapping both are firing.
    let s = spec_with(&[]);
    for f in [
        "pagerduty-events-v2-acknowledge.json",
        "pagerduty-events-v2-resolve.json",
    ] {
        let a = run_fixture(&s, f);
        assert_eq!(a.status, AlertStatus::Firing, "{f}");
        assert_eq!(a.dedup_key, "dedupkeyhere");
    }
}

#[test]
fn zabbix_templates() {
    let s = spec_with(&[]);
    let p = run_fixture(&s, "zabbix-problem-zulip-template.json");
    let ok = run_fixture(&s, "zabbix-ok-zulip-template.json");
    // Good: status, severity (`Average` = warning) and the link.
    assert_eq!(p.status, AlertStatus::Firing);
    assert_eq!(ok.status, AlertStatus::Resolved);
    assert_eq!(p.severity, Severity::Warning);
    assert_eq!(
        p.links,
        vec![link(
            "Link",
            "https://zabbix.example.com/tr_events.php?triggerid=14032&eventid=10528"
        )]
    );
    // Poor: the text is in `trigger`, so the title is the fallback, and with no id and no
    // labels every Zabbix alert shares one hashed dedup key.
    assert_eq!(p.title, "alert");
    assert_eq!(ok.title, "alert");
    assert_eq!(p.dedup_key, ok.dedup_key);
    assert_eq!(p.dedup_key, hash_key("alert", &Labels::new()));
    assert_eq!(p.description, "");

    // With a mapping the trigger names the alert, but the PROBLEM and OK texts differ
    // ("... is unreachable for 5 minutes" / "... is reachable"), so the OK does not
    // resolve the problem's incident: Zabbix needs a dedup mapping (e.g. a trigger id
    // field added to the template), which this template does not send.
    let s = spec_with(&[("title", "/trigger"), ("source", "/hostname")]);
    let p = run_fixture(&s, "zabbix-problem-zulip-template.json");
    let ok = run_fixture(&s, "zabbix-ok-zulip-template.json");
    assert_eq!(
        p.title,
        "Zabbix agent on www.example.com is unreachable for 5 minutes"
    );
    assert_eq!(p.labels["source"], "www.example.com");
    assert_ne!(p.dedup_key, ok.dedup_key);
}

#[test]
fn uptimerobot_templates() {
    let s = spec_with(&[]);
    let down = run_fixture(&s, "uptimerobot-monitor-down-zulip-template.json");
    let up = run_fixture(&s, "uptimerobot-monitor-up-zulip-template.json");
    // Poor: no name the adapter knows. Both read as firing warnings titled `alert`;
    // `alert_type` ("1" down / "2" up) is not a status word.
    for a in [&down, &up] {
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.title, "alert");
        assert_eq!(a.severity, Severity::Warning);
        assert!(a.links.is_empty());
        assert_eq!(a.labels, Labels::from([("team".into(), "platform".into())]));
    }

    // A mapping fixes it: the friendly alert type is `Down` / `Up`.
    let s = spec_with(&[
        ("title", "/monitor_friendly_name"),
        ("status", "/alert_type_friendly_name"),
        ("description", "/alert_details"),
        ("dedup_key", "/monitor_url"),
    ]);
    let down = run_fixture(&s, "uptimerobot-monitor-down-zulip-template.json");
    let up = run_fixture(&s, "uptimerobot-monitor-up-zulip-template.json");
    assert_eq!(down.status, AlertStatus::Firing);
    assert_eq!(down.title, "Web Server");
    assert_eq!(down.description, "Host Is Unreachable");
    assert_eq!(down.dedup_key, "server1.example.com");
    assert_eq!(up.status, AlertStatus::Resolved);
    assert_eq!(up.title, "Mail Server");
}
