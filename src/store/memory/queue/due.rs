//! The lanes of one endpoint that wait to be claimed, in the order they fell due.
//!
//! Most lanes fall due the moment they get work (a new delivery, the next event after a
//! success, a lease that ran out); they wait first in, first out, which costs a ring buffer's
//! push and pop. Only a lane waiting for a later time (a retry) is kept by time, and joins the
//! back of the line once its time has come, before any lane that falls due after it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

/// An endpoint's lanes waiting to be claimed: due now, or at a later time.
#[derive(Default)]
pub(super) struct DueLanes {
    /// Due already, oldest first.
    now: VecDeque<Arc<str>>,
    /// Due later, by (time, sequence).
    later: BTreeMap<(Instant, u64), Arc<str>>,
}

impl DueLanes {
    /// `lane` falls due at `at` (`seq` orders lanes due at the same time); `now` is the time of
    /// the call.
    pub(super) fn push(&mut self, lane: Arc<str>, at: Instant, seq: u64, now: Instant) {
        self.promote(now);
        if at <= now {
            self.now.push_back(lane);
        } else {
            self.later.insert((at, seq), lane);
        }
    }

    /// The lane due longest, if one is due at `now`.
    pub(super) fn pop(&mut self, now: Instant) -> Option<Arc<str>> {
        self.promote(now);
        self.now.pop_front()
    }

    /// Whether a lane is due at `now`.
    pub(super) fn any_due(&self, now: Instant) -> bool {
        !self.now.is_empty() || self.later.keys().next().is_some_and(|(at, _)| *at <= now)
    }

    /// When the next lane is due (`now` when one is due already).
    pub(super) fn next_at(&self, now: Instant) -> Option<Instant> {
        if self.now.is_empty() {
            self.later.keys().next().map(|(at, _)| *at)
        } else {
            Some(now)
        }
    }

    /// Every waiting lane with when it is due (`now` for those due already).
    pub(super) fn iter(&self, now: Instant) -> impl Iterator<Item = (&Arc<str>, Instant)> {
        self.now
            .iter()
            .map(move |lane| (lane, now))
            .chain(self.later.iter().map(|((at, _), lane)| (lane, *at)))
    }

    /// Moves the lanes whose time has come to the back of the line, earliest first.
    fn promote(&mut self, now: Instant) {
        while let Some(entry) = self.later.first_entry() {
            if entry.key().0 > now {
                break;
            }
            self.now.push_back(entry.remove());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lane(s: &str) -> Arc<str> {
        s.into()
    }

    #[test]
    fn lanes_due_now_go_first_in_first_out() {
        let t0 = Instant::now();
        let mut due = DueLanes::default();
        due.push(lane("a"), t0, 1, t0);
        due.push(lane("b"), t0, 2, t0);
        assert!(due.any_due(t0));
        assert_eq!(due.pop(t0).as_deref(), Some("a"));
        assert_eq!(due.pop(t0).as_deref(), Some("b"));
        assert_eq!(due.pop(t0), None);
        assert!(!due.any_due(t0));
    }

    #[test]
    fn a_later_lane_waits_for_its_time_then_goes_before_lanes_due_after_it() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut due = DueLanes::default();
        due.push(lane("retry"), t0 + ms(10), 1, t0);
        due.push(lane("new"), t0, 2, t0);
        assert_eq!(due.next_at(t0), Some(t0));
        assert_eq!(due.pop(t0).as_deref(), Some("new"));
        assert_eq!(due.pop(t0), None);
        assert_eq!(due.next_at(t0), Some(t0 + ms(10)));
        assert!(!due.any_due(t0 + ms(9)));
        assert!(due.any_due(t0 + ms(10)));
        // A lane falling due after the retry's time queues behind it.
        due.push(lane("later-new"), t0 + ms(20), 3, t0 + ms(20));
        let order: Vec<_> = due.iter(t0 + ms(20)).map(|(l, _)| l.to_string()).collect();
        assert_eq!(order, ["retry", "later-new"]);
        assert_eq!(due.pop(t0 + ms(20)).as_deref(), Some("retry"));
        assert_eq!(due.pop(t0 + ms(20)).as_deref(), Some("later-new"));
    }
}
