//! A group's notification as an event: plain functions of the group's state and its
//! incidents, tested without a store.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::Digest as _;

use crate::model::group::{GroupNotice, GroupStatus};
use crate::model::{Event, EventType, Incident, SourceRef};

/// How many incidents a notification's summary (its incident's description) lists; the rest
/// are counted ("and N more"). `data.group.incidents` has them all.
pub const DEFAULT_GROUP_SUMMARY_INCIDENTS: usize = 10;

/// The id of the incident that stands for group `key` (`grp_` + 32 hex of its digest): the
/// lane of its notifications and the record endpoints keep per group.
pub fn group_incident_id(key: &str) -> String {
    format!(
        "grp_{}",
        hex::encode(&sha2::Sha256::digest(key.as_bytes())[..16])
    )
}

/// The event id of the notification a group timer due at `due_ms` makes: the same if that
/// timer fires again (its claimant died before completing it), so an endpoint that got the
/// first is not sent the second (the delivery dedup key).
pub fn notification_id(key: &str, due_ms: i64) -> String {
    Event::derived_id(&format!("{key}\n{due_ms}"))
}

/// `[FIRING:2] alertname=DiskFull cluster=prod`: Alertmanager's summary line.
pub fn summary_title(g: &GroupNotice) -> String {
    use std::fmt::Write as _;
    let mut title = String::with_capacity(64);
    // Writing to a String cannot fail.
    let _ = match g.status {
        GroupStatus::Firing => write!(title, "[FIRING:{}]", g.counts.firing),
        GroupStatus::Resolved => write!(title, "[RESOLVED]"),
    };
    if g.labels.is_empty() {
        let _ = write!(title, " {}", g.route);
    }
    for (k, v) in &g.labels {
        let _ = write!(title, " {k}={v}");
    }
    title
}

/// One line per incident (firing first, most severe first), up to
/// [`DEFAULT_GROUP_SUMMARY_INCIDENTS`], then "and N more".
pub fn summary_text(g: &GroupNotice) -> String {
    let mut order: Vec<&Incident> = g.incidents.iter().collect();
    order.sort_by_key(|i| (!i.status.is_open(), i.severity, i.started_at));
    let mut lines: Vec<String> = order
        .iter()
        .take(DEFAULT_GROUP_SUMMARY_INCIDENTS)
        .map(|i| {
            let changed = if g.changed.contains(&i.id) {
                " (new/changed)"
            } else {
                ""
            };
            format!(
                "- [{}] {} ({}){changed}",
                i.severity,
                i.title,
                i.status.as_str()
            )
        })
        .collect();
    if order.len() > DEFAULT_GROUP_SUMMARY_INCIDENTS {
        lines.push(format!(
            "and {} more",
            order.len() - DEFAULT_GROUP_SUMMARY_INCIDENTS
        ));
    }
    lines.join("\n")
}

/// The `group.notification` event of `g`: its `incident` stands for the whole group.
pub fn notification(g: GroupNotice, id: String, now: DateTime<Utc>) -> Event {
    let open = g.incidents.iter().filter(|i| i.status.is_open());
    let severity = open
        .clone()
        .map(|i| i.severity)
        .min()
        .or_else(|| g.incidents.iter().map(|i| i.severity).min())
        .unwrap_or(crate::model::Severity::Info);
    let started_at = g
        .incidents
        .iter()
        .map(|i| i.started_at)
        .min()
        .unwrap_or(now);
    let source = g
        .incidents
        .iter()
        .find_map(|i| i.source.clone())
        .unwrap_or_else(|| SourceRef {
            name: "switchyard".into(),
            kind: "group".into(),
        });
    let mut incident = Incident::bare(
        group_incident_id(&g.key),
        g.key.clone(),
        summary_title(&g),
        summary_text(&g),
        now,
    );
    incident.status = g.incident_status();
    incident.severity = severity;
    incident.labels = g.labels.clone();
    incident.started_at = started_at;
    incident.resolved_at = (g.status == GroupStatus::Resolved).then_some(now);
    incident.occurrences = g.incidents.len() as u64;
    incident.source = Some(source.clone());
    Event {
        id,
        kind: EventType::GroupNotification,
        timestamp: now,
        source,
        incident,
        changes: None,
        group: Some(Arc::new(g)),
        notice: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IncidentStatus, Labels};

    fn incident(id: &str, status: IncidentStatus) -> Incident {
        let mut i = Incident::bare(id.into(), id.into(), id.into(), String::new(), Utc::now());
        i.status = status;
        i
    }

    #[test]
    fn the_title_is_alertmanagers_summary_line() {
        let labels: Labels = [("cluster", "prod"), ("alertname", "DiskFull")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let incidents = vec![
            incident("a", IncidentStatus::Triggered),
            incident("b", IncidentStatus::Acknowledged),
            incident("c", IncidentStatus::Resolved),
        ];
        let g = GroupNotice::new(
            "k".into(),
            "route#0".into(),
            labels,
            incidents,
            vec![],
            true,
        );
        assert_eq!(
            summary_title(&g),
            "[FIRING:2] alertname=DiskFull cluster=prod"
        );
        let done = vec![incident("a", IncidentStatus::Resolved)];
        let g = GroupNotice::new("k".into(), "db".into(), Labels::new(), done, vec![], false);
        assert_eq!(summary_title(&g), "[RESOLVED] db");
    }
}
