//! The control plane: `ControlActor` owns the running configuration's moving parts (which
//! delivery actor serves which endpoint, the source directory ingest reads, the router's
//! table) and reloads routes.yaml on `POST /api/v1/reload` or SIGHUP. An invalid file changes
//! nothing and its errors are returned; a valid one is swapped in while queued work is kept:
//! an endpoint that stays keeps its actor and queue (with its new settings), a new endpoint
//! gets a new actor, and a removed endpoint's actor keeps draining what it holds.
//!
//! Not reloaded (they need a restart): `server:` (listen address, limits, admin token) and
//! `store:`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use actix::prelude::*;
use serde::Serialize;

use crate::config::load::load_file;
use crate::config::types::{ServerConfig, StoreConfig};
use crate::config::ConfigErrors;
use crate::delivery::actor::{DeliveryActor, UpdateSpec};
use crate::delivery::endpoint::EndpointSpec;
use crate::router::actor::{RouterActor, SetRoutes};
use crate::router::table::RouteTable;
use crate::runtime::Runtime;
use crate::sources::actor::SourceEntry;
use crate::sources::SourceSpec;

type SourceMap = HashMap<String, SourceEntry>;

/// The source actors by name, as ingest looks them up; swapped whole on reload.
pub struct SourceDirectory(RwLock<Arc<SourceMap>>);

impl SourceDirectory {
    pub fn new(map: SourceMap) -> Self {
        SourceDirectory(RwLock::new(Arc::new(map)))
    }

    fn current(&self) -> Arc<SourceMap> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn get(&self, name: &str) -> Option<SourceEntry> {
        self.current().get(name).cloned()
    }

    pub fn replace(&self, map: SourceMap) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
    }
}

/// Starts the actors of these sources (made in `app::serve`, where the actors' other
/// dependencies are).
pub type StartSources = Box<dyn Fn(&[Arc<SourceSpec>]) -> SourceMap>;
/// Starts the delivery actor of one endpoint.
pub type StartDelivery = Box<dyn Fn(Arc<EndpointSpec>) -> Addr<DeliveryActor>>;

/// Reloads the config file.
#[derive(Message)]
#[rtype(result = "Result<ReloadSummary, ConfigErrors>")]
pub struct Reload;

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadSummary {
    pub config: String,
    pub sources: usize,
    pub endpoints: usize,
    /// Endpoints no longer in the file; their actors finish what they hold.
    pub retired_endpoints: Vec<String>,
    /// What the reload could not apply (changes to `server:` or `store:` need a restart).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What a reload changed in the sections it cannot apply, as warnings.
pub fn restart_only_changes(
    running: &(ServerConfig, StoreConfig),
    loaded: &(ServerConfig, StoreConfig),
) -> Vec<String> {
    let mut warnings = Vec::new();
    if running.0 != loaded.0 {
        warnings.push(
            "`server:` changed: it takes effect at the next restart; the running settings are kept"
                .to_string(),
        );
    }
    if running.1 != loaded.1 {
        warnings.push(
            "`store:` changed: it takes effect at the next restart; the running store is kept"
                .to_string(),
        );
    }
    warnings
}

/// Every delivery actor (current, then retired), by endpoint name.
#[derive(Message)]
#[rtype(result = "Vec<(String, Addr<DeliveryActor>)>")]
pub struct ListEndpoints;

/// The running configuration's sources, endpoints and route table, as the console shows them
/// and its route tester runs them (what `route-test` runs on the file).
#[derive(Message)]
#[rtype(result = "Arc<RunningConfig>")]
pub struct GetRunning;

/// What [`GetRunning`] answers: the parts of the runtime that reloads swap.
pub struct RunningConfig {
    pub sources: Vec<Arc<SourceSpec>>,
    pub endpoints: Vec<Arc<EndpointSpec>>,
    pub routes: Arc<RouteTable>,
    /// Endpoints no longer in the file whose actors finish what they hold.
    pub retired: Vec<String>,
}

pub struct ControlActor {
    config_file: PathBuf,
    /// The sources and route table of the running config (see [`GetRunning`]).
    running: (Vec<Arc<SourceSpec>>, Arc<RouteTable>),
    /// The `server:` and `store:` sections the process runs with (None: not compared).
    restart_only: Option<(ServerConfig, StoreConfig)>,
    endpoints: Vec<(Arc<EndpointSpec>, Addr<DeliveryActor>)>,
    retired: Vec<(String, Addr<DeliveryActor>)>,
    sources: Arc<SourceDirectory>,
    router: Addr<RouterActor>,
    start_sources: StartSources,
    start_delivery: StartDelivery,
    on_reload: Option<OnReload>,
}

/// Called with each newly built runtime, before the router switches to it (the redis store
/// routes events itself and learns the new routes and sources here).
pub type OnReload = Box<dyn Fn(&Runtime)>;

impl ControlActor {
    pub fn new(
        config_file: PathBuf,
        endpoints: Vec<(Arc<EndpointSpec>, Addr<DeliveryActor>)>,
        sources: Arc<SourceDirectory>,
        router: Addr<RouterActor>,
        start_sources: StartSources,
        start_delivery: StartDelivery,
    ) -> Self {
        ControlActor {
            config_file,
            restart_only: None,
            endpoints,
            retired: Vec::new(),
            sources,
            router,
            start_sources,
            start_delivery,
            on_reload: None,
            running: (Vec::new(), Arc::new(RouteTable::empty())),
        }
    }

    /// The running config's sources and route table (reloads replace them).
    pub fn with_running(mut self, sources: Vec<Arc<SourceSpec>>, routes: Arc<RouteTable>) -> Self {
        self.running = (sources, routes);
        self
    }

    /// The `server:` and `store:` sections the process was started with: a reload that
    /// changes them warns (in the log and in its summary) that they need a restart.
    pub fn with_restart_only(mut self, running: (ServerConfig, StoreConfig)) -> Self {
        self.restart_only = Some(running);
        self
    }

    /// Adds a hook run with each newly built runtime (see [`OnReload`]).
    pub fn with_on_reload(mut self, hook: OnReload) -> Self {
        self.on_reload = Some(hook);
        self
    }
}

impl Actor for ControlActor {
    type Context = Context<Self>;
}

impl Handler<ListEndpoints> for ControlActor {
    type Result = MessageResult<ListEndpoints>;

    fn handle(&mut self, _: ListEndpoints, _: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.endpoints
                .iter()
                .map(|(s, a)| (s.name.to_string(), a.clone()))
                .chain(self.retired.iter().cloned())
                .collect(),
        )
    }
}

impl Handler<GetRunning> for ControlActor {
    type Result = MessageResult<GetRunning>;

    fn handle(&mut self, _: GetRunning, _: &mut Self::Context) -> Self::Result {
        MessageResult(Arc::new(RunningConfig {
            sources: self.running.0.clone(),
            endpoints: self.endpoints.iter().map(|(s, _)| s.clone()).collect(),
            routes: self.running.1.clone(),
            retired: self.retired.iter().map(|(n, _)| n.clone()).collect(),
        }))
    }
}

impl Handler<Reload> for ControlActor {
    type Result = AtomicResponse<Self, Result<ReloadSummary, ConfigErrors>>;

    fn handle(&mut self, _: Reload, _: &mut Self::Context) -> Self::Result {
        let file = self.config_file.display().to_string();
        let built = load_file(&self.config_file).and_then(|loaded| Runtime::build(&loaded));
        let rt = match built {
            Ok(rt) => {
                for w in &rt.warnings {
                    tracing::warn!(warning = %w, "config warning");
                }
                rt
            }
            Err(errors) => {
                tracing::warn!(config = %file, errors = errors.len(), "reload refused: the config is invalid; keeping the running one");
                return AtomicResponse::new(Box::pin(fut::ready(Err(errors))));
            }
        };
        // Delivery actors: keep the ones whose endpoint stays (or comes back), start new ones.
        let mut old: HashMap<String, Addr<DeliveryActor>> = self
            .endpoints
            .drain(..)
            .map(|(s, a)| (s.name.to_string(), a))
            .chain(self.retired.drain(..))
            .collect();
        let mut updates = Vec::new();
        for spec in &rt.endpoints {
            let addr = match old.remove(&*spec.name) {
                Some(addr) => {
                    updates.push(addr.send(UpdateSpec(spec.clone())));
                    addr
                }
                None => (self.start_delivery)(spec.clone()),
            };
            self.endpoints.push((spec.clone(), addr));
        }
        self.retired = old.into_iter().collect();
        self.retired.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(hook) = &self.on_reload {
            hook(&rt);
        }
        self.sources.replace((self.start_sources)(&rt.sources));
        self.running = (rt.sources.clone(), rt.routes.clone());
        let set_routes = self.router.send(SetRoutes {
            table: rt.routes.clone(),
            deliveries: self.endpoints.iter().map(|(_, a)| a.clone()).collect(),
        });
        let warnings = self
            .restart_only
            .as_ref()
            .map(|running| restart_only_changes(running, &rt.restart_only))
            .unwrap_or_default();
        for w in &warnings {
            tracing::warn!(config = %file, "reload: {w}");
        }
        let summary = ReloadSummary {
            config: file,
            sources: rt.sources.len(),
            endpoints: rt.endpoints.len(),
            retired_endpoints: self.retired.iter().map(|(n, _)| n.clone()).collect(),
            warnings,
        };
        AtomicResponse::new(Box::pin(
            async move {
                for u in updates {
                    let _ = u.await;
                }
                let _ = set_routes.await;
                tracing::info!(config = %summary.config, sources = summary.sources, endpoints = summary.endpoints, retired = ?summary.retired_endpoints, "config reloaded");
                Ok(summary)
            }
            .into_actor(self),
        ))
    }
}
