//! A generic source's `mapping:` ([`MappingConfig`]), checked and made ready once: JSON
//! pointers by field, the format of the start time, and the tool's status and severity words.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::types::MappingConfig;
use crate::model::{AlertStatus, Severity};

/// Most entries a `status_values`, `severity_values` or `label_fields` map may hold.
pub const DEFAULT_MAX_VALUE_WORDS: usize = 256;

/// How a mapped start time is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimeFormat {
    /// `2026-11-22T10:00:00Z` (RFC 3339).
    #[default]
    Rfc3339,
    /// Unix seconds (a number, or a string of digits; a fraction is allowed).
    EpochSeconds,
    /// Unix milliseconds.
    EpochMillis,
}

impl TimeFormat {
    fn parse(word: &str) -> Result<TimeFormat, String> {
        match word.trim().to_ascii_lowercase().as_str() {
            "rfc3339" => Ok(TimeFormat::Rfc3339),
            "epoch_seconds" => Ok(TimeFormat::EpochSeconds),
            "epoch_millis" => Ok(TimeFormat::EpochMillis),
            _ => Err(format!(
                "started_at_format: unknown format `{word}` (expected rfc3339, epoch_seconds or epoch_millis)"
            )),
        }
    }

    /// The time a JSON value names in this format; `None` when it names none.
    pub fn read(self, v: &Value) -> Option<DateTime<Utc>> {
        let number = |v: &Value| -> Option<f64> {
            match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
        };
        let from_millis = |ms: f64| -> Option<DateTime<Utc>> {
            // Finite and within chrono's range (about +-262,000 years).
            if !ms.is_finite() || ms.abs() > 8.0e15 {
                return None;
            }
            DateTime::from_timestamp_millis(ms.round() as i64)
        };
        match self {
            TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(v.as_str()?.trim())
                .ok()
                .map(|t| t.to_utc()),
            TimeFormat::EpochSeconds => from_millis(number(v)? * 1000.0),
            TimeFormat::EpochMillis => from_millis(number(v)?),
        }
    }
}

/// What a status word of `status_values` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWord {
    Status(AlertStatus),
    /// The item makes no alert (e.g. a CI run that is only starting).
    Ignore,
}

/// A generic source's mapping, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pub title: Option<String>,
    pub description: Option<String>,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub dedup_key: Option<String>,
    pub source: Option<String>,
    pub labels: Option<String>,
    /// Label name -> pointer.
    pub label_fields: Vec<(String, String)>,
    pub annotations: Option<String>,
    pub url: Option<String>,
    pub url_label: Option<String>,
    pub started_at: Option<String>,
    pub time_format: TimeFormat,
    /// Pointer to the alert's own `resolve_after`.
    pub resolve_after: Option<String>,
    /// Lowercased word -> meaning.
    status_values: HashMap<String, StatusWord>,
    /// Lowercased word -> severity.
    severity_values: HashMap<String, Severity>,
}

fn pointer(field: &str, p: &Option<String>) -> Result<Option<String>, String> {
    match p {
        Some(p) if !p.is_empty() && !p.starts_with('/') => Err(format!(
            "{field}: `{p}` is not a JSON pointer (it must start with `/`, e.g. `/alert/name`)"
        )),
        other => Ok(other.clone()),
    }
}

impl Mapping {
    /// Checks pointer syntax, the time format and the value words.
    pub fn build(raw: &MappingConfig) -> Result<Mapping, String> {
        let mut status_values = HashMap::new();
        if raw.status_values.len() > DEFAULT_MAX_VALUE_WORDS
            || raw.severity_values.len() > DEFAULT_MAX_VALUE_WORDS
            || raw.label_fields.len() > DEFAULT_MAX_VALUE_WORDS
        {
            return Err(format!(
                "status_values, severity_values and label_fields take at most {DEFAULT_MAX_VALUE_WORDS} entries each"
            ));
        }
        for (word, meaning) in &raw.status_values {
            let m = match meaning.trim().to_ascii_lowercase().as_str() {
                "firing" => StatusWord::Status(AlertStatus::Firing),
                "resolved" => StatusWord::Status(AlertStatus::Resolved),
                "acknowledged" => StatusWord::Status(AlertStatus::Acknowledged),
                "ignore" => StatusWord::Ignore,
                _ => {
                    return Err(format!(
                        "status_values.{word}: `{meaning}` is not a status (expected firing, resolved, acknowledged or ignore)"
                    ))
                }
            };
            status_values.insert(word.trim().to_lowercase(), m);
        }
        let mut severity_values = HashMap::new();
        for (word, meaning) in &raw.severity_values {
            let sev = meaning
                .trim()
                .to_ascii_lowercase()
                .parse::<Severity>()
                .map_err(|_| {
                    format!(
                        "severity_values.{word}: `{meaning}` is not a severity (expected critical, error, warning or info)"
                    )
                })?;
            severity_values.insert(word.trim().to_lowercase(), sev);
        }
        let time_format = match &raw.started_at_format {
            None => TimeFormat::default(),
            Some(f) => TimeFormat::parse(f)?,
        };
        Ok(Mapping {
            title: pointer("title", &raw.title)?,
            description: pointer("description", &raw.description)?,
            severity: pointer("severity", &raw.severity)?,
            status: pointer("status", &raw.status)?,
            dedup_key: pointer("dedup_key", &raw.dedup_key)?,
            source: pointer("source", &raw.source)?,
            labels: pointer("labels", &raw.labels)?,
            label_fields: raw
                .label_fields
                .iter()
                .map(|(name, p)| {
                    pointer(&format!("label_fields.{name}"), &Some(p.clone()))
                        .map(|p| (name.clone(), p.unwrap_or_default()))
                })
                .collect::<Result<_, _>>()?,
            annotations: pointer("annotations", &raw.annotations)?,
            url: pointer("url", &raw.url)?,
            url_label: raw.url_label.clone().filter(|l| !l.trim().is_empty()),
            started_at: pointer("started_at", &raw.started_at)?,
            time_format,
            resolve_after: pointer("resolve_after", &raw.resolve_after)?,
            status_values,
            severity_values,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == Mapping::default()
    }

    /// What the tool's status word means by `status_values`: the word's entry, else the
    /// entry `*` (any other word; not the missing word `""`), if there is one.
    pub fn status_word(&self, word: &str) -> Option<StatusWord> {
        if self.status_values.is_empty() {
            return None;
        }
        let word = word.trim().to_lowercase();
        self.status_values.get(&word).copied().or_else(|| {
            (!word.is_empty())
                .then(|| self.status_values.get("*").copied())
                .flatten()
        })
    }

    /// What the tool's severity word means by `severity_values`, if it lists the word.
    pub fn severity_word(&self, word: &str) -> Option<Severity> {
        if self.severity_values.is_empty() {
            return None;
        }
        self.severity_values
            .get(&word.trim().to_lowercase())
            .copied()
    }
}
