//! The admin delivery log in Redis: an endpoint's lanes (leased, then due) and its log, read
//! with plain pipelined reads, no script.

use deadpool_redis::redis;

use super::conn::unavailable;
use super::queue::parse_entry;
use super::RedisStore;
use crate::model::delivery::DeliveryState;
use crate::store::{StoreError, StoredDeliveries};

impl RedisStore {
    /// Every delivery of `endpoint`: unfinished ones lane by lane, then the log.
    pub(super) async fn list_deliveries(
        &self,
        endpoint: &str,
    ) -> Result<StoredDeliveries, StoreError> {
        // Read, not locked: a delivery that moves on in between is shown once, where it was
        // first seen (lanes are read before the log).
        let q = self.queue_prefix(endpoint);
        let mut conn = self.conn().await?;
        type Lists = (Vec<(String, f64)>, Vec<String>, Vec<String>, bool);
        let (due, leased, log, disabled): Lists = redis::pipe()
            .cmd("ZRANGE")
            .arg(format!("{q}:due"))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .cmd("ZRANGE")
            .arg(format!("{q}:leases"))
            .arg(0)
            .arg(-1)
            .cmd("LRANGE")
            .arg(format!("{q}:log"))
            .arg(0)
            .arg(-1)
            .cmd("EXISTS")
            .arg(format!("{q}:disabled"))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        // A waiting lane's score is when its head is due (unix milliseconds).
        let due_at: std::collections::HashMap<String, f64> = due.iter().cloned().collect();
        let mut lanes: Vec<String> = leased;
        lanes.extend(due.into_iter().map(|(lane, _)| lane));
        // Lane entries first (unfinished, in lane order), then the log (finished, oldest
        // first).
        let mut items: Vec<(String, Option<f64>)> = Vec::new();
        if !lanes.is_empty() {
            let mut pipe = redis::pipe();
            for lane in &lanes {
                pipe.cmd("LRANGE")
                    .arg(format!("{q}:lane:{lane}"))
                    .arg(0)
                    .arg(-1);
            }
            let heads: Vec<Vec<String>> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| self.broken(e))?;
            for (lane, entries) in lanes.iter().zip(heads) {
                for (i, item) in entries.into_iter().enumerate() {
                    let due = if i == 0 {
                        due_at.get(lane).copied()
                    } else {
                        None
                    };
                    items.push((item, due));
                }
            }
        }
        items.extend(log.into_iter().map(|item| (item, None)));
        let mut seen = std::collections::HashSet::new();
        let mut deliveries = Vec::with_capacity(items.len());
        for (item, due) in &items {
            let Some(entry) = parse_entry(item) else {
                return Err(unavailable(format!(
                    "a delivery of {endpoint} is unreadable"
                )));
            };
            if seen.insert(entry.id.to_string()) {
                let mut stored = entry.stored()?;
                if stored.state == DeliveryState::Failed {
                    stored.next_attempt_at =
                        due.and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64));
                }
                deliveries.push(stored);
            }
        }
        Ok(StoredDeliveries {
            deliveries,
            disabled,
        })
    }
}
