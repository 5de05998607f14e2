//! Tests of the mapping's keys beyond field pointers: labels, the start time, the tool's
//! status and severity words, type words, the url, and presets.

use super::tests::{link, one, run};
use super::*;
use crate::config::types::{MappingConfig, SourceConfig, SourceKind};
use serde_json::json;

fn spec_mapping(mapping: serde_json::Value) -> SourceSpec {
    SourceSpec::build(&SourceConfig {
        mapping: serde_json::from_value(mapping).unwrap(),
        ..crate::sources::test_fixtures::source_config("tool", SourceKind::Generic)
    })
    .unwrap()
}

#[test]
fn labels_pointer_reads_objects_tag_arrays_and_tag_strings() {
    let s =
        spec_mapping(json!({"labels": "/meta/tags", "label_fields": {"region": "/where/region"}}));
    let a = one(
        &s,
        json!({"meta": {"tags": {"env": "prod", "n": 2, "deep": {"x": 1}}},
               "where": {"region": "eu-west-1"}}),
    );
    assert_eq!(
        a.labels,
        Labels::from([
            ("env".into(), "prod".into()),
            ("n".into(), "2".into()),
            ("region".into(), "eu-west-1".into()),
        ])
    );
    let a = one(
        &s,
        json!({"meta": {"tags": ["env:prod", "team=db", "bare", " "]}}),
    );
    assert_eq!(
        a.labels,
        Labels::from([
            ("env".into(), "prod".into()),
            ("team".into(), "db".into()),
            ("bare".into(), "".into()),
        ])
    );
    let a = one(&s, json!({"meta": {"tags": "env:prod, service:api"}}));
    assert_eq!(a.labels["service"], "api");
    assert_eq!(a.labels["env"], "prod");
    // label_fields win over the labels object.
    let a = one(
        &s,
        json!({"meta": {"tags": {"region": "x"}}, "where": {"region": "y"}}),
    );
    assert_eq!(a.labels["region"], "y");
}

#[test]
fn started_at_in_each_format() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
        .unwrap()
        .to_utc();
    for (format, value) in [
        (None, json!("2026-11-22T10:00:00Z")),
        (Some("rfc3339"), json!("2026-11-22T11:00:00+01:00")),
        (Some("epoch_seconds"), json!(at.timestamp())),
        (Some("epoch_seconds"), json!(at.timestamp().to_string())),
        (Some("epoch_millis"), json!(at.timestamp_millis())),
        (
            Some("epoch_millis"),
            json!(at.timestamp_millis().to_string()),
        ),
    ] {
        let mut m = json!({"started_at": "/t"});
        if let Some(f) = format {
            m["started_at_format"] = json!(f);
        }
        let s = spec_mapping(m);
        assert_eq!(
            one(&s, json!({ "t": value })).started_at,
            Some(at),
            "{format:?} {value}"
        );
    }
    // Unreadable or absent: no start time, the alert still counts.
    let s = spec_mapping(json!({"started_at": "/t", "started_at_format": "epoch_millis"}));
    assert_eq!(one(&s, json!({"t": "soon"})).started_at, None);
    assert_eq!(one(&s, json!({"t": 1e300})).started_at, None);
    assert_eq!(one(&s, json!({})).started_at, None);
    let err = SourceSpec::build(&SourceConfig {
        mapping: serde_json::from_value(json!({"started_at_format": "unix"})).unwrap(),
        ..crate::sources::test_fixtures::source_config("tool", SourceKind::Generic)
    })
    .unwrap_err();
    assert!(err.to_string().contains("`unix`"), "{err}");
}

#[test]
fn the_star_word_stands_for_any_word_not_listed() {
    let s = spec_mapping(json!({
        "status": "/group",
        "status_values": {"recovered": "resolved", "*": "firing", "": "ignore"}
    }));
    assert_eq!(
        one(&s, json!({"group": "Recovered"})).status,
        AlertStatus::Resolved
    );
    // A word neither listed nor known to switchyard: `*` says firing (no 400).
    assert_eq!(
        one(&s, json!({"group": "query matched"})).status,
        AlertStatus::Firing
    );
    assert_eq!(
        one(&s, json!({"group": "metrics.threshold.fired"})).status,
        AlertStatus::Firing
    );
    // `*` is not the missing word: `""` still decides that.
    assert!(run(&s, &json!({"title": "no group"})).is_empty());
}

#[test]
fn status_and_severity_words_of_the_tool() {
    let s = spec_mapping(json!({
        "status": "/NewStateValue",
        "severity": "/sev",
        "status_values": {"ALARM": "firing", "OK": "resolved", "INSUFFICIENT_DATA": "ignore",
                          "in_progress": "ignore", "Silenced": "acknowledged"},
        "severity_values": {"Sev0": "critical", "Sev3": "info", "high": "warning"}
    }));
    assert_eq!(
        one(&s, json!({"NewStateValue": "ALARM"})).status,
        AlertStatus::Firing
    );
    assert_eq!(
        one(&s, json!({"NewStateValue": "ok"})).status,
        AlertStatus::Resolved
    );
    assert_eq!(
        one(&s, json!({"NewStateValue": "silenced"})).status,
        AlertStatus::Acknowledged
    );
    // Ignored items make no alert; the others of an array still do.
    assert!(run(&s, &json!({"NewStateValue": "INSUFFICIENT_DATA"})).is_empty());
    let v = run(
        &s,
        &json!([{"NewStateValue": "in_progress"}, {"NewStateValue": "ALARM", "title": "x"}]),
    );
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].title, "x");
    // Words not listed are read as usual.
    assert_eq!(
        one(&s, json!({"NewStateValue": "resolved"})).status,
        AlertStatus::Resolved
    );
    assert_eq!(one(&s, json!({"sev": "SEV0"})).severity, Severity::Critical);
    assert_eq!(one(&s, json!({"sev": "Sev3"})).severity, Severity::Info);
    // The tool's meaning wins over switchyard's own reading of the word.
    assert_eq!(one(&s, json!({"sev": "high"})).severity, Severity::Warning);
    assert_eq!(one(&s, json!({"sev": "p1"})).severity, Severity::Critical);

    for (bad, what) in [
        (json!({"status_values": {"A": "loud"}}), "`loud`"),
        (json!({"severity_values": {"A": "loud"}}), "`loud`"),
    ] {
        let err = SourceSpec::build(&SourceConfig {
            mapping: serde_json::from_value(bad).unwrap(),
            ..crate::sources::test_fixtures::source_config("tool", SourceKind::Generic)
        })
        .unwrap_err();
        assert!(err.to_string().contains(what), "{err}");
    }
}

#[test]
fn type_words_are_read_by_their_last_part() {
    for (w, want) in [
        ("incidents.incident.resolved", Some(AlertStatus::Resolved)),
        ("incident.acknowledged", Some(AlertStatus::Acknowledged)),
        ("incident.created", Some(AlertStatus::Firing)),
        ("monitor.reopened", Some(AlertStatus::Firing)),
        ("incident.exploded", None),
        ("not_ok", None),
        ("no_data", None),
    ] {
        assert_eq!(status_from_word(w), want, "{w}");
    }
}

#[test]
fn url_pointer_is_the_first_link() {
    let s = spec_mapping(json!({"url": "/link/href", "url_label": "Open in Tool"}));
    let a = one(
        &s,
        json!({"link": {"href": "https://tool/1"}, "links": ["https://tool/1", "https://other"]}),
    );
    assert_eq!(
        a.links,
        vec![
            link("Open in Tool", "https://tool/1"),
            link("Link", "https://other")
        ]
    );
}

#[test]
fn a_preset_fills_in_what_the_source_does_not_set() {
    let Some(name) = super::presets::names().first().copied() else {
        return;
    };
    let preset = super::presets::get(name).unwrap();
    let own = MappingConfig::pointers(&[("title", "/mine")]).unwrap();
    let merged = own.over(&preset.mapping);
    assert_eq!(merged.title.as_deref(), Some("/mine"));
    assert_eq!(merged.dedup_key, preset.mapping.dedup_key);
    // A preset on another kind is an error.
    let err = SourceSpec::build(&SourceConfig {
        preset: Some(name.to_string()),
        ..crate::sources::test_fixtures::source_config("x", SourceKind::Alertmanager)
    })
    .unwrap_err();
    assert!(err.to_string().starts_with("preset: "), "{err}");
}

#[test]
fn resolve_after_per_alert_and_per_source() {
    let now = chrono::Utc::now();
    let s = SourceSpec::build(&SourceConfig {
        mapping: serde_json::from_value(json!({"resolve_after": "/ttl"})).unwrap(),
        resolve_after: Some("24h".into()),
        ..crate::sources::test_fixtures::source_config("tool", SourceKind::Generic)
    })
    .unwrap();
    let expiry = |body: serde_json::Value| {
        s.normalize(body.to_string().as_bytes(), now)
            .map(|v| v[0].expires_at)
    };
    let hours = |h: i64| Some(now + chrono::Duration::hours(h));
    // The alert's own value wins; without one, the source's.
    assert_eq!(expiry(json!({"title": "a", "ttl": "2h"})), Ok(hours(2)));
    assert_eq!(expiry(json!({"title": "a", "ttl": 7200})), Ok(hours(2)));
    assert_eq!(expiry(json!({"title": "a"})), Ok(hours(24)));
    assert_eq!(expiry(json!({"title": "a", "ttl": null})), Ok(hours(24)));
    // Resolved alerts expire nothing.
    assert_eq!(
        expiry(json!({"title": "a", "status": "ok", "ttl": "2h"})),
        Ok(None)
    );
    // A bad value is refused with the pointer named, and nothing is recorded.
    for bad in [json!("soon"), json!(-3), json!("400d"), json!({"h": 2})] {
        let err = expiry(json!({"title": "a", "ttl": bad})).unwrap_err();
        assert!(err.to_string().contains("resolve_after: /ttl"), "{err}");
    }
    // A bad source option is a config error at its key.
    for bad in ["0s", "never", "1000d"] {
        let err = SourceSpec::build(&SourceConfig {
            resolve_after: Some(bad.into()),
            ..crate::sources::test_fixtures::source_config("tool", SourceKind::Generic)
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("resolve_after: "), "{err}");
    }
}
