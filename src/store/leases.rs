//! Leasing new lanes at record: a durable queue's record call may lease the heads of the new
//! lanes it writes to this instance's dispatchers (no claim round trip for them). Each
//! dispatcher publishes its room in a [`RecordLeases`]; [`LeaseRooms`] holds them by endpoint;
//! the caller of a record call gives it a [`LeaseOffer`], which reserves room as the call
//! decides, and after the call (whatever it returned) hands the leased heads over and gives
//! the rest back with [`LeaseOffer::finish`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::Claimed;

/// Where a durable queue hands an endpoint's dispatcher the new lanes it leased to this
/// instance while recording them (no `claim` call for them), and how many it may lease.
///
/// The dispatcher publishes its free room (heads it could start at once, plus free places
/// to park heads until a slot frees: see `delivery::actor::claim::record_room`); a record call reserves from it
/// through its [`LeaseOffer`] and, once the call returned, hands over what it leased and
/// gives back the rest ([`LeaseOffer::finish`]). Reserved heads stay counted (`in_transit`) until the
/// dispatcher has taken them into its queue ([`arrived`](Self::arrived)), so room is never
/// handed out twice, by record calls or by the dispatcher's own claims.
///
/// Handed-over heads wait in an inbox until the dispatcher takes them all at once
/// ([`LeasedHeads`]); the inbox needs no bound of its own: it never holds more than the room
/// the dispatcher published (reservations are counted until [`arrived`](Self::arrived)).
pub struct RecordLeases {
    state: Mutex<LeaseRoom>,
    /// Wakes the dispatcher (capacity 1: one pending wake covers every head handed over
    /// before the dispatcher looks). Closed once the dispatcher is gone.
    wake: tokio::sync::mpsc::Sender<()>,
}

struct LeaseRoom {
    /// Free room as the dispatcher last published it (not counting `in_transit`).
    room: usize,
    /// Reserved by a record call, or handed over and not taken by the dispatcher yet.
    in_transit: usize,
    /// How long a head leased at record stays leased (the endpoint's timeout + margin).
    lease: Duration,
    /// A record call put a new lane of this endpoint in the due set: claim it.
    due: bool,
    /// Heads handed over and not taken by the dispatcher yet, in the order handed over.
    inbox: Vec<Claimed>,
}

/// The dispatcher's end of a [`RecordLeases`]: every head handed over since it last looked,
/// in one batch.
pub struct LeasedHeads {
    sink: Arc<RecordLeases>,
    wake: tokio::sync::mpsc::Receiver<()>,
}

impl LeasedHeads {
    /// Waits until heads were handed over and takes them all (None: the sink is gone).
    pub async fn recv(&mut self) -> Option<Vec<Claimed>> {
        loop {
            self.wake.recv().await?;
            let heads = std::mem::take(&mut self.sink.state().inbox);
            if !heads.is_empty() {
                return Some(heads);
            }
        }
    }

    /// The heads handed over since the last look, without waiting (None: none).
    pub fn try_recv(&mut self) -> Option<Vec<Claimed>> {
        while self.wake.try_recv().is_ok() {}
        let heads = std::mem::take(&mut self.sink.state().inbox);
        (!heads.is_empty()).then_some(heads)
    }
}

impl RecordLeases {
    /// A sink with no room yet, and the receiving end for the dispatcher.
    pub fn new(lease: Duration) -> (Arc<RecordLeases>, LeasedHeads) {
        let (wake, rx) = tokio::sync::mpsc::channel(1);
        let sink = Arc::new(RecordLeases {
            state: Mutex::new(LeaseRoom {
                room: 0,
                in_transit: 0,
                lease,
                due: false,
                inbox: Vec::new(),
            }),
            wake,
        });
        let heads = LeasedHeads {
            sink: sink.clone(),
            wake: rx,
        };
        (sink, heads)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LeaseRoom> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The dispatcher's free room now (heads held locally are already counted in it).
    pub fn set_room(&self, room: usize) {
        self.state().room = room;
    }

    /// The lease of heads leased at record from now on (config reload).
    pub fn set_lease(&self, lease: Duration) {
        self.state().lease = lease;
    }

    /// Heads reserved or on their way: the dispatcher's own claims leave room for them.
    pub fn in_transit(&self) -> usize {
        self.state().in_transit
    }

    /// The dispatcher took `n` handed-over heads into its queue; `room` is its free room
    /// with them counted (one step, so they are never counted twice or not at all).
    pub fn arrived(&self, n: usize, room: usize) {
        let mut s = self.state();
        s.in_transit = s.in_transit.saturating_sub(n);
        s.room = room;
    }

    /// Whether a record call put a new lane in the due set since the last look (cleared).
    pub fn take_due(&self) -> bool {
        std::mem::take(&mut self.state().due)
    }

    /// Reserves up to `want` heads (none once the dispatcher is gone), with their lease.
    pub fn reserve(&self, want: usize) -> (usize, Duration) {
        if self.wake.is_closed() {
            return (0, Duration::ZERO);
        }
        let mut s = self.state();
        let k = want.min(s.room.saturating_sub(s.in_transit));
        s.in_transit += k;
        (k, s.lease)
    }

    /// Ends a reservation of `reserved` heads: hands `heads` (leased to this instance) to the
    /// dispatcher, gives back the rest, and notes whether lanes went to the due set. A head
    /// that cannot be handed over (the dispatcher is gone) stays leased until its lease runs
    /// out, then any instance claims it.
    pub fn deliver(&self, reserved: usize, heads: Vec<Claimed>, due: bool) {
        let n = heads.len();
        let mut s = self.state();
        s.in_transit = s.in_transit.saturating_sub(reserved.saturating_sub(n));
        s.due |= due;
        if n == 0 {
            return;
        }
        if self.wake.is_closed() {
            s.in_transit = s.in_transit.saturating_sub(n);
            tracing::warn!(heads = n, "the dispatcher is gone: the lanes leased to it at record are claimed once their leases run out");
            return;
        }
        s.inbox.extend(heads);
        drop(s);
        // Full: a wake is pending already, and the dispatcher takes the whole inbox then.
        let _ = self.wake.try_send(());
    }
}

/// Every dispatcher's [`RecordLeases`] in this process, by endpoint.
#[derive(Default)]
pub struct LeaseRooms {
    sinks: RwLock<HashMap<String, Arc<RecordLeases>>>,
}

impl LeaseRooms {
    /// The dispatcher of `endpoint` takes heads leased at record through `sink` (a new
    /// dispatcher of the endpoint replaces the previous one's).
    pub fn register(&self, endpoint: &str, sink: Arc<RecordLeases>) {
        self.sinks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(endpoint.to_string(), sink);
    }

    /// An offer for one record call.
    pub fn offer(self: &Arc<Self>) -> LeaseOffer {
        LeaseOffer {
            rooms: Some(self.clone()),
            reserved: Vec::new(),
            done: false,
        }
    }
}

/// The room one record call may lease new lanes into: reserved per endpoint when the call
/// has decided its deliveries ([`reserve`](Self::reserve)), settled by the caller once the
/// call returned ([`finish`](Self::finish)).
pub struct LeaseOffer {
    rooms: Option<Arc<LeaseRooms>>,
    /// (endpoint, its dispatcher, heads reserved, their lease).
    reserved: Vec<(Arc<str>, Arc<RecordLeases>, usize, Duration)>,
    /// Reserved already: a record call that decides again (a conflict) keeps its room.
    done: bool,
}

impl LeaseOffer {
    /// No room anywhere: nothing is leased at record.
    pub fn none() -> LeaseOffer {
        LeaseOffer {
            rooms: None,
            reserved: Vec::new(),
            done: false,
        }
    }

    /// Reserves room for up to `want` new lanes per endpoint (once per offer; later calls
    /// change nothing).
    pub fn reserve(&mut self, want: &[(Arc<str>, usize)]) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let Some(rooms) = &self.rooms else {
            return;
        };
        let sinks = rooms.sinks.read().unwrap_or_else(|e| e.into_inner());
        for (endpoint, n) in want {
            let Some(sink) = sinks.get(&**endpoint) else {
                continue;
            };
            let (k, lease) = sink.reserve(*n);
            self.reserved
                .push((endpoint.clone(), sink.clone(), k, lease));
        }
    }

    /// The room reserved: (endpoint, heads, their lease), for endpoints with room.
    pub fn reserved(&self) -> impl Iterator<Item = (&str, usize, Duration)> {
        self.reserved
            .iter()
            .filter(|r| r.2 > 0)
            .map(|(e, _, k, lease)| (&**e, *k, *lease))
    }

    /// Ends the offer after its record call: hands `leased` (endpoint, head) to their
    /// dispatchers, gives back the room not used, and notes the endpoints in `due` (a new lane
    /// went to the due set: a claim is needed). After a failed call: `finish(vec![], &[])`.
    pub fn finish(self, leased: Vec<(Arc<str>, Claimed)>, due: &[Arc<str>]) {
        let mut leased = leased;
        for (endpoint, sink, k, _) in self.reserved {
            let (mine, rest): (Vec<_>, Vec<_>) =
                leased.into_iter().partition(|(e, _)| *e == endpoint);
            leased = rest;
            let mine = mine.into_iter().map(|(_, c)| c).collect();
            sink.deliver(k, mine, due.contains(&endpoint));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{test_event, EventType};

    fn head(n: usize) -> Claimed {
        Claimed {
            delivery_id: format!("dlv_{n}"),
            lane: format!("inc_{n}").into(),
            event: Arc::new(test_event(&format!("inc_{n}"), EventType::Created)),
            attempts: Vec::new(),
            lease: String::new(),
            replay: false,
        }
    }

    /// Regression: heads were handed over in a channel of 64 messages, one per record call;
    /// under a single-alert load more record calls than that ran while the dispatcher was
    /// busy, and their heads were left to their leases running out (15 s late).
    #[actix_rt::test]
    async fn every_head_handed_over_arrives_however_many_record_calls_ran_meanwhile() {
        let (sink, mut rx) = RecordLeases::new(Duration::from_secs(15));
        sink.set_room(1000);
        for n in 0..500 {
            let (k, _) = sink.reserve(1);
            assert_eq!(k, 1);
            sink.deliver(k, vec![head(n)], false);
        }
        let heads = rx.recv().await.expect("the heads");
        let ids: Vec<_> = heads.iter().map(|c| c.delivery_id.clone()).collect();
        let want: Vec<_> = (0..500).map(|n| format!("dlv_{n}")).collect();
        assert_eq!(
            ids, want,
            "all of them, in the order handed over, in one batch"
        );
        assert_eq!(
            sink.in_transit(),
            500,
            "counted until the dispatcher took them"
        );
        sink.arrived(500, 500);
        assert_eq!(sink.in_transit(), 0);
        assert!(rx.try_recv().is_none(), "nothing left over");
    }

    #[test]
    fn nothing_is_reserved_once_the_dispatcher_is_gone() {
        let (sink, rx) = RecordLeases::new(Duration::from_secs(15));
        sink.set_room(10);
        drop(rx);
        assert_eq!(sink.reserve(5).0, 0);
    }
}
