//! The shared count of unfinished deliveries, kept by whoever holds the deliveries (each
//! delivery actor with the memory store, the store's own count with redis) and read by ingest
//! for admission control.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many deliveries may wait across all endpoints before ingest answers 503. A request that
/// passes the check may add its events beyond it (one request's worth at most per in-flight
/// request); nothing accepted is ever dropped to make room.
pub const DEFAULT_MAX_PENDING_DELIVERIES: usize = 1_000_000;

/// The shared count of unfinished deliveries, read by ingest for admission control.
#[derive(Debug)]
pub struct Backlog {
    pending: AtomicUsize,
    limit: usize,
}

impl Backlog {
    pub fn new(limit: usize) -> Self {
        Backlog {
            pending: AtomicUsize::new(0),
            limit,
        }
    }

    pub fn add(&self, n: usize) {
        self.pending.fetch_add(n, Ordering::Relaxed);
    }

    pub fn done(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::Relaxed);
    }

    /// Replaces the count with one read elsewhere (the redis store's shared counter).
    pub fn set(&self, n: usize) {
        self.pending.store(n, Ordering::Relaxed);
    }

    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Whether new work should be refused for now.
    pub fn is_full(&self) -> bool {
        self.pending() >= self.limit
    }
}
