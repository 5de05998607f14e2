//! The group timers' claimant: claims due group timers and flushes each group into one
//! `group.notification` queued to its endpoints.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use chrono::{DateTime, Utc};

use super::notice::{notification, notification_id};
use super::{after, GroupMeta, GROUP_TIMERS};
use crate::holding::Holding;
use crate::metrics::Metrics;
use crate::model::group::{GroupNotice, GroupStatus};
use crate::model::{Event, EventType};
use crate::router::actor::{RouteEvents, RouterActor, SharedRoutes};
use crate::store::groups::Groups;
use crate::store::query::IncidentQuery;
use crate::store::timers::{to_ms, ClaimedTimer, Timers, When};
use crate::store::{DeliveryQueueStore, StoreError};

/// The longest wait between two claims of due group timers (another instance may have armed
/// an earlier one).
pub const DEFAULT_GROUP_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a claimed group timer is this instance's: a flush is a few store calls, so an
/// instance that dies mid-flush leaves the group to another one this much later.
pub const DEFAULT_GROUP_LEASE: Duration = Duration::from_secs(30);
/// Most group timers claimed at once.
pub const DEFAULT_GROUP_FLUSH_BATCH: usize = 64;
/// When a group muted by an interval that never ends is looked at again (a reload may
/// change its route).
pub const DEFAULT_MUTED_GROUP_RECHECK: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// What flushing groups needs.
pub struct Flusher {
    pub groups: Arc<dyn Groups>,
    pub timers: Arc<dyn Timers>,
    pub incidents: Arc<dyn IncidentQuery>,
    pub queue: Arc<dyn DeliveryQueueStore>,
    pub router: Addr<RouterActor>,
    pub metrics: Arc<Metrics>,
    /// The route table now (a grouped route's time intervals).
    pub routes: Arc<SharedRoutes>,
    /// Silences and inhibitions: the incidents they hold are left out of notifications
    /// (None: nothing is held).
    pub holding: Option<Arc<Holding>>,
}

/// Claims and flushes due groups until the process ends.
pub async fn run(f: Flusher) {
    loop {
        let now = Utc::now();
        let claimed = match f
            .timers
            .claim_due(
                GROUP_TIMERS,
                now,
                DEFAULT_GROUP_FLUSH_BATCH,
                DEFAULT_GROUP_LEASE,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim group timers");
                Vec::new()
            }
        };
        let full = claimed.len() == DEFAULT_GROUP_FLUSH_BATCH;
        // One message to the router for the batch: its endpoints are nudged once and claim
        // the batch's notifications together.
        let mut events = Vec::new();
        let mut pending = None;
        for c in claimed {
            match flush_group(&f, &c, Utc::now()).await {
                Ok(Some(queued)) => {
                    pending = Some(queued.pending);
                    events.push((queued.event, queued.endpoints));
                }
                Ok(None) => {}
                // The lease runs out and the group is flushed then (by any instance).
                Err(e) => {
                    tracing::warn!(group = %c.timer.key, error = %e, "could not flush a group")
                }
            }
        }
        if !events.is_empty() {
            f.router.do_send(RouteEvents {
                events,
                pending,
                after: None,
            });
        }
        if full {
            continue;
        }
        let wait = match f.timers.next_due(GROUP_TIMERS).await {
            Ok(Some(t)) => (t - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(DEFAULT_GROUP_POLL_INTERVAL),
            _ => DEFAULT_GROUP_POLL_INTERVAL,
        };
        tokio::time::sleep(wait.max(Duration::from_millis(5))).await;
    }
}

/// The open incidents of a group that a silence or an inhibition holds now, noted in their
/// holds (so the group is flushed again when they are released).
async fn held_members(
    f: &Flusher,
    key: &str,
    incidents: &[crate::model::Incident],
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let Some(holding) = f.holding.as_ref().filter(|h| h.may_hold_incidents()) else {
        return Ok(Vec::new());
    };
    let view = holding.view(now, Default::default());
    let mut held = Vec::new();
    for i in incidents.iter().filter(|i| i.status.is_open()) {
        let Some(source) = i.source.clone() else {
            continue;
        };
        let event = Event {
            id: String::new(),
            kind: EventType::Updated,
            timestamp: now,
            source,
            incident: i.clone(),
            changes: None,
            group: None,
            notice: None,
        };
        let causes = view.causes(&event, true);
        if !causes.is_empty() {
            held.push((event, causes));
        }
    }
    let ids = held.iter().map(|(e, _)| e.incident.id.clone()).collect();
    holding.hold_in_group(&view, key, held).await?;
    Ok(ids)
}

/// A group notification queued by [`flush_group`], for the router to nudge its endpoints.
pub struct Queued {
    pub event: Arc<Event>,
    pub endpoints: Vec<Arc<str>>,
    /// The store's count of unfinished deliveries after it was queued.
    pub pending: usize,
}

/// Flushes one claimed group: its notification queued to its endpoints (if there is
/// anything to say; answered, for the caller to hand to the router), its members marked
/// notified, its timer re-armed or ended.
pub async fn flush_group(
    f: &Flusher,
    c: &ClaimedTimer,
    now: DateTime<Utc>,
) -> Result<Option<Queued>, StoreError> {
    let key = &c.timer.key;
    let Some(state) = f.groups.get(key).await? else {
        f.timers.complete(c, None).await?;
        return Ok(None);
    };
    let meta: GroupMeta = serde_json::from_str(&state.meta)
        .map_err(|e| StoreError::Unavailable(format!("group {key} unreadable: {e}")))?;
    // Inside a mute interval (or outside the active ones) of its route: nothing goes out;
    // the group is flushed when that ends, with whatever it holds then.
    let table = f.routes.current();
    if let Some(hold) = table
        .intervals_of(&meta.route)
        .and_then(|i| table.interval_hold(&i, now))
    {
        let until = hold
            .until
            .unwrap_or_else(|| now + DEFAULT_MUTED_GROUP_RECHECK);
        f.metrics
            .events_held
            .get_or_create(&crate::metrics::HeldLabels {
                cause: "muted".into(),
            })
            .inc();
        tracing::debug!(group = %key, intervals = ?hold.names, until = %until, "group notification held by a time interval");
        f.timers.complete(c, Some((until, ""))).await?;
        return Ok(None);
    }
    let mut incidents = Vec::with_capacity(state.members.len());
    let mut ended = Vec::new();
    let mut changed = Vec::new();
    for (id, count) in &state.members {
        match f.incidents.get_incident(id).await? {
            Some(i) => {
                if *count > 0 {
                    changed.push(id.clone());
                }
                if !i.status.is_open() {
                    ended.push(id.clone());
                }
                incidents.push(i);
            }
            // Forgotten by the store: nothing left to say of it.
            None => ended.push(id.clone()),
        }
    }
    let mut seen: Vec<(String, u64)> = state.members.into_iter().collect();
    // Open incidents a silence or an inhibition holds are left out (and stay changed): the
    // group is looked at again when that may end.
    let held = held_members(f, key, &incidents, now).await?;
    if !held.is_empty() {
        incidents.retain(|i| !held.contains(&i.id));
        changed.retain(|id| !held.contains(id));
        seen.retain(|(id, _)| !held.contains(id));
    }
    let firing = incidents.iter().any(|i| i.status.is_open());
    if changed.is_empty() && !firing {
        // Nothing new and nothing open (but what is held): the group ends quietly, or waits
        // for its held incidents (their release arms its timer again).
        f.groups.flushed(key, &seen, &ended, now).await?;
        f.timers.complete(c, None).await?;
        return Ok(None);
    }
    let notice = GroupNotice::new(
        key.clone(),
        meta.route.clone(),
        meta.labels.clone(),
        incidents,
        changed,
        state.notified_at.is_none(),
    );
    let status = notice.status;
    let event = Arc::new(notification(
        notice,
        notification_id(key, to_ms(c.timer.due)),
        now,
    ));
    let endpoints: Vec<Arc<str>> = meta
        .endpoints
        .iter()
        .map(|e| Arc::from(e.as_str()))
        .collect();
    let pending = f.queue.enqueue(event.clone(), &endpoints).await?;
    f.metrics
        .group_notifications
        .get_or_create(&crate::metrics::RouteLabels {
            route: meta.route.clone(),
        })
        .inc();
    let still_changed = f.groups.flushed(key, &seen, &ended, now).await?;
    let next = (status == GroupStatus::Firing).then(|| after(now, meta.repeat_ms));
    f.timers.complete(c, next.map(|t| (t, ""))).await?;
    // A change that came in while this flush ran found the timer claimed: it goes out after
    // group_interval.
    if still_changed {
        f.timers
            .schedule(
                GROUP_TIMERS,
                key,
                after(now, meta.interval_ms),
                "",
                When::IfEarlier,
            )
            .await?;
    }
    Ok(Some(Queued {
        event,
        endpoints,
        pending,
    }))
}
