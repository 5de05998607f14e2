//! `Runtime::build`: turns a loaded routes.yaml into checked runtime parts (sources with
//! their plugins, endpoints, the route table, the listener and the store's settings). The
//! control plane builds one on each reload; `app::serve` starts the actors from the first.
//! `route_test` runs a payload through its sources and routes without sending anything.

pub mod route_test;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::duration::parse_duration;
use crate::config::intervals::TimeInterval;
use crate::config::load::{LoadedConfig, PathSeg};
use crate::config::types::{
    Secret, ServerConfig, SourceConfig, SourceKind, StoreConfig, StoreKind, DEFAULT_FILE_STORE_PATH,
};
use crate::config::ConfigErrors;
use crate::delivery::endpoint::{EndpointBuildError, EndpointSpec};
use crate::delivery::policy::AddressPolicy;
use crate::delivery::DEFAULT_MAX_PENDING_DELIVERIES;
use crate::holding::inhibit::InhibitRule;
use crate::holding::silences::{static_silences, Silence};
use crate::model::EventType;
use crate::router::table::{EndpointFilter, RouteTable};
use crate::sources::plugins::{PluginRegistry, DEFAULT_PLUGIN_CALL_TIMEOUT};
use crate::sources::SourceSpec;
use crate::store::redis::{RedisSpec, SourceKinds};
use crate::tls::ReloadableCert;

/// How often the log gets a summary line (`server.log_summary_every`).
pub const DEFAULT_LOG_SUMMARY_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a stopping process gives its deliveries to finish (`server.shutdown_grace`).
pub const DEFAULT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Everything `serve` needs, checked and converted.
pub struct Runtime {
    /// The `server:` and `store:` sections as read: a reload cannot change them (the listener
    /// and the store are made once), so it warns when they differ.
    pub restart_only: (ServerConfig, StoreConfig),
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    /// `server.max_inflight_requests`; None: the HTTP layer's default.
    pub max_inflight_requests: Option<usize>,
    /// `server.body_timeout` (validated by `config::validate`); None: the HTTP layer's default.
    pub body_timeout: Option<std::time::Duration>,
    /// `server.shutdown_grace` (validated by `config::validate`).
    pub shutdown_grace: std::time::Duration,
    /// `server.log_summary_every` (zero: no summary).
    pub log_summary_every: std::time::Duration,
    /// `server.tls`: the certificate served (None: plain HTTP).
    pub tls: Option<Arc<ReloadableCert>>,
    /// `server.admin_listen`: the admin API's own listener.
    pub admin_listen: Option<SocketAddr>,
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
    /// `store: {kind: redis}`.
    pub redis: Option<RedisSpec>,
    /// `store: {kind: file}`: the data directory (relative paths resolved).
    pub file_store: Option<std::path::PathBuf>,
    /// `silences:`, checked.
    pub silences: Vec<Silence>,
    /// `inhibit_rules:`, compiled.
    pub inhibit_rules: Vec<InhibitRule>,
    /// What is legal but surely not meant (`switchyard check` prints them, `serve` logs them).
    pub warnings: Vec<crate::config::ConfigError>,
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
        let on_dead: Arc<[Arc<str>]> = raw.on_dead.iter().map(|n| Arc::from(n.as_str())).collect();
        for (i, e) in raw.endpoints.iter().enumerate() {
            // `smtp.ca_file` is relative to the config file.
            let mut e = e.clone();
            if let Some(ca) = e.smtp.as_mut().and_then(|s| s.ca_file.as_mut()) {
                if Path::new(ca.as_str()).is_relative() {
                    if let Some(base) = Path::new(&cfg.file).parent() {
                        *ca = base.join(&*ca).display().to_string();
                    }
                }
            }
            let e = &e;
            match EndpointSpec::build(e) {
                Ok(mut spec) => {
                    spec.policy = AddressPolicy {
                        deny_private: raw.server.endpoint_policy.deny_private,
                    };
                    spec.on_dead = on_dead.clone();
                    endpoints.push(Arc::new(spec))
                }
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
                enabled: e.enabled.unwrap_or(true),
                events: e.events.as_ref().map(|list| {
                    list.iter()
                        .filter_map(|t| EventType::matching(t).ok())
                        .flatten()
                        .collect()
                }),
            })
            .collect();
        // Checked with their places by `config::validate`; here the ones that parse.
        let intervals = raw
            .time_intervals
            .iter()
            .filter_map(|t| TimeInterval::build(t).ok())
            .collect();
        let routes = RouteTable::build(&raw.routes, &raw.default, filters)
            .map(|t| t.with_time_intervals(intervals))
            .map_err(|e| cfg.error_at(&[key("routes")], e.to_string()));
        let (listen, routes) = match (listen, routes) {
            (Ok(l), Ok(r)) => (l, r),
            (l, r) => {
                errors.extend(l.err());
                errors.extend(r.err());
                return Err(errors);
            }
        };
        let silences = static_silences(&raw.silences).unwrap_or_else(|(i, field, msg)| {
            errors.push(cfg.error_at(&[key("silences"), PathSeg::Index(i), key(field)], msg));
            Vec::new()
        });
        let inhibit_rules = InhibitRule::build(&raw.inhibit_rules).unwrap_or_else(|(i, f, msg)| {
            errors.push(cfg.error_at(&[key("inhibit_rules"), PathSeg::Index(i), key(f)], msg));
            Vec::new()
        });
        if !errors.is_empty() {
            return Err(errors);
        }
        let base = std::path::Path::new(&cfg.file)
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let tls = match &raw.server.tls {
            None => None,
            Some(t) => {
                match ReloadableCert::load(&base.join(&t.cert_file), &base.join(&t.key_file)) {
                    Ok(c) => Some(Arc::new(c)),
                    Err(e) => {
                        errors.push(cfg.error_at(&[key("server"), key("tls")], e.to_string()));
                        None
                    }
                }
            }
        };
        let admin_listen = match raw
            .server
            .admin_listen
            .as_deref()
            .map(str::parse::<SocketAddr>)
        {
            None => None,
            Some(Ok(a)) => Some(a),
            Some(Err(e)) => {
                errors.push(cfg.error_at(
                    &[key("server"), key("admin_listen")],
                    format!("invalid listen address: {e}"),
                ));
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let file_store = (raw.store.kind == StoreKind::File)
            .then(|| base.join(raw.store.path.as_deref().unwrap_or(DEFAULT_FILE_STORE_PATH)));
        Ok(Runtime {
            file_store,
            tls,
            admin_listen,
            restart_only: (raw.server.clone(), raw.store.clone()),
            listen,
            max_body_bytes: raw.server.max_body_bytes,
            max_inflight_requests: raw.server.max_inflight_requests,
            body_timeout: raw
                .server
                .body_timeout
                .as_deref()
                .and_then(|t| parse_duration(t).ok()),
            log_summary_every: raw
                .server
                .log_summary_every
                .as_deref()
                .and_then(|t| parse_duration(t).ok())
                .unwrap_or(DEFAULT_LOG_SUMMARY_EVERY),
            shutdown_grace: raw
                .server
                .shutdown_grace
                .as_deref()
                .and_then(|t| parse_duration(t).ok())
                .unwrap_or(DEFAULT_SHUTDOWN_GRACE),
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
            silences,
            inhibit_rules,
            warnings: crate::config::storm_checks::warnings(cfg),
        })
    }
}

/// Each source's kind by name (the redis store labels incidents it reads back with it).
pub fn source_kinds(sources: &[Arc<SourceSpec>]) -> SourceKinds {
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
