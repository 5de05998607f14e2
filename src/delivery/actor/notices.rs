//! Telling someone when deliveries die: a `delivery.dead` notice when a delivery runs out of
//! attempts, an `endpoint.disabled` notice when the endpoint is disabled (410 Gone, or
//! failing for `disable_after` without a success, [`FailingSince`]), each queued in the store
//! for every `on_dead:` endpoint (whose actors claim it at their next poll). A notice that
//! dies is not noticed in turn.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::DeliveryActor;
use crate::model::delivery::{DeadNotice, Settlement, Verdict};
use crate::model::{Event, EventType};
use crate::store::Claimed;

/// Where [`ExternalRefs`](crate::store::refs::ExternalRefs) keeps, per endpoint, when it
/// started failing without a success (RFC 3339; empty: it is not failing), so that a restart
/// or another instance goes on counting `disable_after` (in Redis with the redis store).
pub const FAILING_SINCE_REF: &str = "~failing_since";

/// Since when the endpoint has failed without a success (`disable_after`): counted from every
/// attempt of this instance, started from the store's time at start-up, written back when it
/// starts or ends.
#[derive(Debug)]
pub(super) struct FailingSince {
    since: Option<DateTime<Utc>>,
    /// The store may hold a start (not read yet, or read): a success clears it.
    stored: bool,
    /// The last verdict turned into a disable: the reason its notice gives.
    tripped: Option<Duration>,
}

impl Default for FailingSince {
    fn default() -> Self {
        FailingSince {
            since: None,
            stored: true,
            tripped: None,
        }
    }
}

/// What the store is to keep after a judgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Persist {
    Start(DateTime<Utc>),
    Clear,
}

impl FailingSince {
    /// The verdict of an attempt, seen through `disable_after`: a failure once the endpoint
    /// has failed that long without a success becomes [`Verdict::Gone`] (the endpoint is
    /// disabled as a 410 disables it). Also what to write to the store, if anything.
    pub(super) fn judge(
        &mut self,
        verdict: Verdict,
        attempted: bool,
        disable_after: Option<Duration>,
        now: DateTime<Utc>,
    ) -> (Verdict, Option<Persist>) {
        self.tripped = None;
        let Some(limit) = disable_after else {
            return (verdict, None);
        };
        match verdict {
            Verdict::Success | Verdict::Duplicate => (verdict, self.clear()),
            Verdict::Retry { .. } | Verdict::Fatal if attempted => {
                let Some(since) = self.since else {
                    self.since = Some(now);
                    self.stored = true;
                    return (verdict, Some(Persist::Start(now)));
                };
                if (now - since).to_std().unwrap_or_default() >= limit {
                    self.tripped = Some(limit);
                    (Verdict::Gone, self.clear())
                } else {
                    (verdict, None)
                }
            }
            other => (other, None),
        }
    }

    fn clear(&mut self) -> Option<Persist> {
        self.since = None;
        std::mem::replace(&mut self.stored, false).then_some(Persist::Clear)
    }

    /// What the store held at start-up: an earlier start wins over one this instance saw.
    pub(super) fn load(&mut self, stored: Option<&str>) {
        match stored.and_then(|s| DateTime::parse_from_rfc3339(s).ok()) {
            Some(t) => {
                let t = t.to_utc();
                self.since = Some(self.since.map_or(t, |s| s.min(t)));
                self.stored = true;
            }
            None => self.stored = self.since.is_some(),
        }
    }

    /// The `disable_after` that turned the last verdict into a disable, if it did.
    pub(super) fn tripped(&self) -> Option<Duration> {
        self.tripped
    }
}

/// Writes what `judge` said to the store (in the background; a failed write is logged and
/// only delays a disable).
pub(super) fn persist(act: &DeliveryActor, p: Persist) {
    let (refs, name) = (act.refs.clone(), act.spec.name.clone());
    let value = match p {
        Persist::Start(t) => t.to_rfc3339(),
        Persist::Clear => String::new(),
    };
    actix_rt::spawn(async move {
        if let Err(e) = refs.put(&name, FAILING_SINCE_REF, &value).await {
            tracing::warn!(endpoint = &*name, error = %e, "disable_after: the failing-since time could not be stored");
        }
    });
}

/// The endpoint was enabled again (a replay or recovery): the count starts over.
pub(super) fn reset_failing(act: &mut DeliveryActor) {
    if let Some(p) = act.failing.clear() {
        persist(act, p);
    }
}

/// At start-up, with `disable_after`: reads the stored failing-since time.
pub(super) fn load_failing(act: &mut DeliveryActor, ctx: &mut actix::Context<DeliveryActor>) {
    use actix::{ActorFutureExt, AsyncContext, WrapFuture};
    if act.spec.disable_after.is_none() {
        return;
    }
    let (refs, name) = (act.refs.clone(), act.spec.name.clone());
    ctx.spawn(
        async move { refs.get(&name, FAILING_SINCE_REF).await }
            .into_actor(act)
            .map(|res, act, _| match res {
                Ok(v) => act.failing.load(v.as_deref().filter(|v| !v.is_empty())),
                Err(e) => tracing::warn!(endpoint = &*act.spec.name, error = %e, "disable_after: the failing-since time could not be read"),
            }),
    );
}

/// `1d 2h`-style text of a duration, for reasons.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The notice of a delivery settled `settlement` (dead, or gone), if one is due: not for a
/// notice itself, and only when `on_dead:` names endpoints.
pub(super) fn notice_event(
    endpoint: &str,
    claimed: &Claimed,
    settlement: Settlement,
    tripped: Option<Duration>,
) -> Option<Event> {
    let dead = &claimed.event;
    if dead.kind.is_notice() {
        return None;
    }
    let (kind, reason) = match settlement {
        Settlement::Dead => (
            EventType::DeliveryDead,
            match claimed.attempts.last().and_then(|a| a.error.as_deref()) {
                Some(e) => format!("out of attempts (last: {e})"),
                None => "out of attempts".to_string(),
            },
        ),
        Settlement::Gone => (
            EventType::EndpointDisabled,
            match tripped {
                Some(d) => format!("failing for {} without a success (disable_after)", human(d)),
                None => "the endpoint answered 410 Gone".to_string(),
            },
        ),
        _ => return None,
    };
    Some(Event {
        id: Event::new_id(),
        kind,
        timestamp: Utc::now(),
        source: dead.source.clone(),
        incident: dead.incident.clone(),
        changes: None,
        group: None,
        notice: Some(Box::new(DeadNotice {
            endpoint: endpoint.to_string(),
            delivery_id: claimed.delivery_id.clone(),
            event_id: dead.id.clone(),
            event_type: dead.kind,
            attempts: claimed.attempts.clone(),
            reason,
        })),
    })
}

/// Queues the notice of `claimed` (settled `settlement`) for every `on_dead:` endpoint.
pub(super) fn notify(act: &DeliveryActor, claimed: &Claimed, settlement: Settlement) {
    if act.spec.on_dead.is_empty() {
        return;
    }
    let Some(event) = notice_event(&act.spec.name, claimed, settlement, act.failing.tripped())
    else {
        return;
    };
    let store = act.claims.store();
    let targets = act.spec.on_dead.clone();
    let from = act.spec.name.clone();
    let event = Arc::new(event);
    actix_rt::spawn(async move {
        match store.enqueue(event.clone(), &targets).await {
            Ok(_) => {
                tracing::info!(endpoint = &*from, to = ?targets, notice = %event.kind, "notice queued")
            }
            Err(e) => {
                tracing::error!(endpoint = &*from, to = ?targets, error = %e, notice = %event.kind, "notice could not be queued")
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_without_a_success_for_disable_after_disables() {
        let mut f = FailingSince::default();
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let limit = Some(Duration::from_secs(10));
        let retry = || Verdict::Retry { retry_after: None };
        // Nothing stored yet: the first failure stores its time.
        f.load(None);
        assert_eq!(
            f.judge(retry(), true, limit, at(0)),
            (retry(), Some(Persist::Start(at(0))))
        );
        assert_eq!(f.judge(retry(), true, limit, at(9)), (retry(), None));
        // A success starts the count over (and clears the store).
        assert_eq!(
            f.judge(Verdict::Success, true, limit, at(9)),
            (Verdict::Success, Some(Persist::Clear))
        );
        assert_eq!(
            f.judge(Verdict::Success, true, limit, at(9)).1,
            None,
            "cleared once"
        );
        assert_eq!(f.judge(retry(), true, limit, at(12)).0, retry());
        assert_eq!(
            f.judge(retry(), true, limit, at(22)),
            (Verdict::Gone, Some(Persist::Clear))
        );
        assert_eq!(f.tripped, limit);
        // A start stored by an earlier run (or another instance) counts from there.
        let mut g = FailingSince::default();
        g.load(Some(&at(-100).to_rfc3339()));
        assert_eq!(g.judge(retry(), true, limit, at(0)).0, Verdict::Gone);
        // Without disable_after nothing is ever disabled or stored.
        let mut h = FailingSince::default();
        assert_eq!(h.judge(retry(), true, None, at(0)), (retry(), None));
        assert_eq!(h.judge(retry(), true, None, at(999_999)), (retry(), None));
        assert_eq!(human(Duration::from_secs(5 * 86_400)), "5d");
    }

    #[test]
    fn notices_say_what_died_and_are_not_noticed_in_turn() {
        let event = crate::delivery::kinds::tests::event(EventType::Created);
        let mut claimed = Claimed {
            delivery_id: "dlv_1".into(),
            lane: "inc_1".into(),
            event: std::sync::Arc::new(event),
            attempts: Vec::new(),
            lease: String::new(),
            replay: false,
        };
        let n = notice_event("hook", &claimed, Settlement::Dead, None).unwrap();
        assert_eq!(n.kind, EventType::DeliveryDead);
        let notice = n.notice.as_ref().unwrap();
        assert_eq!(
            (notice.endpoint.as_str(), notice.event_id.as_str()),
            ("hook", "evt_1")
        );
        let g = notice_event(
            "hook",
            &claimed,
            Settlement::Gone,
            Some(Duration::from_secs(3600)),
        )
        .unwrap();
        assert_eq!(g.kind, EventType::EndpointDisabled);
        assert!(g.notice.unwrap().reason.contains("failing for 1h"));
        assert!(notice_event("hook", &claimed, Settlement::Delivered, None).is_none());
        claimed.event = std::sync::Arc::new(n);
        assert!(notice_event("ops", &claimed, Settlement::Dead, None).is_none());
    }
}
