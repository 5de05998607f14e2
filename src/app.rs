//! Wiring: `serve` starts the actors and the HTTP server from a [`Runtime`] (built from
//! routes.yaml by `runtime`).

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use actix_web::{web, App, HttpServer};
use tokio::sync::Semaphore;

use crate::control::{ControlActor, ListEndpoints, Reload, SourceDirectory};
use crate::delivery::actor::{DeliveryActor, Drain, DrainState};
use crate::delivery::endpoint::EndpointSpec;
use crate::delivery::Backlog;
use crate::grouping::flush::{self, Flusher};
use crate::grouping::reminders::{self, Reminder};
use crate::grouping::Grouper;
use crate::holding::release::{self, Releaser};
use crate::holding::Holding;
use crate::http::admin::AdminState;
use crate::http::{
    AppState, Listener, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_INFLIGHT_INGEST, DEFAULT_MIN_BODY_BUDGET,
};
use crate::incidents::actor::IncidentActor;
use crate::incidents::expiry::run_expirer;
use crate::metrics::Metrics;
use crate::router::actor::{RouterActor, SharedRoutes};
use crate::runtime::{source_kinds, Runtime};
use crate::sources::actor::{SourceActor, SourceEntry};
use crate::sources::SourceSpec;
use crate::store::documents::{Documents, MemoryDocuments};
use crate::store::file::FileStore;
use crate::store::groups::{Groups, MemoryGroups};
use crate::store::leases::LeaseRooms;
use crate::store::memory::MemoryStore;
use crate::store::query::IncidentQuery;
use crate::store::redis::RedisStore;
use crate::store::refs::{ExternalRefs, MemoryRefs};
use crate::store::request_ids::{MemoryRequestIds, RequestIds};
use crate::store::timers::{MemoryTimers, Timers};
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
    /// The request ids sources have recorded (redeliveries and replays).
    request_ids: Arc<dyn RequestIds>,
    /// The file store (admin backups).
    file: Option<Arc<FileStore>>,
    /// Notification groups of grouped routes.
    groups: Arc<dyn Groups>,
    /// Durable timers: group notifications, auto-resolve of expired incidents.
    timers: Arc<dyn Timers>,
    /// Silences and held incidents.
    docs: Arc<dyn Documents>,
}

impl Stores {
    fn build(runtime: &Runtime) -> std::io::Result<Stores> {
        if let Some(dir) = &runtime.file_store {
            let store = FileStore::open(dir).map_err(std::io::Error::other)?;
            return Ok(Stores {
                incidents: store.clone(),
                queue: store.clone(),
                query: store.clone(),
                refs: store.clone(),
                redis: None,
                request_ids: store.clone(),
                groups: store.clone(),
                timers: store.clone(),
                docs: store.clone(),
                file: Some(store),
            });
        }
        let Some(spec) = &runtime.redis else {
            let store = Arc::new(MemoryStore::new());
            return Ok(Stores {
                incidents: store.clone(),
                queue: store.clone(),
                query: store,
                refs: Arc::new(MemoryRefs::default()),
                redis: None,
                request_ids: Arc::new(MemoryRequestIds::default()),
                file: None,
                groups: Arc::new(MemoryGroups::default()),
                timers: Arc::new(MemoryTimers::default()),
                docs: Arc::new(MemoryDocuments::default()),
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
            request_ids: store.clone(),
            groups: store.clone(),
            timers: store.clone(),
            docs: store.clone(),
            redis: Some(store),
            file: None,
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
    let grouper = Arc::new(Grouper {
        groups: stores.groups.clone(),
        timers: stores.timers.clone(),
    });
    let holding = Arc::new(Holding::new(stores.docs.clone(), stores.timers.clone()));
    holding.set_static_silences(runtime.silences.clone());
    holding.set_inhibit_rules(runtime.inhibit_rules.clone());
    if let Err(e) = holding.refresh_silences(chrono::Utc::now()).await {
        tracing::warn!(error = %e, "could not read the silences; they take effect once the store answers");
    }
    let incidents = IncidentActor::new(
        store.clone(),
        routes.clone(),
        router.clone(),
        metrics.clone(),
    )
    .with_lease_rooms(lease_rooms)
    .with_query(stores.query.clone())
    .with_grouper(grouper)
    .with_expiry(stores.timers.clone())
    .with_holding(holding.clone())
    .start();
    // Reminders of open, unacknowledged incidents (repeat_interval without group_by).
    // The timers' claimants (reminders, held incidents, group notifications) run on an
    // arbiter of their own: under a storm of new groups their store calls would otherwise
    // share the thread that takes alerts in.
    let timers_arbiter = Arbiter::new().handle();
    timers_arbiter.spawn(reminders::run(Reminder {
        timers: stores.timers.clone(),
        incidents: stores.query.clone(),
        queue: stores.queue.clone(),
        routes: routes.clone(),
        router: router.clone(),
        holding: holding.clone(),
        metrics: metrics.clone(),
    }));
    // Held incidents: due holds claimed and released, silences kept current.
    timers_arbiter.spawn(release::run(Releaser {
        holding: holding.clone(),
        incidents: stores.query.clone(),
        queue: stores.queue.clone(),
        routes: routes.clone(),
        router: router.clone(),
        metrics: metrics.clone(),
    }));
    // Group notifications: due group timers claimed and flushed.
    timers_arbiter.spawn(flush::run(Flusher {
        groups: stores.groups.clone(),
        timers: stores.timers.clone(),
        incidents: stores.query.clone(),
        queue: stores.queue.clone(),
        router: router.clone(),
        metrics: metrics.clone(),
        routes: routes.clone(),
        holding: Some(holding.clone()),
    }));
    // Auto-resolve: due expiry timers claimed and sent to the incident actor.
    actix_rt::spawn(run_expirer(
        stores.timers.clone(),
        incidents.clone(),
        metrics.clone(),
    ));
    let start_sources = {
        let (incidents, metrics, backlog) = (incidents.clone(), metrics.clone(), backlog.clone());
        let request_ids = stores.request_ids.clone();
        move |specs: &[Arc<SourceSpec>]| -> HashMap<String, SourceEntry> {
            specs
                .iter()
                .map(|spec| {
                    let actor = SourceActor::new(
                        spec.clone(),
                        incidents.clone(),
                        metrics.clone(),
                        backlog.clone(),
                        request_ids.clone(),
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
    .with_restart_only(runtime.restart_only.clone())
    .with_running(runtime.sources.clone(), runtime.routes.clone());
    let (redis, cert) = (stores.redis.clone(), runtime.tls.clone());
    let reloaded_holding = holding.clone();
    let control = control
        .with_on_reload(Box::new(move |rt: &Runtime| {
            reloaded_holding.set_static_silences(rt.silences.clone());
            reloaded_holding.set_inhibit_rules(rt.inhibit_rules.clone());
            if let Some(redis) = &redis {
                redis.set_source_kinds(source_kinds(&rt.sources));
            }
            // The running listener's certificate, read again from its files.
            if let Some(cert) = &cert {
                match cert.reload() {
                    Ok(()) => tracing::info!("TLS certificate read again"),
                    Err(e) => tracing::warn!(error = %e, "TLS certificate not reloaded; the running one stays"),
                }
            }
        }))
        .start();
    reload_on_sighup(control.clone());
    log_summaries(metrics.clone(), runtime.log_summary_every);
    let drain_control = control.clone();
    let last_store = stores.incidents.clone();
    let admin = runtime.admin_token.clone().map(|token| {
        Arc::new(AdminState {
            token,
            control,
            incidents,
            query: stores.query.clone(),
            file_store: stores.file.clone(),
            groups: stores.groups.clone(),
            timers: stores.timers.clone(),
            holding,
        })
    });

    crate::http::silences::mark_started();
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
    let public = if runtime.admin_listen.is_some() {
        Listener::Public
    } else {
        Listener::All
    };
    let console = crate::ui::Console::new(runtime.admin_token.as_ref().map(|t| t.expose()));
    let main = start_listener(&runtime, &state, &console, runtime.listen, public)?;
    let admin = match runtime.admin_listen {
        Some(addr) => Some(start_listener(
            &runtime,
            &state,
            &console,
            addr,
            Listener::Admin,
        )?),
        None => None,
    };
    let handles: Vec<_> = std::iter::once(main.handle())
        .chain(admin.as_ref().map(|a| a.handle()))
        .collect();
    actix_rt::spawn(async move {
        let signal = stop_signal().await;
        tracing::info!(
            signal,
            "stopping: no new connections; requests under way finish"
        );
        for handle in handles {
            handle.stop(true).await;
        }
    });
    // Both listeners run (a server starts when first polled) until both have stopped.
    futures_util::future::try_join_all(std::iter::once(main).chain(admin)).await?;
    drain_deliveries(&drain_control, runtime.shutdown_grace).await;
    // What the last settles left to write (the file store writes them on its own thread).
    if let Err(e) = last_store.persist().await {
        tracing::warn!(error = %e, "the store could not make its last changes durable");
    }
    Ok(())
}

/// Binds one listener serving `routes` (HTTPS with `server.tls`) and starts it. The console
/// (`/ui`) is where the admin API is.
fn start_listener(
    runtime: &Runtime,
    state: &AppState,
    console: &Option<Arc<crate::ui::Console>>,
    addr: std::net::SocketAddr,
    routes: Listener,
) -> std::io::Result<actix_web::dev::Server> {
    let state = state.clone();
    let console = match routes {
        Listener::Public => None,
        Listener::All | Listener::Admin => console.clone(),
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .configure(|cfg| crate::http::configure_listener(cfg, routes))
            .configure(|cfg| crate::ui::configure(cfg, console.clone()))
    })
    // On SIGTERM or SIGINT (ours, in `serve`: actix-server's own would stop every arbiter,
    // the delivery actors' too): stop accepting, give requests under way this long to finish.
    .disable_signals()
    .shutdown_timeout(runtime.shutdown_grace.as_secs().max(1));
    let (server, scheme) = match &runtime.tls {
        Some(cert) => (
            server.bind_rustls_0_23(addr, cert.server_config())?,
            "https",
        ),
        None => (server.bind(addr)?, "http"),
    };
    for addr in server.addrs() {
        let what = match routes {
            Listener::Admin => " (admin API)",
            _ => "",
        };
        // A plain line on stdout, for people and for scripts that start us on port 0.
        println!(
            "switchyard {} listening on {scheme}://{addr}{what}",
            env!("CARGO_PKG_VERSION")
        );
        tracing::info!(%addr, scheme, routes = ?routes, sources = runtime.sources.len(), endpoints = runtime.endpoints.len(), "listening");
    }
    Ok(server.run())
}

/// Every `every` (not at all when zero), one log line with what happened since the last one.
fn log_summaries(metrics: Arc<Metrics>, every: std::time::Duration) {
    if every.is_zero() {
        return;
    }
    actix_rt::spawn(async move {
        let mut last = metrics.totals();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tick.tick().await;
            let now = metrics.totals();
            let d = now.since(&last);
            last = now;
            tracing::info!(
                period_s = every.as_secs_f64(),
                accepted_requests = d.accepted_requests,
                alerts = d.alerts,
                delivered = d.delivered,
                failed = d.failed,
                dead = d.dead,
                "summary since the last one"
            );
        }
    });
}

/// Waits for SIGTERM or SIGINT (Ctrl-C); its name.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// After the HTTP side has stopped: gives the delivery actors up to `grace` to finish what
/// they hold (see [`Drain`]), then says in the log what was left and where.
async fn drain_deliveries(control: &Addr<ControlActor>, grace: std::time::Duration) {
    let deadline = std::time::Instant::now() + grace;
    let actors = control.send(ListEndpoints).await.unwrap_or_default();
    tracing::info!(
        endpoints = actors.len(),
        grace_ms = grace.as_millis() as u64,
        "stopping: ingest closed; finishing deliveries"
    );
    loop {
        let mut left: Vec<(String, DrainState)> = Vec::new();
        for (name, addr) in &actors {
            match addr.send(Drain).await {
                Ok(state) if state.is_done() => {}
                Ok(state) => left.push((name.clone(), state)),
                Err(e) => {
                    tracing::error!(endpoint = %name, error = %e, "stopping: the endpoint's delivery actor does not answer; what it held is lost unless the store keeps it");
                }
            }
        }
        if left.is_empty() {
            tracing::info!(
                "stopped: every delivery this process held is finished or safe in the store"
            );
            return;
        }
        if std::time::Instant::now() >= deadline {
            for (endpoint, s) in &left {
                if s.durable {
                    tracing::warn!(endpoint = %endpoint, in_flight = s.in_flight, unsettled = s.unsettled, leased = s.queued, "stopped with attempts unanswered: they stay in the store and are sent again once their leases run out (the receiver may see them twice; deduplicate on webhook-id)");
                } else {
                    tracing::error!(endpoint = %endpoint, lost = s.queued, in_flight = s.in_flight, "stopped after server.shutdown_grace with deliveries not finished: the memory store keeps nothing, they are lost");
                }
            }
            let lost: usize = left
                .iter()
                .filter(|(_, s)| !s.durable)
                .map(|(_, s)| s.queued)
                .sum();
            if lost > 0 {
                tracing::error!(lost, "stopped: {lost} deliveries lost (memory store); use a durable store to keep them across restarts");
            }
            return;
        }
        tokio::time::sleep(DEFAULT_DRAIN_POLL).await;
    }
}

/// How often a stopping process asks its delivery actors what is left.
pub const DEFAULT_DRAIN_POLL: std::time::Duration = std::time::Duration::from_millis(50);

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
