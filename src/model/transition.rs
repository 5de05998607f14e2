//! The incident state machine: what one alert does to the incident it belongs to, as a pure
//! function, so that every store (memory, redis) applies exactly the same table.
//!
//! | alert | incident before | event |
//! |---|---|---|
//! | firing | none, or resolved | `incident.created` (new incident, new id) |
//! | firing, same severity and title | triggered / acknowledged | none (occurrences grow) |
//! | firing, severity or title changed | triggered / acknowledged | `incident.updated` |
//! | acknowledged | triggered | `incident.acknowledged` |
//! | resolved | triggered / acknowledged | `incident.resolved` |
//! | resolved | none, or resolved | none (`ignored`) |

use chrono::{DateTime, Utc};

use crate::model::{
    new_incident_id, Alert, AlertStatus, Change, Changes, EventType, Incident, IncidentStatus,
};

/// What an alert did, for counting (`switchyard_alerts_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Acknowledged,
    Resolved,
    /// A repeat of an open incident with nothing new: occurrences and last_seen_at grow.
    Repeat,
    /// Nothing to do: resolved/acknowledged with no open incident, or acknowledged twice.
    Ignored,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Acknowledged => "acknowledged",
            Outcome::Resolved => "resolved",
            Outcome::Repeat => "repeat",
            Outcome::Ignored => "ignored",
        }
    }

    /// The event this outcome emits, if any.
    pub fn event(self) -> Option<EventType> {
        match self {
            Outcome::Created => Some(EventType::Created),
            Outcome::Updated => Some(EventType::Updated),
            Outcome::Acknowledged => Some(EventType::Acknowledged),
            Outcome::Resolved => Some(EventType::Resolved),
            Outcome::Repeat | Outcome::Ignored => None,
        }
    }
}

/// The result of applying one alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub outcome: Outcome,
    /// The incident's state to store (None: leave the stored incident as it is).
    pub next: Option<Incident>,
    /// For `incident.updated`: which fields changed.
    pub changes: Option<Changes>,
}

/// Applies `alert` to `current` (the stored incident for the alert's source and dedup key).
pub fn apply(current: Option<&Incident>, alert: &Alert, now: DateTime<Utc>) -> Transition {
    let open = current.filter(|inc| inc.status.is_open());
    match (alert.status, open) {
        (AlertStatus::Firing, None) => Transition {
            outcome: Outcome::Created,
            next: Some(new_incident(alert, now)),
            changes: None,
        },
        (AlertStatus::Firing, Some(inc)) => {
            let mut next = inc.clone();
            next.occurrences += 1;
            next.last_seen_at = now;
            let mut changes = Changes::new();
            if inc.severity != alert.severity {
                changes.insert(
                    "severity".into(),
                    Change {
                        from: inc.severity.as_str().into(),
                        to: alert.severity.as_str().into(),
                    },
                );
                next.severity = alert.severity;
            }
            if inc.title != alert.title {
                changes.insert(
                    "title".into(),
                    Change {
                        from: inc.title.clone(),
                        to: alert.title.clone(),
                    },
                );
                next.title = alert.title.clone();
            }
            // The rest follows the latest alert silently.
            next.description.clone_from(&alert.description);
            next.labels.clone_from(&alert.labels);
            next.annotations.clone_from(&alert.annotations);
            next.links.clone_from(&alert.links);
            if changes.is_empty() {
                Transition {
                    outcome: Outcome::Repeat,
                    next: Some(next),
                    changes: None,
                }
            } else {
                Transition {
                    outcome: Outcome::Updated,
                    next: Some(next),
                    changes: Some(changes),
                }
            }
        }
        (AlertStatus::Acknowledged, Some(inc)) if inc.status == IncidentStatus::Triggered => {
            let mut next = inc.clone();
            next.status = IncidentStatus::Acknowledged;
            next.last_seen_at = now;
            Transition {
                outcome: Outcome::Acknowledged,
                next: Some(next),
                changes: None,
            }
        }
        (AlertStatus::Resolved, Some(inc)) => {
            let mut next = inc.clone();
            next.status = IncidentStatus::Resolved;
            next.resolved_at = Some(alert.ended_at.unwrap_or(now));
            next.last_seen_at = now;
            Transition {
                outcome: Outcome::Resolved,
                next: Some(next),
                changes: None,
            }
        }
        (AlertStatus::Acknowledged | AlertStatus::Resolved, _) => Transition {
            outcome: Outcome::Ignored,
            next: None,
            changes: None,
        },
    }
}

fn new_incident(alert: &Alert, now: DateTime<Utc>) -> Incident {
    Incident {
        id: new_incident_id(),
        dedup_key: alert.dedup_key.clone(),
        status: IncidentStatus::Triggered,
        severity: alert.severity,
        title: alert.title.clone(),
        description: alert.description.clone(),
        labels: alert.labels.clone(),
        annotations: alert.annotations.clone(),
        links: alert.links.clone(),
        started_at: alert.started_at.unwrap_or(now),
        resolved_at: None,
        last_seen_at: now,
        occurrences: 1,
        source: Some(alert.source.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    fn alert(status: AlertStatus, severity: Severity, title: &str) -> Alert {
        Alert {
            title: title.into(),
            ..Alert::for_tests("k1", status, severity)
        }
    }

    fn stored(t: &Transition) -> Incident {
        t.next.clone().expect("a state to store")
    }

    #[test]
    fn the_whole_table() {
        let now = Utc::now();
        let fire = alert(AlertStatus::Firing, Severity::Warning, "Disk");

        let created = apply(None, &fire, now);
        assert_eq!(created.outcome, Outcome::Created);
        let inc = stored(&created);
        assert_eq!(
            (inc.status, inc.occurrences),
            (IncidentStatus::Triggered, 1)
        );

        let repeat = apply(Some(&inc), &fire, now);
        assert_eq!(repeat.outcome, Outcome::Repeat);
        assert_eq!(stored(&repeat).occurrences, 2);
        assert_eq!(stored(&repeat).id, inc.id);

        let worse = alert(AlertStatus::Firing, Severity::Critical, "Disk");
        let updated = apply(Some(&inc), &worse, now);
        assert_eq!(updated.outcome, Outcome::Updated);
        let changes = updated.changes.clone().unwrap();
        assert_eq!(changes["severity"].from, "warning");
        assert_eq!(changes["severity"].to, "critical");
        assert!(!changes.contains_key("title"));

        let ack = alert(AlertStatus::Acknowledged, Severity::Warning, "Disk");
        let acked = apply(Some(&inc), &ack, now);
        assert_eq!(acked.outcome, Outcome::Acknowledged);
        let acked_inc = stored(&acked);
        assert_eq!(apply(Some(&acked_inc), &ack, now).outcome, Outcome::Ignored);
        assert_eq!(apply(Some(&acked_inc), &fire, now).outcome, Outcome::Repeat);

        let res = alert(AlertStatus::Resolved, Severity::Warning, "Disk");
        let resolved = apply(Some(&acked_inc), &res, now);
        assert_eq!(resolved.outcome, Outcome::Resolved);
        let closed = stored(&resolved);
        assert_eq!(closed.status, IncidentStatus::Resolved);
        assert_eq!(closed.resolved_at, Some(now));

        assert_eq!(apply(Some(&closed), &res, now).outcome, Outcome::Ignored);
        assert_eq!(apply(None, &res, now).outcome, Outcome::Ignored);
        assert_eq!(apply(None, &ack, now).outcome, Outcome::Ignored);

        let again = apply(Some(&closed), &fire, now);
        assert_eq!(again.outcome, Outcome::Created);
        assert_ne!(stored(&again).id, inc.id, "a new incident gets a new id");
    }

    #[test]
    fn title_change_is_an_update() {
        let now = Utc::now();
        let inc = stored(&apply(
            None,
            &alert(AlertStatus::Firing, Severity::Info, "a"),
            now,
        ));
        let t = apply(
            Some(&inc),
            &alert(AlertStatus::Firing, Severity::Info, "b"),
            now,
        );
        assert_eq!(t.outcome, Outcome::Updated);
        assert_eq!(t.changes.unwrap()["title"].to, "b");
    }
}
