//! Wiring: `Runtime::build` turns a loaded routes.yaml into runtime parts (sources, endpoints,
//! route table, listener) and `serve` starts the actors and the HTTP server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use actix::prelude::*;
use actix_web::{web, App, HttpServer};
use tokio::sync::Semaphore;

use crate::config::load::{LoadedConfig, PathSeg};
use crate::config::types::SourceKind;
use crate::config::ConfigErrors;
use crate::delivery::actor::DeliveryActor;
use crate::delivery::endpoint::{EndpointBuildError, EndpointSpec};
use crate::delivery::{Backlog, DEFAULT_MAX_PENDING_DELIVERIES};
use crate::http::{AppState, DEFAULT_MAX_INFLIGHT_INGEST};
use crate::incidents::actor::IncidentActor;
use crate::metrics::Metrics;
use crate::router::actor::RouterActor;
use crate::router::table::{EndpointFilter, RouteTable};
use crate::sources::actor::SourceActor;
use crate::sources::SourceSpec;
use crate::store::memory::MemoryStore;
use crate::store::redis::{DedupInScripts, RedisSpec, RedisStore};
use crate::store::{DeliveryDedup, DeliveryQueueStore, IncidentStore};

/// Everything `serve` needs, checked and converted.
pub struct Runtime {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub max_inflight_requests: usize,
    pub max_pending_deliveries: usize,
    pub sources: Vec<Arc<SourceSpec>>,
    pub endpoints: Vec<Arc<EndpointSpec>>,
    pub routes: Arc<RouteTable>,
    /// `store: {kind: redis}`; None: the memory store.
    pub redis: Option<RedisSpec>,
}

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

impl Runtime {
    /// Builds every runtime part, reporting each problem at its place in the file.
    pub fn build(cfg: &LoadedConfig) -> Result<Runtime, ConfigErrors> {
        let raw = &cfg.raw;
        let mut errors = ConfigErrors::default();
        let listen = raw.server.listen.parse::<SocketAddr>().map_err(|e| {
            cfg.error_at(
                &[key("server"), key("listen")],
                format!("invalid listen address: {e}"),
            )
        });
        let redis = match RedisSpec::build(&raw.store) {
            Ok(spec) => spec,
            Err(e) => {
                let field = if raw.store.url.is_none() {
                    "kind"
                } else {
                    "url"
                };
                errors.push(cfg.error_at(&[key("store"), key(field)], e.to_string()));
                None
            }
        };
        if raw.plugins.is_some() {
            tracing::warn!(
                "`plugins:` is accepted but adapter plugins are not loaded by this build yet"
            );
        }
        let mut sources = Vec::new();
        for (i, s) in raw.sources.iter().enumerate() {
            let at = [key("sources"), PathSeg::Index(i), key("kind")];
            match s.kind {
                SourceKind::Alertmanager | SourceKind::Generic => {}
                other => {
                    errors.push(cfg.error_at(
                        &at,
                        format!(
                            "source `{}`: kind `{}` is not available in this build yet (alertmanager and generic are)",
                            s.name,
                            other.as_str()
                        ),
                    ));
                    continue;
                }
            }
            match SourceSpec::build(s) {
                Ok(spec) => sources.push(Arc::new(spec)),
                Err(e) => {
                    errors.push(cfg.error_at(&[key("sources"), PathSeg::Index(i)], e.to_string()))
                }
            }
        }
        let mut endpoints = Vec::new();
        for (i, e) in raw.endpoints.iter().enumerate() {
            match EndpointSpec::build(e) {
                Ok(spec) => endpoints.push(Arc::new(spec)),
                Err(err) => {
                    let field = match &err {
                        EndpointBuildError::UnsupportedKind { .. } => "kind",
                        EndpointBuildError::MissingUrl { .. } => "name",
                        EndpointBuildError::Invalid { field, .. } => {
                            field.split('.').next().unwrap_or("name")
                        }
                    };
                    errors.push(cfg.error_at(
                        &[key("endpoints"), PathSeg::Index(i), key(field)],
                        err.to_string(),
                    ));
                }
            }
        }
        let filters = raw
            .endpoints
            .iter()
            .map(|e| EndpointFilter {
                name: e.name.as_str().into(),
                events: e
                    .events
                    .as_ref()
                    .map(|list| list.iter().filter_map(|t| t.parse().ok()).collect()),
            })
            .collect();
        let routes = RouteTable::build(&raw.routes, &raw.default, filters)
            .map_err(|e| cfg.error_at(&[key("routes")], e.to_string()));
        let (listen, routes) = match (listen, routes) {
            (Ok(l), Ok(r)) => (l, r),
            (l, r) => {
                errors.extend(l.err());
                errors.extend(r.err());
                return Err(errors);
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Runtime {
            listen,
            max_body_bytes: raw.server.max_body_bytes,
            max_inflight_requests: raw
                .server
                .max_inflight_requests
                .unwrap_or(DEFAULT_MAX_INFLIGHT_INGEST),
            max_pending_deliveries: raw
                .server
                .max_pending_deliveries
                .unwrap_or(DEFAULT_MAX_PENDING_DELIVERIES),
            sources,
            endpoints,
            routes: Arc::new(routes),
            redis,
        })
    }
}

/// The store's parts, as the actors see them.
struct Stores {
    incidents: Arc<dyn IncidentStore>,
    dedup: Arc<dyn DeliveryDedup>,
    /// The durable delivery queue (redis); None: each delivery actor keeps its own.
    queue: Option<Arc<dyn DeliveryQueueStore>>,
    /// With a durable queue, the delivery actors count only what they hold; the shared
    /// backlog follows the store's count of every instance's pending deliveries.
    actor_backlog: Option<Arc<Backlog>>,
}

impl Stores {
    fn build(runtime: &Runtime, backlog: &Arc<Backlog>) -> std::io::Result<Stores> {
        let Some(spec) = &runtime.redis else {
            let store = Arc::new(MemoryStore::new());
            return Ok(Stores {
                incidents: store.clone(),
                dedup: store,
                queue: None,
                actor_backlog: None,
            });
        };
        let pool = spec.pool().map_err(std::io::Error::other)?;
        let store = Arc::new(RedisStore::new(
            pool,
            &spec.key_prefix,
            runtime.routes.clone(),
            backlog.clone(),
        ));
        tracing::info!(key_prefix = %spec.key_prefix, "redis store");
        Ok(Stores {
            incidents: store.clone(),
            dedup: Arc::new(DedupInScripts),
            queue: Some(store),
            actor_backlog: Some(Arc::new(Backlog::new(usize::MAX))),
        })
    }
}

/// Starts the actors and the HTTP server and runs until stopped (SIGINT/SIGTERM).
pub async fn serve(runtime: Runtime) -> std::io::Result<()> {
    let metrics = Metrics::new();
    let backlog = Arc::new(Backlog::new(runtime.max_pending_deliveries));
    let stores = Stores::build(&runtime, &backlog)?;

    let deliveries: Vec<_> = runtime
        .endpoints
        .iter()
        .map(|spec| {
            let actor = DeliveryActor::new(
                spec.clone(),
                stores.dedup.clone(),
                metrics.clone(),
                stores
                    .actor_backlog
                    .clone()
                    .unwrap_or_else(|| backlog.clone()),
            );
            match &stores.queue {
                Some(queue) => actor.with_durable_queue(queue.clone()).start(),
                None => actor.start(),
            }
        })
        .collect();
    let mut router = RouterActor::new(runtime.routes.clone(), deliveries, metrics.clone());
    if stores.queue.is_some() {
        router = router.with_durable_queue();
    }
    let router = router.start();
    let store = stores.incidents;
    let incidents = IncidentActor::new(store.clone(), router, metrics.clone()).start();
    let sources: HashMap<String, Addr<SourceActor>> = runtime
        .sources
        .iter()
        .map(|spec| {
            let addr = SourceActor::new(spec.clone(), incidents.clone(), metrics.clone()).start();
            (spec.name.to_string(), addr)
        })
        .collect();

    let state = AppState {
        sources: Arc::new(sources),
        max_body_bytes: runtime.max_body_bytes,
        metrics,
        backlog,
        inflight: Arc::new(Semaphore::new(runtime.max_inflight_requests)),
        store,
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
