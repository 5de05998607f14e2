//! The admin delivery log in Redis: an endpoint's lanes (leased, then due) and its log, read
//! with plain pipelined reads, no script.

use deadpool_redis::redis;

use super::conn::unavailable;
use super::queue::parse_entry;
use super::RedisStore;
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
        let (due, leased, log, disabled): (Vec<String>, Vec<String>, Vec<String>, bool) =
            redis::pipe()
                .cmd("ZRANGE")
                .arg(format!("{q}:due"))
                .arg(0)
                .arg(-1)
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
        let mut lanes: Vec<String> = leased;
        lanes.extend(due);
        // Lane entries first (unfinished, in lane order), then the log (finished, oldest
        // first).
        let mut items: Vec<String> = Vec::new();
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
            items.extend(heads.into_iter().flatten());
        }
        items.extend(log);
        let mut seen = std::collections::HashSet::new();
        let mut deliveries = Vec::with_capacity(items.len());
        for item in &items {
            let Some(entry) = parse_entry(item) else {
                return Err(unavailable(format!(
                    "a delivery of {endpoint} is unreadable"
                )));
            };
            if seen.insert(entry.id.to_string()) {
                deliveries.push(entry.stored()?);
            }
        }
        Ok(StoredDeliveries {
            deliveries,
            disabled,
        })
    }
}
