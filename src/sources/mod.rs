//! Sources: the adapters that turn a monitoring tool's payload into alerts.
//!
//! A [`SourceSpec`] is built once per configured source ([`SourceSpec::build`]) and answers
//! two questions about each request, as plain functions the `SourceActor` calls:
//! [`SourceSpec::authenticate`] (does it come from the tool? see [`auth`]) and
//! [`SourceSpec::normalize_request`] (which alerts does its body carry? see [`alertmanager`],
//! [`grafana`], [`sentry`], [`generic`], and `kind: plugin` sources in [`crate::sources::plugins`]).
//! Dedup keys of label-based alerts come from [`fingerprint`]; tools that redeliver a request
//! with the same id (Sentry's `Request-ID`) are filtered through [`redelivery`].

pub mod actor;
pub mod alertmanager;
pub mod auth;
pub mod expiry;
pub mod fingerprint;
pub mod generic;
pub mod grafana;
pub mod plugins;
pub mod redelivery;
pub mod senders;
pub mod sentry;
pub mod sns;
#[cfg(test)]
pub(crate) mod test_fixtures;

use std::sync::Arc;

use actix_web::http::header::HeaderMap;
use chrono::{DateTime, Utc};
use serde_json::error::Category;
use thiserror::Error;

use crate::config::types::{AuthConfig, SourceConfig, SourceKind};
use crate::model::{Alert, Labels, Severity, SourceRef};
use crate::sources::plugins::PluginAdapter;

use auth::{AuthConfigError, AuthError, Authenticator, HeadersChecked};
use redelivery::Redelivery;

/// Why a configured source cannot be built. Each message starts with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SourceBuildError {
    #[error("severity: {0}")]
    Severity(String),
    #[error("auth.{0}")]
    Auth(#[from] AuthConfigError),
    #[error("mapping: {0}")]
    Mapping(String),
    #[error("preset: {0}")]
    Preset(String),
    #[error("sns.{0}")]
    Sns(String),
    #[error("{0}")]
    Senders(String),
    #[error("sentry.{0}")]
    Sentry(String),
    #[error("delivery_id_header: {0}")]
    DeliveryIdHeader(String),
    #[error("resolve_after: {0}")]
    ResolveAfter(String),
    #[error("config: only `kind: plugin` sources take a `config`, this one is `{0}`")]
    Config(&'static str),
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NormalizeError {
    /// The body is not JSON; `line` and `column` are serde_json's (1-based line).
    #[error("malformed JSON at line {line} column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid JSON, but not in this tool's format.
    #[error("unexpected payload: {0}")]
    Shape(String),
    /// A call the tool's protocol asks for failed (an SNS subscription confirmation): 502.
    #[error("{0}")]
    Upstream(String),
    /// This source kind has no built-in adapter in this build yet.
    #[error("the `{}` adapter is not available in this build yet", .0.as_str())]
    Unsupported(SourceKind),
    /// The plugin says the body is not in its tool's format (400).
    #[error("plugin `{plugin}` refused the payload: {message}")]
    PluginRejected { plugin: String, message: String },
    /// The plugin failed, or answered something switchyard cannot read (502).
    #[error("plugin `{plugin}` failed: {message}")]
    PluginFailed { plugin: String, message: String },
    /// The plugin panicked; the panic was caught and switchyard kept running (500).
    #[error("plugin `{plugin}` panicked: {message}")]
    PluginPanicked { plugin: String, message: String },
    /// The plugin call took longer than its time limit (504).
    #[error("plugin `{plugin}` did not answer within {limit_ms} ms")]
    PluginTimeout { plugin: String, limit_ms: u64 },
    /// Every plugin call slot stayed taken for the whole time limit (503).
    #[error("plugin `{plugin}`: every plugin call slot is busy; retry later")]
    PluginBusy { plugin: String },
}

impl NormalizeError {
    /// A short word for metrics: how a plugin call ended (`None` for non-plugin errors).
    pub fn plugin_outcome(&self) -> Option<&'static str> {
        Some(match self {
            NormalizeError::PluginRejected { .. } => "rejected",
            NormalizeError::PluginFailed { .. } => "failed",
            NormalizeError::PluginPanicked { .. } => "panicked",
            NormalizeError::PluginTimeout { .. } => "timeout",
            NormalizeError::PluginBusy { .. } => "busy",
            _ => return None,
        })
    }
}

impl NormalizeError {
    /// Sorts a serde_json error: syntax errors are `Json` (with their position), type and
    /// missing-field errors are `Shape`.
    pub(crate) fn from_json(e: serde_json::Error) -> Self {
        match e.classify() {
            Category::Data => NormalizeError::Shape(e.to_string()),
            Category::Syntax | Category::Eof | Category::Io => {
                let (line, column) = (e.line(), e.column());
                let full = e.to_string();
                let suffix = format!(" at line {line} column {column}");
                let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
                NormalizeError::Json {
                    line,
                    column,
                    message,
                }
            }
        }
    }
}

/// One configured source, ready to check and normalize requests.
#[derive(Debug)]
pub struct SourceSpec {
    pub name: Arc<str>,
    pub kind: SourceKind,
    auth: Option<Authenticator>,
    /// Added to every alert; a payload's own label of the same name wins.
    pub labels: Labels,
    /// Used when the payload names no (known) severity. Config `severity`, default warning.
    pub default_severity: Severity,
    /// Generic sources: the JSON-pointer `mapping`.
    mapping: generic::Mapping,
    /// `SourceRef { name, kind }`, built once and cloned (two `Arc`s) into each alert.
    source_ref: SourceRef,
    /// `kind: plugin`: the plugin, attached by `Runtime::build` once plugins are loaded.
    plugin: Option<PluginAdapter>,
    /// `kind: plugin`: the source's `config:`, given to the plugin with each request.
    pub plugin_config: serde_json::Value,
    /// Sources whose tool sends a per-delivery id (sentry: `Request-ID`): the ids already
    /// recorded, so that a redelivery is dropped.
    redelivery: Option<Redelivery>,
    /// `kind: sns`: its options and signature checker.
    pub(crate) sns: Option<sns::SnsReceiver>,
    /// `allow_from` with its `trusted_proxies`; None: any sender.
    senders: Option<senders::SenderFilter>,
    /// `kind: sentry`: `sentry.base_url` (a self-hosted Sentry), for issue links.
    pub(crate) sentry_base_url: Option<String>,
    /// `resolve_after`: how long a firing alert's incident stays open without a renewal,
    /// for alerts that carry no expiry of their own (see [`expiry`]).
    pub resolve_after: Option<std::time::Duration>,
}

impl SourceSpec {
    /// Builds the runtime form of one `sources:` entry.
    pub fn build(cfg: &SourceConfig) -> Result<SourceSpec, SourceBuildError> {
        let default_severity = match cfg.severity.as_deref() {
            None => Severity::Warning,
            Some(s) => s
                .trim()
                .to_ascii_lowercase()
                .parse::<Severity>()
                .map_err(|_| {
                    SourceBuildError::Severity(format!(
                        "unknown severity `{s}` (expected critical, error, warning or info)"
                    ))
                })?,
        };
        let auth = cfg
            .auth
            .as_ref()
            .map(|a| Authenticator::build(a, cfg.kind))
            .transpose()?;
        if !cfg.mapping.is_empty() && cfg.kind != SourceKind::Generic {
            return Err(SourceBuildError::Mapping(format!(
                "only `kind: generic` sources use a mapping, this one is `{}`",
                cfg.kind.as_str()
            )));
        }
        let mapping = match &cfg.preset {
            None => cfg.mapping.clone(),
            Some(_) if cfg.kind != SourceKind::Generic => {
                return Err(SourceBuildError::Preset(format!(
                    "only `kind: generic` sources use a preset, this one is `{}`",
                    cfg.kind.as_str()
                )))
            }
            Some(name) => {
                let preset = generic::presets::get(name).map_err(SourceBuildError::Preset)?;
                cfg.mapping.over(&preset.mapping)
            }
        };
        let mapping = generic::Mapping::build(&mapping).map_err(SourceBuildError::Mapping)?;
        if cfg.config.is_some() && cfg.kind != SourceKind::Plugin {
            return Err(SourceBuildError::Config(cfg.kind.as_str()));
        }
        if cfg.sns.is_some() && cfg.kind != SourceKind::Sns {
            return Err(SourceBuildError::Sns(format!(
                "only `kind: sns` sources take `sns:` options, this one is `{}`",
                cfg.kind.as_str()
            )));
        }
        let sns = (cfg.kind == SourceKind::Sns)
            .then(|| sns::SnsReceiver::https(cfg.sns.as_ref()))
            .transpose()
            .map_err(SourceBuildError::Sns)?;
        if cfg.sentry.is_some() && cfg.kind != SourceKind::Sentry {
            return Err(SourceBuildError::Sentry(format!(
                "only `kind: sentry` sources take `sentry:` options, this one is `{}`",
                cfg.kind.as_str()
            )));
        }
        let sentry_base_url = match cfg.sentry.as_ref().and_then(|s| s.base_url.as_deref()) {
            None => None,
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                Some(u.trim_end_matches('/').to_string())
            }
            Some(u) => {
                return Err(SourceBuildError::Sentry(format!(
                    "base_url: `{u}` is not an http(s) URL"
                )))
            }
        };
        let senders = senders::SenderFilter::build(&cfg.allow_from, &cfg.trusted_proxies)
            .map_err(SourceBuildError::Senders)?;
        let own_delivery_id = cfg
            .delivery_id_header
            .as_deref()
            .map(|h| {
                actix_web::http::header::HeaderName::from_bytes(h.trim().as_bytes()).map_err(|_| {
                    SourceBuildError::DeliveryIdHeader(format!(
                        "`{h}` is not a valid HTTP header name"
                    ))
                })
            })
            .transpose()?;
        let redelivery = if let Some(name) = own_delivery_id {
            Some(Redelivery::header(name))
        } else if cfg.kind == SourceKind::Sentry {
            Some(Redelivery::sentry(sentry::REQUEST_ID_HEADER))
        } else if cfg.kind == SourceKind::Sns {
            Some(Redelivery::sns())
        } else if matches!(cfg.auth, Some(AuthConfig::StandardWebhooks { .. })) {
            Some(Redelivery::standard_webhooks())
        } else {
            None
        };
        let resolve_after = cfg
            .resolve_after
            .as_deref()
            .map(expiry::parse_resolve_after)
            .transpose()
            .map_err(SourceBuildError::ResolveAfter)?;
        let name: Arc<str> = cfg.name.as_str().into();
        let source_ref = SourceRef {
            name: name.clone(),
            kind: cfg.kind.as_str().into(),
        };
        Ok(SourceSpec {
            name,
            kind: cfg.kind,
            auth,
            labels: cfg.labels.clone(),
            default_severity,
            mapping,
            source_ref,
            plugin: None,
            plugin_config: cfg.config.clone().unwrap_or(serde_json::Value::Null),
            redelivery,
            sns,
            senders,
            sentry_base_url,
            resolve_after,
        })
    }

    /// A `kind: sns` source's receiver (it checks signatures and confirms subscriptions
    /// asynchronously: see [`sns::SnsReceiver::receive`]).
    pub fn sns(&self) -> Option<&sns::SnsReceiver> {
        self.sns.as_ref()
    }

    /// Connects a `kind: plugin` source to its loaded plugin.
    pub fn attach_plugin(&mut self, adapter: PluginAdapter) {
        self.plugin = Some(adapter);
    }

    /// The plugin of a `kind: plugin` source, once attached.
    pub fn plugin(&self) -> Option<&PluginAdapter> {
        self.plugin.as_ref()
    }

    /// The request's delivery id, for sources that drop redeliveries (sentry `Request-ID`).
    pub fn delivery_id(&self, headers: &HeaderMap) -> Option<String> {
        self.redelivery.as_ref()?.id(headers)
    }

    /// How long a recorded request id is remembered (see [`delivery_id`](Self::delivery_id)).
    pub fn redelivery_window(&self) -> Option<std::time::Duration> {
        self.redelivery.as_ref().map(|r| r.window)
    }

    /// Whether this source checks credentials at all (`auth:` set).
    pub fn has_auth(&self) -> bool {
        self.auth.is_some()
    }

    /// Refuses a sender outside the source's `allow_from` (see [`senders`]); `peer` is the
    /// connection's address. Ingest runs it first, on the headers.
    pub fn check_sender(
        &self,
        peer: Option<std::net::IpAddr>,
        headers: &HeaderMap,
    ) -> Result<(), senders::SenderError> {
        match &self.senders {
            None => Ok(()),
            Some(f) => f.check(peer, headers),
        }
    }

    /// What of [`authenticate`](Self::authenticate) needs no body (see
    /// [`Authenticator::verify_headers`]): ingest runs it before reading the body.
    pub fn authenticate_headers(
        &self,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<HeadersChecked, AuthError> {
        match &self.auth {
            None => Ok(HeadersChecked::no_credentials()),
            Some(a) => a.verify_headers(headers, now),
        }
    }

    /// What of [`authenticate`](Self::authenticate) needs the body, for a request whose
    /// headers passed [`authenticate_headers`](Self::authenticate_headers).
    pub fn authenticate_body(
        &self,
        checked: HeadersChecked,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        match &self.auth {
            None => Ok(()),
            Some(a) => a.verify_body(checked, headers, body, now),
        }
    }

    /// Checks a request's credentials or signature against the raw `body`. Sources without
    /// `auth:` accept every request.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        match &self.auth {
            None => Ok(()),
            Some(a) => a.verify(headers, body, now),
        }
    }

    /// The alerts a body carries (possibly none), for a request without headers.
    pub fn normalize(&self, body: &[u8], now: DateTime<Utc>) -> Result<Vec<Alert>, NormalizeError> {
        let mut alerts = self.normalize_request(&HeaderMap::new(), body, now)?;
        expiry::apply_default(&mut alerts, self.resolve_after, now);
        Ok(alerts)
    }

    /// The alerts a request carries (possibly none). `now` decides whether an Alertmanager
    /// API alert whose `endsAt` has passed is resolved; sentry reads `Sentry-Hook-Resource`.
    /// A plugin is called on this thread: the `SourceActor` uses [`PluginAdapter::normalize`]
    /// on the blocking pool instead.
    pub fn normalize_request(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<Alert>, NormalizeError> {
        match self.kind {
            SourceKind::Alertmanager => alertmanager::normalize(self, body, now),
            SourceKind::Generic => generic::normalize(self, body, now),
            SourceKind::Sns => sns::normalize(self, body),
            SourceKind::Grafana => grafana::normalize(self, body),
            SourceKind::Sentry => {
                let resource = headers
                    .get(sentry::RESOURCE_HEADER)
                    .and_then(|v| v.to_str().ok());
                sentry::normalize(self, resource, body)
            }
            SourceKind::Plugin => match &self.plugin {
                Some(p) => p.normalize_blocking(self, headers, body),
                None => Err(NormalizeError::Unsupported(SourceKind::Plugin)),
            },
        }
    }

    /// The `source` of this source's alerts.
    pub fn source_ref(&self) -> SourceRef {
        self.source_ref.clone()
    }

    /// Adds the source's labels underneath a payload's own labels (the payload's win).
    pub(crate) fn add_source_labels(&self, labels: &mut Labels) {
        for (k, v) in &self.labels {
            if !labels.contains_key(k) {
                labels.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::types::{AuthConfig, Secret};

    pub(crate) fn config(kind: SourceKind) -> SourceConfig {
        crate::sources::test_fixtures::source_config("src", kind)
    }

    #[test]
    fn build_defaults_and_errors() {
        let spec = SourceSpec::build(&config(SourceKind::Alertmanager)).unwrap();
        assert_eq!(spec.default_severity, Severity::Warning);
        assert_eq!(&*spec.name, "src");
        assert!(!spec.has_auth());
        assert_eq!(
            spec.source_ref(),
            SourceRef {
                name: "src".into(),
                kind: "alertmanager".into()
            }
        );

        let mut cfg = config(SourceKind::Generic);
        cfg.severity = Some("Critical".into());
        assert_eq!(
            SourceSpec::build(&cfg).unwrap().default_severity,
            Severity::Critical
        );
        cfg.severity = Some("loud".into());
        let err = SourceSpec::build(&cfg).unwrap_err();
        assert!(err.to_string().contains("`loud`"), "{err}");

        let mut cfg = config(SourceKind::Alertmanager);
        cfg.mapping.title = Some("/x".into());
        assert!(matches!(
            SourceSpec::build(&cfg),
            Err(SourceBuildError::Mapping(_))
        ));

        let mut cfg = config(SourceKind::Generic);
        cfg.auth = Some(AuthConfig::Bearer(Secret::new("")));
        let err = SourceSpec::build(&cfg).unwrap_err();
        assert!(err.to_string().starts_with("auth.bearer"), "{err}");
    }

    #[test]
    fn plugin_sources_without_their_plugin_do_not_normalize() {
        let spec = SourceSpec::build(&config(SourceKind::Plugin)).unwrap();
        assert_eq!(
            spec.normalize(b"{}", Utc::now()),
            Err(NormalizeError::Unsupported(SourceKind::Plugin))
        );
        let mut cfg = config(SourceKind::Generic);
        cfg.config = Some(serde_json::json!({"a": 1}));
        assert_eq!(
            SourceSpec::build(&cfg).unwrap_err(),
            SourceBuildError::Config("generic")
        );
    }

    #[test]
    fn sentry_sources_drop_redelivered_request_ids() {
        let spec = SourceSpec::build(&config(SourceKind::Sentry)).unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(spec.delivery_id(&headers), None);
        headers.insert(
            actix_web::http::header::HeaderName::from_static("request-id"),
            actix_web::http::header::HeaderValue::from_static("abc123"),
        );
        assert_eq!(spec.delivery_id(&headers).as_deref(), Some("abc123"));
        // Other kinds do not read the header.
        let am = SourceSpec::build(&config(SourceKind::Alertmanager)).unwrap();
        assert_eq!(am.delivery_id(&headers), None);
        // SNS: the message id, the same on each retry.
        let sns = SourceSpec::build(&config(SourceKind::Sns)).unwrap();
        assert_eq!(sns.delivery_id(&headers), None);
        headers.insert(
            actix_web::http::header::HeaderName::from_static("x-amz-sns-message-id"),
            actix_web::http::header::HeaderValue::from_static("e288882d-4281"),
        );
        assert_eq!(sns.delivery_id(&headers).as_deref(), Some("e288882d-4281"));
        // Any source can name its tool's header.
        let mut cfg = config(SourceKind::Generic);
        cfg.delivery_id_header = Some("X-GitHub-Delivery".into());
        let gh = SourceSpec::build(&cfg).unwrap();
        assert_eq!(gh.delivery_id(&headers), None);
        headers.insert(
            actix_web::http::header::HeaderName::from_static("x-github-delivery"),
            actix_web::http::header::HeaderValue::from_static("72d3162e"),
        );
        assert_eq!(gh.delivery_id(&headers).as_deref(), Some("72d3162e"));
        cfg.delivery_id_header = Some("Bad Header".into());
        assert!(matches!(
            SourceSpec::build(&cfg),
            Err(SourceBuildError::DeliveryIdHeader(_))
        ));
    }

    #[test]
    fn json_errors_carry_their_position_and_shape_errors_do_not() {
        let spec = SourceSpec::build(&config(SourceKind::Alertmanager)).unwrap();
        match spec.normalize(b"{\n  \"alerts\": [,]\n}", Utc::now()) {
            Err(NormalizeError::Json {
                line,
                column,
                message,
            }) => {
                assert_eq!((line, column), (2, 14));
                assert!(!message.contains("line"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            spec.normalize(b"", Utc::now()),
            Err(NormalizeError::Json { .. })
        ));
        assert!(matches!(
            spec.normalize(b"\"hello\"", Utc::now()),
            Err(NormalizeError::Shape(_))
        ));
    }

    #[test]
    fn sentry_base_url_points_issue_links_at_a_self_hosted_sentry() {
        let body = crate::sources::test_fixtures::fixture("sentry-issue-created-docs.json");
        let mut headers = HeaderMap::new();
        headers.insert(
            actix_web::http::header::HeaderName::from_static("sentry-hook-resource"),
            actix_web::http::header::HeaderValue::from_static("issue"),
        );
        let link_of = |cfg: &SourceConfig| {
            SourceSpec::build(cfg)
                .unwrap()
                .normalize_request(&headers, &body, Utc::now())
                .unwrap()
                .remove(0)
                .links
                .remove(0)
                .url
        };
        let mut cfg = config(SourceKind::Sentry);
        assert_eq!(link_of(&cfg), "https://sentry.io/issues/1170820242/");
        cfg.sentry = Some(crate::config::types::SentryConfig {
            base_url: Some("https://sentry.example.com/".into()),
        });
        assert_eq!(
            link_of(&cfg),
            "https://sentry.example.com/issues/1170820242/"
        );
        cfg.sentry = Some(crate::config::types::SentryConfig {
            base_url: Some("sentry.example.com".into()),
        });
        assert!(SourceSpec::build(&cfg)
            .unwrap_err()
            .to_string()
            .starts_with("sentry.base_url"));
        let mut other = config(SourceKind::Generic);
        other.sentry = cfg.sentry.clone();
        assert!(matches!(
            SourceSpec::build(&other),
            Err(SourceBuildError::Sentry(_))
        ));
    }

    #[test]
    fn authenticate_without_auth_accepts_everything() {
        let spec = SourceSpec::build(&config(SourceKind::Generic)).unwrap();
        assert_eq!(
            spec.authenticate(&HeaderMap::new(), b"x", Utc::now()),
            Ok(())
        );
    }
}

#[cfg(test)]
mod other_tools_tests;
