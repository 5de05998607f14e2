//! What follows one attempt: the decision ([`Settlement`]) from the attempt's [`Verdict`],
//! the endpoint's retry schedule and the receiver's `Retry-After`. A pure function, the same
//! for every store: the store then keeps the retry's time (the lane leaves the actor until
//! it is due again).

use std::time::Duration;

use crate::model::delivery::{Settlement, Verdict};

/// Longest wait a `Retry-After` header can impose; a larger value is cut to this.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Decides what follows an attempt of a delivery that has now made `attempts` attempts (this
/// one included): retry after the schedule's next wait (or the receiver's longer
/// `Retry-After`, at most [`DEFAULT_MAX_RETRY_AFTER`]), or dead once the schedule is spent.
pub fn decide(schedule: &[Duration], attempts: usize, verdict: Verdict) -> Settlement {
    match verdict {
        Verdict::Success | Verdict::Duplicate => Settlement::Delivered,
        Verdict::Gone => Settlement::Gone,
        Verdict::Fatal => Settlement::Dead,
        Verdict::Retry { retry_after } => match schedule.get(attempts.max(1) - 1) {
            Some(&wait) => Settlement::Retry(
                retry_after
                    .map(|ra| ra.min(DEFAULT_MAX_RETRY_AFTER).max(wait))
                    .unwrap_or(wait),
            ),
            None => Settlement::Dead,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    const RETRY: Verdict = Verdict::Retry { retry_after: None };

    #[test]
    fn the_schedule_goes_on_from_the_attempt_count_then_dead() {
        let schedule = [ms(1), ms(2)];
        let got: Vec<_> = (1..=3).map(|n| decide(&schedule, n, RETRY)).collect();
        assert_eq!(
            got,
            vec![
                Settlement::Retry(ms(1)),
                Settlement::Retry(ms(2)),
                Settlement::Dead
            ]
        );
    }

    #[test]
    fn retry_after_is_honoured_when_longer_than_the_schedule_and_capped_at_a_day() {
        let longer = Verdict::Retry {
            retry_after: Some(ms(500)),
        };
        assert_eq!(decide(&[ms(10)], 1, longer), Settlement::Retry(ms(500)));
        let shorter = Verdict::Retry {
            retry_after: Some(ms(1)),
        };
        assert_eq!(decide(&[ms(10)], 1, shorter), Settlement::Retry(ms(10)));
        // A year, as a receiver may ask: the retry comes after a day.
        let year = Verdict::Retry {
            retry_after: Some(Duration::from_secs(365 * 24 * 3600)),
        };
        assert_eq!(
            decide(&[ms(10)], 1, year),
            Settlement::Retry(DEFAULT_MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn success_duplicate_fatal_and_gone() {
        assert_eq!(decide(&[ms(1)], 1, Verdict::Success), Settlement::Delivered);
        assert_eq!(
            decide(&[ms(1)], 1, Verdict::Duplicate),
            Settlement::Delivered
        );
        assert_eq!(decide(&[ms(1)], 1, Verdict::Fatal), Settlement::Dead);
        assert_eq!(decide(&[ms(1)], 1, Verdict::Gone), Settlement::Gone);
        assert_eq!(
            decide(&[], 1, RETRY),
            Settlement::Dead,
            "no retries configured"
        );
    }
}
