//! The data model every component shares: the normalized [`Alert`] an adapter produces, the
//! [`Incident`] the store keeps, and the [`Event`] that routes and endpoints see.
//!
//! These types are the contract between the actors: adapters only ever produce `Alert`s, the
//! incident store only ever turns alerts into `Event`s, and delivery only ever sees `Event`s.

pub mod delivery;
pub mod group;
pub mod transition;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A string map with a stable (sorted) order, so that bodies and hashes are deterministic.
pub type Labels = BTreeMap<String, String>;

/// How bad an alert is, from worst to mildest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::Error,
        Severity::Warning,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// Maps the words monitoring tools use for severity onto ours (case-insensitive):
    /// critical/high/page/fatal/emergency/alert -> critical, error/err/major -> error,
    /// warning/warn/medium/minor -> warning, info/low/notice/informational/debug/none -> info.
    pub fn from_word(word: &str) -> Option<Severity> {
        let w = word.trim().to_ascii_lowercase();
        Some(match w.as_str() {
            "critical" | "crit" | "high" | "page" | "fatal" | "emergency" | "emerg" | "alert"
            | "disaster" | "p1" | "sev1" => Severity::Critical,
            "error" | "err" | "major" | "p2" | "sev2" => Severity::Error,
            "warning" | "warn" | "medium" | "minor" | "average" | "p3" | "sev3" => {
                Severity::Warning
            }
            "info" | "information" | "informational" | "low" | "notice" | "debug" | "none"
            | "ok" | "p4" | "p5" | "sev4" | "sev5" => Severity::Info,
            _ => return None,
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "critical" => Ok(Severity::Critical),
            "error" => Ok(Severity::Error),
            "warning" => Ok(Severity::Warning),
            "info" => Ok(Severity::Info),
            other => Err(format!(
                "unknown severity `{other}` (expected critical, error, warning or info)"
            )),
        }
    }
}

/// What an alert says about its condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
    Acknowledged,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
            AlertStatus::Acknowledged => "acknowledged",
        }
    }
}

/// A link shown with an alert (runbook, dashboard, the alert's page in its tool).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub label: String,
    pub url: String,
}

/// The source an alert came in through: its configured name and its adapter kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceRef {
    pub name: Arc<str>,
    pub kind: Arc<str>,
}

/// One alert, as an adapter normalized it from a payload (a payload may carry several).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub dedup_key: String,
    pub status: AlertStatus,
    pub severity: Severity,
    pub title: String,
    pub description: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub links: Vec<Link>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// For a firing alert: when its incident is resolved unless an alert renews it before
    /// (Prometheus' `endsAt` on the Alertmanager API path, a source's `resolve_after`).
    /// `None`: the incident stays open until the tool resolves it.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    pub source: SourceRef,
}

#[cfg(test)]
impl Alert {
    /// A bare alert for tests: source `s` (generic), title `t`, no labels, links or times.
    pub(crate) fn for_tests(dedup_key: &str, status: AlertStatus, severity: Severity) -> Alert {
        Alert {
            dedup_key: dedup_key.into(),
            status,
            severity,
            title: "t".into(),
            description: String::new(),
            labels: Labels::new(),
            annotations: Labels::new(),
            links: vec![],
            started_at: None,
            ended_at: None,
            expires_at: None,
            source: SourceRef {
                name: "s".into(),
                kind: "generic".into(),
            },
        }
    }
}

/// The lifecycle state of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Triggered,
    Acknowledged,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Triggered => "triggered",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        }
    }

    pub fn is_open(self) -> bool {
        !matches!(self, IncidentStatus::Resolved)
    }
}

/// An incident: every alert with the same (source name, dedup key) folded into one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub dedup_key: String,
    pub status: IncidentStatus,
    pub severity: Severity,
    pub title: String,
    pub description: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub links: Vec<Link>,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub last_seen_at: DateTime<Utc>,
    pub occurrences: u64,
    /// Not part of the public body: who this incident belongs to.
    #[serde(skip)]
    pub source: Option<SourceRef>,
}

impl Incident {
    /// An incident with only its identity and text: triggered, info, no labels, annotations
    /// or links, started and last seen at `now`, once.
    pub fn bare(
        id: String,
        dedup_key: String,
        title: String,
        description: String,
        now: DateTime<Utc>,
    ) -> Incident {
        Incident {
            id,
            dedup_key,
            status: IncidentStatus::Triggered,
            severity: Severity::Info,
            title,
            description,
            labels: Labels::new(),
            annotations: Labels::new(),
            links: vec![],
            started_at: now,
            resolved_at: None,
            last_seen_at: now,
            occurrences: 1,
            source: None,
        }
    }
}

/// The type of an event, as routes (`event="..."`) and endpoints (`events: [...]`) name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "incident.created")]
    Created,
    #[serde(rename = "incident.updated")]
    Updated,
    #[serde(rename = "incident.acknowledged")]
    Acknowledged,
    #[serde(rename = "incident.resolved")]
    Resolved,
    /// Sent by `POST /api/v1/endpoints/{name}/test`; never produced by an alert.
    #[serde(rename = "ping")]
    Ping,
    /// A grouped route's notification of a group of incidents (`data.group`).
    #[serde(rename = "group.notification")]
    GroupNotification,
    /// A delivery went dead (a notice to the `on_dead:` endpoints; never routed).
    #[serde(rename = "delivery.dead")]
    DeliveryDead,
    /// An endpoint was disabled (410 Gone, or failing for `disable_after`; a notice to the
    /// `on_dead:` endpoints; never routed).
    #[serde(rename = "endpoint.disabled")]
    EndpointDisabled,
    /// An open, unacknowledged incident is still open (`repeat_interval` on a route without
    /// `group_by`): its current state again.
    #[serde(rename = "incident.reminder")]
    Reminder,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::Created,
        EventType::Updated,
        EventType::Acknowledged,
        EventType::Resolved,
        EventType::Ping,
        EventType::GroupNotification,
        EventType::DeliveryDead,
        EventType::EndpointDisabled,
        EventType::Reminder,
    ];

    /// Whether this is a notice about deliveries (`delivery.dead`, `endpoint.disabled`): sent
    /// to the `on_dead:` endpoints, never routed, and never noticed in turn.
    pub fn is_notice(self) -> bool {
        matches!(self, EventType::DeliveryDead | EventType::EndpointDisabled)
    }

    /// Whether an alert's transition makes events of this type (what routes and `events:`
    /// patterns take).
    pub fn is_routed(self) -> bool {
        self != EventType::Ping && !self.is_notice()
    }

    /// The types an endpoint's `events:` entry names: an exact type, `*` (every type an alert
    /// can produce), or a prefix ending in `.*` (e.g. `incident.*`). `ping` is never routed, so
    /// a pattern does not take it.
    pub fn matching(pattern: &str) -> Result<Vec<EventType>, String> {
        let pattern = pattern.trim();
        let routed = || EventType::ALL.into_iter().filter(|t| t.is_routed());
        if pattern == "*" {
            return Ok(routed().collect());
        }
        if let Some(prefix) = pattern.strip_suffix('*') {
            if prefix.ends_with('.') {
                let found: Vec<EventType> = routed()
                    .filter(|t| t.as_str().starts_with(prefix))
                    .collect();
                if !found.is_empty() {
                    return Ok(found);
                }
            }
            return Err(format!(
                "`{pattern}` matches no event type (patterns are `*` or a prefix such as `incident.*`)"
            ));
        }
        pattern.parse().map(|t| vec![t])
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "incident.created",
            EventType::Updated => "incident.updated",
            EventType::Acknowledged => "incident.acknowledged",
            EventType::Resolved => "incident.resolved",
            EventType::Ping => "ping",
            EventType::GroupNotification => "group.notification",
            EventType::DeliveryDead => "delivery.dead",
            EventType::EndpointDisabled => "endpoint.disabled",
            EventType::Reminder => "incident.reminder",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown event type `{s}` (expected one of {})",
                    EventType::ALL.map(|t| t.as_str()).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod event_type_tests {
    use super::EventType;

    #[test]
    fn patterns_name_types_by_prefix_or_all() {
        assert_eq!(EventType::matching("*").unwrap().len(), 6);
        assert_eq!(EventType::matching("incident.*").unwrap().len(), 5);
        assert_eq!(
            EventType::matching("incident.resolved").unwrap(),
            vec![EventType::Resolved]
        );
        assert!(!EventType::matching("*").unwrap().contains(&EventType::Ping));
        assert!(
            EventType::matching("delivery.*").is_err(),
            "notices are never routed"
        );
        assert!(EventType::matching("alert.*")
            .unwrap_err()
            .contains("matches no event type"));
        assert!(EventType::matching("incident.exploded").is_err());
        assert!(EventType::matching("incident*").is_err());
    }
}

/// One changed field of an `incident.updated` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub from: String,
    pub to: String,
}

/// What changed in an `incident.updated` event, by field name.
pub type Changes = BTreeMap<String, Change>;

/// An event: what a transition of an incident emits, and what endpoints receive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `evt_` + a UUIDv7 (time-ordered); the same on every delivery attempt.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub timestamp: DateTime<Utc>,
    pub source: SourceRef,
    pub incident: Incident,
    pub changes: Option<Changes>,
    /// A `group.notification`'s group; its `incident` then stands for the whole group (id
    /// `grp_...`, the group key as dedup key, its title the group's summary), so every
    /// endpoint kind can render it as one incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Arc<group::GroupNotice>>,
    /// For a `delivery.dead` / `endpoint.disabled` notice: the delivery it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<Box<delivery::DeadNotice>>,
}

impl Event {
    /// A fresh event id: `evt_` and a UUIDv7, so ids sort by creation time.
    pub fn new_id() -> String {
        format!("evt_{}", uuid::Uuid::now_v7().simple())
    }
}

impl Event {
    /// An event id derived from `seed` (`evt_` and 32 hex digits of its SHA-256): an event
    /// made again from the same seed (a flush or release repeated after a crash) has the same
    /// id, which the delivery dedup key stops at an endpoint that got it already.
    pub fn derived_id(seed: &str) -> String {
        use sha2::Digest as _;
        let d = sha2::Sha256::digest(seed.as_bytes());
        format!("evt_{}", &hex::encode(d)[..32])
    }
}

/// A fresh incident id: `inc_` and a UUIDv7.
pub fn new_incident_id() -> String {
    format!("inc_{}", uuid::Uuid::now_v7().simple())
}

/// A minimal event for tests: `kind` for a new incident with the id `incident`, from source
/// `s` (generic).
#[cfg(test)]
pub(crate) fn test_event(incident: &str, kind: EventType) -> Event {
    let now = Utc::now();
    Event {
        id: Event::new_id(),
        kind,
        timestamp: now,
        source: SourceRef {
            name: "s".into(),
            kind: "generic".into(),
        },
        incident: Incident::bare(incident.into(), "k".into(), "t".into(), String::new(), now),
        changes: None,
        group: None,
        notice: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_words_map_onto_the_four_levels() {
        assert_eq!(Severity::from_word("High"), Some(Severity::Critical));
        assert_eq!(Severity::from_word("error"), Some(Severity::Error));
        assert_eq!(Severity::from_word("medium"), Some(Severity::Warning));
        assert_eq!(Severity::from_word(" low "), Some(Severity::Info));
        assert_eq!(Severity::from_word("bogus"), None);
    }

    #[test]
    fn event_types_round_trip_through_their_names() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::json!(t.as_str())
            );
        }
        assert!("incident.exploded".parse::<EventType>().is_err());
    }

    #[test]
    fn ids_are_prefixed_and_time_ordered() {
        let a = Event::new_id();
        let b = Event::new_id();
        assert!(a.starts_with("evt_") && a.len() == 36);
        assert!(a < b);
        assert!(new_incident_id().starts_with("inc_"));
    }
}
