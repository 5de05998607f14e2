//! Auto-resolve: an incident whose last firing alert carried an `expires_at` (Prometheus'
//! `endsAt` on the Alertmanager API path, a source's `resolve_after`) is resolved when that
//! time passes without a renewal, by a durable timer (`store::timers`) so that a restart
//! neither forgets it and, with the redis store, several instances resolve it once.
//!
//! - Arming ([`Expiry::arm`]): after a group is recorded, each firing alert with an
//!   `expires_at` arms the timer of its incident (set [`EXPIRY_SET`], key: the incident id) at
//!   that time, replacing the one armed before: a renewal moves it. It runs inside the group's
//!   record call, and groups that share an incident are recorded one after the other, so the
//!   last renewal's time is the one armed. A store error is logged and counted
//!   (`switchyard_incident_expiry_total{outcome="arm_failed"}`); the alert stays recorded.
//! - Firing ([`run_expirer`]): a loop claims due timers under a lease
//!   ([`DEFAULT_EXPIRY_LEASE`]) and sends each to the [`IncidentActor`] as [`ExpireIncident`]:
//!   if the timer is still the one claimed (no renewal replaced it) and the incident is open,
//!   a resolved alert is recorded for it (the same transition and `incident.resolved` event as
//!   the tool's own resolve), resolved at the timer's time. Then the timer is completed; if
//!   anything failed it is left to fire again once its lease runs out.
//! - Timers are not cancelled when the tool resolves the incident itself (that would cost a
//!   store call per resolved alert on every source): such a timer fires later on a closed
//!   incident and is completed.
//!
//! Known window: a renewal that arrives between the expiry's check and its record (the alert
//! came back within milliseconds of its expiry) is recorded after the resolve, and opens a new
//! incident.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use thiserror::Error;
use tokio::sync::oneshot;

use super::actor::{admin_alert, IncidentActor, RecordAlerts};
use crate::metrics::{Metrics, OutcomeLabels};
use crate::model::{Alert, AlertStatus};
use crate::store::query::IncidentQuery;
use crate::store::timers::{ClaimedTimer, Timers, When};
use crate::store::{Recorded, StoreError};

/// The timer set of auto-resolve timers.
pub const EXPIRY_SET: &str = "resolve";
/// How long a claimed expiry timer is this instance's to resolve: past it (the instance died,
/// or the store did not answer), another claim fires it again.
pub const DEFAULT_EXPIRY_LEASE: Duration = Duration::from_secs(30);
/// The longest the expirer sleeps between claims (another instance may arm an earlier timer;
/// a timer fires at most this late).
pub const DEFAULT_EXPIRY_POLL: Duration = Duration::from_secs(1);
/// Timers claimed at once.
pub const DEFAULT_EXPIRY_BATCH: usize = 64;
/// Expired incidents being resolved at once (their resolves are recorded in groups).
pub const DEFAULT_EXPIRY_IN_FLIGHT: usize = 16;
/// Timers armed at once after a group is recorded.
pub const DEFAULT_EXPIRY_ARMS_IN_FLIGHT: usize = 16;

/// Arms the auto-resolve timers of recorded alerts.
pub struct Expiry {
    timers: Arc<dyn Timers>,
    metrics: Arc<Metrics>,
}

impl Expiry {
    pub fn new(timers: Arc<dyn Timers>, metrics: Arc<Metrics>) -> Expiry {
        Expiry { timers, metrics }
    }

    /// Arms (or moves) the timer of each incident a firing alert with an `expires_at`
    /// recorded into; `recorded` is what each of `alerts` did, in order. When an incident
    /// has several such alerts in the group, the last one's time is armed.
    pub async fn arm(&self, alerts: &[Alert], recorded: &[Recorded]) {
        let mut arms: Vec<(&str, DateTime<Utc>, &str)> = Vec::new();
        for (a, r) in alerts.iter().zip(recorded) {
            let (Some(at), Some(id)) = (a.expires_at, r.incident_id.as_deref()) else {
                continue;
            };
            if a.status != AlertStatus::Firing {
                continue;
            }
            match arms.iter_mut().find(|(i, _, _)| *i == id) {
                Some(arm) => arm.1 = at,
                None => arms.push((id, at, &a.source.name)),
            }
        }
        if arms.is_empty() {
            return;
        }
        let results: Vec<(bool, &str, &str)> = stream::iter(arms)
            .map(|(id, at, source)| async move {
                let r = self
                    .timers
                    .schedule(EXPIRY_SET, id, at, source, When::Replace)
                    .await;
                if let Err(e) = &r {
                    tracing::warn!(incident_id = %id, source = %source, error = %e, "auto-resolve timer not armed: this incident will not be resolved when it expires");
                }
                (r.is_ok(), id, source)
            })
            .buffer_unordered(DEFAULT_EXPIRY_ARMS_IN_FLIGHT)
            .collect()
            .await;
        let failed = results.iter().filter(|(ok, _, _)| !ok).count() as u64;
        self.count("armed", results.len() as u64 - failed);
        self.count("arm_failed", failed);
    }

    fn count(&self, outcome: &str, n: u64) {
        if n > 0 {
            count(&self.metrics, outcome, n);
        }
    }
}

fn count(metrics: &Metrics, outcome: &str, n: u64) {
    metrics
        .expiry
        .get_or_create(&OutcomeLabels {
            outcome: outcome.to_string(),
        })
        .inc_by(n);
}

/// A due expiry timer, for the incident actor to resolve its incident.
#[derive(Message)]
#[rtype(result = "Result<Expired, ExpireError>")]
pub struct ExpireIncident {
    pub claimed: ClaimedTimer,
}

/// What an expiry timer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// The incident was resolved.
    Resolved,
    /// A renewal replaced the timer after it was claimed: nothing to do.
    Renewed,
    /// The incident is resolved already, or gone.
    Closed,
}

impl Expired {
    fn as_str(self) -> &'static str {
        match self {
            Expired::Resolved => "resolved",
            Expired::Renewed => "renewed",
            Expired::Closed => "closed",
        }
    }
}

/// Why an expiry was not handled (its timer fires again after its lease).
#[derive(Debug, Error)]
pub enum ExpireError {
    #[error("incident reads are not available with this store")]
    Unsupported,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the resolve was not recorded: {0}")]
    Record(String),
}

impl Handler<ExpireIncident> for IncidentActor {
    type Result = ResponseFuture<Result<Expired, ExpireError>>;

    /// Checks the timer and the incident, then records the resolve through `RecordAlerts`
    /// like any other alert, so it is ordered with the alerts being recorded.
    fn handle(&mut self, msg: ExpireIncident, ctx: &mut Self::Context) -> Self::Result {
        let (query, timers) = (self.query(), self.timers());
        let me = ctx.address();
        Box::pin(async move {
            let (query, timers) = query.zip(timers).ok_or(ExpireError::Unsupported)?;
            expire(&*query, &*timers, &me, &msg.claimed).await
        })
    }
}

async fn expire(
    query: &dyn IncidentQuery,
    timers: &dyn Timers,
    incidents: &Addr<IncidentActor>,
    claimed: &ClaimedTimer,
) -> Result<Expired, ExpireError> {
    let armed = timers.get(&claimed.set, &claimed.timer.key).await?;
    if armed.as_ref() != Some(&claimed.timer) {
        return Ok(Expired::Renewed);
    }
    let Some(incident) = query.get_incident(&claimed.timer.key).await? else {
        return Ok(Expired::Closed);
    };
    if !incident.status.is_open() {
        return Ok(Expired::Closed);
    }
    let Some(mut alert) = admin_alert(&incident, AlertStatus::Resolved, Utc::now()) else {
        return Ok(Expired::Closed);
    };
    // Resolved when it expired (Alertmanager's resolved time is the alert's endsAt).
    alert.ended_at = Some(claimed.timer.due);
    let (tx, rx) = oneshot::channel();
    incidents.do_send(RecordAlerts {
        alerts: vec![alert],
        reply: Box::new(move |r| {
            let _ = tx.send(r);
        }),
    });
    match rx.await {
        Ok(Ok(_)) => {
            tracing::info!(incident_id = %incident.id, dedup_key = %incident.dedup_key, expired_at = %claimed.timer.due, "incident resolved: its alert expired without a renewal");
            Ok(Expired::Resolved)
        }
        Ok(Err(e)) => Err(ExpireError::Record(e.to_string())),
        Err(_) => Err(ExpireError::Record("the incident actor stopped".into())),
    }
}

/// Claims due expiry timers and resolves their incidents, until the system stops. One per
/// process; with the redis store every instance runs one and each timer goes to one of them.
pub async fn run_expirer(
    timers: Arc<dyn Timers>,
    incidents: Addr<IncidentActor>,
    metrics: Arc<Metrics>,
) {
    loop {
        let claimed = match timers
            .claim_due(
                EXPIRY_SET,
                Utc::now(),
                DEFAULT_EXPIRY_BATCH,
                DEFAULT_EXPIRY_LEASE,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "auto-resolve timers not claimed; trying again");
                Vec::new()
            }
        };
        let full = claimed.len() == DEFAULT_EXPIRY_BATCH;
        stream::iter(claimed)
            .for_each_concurrent(DEFAULT_EXPIRY_IN_FLIGHT, |c| {
                let (timers, incidents, metrics) = (&timers, &incidents, &metrics);
                async move {
                    let result = incidents
                        .send(ExpireIncident { claimed: c.clone() })
                        .await
                        .map_err(|e| ExpireError::Record(e.to_string()))
                        .and_then(|r| r);
                    match result {
                        Ok(found) => {
                            count(metrics, found.as_str(), 1);
                            if let Err(e) = timers.complete(&c, None).await {
                                tracing::warn!(incident_id = %c.timer.key, error = %e, "auto-resolve timer not completed; it fires again after its lease");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(incident_id = %c.timer.key, error = %e, "incident not resolved at its expiry; trying again after the timer's lease")
                        }
                    }
                }
            })
            .await;
        if full {
            continue;
        }
        let wait = match timers.next_due(EXPIRY_SET).await {
            Ok(Some(next)) => (next - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(DEFAULT_EXPIRY_POLL),
            _ => DEFAULT_EXPIRY_POLL,
        };
        actix_rt::time::sleep(wait.max(Duration::from_millis(10))).await;
    }
}

#[cfg(test)]
mod tests;
