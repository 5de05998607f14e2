//! The ids of requests a source has recorded, so that a request sent again with the same id
//! (a tool's retry, such as Sentry's `Request-ID`, or a replayed Standard Webhooks request
//! with its `webhook-id`) is not recorded twice.
//!
//! [`RequestIds`] is the contract; [`MemoryRequestIds`] keeps the ids in this process (the
//! memory store), the redis store keeps them in Redis (shared by every instance, kept across
//! restarts). An id is claimed while its request is being recorded, remembered for a window
//! once it is, and forgotten when recording fails, so the sender's retry is recorded then.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::StoreError;

/// How long an id stays claimed while its request is being recorded. A process that dies
/// meanwhile leaves the claim to run out, after which the sender's retry is recorded.
pub const DEFAULT_RECORDING_CLAIM: Duration = Duration::from_secs(30);

/// Most ids the memory store remembers. When full, the oldest is forgotten first, so under a
/// flood of more than this many requests within a window a replay of the oldest may be
/// recorded again.
pub const DEFAULT_MEMORY_REQUEST_IDS: usize = 100_000;

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdState {
    /// Not seen within its window: claimed now for this request.
    New,
    /// Another request with this id is being recorded right now.
    Recording,
    /// A request with this id was recorded within its window.
    Recorded,
}

/// Request ids per source. `source` and `id` come from the configuration and the request.
#[async_trait]
pub trait RequestIds: Send + Sync {
    /// Claims `id` for recording ([`IdState::New`]) unless it is being recorded or was
    /// recorded within its window.
    async fn begin_recording(&self, source: &str, id: &str) -> Result<IdState, StoreError>;
    /// The claimed request was recorded: the id is remembered for `window`.
    async fn recorded(&self, source: &str, id: &str, window: Duration) -> Result<(), StoreError>;
    /// The claimed request was not recorded: the id is forgotten, so a retry is recorded.
    async fn forget(&self, source: &str, id: &str) -> Result<(), StoreError>;
}

/// Request ids in this process, each with the time it is forgotten.
#[derive(Default)]
pub struct MemoryRequestIds {
    inner: Mutex<Ids>,
}

#[derive(Default)]
struct Ids {
    /// (source, id) -> (recorded, forgotten at).
    by_id: HashMap<(String, String), (bool, Instant)>,
    /// In the order they were claimed or recorded (entries may be stale: checked on pop).
    order: VecDeque<((String, String), Instant)>,
}

impl MemoryRequestIds {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ids> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put(ids: &mut Ids, key: (String, String), recorded: bool, until: Instant) {
        ids.by_id.insert(key.clone(), (recorded, until));
        ids.order.push_back((key, until));
        while ids.by_id.len() > DEFAULT_MEMORY_REQUEST_IDS
            || ids.order.len() > 2 * DEFAULT_MEMORY_REQUEST_IDS
        {
            let Some((old, at)) = ids.order.pop_front() else {
                break;
            };
            if ids.by_id.get(&old).is_some_and(|(_, u)| *u == at) {
                ids.by_id.remove(&old);
            }
        }
    }
}

impl MemoryRequestIds {
    /// Remembers `id` of `source` as recorded until `until` (a file store's start-up).
    pub fn restore(&self, source: &str, id: &str, until: Instant) {
        if until > Instant::now() {
            Self::put(
                &mut self.lock(),
                (source.to_string(), id.to_string()),
                true,
                until,
            );
        }
    }

    /// Every recorded (source, id, until) not forgotten yet (a file store's snapshot).
    pub fn recorded_ids(&self) -> Vec<(String, String, Instant)> {
        let now = Instant::now();
        self.lock()
            .by_id
            .iter()
            .filter(|(_, (recorded, until))| *recorded && *until > now)
            .map(|((source, id), (_, until))| (source.clone(), id.clone(), *until))
            .collect()
    }
}

#[async_trait]
impl RequestIds for MemoryRequestIds {
    async fn begin_recording(&self, source: &str, id: &str) -> Result<IdState, StoreError> {
        let now = Instant::now();
        let mut ids = self.lock();
        // Forget what ran out, oldest first.
        while let Some((_, at)) = ids.order.front() {
            if *at > now {
                break;
            }
            if let Some((old, at)) = ids.order.pop_front() {
                if ids.by_id.get(&old).is_some_and(|(_, u)| *u == at) {
                    ids.by_id.remove(&old);
                }
            }
        }
        let key = (source.to_string(), id.to_string());
        match ids.by_id.get(&key) {
            Some((true, until)) if *until > now => Ok(IdState::Recorded),
            Some((false, until)) if *until > now => Ok(IdState::Recording),
            _ => {
                Self::put(&mut ids, key, false, now + DEFAULT_RECORDING_CLAIM);
                Ok(IdState::New)
            }
        }
    }

    async fn recorded(&self, source: &str, id: &str, window: Duration) -> Result<(), StoreError> {
        let mut ids = self.lock();
        Self::put(
            &mut ids,
            (source.to_string(), id.to_string()),
            true,
            Instant::now() + window,
        );
        Ok(())
    }

    async fn forget(&self, source: &str, id: &str) -> Result<(), StoreError> {
        self.lock()
            .by_id
            .remove(&(source.to_string(), id.to_string()));
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The contract, run against any implementation.
    pub(crate) async fn claims_follow_the_contract(ids: &dyn RequestIds, source: &str) {
        assert_eq!(
            ids.begin_recording(source, "a").await.unwrap(),
            IdState::New
        );
        assert_eq!(
            ids.begin_recording(source, "a").await.unwrap(),
            IdState::Recording
        );
        ids.recorded(source, "a", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            ids.begin_recording(source, "a").await.unwrap(),
            IdState::Recorded
        );
        // Per source.
        assert_eq!(
            ids.begin_recording(&format!("{source}-other"), "a")
                .await
                .unwrap(),
            IdState::New
        );
        // A failed recording forgets its claim.
        assert_eq!(
            ids.begin_recording(source, "b").await.unwrap(),
            IdState::New
        );
        ids.forget(source, "b").await.unwrap();
        assert_eq!(
            ids.begin_recording(source, "b").await.unwrap(),
            IdState::New
        );
        // A window that ran out forgets the id.
        assert_eq!(
            ids.begin_recording(source, "c").await.unwrap(),
            IdState::New
        );
        ids.recorded(source, "c", Duration::from_millis(1))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while ids.begin_recording(source, "c").await.unwrap() != IdState::New {
            assert!(Instant::now() < deadline, "the window never ran out");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[actix_rt::test]
    async fn memory_ids_follow_the_contract() {
        claims_follow_the_contract(&MemoryRequestIds::default(), "s").await;
    }
}
