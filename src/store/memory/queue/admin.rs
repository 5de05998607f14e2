//! The memory queue's admin side: the delivery log as the admin API lists it, and replays of
//! finished deliveries (`DeliveryQueueStore::deliveries`, `replay_many`).

use super::*;

impl MemoryQueue {
    /// An endpoint's deliveries: unfinished lane by lane, then the log (dead, delivered).
    pub fn deliveries(&self, endpoint: &str) -> StoredDeliveries {
        let s = self.state();
        let Some(q) = s.endpoints.get(endpoint) else {
            return StoredDeliveries::default();
        };
        // When each waiting lane's head is due, as a wall-clock time.
        let (now, wall) = (Instant::now(), chrono::Utc::now());
        let due_at: FastMap<&Arc<str>, Instant> = q.due.iter(now).collect();
        let mut deliveries: Vec<StoredDelivery> = Vec::new();
        for (lane, l) in &q.lanes {
            for (i, entry) in l.items.iter().enumerate() {
                let mut stored = entry.stored();
                if i == 0 && stored.state == DeliveryState::Failed {
                    stored.next_attempt_at = due_at.get(lane).and_then(|at| {
                        chrono::Duration::from_std(at.saturating_duration_since(now))
                            .ok()
                            .map(|d| wall + d)
                    });
                }
                deliveries.push(stored);
            }
        }
        deliveries.extend(
            q.dead_log
                .iter()
                .chain(q.delivered_log.iter())
                .map(Entry::stored),
        );
        StoredDeliveries {
            deliveries,
            disabled: q.disabled,
        }
    }

    /// Queues these finished deliveries again, in this order (see
    /// `DeliveryQueueStore::replay_many`).
    pub fn replay_many(&self, endpoint: &str, delivery_ids: &[String]) -> Vec<Option<String>> {
        let mut s = self.state();
        let Some(q) = s.endpoints.get_mut(endpoint) else {
            return vec![None; delivery_ids.len()];
        };
        let finished: FastMap<&str, &Entry> = q
            .dead_log
            .iter()
            .chain(q.delivered_log.iter())
            .map(|d| (d.id.as_str(), d))
            .collect();
        let entries: Vec<Option<Entry>> = delivery_ids
            .iter()
            .map(|id| {
                finished.get(id.as_str()).map(|old| Entry {
                    id: format!("dlv_{}", uuid::Uuid::now_v7().simple()),
                    event: old.event.clone(),
                    state: DeliveryState::Pending,
                    attempts: Vec::new(),
                    replay_of: Some(old.id.clone()),
                })
            })
            .collect();
        if entries.iter().any(Option::is_some) {
            q.disabled = false;
        }
        let now = Instant::now();
        let mut frame = self.changes.as_ref().map(|_| Frame::default());
        let wall = Utc::now();
        let ids = entries
            .into_iter()
            .map(|entry| {
                let entry = entry?;
                let id = entry.id.clone();
                if let (Some(frame), Some(of)) = (frame.as_mut(), entry.replay_of.clone()) {
                    frame.ops.push(Op::Replay {
                        endpoint: endpoint.into(),
                        of,
                        id: id.clone(),
                        due_at: wall,
                    });
                }
                s.push(endpoint, entry, now, None);
                Some(id)
            })
            .collect();
        self.log_changes(frame);
        ids
    }
}
