//! Wiring: `serve` starts the actors and the HTTP server from a [`Runtime`] (built from
//! routes.yaml by `runtime`).

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use actix_web::{web, App, HttpServer};
use tokio::sync::Semaphore;

use crate::control::{ControlActor, Reload, SourceDirectory};
use crate::delivery::actor::DeliveryActor;
use crate::delivery::endpoint::EndpointSpec;
use crate::delivery::Backlog;
use crate::http::admin::AdminState;
use crate::http::{
    AppState, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_INFLIGHT_INGEST, DEFAULT_MIN_BODY_BUDGET,
};
use crate::incidents::actor::IncidentActor;
use crate::metrics::Metrics;
use crate::router::actor::{RouterActor, SharedRoutes};
use crate::runtime::{source_kinds, Runtime};
use crate::sources::actor::{SourceActor, SourceEntry};
use crate::sources::SourceSpec;
use crate::store::leases::LeaseRooms;
use crate::store::memory::MemoryStore;
use crate::store::query::IncidentQuery;
use crate::store::redis::RedisStore;
use crate::store::refs::{ExternalRefs, MemoryRefs};
use crate::store::{DeliveryQueueStore, IncidentStore};

/// The store's parts, as the actors see them.
struct Stores {
    incidents: Arc<dyn IncidentStore>,
    /// The delivery queue every delivery actor claims from.
    queue: Arc<dyn DeliveryQueueStore>,
    /// Incident reads for the admin API.
    query: Arc<dyn IncidentQuery>,
    /// Jira issue keys and ServiceNow sys_ids by (endpoint, incident).
    refs: Arc<dyn ExternalRefs>,
    /// The redis store, told of new sources on reload.
    redis: Option<Arc<RedisStore>>,
}

impl Stores {
    fn build(runtime: &Runtime) -> std::io::Result<Stores> {
        let Some(spec) = &runtime.redis else {
            let store = Arc::new(MemoryStore::new());
            return Ok(Stores {
                incidents: store.clone(),
                queue: store.clone(),
                query: store,
                refs: Arc::new(MemoryRefs::default()),
                redis: None,
            });
        };
        let pool = spec.pool().map_err(std::io::Error::other)?;
        let store = Arc::new(RedisStore::new(pool, &spec.key_prefix));
        store.set_source_kinds(source_kinds(&runtime.sources));
        tracing::info!(key_prefix = %spec.key_prefix, "redis store");
        Ok(Stores {
            incidents: store.clone(),
            queue: store.clone(),
            query: store.clone(),
            refs: store.clone(),
            redis: Some(store),
        })
    }
}

/// Starts the actors and the HTTP server and runs until stopped (SIGINT/SIGTERM).
pub async fn serve(runtime: Runtime) -> std::io::Result<()> {
    let metrics = Metrics::new();
    let backlog = Arc::new(Backlog::new(runtime.max_pending_deliveries));
    let stores = Stores::build(&runtime)?;
    // The delivery actors' room for lanes a record call leases to them (a store that does not
    // lease at record leaves it unused).
    let lease_rooms = Arc::new(LeaseRooms::default());

    let start_delivery = {
        let (refs, metrics, backlog, queue, lease_rooms) = (
            stores.refs.clone(),
            metrics.clone(),
            backlog.clone(),
            stores.queue.clone(),
            lease_rooms.clone(),
        );
        // The delivery actors run on a thread of their own, beside the one that runs the
        // sources, incidents and router: sending and reading every delivery's HTTP exchange
        // is about as much work as taking the alert in, and the two then use both cores.
        let arbiter = Arbiter::new().handle();
        move |spec: Arc<EndpointSpec>| {
            let (refs, metrics, backlog, queue, lease_rooms) = (
                refs.clone(),
                metrics.clone(),
                backlog.clone(),
                queue.clone(),
                lease_rooms.clone(),
            );
            DeliveryActor::start_in_arbiter(&arbiter, move |_| {
                DeliveryActor::new(spec, queue, Some(lease_rooms), refs, metrics, backlog)
            })
        }
    };
    let endpoints: Vec<_> = runtime
        .endpoints
        .iter()
        .map(|spec| (spec.clone(), start_delivery(spec.clone())))
        .collect();
    let deliveries = endpoints.iter().map(|(_, a)| a.clone()).collect();
    let routes = SharedRoutes::new(runtime.routes.clone());
    let router =
        RouterActor::new(routes.clone(), deliveries, metrics.clone(), backlog.clone()).start();
    let store = stores.incidents.clone();
    let incidents = IncidentActor::new(store.clone(), routes, router.clone(), metrics.clone())
        .with_lease_rooms(lease_rooms)
        .with_query(stores.query.clone())
        .start();
    let start_sources = {
        let (incidents, metrics, backlog) = (incidents.clone(), metrics.clone(), backlog.clone());
        move |specs: &[Arc<SourceSpec>]| -> HashMap<String, SourceEntry> {
            specs
                .iter()
                .map(|spec| {
                    let actor = SourceActor::new(
                        spec.clone(),
                        incidents.clone(),
                        metrics.clone(),
                        backlog.clone(),
                    )
                    .start();
                    let entry = SourceEntry {
                        actor,
                        spec: spec.clone(),
                    };
                    (spec.name.to_string(), entry)
                })
                .collect()
        }
    };
    let sources = Arc::new(SourceDirectory::new(start_sources(&runtime.sources)));
    let control = ControlActor::new(
        runtime.config_file.clone(),
        endpoints,
        sources.clone(),
        router,
        Box::new(start_sources),
        Box::new(start_delivery),
    )
    .with_restart_only(runtime.restart_only.clone());
    let control = match stores.redis.clone() {
        Some(redis) => control.with_on_reload(Box::new(move |rt: &Runtime| {
            redis.set_source_kinds(source_kinds(&rt.sources));
        })),
        None => control,
    }
    .start();
    reload_on_sighup(control.clone());
    let admin = runtime.admin_token.clone().map(|token| {
        Arc::new(AdminState {
            token,
            control,
            incidents,
            query: stores.query.clone(),
        })
    });

    let max_inflight_requests = runtime
        .max_inflight_requests
        .unwrap_or(DEFAULT_MAX_INFLIGHT_INGEST);
    let state = AppState {
        sources,
        max_body_bytes: runtime.max_body_bytes,
        metrics,
        backlog,
        inflight: Arc::new(Semaphore::new(max_inflight_requests)),
        body_timeout: runtime.body_timeout.unwrap_or(DEFAULT_BODY_TIMEOUT),
        body_bytes: Arc::new(Semaphore::new(
            max_inflight_requests
                .saturating_mul(runtime.max_body_bytes)
                .clamp(DEFAULT_MIN_BODY_BUDGET, Semaphore::MAX_PERMITS),
        )),
        store,
        admin,
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .configure(crate::http::configure)
    })
    .bind(runtime.listen)?;
    for addr in server.addrs() {
        // A plain line on stdout, for people and for scripts that start us on port 0.
        println!(
            "switchyard {} listening on http://{addr}",
            env!("CARGO_PKG_VERSION")
        );
        tracing::info!(%addr, sources = runtime.sources.len(), endpoints = runtime.endpoints.len(), "listening");
    }
    server.run().await
}

/// Reloads the config on SIGHUP (as `POST /api/v1/reload` does).
fn reload_on_sighup(control: Addr<ControlActor>) {
    #[cfg(unix)]
    actix_rt::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload through the admin API only");
                return;
            }
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the config");
            match control.send(Reload).await {
                Ok(Ok(_)) => {}
                Ok(Err(errors)) => {
                    for e in errors.iter() {
                        tracing::error!(error = %e, "reload refused");
                    }
                }
                Err(e) => tracing::error!(error = %e, "reload failed: control actor unavailable"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = control;
}
