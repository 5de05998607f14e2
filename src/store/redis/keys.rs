//! The key layout (docs/ARCHITECTURE.md, "Redis store"): everything under the store's
//! `key_prefix`.

use super::RedisStore;
use crate::model::Alert;

impl RedisStore {
    pub(super) fn incident_key(&self, alert: &Alert) -> String {
        format!(
            "{}:inc:{}:{}",
            self.prefix, alert.source.name, alert.dedup_key
        )
    }

    pub(super) fn queue_prefix(&self, endpoint: &str) -> String {
        format!("{}:q:{endpoint}", self.prefix)
    }

    pub(super) fn pending_key(&self) -> String {
        format!("{}:pending", self.prefix)
    }

    pub(super) fn dedup_key(&self, endpoint: &str, event_id: &str) -> String {
        format!("{}:dedup:{endpoint}:{event_id}", self.prefix)
    }
}
