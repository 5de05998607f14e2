//! The generic JSON adapter (`kind: generic`): for tools without a built-in adapter.
//!
//! A body is one JSON object (one alert) or an array of objects. Each field is looked up under
//! a few common names (first present wins; keys are case-sensitive, values are not):
//!
//! | field | names | notes |
//! |---|---|---|
//! | title | `summary`, `title`, `message`, `name` | none: `alert` |
//! | description | `description`, `details`, `text`, `body` | none: empty |
//! | severity | `severity`, `level`, `priority` | [`Severity::from_word`]; unknown: source default |
//! | status | `status`, `action`, `state` | see [`status_from_word`]; none: firing; unknown: error |
//! | dedup key | `dedup_key`, `id`, `alert_id` | none: hash of title + sorted labels |
//! | source | `source`, `origin`, `system` | becomes label `source` unless the payload has one |
//! | labels | `labels`, `tags` (objects) | scalar values only, stringified |
//! | annotations | `annotations` (object) | as labels |
//! | links | `links` (array of `{label\|text\|name, url\|href}`), `url`, `link` | |
//!
//! "Present" means a non-empty string, a number or a boolean; `null`, objects and arrays are
//! skipped. The source's `mapping` (field -> JSON pointer into the alert object) wins over the
//! names for each mapped field; a pointer that finds nothing in a payload falls back to them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fingerprint::{to_hex, Fnv1a64, SEPARATOR};
use super::{NormalizeError, SourceSpec};
use crate::model::{Alert, AlertStatus, Labels, Link, Severity};

/// The fields a `mapping` may name.
pub const MAPPABLE_FIELDS: [&str; 6] = [
    "title",
    "description",
    "severity",
    "status",
    "dedup_key",
    "source",
];

const TITLE_NAMES: [&str; 4] = ["summary", "title", "message", "name"];
const DESCRIPTION_NAMES: [&str; 4] = ["description", "details", "text", "body"];
const SEVERITY_NAMES: [&str; 3] = ["severity", "level", "priority"];
const STATUS_NAMES: [&str; 3] = ["status", "action", "state"];
const DEDUP_NAMES: [&str; 3] = ["dedup_key", "id", "alert_id"];
const SOURCE_NAMES: [&str; 3] = ["source", "origin", "system"];
const LABEL_NAMES: [&str; 2] = ["labels", "tags"];
const URL_NAMES: [&str; 2] = ["url", "link"];

/// A generic source's `mapping`: a JSON pointer per field, validated at build time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    title: Option<String>,
    description: Option<String>,
    severity: Option<String>,
    status: Option<String>,
    dedup_key: Option<String>,
    source: Option<String>,
}

impl Mapping {
    /// Checks the field names and pointer syntax (`""` or starting with `/`).
    pub fn build(raw: &BTreeMap<String, String>) -> Result<Mapping, String> {
        let mut m = Mapping::default();
        for (field, pointer) in raw {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err(format!(
                    "{field}: `{pointer}` is not a JSON pointer (it must start with `/`, e.g. `/alert/name`)"
                ));
            }
            let slot = match field.as_str() {
                "title" => &mut m.title,
                "description" => &mut m.description,
                "severity" => &mut m.severity,
                "status" => &mut m.status,
                "dedup_key" => &mut m.dedup_key,
                "source" => &mut m.source,
                other => {
                    return Err(format!(
                        "unknown field `{other}` (expected one of {})",
                        MAPPABLE_FIELDS.join(", ")
                    ))
                }
            };
            *slot = Some(pointer.clone());
        }
        Ok(m)
    }

    pub fn is_empty(&self) -> bool {
        *self == Mapping::default()
    }
}

/// The status a word names (case-insensitive), or `None` for an unknown word.
pub fn status_from_word(word: &str) -> Option<AlertStatus> {
    let w = word.trim().to_ascii_lowercase();
    Some(match w.as_str() {
        "triggered" | "trigger" | "fired" | "alert" | "alerting" | "critical" | "error"
        | "open" | "firing" | "problem" | "down" => AlertStatus::Firing,
        "resolved" | "resolve" | "ok" | "normal" | "closed" | "fixed" | "recovered" | "up" => {
            AlertStatus::Resolved
        }
        "acknowledge" | "acknowledged" | "ack" => AlertStatus::Acknowledged,
        _ => return None,
    })
}

/// A scalar as text: strings (non-empty after trimming), numbers and booleans.
fn scalar(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

/// The first of `names` present in `obj` as a scalar.
fn by_names<'v>(obj: &'v Map<String, Value>, names: &[&str]) -> Option<Cow<'v, str>> {
    names.iter().find_map(|n| obj.get(*n).and_then(scalar))
}

/// A field's value: the mapped pointer when it finds a scalar, else the first present name.
/// A pointer that finds an object or array is an error (the mapping is wrong).
fn field<'v>(
    item: &'v Value,
    obj: &'v Map<String, Value>,
    index: Option<usize>,
    field: &str,
    pointer: Option<&str>,
    names: &[&str],
) -> Result<Option<Cow<'v, str>>, NormalizeError> {
    if let Some(p) = pointer {
        match item.pointer(p) {
            Some(v @ (Value::Object(_) | Value::Array(_))) => {
                return Err(NormalizeError::Shape(format!(
                    "{}mapping `{field}: {p}` points at {}, expected a string or a number",
                    at(index),
                    kind_of(v)
                )))
            }
            Some(v) => {
                if let Some(s) = scalar(v) {
                    return Ok(Some(s));
                }
            }
            None => {}
        }
    }
    Ok(by_names(obj, names))
}

fn at(index: Option<usize>) -> String {
    index.map(|i| format!("item {i}: ")).unwrap_or_default()
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Copies the scalar values of a JSON object into a string map (nested values skipped).
fn string_map(obj: &Map<String, Value>) -> Labels {
    obj.iter()
        .filter_map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), s))
        })
        .collect()
}

fn links(obj: &Map<String, Value>) -> Vec<Link> {
    let mut out: Vec<Link> = Vec::new();
    if let Some(Value::Array(items)) = obj.get("links") {
        for item in items {
            let link = match item {
                Value::String(url) if !url.trim().is_empty() => Link {
                    label: "Link".into(),
                    url: url.clone(),
                },
                Value::Object(o) => {
                    let Some(url) = ["url", "href"]
                        .iter()
                        .find_map(|n| o.get(*n).and_then(Value::as_str))
                        .filter(|u| !u.trim().is_empty())
                    else {
                        continue;
                    };
                    let label = ["label", "text", "name"]
                        .iter()
                        .find_map(|n| o.get(*n).and_then(Value::as_str))
                        .filter(|l| !l.trim().is_empty())
                        .unwrap_or("Link");
                    Link {
                        label: label.to_string(),
                        url: url.to_string(),
                    }
                }
                _ => continue,
            };
            out.push(link);
        }
    }
    if let Some(url) = URL_NAMES
        .iter()
        .find_map(|n| obj.get(*n).and_then(Value::as_str))
        .filter(|u| !u.trim().is_empty())
    {
        if !out.iter().any(|l| l.url == url) {
            out.push(Link {
                label: "Link".into(),
                url: url.to_string(),
            });
        }
    }
    out
}

/// The fallback dedup key: FNV-1a 64 of the title and the sorted labels, as 16 hex digits.
fn hash_key(title: &str, labels: &Labels) -> String {
    let mut h = Fnv1a64::new();
    h.write(title.as_bytes());
    h.write_byte(SEPARATOR);
    for (k, v) in labels {
        h.write_label(k, v);
    }
    to_hex(h.finish())
}

/// Normalizes a generic body: one object, or an array of objects.
pub fn normalize(spec: &SourceSpec, body: &[u8]) -> Result<Vec<Alert>, NormalizeError> {
    let value: Value = serde_json::from_slice(body).map_err(NormalizeError::from_json)?;
    match &value {
        Value::Object(_) => Ok(vec![convert(spec, &value, None)?]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| convert(spec, item, Some(i)))
            .collect(),
        other => Err(NormalizeError::Shape(format!(
            "expected a JSON object (one alert) or an array of objects, got {}",
            kind_of(other)
        ))),
    }
}

fn convert(spec: &SourceSpec, item: &Value, index: Option<usize>) -> Result<Alert, NormalizeError> {
    let Value::Object(obj) = item else {
        return Err(NormalizeError::Shape(format!(
            "{}expected an object (one alert), got {}",
            at(index),
            kind_of(item)
        )));
    };
    let m = &spec.mapping;

    let title = field(item, obj, index, "title", m.title.as_deref(), &TITLE_NAMES)?
        .map(Cow::into_owned)
        .unwrap_or_else(|| "alert".to_string());
    let description = field(
        item,
        obj,
        index,
        "description",
        m.description.as_deref(),
        &DESCRIPTION_NAMES,
    )?
    .map(Cow::into_owned)
    .unwrap_or_default();
    let severity = field(
        item,
        obj,
        index,
        "severity",
        m.severity.as_deref(),
        &SEVERITY_NAMES,
    )?
    .and_then(|s| Severity::from_word(&s))
    .unwrap_or(spec.default_severity);
    let status = match field(
        item,
        obj,
        index,
        "status",
        m.status.as_deref(),
        &STATUS_NAMES,
    )? {
        None => AlertStatus::Firing,
        Some(word) => status_from_word(&word).ok_or_else(|| {
            NormalizeError::Shape(format!(
                "{}unknown status `{word}` (firing: triggered, firing, alerting, problem, down, \
                 open, ...; resolved: resolved, ok, closed, recovered, up, ...; \
                 acknowledged: acknowledged, ack)",
                at(index)
            ))
        })?,
    };

    let mut labels = LABEL_NAMES
        .iter()
        .find_map(|n| obj.get(*n).and_then(Value::as_object))
        .map(string_map)
        .unwrap_or_default();
    if let Some(src) = field(
        item,
        obj,
        index,
        "source",
        m.source.as_deref(),
        &SOURCE_NAMES,
    )? {
        labels
            .entry("source".to_string())
            .or_insert_with(|| src.into_owned());
    }
    let annotations = obj
        .get("annotations")
        .and_then(Value::as_object)
        .map(string_map)
        .unwrap_or_default();

    let dedup_key = match field(
        item,
        obj,
        index,
        "dedup_key",
        m.dedup_key.as_deref(),
        &DEDUP_NAMES,
    )? {
        Some(k) => k.into_owned(),
        // Hashed before the source's own labels are added, so changing the config's
        // `labels:` does not change the keys of open incidents.
        None => hash_key(&title, &labels),
    };
    spec.add_source_labels(&mut labels);

    Ok(Alert {
        dedup_key,
        status,
        severity,
        title,
        description,
        labels,
        annotations,
        links: links(obj),
        started_at: None,
        ended_at: None,
        source: spec.source_ref(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::types::{SourceConfig, SourceKind};
    use crate::sources::test_fixtures::fixture;
    use chrono::Utc;
    use serde_json::json;

    fn spec_with(mapping: &[(&str, &str)]) -> SourceSpec {
        SourceSpec::build(&SourceConfig {
            name: "custom".into(),
            kind: SourceKind::Generic,
            auth: None,
            labels: BTreeMap::from([("team".to_string(), "platform".to_string())]),
            severity: Some("warning".into()),
            mapping: mapping
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            plugin: None,
            config: None,
        })
        .unwrap()
    }

    fn run(spec: &SourceSpec, body: &Value) -> Vec<Alert> {
        spec.normalize(body.to_string().as_bytes(), Utc::now())
            .unwrap()
    }

    fn one(spec: &SourceSpec, body: Value) -> Alert {
        let mut v = run(spec, &body);
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn run_fixture(spec: &SourceSpec, name: &str) -> Alert {
        let mut v = spec.normalize(&fixture(name), Utc::now()).unwrap();
        assert_eq!(v.len(), 1, "{name}");
        v.remove(0)
    }

    fn link(label: &str, url: &str) -> Link {
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
            labels: BTreeMap::new(),
            severity: None,
            mapping: BTreeMap::new(),
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
        let raw = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(Mapping::build(&raw("title", "/a")).is_ok());
        assert!(Mapping::build(&raw("title", "a/b"))
            .unwrap_err()
            .contains("JSON pointer"));
        assert!(Mapping::build(&raw("colour", "/a"))
            .unwrap_err()
            .contains("unknown field `colour`"));
        assert!(Mapping::build(&BTreeMap::new()).unwrap().is_empty());
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
}
