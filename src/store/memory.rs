//! The memory store: incidents and the delivery queue (`queue`) in this process only. The
//! default; nothing survives a restart, and it serves one instance.
//!
//! Memory per incident is kept small: an incident is stored encoded with `postcard` (compact
//! binary: one allocation, decoded only when an alert for it arrives or the admin API reads
//! it; about a third of the time and space of JSON) beside the few fields the store itself
//! needs. Resolved incidents are forgotten after [`DEFAULT_MEMORY_RESOLVED_RETENTION`].

mod queue;

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

use crate::model::{Alert, Incident, IncidentStatus, Labels, Link, Severity, SourceRef};

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
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore {
            resolved_retention: DEFAULT_MEMORY_RESOLVED_RETENTION,
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
    /// Applies the alerts to the incidents, all or none.
    fn record_incidents(
        &self,
        alerts: &[Alert],
        now: DateTime<Utc>,
    ) -> Result<Vec<Recorded>, StoreError> {
        let mut state = self.incidents();
        state.forget_resolved(now, self.resolved_retention);
        let mut undo = Undo {
            changes: Vec::new(),
            open: state.open,
            resolved_len: state.resolved.len(),
        };
        let mut out = Vec::with_capacity(alerts.len());
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
        let mut recorded = self.record_incidents(alerts, now)?;
        let mut deliveries = Vec::new();
        let mut want: Vec<(Arc<str>, usize)> = Vec::new();
        for r in &mut recorded {
            if let Some(event) = &r.event {
                r.endpoints = routes.endpoints_of(event);
                for endpoint in &r.endpoints {
                    match want.iter_mut().find(|(e, _)| e == endpoint) {
                        Some((_, n)) => *n += 1,
                        None => want.push((endpoint.clone(), 1)),
                    }
                    deliveries.push((endpoint.clone(), event.clone()));
                }
            }
        }
        // New lanes go straight to this process's delivery actors, within their room.
        offer.reserve(&want);
        let room: Vec<(&str, usize, Duration)> = offer.reserved().collect();
        let (leased, due) = self.queue.add(deliveries, &room);
        Ok(Recording {
            recorded,
            leased,
            due,
            pending: Some(self.queue.pending()),
        })
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

    async fn replay(
        &self,
        endpoint: &str,
        delivery_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self.queue.replay(endpoint, delivery_id))
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
mod tests {
    use super::*;

    /// Records with no routes and no lease offer; what each alert did.
    async fn record(
        store: &MemoryStore,
        alerts: &[Alert],
        now: DateTime<Utc>,
    ) -> Result<Vec<Recorded>, StoreError> {
        struct NoRoutes;
        impl Routing for NoRoutes {
            fn endpoints_of(&self, _event: &crate::model::Event) -> Vec<Arc<str>> {
                Vec::new()
            }
        }
        store
            .record(alerts, now, &NoRoutes, &mut LeaseOffer::none())
            .await
            .map(|r| r.recorded)
    }
    use crate::model::transition::Outcome;
    use crate::model::{AlertStatus, Labels, Severity, SourceRef};
    use crate::store::query::IncidentQuery;

    fn alert(key: &str, status: AlertStatus) -> Alert {
        Alert {
            dedup_key: key.into(),
            status,
            severity: Severity::Warning,
            title: "t".into(),
            description: String::new(),
            labels: Labels::new(),
            annotations: Labels::new(),
            links: vec![],
            started_at: None,
            ended_at: None,
            source: SourceRef {
                name: "s".into(),
                kind: "generic".into(),
            },
        }
    }

    /// Regression (hardening item 1): a start time past 2262 (out of `i64` nanoseconds) made
    /// `record` fail halfway through its group; any time chrono holds is kept now.
    #[actix_rt::test]
    async fn a_start_time_far_in_the_future_is_recorded_with_the_rest() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let far = DateTime::parse_from_rfc3339("9999-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let mut bad = alert("far", AlertStatus::Firing);
        bad.started_at = Some(far);
        let alerts = [
            alert("before", AlertStatus::Firing),
            bad,
            alert("after", AlertStatus::Firing),
        ];
        let recorded = record(&store, &alerts, now).await.unwrap();
        assert_eq!(recorded.len(), 3);
        assert!(recorded.iter().all(|r| r.outcome == Outcome::Created));
        let far_id = recorded[1].incident_id.clone().unwrap();
        let got = store.get_incident(&far_id).await.unwrap().unwrap();
        assert_eq!(got.started_at, far);
        assert_eq!(store.open_count().await.unwrap(), 3);
    }

    /// A call that fails part way leaves no trace: every key, the index by id, the open
    /// count and the resolved queue are as they were.
    #[actix_rt::test]
    async fn a_rolled_back_call_leaves_the_store_as_it_was() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let first = record(
            &store,
            &[
                alert("a", AlertStatus::Firing),
                alert("b", AlertStatus::Firing),
            ],
            now,
        )
        .await
        .unwrap();
        let a_id = first[0].incident_id.clone().unwrap();
        let before: Vec<_> = ["a", "b"]
            .iter()
            .map(|k| {
                let state = store.incidents();
                let key: IncidentKey = ("s".into(), (*k).into());
                state.by_key.get(&key).and_then(|s| s.incident(k))
            })
            .collect();

        // What a failing call would have done before failing: resolve `a`, create `c`.
        {
            let mut state = store.incidents();
            let mut undo = Undo {
                changes: Vec::new(),
                open: state.open,
                resolved_len: state.resolved.len(),
            };
            for (k, status) in [("a", AlertStatus::Resolved), ("c", AlertStatus::Firing)] {
                let key: IncidentKey = ("s".into(), k.into());
                let current = state.by_key.get(&key).and_then(|s| s.incident(k));
                let (recorded, next) = decide_once(current.as_ref(), &alert(k, status), now);
                let next = next.get(&recorded).unwrap();
                let stored = Stored::new(next, alert(k, status).source).unwrap();
                if !next.status.is_open() {
                    state.resolved.push_back((now, key.clone(), stored.id));
                    state.open -= 1;
                } else {
                    state.open += 1;
                }
                let prev = state.put(key.clone(), stored);
                undo.changes.push((key, prev));
            }
            state.roll_back(undo);
            assert_eq!(state.open, 2);
            assert!(state.resolved.is_empty());
            assert!(state.by_key.get(&("s".into(), "c".into())).is_none());
        }
        let after: Vec<_> = ["a", "b"]
            .iter()
            .map(|k| {
                let state = store.incidents();
                let key: IncidentKey = ("s".into(), (*k).into());
                state.by_key.get(&key).and_then(|s| s.incident(k))
            })
            .collect();
        assert_eq!(
            serde_json::to_string(&before).unwrap(),
            serde_json::to_string(&after).unwrap()
        );
        let a = store.get_incident(&a_id).await.unwrap().unwrap();
        assert_eq!(a.status, IncidentStatus::Triggered);
        assert_eq!(
            store.incidents().by_id.len(),
            2,
            "c's id is gone from the index"
        );
    }

    #[test]
    fn stored_incidents_read_back_whole() {
        let source = SourceRef {
            name: "prom".into(),
            kind: "alertmanager".into(),
        };
        // Nanoseconds, a time before the epoch, text that JSON would escape, every field set.
        let started = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let mut full = Incident::bare(
            "inc_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6".into(),
            "key \"quoted\" ü".into(),
            "Disk \"/\" full\n".into(),
            "line one\nline two \u{1F525}".into(),
            started,
        );
        full.status = IncidentStatus::Resolved;
        full.severity = Severity::Critical;
        full.labels = Labels::from([
            ("alertname".into(), "DiskFull".into()),
            ("instance".into(), "db-1:9100".into()),
        ]);
        full.annotations = Labels::from([("runbook".into(), "https://r/x?a=1&b=2".into())]);
        full.links = vec![Link {
            label: "Dashboard".into(),
            url: "https://grafana/d/1".into(),
        }];
        full.resolved_at = DateTime::from_timestamp(1_700_000_600, 999_999_999);
        full.last_seen_at = DateTime::from_timestamp(-86_400, 1).unwrap();
        full.occurrences = 42;
        full.source = Some(source.clone());
        let stored = Stored::new(&full, source.clone()).unwrap();
        assert_eq!(stored.incident(&full.dedup_key), Some(full.clone()));

        // An open incident with nothing optional, and an id of another form (kept whole).
        let mut bare = Incident::bare(
            "legacy-7".into(),
            "k".into(),
            String::new(),
            String::new(),
            started,
        );
        bare.source = Some(source.clone());
        let stored = Stored::new(&bare, source).unwrap();
        assert_eq!(stored.id, 0, "not an inc_<hex> id: found by no index");
        assert_eq!(stored.incident("k"), Some(bare));
    }

    #[actix_rt::test]
    async fn records_in_order_and_counts_open_incidents() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let r = record(
            &store,
            &[
                alert("a", AlertStatus::Firing),
                alert("a", AlertStatus::Firing),
                alert("b", AlertStatus::Firing),
                alert("a", AlertStatus::Resolved),
            ],
            now,
        )
        .await
        .unwrap();
        let outcomes: Vec<_> = r.iter().map(|x| x.outcome).collect();
        assert_eq!(
            outcomes,
            vec![
                Outcome::Created,
                Outcome::Repeat,
                Outcome::Created,
                Outcome::Resolved
            ]
        );
        assert_eq!(r[0].incident_id, r[3].incident_id);
        assert!(r[1].event.is_none());
        assert_eq!(store.open_count().await.unwrap(), 1);
    }

    #[actix_rt::test]
    async fn resolved_incidents_are_forgotten_after_the_retention_and_open_ones_kept() {
        let mut store = MemoryStore::new();
        store.resolved_retention = Duration::from_secs(60);
        let t0 = Utc::now();
        record(
            &store,
            &[
                alert("gone", AlertStatus::Firing),
                alert("gone", AlertStatus::Resolved),
                alert("open", AlertStatus::Firing),
            ],
            t0,
        )
        .await
        .unwrap();
        assert_eq!(store.incidents().by_key.len(), 2);
        // Within the retention the resolved incident is still there...
        record(&store, &[], t0 + chrono::Duration::seconds(30))
            .await
            .unwrap();
        assert_eq!(store.incidents().by_key.len(), 2);
        // ...after it, only the open one is.
        record(&store, &[], t0 + chrono::Duration::seconds(61))
            .await
            .unwrap();
        let state = store.incidents();
        assert_eq!(state.by_key.len(), 1);
        assert!(state.by_key.keys().all(|(_, k)| &**k == "open"));
        assert_eq!(state.open, 1);
    }

    #[actix_rt::test]
    async fn an_incident_reads_back_as_it_was_recorded() {
        use crate::store::query::{IncidentFilter, IncidentQuery};
        let store = MemoryStore::new();
        let mut a = alert("k", AlertStatus::Firing);
        a.labels.insert("service".into(), "db".into());
        let r = record(&store, &[a], Utc::now()).await.unwrap();
        let created = r[0].event.as_ref().unwrap().incident.clone();
        let got = store.get_incident(&created.id).await.unwrap().unwrap();
        assert_eq!(got.labels, created.labels);
        assert_eq!(got.title, created.title);
        assert_eq!(got.started_at, created.started_at);
        assert_eq!(got.source.as_ref().map(|s| &*s.name), Some("s"));
        assert!(store.get_incident("inc_nope").await.unwrap().is_none());
        let listed = store
            .list_incidents(&IncidentFilter {
                status: Some(IncidentStatus::Triggered),
                source: Some("s".into()),
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, created.id);
    }

    #[actix_rt::test]
    async fn incidents_are_found_by_id_through_their_whole_life() {
        use crate::store::query::IncidentQuery;
        let mut store = MemoryStore::new();
        store.resolved_retention = Duration::from_secs(60);
        let t0 = Utc::now();
        let id_of = |r: &[Recorded], i: usize| r[i].event.as_ref().unwrap().incident.id.clone();
        let r = record(
            &store,
            &[
                alert("k", AlertStatus::Firing),
                alert("k", AlertStatus::Resolved),
                alert("k", AlertStatus::Firing),
            ],
            t0,
        )
        .await
        .unwrap();
        let (first, second) = (id_of(&r, 0), id_of(&r, 2));
        assert_ne!(first, second, "firing after resolved opens a new incident");
        // The key now holds the second incident: the first is gone, by key and by id.
        assert!(store.get_incident(&first).await.unwrap().is_none());
        let got = store.get_incident(&second).await.unwrap().unwrap();
        assert_eq!(got.status, IncidentStatus::Triggered);
        assert_eq!(store.incidents().by_id.len(), 1);
        // Resolved, it is still found within the retention...
        record(&store, &[alert("k", AlertStatus::Resolved)], t0)
            .await
            .unwrap();
        let got = store.get_incident(&second).await.unwrap().unwrap();
        assert_eq!(got.status, IncidentStatus::Resolved);
        // ...and forgotten after it, from the index too.
        record(&store, &[], t0 + chrono::Duration::seconds(61))
            .await
            .unwrap();
        assert!(store.get_incident(&second).await.unwrap().is_none());
        assert_eq!(store.incidents().by_id.len(), 0);
    }

    #[actix_rt::test]
    async fn a_list_is_the_newest_first_up_to_its_limit() {
        use crate::store::query::{IncidentFilter, IncidentQuery};
        let store = MemoryStore::new();
        let t0 = Utc::now();
        let mut ids = Vec::new();
        // Recorded out of order: the list sorts by start, not by insertion.
        for (n, secs) in [(0, 5), (1, 1), (2, 9), (3, 3), (4, 7), (5, 0)] {
            let mut a = alert(&format!("k{n}"), AlertStatus::Firing);
            a.started_at = Some(t0 + chrono::Duration::seconds(secs));
            let r = record(&store, &[a], t0).await.unwrap();
            ids.push((secs, r[0].event.as_ref().unwrap().incident.id.clone()));
        }
        ids.sort_by_key(|(secs, _)| std::cmp::Reverse(*secs));
        let filter = |limit| IncidentFilter {
            status: None,
            source: None,
            limit,
        };
        let got: Vec<String> = store
            .list_incidents(&filter(3))
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        let want: Vec<String> = ids.iter().take(3).map(|(_, id)| id.clone()).collect();
        assert_eq!(got, want);
        assert_eq!(store.list_incidents(&filter(100)).await.unwrap().len(), 6);
        assert!(store.list_incidents(&filter(0)).await.unwrap().is_empty());
    }
}
