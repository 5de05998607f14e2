//! `RouterActor`: once a group is recorded (its events routed, once, by the store's record
//! call with the table in [`SharedRoutes`], and their deliveries written into the store's
//! queue), tells the delivery actors of the endpoints that got work to claim it
//! (`ClaimDue`), then runs the group's `after` (which answers the group's requests). It owns
//! the table's updates ([`SetRoutes`]), so a record call and the actors it addresses agree.
//! It never waits on a delivery actor, so a busy endpoint does not hold up ingest.
//!
//! Every mailbox on this path is bounded by what sits behind it, not by its own size: a
//! `RouteEvents` carries the requests it answers, and each holds one of
//! `server.max_inflight_requests` permits until it is answered; a delivery actor's mailbox
//! holds at most one `ClaimDue` that matters (one more is dropped when it is full).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix::prelude::*;

use super::table::RouteTable;
use crate::delivery::actor::{ClaimDue, DeliveryActor};
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
    /// Unfinished deliveries, for ingest's admission: the store's count after each record.
    backlog: Arc<Backlog>,
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
        };
        let table = router.routes.current();
        router.address(&table, deliveries);
        router
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
        let mut nudged: Vec<&Arc<str>> = Vec::new();
        for (event, endpoints) in &msg.events {
            if endpoints.is_empty() {
                self.metrics.events_unrouted.inc();
                tracing::debug!(event_id = %event.id, event_type = %event.kind, incident_id = %event.incident.id, "no route and no default took the event; dropped");
                continue;
            }
            tracing::debug!(event_id = %event.id, event_type = %event.kind, endpoints = endpoints.len(), "routed");
            for endpoint in endpoints {
                if nudged.contains(&endpoint) {
                    continue;
                }
                nudged.push(endpoint);
                match self.deliveries.get(endpoint) {
                    // A nudge: the deliveries are in the store. A full mailbox holds one.
                    Some(addr) => {
                        let _ = addr.try_send(ClaimDue);
                    }
                    None => {
                        tracing::warn!(
                            endpoint = &**endpoint,
                            "no delivery actor for a routed endpoint"
                        )
                    }
                }
            }
        }
        if let Some(after) = msg.after {
            after();
        }
    }
}
