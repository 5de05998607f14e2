//! The durable side of a delivery actor, used with the redis store: instead of receiving its
//! work in `Enqueue` messages, the actor claims due lane heads from the shared
//! [`DeliveryQueueStore`] (under a lease), runs them through its own `DeliveryQueue` like any
//! delivery, and settles the results back into the store (in batches: one `settle_many` call
//! carries what finished while the previous call was under way), which schedules retries and
//! moves the lane on. No work is held only in memory: a crash loses at most the leases (and
//! the results not stored yet: those deliveries are sent again), which run out and let any
//! instance take the lanes over. (`Enqueue` still works beside it, from memory
//! only: for events that are not in the store, such as an endpoint test.) It claims only what
//! its rate limit and circuit let it start at once, so no claimed head waits here past its
//! lease; the admin delivery log and replays go to the store too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use super::held::{ParkedHeads, WaitingResult, WaitingResults};
use super::{DeliveryActor, DeliveryView, EndpointDeliveries};
use crate::model::delivery::{Attempt, Settlement};
use crate::store::leases::{LeaseRooms, RecordLeases};
use crate::store::{Claim, Claimed, DeliveryQueueStore, StoredDeliveries};

/// Longest time between two claims of an endpoint's queue: how late this instance notices
/// work accepted by another instance (its own is claimed at once) or a retry falling due
/// (those arm an exact timer when known).
pub const DEFAULT_QUEUE_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A claimed lane stays leased for the endpoint's `timeout` plus this. A crashed instance's
/// lanes are taken over by another instance after at most that long.
pub const DEFAULT_LEASE_MARGIN: Duration = Duration::from_secs(5);

/// How often storing an attempt's result is tried while Redis is unreachable (half a second
/// apart: ten minutes). Until then the result waits in the actor, and a head claimed again
/// after its lease ran out takes that result instead of being sent again (only another
/// instance that claims it meanwhile sends it again); after that the result is dropped and
/// the delivery is attempted again.
pub const DEFAULT_SETTLE_ATTEMPTS: u32 = 1_200;

const SETTLE_RETRY_WAIT: Duration = Duration::from_millis(500);

/// How many heads leased at record one endpoint may hold waiting for a free slot (beyond the
/// `DEFAULT_DURABLE_CONCURRENCY` it can start at once), offered to record calls only while no
/// rate limit or open circuit holds work back. When full, new lanes go to the due set and are
/// claimed as slots free. Each waits at most [`DEFAULT_LEASED_MAX_WAIT`].
pub const DEFAULT_LEASED_BACKLOG: usize = 2048;

/// Longest a head leased at record waits here for a free slot; then it is handed back
/// (`Settlement::Release`: due again at once, for any instance), well before its lease (the
/// endpoint's timeout + [`DEFAULT_LEASE_MARGIN`]) could run out. Checked at every claim
/// (at least every [`DEFAULT_QUEUE_POLL_INTERVAL`]).
pub const DEFAULT_LEASED_MAX_WAIT: Duration = Duration::from_secs(1);

/// Most finished deliveries stored by one `settle_many` call (one script run). Results that
/// come in while a call is under way wait for it and go together in the next call; beyond
/// this many they wait for the call after. Larger than what can be in flight, so storing
/// results never falls behind claiming.
pub const DEFAULT_SETTLE_BATCH: usize = 128;

/// The actor's durable state: the store and the lanes it holds leases on.
pub(super) struct Durable {
    store: Arc<dyn DeliveryQueueStore>,
    /// Claimed lane heads by lane (incident id), until settled.
    claimed: HashMap<Arc<str>, Claimed, foldhash::fast::RandomState>,
    claiming: bool,
    claim_again: bool,
    /// The last claim failed (logged once, until a claim succeeds again).
    failing: bool,
    /// The endpoint's unfinished deliveries in the store, as of the last claim.
    pub(super) depth: Option<usize>,
    poll: Option<(Instant, SpawnHandle)>,
    /// Results waiting for the next `settle_many` call, oldest first.
    to_settle: WaitingResults,
    /// A `settle_many` call is under way.
    settling: bool,
    /// The last `settle_many` call failed: the next one waits until then (a timer flushes).
    settle_not_before: Option<Instant>,
    /// Where record calls find this actor's room (None: nothing is leased at record).
    lease_rooms: Option<Arc<LeaseRooms>>,
    /// Where record calls hand the new lanes they lease to this instance (None: not
    /// registered; every head is claimed).
    record_leases: Option<Arc<RecordLeases>>,
    /// Heads the claim under way may bring (its limit): not offered to record calls.
    claim_limit: usize,
    /// Heads leased at record waiting for a free slot (not in the queue yet), oldest first,
    /// with when they came.
    parked: ParkedHeads,
}

impl Durable {
    /// Results not yet written to the store (waiting, or being written), and heads leased to
    /// this process (claimed, in flight or not, and parked).
    pub(super) fn unsettled(&self) -> (usize, usize) {
        let writing = self.to_settle.len() + usize::from(self.settling);
        (writing, self.claimed.len() + self.parked.len())
    }

    /// Whether the store keeps its queue across a restart.
    pub(super) fn is_durable(&self) -> bool {
        self.store.is_durable()
    }
}

/// Heads the store leased to this instance as it recorded them (see [`RecordLeases`]).
pub(super) struct LeasedAtRecord(pub(super) Vec<Claimed>);

impl Durable {
    pub(super) fn new(
        store: Arc<dyn DeliveryQueueStore>,
        lease_rooms: Option<Arc<LeaseRooms>>,
    ) -> Durable {
        Durable {
            store,
            lease_rooms,
            claimed: HashMap::default(),
            claiming: false,
            claim_again: false,
            failing: false,
            depth: None,
            poll: None,
            to_settle: WaitingResults::default(),
            settle_not_before: None,
            settling: false,
            record_leases: None,
            claim_limit: 0,
            parked: ParkedHeads::default(),
        }
    }

    pub(super) fn store(&self) -> Arc<dyn DeliveryQueueStore> {
        self.store.clone()
    }

    /// How many claimed deliveries the store lets one endpoint have out at once.
    pub(super) fn concurrency(&self) -> usize {
        self.store.concurrency()
    }
}

/// The admin delivery log: the store's deliveries.
pub(super) fn view(act: &DeliveryActor, stored: StoredDeliveries) -> EndpointDeliveries {
    let endpoint = &*act.spec.name;
    let deliveries: Vec<DeliveryView> = stored
        .deliveries
        .into_iter()
        .map(|d| DeliveryView {
            endpoint: endpoint.to_string(),
            event_id: d.event.id,
            event_type: d.event.kind.as_str(),
            event_at: d.event.timestamp,
            incident_id: d.event.incident.id,
            state: d.state,
            replay_of: d.replay_of,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            id: d.id,
        })
        .collect();
    EndpointDeliveries {
        endpoint: endpoint.to_string(),
        circuit: act.breaker.state(),
        disabled: stored.disabled,
        deliveries,
    }
}

/// How many lane heads may be claimed now: no more than can start at once, so that nothing
/// claimed waits in this instance for a token or a closed circuit while its lease runs out
/// (another instance would then claim it and send it a second time). Held-back work stays in
/// the store. Also returns when to look again if pacing allows nothing now.
fn claim_room(act: &mut DeliveryActor) -> (usize, Option<Duration>) {
    let now = Instant::now();
    let pending = act.queue.pending();
    // Taken from the store (or enqueued from memory) and not started yet.
    let held = pending.saturating_sub(act.in_flight);
    let mut pace = act.breaker.allowance(now);
    let mut wake = act
        .breaker
        .reopens_at()
        .map(|at| at.saturating_duration_since(now));
    if let Some(l) = &mut act.limiter {
        let tokens = l.available(now);
        if tokens == 0 {
            let next = l.next_token_at(now).saturating_duration_since(now);
            wake = Some(wake.map_or(next, |w| w.min(next)));
        }
        pace = pace.min(tokens);
    }
    let room = act
        .concurrency()
        .saturating_sub(pending)
        .min(pace.saturating_sub(held));
    (room, wake)
}

/// Offers the store to lease new lanes to this actor as it records them (at start): their
/// heads come in as [`LeasedAtRecord`] instead of by a claim.
pub(super) fn start_record_leases(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>) {
    let lease = act.spec.timeout + DEFAULT_LEASE_MARGIN;
    let d = &mut act.durable;
    let Some(rooms) = &d.lease_rooms else {
        return;
    };
    let (sink, rx) = RecordLeases::new(lease);
    rooms.register(&act.spec.name, sink.clone());
    d.record_leases = Some(sink);
    ctx.add_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|heads| (LeasedAtRecord(heads), rx))
    }));
    publish_room(act);
}

/// Tells the store how many new lanes it may lease to this actor at record now: the claim
/// room, less what a claim under way may bring.
pub(super) fn publish_room(act: &mut DeliveryActor) {
    if act.durable.record_leases.is_none() {
        return;
    }
    let room = record_room(act);
    if let Some(sink) = act.durable.record_leases.as_ref() {
        sink.set_room(room);
    }
}

/// How many new lanes record calls may lease to this actor now: what it can start at once
/// plus free places among the parked heads (only while nothing paces the endpoint), less the
/// limit of a claim under way.
fn record_room(act: &mut DeliveryActor) -> usize {
    if act.queue.is_disabled() {
        return 0;
    }
    let start = claim_room(act).0;
    let paced = is_paced(act);
    let d = &act.durable;
    let park = if paced {
        0
    } else {
        DEFAULT_LEASED_BACKLOG.saturating_sub(d.parked.len())
    };
    (start + park).saturating_sub(d.claim_limit)
}

/// Moves parked heads into the queue, as many as can start at once (called before each
/// pump, so a freed slot takes a parked head first).
pub(super) fn unpark(act: &mut DeliveryActor) {
    if act.durable.parked.is_empty() || act.queue.is_disabled() {
        return;
    }
    let room = claim_room(act).0;
    let now = Instant::now();
    for _ in 0..room {
        let d = &mut act.durable;
        let Some(c) = d.parked.pop_oldest() else {
            break;
        };
        hold(act, c, now);
    }
}

/// Puts a head this instance holds the lease of into the queue, to be sent in its lane's
/// turn, and keeps it until it is settled.
fn hold(act: &mut DeliveryActor, c: Claimed, now: Instant) {
    let lane: Arc<str> = c.lane.as_str().into();
    let event = Arc::clone(&c.event);
    if act
        .queue
        .push_resumed(c.delivery_id.clone(), event, c.attempts.clone(), now)
    {
        act.durable.claimed.insert(lane, c);
    }
}

/// Whether a rate limit or an open circuit holds this endpoint's work back.
fn is_paced(act: &DeliveryActor) -> bool {
    act.limiter.is_some() || act.breaker.state() != super::CircuitState::Closed
}

/// Hands back parked heads that waited [`DEFAULT_LEASED_MAX_WAIT`] (due again at once), so
/// none waits here while its lease runs out; all of them while pacing holds work back.
fn release_stale_parked(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>) {
    let paced = is_paced(act);
    let now = Instant::now();
    loop {
        let d = &mut act.durable;
        let stale = d.parked.oldest().is_some_and(|at| {
            paced || now.saturating_duration_since(at) >= DEFAULT_LEASED_MAX_WAIT
        });
        if !stale {
            return;
        }
        let Some(c) = d.parked.pop_oldest() else {
            return;
        };
        tracing::debug!(endpoint = &*act.spec.name, delivery_id = %c.delivery_id, "leased at record but no slot came free in time; lease given up");
        store_settlement(act, ctx, c, Settlement::Release, 1);
    }
}

/// The endpoint's spec changed: heads leased at record from now on get its lease.
pub(super) fn spec_changed(act: &mut DeliveryActor) {
    let lease = act.spec.timeout + DEFAULT_LEASE_MARGIN;
    if let Some(sink) = act.durable.record_leases.as_ref() {
        sink.set_lease(lease);
    }
}

/// Whether a `ClaimDue` (new work recorded by this instance) needs a claim: with leasing at
/// record, only when a record call put a new lane in the due set (no room for it here).
pub(super) fn claim_due_needed(act: &DeliveryActor) -> bool {
    act.durable
        .record_leases
        .as_ref()
        .is_none_or(|sink| sink.take_due())
}

/// Takes heads leased at record into the queue as claimed heads (the store reserved room
/// for them from [`publish_room`]'s figure). From here they are sent, settled, released and
/// re-claimed exactly as claimed heads.
pub(super) fn take_leased(
    act: &mut DeliveryActor,
    heads: Vec<Claimed>,
    ctx: &mut Context<DeliveryActor>,
) {
    let n = heads.len();
    act.counters.leased_at_record.inc_by(n as u64);
    let now = Instant::now();
    for c in heads {
        if act.queue.is_disabled() {
            dead_while_disabled(act, ctx, c);
            continue;
        }
        let d = &mut act.durable;
        let lane: Arc<str> = c.lane.as_str().into();
        if d.claimed.contains_key(&lane) || d.parked.holds_lane(&c.lane) {
            // This instance still holds an earlier head of the lane (its lease ran out and
            // another instance finished it meanwhile): one head per lane here, so this one
            // waits for its lease to run out and is claimed then.
            tracing::debug!(endpoint = &*act.spec.name, delivery_id = %c.delivery_id, "lane held already; the head leased at record waits for its lease");
            continue;
        }
        d.parked.push(now, c);
    }
    // As many as can start now go into the queue (the pump does it first), the rest wait
    // parked for a free slot (at most DEFAULT_LEASED_MAX_WAIT).
    act.pump(ctx);
    // What pacing does not let start now goes back to the store at once (no head waits here
    // while its lease runs out).
    release_held(act, ctx);
    release_stale_parked(act, ctx);
    act.update_depth();
    let room = record_room(act);
    if let Some(sink) = act.durable.record_leases.as_ref() {
        sink.arrived(n, room);
    }
}

/// Claims as many due lane heads as there is room for (see [`claim_room`]); one claim at a
/// time.
pub(super) fn claim(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>) {
    if act.draining && act.durable.is_durable() {
        return;
    }
    release_stale_parked(act, ctx);
    if !act.durable.parked.is_empty() {
        // Parked heads take the free slots first (the pump moves them into the queue).
        act.pump(ctx);
    }
    let (room, wake) = claim_room(act);
    let d = &mut act.durable;
    if d.claiming {
        d.claim_again = true;
        return;
    }
    // Parked heads go first; room reserved by record calls under way that the parked heads'
    // free places do not cover is not claimed again.
    let room = if d.parked.is_empty() {
        let in_transit = d.record_leases.as_ref().map_or(0, |s| s.in_transit());
        room.saturating_sub(in_transit.saturating_sub(DEFAULT_LEASED_BACKLOG))
    } else {
        0
    };
    if room == 0 {
        // Every slot is busy (the next settle claims again), or the rate limit or the
        // circuit holds work back: look again when they allow it (at the latest at the poll).
        let wait = wake.map_or(DEFAULT_QUEUE_POLL_INTERVAL, |w| {
            w.clamp(Duration::from_millis(1), DEFAULT_QUEUE_POLL_INTERVAL)
        });
        arm_poll(act, ctx, wait);
        return;
    }
    d.claiming = true;
    d.claim_again = false;
    d.claim_limit = room;
    let store = d.store.clone();
    let endpoint = act.spec.name.clone();
    let lease = act.spec.timeout + DEFAULT_LEASE_MARGIN;
    let fut = async move { store.claim(&endpoint, room, lease).await };
    ctx.spawn(fut.into_actor(act).map(|res, act, ctx| {
        let next = match res {
            Ok(claim) => {
                if std::mem::take(&mut act.durable.failing) {
                    tracing::info!(endpoint = &*act.spec.name, "claiming deliveries again");
                }
                let next = claim.next_due_in;
                act.store_pending(claim.pending);
                {
 let d = &mut act.durable;
                    d.depth = Some(claim.depth);
                }
                act.counters.duplicate.inc_by(claim.duplicates as u64);
                act.counters.claimed.inc_by(claim.deliveries.len() as u64);
                take(act, claim, ctx);
                next
            }
            Err(e) => {
                if !std::mem::replace(&mut act.durable.failing, true) {
                    tracing::warn!(endpoint = &*act.spec.name, error = %e, "cannot claim deliveries; trying again every poll");
                }
                None
            }
        };
        let d = &mut act.durable;
        d.claiming = false;
        d.claim_limit = 0;
        let again = d.claim_again;
        let wait = next.map_or(DEFAULT_QUEUE_POLL_INTERVAL, |n| {
            n.min(DEFAULT_QUEUE_POLL_INTERVAL)
        });
        arm_poll(act, ctx, wait);
        act.update_depth();
        act.pump(ctx);
        release_held(act, ctx);
        if again {
            claim(act, ctx);
        }
    }));
}

/// Reads the endpoint's count of unfinished deliveries (a claim of nothing).
pub(super) fn refresh_depth(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>) {
    let store = act.durable.store.clone();
    let endpoint = act.spec.name.clone();
    let lease = act.spec.timeout + DEFAULT_LEASE_MARGIN;
    let fut = async move { store.claim(&endpoint, 0, lease).await };
    ctx.spawn(fut.into_actor(act).map(|res, act, _| {
        if let Ok(claim) = res {
            act.durable.depth = Some(claim.depth);
            act.store_pending(claim.pending);
        }
    }));
}

/// Puts claimed heads into the actor's queue (or settles them dead on a disabled endpoint).
fn take(act: &mut DeliveryActor, claim: Claim, ctx: &mut Context<DeliveryActor>) {
    let now = Instant::now();
    if !claim.disabled && act.queue.is_disabled() {
        // A replay re-enabled the endpoint (on this instance or another one).
        act.queue.enable();
    }
    for c in claim.deliveries {
        let lane: Arc<str> = c.lane.as_str().into();
        if claim.disabled || act.queue.is_disabled() {
            dead_while_disabled(act, ctx, c);
            continue;
        }
        let d = &mut act.durable;
        if let Some(held) = d.claimed.get_mut(&lane) {
            // Our own lease ran out and we got the lane again while still holding its head:
            // keep the one copy, under the new lease.
            *held = c;
            continue;
        }
        // Likewise for a head leased at record and still parked.
        let c = match d.parked.replace(c) {
            Ok(()) => continue,
            Err(c) => c,
        };
        let Some(c) = d.to_settle.adopt(c) else {
            continue;
        };
        hold(act, c, now);
    }
}

/// Hands back claimed heads the pump did not start (the circuit opened or tokens were spent
/// while the claim was under way): they go back to the store at once instead of waiting here
/// while their leases run out.
fn release_held(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>) {
    let d = &mut act.durable;
    let queue = &act.queue;
    let held: Vec<Arc<str>> = d
        .claimed
        .keys()
        .filter(|lane| !queue.is_busy(lane))
        .cloned()
        .collect();
    for lane in held {
        let Some(claimed) = act.durable.claimed.remove(&lane) else {
            continue;
        };
        act.queue.release(&lane);
        tracing::debug!(endpoint = &*act.spec.name, delivery_id = %claimed.delivery_id, "held back by pacing; lease given up");
        store_settlement(act, ctx, claimed, Settlement::Release, 1);
    }
}

fn arm_poll(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>, wait: Duration) {
    let d = &mut act.durable;
    let at = Instant::now() + wait;
    if let Some((armed_at, handle)) = d.poll {
        if armed_at <= at {
            return;
        }
        ctx.cancel_future(handle);
    }
    let handle = ctx.run_later(wait, |act, ctx| {
        {
            let d = &mut act.durable;
            d.poll = None;
        }
        claim(act, ctx);
    });
    d.poll = Some((at, handle));
}

/// After the actor's queue settled an attempt: store the result and what follows.
pub(super) fn settled(
    act: &mut DeliveryActor,
    lane: &Arc<str>,
    event_id: &str,
    attempt: Option<Attempt>,
    settlement: Settlement,
    ctx: &mut Context<DeliveryActor>,
) {
    let d = &mut act.durable;
    if d.claimed.get(lane).is_none_or(|c| c.event.id != event_id) {
        // A delivery enqueued from memory that shares the lane: nothing durable to settle.
        return;
    }
    let Some(mut claimed) = d.claimed.remove(lane) else {
        return;
    };
    claimed.attempts.extend(attempt);
    match settlement {
        Settlement::Retry(_) => {
            // The store keeps the retry's time; the lane leaves this instance until then.
            act.queue.release(lane);
        }
        Settlement::Gone => {
            // The queue dropped every other lane it held: settle them dead too.
            let mut others: Vec<Claimed> = d.claimed.drain().map(|(_, c)| c).collect();
            others.extend(d.parked.take_all());
            for c in others {
                store_settlement(act, ctx, c, Settlement::Dead, 1);
            }
        }
        Settlement::Delivered | Settlement::Dead | Settlement::Release => {}
    }
    store_settlement(act, ctx, claimed, settlement, 1);
}

/// A head of an endpoint disabled by a 410 Gone: it is not sent; it is stored dead.
fn dead_while_disabled(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>, c: Claimed) {
    act.counters.dead.inc();
    tracing::warn!(endpoint = &*act.spec.name, event_id = %c.event.id, "endpoint disabled (410 Gone): event marked dead");
    store_settlement(act, ctx, c, Settlement::Dead, 1);
}

/// Queues a claimed delivery's result for the store; it goes in the next `settle_many` call
/// (at once when none is under way).
fn store_settlement(
    act: &mut DeliveryActor,
    ctx: &mut Context<DeliveryActor>,
    claimed: Claimed,
    settlement: Settlement,
    try_no: u32,
) {
    let d = &mut act.durable;
    d.to_settle.push(WaitingResult {
        claimed,
        settlement,
        try_no,
    });
    flush_settles(act, ctx);
}

/// Stores up to [`DEFAULT_SETTLE_BATCH`] waiting results in one call, unless one is under
/// way (its completion sends what gathered meanwhile). A failed call is tried again for each
/// of its results, up to [`DEFAULT_SETTLE_ATTEMPTS`] times; then their leases run out.
fn flush_settles(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>) {
    let d = &mut act.durable;
    if d.settling || d.to_settle.is_empty() {
        return;
    }
    if d.settle_not_before.is_some_and(|t| Instant::now() < t) {
        return;
    }
    d.settling = true;
    let n = d.to_settle.len().min(DEFAULT_SETTLE_BATCH);
    let (settles, tries): (Vec<(Claimed, Settlement)>, Vec<u32>) = d
        .to_settle
        .take_oldest(n)
        .into_iter()
        .map(|t| ((t.claimed, t.settlement), t.try_no))
        .unzip();
    let store = d.store.clone();
    let endpoint = act.spec.name.clone();
    let fut = async move {
        let res = store.settle_many(&endpoint, &settles).await;
        (res, settles, tries)
    };
    ctx.spawn(fut.into_actor(act).map(move |(res, settles, tries), act, ctx| {
        {
 let d = &mut act.durable;
            d.settling = false;
            if res.is_ok() {
                d.settle_not_before = None;
            }
        }
        // Claim again only when the store has a lane to hand out now (a next head, a release,
        // a lease run out, work this instance had no room for); new work recorded here is
        // claimed by the router's `ClaimDue`, and retries at their due time (the poll).
        let claim_now = res
            .as_ref()
            .map_or(true, |s| s.next_claimable_in == Some(Duration::ZERO));
        if let Ok(status) = &res {
            act.store_pending(status.pending);
            act.durable.depth = Some(status.depth);
        }
        if let Some(next) = res.as_ref().ok().and_then(|s| s.next_claimable_in) {
            if !next.is_zero() {
                arm_poll(act, ctx, next.min(DEFAULT_QUEUE_POLL_INTERVAL));
            }
        }
        if let Err(e) = res {
            let (again, given_up): (Vec<WaitingResult>, Vec<WaitingResult>) = settles
                .into_iter()
                .zip(tries)
                .map(|((claimed, settlement), try_no)| WaitingResult {
                    claimed,
                    settlement,
                    try_no,
                })
                .partition(|t| t.try_no < DEFAULT_SETTLE_ATTEMPTS);
            for t in &given_up {
                tracing::error!(endpoint = &*act.spec.name, delivery_id = %t.claimed.delivery_id, error = %e, "cannot store the delivery's result; its lease will run out and it will be attempted again");
            }
            if !again.is_empty() {
                tracing::warn!(endpoint = &*act.spec.name, deliveries = again.len(), error = %e, "cannot store the deliveries' results yet; trying again");
                // Back in the waiting list at once, so a head claimed again meanwhile takes
                // its result instead of being sent again (`WaitingResults::adopt`).
                let d = &mut act.durable;
                for mut t in again {
                    t.try_no += 1;
                    d.to_settle.push(t);
                }
                d.settle_not_before = Some(Instant::now() + SETTLE_RETRY_WAIT);
                ctx.run_later(SETTLE_RETRY_WAIT, flush_settles);
            }
        }
        if claim_now {
            claim(act, ctx);
        }
        flush_settles(act, ctx);
    }));
}
