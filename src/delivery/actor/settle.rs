//! Settling: a delivery actor's results going back into the store's queue. Each finished
//! attempt's result (with what follows it: delivered, a retry at a time, dead, released)
//! waits in [`Settles`] for the next `settle_many` call; one call is under way at a time and
//! carries every result that came in meanwhile (up to [`DEFAULT_SETTLE_BATCH`]). A failed
//! call is tried again; until its results are stored, a head claimed again takes its waiting
//! result instead of being sent a second time.

use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use super::claim::{self, DEFAULT_QUEUE_POLL_INTERVAL};
use super::held::{WaitingResult, WaitingResults};
use super::DeliveryActor;
use crate::model::delivery::Settlement;
use crate::store::Claimed;

/// How often storing an attempt's result is tried while the store is unreachable (half a
/// second apart: ten minutes). Until then the result waits in the actor, and a head claimed
/// again after its lease ran out takes that result instead of being sent again (only another
/// instance that claims it meanwhile sends it again); after that the result is dropped and
/// the delivery is attempted again.
pub const DEFAULT_SETTLE_ATTEMPTS: u32 = 1_200;

const SETTLE_RETRY_WAIT: Duration = Duration::from_millis(500);

/// Most finished deliveries stored by one `settle_many` call (one script run). Results that
/// come in while a call is under way wait for it and go together in the next call; beyond
/// this many they wait for the call after. Larger than what can be in flight, so storing
/// results never falls behind claiming.
pub const DEFAULT_SETTLE_BATCH: usize = 128;

/// Results on their way to the store.
#[derive(Default)]
pub(super) struct Settles {
    /// Results waiting for the next `settle_many` call, oldest first.
    pub(super) waiting: WaitingResults,
    /// A `settle_many` call is under way.
    settling: bool,
    /// The last `settle_many` call failed: the next one waits until then (a timer flushes).
    settle_not_before: Option<Instant>,
}

impl Settles {
    /// Results not yet written to the store (waiting, or being written).
    pub(super) fn unwritten(&self) -> usize {
        self.waiting.len() + usize::from(self.settling)
    }
}

/// After an attempt: store its result (`claimed` with every attempt so far) and what follows.
/// On a 410 every other head held here is stored dead too.
pub(super) fn settled(
    act: &mut DeliveryActor,
    claimed: Claimed,
    settlement: Settlement,
    ctx: &mut Context<DeliveryActor>,
) {
    if settlement == Settlement::Gone {
        let mut others = act.heads.disable();
        others.extend(act.claims.parked.take_all());
        for c in others {
            store_settlement(act, ctx, c, Settlement::Dead, 1);
        }
    }
    super::notices::notify(act, &claimed, settlement);
    store_settlement(act, ctx, claimed, settlement, 1);
}

/// Queues a claimed delivery's result for the store; it goes in the next `settle_many` call
/// (at once when none is under way).
pub(super) fn store_settlement(
    act: &mut DeliveryActor,
    ctx: &mut Context<DeliveryActor>,
    claimed: Claimed,
    settlement: Settlement,
    try_no: u32,
) {
    act.settles.waiting.push(WaitingResult {
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
    let d = &mut act.settles;
    if d.settling || d.waiting.is_empty() {
        return;
    }
    if d.settle_not_before.is_some_and(|t| Instant::now() < t) {
        return;
    }
    d.settling = true;
    let n = d.waiting.len().min(DEFAULT_SETTLE_BATCH);
    let (settles, tries): (Vec<(Claimed, Settlement)>, Vec<u32>) = d
        .waiting
        .take_oldest(n)
        .into_iter()
        .map(|t| ((t.claimed, t.settlement), t.try_no))
        .unzip();
    let store = act.claims.store();
    let endpoint = act.spec.name.clone();
    let fut = async move {
        let res = store.settle_many(&endpoint, &settles).await;
        (res, settles, tries)
    };
    ctx.spawn(fut.into_actor(act).map(move |(res, settles, tries), act, ctx| {
        {
            let d = &mut act.settles;
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
            act.claims.depth = Some(status.depth);
        }
        if let Some(next) = res.as_ref().ok().and_then(|s| s.next_claimable_in) {
            if !next.is_zero() {
                claim::arm_poll(act, ctx, next.min(DEFAULT_QUEUE_POLL_INTERVAL));
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
                let d = &mut act.settles;
                for mut t in again {
                    t.try_no += 1;
                    d.waiting.push(t);
                }
                d.settle_not_before = Some(Instant::now() + SETTLE_RETRY_WAIT);
                ctx.run_later(SETTLE_RETRY_WAIT, flush_settles);
            }
        }
        if claim_now {
            claim::claim(act, ctx);
        }
        flush_settles(act, ctx);
    }));
}
