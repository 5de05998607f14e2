//! `RouterActor`: the one actor that routes events. It receives the events of each recorded
//! group in order, picks their endpoints with the [`RouteTable`] and puts them in the delivery
//! actors' mailboxes, then runs the group's `after` (which answers the group's requests). It
//! never waits on a delivery actor, so a busy endpoint does not hold up ingest.
//!
//! Every mailbox on this path is bounded by what sits behind it, not by its own size: a
//! `RouteEvents` carries the requests it answers, and each holds one of
//! `server.max_inflight_requests` permits until it is answered; an `Enqueue` carries
//! deliveries already counted in the [`Backlog`], and ingest answers 503 while the backlog is
//! full.

use std::sync::Arc;

use actix::prelude::*;

use super::table::RouteTable;
use crate::delivery::actor::{ClaimDue, DeliveryActor, Enqueue};
use crate::delivery::Backlog;
use crate::metrics::Metrics;
use crate::model::Event;

/// Runs once a group's events are in the delivery actors' mailboxes.
pub type AfterRouting = Box<dyn FnOnce() + Send>;

/// Routes these events (in order), then runs `after`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RouteEvents {
    pub events: Vec<Arc<Event>>,
    pub after: Option<AfterRouting>,
}

pub struct RouterActor {
    table: Arc<RouteTable>,
    deliveries: Vec<Addr<DeliveryActor>>,
    metrics: Arc<Metrics>,
    /// Deliveries handed to the delivery actors and not finished yet (memory queue).
    backlog: Arc<Backlog>,
    /// The store wrote each event's deliveries already: wake the actors instead of enqueueing.
    durable: bool,
}

impl RouterActor {
    /// `deliveries[i]` is the actor of `table.endpoints()[i]`.
    pub fn new(
        table: Arc<RouteTable>,
        deliveries: Vec<Addr<DeliveryActor>>,
        metrics: Arc<Metrics>,
        backlog: Arc<Backlog>,
    ) -> Self {
        RouterActor {
            table,
            deliveries,
            metrics,
            backlog,
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
    type Result = ();

    fn handle(&mut self, msg: RouteEvents, _ctx: &mut Self::Context) {
        let mut batches: Vec<Vec<Arc<Event>>> = vec![Vec::new(); self.deliveries.len()];
        for event in msg.events {
            let decision = self.table.route(&event);
            if decision.endpoints.is_empty() {
                self.metrics.events_unrouted.inc();
                tracing::debug!(event_id = %event.id, event_type = %event.kind, incident_id = %event.incident.id, "no route and no default took the event; dropped");
                continue;
            }
            tracing::debug!(event_id = %event.id, event_type = %event.kind, routes = ?decision.routes, endpoints = decision.endpoints.len(), "routed");
            for id in decision.endpoints {
                if let Some(batch) = batches.get_mut(id) {
                    batch.push(event.clone());
                }
            }
        }
        for (batch, addr) in batches.into_iter().zip(self.deliveries.iter()) {
            if batch.is_empty() {
                continue;
            }
            if self.durable {
                // A nudge: the deliveries are in the store. A full mailbox already holds one.
                let _ = addr.try_send(ClaimDue);
            } else {
                // Bounded by the backlog (see the module docs), counted before it is queued.
                self.backlog.add(batch.len());
                addr.do_send(Enqueue(batch));
            }
        }
        if let Some(after) = msg.after {
            after();
        }
    }
}
