//! Telling someone when deliveries die: a `delivery.dead` notice when a delivery runs out of
//! attempts, an `endpoint.disabled` notice when the endpoint is disabled (410 Gone, or
//! failing for `disable_after` without a success, [`FailingSince`]), each queued in the store
//! for every `on_dead:` endpoint (whose actors claim it at their next poll). A notice that
//! dies is not noticed in turn.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::DeliveryActor;
use crate::model::delivery::{DeadNotice, Settlement, Verdict};
use crate::model::{Event, EventType};
use crate::store::Claimed;

/// How long an endpoint has failed without a success (`disable_after`), counted from this
/// instance's attempts.
#[derive(Debug, Default)]
pub(super) struct FailingSince {
    since: Option<Instant>,
    /// The last verdict turned into a disable: the reason its notice gives.
    tripped: Option<Duration>,
}

impl FailingSince {
    /// The verdict of an attempt, seen through `disable_after`: a failure once the endpoint
    /// has failed that long without a success becomes [`Verdict::Gone`] (the endpoint is
    /// disabled as a 410 disables it).
    pub(super) fn judge(
        &mut self,
        verdict: Verdict,
        attempted: bool,
        disable_after: Option<Duration>,
        now: Instant,
    ) -> Verdict {
        self.tripped = None;
        match verdict {
            Verdict::Success | Verdict::Duplicate => {
                self.since = None;
                verdict
            }
            Verdict::Retry { .. } | Verdict::Fatal if attempted => {
                let since = *self.since.get_or_insert(now);
                match disable_after {
                    Some(limit) if now.saturating_duration_since(since) >= limit => {
                        self.tripped = Some(limit);
                        self.since = None;
                        Verdict::Gone
                    }
                    _ => verdict,
                }
            }
            other => other,
        }
    }

    /// The `disable_after` that turned the last verdict into a disable, if it did.
    pub(super) fn tripped(&self) -> Option<Duration> {
        self.tripped
    }

    /// The endpoint was enabled again (a replay or recovery): the count starts over.
    pub(super) fn reset(&mut self) {
        self.since = None;
    }
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
        let t0 = Instant::now();
        let limit = Some(Duration::from_secs(10));
        let retry = || Verdict::Retry { retry_after: None };
        assert_eq!(f.judge(retry(), true, limit, t0), retry());
        assert_eq!(
            f.judge(retry(), true, limit, t0 + Duration::from_secs(9)),
            retry()
        );
        // A success starts the count over.
        assert_eq!(
            f.judge(Verdict::Success, true, limit, t0 + Duration::from_secs(9)),
            Verdict::Success
        );
        assert_eq!(
            f.judge(retry(), true, limit, t0 + Duration::from_secs(12)),
            retry()
        );
        assert_eq!(
            f.judge(retry(), true, limit, t0 + Duration::from_secs(22)),
            Verdict::Gone
        );
        assert_eq!(f.tripped, limit);
        // Without disable_after nothing is ever disabled; unattempted verdicts do not count.
        let mut g = FailingSince::default();
        assert_eq!(g.judge(retry(), true, None, t0), retry());
        assert_eq!(
            g.judge(retry(), true, None, t0 + Duration::from_secs(999_999)),
            retry()
        );
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
