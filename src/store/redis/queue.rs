//! The delivery queue in Redis: `claim.lua` leases due lane heads (skipping delivered
//! events), `settle.lua` stores results many at a time, `replay.lua` queues a finished
//! delivery again. A delivery is one entry of its lane, then of the log (common.lua).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::conn::unavailable;
use super::{
    RedisStore, DEFAULT_DEDUP_TTL, DEFAULT_DELIVERY_LOG_CAPACITY,
    DEFAULT_REDIS_ENDPOINT_CONCURRENCY,
};
use crate::model::delivery::{Attempt, DeliveryState, Settlement};
use crate::model::{Event, EventType, Incident, SourceRef};
use crate::store::{
    Claim, Claimed, DeliveryQueueStore, QueueStatus, StoreError, StoredDeliveries, StoredDelivery,
};

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    kind: EventType,
    timestamp: DateTime<Utc>,
    source: SourceRef,
    changes: Option<crate::model::Changes>,
    #[serde(default)]
    group: Option<Arc<crate::model::group::GroupNotice>>,
    notice: Option<Box<crate::model::delivery::DeadNotice>>,
}

/// A delivery as the scripts keep it: an entry of its lane while unfinished, of the log once
/// finished (the layout is in common.lua).
#[derive(Debug)]
pub(super) struct Entry<'a> {
    pub(super) id: &'a str,
    state: &'a str,
    attempts: &'a str,
    replay_of: Option<&'a str>,
    /// The incident JSON.
    incident: &'a str,
    envelope: &'a str,
}

/// Splits an entry; None for an entry cut short.
pub(super) fn parse_entry(s: &str) -> Option<Entry<'_>> {
    let rest = s.strip_prefix("2\n")?;
    let mut f = rest.splitn(8, '\n');
    let id = f.next()?;
    let _lane = f.next()?;
    let _event_id = f.next()?;
    let replay_of = f.next()?;
    let state = f.next()?;
    let attempts = f.next()?;
    let incident = f.next()?;
    let envelope = f.next()?;
    Some(Entry {
        id,
        state,
        attempts,
        replay_of: (!replay_of.is_empty()).then_some(replay_of),
        incident,
        envelope,
    })
}

impl Entry<'_> {
    /// The event: the envelope with its incident.
    fn event(&self) -> Result<Event, StoreError> {
        let unreadable =
            |e: serde_json::Error| unavailable(format!("delivery {} unreadable: {e}", self.id));
        let env = serde_json::from_str::<Envelope>(self.envelope).map_err(unreadable)?;
        let mut incident = serde_json::from_str::<Incident>(self.incident).map_err(unreadable)?;
        incident.source = Some(env.source.clone());
        Ok(Event {
            id: env.id,
            kind: env.kind,
            timestamp: env.timestamp,
            source: env.source,
            incident,
            changes: env.changes,
            group: env.group,
            notice: env.notice,
        })
    }

    fn attempts(&self) -> Vec<Attempt> {
        serde_json::from_str(self.attempts).unwrap_or_default()
    }

    pub(super) fn stored(&self) -> Result<StoredDelivery, StoreError> {
        Ok(StoredDelivery {
            id: self.id.to_string(),
            event: self.event()?,
            state: stored_state(self.state),
            attempts: self.attempts(),
            replay_of: self.replay_of.map(str::to_string),
            next_attempt_at: None,
        })
    }
}

#[async_trait]
impl DeliveryQueueStore for RedisStore {
    async fn enqueue(
        &self,
        event: Arc<Event>,
        endpoints: &[Arc<str>],
    ) -> Result<usize, StoreError> {
        if endpoints.is_empty() {
            return Ok(0);
        }
        let envelope = super::incidents::envelope_json(&event)?;
        let incident = serde_json::to_string(&event.incident).map_err(unavailable)?;
        let mut inv = self.enqueue_script.arg(&self.prefix);
        inv.arg(&event.incident.id)
            .arg(&event.id)
            .arg(incident)
            .arg(envelope)
            .arg(endpoints.len());
        for e in endpoints {
            inv.arg(&**e)
                .arg(format!("dlv_{}", uuid::Uuid::now_v7().simple()));
        }
        let mut conn = self.conn().await?;
        let pending: i64 = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(usize::try_from(pending).unwrap_or(0))
    }

    async fn claim(
        &self,
        endpoint: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let token = format!(
            "{}:{}",
            self.instance,
            self.claims.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = self.conn().await?;
        type Answer = (Vec<(String, String)>, i64, i64, i64, i64, i64);
        let (rows, next_in, disabled, pending, depth, duplicates): Answer = self
            .claim_script
            .arg(self.queue_prefix(endpoint))
            .arg(limit)
            .arg(lease.as_millis() as u64)
            .arg(&token)
            .arg(self.pending_key())
            .arg(self.dedup_key(endpoint, ""))
            .arg(DEFAULT_DELIVERY_LOG_CAPACITY)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        let mut deliveries = Vec::with_capacity(rows.len());
        for (lane, entry) in rows {
            let Some(entry) = parse_entry(&entry) else {
                return Err(unavailable(format!("a head of lane {lane} is unreadable")));
            };
            deliveries.push(Claimed {
                delivery_id: entry.id.to_string(),
                lane: lane.into(),
                event: Arc::new(entry.event()?),
                attempts: entry.attempts(),
                lease: token.clone(),
                replay: entry.replay_of.is_some(),
            });
        }
        Ok(Claim {
            deliveries,
            disabled: disabled != 0,
            next_due_in: u64::try_from(next_in).ok().map(Duration::from_millis),
            depth: depth.max(0) as usize,
            duplicates: duplicates.max(0) as usize,
            pending: pending.max(0) as usize,
        })
    }

    async fn settle_many(
        &self,
        endpoint: &str,
        settles: &[(Claimed, Settlement)],
    ) -> Result<QueueStatus, StoreError> {
        if settles.is_empty() {
            return Ok(QueueStatus::default());
        }
        let mut invocation = self.settle_script.prepare_invoke();
        invocation
            .arg(self.queue_prefix(endpoint))
            .arg(DEFAULT_DEDUP_TTL.as_millis() as u64)
            .arg(DEFAULT_DELIVERY_LOG_CAPACITY)
            .arg(self.pending_key())
            .arg(self.dedup_key(endpoint, ""));
        for (claimed, settlement) in settles {
            let (action, wait, state) = match *settlement {
                Settlement::Delivered => ("delivered", Duration::ZERO, "delivered"),
                Settlement::Retry(wait) => ("retry", wait, "failed"),
                Settlement::Dead => ("dead", Duration::ZERO, "dead"),
                Settlement::Gone => ("gone", Duration::ZERO, "dead"),
                Settlement::Release if claimed.attempts.is_empty() => {
                    ("release", Duration::ZERO, "pending")
                }
                Settlement::Release => ("release", Duration::ZERO, "failed"),
            };
            let attempts = serde_json::to_string(&claimed.attempts).map_err(unavailable)?;
            invocation
                .arg(&*claimed.lane)
                .arg(&claimed.delivery_id)
                .arg(&claimed.lease)
                .arg(action)
                .arg(wait.as_millis() as u64)
                .arg(attempts)
                .arg(state)
                .arg(&claimed.event.id);
        }
        let mut conn = self.conn().await?;
        let (pending, stale, next_in, depth): (i64, Vec<String>, i64, i64) = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        for delivery_id in stale {
            tracing::warn!(
                endpoint,
                %delivery_id,
                "the lease ran out before the delivery was settled; another attempt owns it"
            );
        }
        Ok(QueueStatus {
            next_claimable_in: u64::try_from(next_in).ok().map(Duration::from_millis),
            pending: pending.max(0) as usize,
            depth: depth.max(0) as usize,
        })
    }

    async fn deliveries(&self, endpoint: &str) -> Result<StoredDeliveries, StoreError> {
        self.list_deliveries(endpoint).await
    }

    async fn replay_many(
        &self,
        endpoint: &str,
        delivery_ids: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        if delivery_ids.is_empty() {
            return Ok(Vec::new());
        }
        let new_ids: Vec<String> = delivery_ids
            .iter()
            .map(|_| format!("dlv_{}", uuid::Uuid::now_v7().simple()))
            .collect();
        // (The pending count is the next claim's to report: a claim follows every replay.)
        let mut conn = self.conn().await?;
        let mut call = self.replay_script.prepare_invoke();
        call.arg(self.queue_prefix(endpoint))
            .arg(self.pending_key());
        for (old, new) in delivery_ids.iter().zip(&new_ids) {
            call.arg(old).arg(new);
        }
        let answer: Vec<i64> = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(new_ids
            .into_iter()
            .zip(answer.into_iter().skip(1).chain(std::iter::repeat(0)))
            .map(|(id, found)| (found == 1).then_some(id))
            .collect())
    }

    fn concurrency(&self) -> usize {
        DEFAULT_REDIS_ENDPOINT_CONCURRENCY
    }

    fn is_durable(&self) -> bool {
        true
    }
}

/// A delivery's `state` field as stored by the scripts.
pub(super) fn stored_state(s: &str) -> DeliveryState {
    match s {
        "failed" => DeliveryState::Failed,
        "delivered" => DeliveryState::Delivered,
        "dead" => DeliveryState::Dead,
        _ => DeliveryState::Pending,
    }
}
