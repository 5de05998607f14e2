//! The hold timers' claimant: claims due holds, looks at each again with its incident as it
//! is now, and notifies the incidents nothing holds any more (see the module docs of
//! `holding`).

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use chrono::{DateTime, Utc};

use super::{Hold, Holding, HOLDS, HOLD_TIMERS};
use crate::metrics::Metrics;
use crate::model::Event;
use crate::router::actor::{RouteEvents, RouterActor, SharedRoutes};
use crate::store::query::IncidentQuery;
use crate::store::timers::{to_ms, ClaimedTimer};
use crate::store::{DeliveryQueueStore, StoreError};

/// The longest wait between two claims of due holds.
pub const DEFAULT_HOLD_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a claimed hold is this instance's (a release is a few store calls).
pub const DEFAULT_HOLD_LEASE: Duration = Duration::from_secs(30);
/// Most holds claimed at once.
pub const DEFAULT_HOLD_RELEASE_BATCH: usize = 64;

/// What releasing holds needs.
pub struct Releaser {
    pub holding: Arc<Holding>,
    pub incidents: Arc<dyn IncidentQuery>,
    pub queue: Arc<dyn DeliveryQueueStore>,
    pub routes: Arc<SharedRoutes>,
    pub router: Addr<RouterActor>,
    pub metrics: Arc<Metrics>,
}

/// Claims and releases due holds, and keeps the silences current, until the process ends.
pub async fn run(r: Releaser) {
    let mut refreshed = tokio::time::Instant::now();
    loop {
        let now = Utc::now();
        if refreshed.elapsed() >= super::DEFAULT_SILENCE_REFRESH {
            refreshed = tokio::time::Instant::now();
            if let Err(e) = r.holding.refresh_silences(now).await {
                tracing::warn!(error = %e, "could not read the silences");
            }
            if let Err(e) = r.holding.refresh_inhibitions().await {
                tracing::warn!(error = %e, "could not read the inhibiting incidents");
            }
        }
        let claimed = match r
            .holding
            .timers
            .claim_due(
                HOLD_TIMERS,
                now,
                DEFAULT_HOLD_RELEASE_BATCH,
                DEFAULT_HOLD_LEASE,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim hold timers");
                Vec::new()
            }
        };
        let full = claimed.len() == DEFAULT_HOLD_RELEASE_BATCH;
        if !claimed.is_empty() {
            // Look with the silences as they are now (another instance may have expired one).
            if let Err(e) = r.holding.refresh_silences(Utc::now()).await {
                tracing::warn!(error = %e, "could not read the silences");
            }
            if let Err(e) = r.holding.refresh_inhibitions().await {
                tracing::warn!(error = %e, "could not read the inhibiting incidents");
            }
        }
        for c in claimed {
            if let Err(e) = release(&r, &c, Utc::now()).await {
                // The lease runs out and the hold is looked at then (by any instance).
                tracing::warn!(hold = %c.timer.key, error = %e, "could not release a hold");
            }
        }
        if full {
            continue;
        }
        let wait = match r.holding.timers.next_due(HOLD_TIMERS).await {
            Ok(Some(t)) => (t - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(DEFAULT_HOLD_POLL_INTERVAL),
            _ => DEFAULT_HOLD_POLL_INTERVAL,
        };
        tokio::time::sleep(wait.max(Duration::from_millis(5))).await;
    }
}

/// Looks at one claimed hold again: still held: re-armed; else its incident's current state
/// notified (if there is anything to say) and the hold removed.
pub async fn release(r: &Releaser, c: &ClaimedTimer, now: DateTime<Utc>) -> Result<(), StoreError> {
    let key = &c.timer.key;
    let timers = &r.holding.timers;
    tracing::debug!(hold = %key, "hold due");
    let Some(json) = r
        .holding
        .docs
        .get(HOLDS, std::slice::from_ref(key))
        .await?
        .into_iter()
        .next()
        .flatten()
    else {
        timers.complete(c, None).await?;
        return Ok(());
    };
    let forget = || async {
        r.holding.docs.remove_if(HOLDS, key, &json).await?;
        timers.complete(c, None).await
    };
    let Ok(mut hold) = serde_json::from_str::<Hold>(&json) else {
        tracing::warn!(hold = %key, "unreadable hold dropped");
        forget().await?;
        return Ok(());
    };
    let incident = r.incidents.get_incident(&hold.incident_id).await?;
    let Some((incident, source)) = incident.and_then(|i| {
        let s = i.source.clone()?;
        Some((i, s))
    }) else {
        // Forgotten by the store (or of no known source): nothing left to say.
        forget().await?;
        return Ok(());
    };
    let Some(kind) = hold.release_kind(incident.status.is_open()) else {
        // Resolved while held, never notified: the endpoints never heard of it.
        forget().await?;
        return Ok(());
    };
    let event = Event {
        id: Event::derived_id(&format!("hold\n{key}\n{}", to_ms(hold.since))),
        kind,
        timestamp: now,
        source,
        incident,
        changes: None,
        group: None,
        notice: None,
    };
    let view = r.holding.view(now, Default::default());
    let table = r.routes.current();
    let (free, held) = super::decide(&table, &view, &event, !hold.notified);
    let still = held.filter(|h| {
        h.endpoints
            .iter()
            .any(|e| hold.endpoints.iter().any(|x| x.as_str() == &**e))
    });
    if let Some(held) = still {
        let at = view.recheck_at(&held.causes);
        let at = held.until.map_or(at, |u| u.min(at));
        if held.causes != hold.causes {
            hold.causes = held.causes;
            let json = serde_json::to_string(&hold)
                .map_err(|e| StoreError::Rejected(format!("hold: {e}")))?;
            r.holding.docs.put(HOLDS, &[(key.clone(), json)]).await?;
        }
        timers.complete(c, Some((at, ""))).await?;
        return Ok(());
    }
    // The endpoints it missed that take it now.
    let endpoints: Vec<Arc<str>> = free
        .into_iter()
        .filter(|e| hold.endpoints.iter().any(|x| x.as_str() == &**e))
        .collect();
    if !endpoints.is_empty() {
        let event = Arc::new(event);
        let pending = r.queue.enqueue(event.clone(), &endpoints).await?;
        r.metrics.holds_released.inc();
        tracing::info!(incident_id = %event.incident.id, event_type = %event.kind, endpoints = endpoints.len(), "held incident notified");
        r.router.do_send(RouteEvents {
            events: vec![(event, endpoints)],
            pending: Some(pending),
            after: None,
        });
    }
    forget().await?;
    Ok(())
}
