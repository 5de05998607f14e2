//! What a `group.notification` event carries: a group of incidents routed to a grouped route
//! (`group_by`), notified together (`data.group` in the webhook body).

use serde::{Deserialize, Serialize};

use super::{Incident, IncidentStatus, Labels};

/// A group's status: firing while any of its incidents is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    Firing,
    Resolved,
}

/// How many incidents of the group are open (`firing`) and resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounts {
    pub firing: usize,
    pub resolved: usize,
}

/// One notification of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupNotice {
    /// The group key: the route and the `group_by` values (`route:{label="value",...}`).
    pub key: String,
    /// The route's name.
    pub route: String,
    /// The `group_by` values.
    pub labels: Labels,
    pub status: GroupStatus,
    /// Every incident of the group now.
    pub incidents: Vec<Incident>,
    /// The ids of the incidents that changed since the group's last notification.
    pub changed: Vec<String>,
    pub counts: GroupCounts,
    /// Whether this is the group's first notification (endpoints that open a record per group
    /// open it on the first one).
    #[serde(default)]
    pub first: bool,
}

impl GroupNotice {
    /// The notice of `incidents` (their status decides the group's).
    pub fn new(
        key: String,
        route: String,
        labels: Labels,
        incidents: Vec<Incident>,
        changed: Vec<String>,
        first: bool,
    ) -> GroupNotice {
        let firing = incidents.iter().filter(|i| i.status.is_open()).count();
        let counts = GroupCounts {
            firing,
            resolved: incidents.len() - firing,
        };
        GroupNotice {
            key,
            route,
            labels,
            status: if firing > 0 {
                GroupStatus::Firing
            } else {
                GroupStatus::Resolved
            },
            incidents,
            changed,
            counts,
            first,
        }
    }

    /// The status an incident standing for the whole group has.
    pub fn incident_status(&self) -> IncidentStatus {
        match self.status {
            GroupStatus::Firing => IncidentStatus::Triggered,
            GroupStatus::Resolved => IncidentStatus::Resolved,
        }
    }
}
