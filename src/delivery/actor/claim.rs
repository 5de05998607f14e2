//! Claiming: how a delivery actor takes its work from the store's queue
//! ([`DeliveryQueueStore`], the same contract for every store). Due lane heads come either
//! from a claim (under a lease, as many as the actor can start at once: its concurrency,
//! rate limit and circuit, plus up to [`DEFAULT_CLAIM_AHEAD`] parked for the next free
//! slots while nothing paces the endpoint) or, for new lanes, from the record call that wrote
//! them (leased at record, handed over through [`RecordLeases`] with no claim round trip).
//! Parked heads wait for a free slot at most [`DEFAULT_LEASED_MAX_WAIT`]. A held head goes into the actor's
//! `Heads` to be sent in its lane's turn; its result goes back through `settle`.
//! No work is held only here: a crash loses at most the leases, which run out and let any
//! instance (or the next start) take the lanes over. Heads pacing does not let start go back
//! to the store at once, so no head waits here while its lease runs out.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use super::held::ParkedHeads;
use super::notices;
use super::settle::store_settlement;
use super::{DeliveryActor, DeliveryView, EndpointDeliveries};
use crate::model::delivery::Settlement;
use crate::store::leases::{LeaseRooms, RecordLeases};
use crate::store::{Claim, Claimed, DeliveryQueueStore, StoredDeliveries};

/// Longest time between two claims of an endpoint's queue: how late this instance notices
/// work accepted by another instance (its own is claimed at once) or a retry falling due
/// (those arm an exact timer when known).
pub const DEFAULT_QUEUE_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A claimed lane stays leased for the endpoint's `timeout` plus this. A crashed instance's
/// lanes are taken over by another instance after at most that long.
pub const DEFAULT_LEASE_MARGIN: Duration = Duration::from_secs(5);

/// How many heads leased at record one endpoint may hold waiting for a free slot (beyond the
/// concurrency it can start at once), offered to record calls only while no rate limit or
/// open circuit holds work back. When full, new lanes go to the due set and are claimed as
/// slots free. Each waits at most [`DEFAULT_LEASED_MAX_WAIT`].
pub const DEFAULT_LEASED_BACKLOG: usize = 2048;

/// How many heads one claim may take beyond what can start at once, while no rate limit or
/// open circuit holds work back: they wait parked for a free slot (as heads leased at record
/// do, at most [`DEFAULT_LEASED_MAX_WAIT`], then handed back), so the next slots to free find
/// a head here instead of waiting for a claim's round trip. Never more parked than the actor
/// finished in the last [`DEFAULT_LEASED_MAX_WAIT`] ([`Finished`]): a slow endpoint does not
/// claim heads only to hand them back. Under load a claim from a busy store (Redis behind a
/// queue of record scripts) takes milliseconds; claiming only what could start at once gave
/// the redis store about 2,000 deliveries/s while it took 100-alert bodies in. Not sent
/// before they start, so they add nothing to what a crash sends twice. When full (this many
/// parked), a claim takes only what can start at once.
pub const DEFAULT_CLAIM_AHEAD: usize = 1024;

/// Longest a head leased at record waits here for a free slot; then it is handed back
/// (`Settlement::Release`: due again at once, for any instance), well before its lease (the
/// endpoint's timeout + [`DEFAULT_LEASE_MARGIN`]) could run out. Checked at every claim
/// (at least every [`DEFAULT_QUEUE_POLL_INTERVAL`]).
pub const DEFAULT_LEASED_MAX_WAIT: Duration = Duration::from_secs(1);

/// The actor's claims on the store's queue, and the heads leased at record it parks.
pub(super) struct Claims {
    store: Arc<dyn DeliveryQueueStore>,
    claiming: bool,
    claim_again: bool,
    /// The last claim failed (logged once, until a claim succeeds again).
    failing: bool,
    /// The endpoint's unfinished deliveries in the store, as of the last claim.
    pub(super) depth: Option<usize>,
    poll: Option<(Instant, SpawnHandle)>,
    /// Where record calls find this actor's room (None: nothing is leased at record).
    lease_rooms: Option<Arc<LeaseRooms>>,
    /// Where record calls hand the new lanes they lease to this instance (None: not
    /// registered; every head is claimed).
    record_leases: Option<Arc<RecordLeases>>,
    /// Heads the claim under way may bring (its limit): not offered to record calls.
    claim_limit: usize,
    /// Heads leased at record or claimed ahead, waiting for a free slot (not in the queue
    /// yet), oldest first, with when they came.
    pub(super) parked: ParkedHeads,
    /// Attempts finished lately: how many heads are worth claiming ahead.
    pub(super) finished: Finished,
}

/// Attempts finished per window of [`DEFAULT_LEASED_MAX_WAIT`] (the last whole window and the
/// one under way): how many heads this actor gets through in the time a parked head may wait.
#[derive(Debug, Default)]
pub(super) struct Finished {
    start: Option<Instant>,
    this: usize,
    last: usize,
}

impl Finished {
    pub(super) fn add(&mut self, n: usize, now: Instant) {
        self.roll(now);
        self.this += n;
    }

    /// The larger of the last whole window's count and the current one's.
    pub(super) fn per_window(&mut self, now: Instant) -> usize {
        self.roll(now);
        self.last.max(self.this)
    }

    fn roll(&mut self, now: Instant) {
        let window = DEFAULT_LEASED_MAX_WAIT;
        let Some(start) = self.start else {
            self.start = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= 2 * window {
            (self.last, self.this, self.start) = (0, 0, Some(now));
        } else if elapsed >= window {
            (self.last, self.this, self.start) = (self.this, 0, Some(start + window));
        }
    }
}

impl Claims {
    pub(super) fn new(
        store: Arc<dyn DeliveryQueueStore>,
        lease_rooms: Option<Arc<LeaseRooms>>,
    ) -> Claims {
        Claims {
            store,
            lease_rooms,
            claiming: false,
            claim_again: false,
            failing: false,
            depth: None,
            poll: None,
            record_leases: None,
            claim_limit: 0,
            parked: ParkedHeads::default(),
            finished: Finished::default(),
        }
    }

    /// Whether the store keeps its queue across a restart.
    pub(super) fn is_durable(&self) -> bool {
        self.store.is_durable()
    }

    pub(super) fn store(&self) -> Arc<dyn DeliveryQueueStore> {
        self.store.clone()
    }

    /// How many claimed deliveries the store lets one endpoint have out at once.
    pub(super) fn concurrency(&self) -> usize {
        self.store.concurrency()
    }
}

/// Heads the store leased to this instance as it recorded them (see [`RecordLeases`]).
pub(super) struct LeasedAtRecord(pub(super) Vec<Claimed>);

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
        last_ping: act.last_ping.clone(),
        deliveries,
    }
}

/// How many lane heads may be claimed now: no more than can start at once, so that nothing
/// claimed waits in this instance for a token or a closed circuit while its lease runs out
/// (another instance would then claim it and send it a second time). Held-back work stays in
/// the store. Also returns when to look again if pacing allows nothing now.
fn claim_room(act: &mut DeliveryActor) -> (usize, Option<Duration>) {
    let now = Instant::now();
    let pending = act.heads.len();
    // Taken from the store and not started yet.
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
    let d = &mut act.claims;
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
    if act.claims.record_leases.is_none() {
        return;
    }
    let room = record_room(act);
    if let Some(sink) = act.claims.record_leases.as_ref() {
        sink.set_room(room);
    }
}

/// How many new lanes record calls may lease to this actor now: what it can start at once
/// plus free places among the parked heads (only while nothing paces the endpoint), less the
/// limit of a claim under way.
fn record_room(act: &mut DeliveryActor) -> usize {
    if act.heads.is_disabled() {
        return 0;
    }
    let start = claim_room(act).0;
    let paced = is_paced(act);
    let d = &act.claims;
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
    if act.claims.parked.is_empty() || act.heads.is_disabled() {
        return;
    }
    let room = claim_room(act).0;
    for _ in 0..room {
        let d = &mut act.claims;
        let Some(c) = d.parked.pop_oldest() else {
            break;
        };
        hold(act, c);
    }
}

/// Holds a head this instance has the lease of, to be sent in its lane's turn, until its
/// result is stored. A head of a lane held already (an earlier head whose lease ran out and
/// that another instance finished meanwhile) is left to its lease, then claimed again.
fn hold(act: &mut DeliveryActor, c: Claimed) {
    if let Err(c) = act.heads.hold(c) {
        tracing::debug!(endpoint = &*act.spec.name, delivery_id = %c.delivery_id, "lane held already; the head waits for its lease");
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
        let d = &mut act.claims;
        let stale = d.parked.oldest().is_some_and(|at| {
            paced || now.saturating_duration_since(at) >= DEFAULT_LEASED_MAX_WAIT
        });
        if !stale {
            return;
        }
        let Some(c) = d.parked.pop_oldest() else {
            return;
        };
        tracing::debug!(endpoint = &*act.spec.name, delivery_id = %c.delivery_id, "parked (leased at record or claimed ahead) but no slot came free in time; lease given up");
        store_settlement(act, ctx, c, Settlement::Release, 1);
    }
}

/// The endpoint's spec changed: heads leased at record from now on get its lease.
pub(super) fn spec_changed(act: &mut DeliveryActor) {
    let lease = act.spec.timeout + DEFAULT_LEASE_MARGIN;
    if let Some(sink) = act.claims.record_leases.as_ref() {
        sink.set_lease(lease);
    }
}

/// Whether a `ClaimDue` (new work recorded by this instance) needs a claim: with leasing at
/// record, only when a record call put a new lane in the due set (no room for it here).
pub(super) fn claim_due_needed(act: &DeliveryActor) -> bool {
    act.claims
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
        if act.heads.is_disabled() {
            dead_while_disabled(act, ctx, c);
            continue;
        }
        if let Err(c) = park(act, now, c) {
            // This instance still holds an earlier head of the lane (its lease ran out and
            // another instance finished it meanwhile): one head per lane here, so this one
            // waits for its lease to run out and is claimed then.
            tracing::debug!(endpoint = &*act.spec.name, delivery_id = %c.delivery_id, "lane held already; the head leased at record waits for its lease");
        }
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
    if let Some(sink) = act.claims.record_leases.as_ref() {
        sink.arrived(n, room);
    }
}

/// Claims as many due lane heads as there is room for (see [`claim_room`]); one claim at a
/// time.
pub(super) fn claim(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>) {
    if act.draining && act.claims.is_durable() {
        return;
    }
    release_stale_parked(act, ctx);
    if !act.claims.parked.is_empty() {
        // Parked heads take the free slots first (the pump moves them into the queue).
        act.pump(ctx);
    }
    let paced = is_paced(act);
    let (room, wake) = claim_room(act);
    let d = &mut act.claims;
    if d.claiming {
        d.claim_again = true;
        return;
    }
    // Parked heads go first; room reserved by record calls under way that the parked heads'
    // free places do not cover is not claimed again.
    let start = if d.parked.is_empty() {
        let in_transit = d.record_leases.as_ref().map_or(0, |s| s.in_transit());
        room.saturating_sub(in_transit.saturating_sub(DEFAULT_LEASED_BACKLOG))
    } else {
        0
    };
    // And as many again as may wait parked for the next free slots (see DEFAULT_CLAIM_AHEAD).
    let ahead = if paced {
        0
    } else {
        let worth = d.finished.per_window(Instant::now());
        DEFAULT_CLAIM_AHEAD
            .min(worth)
            .saturating_sub(d.parked.len())
    };
    let room = start + ahead;
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
                if std::mem::take(&mut act.claims.failing) {
                    tracing::info!(endpoint = &*act.spec.name, "claiming deliveries again");
                }
                let next = claim.next_due_in;
                act.store_pending(claim.pending);
                {
let d = &mut act.claims;
                    d.depth = Some(claim.depth);
                }
                act.counters.duplicate.inc_by(claim.duplicates as u64);
                act.counters.claimed.inc_by(claim.deliveries.len() as u64);
                take(act, claim, ctx);
                next
            }
            Err(e) => {
                if !std::mem::replace(&mut act.claims.failing, true) {
                    tracing::warn!(endpoint = &*act.spec.name, error = %e, "cannot claim deliveries; trying again every poll");
                }
                None
            }
        };
       let d = &mut act.claims;
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

/// Claims at once when the store holds more of this endpoint's work than this actor does
/// (due lanes may wait there): slots freed by finished attempts are filled without waiting
/// for their results to be stored first (that settle call claims again too, for the next
/// heads of the lanes it moves on). One claim is under way at a time.
pub(super) fn claim_if_waiting(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>) {
    let held = act.heads.len() + act.claims.parked.len();
    if act.depth() > held {
        claim(act, ctx);
    }
}

/// Reads the endpoint's count of unfinished deliveries (a claim of nothing).
pub(super) fn refresh_depth(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>) {
    let store = act.claims.store.clone();
    let endpoint = act.spec.name.clone();
    let lease = act.spec.timeout + DEFAULT_LEASE_MARGIN;
    let fut = async move { store.claim(&endpoint, 0, lease).await };
    ctx.spawn(fut.into_actor(act).map(|res, act, _| {
        if let Ok(claim) = res {
            act.claims.depth = Some(claim.depth);
            act.store_pending(claim.pending);
        }
    }));
}

/// Puts claimed heads into the actor's queue (or settles them dead on a disabled endpoint).
fn take(act: &mut DeliveryActor, claim: Claim, ctx: &mut Context<DeliveryActor>) {
    let now = Instant::now();
    if !claim.disabled && act.heads.is_disabled() {
        // A replay re-enabled the endpoint (on this instance or another one).
        act.heads.enable();
        notices::reset_failing(act);
    }
    for c in claim.deliveries {
        if claim.disabled || act.heads.is_disabled() {
            dead_while_disabled(act, ctx, c);
            continue;
        }
        // Our own lease ran out and we got the lane again while still holding its head:
        // keep the one copy, under the new lease.
        let Err(c) = act.heads.renew(c) else {
            continue;
        };
        // Likewise for a head leased at record and still parked.
        let Err(c) = act.claims.parked.replace(c) else {
            continue;
        };
        // And for a head whose result waits to be stored: it takes that result.
        let Some(c) = act.settles.waiting.adopt(c) else {
            continue;
        };
        // Parked in claim order: as many as can start go into the queue at once (below),
        // the rest wait for a free slot (claimed ahead).
        if let Err(c) = park(act, now, c) {
            hold(act, c);
        }
    }
    unpark(act);
}

/// Parks a head (leased at record or claimed) until a slot is free; hands it back when this
/// instance holds a head of its lane already (queued or parked).
fn park(act: &mut DeliveryActor, now: Instant, c: Claimed) -> Result<(), Claimed> {
    if act.heads.holds(&c.lane) || act.claims.parked.holds_lane(&c.lane) {
        return Err(c);
    }
    act.claims.parked.push(now, c);
    Ok(())
}

/// Hands back claimed heads the pump did not start (the circuit opened or tokens were spent
/// while the claim was under way): they go back to the store at once instead of waiting here
/// while their leases run out.
fn release_held(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>) {
    for claimed in act.heads.release_waiting() {
        tracing::debug!(endpoint = &*act.spec.name, delivery_id = %claimed.delivery_id, "held back by pacing; lease given up");
        store_settlement(act, ctx, claimed, Settlement::Release, 1);
    }
}

pub(super) fn arm_poll(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>, wait: Duration) {
    let d = &mut act.claims;
    let at = Instant::now() + wait;
    if let Some((armed_at, handle)) = d.poll {
        if armed_at <= at {
            return;
        }
        ctx.cancel_future(handle);
    }
    let handle = ctx.run_later(wait, |act, ctx| {
        {
            let d = &mut act.claims;
            d.poll = None;
        }
        claim(act, ctx);
    });
    d.poll = Some((at, handle));
}

/// A head of an endpoint disabled by a 410 Gone: it is not sent; it is stored dead.
fn dead_while_disabled(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>, c: Claimed) {
    act.counters.dead.inc();
    tracing::warn!(endpoint = &*act.spec.name, event_id = %c.event.id, "endpoint disabled (410 Gone): event marked dead");
    store_settlement(act, ctx, c, Settlement::Dead, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_counts_the_last_window_and_forgets_an_idle_one() {
        let t0 = Instant::now();
        let w = DEFAULT_LEASED_MAX_WAIT;
        let mut f = Finished::default();
        assert_eq!(
            f.per_window(t0),
            0,
            "nothing finished yet: nothing claimed ahead"
        );
        f.add(300, t0);
        f.add(200, t0 + w / 2);
        assert_eq!(f.per_window(t0 + w / 2), 500);
        // The next window: the last one's count stands until this one passes it.
        f.add(100, t0 + w + w / 4);
        assert_eq!(f.per_window(t0 + w + w / 4), 500);
        f.add(600, t0 + w + w / 2);
        assert_eq!(f.per_window(t0 + w + w / 2), 700);
        // A window with nothing finished, then another: a slow endpoint claims nothing ahead.
        assert_eq!(
            f.per_window(t0 + 2 * w + w / 2),
            700,
            "the last whole window"
        );
        assert_eq!(f.per_window(t0 + 5 * w), 0, "idle for two windows");
    }
}
