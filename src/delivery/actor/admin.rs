//! The admin API's messages to a delivery actor: its delivery log, replays and recoveries
//! (written into the store's queue, so with the redis store any instance delivers them), and
//! test pings (sent at once, outside the queue; also when the config that adds the endpoint
//! loads, `ping_on_load`).

use actix::prelude::*;
use bytes::Bytes;
use chrono::Utc;

use super::claim;
use super::notices;
use super::{
    DeliveryActor, EndpointDeliveries, ListDeliveries, Ping, PingReport, Recover, Recovered,
    Replay, ReplayError,
};
use crate::delivery::attempt::send_event;
use crate::delivery::webhook;
use crate::model::delivery::Verdict;
use crate::model::{Event, EventType, Incident, SourceRef};
use crate::store::StoreError;

impl Handler<ListDeliveries> for DeliveryActor {
    type Result = ResponseActFuture<Self, Result<EndpointDeliveries, StoreError>>;

    fn handle(&mut self, _: ListDeliveries, _: &mut Self::Context) -> Self::Result {
        let store = self.claims.store();
        let endpoint = self.spec.name.clone();
        Box::pin(
            async move { store.deliveries(&endpoint).await }
                .into_actor(self)
                .map(|res, act, _| {
                    let stored = res?;
                    Ok(claim::view(act, stored))
                }),
        )
    }
}

impl Handler<Replay> for DeliveryActor {
    type Result = ResponseActFuture<Self, Result<String, ReplayError>>;

    fn handle(&mut self, msg: Replay, _ctx: &mut Self::Context) -> Self::Result {
        // The replay is written into the store's queue (with the redis store, any instance
        // delivers it and it survives a restart).
        let store = self.claims.store();
        let endpoint = self.spec.name.clone();
        let old = msg.0.clone();
        Box::pin(
            async move { store.replay(&endpoint, &old).await }
                .into_actor(self)
                .map(move |res, act, ctx| match res {
                    Ok(Some(id)) => {
                        act.heads.enable();
                    notices::reset_failing(act);
                        tracing::info!(endpoint = &*act.spec.name, delivery = %msg.0, replay = %id, "replay queued");
                        claim::claim(act, ctx);
                        Ok(id)
                    }
                    Ok(None) => Err(ReplayError::NotFound),
                    Err(e) => Err(ReplayError::Unavailable(e.to_string())),
                }),
        )
    }
}

impl Handler<Recover> for DeliveryActor {
    type Result = ResponseActFuture<Self, Result<Vec<Recovered>, StoreError>>;

    fn handle(&mut self, msg: Recover, _ctx: &mut Self::Context) -> Self::Result {
        let store = self.claims.store();
        let endpoint = self.spec.name.clone();
        Box::pin(
            async move {
                let log = store.deliveries(&endpoint).await?;
                let ids = crate::delivery::recover::dead_to_recover(&log, msg.since);
                let new_ids = store.replay_many(&endpoint, &ids).await?;
                Ok(ids
                    .into_iter()
                    .zip(new_ids)
                    .filter_map(|(old, new)| {
                        new.map(|delivery_id| Recovered {
                            replay_of: old,
                            delivery_id,
                        })
                    })
                    .collect::<Vec<_>>())
            }
            .into_actor(self)
            .map(|res, act, ctx| {
                let recovered = res?;
                if !recovered.is_empty() {
                    act.heads.enable();
                    notices::reset_failing(act);
                    tracing::info!(
                        endpoint = &*act.spec.name,
                        replays = recovered.len(),
                        "recovery queued"
                    );
                    claim::claim(act, ctx);
                }
                Ok(recovered)
            }),
        )
    }
}

/// The event a test ping sends: an info-level test incident of its own.
fn ping_event() -> Event {
    let now = Utc::now();
    let id = uuid::Uuid::now_v7().simple().to_string();
    Event {
        id: Event::new_id(),
        kind: EventType::Ping,
        timestamp: now,
        source: SourceRef {
            name: "switchyard".into(),
            kind: "ping".into(),
        },
        incident: Incident::bare(
            format!("inc_ping_{id}"),
            format!("switchyard-ping-{id}"),
            "switchyard test event".into(),
            "A test event sent by the switchyard admin API; no action needed.".into(),
            now,
        ),
        changes: None,
        group: None,
        notice: None,
    }
}

impl Handler<Ping> for DeliveryActor {
    type Result = ResponseActFuture<Self, PingReport>;

    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> Self::Result {
        Box::pin(ping(self, "test ping sent"))
    }
}

/// Sends a ping now (outside the queue, rate limit and circuit); the actor keeps the report
/// (`last_ping` in the delivery log).
fn ping(
    act: &mut DeliveryActor,
    what: &'static str,
) -> impl ActorFuture<DeliveryActor, Output = PingReport> {
    let transport = act.transport();
    let spec = act.spec.clone();
    let refs = act.refs.clone();
    async move {
        let event = ping_event();
        let body = Bytes::from(webhook::body(&event, None));
        let (attempt, outcome) = send_event(&*transport, &spec, refs.as_ref(), &event, &body).await;
        let ok = outcome.verdict == Verdict::Success;
        if ok {
            tracing::info!(endpoint = &*spec.name, status = attempt.status, "{what}");
        } else {
            tracing::warn!(
                endpoint = &*spec.name,
                status = attempt.status,
                error = attempt.error,
                "{what}: it failed"
            );
        }
        PingReport {
            endpoint: spec.name.to_string(),
            ok,
            requests: outcome.requests,
            attempt,
        }
    }
    .into_actor(act)
    .map(|report, act, _| {
        act.last_ping = Some(report.clone());
        report
    })
}

/// `ping_on_load`: pings once the actor of a newly loaded endpoint has started.
pub(super) fn ping_on_load(act: &mut DeliveryActor, ctx: &mut Context<DeliveryActor>) {
    if act.spec.ping_on_load {
        ctx.spawn(ping(act, "ping on load").map(|_, _, _| ()));
    }
}
