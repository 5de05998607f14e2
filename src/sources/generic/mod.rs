//! The generic JSON adapter (`kind: generic`): for tools without a built-in adapter, and with
//! a `preset:` (see [`presets`]) the adapter of the tools whose body is plain JSON.
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
//! skipped. The source's `mapping` ([`mapping::Mapping`]: field -> JSON pointer into the alert
//! object, plus the start time, and the tool's status and severity words) wins over the names
//! for each mapped field; a pointer that finds nothing in a payload falls back to them.

pub mod mapping;
pub mod presets;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::expiry::resolve_after_value;
use super::fingerprint::{to_hex, Fnv1a64, SEPARATOR};
use super::{NormalizeError, SourceSpec};
use crate::model::{Alert, AlertStatus, Labels, Link, Severity};
pub use mapping::Mapping;
use mapping::StatusWord;

const TITLE_NAMES: [&str; 4] = ["summary", "title", "message", "name"];
const DESCRIPTION_NAMES: [&str; 4] = ["description", "details", "text", "body"];
const SEVERITY_NAMES: [&str; 3] = ["severity", "level", "priority"];
const STATUS_NAMES: [&str; 3] = ["status", "action", "state"];
const DEDUP_NAMES: [&str; 3] = ["dedup_key", "id", "alert_id"];
const SOURCE_NAMES: [&str; 3] = ["source", "origin", "system"];
const LABEL_NAMES: [&str; 2] = ["labels", "tags"];
const URL_NAMES: [&str; 2] = ["url", "link"];

/// The status a word names (case-insensitive), or `None` for an unknown word. Event type
/// words (`incident.resolved`, `incidents.incident.acknowledged`) are read by their last part.
pub fn status_from_word(word: &str) -> Option<AlertStatus> {
    let w = word.trim().to_ascii_lowercase();
    let known = |w: &str| {
        Some(match w {
            "triggered" | "trigger" | "fired" | "alert" | "alerting" | "critical" | "error"
            | "open" | "opened" | "reopened" | "created" | "firing" | "problem" | "down" => {
                AlertStatus::Firing
            }
            "resolved" | "resolve" | "ok" | "normal" | "closed" | "fixed" | "recovered" | "up" => {
                AlertStatus::Resolved
            }
            "acknowledge" | "acknowledged" | "ack" => AlertStatus::Acknowledged,
            _ => return None,
        })
    };
    known(&w).or_else(|| {
        let last = w.rsplit('.').next()?;
        (last.len() < w.len()).then(|| known(last)).flatten()
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

/// Labels from what a `labels` / `annotations` pointer finds: an object (its scalar values),
/// an array of `key:value` (or `key=value`) strings, or one such string with commas between
/// the pairs. A tag without a value (`prod`) becomes a label with an empty value. `None` for
/// anything else.
fn labels_from(v: &Value) -> Option<Labels> {
    fn pair(tag: &str, out: &mut Labels) {
        let tag = tag.trim();
        if tag.is_empty() {
            return;
        }
        let (k, v) = tag
            .split_once(':')
            .or_else(|| tag.split_once('='))
            .unwrap_or((tag, ""));
        let k = k.trim();
        if !k.is_empty() {
            out.insert(k.to_string(), v.trim().to_string());
        }
    }
    let mut out = Labels::new();
    match v {
        Value::Object(o) => return Some(string_map(o)),
        Value::Array(items) => {
            for item in items {
                if let Value::String(s) = item {
                    pair(s, &mut out);
                }
            }
        }
        Value::String(s) => s.split(',').for_each(|t| pair(t, &mut out)),
        _ => return None,
    }
    Some(out)
}

/// Normalizes a generic body: one object, or an array of objects. Items whose status word
/// the mapping says to `ignore` make no alert.
pub fn normalize(
    spec: &SourceSpec,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<Alert>, NormalizeError> {
    let value: Value = serde_json::from_slice(body).map_err(NormalizeError::from_json)?;
    match &value {
        Value::Object(_) => Ok(convert(spec, &value, None, now)?.into_iter().collect()),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.extend(convert(spec, item, Some(i), now)?);
            }
            Ok(out)
        }
        other => Err(NormalizeError::Shape(format!(
            "expected a JSON object (one alert) or an array of objects, got {}",
            kind_of(other)
        ))),
    }
}

fn convert(
    spec: &SourceSpec,
    item: &Value,
    index: Option<usize>,
    now: DateTime<Utc>,
) -> Result<Option<Alert>, NormalizeError> {
    let Value::Object(obj) = item else {
        return Err(NormalizeError::Shape(format!(
            "{}expected an object (one alert), got {}",
            at(index),
            kind_of(item)
        )));
    };
    let m = &spec.mapping;

    let status = match field(
        item,
        obj,
        index,
        "status",
        m.status.as_deref(),
        &STATUS_NAMES,
    )? {
        // No status word at all: `status_values` may say what that means (key `""`).
        None => match m.status_word("") {
            Some(StatusWord::Ignore) => return Ok(None),
            Some(StatusWord::Status(s)) => s,
            None => AlertStatus::Firing,
        },
        Some(word) => match m.status_word(&word) {
            Some(StatusWord::Ignore) => return Ok(None),
            Some(StatusWord::Status(s)) => s,
            None => status_from_word(&word).ok_or_else(|| {
                NormalizeError::Shape(format!(
                    "{}unknown status `{word}` (firing: triggered, firing, alerting, problem, down, \
                     open, ...; resolved: resolved, ok, closed, recovered, up, ...; \
                     acknowledged: acknowledged, ack; or list the tool's words in \
                     `mapping.status_values`)",
                    at(index)
                ))
            })?,
        },
    };
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
    .and_then(|s| m.severity_word(&s).or_else(|| Severity::from_word(&s)))
    .unwrap_or(spec.default_severity);

    let mut labels = LABEL_NAMES
        .iter()
        .find_map(|n| obj.get(*n).and_then(Value::as_object))
        .map(string_map)
        .unwrap_or_default();
    if let Some(mapped) = m.labels.as_deref().and_then(|p| item.pointer(p)) {
        labels.extend(labels_from(mapped).unwrap_or_default());
    }
    for (name, p) in &m.label_fields {
        if let Some(v) = item.pointer(p).and_then(scalar) {
            labels.insert(name.clone(), v.into_owned());
        }
    }
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
    let mut annotations = obj
        .get("annotations")
        .and_then(Value::as_object)
        .map(string_map)
        .unwrap_or_default();
    if let Some(mapped) = m.annotations.as_deref().and_then(|p| item.pointer(p)) {
        annotations.extend(labels_from(mapped).unwrap_or_default());
    }

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

    let mut links = links(obj);
    if let Some(url) = m
        .url
        .as_deref()
        .and_then(|p| item.pointer(p))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        links.retain(|l| l.url != url);
        links.insert(
            0,
            Link {
                label: m.url_label.clone().unwrap_or_else(|| "Link".into()),
                url: url.to_string(),
            },
        );
    }
    let started_at = m
        .started_at
        .as_deref()
        .and_then(|p| item.pointer(p))
        .and_then(|v| m.time_format.read(v));
    // The alert's own resolve_after (firing alerts only; a bad value refuses the request).
    let expires_at = match m.resolve_after.as_deref().and_then(|p| item.pointer(p)) {
        Some(v) if status == AlertStatus::Firing => resolve_after_value(v)
            .map_err(|e| {
                NormalizeError::Shape(format!(
                    "{}mapping `resolve_after: {}`: {e}",
                    at(index),
                    m.resolve_after.as_deref().unwrap_or_default()
                ))
            })?
            .and_then(|d| super::expiry::after(now, d)),
        _ => None,
    };

    Ok(Some(Alert {
        dedup_key,
        status,
        severity,
        title,
        description,
        labels,
        annotations,
        links,
        started_at,
        ended_at: None,
        expires_at,
        source: spec.source_ref(),
    }))
}

#[cfg(test)]
mod mapping_tests;
#[cfg(test)]
mod preset_tests;
#[cfg(test)]
mod tests;
