//! `route-test`: a payload through a source's adapter, the incident table and the routes,
//! without a server and without sending anything; each alert's event and the endpoints it
//! would reach, its groups, and whether a silence, an inhibition or a time interval would
//! hold it at the moment tested ([`HoldContext`]). The CLI runs it on the config file (its
//! `silences:`; `--at` for another moment), the console on the running config (with the
//! silences in force).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::holding::inhibit::InhibitRule;
use crate::holding::silences::Silence;
use crate::holding::{decide, Cause, Holding};
use crate::store::documents::MemoryDocuments;
use crate::store::timers::MemoryTimers;

use crate::model::{AlertStatus, Event};
use crate::router::table::RouteTable;
use crate::sources::{NormalizeError, SourceSpec};
use crate::store::leases::LeaseOffer;
use crate::store::memory::MemoryStore;
use crate::store::IncidentStore;

#[derive(Debug, Error)]
pub enum RouteTestError {
    #[error("no source named `{0}` in the config (sources: {1})")]
    UnknownSource(String, String),
    #[error("the `{source_name}` adapter refused the payload: {error}")]
    Adapter {
        source_name: String,
        error: NormalizeError,
    },
    #[error("incident store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot start a runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// What `route-test` prints, and whether `--expect` held.
#[derive(Debug)]
pub struct RouteTestReport {
    pub text: String,
    /// Every endpoint any alert reached, sorted.
    pub endpoints: BTreeSet<String>,
    pub expectation_met: bool,
}

/// What may hold the tested events: the moment, the silences and the inhibit rules.
#[derive(Debug, Clone)]
pub struct HoldContext {
    pub at: DateTime<Utc>,
    pub silences: Vec<Silence>,
    pub inhibit_rules: Vec<InhibitRule>,
}

impl HoldContext {
    /// Now, with nothing but the route table's time intervals.
    pub fn now() -> HoldContext {
        HoldContext {
            at: Utc::now(),
            silences: Vec::new(),
            inhibit_rules: Vec::new(),
        }
    }
}

/// Runs `body` through source `source` at `ctx.at`. A resolved or acknowledged alert is
/// tested against an open incident (as if its firing alert had come first), so it shows the
/// event it would emit. An alert of the payload that matches an inhibit rule's sources
/// inhibits the later ones.
pub fn route_test(
    sources: &[Arc<SourceSpec>],
    routes: &RouteTable,
    ctx: &HoldContext,
    source: &str,
    body: &[u8],
    expect: Option<&[String]>,
) -> Result<RouteTestReport, RouteTestError> {
    let spec = sources.iter().find(|s| &*s.name == source).ok_or_else(|| {
        RouteTestError::UnknownSource(
            source.to_string(),
            sources
                .iter()
                .map(|s| s.name.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )
    })?;
    let now = ctx.at;
    let alerts = spec
        .normalize(body, now)
        .map_err(|error| RouteTestError::Adapter {
            source_name: source.to_string(),
            error,
        })?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let holding = Holding::new(
        Arc::new(MemoryDocuments::default()),
        Arc::new(MemoryTimers::default()),
    );
    holding.set_static_silences(ctx.silences.clone());
    holding.set_inhibit_rules(ctx.inhibit_rules.clone());
    runtime.block_on(holding.refresh_silences(now))?;
    let view = holding.view(now, Default::default());
    // Incident ids of this test's alerts, to name an inhibiting one.
    let mut alert_of: std::collections::HashMap<String, usize> = Default::default();
    let mut text = String::new();
    let mut all = BTreeSet::new();
    let _ = writeln!(text, "{} alert(s) from source `{source}`", alerts.len());
    for (i, alert) in alerts.iter().enumerate() {
        let store = MemoryStore::new();
        let event = runtime.block_on(async {
            if alert.status != AlertStatus::Firing {
                let mut firing = alert.clone();
                firing.status = AlertStatus::Firing;
                store
                    .record(&[firing], now, routes, &mut LeaseOffer::none())
                    .await?;
            }
            let rec = store
                .record(
                    std::slice::from_ref(alert),
                    now,
                    routes,
                    &mut LeaseOffer::none(),
                )
                .await?;
            Ok::<Option<std::sync::Arc<Event>>, RouteTestError>(
                rec.recorded.into_iter().next().and_then(|r| r.event),
            )
        })?;
        let labels: Vec<String> = alert
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        let _ = writeln!(
            text,
            "\nalert {}: [{}] {} {:?}\n  dedup_key: {}\n  labels: {{{}}}",
            i + 1,
            alert.status.as_str(),
            alert.severity,
            alert.title,
            alert.dedup_key,
            labels.join(", ")
        );
        let Some(event) = event else {
            let _ = writeln!(text, "  event: none");
            continue;
        };
        let decision = routes.route(&event);
        let names: Vec<String> = decision
            .endpoints
            .iter()
            .filter_map(|&id| routes.endpoints().get(id).map(|e| e.name.to_string()))
            .collect();
        let _ = writeln!(text, "  event: {}", event.kind);
        let how = if decision.defaulted {
            "default".to_string()
        } else if decision.routes.is_empty() {
            "no route matched, no default: dropped".to_string()
        } else {
            decision
                .routes
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(text, "  routes: {how}");
        let _ = writeln!(
            text,
            "  endpoints: {}",
            if names.is_empty() {
                "(none)".to_string()
            } else {
                names.join(", ")
            }
        );
        for g in &decision.groups {
            let _ = writeln!(text, "  group: {} (route {})", g.key, g.route);
        }
        alert_of.insert(event.incident.id.clone(), i + 1);
        view.note_source(&event);
        let (_, held) = decide(routes, &view, &event, false);
        match held {
            None => {
                let _ = writeln!(text, "  held: no");
            }
            Some(h) => {
                let why: Vec<String> = h
                    .causes
                    .iter()
                    .map(|c| match c {
                        Cause::Silence(id) => format!("silenced by {id}"),
                        Cause::Inhibition(id) => match alert_of.get(id) {
                            Some(n) => format!("inhibited by alert {n}"),
                            None => format!("inhibited by {id}"),
                        },
                        Cause::Interval(name) => format!("time interval {name}"),
                    })
                    .collect();
                let eps: Vec<&str> = h.endpoints.iter().map(|e| &**e).collect();
                let _ = writeln!(
                    text,
                    "  held: {} (endpoints {}){}",
                    why.join(", "),
                    eps.join(", "),
                    h.until
                        .map(|t| format!(" until {}", t.to_rfc3339()))
                        .unwrap_or_default()
                );
            }
        }
        all.extend(names);
    }
    let mut expectation_met = true;
    if let Some(expect) = expect {
        let want: BTreeSet<String> = expect
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        expectation_met = want == all;
        let _ = writeln!(
            text,
            "\nexpected endpoints: {}\nactual endpoints:   {}\n{}",
            join(&want),
            join(&all),
            if expectation_met { "OK" } else { "MISMATCH" }
        );
    }
    Ok(RouteTestReport {
        text,
        endpoints: all,
        expectation_met,
    })
}

fn join(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "(none)".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}
