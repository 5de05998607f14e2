//! Durable timers: "do this at that time" that survives a restart and fires once across
//! several instances. Generic: a timer is a key, a due time and a small payload in a named
//! set; what firing means is the caller's (a group's flush, an incident's auto-resolve).
//!
//! [`Timers`] is the contract; [`MemoryTimers`] keeps timers in this process (the memory
//! store), the redis store keeps them in Redis (`store::redis::timers`: shared by every
//! instance, kept across restarts). The contract tests in `timers/tests.rs` run against both.
//!
//! # The contract
//! - A timer is identified by (set, key). A set is claimed on its own, so each user of timers
//!   names its own set (`group`, `resolve`) and never sees another's.
//! - [`Timers::schedule`] arms a timer: it replaces the due time and payload of one that
//!   exists (per [`When`]). Replacing a timer that is claimed takes it from its claimant: the
//!   claimant's [`Timers::complete`] then answers false and changes nothing.
//! - [`Timers::claim_due`] leases timers whose due time is at or before `now` (or whose
//!   previous lease ran out) to the caller for `lease`: while the lease holds, no other claim
//!   (this instance's or another's) gets the timer. A claimant that dies leaves the timer to
//!   fire again once its lease runs out: timers fire at least once, exactly once unless a
//!   claimant dies (or overruns its lease) between acting and completing.
//! - [`Timers::complete`] ends a claimed timer, or re-arms it at a new time with a new payload
//!   ("fire again in 5 minutes"), in one step, only if the claim still holds.
//! - [`Timers::cancel`] removes a timer whether claimed or not.
//! - Time is the caller's: `now` and due times are wall-clock UTC, kept to the millisecond.
//!   Instances sharing a store must have clocks that agree to well within a lease (NTP).
//! - Keys and payloads are bounded ([`DEFAULT_MAX_TIMER_KEY_BYTES`],
//!   [`DEFAULT_MAX_TIMER_PAYLOAD_BYTES`]); a larger one is refused with
//!   [`StoreError::Rejected`] and nothing changes.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use super::StoreError;

/// Most bytes of a timer's key (a group key, an incident id).
pub const DEFAULT_MAX_TIMER_KEY_BYTES: usize = 1024;
/// Most bytes of a timer's payload: a timer carries a reference to its work, not the work.
pub const DEFAULT_MAX_TIMER_PAYLOAD_BYTES: usize = 16 * 1024;
/// Most timers the memory store keeps (every set together). When full, scheduling a new
/// timer is refused ([`StoreError::Rejected`]); replacing one that exists still works.
pub const DEFAULT_MEMORY_TIMERS: usize = 1_000_000;

/// How [`Timers::schedule`] treats a timer that exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Always arm at the new time with the new payload.
    Replace,
    /// Arm only if no timer with this key exists (claimed or not).
    IfAbsent,
    /// Arm if none exists or the new time is earlier than the one armed (a claimed timer is
    /// due already, so it is never replaced this way).
    IfEarlier,
}

/// A timer as armed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub key: String,
    pub due: DateTime<Utc>,
    pub payload: String,
}

/// A timer leased to one claimant by [`Timers::claim_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedTimer {
    pub set: String,
    pub timer: Timer,
    /// Proves the lease to [`Timers::complete`]; an outdated one changes nothing.
    pub lease: String,
}

/// Durable timers (see the module docs for the contract).
#[async_trait]
pub trait Timers: Send + Sync {
    /// Arms timer `key` of `set` at `due` with `payload`, as `when` says. Answers whether
    /// it was armed (false: `when` kept the existing one).
    async fn schedule(
        &self,
        set: &str,
        key: &str,
        due: DateTime<Utc>,
        payload: &str,
        when: When,
    ) -> Result<bool, StoreError>;

    /// Timer `key` of `set`, claimed or not (its armed due time, even while claimed).
    async fn get(&self, set: &str, key: &str) -> Result<Option<Timer>, StoreError>;

    /// Leases up to `limit` timers of `set` that are due at `now` (earliest first) for
    /// `lease`.
    async fn claim_due(
        &self,
        set: &str,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedTimer>, StoreError>;

    /// Ends a claimed timer (`then: None`) or re-arms it at `then`'s time with its payload,
    /// if the claim still holds (not replaced, cancelled, or claimed again after its lease
    /// ran out). Answers whether it did.
    async fn complete(
        &self,
        claimed: &ClaimedTimer,
        then: Option<(DateTime<Utc>, &str)>,
    ) -> Result<bool, StoreError>;

    /// Removes timer `key` of `set`, claimed or not. Answers whether one existed.
    async fn cancel(&self, set: &str, key: &str) -> Result<bool, StoreError>;

    /// When a claim of `set` can get a timer next (its earliest due time or lease end), if
    /// any timer is armed: a claimant sleeps until then, and polls anyway (another instance
    /// may arm an earlier one).
    async fn next_due(&self, set: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// Checks a key and payload against the bounds (shared by every implementation).
pub(crate) fn check_bounds(key: &str, payload: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > DEFAULT_MAX_TIMER_KEY_BYTES {
        return Err(StoreError::Rejected(format!(
            "a timer key must have 1 to {DEFAULT_MAX_TIMER_KEY_BYTES} bytes"
        )));
    }
    if payload.len() > DEFAULT_MAX_TIMER_PAYLOAD_BYTES {
        return Err(StoreError::Rejected(format!(
            "a timer payload must have at most {DEFAULT_MAX_TIMER_PAYLOAD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Milliseconds since the epoch, as timers keep time.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The time of `ms` milliseconds since the epoch (the epoch for an impossible one).
pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// One timer as the memory store keeps it.
struct Armed {
    due: i64,
    payload: String,
    /// When a claim can take it: its due time, or its lease's end while claimed.
    ready: i64,
    lease: Option<String>,
}

#[derive(Default)]
struct Set {
    /// The key is shared with `order` (a re-arm allocates nothing).
    timers: HashMap<Arc<str>, Armed>,
    /// (ready, key), earliest first.
    order: BTreeSet<(i64, Arc<str>)>,
}

impl Set {
    fn put(&mut self, key: &str, armed: Armed) {
        let key = match self.timers.get_key_value(key) {
            // The old entry out first: re-armed at the same time, it is the same entry.
            Some((key, old)) => {
                let key = key.clone();
                self.order.remove(&(old.ready, key.clone()));
                key
            }
            None => Arc::from(key),
        };
        self.order.insert((armed.ready, key.clone()));
        self.timers.insert(key, armed);
    }

    fn remove(&mut self, key: &str) -> bool {
        match self.timers.remove_entry(key) {
            Some((key, old)) => {
                self.order.remove(&(old.ready, key));
                true
            }
            None => false,
        }
    }
}

/// Timers in this process (the memory store): lost on restart, one instance.
#[derive(Default)]
pub struct MemoryTimers {
    sets: Mutex<HashMap<String, Set>>,
    count: AtomicU64,
    claims: AtomicU64,
}

impl MemoryTimers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Set>> {
        self.sets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every timer as armed, by set (a file store's snapshot; leases are left out).
    pub fn armed(&self) -> Vec<(String, Timer)> {
        let sets = self.lock();
        sets.iter()
            .flat_map(|(set, s)| {
                s.timers.iter().map(|(key, t)| {
                    let timer = Timer {
                        key: key.to_string(),
                        due: from_ms(t.due),
                        payload: t.payload.clone(),
                    };
                    (set.clone(), timer)
                })
            })
            .collect()
    }
}

#[async_trait]
impl Timers for MemoryTimers {
    async fn schedule(
        &self,
        set: &str,
        key: &str,
        due: DateTime<Utc>,
        payload: &str,
        when: When,
    ) -> Result<bool, StoreError> {
        check_bounds(key, payload)?;
        let due = to_ms(due);
        let mut sets = self.lock();
        let s = sets.entry(set.to_string()).or_default();
        match (s.timers.get(key), when) {
            (Some(_), When::IfAbsent) => return Ok(false),
            (Some(t), When::IfEarlier) if t.lease.is_some() || t.due <= due => return Ok(false),
            (None, _) if self.count.load(Ordering::Relaxed) >= DEFAULT_MEMORY_TIMERS as u64 => {
                return Err(StoreError::Rejected(format!(
                    "{DEFAULT_MEMORY_TIMERS} timers are armed already"
                )));
            }
            (None, _) => {
                self.count.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        s.put(
            key,
            Armed {
                due,
                payload: payload.to_string(),
                ready: due,
                lease: None,
            },
        );
        Ok(true)
    }

    async fn get(&self, set: &str, key: &str) -> Result<Option<Timer>, StoreError> {
        let sets = self.lock();
        Ok(sets
            .get(set)
            .and_then(|s| s.timers.get(key))
            .map(|t| Timer {
                key: key.to_string(),
                due: from_ms(t.due),
                payload: t.payload.clone(),
            }))
    }

    async fn claim_due(
        &self,
        set: &str,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedTimer>, StoreError> {
        let now = to_ms(now);
        let until = now.saturating_add(lease.as_millis().min(i64::MAX as u128) as i64);
        let mut sets = self.lock();
        let Some(s) = sets.get_mut(set) else {
            return Ok(Vec::new());
        };
        let keys: Vec<Arc<str>> = s
            .order
            .iter()
            .take_while(|(ready, _)| *ready <= now)
            .take(limit)
            .map(|(_, k)| k.clone())
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(t) = s.timers.get(&*key) else {
                continue;
            };
            let token = format!("m:{}", self.claims.fetch_add(1, Ordering::Relaxed));
            let armed = Armed {
                due: t.due,
                payload: t.payload.clone(),
                ready: until,
                lease: Some(token.clone()),
            };
            out.push(ClaimedTimer {
                set: set.to_string(),
                timer: Timer {
                    key: key.to_string(),
                    due: from_ms(armed.due),
                    payload: armed.payload.clone(),
                },
                lease: token,
            });
            s.put(&key, armed);
        }
        Ok(out)
    }

    async fn complete(
        &self,
        claimed: &ClaimedTimer,
        then: Option<(DateTime<Utc>, &str)>,
    ) -> Result<bool, StoreError> {
        if let Some((_, payload)) = then {
            check_bounds(&claimed.timer.key, payload)?;
        }
        let mut sets = self.lock();
        let Some(s) = sets.get_mut(&claimed.set) else {
            return Ok(false);
        };
        let key = &claimed.timer.key;
        if s.timers.get(key.as_str()).and_then(|t| t.lease.as_deref())
            != Some(claimed.lease.as_str())
        {
            return Ok(false);
        }
        match then {
            None => {
                s.remove(key);
                self.count.fetch_sub(1, Ordering::Relaxed);
            }
            Some((due, payload)) => {
                let due = to_ms(due);
                s.put(
                    key,
                    Armed {
                        due,
                        payload: payload.to_string(),
                        ready: due,
                        lease: None,
                    },
                );
            }
        }
        Ok(true)
    }

    async fn cancel(&self, set: &str, key: &str) -> Result<bool, StoreError> {
        let mut sets = self.lock();
        let removed = sets.get_mut(set).is_some_and(|s| s.remove(key));
        if removed {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(removed)
    }

    async fn next_due(&self, set: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let sets = self.lock();
        Ok(sets
            .get(set)
            .and_then(|s| s.order.first())
            .map(|(ready, _)| from_ms(*ready)))
    }
}

#[cfg(test)]
pub(crate) mod tests;
