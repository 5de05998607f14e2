//! Wiring: `Runtime::build` turns a loaded routes.yaml into runtime parts (sources, endpoints,
//! route table, listener) and `serve` starts the actors and the HTTP server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use actix::prelude::*;
use actix_web::{web, App, HttpServer};
use tokio::sync::Semaphore;

use crate::config::duration::parse_duration;
use crate::config::load::{LoadedConfig, PathSeg};
use crate::config::types::{Secret, ServerConfig, SourceConfig, SourceKind, StoreConfig};
use crate::config::ConfigErrors;
use crate::control::{ControlActor, Reload, SourceDirectory};
use crate::delivery::actor::DeliveryActor;
use crate::delivery::endpoint::{EndpointBuildError, EndpointSpec};
use crate::delivery::refs::{ExternalRefs, MemoryRefs};
use crate::delivery::{Backlog, DEFAULT_MAX_PENDING_DELIVERIES};
use crate::http::admin::AdminState;
use crate::http::{AppState, DEFAULT_MAX_INFLIGHT_INGEST, DEFAULT_MIN_BODY_BUDGET};
use crate::incidents::actor::IncidentActor;
use crate::incidents::query::IncidentQuery;
use crate::metrics::Metrics;
use crate::plugins::{PluginRegistry, DEFAULT_PLUGIN_CALL_TIMEOUT};
use crate::router::actor::RouterActor;
use crate::router::table::{EndpointFilter, RouteTable};
use crate::sources::actor::{SourceActor, SourceEntry};
use crate::sources::SourceSpec;
use crate::store::memory::MemoryStore;
use crate::store::redis::{DedupInScripts, RedisSpec, RedisStore, SourceKinds};
use crate::store::{DeliveryDedup, DeliveryQueueStore, IncidentStore};

/// Everything `serve` needs, checked and converted.
pub struct Runtime {
    /// The `server:` and `store:` sections as read: a reload cannot change them (the listener
    /// and the store are made once), so it warns when they differ.
    pub restart_only: (ServerConfig, StoreConfig),
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub max_inflight_requests: usize,
    /// `server.body_timeout` (validated by `config::validate`).
    pub body_timeout: std::time::Duration,
    pub max_pending_deliveries: usize,
    pub sources: Vec<Arc<SourceSpec>>,
    pub endpoints: Vec<Arc<EndpointSpec>>,
    pub routes: Arc<RouteTable>,
    /// The config file, re-read on reload.
    pub config_file: std::path::PathBuf,
    /// The admin API's bearer token; None turns the admin API off.
    pub admin_token: Option<Secret>,
    /// The adapter plugins loaded from `plugins.dir` (empty without `plugins:`).
    pub plugins: Arc<PluginRegistry>,
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
        let plugins = load_plugins(cfg, &mut errors);
        let mut sources = Vec::new();
        for (i, s) in raw.sources.iter().enumerate() {
            match SourceSpec::build(s) {
                Ok(mut spec) => {
                    if s.kind == SourceKind::Plugin {
                        match attach_plugin(&mut spec, s, raw.plugins.is_some(), &plugins) {
                            Ok(()) => {}
                            Err(msg) => {
                                errors.push(cfg.error_at(
                                    &[key("sources"), PathSeg::Index(i), key("plugin")],
                                    msg,
                                ));
                                continue;
                            }
                        }
                    }
                    sources.push(Arc::new(spec))
                }
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
            restart_only: (raw.server.clone(), raw.store.clone()),
            listen,
            max_body_bytes: raw.server.max_body_bytes,
            max_inflight_requests: raw
                .server
                .max_inflight_requests
                .unwrap_or(DEFAULT_MAX_INFLIGHT_INGEST),
            body_timeout: raw
                .server
                .body_timeout
                .as_deref()
                .and_then(|t| parse_duration(t).ok())
                .unwrap_or(crate::http::DEFAULT_BODY_TIMEOUT),
            max_pending_deliveries: raw
                .server
                .max_pending_deliveries
                .unwrap_or(DEFAULT_MAX_PENDING_DELIVERIES),
            sources,
            endpoints,
            routes: Arc::new(routes),
            config_file: cfg.file.clone().into(),
            admin_token: raw.server.admin_token.clone().filter(|t| !t.is_empty()),
            plugins: Arc::new(plugins),
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
    /// Incident reads for the admin API.
    query: Arc<dyn IncidentQuery>,
    /// Jira issue keys and ServiceNow sys_ids by (endpoint, incident).
    refs: Arc<dyn ExternalRefs>,
    /// The redis store, told of new routes and sources on reload.
    redis: Option<Arc<RedisStore>>,
}

impl Stores {
    fn build(runtime: &Runtime, backlog: &Arc<Backlog>) -> std::io::Result<Stores> {
        let Some(spec) = &runtime.redis else {
            let store = Arc::new(MemoryStore::new());
            return Ok(Stores {
                incidents: store.clone(),
                dedup: store.clone(),
                queue: None,
                actor_backlog: None,
                query: store,
                refs: Arc::new(MemoryRefs::default()),
                redis: None,
            });
        };
        let pool = spec.pool().map_err(std::io::Error::other)?;
        let store = Arc::new(RedisStore::new(
            pool,
            &spec.key_prefix,
            runtime.routes.clone(),
            backlog.clone(),
        ));
        store.set_source_kinds(source_kinds(&runtime.sources));
        tracing::info!(key_prefix = %spec.key_prefix, "redis store");
        Ok(Stores {
            incidents: store.clone(),
            dedup: Arc::new(DedupInScripts),
            queue: Some(store.clone()),
            actor_backlog: Some(Arc::new(Backlog::new(usize::MAX))),
            query: store.clone(),
            refs: store.clone(),
            redis: Some(store),
        })
    }
}

/// Each source's kind by name (the redis store labels incidents it reads back with it).
fn source_kinds(sources: &[Arc<SourceSpec>]) -> SourceKinds {
    sources
        .iter()
        .map(|s| (s.name.to_string(), Arc::from(s.kind.as_str())))
        .collect()
}

/// Loads `plugins.dir` (relative to the config file's directory); each refused library is an
/// error at `plugins.dir` naming the file.
fn load_plugins(cfg: &LoadedConfig, errors: &mut ConfigErrors) -> PluginRegistry {
    let Some(p) = &cfg.raw.plugins else {
        return PluginRegistry::new(DEFAULT_PLUGIN_CALL_TIMEOUT);
    };
    let timeout = match p.timeout.as_deref().map(parse_duration) {
        None => DEFAULT_PLUGIN_CALL_TIMEOUT,
        Some(Ok(t)) if !t.is_zero() => t,
        Some(Ok(_)) => {
            errors.push(cfg.error_at(
                &[key("plugins"), key("timeout")],
                "timeout must be more than 0",
            ));
            DEFAULT_PLUGIN_CALL_TIMEOUT
        }
        Some(Err(e)) => {
            errors.push(cfg.error_at(&[key("plugins"), key("timeout")], e.to_string()));
            DEFAULT_PLUGIN_CALL_TIMEOUT
        }
    };
    let dir = Path::new(&p.dir);
    let dir = if dir.is_relative() {
        Path::new(&cfg.file)
            .parent()
            .map(|base| base.join(dir))
            .unwrap_or_else(|| dir.to_path_buf())
    } else {
        dir.to_path_buf()
    };
    let (registry, refused) = PluginRegistry::load_dir(&dir, timeout);
    for e in refused {
        errors.push(cfg.error_at(&[key("plugins"), key("dir")], e.to_string()));
    }
    registry
}

/// Connects a `kind: plugin` source to the plugin it names.
fn attach_plugin(
    spec: &mut SourceSpec,
    cfg: &SourceConfig,
    plugins_configured: bool,
    plugins: &PluginRegistry,
) -> Result<(), String> {
    let name = cfg.plugin.as_deref().unwrap_or_default();
    if !plugins_configured {
        return Err(format!(
            "source `{}` uses plugin `{name}`, but no `plugins: {{ dir: ... }}` is configured",
            cfg.name
        ));
    }
    let plugin = plugins.get(name).ok_or_else(|| {
        let loaded = plugins.names();
        format!(
            "source `{}`: no loaded plugin is named `{name}` (loaded: {})",
            cfg.name,
            if loaded.is_empty() {
                "none".to_string()
            } else {
                loaded.join(", ")
            }
        )
    })?;
    spec.attach_plugin(plugins.adapter(plugin.clone(), spec.plugin_config.clone()));
    Ok(())
}

/// Starts the actors and the HTTP server and runs until stopped (SIGINT/SIGTERM).
pub async fn serve(runtime: Runtime) -> std::io::Result<()> {
    let metrics = Metrics::new();
    let backlog = Arc::new(Backlog::new(runtime.max_pending_deliveries));
    let stores = Stores::build(&runtime, &backlog)?;

    let start_delivery = {
        let (dedup, refs, metrics, backlog, queue) = (
            stores.dedup.clone(),
            stores.refs.clone(),
            metrics.clone(),
            stores
                .actor_backlog
                .clone()
                .unwrap_or_else(|| backlog.clone()),
            stores.queue.clone(),
        );
        // The delivery actors run on a thread of their own, beside the one that runs the
        // sources, incidents and router: sending and reading every delivery's HTTP exchange
        // is about as much work as taking the alert in, and the two then use both cores.
        let arbiter = Arbiter::new().handle();
        move |spec: Arc<EndpointSpec>| {
            let (dedup, refs, metrics, backlog, queue) = (
                dedup.clone(),
                refs.clone(),
                metrics.clone(),
                backlog.clone(),
                queue.clone(),
            );
            DeliveryActor::start_in_arbiter(&arbiter, move |_| {
                let actor = DeliveryActor::new(spec, dedup, refs, metrics, backlog);
                match queue {
                    Some(queue) => actor.with_durable_queue(queue),
                    None => actor,
                }
            })
        }
    };
    let endpoints: Vec<_> = runtime
        .endpoints
        .iter()
        .map(|spec| (spec.clone(), start_delivery(spec.clone())))
        .collect();
    let deliveries = endpoints.iter().map(|(_, a)| a.clone()).collect();
    let mut router = RouterActor::new(
        runtime.routes.clone(),
        deliveries,
        metrics.clone(),
        backlog.clone(),
    );
    if stores.queue.is_some() {
        router = router.with_durable_queue();
    }
    let router = router.start();
    let store = stores.incidents.clone();
    let incidents = IncidentActor::new(store.clone(), router.clone(), metrics.clone())
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
            redis.set_routes(rt.routes.clone());
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

    let state = AppState {
        sources,
        max_body_bytes: runtime.max_body_bytes,
        metrics,
        backlog,
        inflight: Arc::new(Semaphore::new(runtime.max_inflight_requests)),
        body_timeout: runtime.body_timeout,
        body_bytes: Arc::new(Semaphore::new(
            runtime
                .max_inflight_requests
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
