//! Dropping redelivered requests: tools that retry a webhook send the same per-delivery id
//! again (Sentry's `Request-ID`), and a delivery already recorded must not be recorded twice.
//!
//! [`RedeliveryFilter`] is the seam: [`MemoryRedeliveryFilter`] remembers the last
//! [`DEFAULT_REDELIVERY_MEMORY`] ids of one source in this process; a store-backed filter
//! (shared by several instances) can implement the same trait later. An id is remembered only
//! once its request was recorded, so a request that failed can be retried with the same id.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::Mutex;

/// Request ids remembered per source. When full, the oldest id is forgotten first (a
/// redelivery older than the last 10,000 requests is recorded again).
pub const DEFAULT_REDELIVERY_MEMORY: usize = 10_000;

/// Remembers which delivery ids a source has already recorded.
pub trait RedeliveryFilter: Send + Sync + fmt::Debug {
    /// Whether a request with this id was already recorded.
    fn seen(&self, id: &str) -> bool;
    /// Notes that the request with this id was recorded.
    fn remember(&self, id: &str);
}

/// A bounded in-process memory of recent ids, oldest forgotten first.
#[derive(Debug)]
pub struct MemoryRedeliveryFilter {
    capacity: usize,
    inner: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl MemoryRedeliveryFilter {
    pub fn new(capacity: usize) -> Self {
        MemoryRedeliveryFilter {
            capacity: capacity.max(1),
            inner: Mutex::new(Recent::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        // A panic while holding the lock leaves a consistent set: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for MemoryRedeliveryFilter {
    fn default() -> Self {
        MemoryRedeliveryFilter::new(DEFAULT_REDELIVERY_MEMORY)
    }
}

impl RedeliveryFilter for MemoryRedeliveryFilter {
    fn seen(&self, id: &str) -> bool {
        self.lock().set.contains(id)
    }

    fn remember(&self, id: &str) {
        let mut r = self.lock();
        if r.set.contains(id) {
            return;
        }
        if r.order.len() >= self.capacity {
            if let Some(old) = r.order.pop_front() {
                r.set.remove(&old);
            }
        }
        r.set.insert(id.to_string());
        r.order.push_back(id.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_ids_and_forgets_the_oldest_when_full() {
        let f = MemoryRedeliveryFilter::new(2);
        assert!(!f.seen("a"));
        f.remember("a");
        f.remember("a");
        assert!(f.seen("a"));
        f.remember("b");
        f.remember("c");
        assert!(!f.seen("a"), "the oldest id is forgotten");
        assert!(f.seen("b") && f.seen("c"));
    }
}
