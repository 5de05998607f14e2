//! The memory store's delivery queue: the same contract as the redis store's scripts
//! ([`DeliveryQueueStore`](crate::store::DeliveryQueueStore)) as plain data under one lock.
//! Per endpoint, each incident's deliveries wait in a lane (so its events go out in order,
//! one at a time); a lane is either due (at a time) or leased (its head is out, until the
//! lease runs out), never both; finished deliveries are kept in a bounded log (delivered and
//! dead apart, so a burst of successes never pushes out a failure someone has to look at).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::changes::{ChangeLog, Frame, Op};
use crate::model::delivery::{Attempt, DeliveryState, Settlement};
use crate::model::Event;
use crate::store::{Claim, Claimed, QueueStatus, StoredDeliveries, StoredDelivery};

mod admin;
mod due;
mod restore;
use due::DueLanes;
pub(super) use restore::{FrameBuilder, Restoring};

/// How many delivered deliveries an endpoint keeps for the admin API (and replay). When full,
/// the oldest delivered one is forgotten; unfinished ones are never dropped.
pub const DEFAULT_DELIVERED_LOG_CAPACITY: usize = 1_000;

/// How many dead deliveries an endpoint keeps, replayable. When full, the oldest dead one is
/// forgotten.
pub const DEFAULT_DEAD_LOG_CAPACITY: usize = 10_000;

/// How many delivered (endpoint, event id) keys the queue remembers. When full, the oldest
/// is forgotten; in one process an event is queued once per endpoint, so the keys only guard
/// a head whose result was settled under a lease that had run out.
pub const DEFAULT_MEMORY_DEDUP_CAPACITY: usize = 1_000_000;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Heads leased at record, by endpoint.
type LeasedHeads = Vec<(Arc<str>, Claimed)>;

/// One delivery as the queue keeps it.
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    event: Arc<Event>,
    state: DeliveryState,
    attempts: Vec<Attempt>,
    replay_of: Option<String>,
}

impl Entry {
    fn stored(&self) -> StoredDelivery {
        StoredDelivery {
            id: self.id.clone(),
            event: (*self.event).clone(),
            state: self.state,
            attempts: self.attempts.clone(),
            replay_of: self.replay_of.clone(),
            next_attempt_at: None,
        }
    }
}

/// One incident's unfinished deliveries to one endpoint, oldest first, and the lease its head
/// is out under, if it is.
#[derive(Default)]
struct Lane {
    items: VecDeque<Entry>,
    lease: Option<Box<Lease>>,
}

/// A lane's head is out under `token` until `until` (`seq` orders leases of the same time).
/// Boxed in its lane: few lanes are leased at a time, and a smaller lane keeps the lanes table
/// (hundreds of thousands of lanes in a backlog) smaller to look up in.
struct Lease {
    /// The lease as a number; handed out as text (see [`lease_text`]).
    token: u64,
    until: Instant,
    seq: u64,
}

/// One endpoint's queue.
#[derive(Default)]
struct EndpointQueue {
    /// Lanes with unfinished deliveries, by incident id. A lane is due or leased, never both.
    lanes: FastMap<Arc<str>, Lane>,
    due: DueLanes,
    /// The leases by when they run out (time, sequence).
    lease_order: BTreeMap<(Instant, u64), Arc<str>>,
    delivered_log: VecDeque<Entry>,
    dead_log: VecDeque<Entry>,
    disabled: bool,
    /// Unfinished deliveries.
    depth: usize,
}

/// Every endpoint's queue, the dedup keys and the count of unfinished deliveries.
#[derive(Default)]
struct State {
    endpoints: FastMap<Arc<str>, EndpointQueue>,
    pending: usize,
    seq: u64,
    delivered: HashSet<(Arc<str>, String)>,
    delivered_order: VecDeque<(Arc<str>, String)>,
}

/// The memory delivery queue.
#[derive(Default)]
pub struct MemoryQueue {
    state: Mutex<State>,
    /// Where each call's changes are written, under the lock (see `memory::changes`).
    changes: Option<Arc<dyn ChangeLog>>,
}

/// Lease `token` as the text a [`Claimed`] carries.
fn lease_text(token: u64) -> String {
    format!("m{token}")
}

/// The lease token a [`Claimed`] carries, if it is one of this queue's.
fn lease_token(text: &str) -> Option<u64> {
    text.strip_prefix('m')?.parse().ok()
}

/// `now` (an `Instant`) plus `wait` as a wall-clock time, for a change log.
fn wall_after(wall_now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    wall_now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn endpoint(&mut self, endpoint: &str) -> &mut EndpointQueue {
        if !self.endpoints.contains_key(endpoint) {
            self.endpoints
                .insert(endpoint.into(), EndpointQueue::default());
        }
        self.endpoints
            .get_mut(endpoint)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    fn mark_delivered(&mut self, endpoint: &str, event_id: &str) {
        let key: (Arc<str>, String) = (endpoint.into(), event_id.to_string());
        if self.delivered.insert(key.clone()) {
            self.delivered_order.push_back(key);
            while self.delivered_order.len() > DEFAULT_MEMORY_DEDUP_CAPACITY {
                if let Some(old) = self.delivered_order.pop_front() {
                    self.delivered.remove(&old);
                }
            }
        }
    }

    fn is_delivered(&self, endpoint: &str, event_id: &str) -> bool {
        self.delivered
            .contains(&(Arc::from(endpoint), event_id.to_string()))
    }

    /// Puts `entry` at the tail of its lane. An idle lane is leased at once under `lease`
    /// (token, until) when given and no lane of the endpoint is due now (its head is `entry`:
    /// returned as claimed), else falls due now, behind the lanes due already (first in,
    /// first out: a steady stream of new lanes leased at record would otherwise keep the
    /// actor from ever claiming the older ones). Returns whether the lane was idle.
    fn push(
        &mut self,
        endpoint: &str,
        entry: Entry,
        now: Instant,
        lease: Option<(u64, Instant)>,
    ) -> (bool, Option<Claimed>) {
        let seq = self.next_seq();
        let q = self.endpoint(endpoint);
        let backlog = q.due.any_due(now);
        let lane: Arc<str> = entry.event.incident.id.as_str().into();
        let l = q.lanes.entry(lane.clone()).or_default();
        let idle = l.items.is_empty() && l.lease.is_none();
        let head = idle.then(|| (entry.id.clone(), entry.event.clone()));
        l.items.push_back(entry);
        let mut leased = None;
        if let Some((delivery_id, event)) = head {
            match lease.filter(|_| !backlog) {
                Some((token, until)) => {
                    leased = Some(Claimed {
                        delivery_id,
                        lane: lane.clone(),
                        event,
                        attempts: Vec::new(),
                        lease: lease_text(token),
                        replay: false,
                    });
                    q.lease(lane, token, until, seq);
                }
                None => q.due.push(lane, now, seq, now),
            }
        }
        q.depth += 1;
        self.pending += 1;
        (idle, leased)
    }
}

impl EndpointQueue {
    /// Leases `lane` (which holds deliveries) under `token` until `until` (`seq` orders leases
    /// of the same time).
    fn lease(&mut self, lane: Arc<str>, token: u64, until: Instant, seq: u64) {
        let Some(l) = self.lanes.get_mut(&lane) else {
            return;
        };
        let old = l.lease.replace(Box::new(Lease { token, until, seq }));
        if let Some(old) = old {
            self.lease_order.remove(&(old.until, old.seq));
        }
        self.lease_order.insert((until, seq), lane);
    }

    /// Ends the lease on `lane`'s head if it is lease `token`; false when it is not (it ran
    /// out, and the head may be out under another lease now).
    fn end_lease(&mut self, lane: &Arc<str>, token: Option<u64>) -> bool {
        let ended = self
            .lanes
            .get_mut(lane)
            .and_then(|l| l.lease.take_if(|l| Some(l.token) == token));
        match ended {
            Some(old) => {
                self.lease_order.remove(&(old.until, old.seq));
                true
            }
            None => false,
        }
    }

    /// When a lane can be handed out next: its due time or its lease's end, from `now`.
    fn next_claimable_in(&self, now: Instant) -> Option<Duration> {
        let due = self.due.next_at(now);
        let lease = self.lease_order.keys().next().map(|(until, _)| *until);
        [due, lease]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(now))
    }

    fn log(&mut self, entry: Entry) {
        let (log, cap) = if entry.state == DeliveryState::Dead {
            (&mut self.dead_log, DEFAULT_DEAD_LOG_CAPACITY)
        } else {
            (&mut self.delivered_log, DEFAULT_DELIVERED_LOG_CAPACITY)
        };
        if log.len() >= cap {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// Takes the head of `lane` off (finished) and lets the lane go on; false when `id` is
    /// not its head.
    fn finish_head(
        &mut self,
        lane: &Arc<str>,
        id: &str,
        mut done: impl FnMut(&mut Entry),
    ) -> Option<Entry> {
        let l = self.lanes.get_mut(lane)?;
        if l.items.front().is_none_or(|h| h.id != id) {
            return None;
        }
        let mut head = l.items.pop_front()?;
        done(&mut head);
        if l.items.is_empty() && l.lease.is_none() {
            self.lanes.remove(lane);
        }
        self.depth = self.depth.saturating_sub(1);
        Some(head)
    }
}

impl MemoryQueue {
    /// A queue that hands each call's changes to `log`.
    pub fn with_changes(log: Arc<dyn ChangeLog>) -> Self {
        MemoryQueue {
            state: Mutex::default(),
            changes: Some(log),
        }
    }

    /// Writes `frame` to the change log, if there is one and it holds anything.
    fn log_changes(&self, frame: Option<Frame>) {
        if let (Some(log), Some(frame)) = (&self.changes, frame) {
            if !frame.is_empty() {
                log.append(&frame);
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change under the lock is a few container operations that leave it whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a new delivery per (endpoint, event), in order (at record). A lane that was
    /// idle is leased to the caller while `room` (endpoint, heads, lease) lasts for its
    /// endpoint, else it falls due. Returns the leased heads and the endpoints that got a due
    /// lane.
    ///
    /// With a change log, `frame` holds the call's incident changes and its events, and the
    /// index of each delivery's event among them; the deliveries are added to it and it is
    /// logged under the lock.
    pub fn add(
        &self,
        deliveries: Vec<(Arc<str>, Arc<Event>)>,
        room: &[(&str, usize, Duration)],
        mut frame: Option<(Frame, Vec<u32>)>,
    ) -> (LeasedHeads, Vec<Arc<str>>) {
        let now = Instant::now();
        let wall = frame.as_ref().map(|_| Utc::now()).unwrap_or_default();
        let mut s = self.state();
        let token = s.next_seq();
        let mut left: Vec<(&str, usize, Instant)> = room
            .iter()
            .map(|(e, k, lease)| (*e, *k, now + *lease))
            .collect();
        let mut leased = Vec::new();
        let mut due: Vec<Arc<str>> = Vec::new();
        for (k, (endpoint, event)) in deliveries.into_iter().enumerate() {
            let entry = Entry {
                id: format!("dlv_{}", uuid::Uuid::now_v7().simple()),
                event,
                state: DeliveryState::Pending,
                attempts: Vec::new(),
                replay_of: None,
            };
            if let Some((frame, event_of)) = frame.as_mut() {
                frame.ops.push(Op::Push {
                    endpoint: endpoint.clone(),
                    id: entry.id.clone(),
                    event: event_of.get(k).copied().unwrap_or_default(),
                    state: DeliveryState::Pending,
                    attempts: Vec::new(),
                    replay_of: None,
                    due_at: wall,
                });
            }
            let slot = left.iter_mut().find(|(e, k, _)| *e == &*endpoint && *k > 0);
            let lease = slot.as_ref().map(|(_, _, until)| (token, *until));
            let (idle, head) = s.push(&endpoint, entry, now, lease);
            match head {
                Some(head) => {
                    if let Some(slot) = slot {
                        slot.1 -= 1;
                    }
                    leased.push((endpoint, head));
                }
                None if idle && !due.contains(&endpoint) => due.push(endpoint),
                None => {}
            }
        }
        self.log_changes(frame.map(|(f, _)| f));
        (leased, due)
    }

    /// Unfinished deliveries, every endpoint's.
    pub fn pending(&self) -> usize {
        self.state().pending
    }

    pub fn claim(&self, endpoint: &str, limit: usize, lease: Duration) -> Claim {
        let now = Instant::now();
        let mut s = self.state();
        let token = s.next_seq();
        let text = lease_text(token);
        let mut seq = s.seq;
        let State {
            endpoints,
            delivered,
            pending,
            ..
        } = &mut *s;
        let q = match endpoints.get_mut(endpoint) {
            Some(q) => q,
            None => {
                return Claim {
                    pending: *pending,
                    ..Claim::default()
                }
            }
        };
        // Lanes whose lease ran out (their holder stalled) are due again first.
        while let Some(entry) = q.lease_order.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let lane = entry.remove();
            if let Some(l) = q.lanes.get_mut(&lane) {
                l.lease = None;
            }
            seq += 1;
            q.due.push(lane, now, seq, now);
        }
        let mut out = Vec::new();
        let mut duplicates = 0;
        let mut frame = self.changes.as_ref().map(|_| Frame::default());
        while out.len() < limit {
            let Some(lane) = q.due.pop(now) else {
                break;
            };
            while let Some(head) = q.lanes.get(&lane).and_then(|l| l.items.front()) {
                let duplicate = head.replay_of.is_none()
                    && !delivered.is_empty()
                    && delivered.contains(&(Arc::from(endpoint), head.event.id.clone()));
                if duplicate {
                    let id = head.id.clone();
                    if let Some(done) =
                        q.finish_head(&lane, &id, |h| h.state = DeliveryState::Delivered)
                    {
                        if let Some(frame) = frame.as_mut() {
                            frame.ops.push(Op::Finish {
                                endpoint: endpoint.into(),
                                lane: lane.to_string(),
                                id: done.id.clone(),
                                state: DeliveryState::Delivered,
                                attempts: done.attempts.clone(),
                            });
                        }
                        q.log(done);
                    }
                    *pending = pending.saturating_sub(1);
                    duplicates += 1;
                    continue;
                }
                out.push(Claimed {
                    delivery_id: head.id.clone(),
                    lane: lane.clone(),
                    event: head.event.clone(),
                    attempts: head.attempts.clone(),
                    lease: text.clone(),
                    replay: head.replay_of.is_some(),
                });
                seq += 1;
                q.lease(lane.clone(), token, now + lease, seq);
                break;
            }
        }
        let claim = Claim {
            deliveries: out,
            disabled: q.disabled,
            next_due_in: q.next_claimable_in(now),
            depth: q.depth,
            duplicates,
            pending: *pending,
        };
        s.seq = seq;
        self.log_changes(frame);
        claim
    }

    pub fn settle(&self, endpoint: &str, settles: &[(Claimed, Settlement)]) -> QueueStatus {
        let now = Instant::now();
        // With a change log: the frame, and the endpoint's name for its ops.
        let mut frame = self
            .changes
            .as_ref()
            .map(|_| (Frame::default(), Arc::<str>::from(endpoint)));
        let wall = frame.as_ref().map(|_| Utc::now()).unwrap_or_default();
        let mut s = self.state();
        let mut finished = 0;
        let mut marks = Vec::new();
        let mut seq = s.seq;
        if !s.endpoints.contains_key(endpoint) {
            return QueueStatus {
                next_claimable_in: None,
                pending: s.pending,
                depth: 0,
            };
        }
        let Some(q) = s.endpoints.get_mut(endpoint) else {
            unreachable!("checked above");
        };
        for (claimed, settlement) in settles {
            let lane = claimed.lane.clone();
            if !q.end_lease(&lane, lease_token(&claimed.lease)) {
                tracing::warn!(
                    endpoint,
                    delivery_id = %claimed.delivery_id,
                    "the lease ran out before the delivery was settled; another attempt owns it"
                );
                if *settlement == Settlement::Delivered {
                    // Whoever holds the head now finishes it without a second request.
                    marks.push(claimed.event.id.clone());
                    if let Some((frame, ep)) = frame.as_mut() {
                        frame.ops.push(Op::Delivered {
                            endpoint: ep.clone(),
                            event_id: claimed.event.id.clone(),
                        });
                    }
                }
                continue;
            }
            let again_at = match *settlement {
                Settlement::Retry(wait) => Some(now + wait),
                Settlement::Release => Some(now),
                _ => None,
            };
            if let Some(at) = again_at {
                if let Some(head) = q.lanes.get_mut(&lane).and_then(|l| l.items.front_mut()) {
                    if head.id == claimed.delivery_id {
                        if let Some((frame, ep)) = frame.as_mut() {
                            frame.ops.push(Op::Head {
                                endpoint: ep.clone(),
                                lane: claimed.lane.to_string(),
                                id: head.id.clone(),
                                attempts: claimed.attempts.clone(),
                                due_at: wall_after(wall, at.saturating_duration_since(now)),
                            });
                        }
                        head.attempts = claimed.attempts.clone();
                        head.state = if head.attempts.is_empty() {
                            DeliveryState::Pending
                        } else {
                            DeliveryState::Failed
                        };
                    }
                }
                seq += 1;
                q.due.push(lane, at, seq, now);
                continue;
            }
            let state = if *settlement == Settlement::Delivered {
                DeliveryState::Delivered
            } else {
                DeliveryState::Dead
            };
            let done = q.finish_head(&lane, &claimed.delivery_id, |h| {
                h.state = state;
                h.attempts = claimed.attempts.clone();
            });
            if let Some(done) = done {
                if let Some((frame, ep)) = frame.as_mut() {
                    frame.ops.push(Op::Finish {
                        endpoint: ep.clone(),
                        lane: claimed.lane.to_string(),
                        id: done.id.clone(),
                        state,
                        attempts: done.attempts.clone(),
                    });
                }
                q.log(done);
                finished += 1;
            }
            if *settlement == Settlement::Gone {
                q.disabled = true;
                if let Some((frame, ep)) = frame.as_mut() {
                    frame.ops.push(Op::Disabled {
                        endpoint: ep.clone(),
                        disabled: true,
                    });
                }
            }
            if q.lanes.contains_key(&lane) {
                seq += 1;
                q.due.push(lane, now, seq, now);
            }
        }
        let next_claimable_in = q.next_claimable_in(now);
        let depth = q.depth;
        s.seq = seq;
        s.pending = s.pending.saturating_sub(finished);
        for event_id in marks {
            s.mark_delivered(endpoint, &event_id);
        }
        self.log_changes(frame.map(|(f, _)| f));
        QueueStatus {
            next_claimable_in,
            pending: s.pending,
            depth,
        }
    }

    /// Whether this event was delivered to this endpoint (its dedup key exists).
    pub fn is_delivered(&self, endpoint: &str, event_id: &str) -> bool {
        self.state().is_delivered(endpoint, event_id)
    }
}
