//! The state of notification groups (grouped routes, `group_by`): which incidents each group
//! holds and which of them changed since its last notification. When a group is notified is
//! decided by the caller with [`super::timers::Timers`].
//!
//! [`Groups`] is the contract; [`MemoryGroups`] keeps groups in this process, the redis store
//! keeps them in Redis (`store::redis::groups`: a hash per group, shared by every instance).
//!
//! Each member has a change count: [`Groups::join`] adds one, [`Groups::flushed`] sets it back
//! to zero only if it is still the count the notification was built from, so a change that
//! arrives while a notification is made is never lost (it goes out with the next one).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::timers::{from_ms, to_ms};
use super::StoreError;

/// The timer set of group notifications (`store::timers`): a group's next flush, by key.
pub const GROUP_TIMERS: &str = "group";

/// Most groups the admin list answers with.
pub const DEFAULT_GROUP_LIST_LIMIT: usize = 1000;

/// One group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub key: String,
    /// What the caller keeps about the group (its route, labels, endpoints), as it wrote it
    /// when the group began.
    pub meta: String,
    /// Incident id -> changes since the last notification (0: unchanged).
    pub members: BTreeMap<String, u64>,
    /// When the group was last notified; None: not yet.
    pub notified_at: Option<DateTime<Utc>>,
}

/// Groups by key (see the module docs).
#[async_trait]
pub trait Groups: Send + Sync {
    /// Marks each (group key, meta, incident id) changed, adding the incident to the group
    /// and beginning the group (with `meta`) if needed. Answers, per group key in the order
    /// first seen, when that group was last notified (None: never).
    async fn join(
        &self,
        joins: &[(String, String, String)],
    ) -> Result<Vec<(String, Option<DateTime<Utc>>)>, StoreError>;

    async fn get(&self, key: &str) -> Result<Option<GroupState>, StoreError>;

    /// A notification of group `key` went out at `at`, built from `seen` (incident id, change
    /// count): each member still at its count is marked unchanged, and removed if it is in
    /// `ended` (resolved and now notified). A group left with no member ends. Answers
    /// whether a member is still changed (a change that came in while the notification was
    /// made, or one held back from it): the group has something for its next notification.
    async fn flushed(
        &self,
        key: &str,
        seen: &[(String, u64)],
        ended: &[String],
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Every group, up to `limit`, by key.
    async fn list(&self, limit: usize) -> Result<Vec<GroupState>, StoreError>;
}

/// Groups in this process (the memory store).
#[derive(Default)]
pub struct MemoryGroups {
    groups: Mutex<BTreeMap<String, GroupState>>,
}

impl MemoryGroups {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, GroupState>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets group `key` to `state` (None: ends it); a file store's start-up.
    pub fn restore(&self, key: &str, state: Option<GroupState>) {
        let mut groups = self.lock();
        match state {
            Some(state) => groups.insert(key.to_string(), state),
            None => groups.remove(key),
        };
    }
}

#[async_trait]
impl Groups for MemoryGroups {
    async fn join(
        &self,
        joins: &[(String, String, String)],
    ) -> Result<Vec<(String, Option<DateTime<Utc>>)>, StoreError> {
        let mut groups = self.lock();
        let mut out: Vec<(String, Option<DateTime<Utc>>)> = Vec::new();
        let mut seen = HashMap::new();
        for (key, meta, incident) in joins {
            let g = groups.entry(key.clone()).or_insert_with(|| GroupState {
                key: key.clone(),
                meta: meta.clone(),
                members: BTreeMap::new(),
                notified_at: None,
            });
            *g.members.entry(incident.clone()).or_default() += 1;
            if seen.insert(key.clone(), ()).is_none() {
                out.push((key.clone(), g.notified_at));
            }
        }
        Ok(out)
    }

    async fn get(&self, key: &str) -> Result<Option<GroupState>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn flushed(
        &self,
        key: &str,
        seen: &[(String, u64)],
        ended: &[String],
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(key) else {
            return Ok(false);
        };
        for (id, count) in seen {
            if g.members.get(id) == Some(count) {
                if ended.contains(id) {
                    g.members.remove(id);
                } else {
                    g.members.insert(id.clone(), 0);
                }
            }
        }
        // Kept to the millisecond, as the redis store keeps it.
        g.notified_at = Some(from_ms(to_ms(at)));
        let changed = g.members.values().any(|n| *n > 0);
        if g.members.is_empty() {
            groups.remove(key);
        }
        Ok(changed)
    }

    async fn list(&self, limit: usize) -> Result<Vec<GroupState>, StoreError> {
        Ok(self.lock().values().take(limit).cloned().collect())
    }
}

#[cfg(test)]
pub(crate) mod tests;
