//! The memory store: incidents and the delivery queue (`queue`) in this process only. The
//! default; nothing survives a restart, and it serves one instance.
//!
//! Memory per incident is kept small: an incident is stored encoded with `postcard` (compact
//! binary: one allocation, decoded only when an alert for it arrives or the admin API reads
//! it; about a third of the time and space of JSON) beside the few fields the store itself
//! needs. Resolved incidents are forgotten after [`DEFAULT_MEMORY_RESOLVED_RETENTION`].

pub mod changes;
mod queue;
mod restore;

pub use restore::Restore;

use changes::{ChangeLog, Frame, Op};
pub use queue::{
    MemoryQueue, DEFAULT_DEAD_LOG_CAPACITY, DEFAULT_DELIVERED_LOG_CAPACITY,
    DEFAULT_MEMORY_DEDUP_CAPACITY,
};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::leases::LeaseOffer;
use super::sharded::ShardedMap;
use super::{
    decide_once, Claim, Claimed, DeliveryQueueStore, IncidentStore, QueueStatus, Recorded,
    Recording, Routing, StoreError, StoredDeliveries,
};
use crate::model::delivery::Settlement;
use serde::{Deserialize, Serialize};

use crate::model::{Alert, Event, Incident, IncidentStatus, Labels, Link, Severity, SourceRef};

/// How many deliveries one endpoint has out at once with the memory store (each for a
/// different incident). Nothing of the memory store survives a crash anyway, so this is
/// bounded only by what one endpoint should be sent at once.
pub const DEFAULT_MEMORY_ENDPOINT_CONCURRENCY: usize = 256;

/// How long a resolved incident is kept (for the admin API and its history) before it is
/// forgotten; an alert for it after that starts a new incident, as it would anyway. The same
/// as the redis store's.
pub const DEFAULT_MEMORY_RESOLVED_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// (source name, dedup key): shared by the map of incidents and the index by id.
type IncidentKey = (Arc<str>, Arc<str>);

/// One incident as kept: what is read without decoding it, and the encoding of the rest. The
/// id, dedup key (in the map's key), status and start time are not repeated in it.
struct Stored {
    /// `postcard` of [`StoredFieldsRef`], read back as [`StoredFields`].
    encoded: Box<[u8]>,
    source: SourceRef,
    /// The id's UUID (`inc_<32 hex>`), for lookups by id without decoding.
    id: u128,
    status: IncidentStatus,
    /// Any time chrono holds (not nanoseconds in an `i64`, which end in 2262: an alert's
    /// start time comes from its sender).
    started_at: DateTime<Utc>,
}

/// The fields of an incident that live in its encoding. `postcard` is not self-describing:
/// every field is always written, in this order, and [`StoredFields`] reads them in the same
/// order (the two must stay in step; `stored_incidents_read_back_whole` checks them).
#[derive(Serialize)]
struct StoredFieldsRef<'a> {
    severity: Severity,
    title: &'a str,
    description: &'a str,
    labels: &'a Labels,
    annotations: &'a Labels,
    links: &'a [Link],
    #[serde(with = "exact_time_opt")]
    resolved_at: Option<DateTime<Utc>>,
    #[serde(with = "exact_time")]
    last_seen_at: DateTime<Utc>,
    occurrences: u64,
    /// Only for an id that is not `inc_<32 hex>` (never made here; kept whole if seen).
    id: Option<&'a str>,
}

#[derive(Deserialize)]
struct StoredFields {
    severity: Severity,
    title: String,
    description: String,
    labels: Labels,
    annotations: Labels,
    links: Vec<Link>,
    #[serde(with = "exact_time_opt")]
    resolved_at: Option<DateTime<Utc>>,
    #[serde(with = "exact_time")]
    last_seen_at: DateTime<Utc>,
    occurrences: u64,
    id: Option<String>,
}

/// A time as (seconds, nanoseconds) since the epoch: exact, over chrono's whole range, and a
/// few bytes instead of the 30 of its text.
mod exact_time {
    use chrono::{DateTime, Utc};
    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        (t.timestamp(), t.timestamp_subsec_nanos()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let (secs, nanos) = <(i64, u32)>::deserialize(d)?;
        DateTime::from_timestamp(secs, nanos).ok_or_else(|| D::Error::custom("time out of range"))
    }
}

/// [`exact_time`] for an optional time.
mod exact_time_opt {
    use chrono::{DateTime, Utc};
    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        t.map(|t| (t.timestamp(), t.timestamp_subsec_nanos()))
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match <Option<(i64, u32)>>::deserialize(d)? {
            None => Ok(None),
            Some((secs, nanos)) => DateTime::from_timestamp(secs, nanos)
                .map(Some)
                .ok_or_else(|| D::Error::custom("time out of range")),
        }
    }
}

impl Stored {
    fn new(incident: &Incident, source: SourceRef) -> Result<Stored, StoreError> {
        let bits = id_bits(&incident.id);
        let fields = StoredFieldsRef {
            severity: incident.severity,
            title: &incident.title,
            description: &incident.description,
            labels: &incident.labels,
            annotations: &incident.annotations,
            links: &incident.links,
            resolved_at: incident.resolved_at,
            last_seen_at: incident.last_seen_at,
            occurrences: incident.occurrences,
            id: bits.is_none().then_some(incident.id.as_str()),
        };
        Ok(Stored {
            encoded: postcard::to_allocvec(&fields)
                .map_err(|e| StoreError::Rejected(format!("an incident cannot be encoded: {e}")))?
                .into_boxed_slice(),
            source,
            id: bits.unwrap_or(0),
            status: incident.status,
            started_at: incident.started_at,
        })
    }

    /// The incident, whose dedup key is `dedup_key` (the map's key).
    fn incident(&self, dedup_key: &str) -> Option<Incident> {
        let f: StoredFields = postcard::from_bytes(&self.encoded).ok()?;
        Some(Incident {
            id: f.id.unwrap_or_else(|| format!("inc_{:032x}", self.id)),
            dedup_key: dedup_key.to_string(),
            status: self.status,
            severity: f.severity,
            title: f.title,
            description: f.description,
            labels: f.labels,
            annotations: f.annotations,
            links: f.links,
            started_at: self.started_at,
            resolved_at: f.resolved_at,
            last_seen_at: f.last_seen_at,
            occurrences: f.occurrences,
            source: Some(self.source.clone()),
        })
    }
}

/// The 128 bits of an `inc_<32 hex>` id.
fn id_bits(id: &str) -> Option<u128> {
    u128::from_str_radix(id.strip_prefix("inc_")?, 16).ok()
}

#[derive(Default)]
struct Incidents {
    /// Sharded, so that growing it never pauses recording for long (`store::sharded`).
    by_key: ShardedMap<IncidentKey, Stored>,
    /// The key of each incident by its id's 128 bits (the admin API reads incidents by id;
    /// a scan of every incident under the lock would hold up recording). Sharded like
    /// `by_key`, for the same reason.
    by_id: ShardedMap<u128, IncidentKey>,
    open: usize,
    /// Resolved incidents in the order they were resolved: (when, key, id).
    resolved: VecDeque<(DateTime<Utc>, IncidentKey, u128)>,
}

impl Incidents {
    /// Forgets incidents resolved more than `retention` ago (unless reopened since).
    fn forget_resolved(&mut self, now: DateTime<Utc>, retention: Duration) {
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        while let Some((at, _, _)) = self.resolved.front() {
            if now - *at < retention {
                break;
            }
            let Some((_, key, id)) = self.resolved.pop_front() else {
                break;
            };
            if self
                .by_key
                .get(&key)
                .is_some_and(|s| s.id == id && s.status == IncidentStatus::Resolved)
            {
                self.by_key.remove(&key);
                self.by_id.remove(&id);
            }
        }
    }

    /// Keeps `stored` as the incident of `key`, and the index by id in step with it; returns
    /// what `key` held before.
    fn put(&mut self, key: IncidentKey, stored: Stored) -> Option<Stored> {
        let id = stored.id;
        let before = self.by_key.insert(key.clone(), stored);
        let before_id = before.as_ref().map(|s| s.id);
        if before_id != Some(id) {
            if let Some(old) = before_id {
                // The key's earlier incident (resolved, now replaced by a new one) is gone.
                self.by_id.remove(&old);
            }
            // 0: an id not of the `inc_<hex>` form, found by no lookup.
            if id != 0 {
                self.by_id.insert(id, key);
            }
        }
        before
    }

    /// Forgets the incident of `key` and its index entry.
    fn take(&mut self, key: &IncidentKey) {
        if let Some(s) = self.by_key.remove(key) {
            self.by_id.remove(&s.id);
        }
    }

    /// Undoes a partly applied `record` call: puts back what each key held before, newest
    /// change first, and the counters as they were.
    fn roll_back(&mut self, undo: Undo) {
        for (key, before) in undo.changes.into_iter().rev() {
            match before {
                Some(s) => {
                    self.put(key, s);
                }
                None => self.take(&key),
            }
        }
        self.open = undo.open;
        self.resolved.truncate(undo.resolved_len);
    }

    /// The incident with these id bits.
    fn by_id(&self, id: u128) -> Option<(&IncidentKey, &Stored)> {
        let key = self.by_id.get(&id)?;
        let stored = self.by_key.get(key).filter(|s| s.id == id)?;
        Some((key, stored))
    }
}

/// What one `record` call changed, to undo it when a later alert of the call fails: the
/// call is all or nothing.
struct Undo {
    /// (key, what it held before), in the order the changes were made.
    changes: Vec<(IncidentKey, Option<Stored>)>,
    open: usize,
    resolved_len: usize,
}

/// Incidents and the delivery queue in memory.
#[derive(Default)]
pub struct MemoryStore {
    incidents: Mutex<Incidents>,
    queue: MemoryQueue,
    resolved_retention: Duration,
    /// Where each call's changes are written (the file store's journal); None: nowhere.
    changes: Option<Arc<dyn ChangeLog>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore {
            resolved_retention: DEFAULT_MEMORY_RESOLVED_RETENTION,
            ..Default::default()
        }
    }

    /// A store that hands every change it makes to `log` (see [`changes`]).
    pub fn with_changes(log: Arc<dyn ChangeLog>) -> Self {
        MemoryStore {
            resolved_retention: DEFAULT_MEMORY_RESOLVED_RETENTION,
            queue: MemoryQueue::with_changes(log.clone()),
            changes: Some(log),
            ..Default::default()
        }
    }

    fn incidents(&self) -> MutexGuard<'_, Incidents> {
        // A panic while holding the lock cannot leave a half-applied transition: every write
        // is a single insert of a fully built incident.
        self.incidents.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MemoryStore {
    /// Applies the alerts to the incidents, all or none. With a change log, `ops` gets the
    /// incidents changed (an event's incident by the event's index among the recorded events).
    fn record_incidents(
        &self,
        alerts: &[Alert],
        now: DateTime<Utc>,
        mut ops: Option<&mut Vec<Op>>,
    ) -> Result<Vec<Recorded>, StoreError> {
        let mut state = self.incidents();
        state.forget_resolved(now, self.resolved_retention);
        let mut undo = Undo {
            changes: Vec::new(),
            open: state.open,
            resolved_len: state.resolved.len(),
        };
        let mut out = Vec::with_capacity(alerts.len());
        let mut events = 0u32;
        for alert in alerts {
            let key: IncidentKey = (alert.source.name.clone(), alert.dedup_key.as_str().into());
            let current = state.by_key.get(&key).and_then(|s| s.incident(&key.1));
            let was_open = current.as_ref().is_some_and(|i| i.status.is_open());
            let (recorded, next) = decide_once(current.as_ref(), alert, now);
            if let Some(next) = next.get(&recorded) {
                let is_open = next.status.is_open();
                let stored = match Stored::new(next, alert.source.clone()) {
                    Ok(s) => s,
                    Err(e) => {
                        state.roll_back(undo);
                        return Err(e);
                    }
                };
                if !is_open {
                    state.resolved.push_back((now, key.clone(), stored.id));
                }
                let before = state.put(key.clone(), stored);
                undo.changes.push((key, before));
                match (was_open, is_open) {
                    (false, true) => state.open += 1,
                    (true, false) => state.open -= 1,
                    _ => {}
                }
                if let Some(ops) = ops.as_deref_mut() {
                    ops.push(match recorded.event {
                        Some(_) => Op::IncidentOfEvent {
                            event: events,
                            at: now,
                        },
                        None => Op::Incident {
                            incident: Box::new(next.clone()),
                            source: alert.source.clone(),
                            at: now,
                        },
                    });
                }
            }
            if recorded.event.is_some() {
                events += 1;
            }
            out.push(recorded);
        }
        Ok(out)
    }
}

#[async_trait]
impl IncidentStore for MemoryStore {
    async fn record(
        &self,
        alerts: &[Alert],
        now: DateTime<Utc>,
        routes: &dyn Routing,
        offer: &mut LeaseOffer,
    ) -> Result<Recording, StoreError> {
        let mut frame = self.changes.as_ref().map(|_| Frame::default());
        let mut recorded =
            self.record_incidents(alerts, now, frame.as_mut().map(|f| &mut f.ops))?;
        let mut deliveries = Vec::new();
        // With a change log: each delivery's event, as an index into the frame's events.
        let mut event_of: Vec<u32> = Vec::new();
        let mut want: Vec<(Arc<str>, usize)> = Vec::new();
        for r in &mut recorded {
            if let Some(event) = &r.event {
                if let Some(frame) = frame.as_mut() {
                    frame.events.push(event.clone());
                }
                r.endpoints = routes.endpoints_of(event);
                for endpoint in &r.endpoints {
                    match want.iter_mut().find(|(e, _)| e == endpoint) {
                        Some((_, n)) => *n += 1,
                        None => want.push((endpoint.clone(), 1)),
                    }
                    deliveries.push((endpoint.clone(), event.clone()));
                    if let Some(frame) = &frame {
                        event_of.push(frame.events.len() as u32 - 1);
                    }
                }
            }
        }
        // New lanes go straight to this process's delivery actors, within their room.
        offer.reserve(&want);
        let room: Vec<(&str, usize, Duration)> = offer.reserved().collect();
        let (leased, due) = self
            .queue
            .add(deliveries, &room, frame.map(|f| (f, event_of)));
        Ok(Recording {
            recorded,
            leased,
            due,
            pending: Some(self.queue.pending()),
        })
    }

    async fn persist(&self) -> Result<(), StoreError> {
        // Nothing outlives the process.
        Ok(())
    }

    async fn open_count(&self) -> Result<usize, StoreError> {
        Ok(self.incidents().open)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl DeliveryQueueStore for MemoryStore {
    async fn claim(
        &self,
        endpoint: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        Ok(self.queue.claim(endpoint, limit, lease))
    }

    async fn settle_many(
        &self,
        endpoint: &str,
        settles: &[(Claimed, Settlement)],
    ) -> Result<QueueStatus, StoreError> {
        Ok(self.queue.settle(endpoint, settles))
    }

    async fn deliveries(&self, endpoint: &str) -> Result<StoredDeliveries, StoreError> {
        Ok(self.queue.deliveries(endpoint))
    }

    async fn replay_many(
        &self,
        endpoint: &str,
        delivery_ids: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        Ok(self.queue.replay_many(endpoint, delivery_ids))
    }

    async fn enqueue(
        &self,
        event: Arc<Event>,
        endpoints: &[Arc<str>],
    ) -> Result<usize, StoreError> {
        let deliveries = endpoints
            .iter()
            .map(|e| (e.clone(), event.clone()))
            .collect();
        let frame = self.changes.as_ref().map(|_| {
            let frame = Frame {
                events: vec![event.clone()],
                ops: Vec::new(),
            };
            (frame, vec![0; endpoints.len()])
        });
        self.queue.add(deliveries, &[], frame);
        Ok(self.queue.pending())
    }

    fn concurrency(&self) -> usize {
        DEFAULT_MEMORY_ENDPOINT_CONCURRENCY
    }

    fn is_durable(&self) -> bool {
        false
    }
}

// Admin API reads: by id through the index; lists by a scan over the few undecoded fields,
// and only what is returned is decoded.
#[async_trait]
impl crate::store::query::IncidentQuery for MemoryStore {
    async fn list_incidents(
        &self,
        filter: &crate::store::query::IncidentFilter,
    ) -> Result<Vec<Incident>, StoreError> {
        let state = self.incidents();
        let mut matching: Vec<(&IncidentKey, &Stored)> = state
            .by_key
            .iter()
            .filter(|(_, s)| filter.status.is_none_or(|st| st == s.status))
            .filter(|(_, s)| {
                filter
                    .source
                    .as_deref()
                    .is_none_or(|want| &*s.source.name == want)
            })
            .collect();
        // Newest first; only the first `limit` are sorted (a full sort of a million incidents
        // under the lock would hold up recording).
        let newest_first = |(_, a): &(&IncidentKey, &Stored), (_, b): &(&IncidentKey, &Stored)| {
            b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id))
        };
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        if matching.len() > filter.limit {
            matching.select_nth_unstable_by(filter.limit - 1, newest_first);
            matching.truncate(filter.limit);
        }
        matching.sort_by(newest_first);
        Ok(matching
            .into_iter()
            .take(filter.limit)
            .filter_map(|(key, s)| s.incident(&key.1))
            .collect())
    }

    async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let Some(bits) = id_bits(id) else {
            return Ok(None);
        };
        Ok(self
            .incidents()
            .by_id(bits)
            .and_then(|(key, s)| s.incident(&key.1)))
    }
}

#[cfg(test)]
mod tests;
