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

/// How many batches of heads leased at record one endpoint's channel holds (one message per
/// record call, and an instance records one group at a time, so a few at most). A store
/// that finds it full leaves the heads to their leases running out (then any instance
/// claims them).
pub const DEFAULT_RECORD_LEASE_CHANNEL: usize = 64;

/// Where a durable queue hands an endpoint's dispatcher the new lanes it leased to this
/// instance while recording them (no `claim` call for them), and how many it may lease.
///
/// The dispatcher publishes its free room (heads it could start at once, plus free places
/// to park heads until a slot frees: see `durable::record_room`); a record call reserves from it
/// through its [`LeaseOffer`] and, once the call returned, hands over what it leased and
/// gives back the rest ([`LeaseOffer::finish`]). Reserved heads stay counted (`in_transit`) until the
/// dispatcher has taken them into its queue ([`arrived`](Self::arrived)), so room is never
/// handed out twice, by record calls or by the dispatcher's own claims.
pub struct RecordLeases {
    state: Mutex<LeaseRoom>,
    tx: tokio::sync::mpsc::Sender<Vec<Claimed>>,
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
}

impl RecordLeases {
    /// A sink with no room yet, and the receiving end for the dispatcher.
    pub fn new(lease: Duration) -> (Arc<RecordLeases>, tokio::sync::mpsc::Receiver<Vec<Claimed>>) {
        let (tx, rx) = tokio::sync::mpsc::channel(DEFAULT_RECORD_LEASE_CHANNEL);
        let sink = RecordLeases {
            state: Mutex::new(LeaseRoom {
                room: 0,
                in_transit: 0,
                lease,
                due: false,
            }),
            tx,
        };
        (Arc::new(sink), rx)
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
        if self.tx.is_closed() {
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
        if let Err(e) = self.tx.try_send(heads) {
            s.in_transit = s.in_transit.saturating_sub(n);
            tracing::warn!(heads = n, error = %e, "a dispatcher cannot take the lanes leased to it at record; they are claimed once their leases run out");
        }
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
