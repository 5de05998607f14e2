//! How fast an endpoint is tried: a token-bucket rate limiter (`rate_limit: N/s|m|h`, bursts
//! of up to N) and a circuit breaker (after repeated failures the endpoint is paused, then
//! probed with one attempt, not hammered). Plain data driven by the delivery actor; the queue
//! keeps filling while either holds attempts back, and drains in order afterwards.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::endpoint::{CircuitSettings, DEFAULT_CIRCUIT_MAX_OPEN};
use crate::config::duration::Rate;

/// A token bucket: `count` tokens, refilled evenly over `per`.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    capacity: f64,
    per_token: Duration,
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub fn new(rate: Rate, now: Instant) -> Self {
        RateLimiter {
            capacity: rate.count as f64,
            per_token: rate.per / rate.count,
            tokens: rate.count as f64,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated);
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() / self.per_token.as_secs_f64()).min(self.capacity);
        self.updated = now;
    }

    /// Whole attempts allowed now.
    pub fn available(&mut self, now: Instant) -> usize {
        self.refill(now);
        self.tokens.floor() as usize
    }

    /// Spends one token per attempt started.
    pub fn take(&mut self, n: usize, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens - n as f64).max(0.0);
    }

    /// When the next token is there.
    pub fn next_token_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens >= 1.0 {
            return now;
        }
        now + self.per_token.mul_f64(1.0 - self.tokens)
    }
}

/// The state of a circuit, as the admin API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

/// A circuit breaker over consecutive failed attempts.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    settings: CircuitSettings,
    failures: u32,
    state: CircuitState,
    open_until: Option<Instant>,
    open_for: Duration,
    probing: bool,
}

impl CircuitBreaker {
    pub fn new(settings: CircuitSettings) -> Self {
        CircuitBreaker {
            settings,
            failures: 0,
            state: CircuitState::Closed,
            open_until: None,
            open_for: settings.open_for,
            probing: false,
        }
    }

    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// How many attempts may start now (`usize::MAX` when closed). An open circuit whose
    /// time is up turns half-open and allows one probe.
    pub fn allowance(&mut self, now: Instant) -> usize {
        match self.state {
            CircuitState::Closed => usize::MAX,
            CircuitState::Open => {
                if self.open_until.is_some_and(|t| now >= t) {
                    self.state = CircuitState::HalfOpen;
                    self.probing = false;
                    1
                } else {
                    0
                }
            }
            CircuitState::HalfOpen => usize::from(!self.probing),
        }
    }

    /// Records that `n` attempts started.
    pub fn started(&mut self, n: usize) {
        if self.state == CircuitState::HalfOpen && n > 0 {
            self.probing = true;
        }
    }

    /// An attempt ended without saying anything about the service (already delivered, a
    /// template error, 410): a half-open circuit may send its probe again.
    pub fn release(&mut self) {
        self.probing = false;
    }

    /// When an open circuit allows its probe.
    pub fn reopens_at(&self) -> Option<Instant> {
        match self.state {
            CircuitState::Open => self.open_until,
            _ => None,
        }
    }

    /// Records an attempt's result; true when this opened the circuit.
    pub fn record(&mut self, success: bool, now: Instant) -> bool {
        if success {
            self.failures = 0;
            self.state = CircuitState::Closed;
            self.open_for = self.settings.open_for;
            self.probing = false;
            return false;
        }
        self.failures = self.failures.saturating_add(1);
        match self.state {
            CircuitState::HalfOpen => {
                self.open_for = (self.open_for * 2).min(DEFAULT_CIRCUIT_MAX_OPEN);
                self.open(now);
                true
            }
            CircuitState::Closed if self.failures >= self.settings.failures => {
                self.open(now);
                true
            }
            _ => false,
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = CircuitState::Open;
        self.probing = false;
        self.open_until = Some(now + self.open_for);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_per_second_spaces_attempts() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(
            Rate {
                count: 1,
                per: Duration::from_secs(1),
            },
            t0,
        );
        assert_eq!(r.available(t0), 1);
        r.take(1, t0);
        assert_eq!(r.available(t0 + ms(500)), 0);
        assert_eq!(r.next_token_at(t0 + ms(500)), t0 + ms(1000));
        assert_eq!(r.available(t0 + ms(1000)), 1);
    }

    #[test]
    fn bursts_up_to_the_count() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(
            Rate {
                count: 30,
                per: Duration::from_secs(60),
            },
            t0,
        );
        assert_eq!(r.available(t0), 30);
        r.take(30, t0);
        assert_eq!(r.available(t0 + ms(1999)), 0);
        assert_eq!(r.available(t0 + ms(2000)), 1);
        assert_eq!(r.available(t0 + Duration::from_secs(3600)), 30);
    }

    #[test]
    fn the_circuit_opens_probes_and_closes() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::new(CircuitSettings {
            failures: 3,
            open_for: ms(100),
        });
        assert!(!c.record(false, t0));
        assert!(!c.record(false, t0));
        assert!(c.record(false, t0), "third failure opens");
        assert_eq!(c.allowance(t0 + ms(50)), 0);
        assert_eq!(c.reopens_at(), Some(t0 + ms(100)));
        assert_eq!(c.allowance(t0 + ms(100)), 1, "one probe");
        c.started(1);
        assert_eq!(c.allowance(t0 + ms(100)), 0, "only one probe at a time");
        assert!(c.record(false, t0 + ms(110)), "a failed probe reopens");
        assert_eq!(c.reopens_at(), Some(t0 + ms(310)), "for twice as long");
        assert_eq!(c.allowance(t0 + ms(310)), 1);
        c.started(1);
        c.release();
        assert_eq!(
            c.allowance(t0 + ms(315)),
            1,
            "a probe that said nothing is retried"
        );
        c.started(1);
        c.record(true, t0 + ms(320));
        assert_eq!(c.state(), CircuitState::Closed);
        assert_eq!(c.allowance(t0 + ms(320)), usize::MAX);
    }

    #[test]
    fn failed_probes_double_the_wait_up_to_ten_minutes() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::new(CircuitSettings::default());
        for _ in 0..CircuitSettings::default().failures {
            c.record(false, t0);
        }
        assert_eq!(c.reopens_at(), Some(t0 + Duration::from_secs(30)));
        // 30 s, then 60, 120, 240, 480, and 600 (the cap) from then on.
        let mut waits = Vec::new();
        for _ in 0..8 {
            let now = c.reopens_at().unwrap();
            assert_eq!(c.allowance(now), 1, "the probe");
            c.started(1);
            assert!(c.record(false, now), "a failed probe reopens");
            waits.push((c.reopens_at().unwrap() - now).as_secs());
        }
        assert_eq!(waits, vec![60, 120, 240, 480, 600, 600, 600, 600]);
        assert_eq!(DEFAULT_CIRCUIT_MAX_OPEN, Duration::from_secs(600));
        // A success closes it and the next opening waits the configured time again.
        let probe = c.reopens_at().unwrap();
        assert_eq!(c.allowance(probe), 1);
        c.started(1);
        c.record(true, probe);
        for _ in 0..CircuitSettings::default().failures {
            c.record(false, probe);
        }
        assert_eq!(c.reopens_at(), Some(probe + Duration::from_secs(30)));
    }
}
