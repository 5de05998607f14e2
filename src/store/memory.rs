//! The memory store: incidents and delivery dedup keys in this process only. The default;
//! nothing survives a restart, and it serves one instance.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{decide, DeliveryDedup, IncidentStore, Recorded, StoreError};
use crate::model::{Alert, Incident};

/// How many delivered (endpoint, event id) keys the memory store remembers. When full, the
/// oldest key is forgotten; in one process an event is only enqueued once, so the keys only
/// guard replays of recent events.
pub const DEFAULT_MEMORY_DEDUP_CAPACITY: usize = 1_000_000;

type IncidentKey = (Arc<str>, String);

#[derive(Default)]
struct Incidents {
    by_key: HashMap<IncidentKey, Incident>,
    open: usize,
}

#[derive(Default)]
struct Delivered {
    keys: HashSet<(Arc<str>, String)>,
    order: VecDeque<(Arc<str>, String)>,
}

/// Incidents and dedup keys in memory.
#[derive(Default)]
pub struct MemoryStore {
    incidents: Mutex<Incidents>,
    delivered: Mutex<Delivered>,
    dedup_capacity: usize,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore {
            dedup_capacity: DEFAULT_MEMORY_DEDUP_CAPACITY,
            ..Default::default()
        }
    }

    fn incidents(&self) -> MutexGuard<'_, Incidents> {
        // A panic while holding the lock cannot leave a half-applied transition: every write
        // is a single insert of a fully built incident.
        self.incidents.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn delivered(&self) -> MutexGuard<'_, Delivered> {
        self.delivered.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl IncidentStore for MemoryStore {
    async fn record(
        &self,
        alerts: &[Alert],
        now: DateTime<Utc>,
    ) -> Result<Vec<Recorded>, StoreError> {
        let mut state = self.incidents();
        let mut out = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let key: IncidentKey = (alert.source.name.clone(), alert.dedup_key.clone());
            let current = state.by_key.get(&key);
            let was_open = current.is_some_and(|i| i.status.is_open());
            let (recorded, next) = decide(current, alert, now);
            if let Some(next) = next {
                let is_open = next.status.is_open();
                state.by_key.insert(key, next);
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

    async fn open_count(&self) -> Result<usize, StoreError> {
        Ok(self.incidents().open)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl DeliveryDedup for MemoryStore {
    async fn is_delivered(&self, endpoint: &str, event_id: &str) -> Result<bool, StoreError> {
        let d = self.delivered();
        Ok(d.keys
            .contains(&(Arc::from(endpoint), event_id.to_string())))
    }

    async fn mark_delivered(&self, endpoint: &str, event_id: &str) -> Result<(), StoreError> {
        let mut d = self.delivered();
        let key = (Arc::from(endpoint), event_id.to_string());
        if d.keys.insert(key.clone()) {
            d.order.push_back(key);
            while d.order.len() > self.dedup_capacity.max(1) {
                if let Some(old) = d.order.pop_front() {
                    d.keys.remove(&old);
                }
            }
        }
        Ok(())
    }
}

// Admin API reads. A scan: the memory store serves one process and its admin use.
#[async_trait]
impl crate::incidents::query::IncidentQuery for MemoryStore {
    async fn list_incidents(
        &self,
        filter: &crate::incidents::query::IncidentFilter,
    ) -> Result<Vec<Incident>, StoreError> {
        let state = self.incidents();
        let mut out: Vec<Incident> = state
            .by_key
            .values()
            .filter(|i| filter.matches(i))
            .cloned()
            .collect();
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        out.truncate(filter.limit);
        Ok(out)
    }

    async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        Ok(self
            .incidents()
            .by_key
            .values()
            .find(|i| i.id == id)
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::transition::Outcome;
    use crate::model::{AlertStatus, Labels, Severity, SourceRef};

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

    #[actix_rt::test]
    async fn records_in_order_and_counts_open_incidents() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let r = store
            .record(
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
    async fn dedup_keys_are_per_endpoint_and_bounded() {
        let mut store = MemoryStore::new();
        store.dedup_capacity = 2;
        store.mark_delivered("e1", "evt_1").await.unwrap();
        assert!(store.is_delivered("e1", "evt_1").await.unwrap());
        assert!(!store.is_delivered("e2", "evt_1").await.unwrap());
        store.mark_delivered("e1", "evt_2").await.unwrap();
        store.mark_delivered("e1", "evt_3").await.unwrap();
        assert!(
            !store.is_delivered("e1", "evt_1").await.unwrap(),
            "oldest forgotten"
        );
        assert!(store.is_delivered("e1", "evt_3").await.unwrap());
    }
}
