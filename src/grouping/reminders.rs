//! Reminders: on a route without `group_by`, `repeat_interval` re-notifies an open,
//! unacknowledged incident with an `incident.reminder` event (its current state), every
//! `repeat_interval` after its last notification, until it is acknowledged or resolved.
//!
//! Each incident that routes to a reminding route has a durable timer (set
//! [`REMINDER_TIMERS`], key the incident id): armed at now + `repeat_interval` by every event
//! that notifies it ([`arm`], after each record call), cancelled by its acknowledge or
//! resolve. [`run`] claims due ones (leased: of several instances one reminds), queues the
//! reminder like a group notification (`DeliveryQueueStore::enqueue`, in the incident's
//! lane) unless a silence, an inhibition or a time interval holds it, and re-arms the timer.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use chrono::{DateTime, Utc};

use super::after;
use crate::holding::{decide, Holding};
use crate::metrics::{EventLabels, Metrics};
use crate::model::{Event, EventType, IncidentStatus};
use crate::router::actor::{RouteEvents, RouterActor, SharedRoutes};
use crate::router::table::RouteTable;
use crate::store::query::IncidentQuery;
use crate::store::timers::{to_ms, ClaimedTimer, Timers, When};
use crate::store::{DeliveryQueueStore, StoreError};

/// The timer set of reminders.
pub const REMINDER_TIMERS: &str = "remind";
/// The longest wait between two claims of due reminders.
pub const DEFAULT_REMINDER_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a claimed reminder is this instance's.
pub const DEFAULT_REMINDER_LEASE: Duration = Duration::from_secs(30);
/// Most reminders claimed at once.
pub const DEFAULT_REMINDER_BATCH: usize = 64;

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// Arms (or moves, or cancels) the reminders of the incidents of these recorded events.
pub async fn arm(
    timers: &dyn Timers,
    table: &RouteTable,
    events: &[Arc<Event>],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !table.has_reminders() {
        return Ok(());
    }
    let calls = events.iter().map(|e| async move {
        let id = &e.incident.id;
        if e.incident.status != IncidentStatus::Triggered {
            timers.cancel(REMINDER_TIMERS, id).await?;
        } else if let Some((_, every)) = table.reminder_of(e) {
            let due = after(now, ms(every));
            timers
                .schedule(REMINDER_TIMERS, id, due, "", When::Replace)
                .await?;
        }
        Ok::<(), StoreError>(())
    });
    futures_util::future::try_join_all(calls).await?;
    Ok(())
}

/// What reminding needs.
pub struct Reminder {
    pub timers: Arc<dyn Timers>,
    pub incidents: Arc<dyn IncidentQuery>,
    pub queue: Arc<dyn DeliveryQueueStore>,
    pub routes: Arc<SharedRoutes>,
    pub router: Addr<RouterActor>,
    pub holding: Arc<Holding>,
    pub metrics: Arc<Metrics>,
}

/// Claims and sends due reminders until the process ends.
pub async fn run(r: Reminder) {
    loop {
        let claimed = match r
            .timers
            .claim_due(
                REMINDER_TIMERS,
                Utc::now(),
                DEFAULT_REMINDER_BATCH,
                DEFAULT_REMINDER_LEASE,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim reminders");
                Vec::new()
            }
        };
        let full = claimed.len() == DEFAULT_REMINDER_BATCH;
        for c in claimed {
            if let Err(e) = remind(&r, &c, Utc::now()).await {
                tracing::warn!(incident_id = %c.timer.key, error = %e, "could not send a reminder");
            }
        }
        if full {
            continue;
        }
        let wait = match r.timers.next_due(REMINDER_TIMERS).await {
            Ok(Some(t)) => (t - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(DEFAULT_REMINDER_POLL_INTERVAL),
            _ => DEFAULT_REMINDER_POLL_INTERVAL,
        };
        tokio::time::sleep(wait.max(Duration::from_millis(5))).await;
    }
}

/// Sends one claimed reminder (if its incident is still open and unacknowledged, and
/// nothing holds it) and re-arms it.
pub async fn remind(r: &Reminder, c: &ClaimedTimer, now: DateTime<Utc>) -> Result<(), StoreError> {
    let incident = r.incidents.get_incident(&c.timer.key).await?;
    let Some((incident, source)) = incident
        .filter(|i| i.status == IncidentStatus::Triggered)
        .and_then(|i| {
            let s = i.source.clone()?;
            Some((i, s))
        })
    else {
        r.timers.complete(c, None).await?;
        return Ok(());
    };
    let event = Event {
        id: Event::derived_id(&format!(
            "reminder\n{}\n{}",
            c.timer.key,
            to_ms(c.timer.due)
        )),
        kind: EventType::Reminder,
        timestamp: now,
        source,
        incident,
        changes: None,
        group: None,
        notice: None,
    };
    let table = r.routes.current();
    let Some((endpoints, every)) = table.reminder_of(&event) else {
        // No route reminds it any more (a reload).
        r.timers.complete(c, None).await?;
        return Ok(());
    };
    let view = r.holding.view(now, Default::default());
    let (free, _) = decide(&table, &view, &event, false);
    let endpoints: Vec<Arc<str>> = endpoints.into_iter().filter(|e| free.contains(e)).collect();
    if !endpoints.is_empty() {
        let event = Arc::new(event);
        let pending = r.queue.enqueue(event.clone(), &endpoints).await?;
        r.metrics
            .events_emitted
            .get_or_create(&EventLabels {
                r#type: EventType::Reminder.as_str().to_string(),
            })
            .inc();
        tracing::debug!(incident_id = %event.incident.id, endpoints = endpoints.len(), "reminder");
        r.router.do_send(RouteEvents {
            events: vec![(event, endpoints)],
            pending: Some(pending),
            after: None,
        });
    }
    r.timers
        .complete(c, Some((after(now, ms(every)), "")))
        .await?;
    Ok(())
}
