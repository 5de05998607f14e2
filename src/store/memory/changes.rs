//! The memory store's changes as data, for a store that keeps the memory store's state on
//! disk (`store::file`): each call that changes state describes what it did as a [`Frame`] of
//! [`Op`]s and hands it to the store's [`ChangeLog`] under the lock that made the change, so
//! frames reach the log in the order the changes were made, and one call's changes are one
//! frame (all or nothing). At start-up the frames are applied again (`MemoryStore::apply`).
//!
//! Ops describe effects, not requests: ids, times and attempts are in them, so applying them
//! again needs no clock, no random ids and no route table. Applying one twice leaves the
//! state as applying it once (a snapshot may already hold what the log after it repeats).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::delivery::{Attempt, DeliveryState};
use crate::model::{Event, Incident, IncidentStatus, SourceRef};

/// Where a memory store writes what each call changed (the file store's journal).
pub trait ChangeLog: Send + Sync {
    /// Takes one call's changes, in the order they were made (called under the store's
    /// lock: it only encodes and buffers).
    fn append(&self, frame: &Frame);
}

/// One call's changes: all of them are applied again, or (a torn write) none.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Frame {
    /// Events the ops refer to by index (each once, however many endpoints it goes to).
    #[serde(with = "events")]
    pub events: Vec<Arc<Event>>,
    pub ops: Vec<Op>,
}

/// Events in a frame: every field always written, in order (`postcard` is not
/// self-describing, and `Event` leaves out an empty `group` or `notice` in JSON); a group
/// notice and a delivery notice as JSON. A field added to `Event` fails to compile here until
/// it is written too.
mod events {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::model::{Changes, Event, EventType, Incident, SourceRef};

    #[derive(Serialize)]
    struct EventRef<'a> {
        id: &'a str,
        kind: EventType,
        timestamp: DateTime<Utc>,
        source: &'a SourceRef,
        incident: &'a Incident,
        changes: &'a Option<Changes>,
        group: Option<String>,
        notice: Option<String>,
    }

    #[derive(Deserialize)]
    struct EventOwned {
        id: String,
        kind: EventType,
        timestamp: DateTime<Utc>,
        source: SourceRef,
        incident: Incident,
        changes: Option<Changes>,
        group: Option<String>,
        notice: Option<String>,
    }

    pub fn serialize<S: Serializer>(events: &[Arc<Event>], s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let group = match &e.group {
                Some(g) => Some(serde_json::to_string(g).map_err(S::Error::custom)?),
                None => None,
            };
            let notice = match &e.notice {
                Some(n) => Some(serde_json::to_string(n).map_err(S::Error::custom)?),
                None => None,
            };
            out.push(EventRef {
                id: &e.id,
                kind: e.kind,
                timestamp: e.timestamp,
                source: &e.source,
                incident: &e.incident,
                changes: &e.changes,
                group,
                notice,
            });
        }
        out.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Arc<Event>>, D::Error> {
        use serde::de::Error;
        Vec::<EventOwned>::deserialize(d)?
            .into_iter()
            .map(|e| {
                let group = match e.group {
                    Some(g) => Some(Arc::new(
                        serde_json::from_str(&g).map_err(D::Error::custom)?,
                    )),
                    None => None,
                };
                let notice = match e.notice {
                    Some(n) => Some(Box::new(
                        serde_json::from_str(&n).map_err(D::Error::custom)?,
                    )),
                    None => None,
                };
                let mut incident = e.incident;
                incident.source = Some(e.source.clone());
                Ok(Arc::new(Event {
                    id: e.id,
                    kind: e.kind,
                    timestamp: e.timestamp,
                    source: e.source,
                    incident,
                    changes: e.changes,
                    group,
                    notice,
                }))
            })
            .collect()
    }
}

impl Frame {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// One change.
#[derive(Debug, Serialize, Deserialize)]
pub enum Op {
    /// The incident after a transition that emitted `events[event]`: the event's incident.
    IncidentOfEvent { event: u32, at: DateTime<Utc> },
    /// The incident after a transition (one that emitted no event), recorded at `at`.
    Incident {
        incident: Box<Incident>,
        source: SourceRef,
        at: DateTime<Utc>,
    },
    /// An incident as the memory store keeps it (snapshots: copied without decoding it).
    Stored {
        source: SourceRef,
        dedup_key: String,
        encoded: Vec<u8>,
        id: u128,
        status: IncidentStatus,
        started_at: DateTime<Utc>,
        /// When it was recorded resolved (resolved retention counts from it).
        at: DateTime<Utc>,
    },
    /// A delivery of `events[event]` at the tail of its incident's lane; a lane that was idle
    /// falls due at `due_at`.
    Push {
        endpoint: Arc<str>,
        id: String,
        event: u32,
        state: DeliveryState,
        attempts: Vec<Attempt>,
        replay_of: Option<String>,
        due_at: DateTime<Utc>,
    },
    /// The head `id` of `lane` was attempted (or released): its attempts, and when it is due.
    Head {
        endpoint: Arc<str>,
        lane: String,
        id: String,
        attempts: Vec<Attempt>,
        due_at: DateTime<Utc>,
    },
    /// The head `id` of `lane` finished (delivered or dead) and went to the log.
    Finish {
        endpoint: Arc<str>,
        lane: String,
        id: String,
        state: DeliveryState,
        attempts: Vec<Attempt>,
    },
    /// A finished delivery in the log (snapshots), oldest first.
    Logged {
        endpoint: Arc<str>,
        id: String,
        event: u32,
        state: DeliveryState,
        attempts: Vec<Attempt>,
        replay_of: Option<String>,
    },
    /// The endpoint answered 410 (true), or a replay re-enabled it (false).
    Disabled { endpoint: Arc<str>, disabled: bool },
    /// The event was delivered to the endpoint (its dedup key).
    Delivered {
        endpoint: Arc<str>,
        event_id: String,
    },
    /// The finished delivery `of` queued again as `id`, due at `due_at` if its lane was idle.
    Replay {
        endpoint: Arc<str>,
        of: String,
        id: String,
        due_at: DateTime<Utc>,
    },
    /// A Jira key / ServiceNow sys_id of (endpoint, incident).
    Ref {
        endpoint: String,
        incident_id: String,
        reference: String,
    },
    /// A request id recorded, remembered until `until`.
    RequestId {
        source: String,
        id: String,
        until: DateTime<Utc>,
    },
    /// A notification group as it is now (`store::groups`), or None: it ended.
    Group {
        key: String,
        state: Option<StoredGroup>,
    },
    /// A timer as armed now (`store::timers`: due in ms, payload), or None: it is gone.
    /// Leases are not kept: after a restart a claimed timer is due again.
    Timer {
        set: String,
        key: String,
        armed: Option<(i64, String)>,
    },
    /// A document as it is now (`store::documents`: silences, held incidents), or None: it
    /// was removed.
    Document {
        collection: String,
        key: String,
        value: Option<String>,
    },
    /// Incidents joined their groups (`Groups::join`'s (group key, meta, incident id), in
    /// order; the meta only on a key's first join of the call, else empty): applied again
    /// on replay. A join costs its own bytes, not its group's (a group of a storm has
    /// thousands of members; journaling the whole group at every join was quadratic).
    GroupJoin {
        joins: Vec<(String, String, String)>,
    },
}

/// A notification group's state in a frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredGroup {
    pub meta: String,
    pub members: Vec<(String, u64)>,
    pub notified_at: Option<DateTime<Utc>>,
}
