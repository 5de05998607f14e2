//! `RouterActor`: hands each recorded group's events to the delivery actors of the endpoints
//! they were routed to, in order, then runs the group's `after` (which answers the group's
//! requests). Events are routed once, by the store's record call, with the table in
//! [`SharedRoutes`]; this actor owns that table's updates, so a record call and the actors it
//! addresses always agree. It never waits on a delivery actor, so a busy endpoint does not
//! hold up ingest.
//!
//! Every mailbox on this path is bounded by what sits behind it, not by its own size: a
//! `RouteEvents` carries the requests it answers, and each holds one of
//! `server.max_inflight_requests` permits until it is answered; an `Enqueue` carries
//! deliveries already counted in the [`Backlog`], and ingest answers 503 while the backlog is
//! full.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix::prelude::*;

use super::table::RouteTable;
use crate::delivery::actor::{ClaimDue, DeliveryActor, Enqueue};
use crate::delivery::Backlog;
use crate::metrics::Metrics;
use crate::model::Event;

/// Runs once a group's events are in the delivery actors' mailboxes.
pub type AfterRouting = Box<dyn FnOnce() + Send>;

/// The route table record calls route by; swapped whole by [`SetRoutes`].
pub struct SharedRoutes(RwLock<Arc<RouteTable>>);

impl SharedRoutes {
    pub fn new(table: Arc<RouteTable>) -> Arc<SharedRoutes> {
        Arc::new(SharedRoutes(RwLock::new(table)))
    }

    /// The table now.
    pub fn current(&self) -> Arc<RouteTable> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn replace(&self, table: Arc<RouteTable>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = table;
    }
}

/// Hands these events (in order) to their endpoints, then runs `after`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RouteEvents {
    /// Each event with the endpoints it was routed to.
    pub events: Vec<(Arc<Event>, Vec<Arc<str>>)>,
    /// The store's count of unfinished deliveries after recording them, when it keeps them.
    pub pending: Option<usize>,
    pub after: Option<AfterRouting>,
}

pub struct RouterActor {
    routes: Arc<SharedRoutes>,
    /// Every delivery actor by endpoint name: the current ones and those of endpoints a
    /// reload removed (they finish what they hold; an event routed just before the reload
    /// still reaches them).
    deliveries: HashMap<Arc<str>, Addr<DeliveryActor>>,
    metrics: Arc<Metrics>,
    /// Deliveries handed to the delivery actors and not finished yet (memory queue).
    backlog: Arc<Backlog>,
    /// The store wrote each event's deliveries already: wake the actors instead of enqueueing.
    durable: bool,
}

impl RouterActor {
    /// `deliveries[i]` is the actor of `routes`' `endpoints()[i]`.
    pub fn new(
        routes: Arc<SharedRoutes>,
        deliveries: Vec<Addr<DeliveryActor>>,
        metrics: Arc<Metrics>,
        backlog: Arc<Backlog>,
    ) -> Self {
        let mut router = RouterActor {
            routes,
            deliveries: HashMap::new(),
            metrics,
            backlog,
            durable: false,
        };
        let table = router.routes.current();
        router.address(&table, deliveries);
        router
    }

    /// With a durable delivery queue: events are not handed over, the actors that have new
    /// work are told to claim it (`ClaimDue`).
    pub fn with_durable_queue(mut self) -> Self {
        self.durable = true;
        self
    }

    fn address(&mut self, table: &RouteTable, deliveries: Vec<Addr<DeliveryActor>>) {
        for (endpoint, addr) in table.endpoints().iter().zip(deliveries) {
            self.deliveries.insert(endpoint.name.clone(), addr);
        }
    }
}

impl Actor for RouterActor {
    type Context = Context<Self>;
}

/// Replaces the route table and the delivery actors it addresses (config reload). Groups
/// being recorded with the old table are handed to the actors it named.
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
        self.address(&msg.table, msg.deliveries);
        self.routes.replace(msg.table);
    }
}

impl Handler<RouteEvents> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: RouteEvents, _ctx: &mut Self::Context) {
        if let Some(pending) = msg.pending {
            self.backlog.set(pending);
        }
        let mut batches: HashMap<&Arc<str>, Vec<Arc<Event>>> = HashMap::new();
        let mut order: Vec<&Arc<str>> = Vec::new();
        for (event, endpoints) in &msg.events {
            if endpoints.is_empty() {
                self.metrics.events_unrouted.inc();
                tracing::debug!(event_id = %event.id, event_type = %event.kind, incident_id = %event.incident.id, "no route and no default took the event; dropped");
                continue;
            }
            tracing::debug!(event_id = %event.id, event_type = %event.kind, endpoints = endpoints.len(), "routed");
            for endpoint in endpoints {
                batches
                    .entry(endpoint)
                    .or_insert_with(|| {
                        order.push(endpoint);
                        Vec::new()
                    })
                    .push(event.clone());
            }
        }
        for endpoint in order {
            let Some(batch) = batches.remove(endpoint) else {
                continue;
            };
            let Some(addr) = self.deliveries.get(endpoint) else {
                tracing::warn!(
                    endpoint = &**endpoint,
                    events = batch.len(),
                    "no delivery actor for a routed endpoint; events dropped"
                );
                continue;
            };
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
