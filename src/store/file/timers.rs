//! The file store's notification groups and timers: the memory implementations
//! (`MemoryGroups`, `MemoryTimers`), each change journaled and synced before the call
//! returns: a join as the joins ([`Op::GroupJoin`], replayed), a flush or a timer as the
//! state it left ([`Op::Group`], [`Op::Timer`]). Leases of claimed
//! timers are not journaled: after a restart a claimed timer is due again (timers fire at
//! least once, as the contract says of a claimant that dies).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::FutureExt;

use super::FileStore;
use crate::store::groups::{GroupState, Groups, MemoryGroups};
use crate::store::memory::changes::{Op, StoredGroup};
use crate::store::timers::{to_ms, ClaimedTimer, MemoryTimers, Timer, Timers, When};
use crate::store::StoreError;

/// Applies a logged group or timer op at start-up (other ops are left alone).
pub(super) fn apply(op: &Op, groups: &MemoryGroups, timers: &MemoryTimers) {
    match op {
        Op::Group { key, state } => groups.restore(
            key,
            state.as_ref().map(|s| GroupState {
                key: key.clone(),
                meta: s.meta.clone(),
                members: s.members.iter().cloned().collect(),
                notified_at: s.notified_at,
            }),
        ),
        Op::GroupJoin { joins } => {
            // Never waits (the memory implementation).
            let _ = groups.join(joins).now_or_never();
        }
        Op::Timer { set, key, armed } => {
            // The memory implementations never wait: their futures are ready at once.
            let _ = match armed {
                Some((due, payload)) => {
                    let due = crate::store::timers::from_ms(*due);
                    timers
                        .schedule(set, key, due, payload, When::Replace)
                        .now_or_never()
                        .map(|r| r.map(|_| ()))
                }
                None => timers
                    .cancel(set, key)
                    .now_or_never()
                    .map(|r| r.map(|_| ())),
            };
        }
        _ => {}
    }
}

/// Every group and timer as ops (a snapshot).
pub(super) fn snapshot(groups: &MemoryGroups, timers: &MemoryTimers) -> Vec<Op> {
    let mut ops: Vec<Op> = groups
        .list(usize::MAX)
        .now_or_never()
        .and_then(Result::ok)
        .unwrap_or_default()
        .into_iter()
        .map(|g| group_op(&g.key, Some(&g)))
        .collect();
    ops.extend(timers.armed().into_iter().map(|(set, t)| Op::Timer {
        set,
        key: t.key,
        armed: Some((to_ms(t.due), t.payload)),
    }));
    ops
}

fn group_op(key: &str, state: Option<&GroupState>) -> Op {
    Op::Group {
        key: key.to_string(),
        state: state.map(|g| StoredGroup {
            meta: g.meta.clone(),
            members: g.members.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            notified_at: g.notified_at,
        }),
    }
}

/// The op of a join call: its joins, each key's meta only on its first one.
fn join_op(joins: &[(String, String, String)]) -> Op {
    let mut seen = std::collections::HashSet::new();
    Op::GroupJoin {
        joins: joins
            .iter()
            .map(|(key, meta, incident)| {
                let meta = if seen.insert(key.as_str()) {
                    meta.clone()
                } else {
                    String::new()
                };
                (key.clone(), meta, incident.clone())
            })
            .collect(),
    }
}

impl FileStore {
    /// The ops that record the groups `keys` as they are now.
    fn groups_now<'a>(&self, keys: impl Iterator<Item = &'a str>) -> Vec<Op> {
        keys.map(|key| {
            let state = self
                .groups
                .get(key)
                .now_or_never()
                .and_then(Result::ok)
                .flatten();
            group_op(key, state.as_ref())
        })
        .collect()
    }

    /// The op that records timer (set, key) as it is now.
    fn timer_now(&self, set: &str, key: &str) -> Op {
        let armed = self
            .timers
            .get(set, key)
            .now_or_never()
            .and_then(Result::ok)
            .flatten()
            .map(|t: Timer| (to_ms(t.due), t.payload));
        Op::Timer {
            set: set.to_string(),
            key: key.to_string(),
            armed,
        }
    }

    /// Runs a change of groups, timers or documents and journals what it left, one at a
    /// time (so the journal has the states in the order they were made). Appended only:
    /// the caller writes or syncs it.
    fn side_change<T>(
        &self,
        change: impl FnOnce() -> Result<(T, Vec<Op>), StoreError>,
    ) -> Result<T, StoreError> {
        self.journal.ready()?;
        let _one = self.side_lock.lock().unwrap_or_else(|e| e.into_inner());
        let (out, ops) = change()?;
        if !ops.is_empty() {
            use crate::store::memory::changes::{ChangeLog, Frame};
            self.journal.append(&Frame {
                events: Vec::new(),
                ops,
            });
        }
        Ok(out)
    }

    /// A change of groups or timers ([`FileStore::side_change`]), written by the store's
    /// thread right after (`write_soon`, as a settle: a `kill -9` in those microseconds takes
    /// it back) and synced with the next sync: the ingest's
    /// ([`IncidentStore::persist`](crate::store::IncidentStore::persist), after the record
    /// call and the joins and timers that follow from it), or the background one within
    /// [`DEFAULT_FILE_SYNC_EVERY`](super::DEFAULT_FILE_SYNC_EVERY). A change made outside
    /// ingest (a flush's marks, a re-armed timer) that a crash takes back leaves its timer
    /// claimed, so it is claimed again when its lease ends: a notification can go out twice,
    /// never not at all.
    pub(super) fn side_written<T>(
        &self,
        change: impl FnOnce() -> Result<(T, Vec<Op>), StoreError>,
    ) -> Result<T, StoreError> {
        let out = self.side_change(change)?;
        self.journal.write_soon();
        Ok(out)
    }

    /// A change of documents ([`FileStore::side_change`]; silences, holds), synced when it
    /// returns: a silence the admin API answered for is on disk.
    pub(super) async fn side_committed<T>(
        &self,
        change: impl FnOnce() -> Result<(T, Vec<Op>), StoreError>,
    ) -> Result<T, StoreError> {
        let out = self.side_change(change)?;
        self.commit().await?;
        Ok(out)
    }
}

/// The result of a memory implementation's future (they never wait).
pub(super) fn ready<T>(
    f: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    f.now_or_never()
        .unwrap_or_else(|| Err(StoreError::Unavailable("a memory store call waited".into())))
}

#[async_trait]
impl Groups for FileStore {
    async fn join(
        &self,
        joins: &[(String, String, String)],
    ) -> Result<Vec<(String, Option<DateTime<Utc>>)>, StoreError> {
        self.side_written(|| {
            let out = ready(self.groups.join(joins))?;
            Ok((out, vec![join_op(joins)]))
        })
    }

    async fn get(&self, key: &str) -> Result<Option<GroupState>, StoreError> {
        self.groups.get(key).await
    }

    async fn flushed(
        &self,
        key: &str,
        seen: &[(String, u64)],
        ended: &[String],
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.side_written(|| {
            let changed = ready(self.groups.flushed(key, seen, ended, at))?;
            Ok((changed, self.groups_now(std::iter::once(key))))
        })
    }

    async fn list(&self, limit: usize) -> Result<Vec<GroupState>, StoreError> {
        self.groups.list(limit).await
    }
}

#[async_trait]
impl Timers for FileStore {
    async fn schedule(
        &self,
        set: &str,
        key: &str,
        due: DateTime<Utc>,
        payload: &str,
        when: When,
    ) -> Result<bool, StoreError> {
        self.side_written(|| {
            let armed = ready(self.timers.schedule(set, key, due, payload, when))?;
            let ops = if armed {
                vec![self.timer_now(set, key)]
            } else {
                Vec::new()
            };
            Ok((armed, ops))
        })
    }

    async fn get(&self, set: &str, key: &str) -> Result<Option<Timer>, StoreError> {
        self.timers.get(set, key).await
    }

    async fn claim_due(
        &self,
        set: &str,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedTimer>, StoreError> {
        // Leases are not journaled.
        self.timers.claim_due(set, now, limit, lease).await
    }

    async fn complete(
        &self,
        claimed: &ClaimedTimer,
        then: Option<(DateTime<Utc>, &str)>,
    ) -> Result<bool, StoreError> {
        self.side_written(|| {
            let done = ready(self.timers.complete(claimed, then))?;
            let ops = if done {
                vec![self.timer_now(&claimed.set, &claimed.timer.key)]
            } else {
                Vec::new()
            };
            Ok((done, ops))
        })
    }

    async fn cancel(&self, set: &str, key: &str) -> Result<bool, StoreError> {
        self.side_written(|| {
            let gone = ready(self.timers.cancel(set, key))?;
            let ops = if gone {
                vec![self.timer_now(set, key)]
            } else {
                Vec::new()
            };
            Ok((gone, ops))
        })
    }

    async fn next_due(&self, set: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.timers.next_due(set).await
    }
}
