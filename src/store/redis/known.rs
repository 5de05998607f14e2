//! The incidents this process last recorded, with their versions: the first guess of a batch
//! in `record` (no read round trip), checked by `record.lua` like a read. A wrong guess (another
//! instance changed the incident, or it expired, or it was forgotten here) costs a conflict,
//! whose answer carries the incident as it is, and a second script run; never a wrong write.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::model::{Event, Incident};

/// How many incidents one process remembers between batches. When full, the one learned
/// first is forgotten: its next alert's batch is guessed "no such incident", which costs a
/// conflict and a second script run when it does exist.
pub const DEFAULT_KNOWN_INCIDENTS: usize = 4096;

/// An incident as a batch decided it or a conflict returned it, shared without a copy.
#[derive(Clone)]
pub(super) enum Known {
    /// Read back from Redis, or decided without an event.
    Incident(Arc<Incident>),
    /// The incident inside the event that decided it.
    InEvent(Arc<Event>),
}

impl Known {
    pub(super) fn get(&self) -> &Incident {
        match self {
            Known::Incident(i) => i,
            Known::InEvent(e) => &e.incident,
        }
    }
}

/// Incident key -> (version, incident), bounded by `cap`, oldest first out.
pub(super) struct KnownIncidents {
    map: HashMap<String, (u64, Known)>,
    order: VecDeque<String>,
    cap: usize,
}

impl KnownIncidents {
    pub(super) fn new(cap: usize) -> KnownIncidents {
        KnownIncidents {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// The version and incident last learned for `key`; (0, None), "no such incident", when
    /// none was.
    pub(super) fn guess(&self, key: &str) -> (u64, Option<Known>) {
        match self.map.get(key) {
            Some((v, k)) => (*v, Some(k.clone())),
            None => (0, None),
        }
    }

    /// `key` is at `version` with `incident` (None: there is no such incident, which is the
    /// guess anyway, so it is forgotten).
    pub(super) fn learn(&mut self, key: String, version: u64, incident: Option<Known>) {
        let Some(incident) = incident else {
            self.map.remove(&key);
            return;
        };
        if let Some(slot) = self.map.get_mut(&key) {
            *slot = (version, incident);
            return;
        }
        self.order.push_back(key.clone());
        self.map.insert(key, (version, incident));
        // The order may still name keys forgotten since; skip those.
        while self.map.len() > self.cap {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        if self.order.len() > 2 * self.cap.max(1) {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertStatus, Severity};
    use chrono::Utc;

    fn incident(key: &str) -> Known {
        let alert = crate::model::Alert::for_tests(key, AlertStatus::Firing, Severity::Critical);
        let t = crate::model::transition::apply(None, &alert, Utc::now());
        Known::Incident(Arc::new(t.next.expect("a firing alert opens an incident")))
    }

    #[test]
    fn an_unknown_key_is_guessed_absent_and_a_learned_one_as_learned() {
        let mut known = KnownIncidents::new(4);
        assert!(matches!(known.guess("a"), (0, None)));
        known.learn("a".into(), 3, Some(incident("a")));
        let (v, inc) = known.guess("a");
        assert_eq!(v, 3);
        assert_eq!(inc.map(|i| i.get().dedup_key.clone()).as_deref(), Some("a"));
        known.learn("a".into(), 4, None);
        assert!(matches!(known.guess("a"), (0, None)));
    }

    #[test]
    fn it_forgets_the_oldest_past_its_bound_and_its_order_stays_bounded() {
        let mut known = KnownIncidents::new(3);
        for k in ["a", "b", "c", "d"] {
            known.learn(k.into(), 1, Some(incident(k)));
        }
        assert_eq!(known.len(), 3);
        assert!(matches!(known.guess("a"), (0, None)));
        assert_eq!(known.guess("d").0, 1);
        // Learning again updates in place; forgetting and relearning keeps the order bounded.
        for round in 0..100 {
            known.learn("b".into(), round, Some(incident("b")));
            known.learn("x".into(), 1, None);
            known.learn(format!("k{round}"), 1, Some(incident("k")));
            known.learn(format!("k{round}"), 2, None);
        }
        assert!(known.len() <= 3);
        assert!(known.order.len() <= 6);
    }
}
