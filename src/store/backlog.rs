//! The shared count of unfinished deliveries, kept by whoever holds the deliveries (each
//! delivery actor with the memory store, the store's own count with redis) and read by ingest
//! for admission control.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many deliveries may wait across all endpoints before ingest answers 503. Each request
/// reserves room for its alerts once its body is read ([`Backlog::reserve`]); when the room
/// is taken, it gets 503 with `Retry-After` and nothing of it is recorded. Nothing accepted is
/// ever dropped to make room.
pub const DEFAULT_MAX_PENDING_DELIVERIES: usize = 1_000_000;

/// The shared count of unfinished deliveries, read by ingest for admission control.
#[derive(Debug)]
pub struct Backlog {
    pending: AtomicUsize,
    /// Room held by requests between admission and their answer (their alerts' count): by
    /// then the router has counted their real deliveries in `pending`.
    reserved: AtomicUsize,
    limit: usize,
}

/// Room a request holds in the [`Backlog`] until it is answered; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    backlog: std::sync::Arc<Backlog>,
    n: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.backlog.reserved.fetch_sub(self.n, Ordering::Relaxed);
    }
}

impl Backlog {
    pub fn new(limit: usize) -> Self {
        Backlog {
            pending: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
            limit,
        }
    }

    /// Reserves room for a request of `alerts` alerts (each makes at most one event), or None
    /// when the pending and reserved deliveries leave no room for it. A request larger than
    /// the whole limit is admitted only when nothing else is pending or reserved, so it is
    /// not refused forever.
    pub fn reserve(self: &std::sync::Arc<Self>, alerts: usize) -> Option<Reservation> {
        let mut reserved = self.reserved.load(Ordering::Relaxed);
        loop {
            let used = self.pending().saturating_add(reserved);
            let fits = used.saturating_add(alerts) <= self.limit || used == 0;
            if !fits {
                return None;
            }
            match self.reserved.compare_exchange_weak(
                reserved,
                reserved + alerts,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(Reservation {
                        backlog: self.clone(),
                        n: alerts,
                    })
                }
                Err(now) => reserved = now,
            }
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

    /// Whether new work should be refused for now (checked before a body is read).
    pub fn is_full(&self) -> bool {
        self.pending()
            .saturating_add(self.reserved.load(Ordering::Relaxed))
            >= self.limit
    }
}

#[cfg(test)]
mod backlog_tests {
    use super::*;
    use std::sync::Arc;

    /// Regression (hardening item 4): the limit was checked before a body was read, so
    /// concurrent large bodies all passed it.
    #[test]
    fn reservations_count_what_each_request_adds() {
        let backlog = Arc::new(Backlog::new(1_000));
        let a = backlog.reserve(600).expect("fits");
        assert!(
            backlog.reserve(600).is_none(),
            "a second large body does not fit"
        );
        let b = backlog.reserve(400).expect("the rest fits");
        assert!(backlog.is_full());
        drop(a);
        backlog.add(500); // a's events were counted by the router before its answer
        assert!(backlog.reserve(200).is_none());
        drop(b);
        assert!(backlog.reserve(500).is_some());
        backlog.done(500);
        // A body larger than the whole limit goes when nothing else waits.
        assert!(backlog.reserve(25_000).is_some());
    }
}
