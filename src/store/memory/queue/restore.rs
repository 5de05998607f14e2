//! The queue's side of `memory::changes`: applying logged ops again at start-up, and writing
//! the whole queue as ops (a snapshot).
//!
//! While ops are applied, lanes' due times are kept aside ([`Restoring`]) and the due set is
//! built once at the end: every lease is gone after a restart, so each lane's head is due at
//! its retry time, or now.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{Entry, FastMap, MemoryQueue, State};
use crate::model::delivery::DeliveryState;
use crate::model::Event;
use crate::store::memory::changes::{Frame, Op};

/// Most ops in one snapshot frame (a frame is read whole at start-up).
const SNAPSHOT_FRAME_OPS: usize = 1024;

/// Ops being applied at start-up: when each lane falls due, and the clocks to convert times.
pub(in crate::store::memory) struct Restoring {
    due: FastMap<(Arc<str>, Arc<str>), Instant>,
    now: Instant,
    wall: DateTime<Utc>,
}

impl Default for Restoring {
    fn default() -> Self {
        Restoring {
            due: FastMap::default(),
            now: Instant::now(),
            wall: Utc::now(),
        }
    }
}

impl Restoring {
    /// A wall-clock time as an `Instant` (a time already past: now).
    fn instant(&self, at: DateTime<Utc>) -> Instant {
        (at - self.wall)
            .to_std()
            .map_or(self.now, |ahead| self.now + ahead)
    }
}

/// Builds snapshot frames: each event once per frame, at most [`SNAPSHOT_FRAME_OPS`] ops.
#[derive(Default)]
pub(in crate::store::memory) struct FrameBuilder {
    pub frames: Vec<Frame>,
    current: Frame,
    index: HashMap<*const Event, u32>,
}

impl FrameBuilder {
    /// The index of `event` in the current frame.
    pub fn event(&mut self, event: &Arc<Event>) -> u32 {
        let events = &mut self.current.events;
        *self.index.entry(Arc::as_ptr(event)).or_insert_with(|| {
            events.push(event.clone());
            events.len() as u32 - 1
        })
    }

    pub fn push(&mut self, op: Op) {
        self.current.ops.push(op);
        if self.current.ops.len() >= SNAPSHOT_FRAME_OPS {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if !self.current.is_empty() {
            self.frames.push(std::mem::take(&mut self.current));
        }
        self.index.clear();
    }

    pub fn finish(mut self) -> Vec<Frame> {
        self.cut();
        self.frames
    }
}

impl MemoryQueue {
    /// Applies one logged op (ops of other parts of the store are left alone).
    pub(in crate::store::memory) fn apply(
        &self,
        r: &mut Restoring,
        events: &[Arc<Event>],
        op: &Op,
    ) {
        let mut s = self.state();
        let event = |i: &u32| events.get(*i as usize).cloned();
        match op {
            Op::Push {
                endpoint,
                id,
                event: i,
                state,
                attempts,
                replay_of,
                due_at,
            } => {
                let Some(event) = event(i) else { return };
                let entry = Entry {
                    id: id.clone(),
                    event,
                    state: *state,
                    attempts: attempts.clone(),
                    replay_of: replay_of.clone(),
                };
                let due = r.instant(*due_at);
                restore_push(&mut s, r, endpoint, entry, due);
            }
            Op::Replay {
                endpoint,
                of,
                id,
                due_at,
            } => {
                let Some(q) = s.endpoints.get_mut(&**endpoint) else {
                    return;
                };
                let Some(old) = q
                    .dead_log
                    .iter()
                    .chain(q.delivered_log.iter())
                    .find(|d| d.id == *of)
                else {
                    return;
                };
                let entry = Entry {
                    id: id.clone(),
                    event: old.event.clone(),
                    state: DeliveryState::Pending,
                    attempts: Vec::new(),
                    replay_of: Some(of.clone()),
                };
                q.disabled = false;
                let due = r.instant(*due_at);
                restore_push(&mut s, r, endpoint, entry, due);
            }
            Op::Head {
                endpoint,
                lane,
                id,
                attempts,
                due_at,
            } => {
                let Some(q) = s.endpoints.get_mut(&**endpoint) else {
                    return;
                };
                let Some(head) = q
                    .lanes
                    .get_mut(lane.as_str())
                    .and_then(|l| l.items.front_mut())
                else {
                    return;
                };
                if head.id != *id {
                    return;
                }
                head.attempts = attempts.clone();
                head.state = if attempts.is_empty() {
                    DeliveryState::Pending
                } else {
                    DeliveryState::Failed
                };
                r.due
                    .insert((endpoint.clone(), lane.as_str().into()), r.instant(*due_at));
            }
            Op::Finish {
                endpoint,
                lane,
                id,
                state,
                attempts,
            } => {
                let lane: Arc<str> = lane.as_str().into();
                let Some(q) = s.endpoints.get_mut(&**endpoint) else {
                    return;
                };
                let done = q.finish_head(&lane, id, |h| {
                    h.state = *state;
                    h.attempts = attempts.clone();
                });
                let Some(done) = done else { return };
                q.log(done);
                let more = q.lanes.contains_key(&lane);
                s.pending = s.pending.saturating_sub(1);
                if more {
                    r.due.insert((endpoint.clone(), lane), r.now);
                } else {
                    r.due.remove(&(endpoint.clone(), lane));
                }
            }
            Op::Logged {
                endpoint,
                id,
                event: i,
                state,
                attempts,
                replay_of,
            } => {
                let Some(event) = event(i) else { return };
                s.endpoint(endpoint).log(Entry {
                    id: id.clone(),
                    event,
                    state: *state,
                    attempts: attempts.clone(),
                    replay_of: replay_of.clone(),
                });
            }
            Op::Disabled { endpoint, disabled } => s.endpoint(endpoint).disabled = *disabled,
            Op::Delivered { endpoint, event_id } => s.mark_delivered(endpoint, event_id),
            _ => {}
        }
    }

    /// Every unfinished lane falls due: at its head's retry time, or now.
    pub(in crate::store::memory) fn finish_restore(&self, r: Restoring) {
        let mut s = self.state();
        let mut seq = s.seq;
        for (name, q) in s.endpoints.iter_mut() {
            for lane in q.lanes.keys() {
                let at = r
                    .due
                    .get(&(name.clone(), lane.clone()))
                    .copied()
                    .unwrap_or(r.now);
                seq += 1;
                q.due.push(lane.clone(), at, seq, r.now);
            }
        }
        s.seq = seq;
    }

    /// The whole queue as ops: unfinished deliveries lane by lane (a lane held under a lease
    /// is due now), the logs, disabled endpoints and the delivered keys.
    /// `at` runs under the lock first: the queue is read as of then.
    pub(in crate::store::memory) fn snapshot<R>(
        &self,
        out: &mut FrameBuilder,
        at: impl FnOnce() -> R,
    ) -> R {
        let s = self.state();
        let r = at();
        let (now, wall) = (Instant::now(), Utc::now());
        let wall_of = |at: Instant| {
            wall + chrono::Duration::from_std(at.saturating_duration_since(now))
                .unwrap_or(chrono::Duration::MAX)
        };
        for (endpoint, q) in &s.endpoints {
            if q.disabled {
                out.push(Op::Disabled {
                    endpoint: endpoint.clone(),
                    disabled: true,
                });
            }
            let due_at: FastMap<&Arc<str>, Instant> = q.due.iter(now).collect();
            for (lane, l) in &q.lanes {
                let due = due_at.get(lane).map_or(wall, |at| wall_of(*at));
                for entry in &l.items {
                    let event = out.event(&entry.event);
                    out.push(Op::Push {
                        endpoint: endpoint.clone(),
                        id: entry.id.clone(),
                        event,
                        state: entry.state,
                        attempts: entry.attempts.clone(),
                        replay_of: entry.replay_of.clone(),
                        due_at: due,
                    });
                }
            }
            for entry in q.dead_log.iter().chain(q.delivered_log.iter()) {
                let event = out.event(&entry.event);
                out.push(Op::Logged {
                    endpoint: endpoint.clone(),
                    id: entry.id.clone(),
                    event,
                    state: entry.state,
                    attempts: entry.attempts.clone(),
                    replay_of: entry.replay_of.clone(),
                });
            }
        }
        for (endpoint, event_id) in &s.delivered_order {
            out.push(Op::Delivered {
                endpoint: endpoint.clone(),
                event_id: event_id.clone(),
            });
        }
        r
    }
}

/// Puts `entry` at the tail of its lane unless the lane holds it already (a snapshot may hold
/// what the log after it repeats); an idle lane falls due at `due`.
fn restore_push(s: &mut State, r: &mut Restoring, endpoint: &Arc<str>, entry: Entry, due: Instant) {
    let lane: Arc<str> = entry.event.incident.id.as_str().into();
    let q = s.endpoint(endpoint);
    let items = &mut q.lanes.entry(lane.clone()).or_default().items;
    if items.iter().any(|e| e.id == entry.id) {
        return;
    }
    if items.is_empty() {
        r.due.insert((endpoint.clone(), lane), due);
    }
    items.push_back(entry);
    q.depth += 1;
    s.pending += 1;
}
