//! What one endpoint's delivery actor holds, as plain data: the deliveries it claimed, in
//! lanes per incident (so the events of one incident go out in order, one at a time), a
//! ready list, and what follows an attempt (the retry schedule and `Retry-After`). The store
//! keeps the queue itself and the log; everything here is tested without an actor system.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::model::delivery::{Attempt, DeliveryState, Settlement, Verdict};
use crate::model::Event;

/// Longest wait a `Retry-After` header can impose; a larger value is cut to this.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// One event on its way to one endpoint.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub event: Arc<Event>,
    pub state: DeliveryState,
    pub attempts: Vec<Attempt>,
    /// For a replay: the delivery it repeats. A replay is sent even when the event's dedup
    /// key says it was delivered (that is the point of replaying).
    pub replay_of: Option<String>,
    next_at: Instant,
}

/// Why a delivery could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("no finished (delivered or dead) delivery with this id")]
    NotFound,
    /// The durable queue could not be read or written.
    #[error("{0}")]
    Unavailable(String),
}

#[derive(Debug, Default)]
struct Lane {
    items: VecDeque<Delivery>,
    busy: bool,
}

/// The queue of one endpoint.
#[derive(Debug)]
pub struct DeliveryQueue {
    schedule: Vec<Duration>,
    /// Keyed by incident id (generated here, so a fast hasher is safe).
    lanes: HashMap<Arc<str>, Lane, foldhash::fast::RandomState>,
    ready: VecDeque<Arc<str>>,
    waiting: BinaryHeap<Reverse<(Instant, u64, Arc<str>)>>,
    seq: u64,
    pending: usize,
    disabled: bool,
}

impl DeliveryQueue {
    /// A queue that retries after each of `schedule`'s waits (attempts = 1 + its length).
    pub fn new(schedule: Vec<Duration>) -> Self {
        DeliveryQueue {
            schedule,
            lanes: HashMap::default(),
            ready: VecDeque::new(),
            waiting: BinaryHeap::new(),
            seq: 0,
            pending: 0,
            disabled: false,
        }
    }

    /// Deliveries not yet finished (queued, in flight or waiting for a retry).
    pub fn pending(&self) -> usize {
        self.pending
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Whether the head of `lane_key` is out (being attempted).
    pub fn is_busy(&self, lane_key: &str) -> bool {
        self.lanes.get(lane_key).is_some_and(|l| l.busy)
    }

    /// Takes deliveries again after a 410 (a durable queue's replay re-enabled the endpoint).
    pub fn enable(&mut self) {
        self.disabled = false;
    }

    /// Holds a delivery claimed from the store (with its id and attempts so far) at the end
    /// of its lane: the retry schedule goes on from its attempt count. On a disabled endpoint
    /// it is not held (returns false).
    pub fn push_resumed(
        &mut self,
        id: String,
        event: Arc<Event>,
        attempts: Vec<Attempt>,
        now: Instant,
    ) -> bool {
        let state = if attempts.is_empty() {
            DeliveryState::Pending
        } else {
            DeliveryState::Failed
        };
        let delivery = Delivery {
            id,
            event,
            state,
            attempts,
            replay_of: None,
            next_at: now,
        };
        self.enqueue(delivery)
    }

    /// Replaces the retry schedule (config reload); queued deliveries keep their attempts.
    pub fn set_schedule(&mut self, schedule: Vec<Duration>) {
        self.schedule = schedule;
    }

    fn enqueue(&mut self, mut delivery: Delivery) -> bool {
        if self.disabled {
            delivery.state = DeliveryState::Dead;
            self.finish(delivery);
            return false;
        }
        let key: Arc<str> = delivery.event.incident.id.as_str().into();
        let lane = self.lanes.entry(key.clone()).or_default();
        let was_idle = lane.items.is_empty() && !lane.busy;
        lane.items.push_back(delivery);
        self.pending += 1;
        if was_idle {
            self.ready.push_back(key);
        }
        true
    }

    /// Takes up to `limit` deliveries that are due (the head of a lane that is not busy),
    /// marking their lanes busy. Returns (lane key, a copy of the delivery).
    pub fn take_ready(&mut self, now: Instant, limit: usize) -> Vec<(Arc<str>, Delivery)> {
        while let Some(Reverse((at, _, _))) = self.waiting.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, _, key))) = self.waiting.pop() {
                self.ready.push_back(key);
            }
        }
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            let Some(lane) = self.lanes.get_mut(&key) else {
                continue;
            };
            let Some(head) = lane.items.front() else {
                continue;
            };
            if lane.busy {
                // A lane key can be listed twice after `release`; its head is already out.
                continue;
            }
            lane.busy = true;
            out.push((key, head.clone()));
        }
        out
    }

    /// When the next retry falls due, if one waits.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.waiting.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Whether something can be taken now.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Records the attempt made on the head of `lane` and decides what follows. On
    /// [`Settlement::Gone`] every other queued delivery is dead too (see [`pending`](Self::pending)).
    pub fn settle(
        &mut self,
        lane_key: &Arc<str>,
        attempt: Option<Attempt>,
        verdict: Verdict,
        now: Instant,
    ) -> Settlement {
        let Some(lane) = self.lanes.get_mut(lane_key) else {
            return Settlement::Dead;
        };
        lane.busy = false;
        let Some(mut head) = lane.items.pop_front() else {
            return Settlement::Dead;
        };
        if let Some(a) = attempt {
            head.attempts.push(a);
        }
        let settlement = match verdict {
            Verdict::Success | Verdict::Duplicate => {
                head.state = DeliveryState::Delivered;
                Settlement::Delivered
            }
            Verdict::Gone => {
                head.state = DeliveryState::Dead;
                Settlement::Gone
            }
            Verdict::Fatal => {
                head.state = DeliveryState::Dead;
                Settlement::Dead
            }
            Verdict::Retry { retry_after } => {
                let made = head.attempts.len().max(1);
                match self.schedule.get(made - 1) {
                    Some(&wait) => {
                        let wait = retry_after
                            .map(|ra| ra.min(DEFAULT_MAX_RETRY_AFTER).max(wait))
                            .unwrap_or(wait);
                        head.state = DeliveryState::Failed;
                        head.next_at = now + wait;
                        let at = head.next_at;
                        lane.items.push_front(head);
                        self.seq += 1;
                        self.waiting.push(Reverse((at, self.seq, lane_key.clone())));
                        return Settlement::Retry(wait);
                    }
                    None => {
                        head.state = DeliveryState::Dead;
                        Settlement::Dead
                    }
                }
            }
        };
        self.pending -= 1;
        self.finish(head);
        if settlement == Settlement::Gone {
            self.disable();
            return settlement;
        }
        self.after_head_removed(lane_key);
        settlement
    }

    /// Drops a lane and its deliveries from this queue (they live on elsewhere: a durable
    /// queue took the retry over). Returns how many were dropped.
    pub fn release(&mut self, lane_key: &Arc<str>) -> usize {
        let n = self.lanes.remove(lane_key).map_or(0, |l| l.items.len());
        self.pending -= n;
        n
    }

    fn after_head_removed(&mut self, lane_key: &Arc<str>) {
        let empty = self.lanes.get(lane_key).is_none_or(|l| l.items.is_empty());
        if empty {
            self.lanes.remove(lane_key);
        } else {
            self.ready.push_back(lane_key.clone());
        }
    }

    /// Disables the endpoint: every held delivery is dropped (the actor settles them dead).
    fn disable(&mut self) -> usize {
        self.disabled = true;
        let lanes = std::mem::take(&mut self.lanes);
        self.ready.clear();
        self.waiting.clear();
        let mut n = 0;
        for (_, lane) in lanes {
            for mut d in lane.items {
                d.state = DeliveryState::Dead;
                self.pending -= 1;
                n += 1;
                self.finish(d);
            }
        }
        n
    }

    /// A finished delivery leaves the actor (the store keeps the log).
    fn finish(&mut self, _delivery: Delivery) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventType;
    use chrono::Utc;

    fn event(incident: &str, kind: EventType) -> Arc<Event> {
        Arc::new(crate::model::test_event(incident, kind))
    }

    /// Holds a new delivery of `event`, as a claim brings it.
    fn push(q: &mut DeliveryQueue, event: Arc<Event>, now: Instant) -> bool {
        let id = format!("dlv_{}", uuid::Uuid::now_v7().simple());
        q.push_resumed(id, event, Vec::new(), now)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_incident_goes_out_in_order_one_at_a_time() {
        let mut q = DeliveryQueue::new(vec![ms(10)]);
        let t0 = Instant::now();
        push(&mut q, event("inc_a", EventType::Created), t0);
        push(&mut q, event("inc_a", EventType::Resolved), t0);
        push(&mut q, event("inc_b", EventType::Created), t0);
        let batch = q.take_ready(t0, 10);
        let kinds: Vec<_> = batch
            .iter()
            .map(|(_, d)| (d.event.incident.id.clone(), d.event.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("inc_a".into(), EventType::Created),
                ("inc_b".into(), EventType::Created)
            ],
            "the resolved event waits behind created"
        );
        assert!(q.take_ready(t0, 10).is_empty());
        // created fails: resolved must still wait.
        let (lane_a, _) = &batch[0];
        assert_eq!(
            q.settle(lane_a, None, Verdict::Retry { retry_after: None }, t0),
            Settlement::Retry(ms(10))
        );
        assert!(q.take_ready(t0, 10).is_empty());
        assert_eq!(q.next_wakeup(), Some(t0 + ms(10)));
        let retry = q.take_ready(t0 + ms(10), 10);
        assert_eq!(retry.len(), 1);
        assert_eq!(retry[0].1.event.kind, EventType::Created);
        assert_eq!(
            q.settle(lane_a, None, Verdict::Success, t0),
            Settlement::Delivered
        );
        let next = q.take_ready(t0 + ms(10), 10);
        assert_eq!(next[0].1.event.kind, EventType::Resolved);
        assert_eq!(q.pending(), 2);
    }

    #[test]
    fn dead_after_the_last_attempt() {
        let mut q = DeliveryQueue::new(vec![ms(1), ms(2)]);
        let t0 = Instant::now();
        push(&mut q, event("inc_a", EventType::Created), t0);
        let mut now = t0;
        let mut results = vec![];
        for _ in 0..3 {
            let (lane, _) = q.take_ready(now, 1).pop().expect("due");
            let attempt = Attempt {
                at: Utc::now(),
                status: Some(500),
                duration_ms: 1,
                error: None,
                response: String::new(),
            };
            results.push(q.settle(
                &lane,
                Some(attempt),
                Verdict::Retry { retry_after: None },
                now,
            ));
            now += ms(5);
        }
        assert_eq!(
            results,
            vec![
                Settlement::Retry(ms(1)),
                Settlement::Retry(ms(2)),
                Settlement::Dead
            ]
        );
        assert_eq!(q.pending(), 0);
    }

    #[test]
    fn retry_after_is_honoured_when_longer_than_the_schedule() {
        let mut q = DeliveryQueue::new(vec![ms(10)]);
        let t0 = Instant::now();
        push(&mut q, event("inc_a", EventType::Created), t0);
        let (lane, _) = q.take_ready(t0, 1).pop().unwrap();
        let s = q.settle(
            &lane,
            None,
            Verdict::Retry {
                retry_after: Some(ms(500)),
            },
            t0,
        );
        assert_eq!(s, Settlement::Retry(ms(500)));
    }

    #[test]
    fn retry_after_is_capped_at_24_hours() {
        let mut q = DeliveryQueue::new(vec![ms(10), ms(10)]);
        let t0 = Instant::now();
        push(&mut q, event("inc_a", EventType::Created), t0);
        let (lane, _) = q.take_ready(t0, 1).pop().unwrap();
        // A year, as a receiver may ask: the retry comes after a day.
        let s = q.settle(
            &lane,
            None,
            Verdict::Retry {
                retry_after: Some(Duration::from_secs(365 * 24 * 3600)),
            },
            t0,
        );
        assert_eq!(s, Settlement::Retry(Duration::from_secs(24 * 3600)));
        assert_eq!(q.next_wakeup(), Some(t0 + Duration::from_secs(24 * 3600)));
        assert!(q
            .take_ready(t0 + Duration::from_secs(24 * 3600) - ms(1), 1)
            .is_empty());
        assert_eq!(
            q.take_ready(t0 + Duration::from_secs(24 * 3600), 1).len(),
            1,
            "due after exactly a day"
        );
    }

    #[test]
    fn fatal_is_dead_at_once() {
        let mut q = DeliveryQueue::new(vec![ms(1), ms(1)]);
        let t0 = Instant::now();
        push(&mut q, event("inc_a", EventType::Created), t0);
        let (lane, _) = q.take_ready(t0, 1).pop().unwrap();
        assert_eq!(q.settle(&lane, None, Verdict::Fatal, t0), Settlement::Dead);
        assert_eq!(q.pending(), 0);
    }

    #[test]
    fn resumed_deliveries_go_on_with_their_schedule_and_released_lanes_stay_out() {
        let mut q = DeliveryQueue::new(vec![ms(1), ms(2)]);
        let t0 = Instant::now();
        let failed = Attempt {
            at: Utc::now(),
            status: Some(500),
            duration_ms: 1,
            error: None,
            response: String::new(),
        };
        let ev = event("inc_a", EventType::Created);
        q.push_resumed("dlv_1".into(), ev.clone(), vec![failed.clone()], t0);
        let (lane, d) = q.take_ready(t0, 10).pop().unwrap();
        assert_eq!((d.id.as_str(), d.state), ("dlv_1", DeliveryState::Failed));
        let s = q.settle(
            &lane,
            Some(failed.clone()),
            Verdict::Retry { retry_after: None },
            t0,
        );
        assert_eq!(
            s,
            Settlement::Retry(ms(2)),
            "the second wait of the schedule"
        );
        assert_eq!(q.release(&lane), 1);
        assert_eq!(q.pending(), 0);
        // Claimed again before the stale timer fires: only one copy goes out.
        q.push_resumed("dlv_1".into(), ev, vec![failed.clone(), failed], t0);
        assert_eq!(q.take_ready(t0 + ms(5), 10).len(), 1);
        assert!(q.take_ready(t0 + ms(5), 10).is_empty());
    }

    #[test]
    fn gone_disables_and_kills_the_queue() {
        let mut q = DeliveryQueue::new(vec![ms(10)]);
        let t0 = Instant::now();
        push(&mut q, event("inc_a", EventType::Created), t0);
        push(&mut q, event("inc_a", EventType::Resolved), t0);
        push(&mut q, event("inc_b", EventType::Created), t0);
        let (lane, _) = q.take_ready(t0, 1).pop().unwrap();
        assert_eq!(q.settle(&lane, None, Verdict::Gone, t0), Settlement::Gone);
        assert!(q.is_disabled());
        assert_eq!(q.pending(), 0);
        assert!(!push(&mut q, event("inc_c", EventType::Created), t0));
    }
}
