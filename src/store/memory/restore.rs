//! The incidents' side of `memory::changes` (the queue's is `queue::restore`): applying
//! logged frames again at start-up, and the whole store as frames (a snapshot).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::changes::{Frame, Op};
use super::queue::{FrameBuilder, Restoring};
use super::{IncidentKey, MemoryStore, Stored};
use crate::model::{Incident, IncidentStatus, SourceRef};
use crate::store::StoreError;

/// A memory store being filled from logged frames; [`Restore::finish`] makes it ready.
pub struct Restore {
    store: MemoryStore,
    queue: Restoring,
}

impl Restore {
    /// Starts filling `store` (a new one, with its change log).
    pub fn new(store: MemoryStore) -> Restore {
        Restore {
            store,
            queue: Restoring::default(),
        }
    }

    /// Applies one frame's ops in order (ops for other parts than incidents and the queue are
    /// the caller's).
    pub fn apply(&mut self, frame: &Frame) -> Result<(), StoreError> {
        for op in &frame.ops {
            match op {
                Op::IncidentOfEvent { event, at } => {
                    let Some(event) = frame.events.get(*event as usize) else {
                        return Err(StoreError::Rejected(
                            "a logged incident names an event its frame does not hold".into(),
                        ));
                    };
                    self.store
                        .restore_incident(&event.incident, event.source.clone(), *at)?;
                }
                Op::Incident {
                    incident,
                    source,
                    at,
                } => self.store.restore_incident(incident, source.clone(), *at)?,
                Op::Stored {
                    source,
                    dedup_key,
                    encoded,
                    id,
                    status,
                    started_at,
                    at,
                } => {
                    let stored = Stored {
                        encoded: encoded.clone().into_boxed_slice(),
                        source: source.clone(),
                        id: *id,
                        status: *status,
                        started_at: *started_at,
                    };
                    let key = (source.name.clone(), dedup_key.as_str().into());
                    self.store.restore_stored(key, stored, *at);
                }
                _ => self.store.queue.apply(&mut self.queue, &frame.events, op),
            }
        }
        Ok(())
    }

    /// The store, every lane due at its head's retry time (or now).
    pub fn finish(self) -> MemoryStore {
        self.store.queue.finish_restore(self.queue);
        self.store
    }
}

impl MemoryStore {
    fn restore_incident(
        &self,
        incident: &Incident,
        source: SourceRef,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let key: IncidentKey = (source.name.clone(), incident.dedup_key.as_str().into());
        let stored = Stored::new(incident, source)?;
        self.restore_stored(key, stored, at);
        Ok(())
    }

    /// Keeps `stored` as the incident of `key` (the same as it may be already), counting it
    /// open or resolved at `at`.
    fn restore_stored(&self, key: IncidentKey, stored: Stored, at: DateTime<Utc>) {
        let mut state = self.incidents();
        let is_open = stored.status.is_open();
        let id = stored.id;
        if !is_open {
            state.resolved.push_back((at, key.clone(), id));
        }
        let before = state.put(key, stored);
        let was_open = before.is_some_and(|s| s.status.is_open());
        match (was_open, is_open) {
            (false, true) => state.open += 1,
            (true, false) => state.open -= 1,
            _ => {}
        }
    }

    /// The whole store as frames: the queue, then every incident as kept (not decoded).
    ///
    /// `at` runs under the queue's lock before anything is read (the file store starts a new
    /// journal there): the queue is as of that moment, and the incidents are read under the
    /// same lock. A record call's incidents are changed before its deliveries are queued (and
    /// logged), so the incidents may hold changes the new journal repeats: applying an incident
    /// again is harmless; queue ops are never repeated.
    pub fn snapshot<R>(&self, at: impl FnOnce() -> R) -> (R, Vec<Frame>) {
        let mut queue = FrameBuilder::default();
        let mut out = FrameBuilder::default();
        // Incidents are read under the queue's lock too, so the snapshot is one moment's.
        let r = self.queue.snapshot(&mut queue, || {
            let r = at();
            self.snapshot_incidents(&mut out);
            r
        });
        let mut frames = out.finish();
        frames.extend(queue.finish());
        (r, frames)
    }

    fn snapshot_incidents(&self, out: &mut FrameBuilder) {
        {
            let state = self.incidents();
            let now = Utc::now();
            let resolved_at: HashMap<u128, DateTime<Utc>> = state
                .resolved
                .iter()
                .map(|(at, _, id)| (*id, *at))
                .collect();
            for ((_, dedup_key), s) in state.by_key.iter() {
                let at = match s.status {
                    IncidentStatus::Resolved => resolved_at.get(&s.id).copied().unwrap_or(now),
                    _ => now,
                };
                out.push(Op::Stored {
                    source: s.source.clone(),
                    dedup_key: dedup_key.to_string(),
                    encoded: s.encoded.to_vec(),
                    id: s.id,
                    status: s.status,
                    started_at: s.started_at,
                    at,
                });
            }
        }
    }
}
