//! Adapter plugins: libraries in `plugins.dir` that normalize the payloads of `kind: plugin`
//! sources (their side is the `switchyard-adapter-sdk` crate in `adapters/sdk`).
//!
//! At start-up [`PluginRegistry::load_dir`] opens every library in the directory
//! ([`loader`]) and refuses, naming the file, a wrong ABI version, a missing symbol or two
//! libraries reporting the same name. At run time a [`PluginAdapter`] (one per plugin
//! source) builds the JSON request, calls the plugin on tokio's blocking pool, bounded by
//! [`DEFAULT_PLUGIN_CONCURRENCY`] calls in flight and [`DEFAULT_PLUGIN_CALL_TIMEOUT`] per call,
//! and turns the plugin's JSON output into alerts. A panicking plugin answers an error (the
//! SDK catches the panic) and switchyard keeps running.

pub mod loader;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderMap;
use chrono::{DateTime, Utc};
use switchyard_adapter_sdk as sdk;
use thiserror::Error;
use tokio::sync::Semaphore;

use crate::model::{Alert, AlertStatus, Link, Severity};
use crate::sources::{NormalizeError, SourceSpec};

pub use loader::LoadedPlugin;

/// Plugin calls running at once, all plugins together. A call waits for a free slot up to
/// its time limit; when none frees up, the request gets 503 with `Retry-After`.
pub const DEFAULT_PLUGIN_CONCURRENCY: usize = 4;

/// Time limit of one plugin call, unless `plugins.timeout` says otherwise. A call over it
/// answers 504; the plugin's thread finishes on its own and keeps its slot until then, so a
/// stuck plugin can hold at most the whole pool (and later calls get 503).
pub const DEFAULT_PLUGIN_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a plugin library was refused. Every message names the file.
#[derive(Debug, Error)]
pub enum PluginLoadError {
    #[error("cannot read the plugins directory {}: {reason}", dir.display())]
    ReadDir { dir: PathBuf, reason: String },
    #[error("{}: cannot load the library: {reason}", file.display())]
    Open { file: PathBuf, reason: String },
    #[error("{}: not a switchyard adapter plugin: symbol `{symbol}` is missing", file.display())]
    MissingSymbol { file: PathBuf, symbol: &'static str },
    #[error(
        "{}: plugin ABI version {found}, but this switchyard speaks version {expected} \
         (rebuild the plugin against switchyard-adapter-sdk with ABI {expected})",
        file.display()
    )]
    AbiVersion {
        file: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{}: bad plugin info: {reason}", file.display())]
    BadInfo { file: PathBuf, reason: String },
    #[error("{}: a plugin named `{name}` is already loaded from {}", second.display(), first.display())]
    NameClash {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
}

/// The loaded plugins, by name.
#[derive(Debug)]
pub struct PluginRegistry {
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    /// The call slots every plugin source shares.
    slots: Arc<Semaphore>,
    timeout: Duration,
}

/// Whether a file name looks like a shared library of this platform.
fn is_library(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
}

impl PluginRegistry {
    /// An empty registry whose calls use these limits.
    pub fn new(timeout: Duration) -> Self {
        PluginRegistry {
            plugins: BTreeMap::new(),
            slots: Arc::new(Semaphore::new(DEFAULT_PLUGIN_CONCURRENCY)),
            timeout,
        }
    }

    /// Loads every library (`.so` / `.dylib` / `.dll`) in `dir`, in file name order. Returns
    /// the registry of the good ones and an error for each refused file.
    pub fn load_dir(dir: &Path, timeout: Duration) -> (PluginRegistry, Vec<PluginLoadError>) {
        let mut reg = PluginRegistry::new(timeout);
        let mut errors = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                errors.push(PluginLoadError::ReadDir {
                    dir: dir.to_path_buf(),
                    reason: e.to_string(),
                });
                return (reg, errors);
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_library(p))
            .collect();
        files.sort();
        for file in files {
            match loader::load_library(&file) {
                Ok(p) => {
                    if let Some(first) = reg.plugins.get(&p.name) {
                        errors.push(PluginLoadError::NameClash {
                            name: p.name.clone(),
                            first: first.file.clone(),
                            second: file,
                        });
                        continue;
                    }
                    tracing::info!(plugin = %p.name, version = %p.version, file = %file.display(), "adapter plugin loaded");
                    reg.plugins.insert(p.name.clone(), Arc::new(p));
                }
                Err(e) => errors.push(e),
            }
        }
        (reg, errors)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.get(name)
    }

    /// The loaded plugins, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values()
    }

    pub fn names(&self) -> Vec<&str> {
        self.plugins.keys().map(String::as_str).collect()
    }

    /// The adapter of one plugin source.
    pub fn adapter(&self, plugin: Arc<LoadedPlugin>, config: serde_json::Value) -> PluginAdapter {
        PluginAdapter {
            plugin,
            config: Arc::new(config),
            slots: self.slots.clone(),
            timeout: self.timeout,
        }
    }
}

/// One plugin source's way to its plugin.
#[derive(Debug, Clone)]
pub struct PluginAdapter {
    plugin: Arc<LoadedPlugin>,
    config: Arc<serde_json::Value>,
    slots: Arc<Semaphore>,
    timeout: Duration,
}

impl PluginAdapter {
    pub fn plugin_name(&self) -> &str {
        &self.plugin.name
    }

    /// The JSON request for the plugin: source name, lowercased headers, body, config.
    fn request(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<u8>, NormalizeError> {
        let body = std::str::from_utf8(body)
            .map_err(|e| NormalizeError::Shape(format!("the body is not UTF-8 text: {e}")))?;
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let Ok(value) = value.to_str() else { continue };
            map.entry(name.as_str().to_string())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_string());
        }
        let req = sdk::Request {
            source: source.to_string(),
            headers: map,
            body: body.to_string(),
            config: (*self.config).clone(),
        };
        serde_json::to_vec(&req).map_err(|e| self.failed(format!("cannot encode the request: {e}")))
    }

    fn failed(&self, message: String) -> NormalizeError {
        NormalizeError::PluginFailed {
            plugin: self.plugin.name.clone(),
            message,
        }
    }

    /// Calls the plugin on this thread (for `route-test` and benchmarks; no time limit).
    pub fn normalize_blocking(
        &self,
        spec: &SourceSpec,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<Alert>, NormalizeError> {
        let input = self.request(&spec.name, headers, body)?;
        let output = self.plugin.call(&input);
        self.alerts(spec, &output)
    }

    /// Calls the plugin on the blocking pool, within the pool's slots and the time limit.
    pub async fn normalize(
        &self,
        spec: &SourceSpec,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<Alert>, NormalizeError> {
        let input = self.request(&spec.name, headers, body)?;
        let plugin = self.plugin.clone();
        let name = &self.plugin.name;
        let permit = tokio::time::timeout(self.timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| NormalizeError::PluginBusy {
                plugin: name.clone(),
            })?
            .map_err(|_| self.failed("the plugin pool is closed".into()))?;
        let started = tokio::time::Instant::now();
        let call = tokio::task::spawn_blocking(move || {
            // Held until the plugin returns, even after the caller gave up.
            let _permit = permit;
            plugin.call(&input)
        });
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(output)) => {
                tracing::debug!(plugin = %name, elapsed_us = started.elapsed().as_micros() as u64, "plugin call");
                self.alerts(spec, &output)
            }
            Ok(Err(join)) => Err(self.failed(format!("the plugin call did not finish: {join}"))),
            Err(_) => {
                tracing::warn!(plugin = %name, limit_ms = self.timeout.as_millis() as u64, "plugin call over its time limit");
                Err(NormalizeError::PluginTimeout {
                    plugin: name.clone(),
                    limit_ms: self.timeout.as_millis() as u64,
                })
            }
        }
    }

    /// Reads the plugin's JSON output.
    fn alerts(&self, spec: &SourceSpec, output: &[u8]) -> Result<Vec<Alert>, NormalizeError> {
        let name = &self.plugin.name;
        let out: sdk::Output = serde_json::from_slice(output)
            .map_err(|e| self.failed(format!("the plugin's output is not valid: {e}")))?;
        match out {
            sdk::Output::Alerts(alerts) => alerts
                .into_iter()
                .enumerate()
                .map(|(i, a)| self.convert(spec, i, a))
                .collect(),
            sdk::Output::Error(sdk::AdapterError::InvalidPayload(message)) => {
                Err(NormalizeError::PluginRejected {
                    plugin: name.clone(),
                    message,
                })
            }
            sdk::Output::Error(sdk::AdapterError::Failed(message)) => Err(self.failed(message)),
            sdk::Output::Error(sdk::AdapterError::Panic(message)) => {
                tracing::error!(plugin = %name, file = %self.plugin.file.display(), %message, "adapter plugin panicked");
                Err(NormalizeError::PluginPanicked {
                    plugin: name.clone(),
                    message,
                })
            }
        }
    }

    fn convert(
        &self,
        spec: &SourceSpec,
        index: usize,
        a: sdk::Alert,
    ) -> Result<Alert, NormalizeError> {
        if a.dedup_key.trim().is_empty() {
            return Err(self.failed(format!("alert {index} has an empty dedup_key")));
        }
        let time = |t: Option<String>,
                    field: &str|
         -> Result<Option<DateTime<Utc>>, NormalizeError> {
            t.map(|t| {
                DateTime::parse_from_rfc3339(&t)
                    .map(|t| t.to_utc())
                    .map_err(|e| {
                        self.failed(format!("alert {index}: {field} `{t}` is not RFC 3339: {e}"))
                    })
            })
            .transpose()
        };
        let mut labels = a.labels;
        spec.add_source_labels(&mut labels);
        Ok(Alert {
            dedup_key: a.dedup_key,
            status: match a.status {
                sdk::Status::Firing => AlertStatus::Firing,
                sdk::Status::Resolved => AlertStatus::Resolved,
                sdk::Status::Acknowledged => AlertStatus::Acknowledged,
            },
            severity: match a.severity {
                Some(sdk::Severity::Critical) => Severity::Critical,
                Some(sdk::Severity::Error) => Severity::Error,
                Some(sdk::Severity::Warning) => Severity::Warning,
                Some(sdk::Severity::Info) => Severity::Info,
                None => spec.default_severity,
            },
            title: a.title,
            description: a.description,
            labels,
            annotations: a.annotations,
            links: a
                .links
                .into_iter()
                .map(|l| Link {
                    label: l.label,
                    url: l.url,
                })
                .collect(),
            started_at: time(a.started_at, "started_at")?,
            ended_at: time(a.ended_at, "ended_at")?,
            expires_at: None,
            source: spec.source_ref(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_platforms_libraries_are_loaded() {
        let ext = std::env::consts::DLL_EXTENSION;
        assert!(is_library(Path::new(&format!("lib/libx.{ext}"))));
        assert!(!is_library(Path::new("lib/README.md")));
        assert!(!is_library(Path::new("lib/libx")));
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let (reg, errors) = PluginRegistry::load_dir(
            Path::new("/nonexistent/plugins"),
            DEFAULT_PLUGIN_CALL_TIMEOUT,
        );
        assert_eq!(reg.iter().count(), 0);
        assert_eq!(errors.len(), 1);
        let msg = errors[0].to_string();
        assert!(
            msg.starts_with("cannot read the plugins directory /nonexistent/plugins"),
            "{msg}"
        );
    }

    #[test]
    fn a_directory_without_libraries_loads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let (reg, errors) = PluginRegistry::load_dir(dir.path(), DEFAULT_PLUGIN_CALL_TIMEOUT);
        assert!(errors.is_empty());
        assert!(reg.names().is_empty());
    }
}
