//! What an endpoint's attempts did over the last hour, from this process's own counts: one
//! bucket per minute in a ring of [`WINDOW_MINUTES`], so recording and reading cost the same
//! at any rate. The console's endpoints page shows it (success rate, mean and slowest attempt).

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How many minutes the window covers.
pub const WINDOW_MINUTES: u64 = 60;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Minutes since the Unix epoch this bucket counts (a stale one is reset before use).
    minute: u64,
    attempts: u64,
    succeeded: u64,
    total_ms: u64,
    max_ms: u64,
}

/// One endpoint's attempts by minute, the last [`WINDOW_MINUTES`] of them.
#[derive(Debug)]
pub struct RecentAttempts {
    ring: Mutex<[Bucket; WINDOW_MINUTES as usize]>,
}

impl Default for RecentAttempts {
    fn default() -> Self {
        RecentAttempts {
            ring: Mutex::new([Bucket::default(); WINDOW_MINUTES as usize]),
        }
    }
}

/// The window's sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RecentSummary {
    /// Attempts that reached the service or failed to (a request was made) in the last hour.
    pub attempts: u64,
    /// Attempts answered 2xx.
    pub succeeded: u64,
    /// `succeeded / attempts` (None without attempts).
    pub success_rate: Option<f64>,
    /// Mean duration of an attempt, in milliseconds.
    pub mean_ms: Option<u64>,
    /// The slowest attempt, in milliseconds.
    pub max_ms: Option<u64>,
}

fn now_minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 60)
        .unwrap_or(0)
}

impl RecentAttempts {
    /// Counts one attempt now.
    pub fn record(&self, succeeded: bool, duration_ms: u64) {
        self.record_at(now_minute(), succeeded, duration_ms)
    }

    /// Counts one attempt in minute `minute` (since the epoch).
    pub fn record_at(&self, minute: u64, succeeded: bool, duration_ms: u64) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let b = &mut ring[(minute % WINDOW_MINUTES) as usize];
        if b.minute != minute {
            *b = Bucket {
                minute,
                ..Bucket::default()
            };
        }
        b.attempts += 1;
        b.succeeded += u64::from(succeeded);
        b.total_ms = b.total_ms.saturating_add(duration_ms);
        b.max_ms = b.max_ms.max(duration_ms);
    }

    /// The last hour's sums.
    pub fn summary(&self) -> RecentSummary {
        self.summary_at(now_minute())
    }

    /// The sums of the [`WINDOW_MINUTES`] minutes up to and including `minute`.
    pub fn summary_at(&self, minute: u64) -> RecentSummary {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = RecentSummary::default();
        let mut total_ms = 0u64;
        let mut max_ms = 0u64;
        for b in ring.iter() {
            if b.attempts == 0 || b.minute > minute || minute - b.minute >= WINDOW_MINUTES {
                continue;
            }
            s.attempts += b.attempts;
            s.succeeded += b.succeeded;
            total_ms = total_ms.saturating_add(b.total_ms);
            max_ms = max_ms.max(b.max_ms);
        }
        if s.attempts > 0 {
            s.success_rate = Some(s.succeeded as f64 / s.attempts as f64);
            s.mean_ms = Some(total_ms / s.attempts);
            s.max_ms = Some(max_ms);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_last_hour_and_forgets_older_minutes() {
        let r = RecentAttempts::default();
        assert_eq!(r.summary_at(1_000), RecentSummary::default());
        r.record_at(1_000, true, 10);
        r.record_at(1_000, false, 30);
        r.record_at(1_030, true, 20);
        let s = r.summary_at(1_030);
        assert_eq!((s.attempts, s.succeeded), (3, 2));
        assert_eq!(s.mean_ms, Some(20));
        assert_eq!(s.max_ms, Some(30));
        assert!((s.success_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        // Minute 1,000 is an hour old at 1,060: only minute 1,030 is left.
        let later = r.summary_at(1_060);
        assert_eq!((later.attempts, later.succeeded), (1, 1));
        // Minute 1,060 shares minute 1,000's bucket: reset, not added to.
        r.record_at(1_060, false, 5);
        let s = r.summary_at(1_060);
        assert_eq!((s.attempts, s.succeeded, s.max_ms), (2, 1, Some(20)));
    }
}
