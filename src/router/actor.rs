//! `RouterActor`: the one actor that routes events. It receives the events of each recorded
//! batch in order, picks their endpoints with the [`RouteTable`] and hands them to the delivery
//! actors, waiting for each to accept (so the chain stays bounded and in order).

use std::sync::Arc;

use actix::prelude::*;
use futures_util::future::join_all;

use super::table::RouteTable;
use crate::delivery::actor::{ClaimDue, DeliveryActor, Enqueue};
use crate::metrics::Metrics;
use crate::model::Event;

/// Mailbox size of the router; the incident actor waits when it is full.
pub const DEFAULT_ROUTER_MAILBOX: usize = 1024;

type SendFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), MailboxError>>>>;

/// Routes these events (in order) and answers once every endpoint queued them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RouteEvents(pub Vec<Event>);

pub struct RouterActor {
    table: Arc<RouteTable>,
    deliveries: Vec<Addr<DeliveryActor>>,
    metrics: Arc<Metrics>,
    /// The store wrote each event's deliveries already: wake the actors instead of enqueueing.
    durable: bool,
}

impl RouterActor {
    /// `deliveries[i]` is the actor of `table.endpoints()[i]`.
    pub fn new(
        table: Arc<RouteTable>,
        deliveries: Vec<Addr<DeliveryActor>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        RouterActor {
            table,
            deliveries,
            metrics,
            durable: false,
        }
    }

    /// With a durable delivery queue: events are not handed over, the actors that have new
    /// work are told to claim it (`ClaimDue`).
    pub fn with_durable_queue(mut self) -> Self {
        self.durable = true;
        self
    }
}

impl Actor for RouterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(DEFAULT_ROUTER_MAILBOX);
    }
}

/// Replaces the route table and the delivery actors it addresses (config reload). Batches
/// already being handed over finish with the old table.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetRoutes {
    pub table: Arc<RouteTable>,
    /// `deliveries[i]` is the actor of `table.endpoints()[i]`.
    pub deliveries: Vec<Addr<DeliveryActor>>,
}

impl Handler<SetRoutes> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: SetRoutes, _ctx: &mut Self::Context) {
        self.table = msg.table;
        self.deliveries = msg.deliveries;
    }
}

impl Handler<RouteEvents> for RouterActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: RouteEvents, _ctx: &mut Self::Context) -> Self::Result {
        let mut batches: Vec<Vec<Arc<Event>>> = vec![Vec::new(); self.deliveries.len()];
        for event in msg.0 {
            let decision = self.table.route(&event);
            if decision.endpoints.is_empty() {
                self.metrics.events_unrouted.inc();
                tracing::debug!(event_id = %event.id, event_type = %event.kind, incident_id = %event.incident.id, "no route and no default took the event; dropped");
                continue;
            }
            tracing::debug!(event_id = %event.id, event_type = %event.kind, routes = ?decision.routes, endpoints = decision.endpoints.len(), "routed");
            let event = Arc::new(event);
            for id in decision.endpoints {
                if let Some(batch) = batches.get_mut(id) {
                    batch.push(event.clone());
                }
            }
        }
        let durable = self.durable;
        let sends: Vec<_> = batches
            .into_iter()
            .zip(self.deliveries.iter())
            .filter(|(batch, _)| !batch.is_empty())
            .map(|(batch, addr)| {
                if durable {
                    Box::pin(addr.send(ClaimDue)) as SendFuture
                } else {
                    Box::pin(addr.send(Enqueue(batch)))
                }
            })
            .collect();
        // Waiting here (atomically) keeps the order of batches per endpoint and bounds memory:
        // a full delivery mailbox slows routing instead of growing.
        AtomicResponse::new(Box::pin(
            async move {
                for r in join_all(sends).await {
                    if let Err(e) = r {
                        tracing::error!(error = %e, "a delivery actor is gone; events for it are lost");
                    }
                }
            }
            .into_actor(self),
        ))
    }
}
