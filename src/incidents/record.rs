//! Recording one group of requests: one store call for all of them (their alerts routed
//! once by the current table, the new lanes leased to this instance's delivery actors), the
//! results cut back per request, auto-resolve timers armed and grouped incidents joined to
//! their groups. A group the store rejects is recorded request by request, so only the
//! request that carried the bad input is refused; a request too large for one call is
//! recorded in calls of [`DEFAULT_RECORD_GROUP_ALERTS`] alerts.

use std::sync::Arc;

use chrono::Utc;

use super::actor::{GroupResult, RecordError, Routed, DEFAULT_RECORD_GROUP_ALERTS};
use super::expiry::Expiry;
use crate::grouping::Grouper;
use crate::holding::{hold_key, HeldRouting, Holding};
use crate::metrics::{EventLabels, Metrics, OutcomeLabels};
use crate::model::{Alert, AlertStatus, Event};
use crate::router::actor::SharedRoutes;
use crate::store::leases::{LeaseOffer, LeaseRooms};
use crate::store::{IncidentStore, Recorded, Recording, Routing, StoreError};

/// What a record call needs besides the alerts.
pub(super) struct Recorder {
    pub(super) store: Arc<dyn IncidentStore>,
    pub(super) routes: Arc<SharedRoutes>,
    /// The delivery actors' room for lanes leased at record (None: none is leased).
    pub(super) leases: Option<Arc<LeaseRooms>>,
    pub(super) metrics: Arc<Metrics>,
    /// Groups of grouped routes (None: no grouping).
    pub(super) grouper: Option<Arc<Grouper>>,
    /// Arms auto-resolve timers after a record (None: off).
    pub(super) expiry: Option<Expiry>,
    /// Silences, inhibitions and time intervals: events they hold are recorded, not
    /// delivered (None: nothing is held).
    pub(super) holding: Option<Arc<Holding>>,
}

/// Records a group of requests (`sizes`: each request's number of alerts, in order) in one
/// store call. When the store rejects the group's input ([`StoreError::Rejected`]: one
/// request's body it cannot keep), each request is recorded on its own, one after the
/// other, so only the request that carried it is refused and no request suffers for
/// another's body. When the store is unavailable, every request gets that error.
pub(super) async fn record_requests(
    recorder: Arc<Recorder>,
    alerts: Vec<Alert>,
    sizes: Vec<usize>,
) -> GroupResult {
    if sizes.len() == 1 && alerts.len() > DEFAULT_RECORD_GROUP_ALERTS {
        return record_in_calls(&recorder, &alerts, DEFAULT_RECORD_GROUP_ALERTS).await;
    }
    match record(&recorder, &alerts).await {
        Ok((recorded, events, pending)) => (
            split(recorded, &sizes).into_iter().map(Ok).collect(),
            events,
            pending,
        ),
        Err(e @ StoreError::Rejected(_)) if sizes.len() > 1 => {
            tracing::warn!(requests = sizes.len(), error = %e, "a group was rejected by the store; recording its requests one by one");
            let mut answers = Vec::with_capacity(sizes.len());
            let mut events = Vec::new();
            let mut pending = None;
            let mut rest = alerts.as_slice();
            for n in sizes {
                let (part, after) = rest.split_at(n.min(rest.len()));
                rest = after;
                match record(&recorder, part).await {
                    Ok((recorded, part_events, part_pending)) => {
                        events.extend(part_events);
                        pending = part_pending.or(pending);
                        answers.push(Ok(recorded));
                    }
                    Err(e) => answers.push(Err(e.into())),
                }
            }
            (answers, events, pending)
        }
        Err(e) => {
            if let StoreError::Unavailable(_) = &e {
                tracing::warn!(requests = sizes.len(), error = %e, "recording failed");
            }
            (
                sizes.iter().map(|_| Err(e.clone().into())).collect(),
                Vec::new(),
                None,
            )
        }
    }
}

/// Records one request's alerts in store calls of at most `per_call` alerts, one after the
/// other (so no call blocks the store for long, nor runs past its timeout). Stops at the
/// first call that fails: what the earlier calls recorded stays recorded and its events are
/// routed (see [`RecordError::Partial`]).
async fn record_in_calls(recorder: &Recorder, alerts: &[Alert], per_call: usize) -> GroupResult {
    let mut recorded = Vec::with_capacity(alerts.len());
    let mut events = Vec::new();
    let mut pending = None;
    for chunk in alerts.chunks(per_call.max(1)) {
        match record(recorder, chunk).await {
            Ok((r, e, p)) => {
                recorded.extend(r);
                events.extend(e);
                pending = p.or(pending);
            }
            Err(cause) => {
                tracing::warn!(recorded = recorded.len(), total = alerts.len(), error = %cause, "a large request was recorded in part");
                let answer = if recorded.is_empty() {
                    RecordError::Store(cause)
                } else {
                    RecordError::Partial {
                        recorded: recorded.len(),
                        total: alerts.len(),
                        cause,
                    }
                };
                return (vec![Err(answer)], events, pending);
            }
        }
    }
    (vec![Ok(recorded)], events, pending)
}

/// Cuts a group's results back into one part per request.
pub(super) fn split<T>(mut all: Vec<T>, sizes: &[usize]) -> Vec<Vec<T>> {
    let mut parts = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let rest = all.split_off(n.min(all.len()));
        parts.push(std::mem::replace(&mut all, rest));
    }
    parts
}

/// Records one group in the store, routing its events with the current table and handing
/// the lanes it leased to their delivery actors; returns what each alert did, the events with
/// their endpoints, and the store's count of unfinished deliveries when it keeps one.
async fn record(
    recorder: &Recorder,
    alerts: &[Alert],
) -> Result<(Vec<Recorded>, Vec<Routed>, Option<usize>), StoreError> {
    let Recorder {
        store,
        routes,
        leases,
        metrics,
        grouper,
        expiry,
        holding,
    } = recorder;
    let table = routes.current();
    let now = Utc::now();
    // What may hold this batch's events: the silences, inhibitions and intervals in force,
    // and which of its resolving incidents are held already (their resolve may be held too).
    let view = match holding.as_ref().filter(|h| h.may_hold(&table)) {
        Some(h) => {
            let resolving = alerts
                .iter()
                .filter(|a| a.status == AlertStatus::Resolved)
                .map(|a| hold_key(&a.source.name, &a.dedup_key))
                .collect();
            Some(h.view(now, h.holds_of(resolving).await?))
        }
        None => None,
    };
    let held_routing = view.as_ref().map(|v| HeldRouting::new(&table, v));
    let routing: &dyn Routing = match &held_routing {
        Some(r) => r,
        None => &*table,
    };
    let mut offer = leases.as_ref().map_or_else(LeaseOffer::none, |l| l.offer());
    let recording = match store.record(alerts, now, routing, &mut offer).await {
        Ok(recording) => recording,
        Err(e) => {
            offer.finish(Vec::new(), &[]);
            return Err(e);
        }
    };
    let Recording {
        recorded,
        leased,
        due,
        pending,
    } = recording;
    if let Some(expiry) = expiry {
        expiry.arm(alerts, &recorded).await;
    }
    let mut events = Vec::new();
    // Counted per group, not per alert: a metric lookup hashes and allocates its labels.
    let mut outcomes: Vec<(&'static str, u64)> = Vec::new();
    let mut kinds: Vec<(&'static str, u64)> = Vec::new();
    let tally = |counts: &mut Vec<(&'static str, u64)>, name: &'static str| match counts
        .iter_mut()
        .find(|(n, _)| *n == name)
    {
        Some((_, c)) => *c += 1,
        None => counts.push((name, 1)),
    };
    for r in &recorded {
        tally(&mut outcomes, r.outcome.as_str());
        if let Some(e) = &r.event {
            tally(&mut kinds, e.kind.as_str());
            tracing::debug!(event_id = %e.id, event_type = %e.kind, incident_id = %e.incident.id, source = %e.source.name, dedup_key = %e.incident.dedup_key, "incident event");
            events.push((e.clone(), r.endpoints.clone()));
        }
    }
    for (outcome, n) in outcomes {
        metrics
            .alert_outcomes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc_by(n);
    }
    for (kind, n) in kinds {
        metrics
            .events_emitted
            .get_or_create(&EventLabels {
                r#type: kind.to_string(),
            })
            .inc_by(n);
    }
    // Events held from every endpoint of their own go to the router as nothing at all.
    let mut held_ids = std::collections::HashSet::new();
    if let (Some(h), Some(r), Some(view)) = (holding, &held_routing, &view) {
        let mut causes = r.take_held();
        let held: Vec<_> = events
            .iter()
            .filter_map(|(e, _)| Some((e.clone(), causes.remove(&e.id)?)))
            .collect();
        // A held incident notified before whose resolve went out: nothing left to release.
        let resolved = view.resolved_holds(
            events
                .iter()
                .filter(|(_, endpoints)| !endpoints.is_empty())
                .map(|(e, _)| &**e),
        );
        if let Err(e) = h.drop_holds(&resolved).await {
            tracing::warn!(error = %e, "could not drop the holds of resolved incidents; they are looked at again when due");
        }
        held_ids.extend(held.iter().map(|(e, _)| e.id.clone()));
        if let Err(e) = h.hold(view, held, metrics).await {
            // Recorded, not delivered, and not kept as held: logged loudly, as the 202 is
            // not withheld for it (a retry would be a repeat).
            tracing::error!(error = %e, "could not keep held incidents; they are notified with their next event");
        }
    }
    if let Some(h) = holding {
        let all: Vec<Arc<Event>> = recorded.iter().filter_map(|r| r.event.clone()).collect();
        if let Err(e) = h.track_sources(&all, now).await {
            tracing::error!(error = %e, "could not keep the inhibiting incidents up to date");
        }
    }
    if let Some(grouper) = grouper {
        let all: Vec<Arc<Event>> = recorded.iter().filter_map(|r| r.event.clone()).collect();
        if let Err(e) = crate::grouping::reminders::arm(&*grouper.timers, &table, &all, now).await {
            tracing::error!(error = %e, "could not arm reminders");
        }
    }
    if let Some(grouper) = grouper.as_ref().filter(|_| table.has_groups()) {
        let all: Vec<Arc<Event>> = events.iter().map(|(e, _)| e.clone()).collect();
        match grouper.join(&table, &all, Utc::now()).await {
            // An event that joined a group and went to no endpoint of its own was routed.
            Ok(joined) => {
                let mut joined = joined.into_iter();
                events.retain(|(_, endpoints)| {
                    !(joined.next() == Some(true) && endpoints.is_empty())
                });
            }
            Err(e) => {
                // The events are recorded (and their own deliveries queued): answering 503
                // would make the sender's retry a repeat that joins nothing, so go on.
                tracing::error!(error = %e, "could not add incidents to their groups");
            }
        }
    }
    if !held_ids.is_empty() {
        events.retain(|(e, endpoints)| !endpoints.is_empty() || !held_ids.contains(&e.id));
    }
    // One sync for the record call and the joins and timers that followed it, before the
    // 202 and before a leased delivery can go out (not sent, a head waits for its lease to
    // end and is claimed again).
    if let Err(e) = store.persist().await {
        offer.finish(Vec::new(), &[]);
        return Err(e);
    }
    offer.finish(leased, &due);
    if let Ok(open) = store.open_count().await {
        metrics.incidents_open.set(open as i64);
    }
    Ok((recorded, events, pending))
}
