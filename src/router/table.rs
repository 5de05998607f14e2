//! The route table: the compiled routing tree of routes.yaml, and the function that picks the
//! endpoints of one event with Alertmanager's semantics (each route's time intervals: `intervals`).
//!
//! Routes are tried in order. A route matches when all of its matchers hold. When a matching
//! route has children, the children are tried the same way; if one of them matches, the
//! children decide, otherwise the route itself does. A route stops its siblings from being tried
//! unless it has `continue: true`. Children without `to` inherit their parent's. Events that no
//! top-level route matches go to `default`. Finally each endpoint's `events:` filter applies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::config::duration::{parse_duration, DurationError};
use crate::config::intervals::TimeInterval;
use crate::config::matcher::{Matcher, MatcherError};
use crate::config::types::RouteConfig;
use crate::model::{Event, EventType, Labels};
use crate::store::Routing;

/// Index of an endpoint in the runtime endpoint list.
pub type EndpointId = usize;

/// Why the route tree could not be built (config validation reports these with locations
/// first; this is the last line of defence).
#[derive(Debug, Error)]
pub enum RouteBuildError {
    #[error("route {route}: {source}")]
    Matcher {
        route: String,
        #[source]
        source: MatcherError,
    },
    #[error("route {route}: unknown endpoint `{endpoint}`")]
    UnknownEndpoint { route: String, endpoint: String },
    #[error("route {route}: {source}")]
    Duration {
        route: String,
        #[source]
        source: DurationError,
    },
}

/// Looks endpoint names up for a route (the route's name is for the error).
type Resolve<'a> = dyn Fn(&str, &[String]) -> Result<Vec<EndpointId>, RouteBuildError> + 'a;

/// What the route table needs to know of each endpoint.
#[derive(Debug, Clone)]
pub struct EndpointFilter {
    pub name: Arc<str>,
    /// The event types this endpoint takes; `None` takes every type.
    pub events: Option<Vec<EventType>>,
    /// `enabled: false`: the endpoint takes nothing.
    pub enabled: bool,
}

impl EndpointFilter {
    fn accepts(&self, event: EventType) -> bool {
        self.enabled
            && self
                .events
                .as_ref()
                .is_none_or(|types| types.contains(&event))
    }
}

#[derive(Debug, Clone)]
struct RouteNode {
    name: Arc<str>,
    matchers: Vec<Matcher>,
    /// Own or inherited endpoints.
    to: Vec<EndpointId>,
    continue_: bool,
    children: Vec<RouteNode>,
    /// Own or inherited grouping; None: events go out on their own.
    grouping: Option<Arc<Grouping>>,
    /// Own or inherited `mute_time_intervals` and `active_time_intervals`.
    timing: Arc<RouteIntervals>,
    /// A route without grouping: its `repeat_interval` (own or inherited), if set.
    reminder: Option<Duration>,
}

/// The default `group_wait` (Alertmanager's).
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// The default `group_interval` (Alertmanager's).
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The default `repeat_interval` of a grouped route (Alertmanager's).
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// Longest group key kept as written; a longer one is `route:<sha256 of the key>`.
pub const MAX_GROUP_KEY_BYTES: usize = 512;

/// A route's timings as written (own or inherited), before defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Timing {
    wait: Option<Duration>,
    interval: Option<Duration>,
    repeat: Option<Duration>,
}

/// How a grouped route groups and paces its notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    /// The names whose values make the group key; None: every label (`['...']`).
    pub by: Option<Vec<String>>,
    pub wait: Duration,
    pub interval: Duration,
    pub repeat: Duration,
}

/// A group an event joins: routed by a grouped route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupTarget {
    /// The route's name.
    pub route: Arc<str>,
    /// `route:{name="value",...}`, the `group_by` values sorted by name.
    pub key: String,
    /// The `group_by` values.
    pub labels: Labels,
    /// The endpoints that take `group.notification`.
    pub endpoints: Vec<Arc<str>>,
    pub grouping: Arc<Grouping>,
}

impl GroupTarget {
    fn of(
        route: Arc<str>,
        grouping: Arc<Grouping>,
        event: &Event,
        endpoints: Vec<Arc<str>>,
    ) -> Self {
        let labels: Labels = match &grouping.by {
            None => event.incident.labels.clone(),
            Some(names) => names
                .iter()
                .map(|n| (n.clone(), field(event, n).to_string()))
                .collect(),
        };
        let inner = labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut key = format!("{route}:{{{inner}}}");
        if key.len() > MAX_GROUP_KEY_BYTES {
            // A key that long (many or long labels) is kept as its digest.
            use sha2::Digest as _;
            key = format!(
                "{route}:{}",
                hex::encode(sha2::Sha256::digest(key.as_bytes()))
            );
        }
        GroupTarget {
            key,
            route,
            labels,
            endpoints,
            grouping,
        }
    }
}

/// One route of [`RouteTable::tree`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouteView {
    pub name: String,
    /// Each matcher as written back (`name="value"`).
    pub matchers: Vec<String>,
    /// Its own or inherited endpoints.
    pub to: Vec<String>,
    #[serde(rename = "continue")]
    pub continue_: bool,
    /// How it groups notifications (`group_by` and its timings), if it does.
    pub grouping: Option<String>,
    pub routes: Vec<RouteView>,
}

/// The outcome of routing one event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteDecision {
    /// Endpoints that receive the event, each once, in first-matched order.
    pub endpoints: Vec<EndpointId>,
    /// Names of the routes that decided (empty when `default` applied or nothing matched).
    pub routes: Vec<Arc<str>>,
    /// True when no route matched and `default` applied.
    pub defaulted: bool,
    /// The groups the event joins (grouped routes that decided; their endpoints are not in
    /// `endpoints`).
    pub groups: Vec<GroupTarget>,
    /// Routes with time intervals that decided: their endpoints (as routed, before the
    /// endpoints' `events:` filters) and intervals.
    pub timed: Vec<(Vec<EndpointId>, Arc<RouteIntervals>)>,
    /// Endpoints routed by a route without time intervals (or by `default`).
    pub untimed: Vec<EndpointId>,
    /// Routes without grouping that set `repeat_interval` and decided: their endpoints and
    /// how often an open, unacknowledged incident is reminded.
    pub reminders: Vec<(Vec<EndpointId>, Duration)>,
}

/// The compiled routing tree.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<RouteNode>,
    default: Vec<EndpointId>,
    endpoints: Vec<EndpointFilter>,
    /// `time_intervals:` by name.
    intervals: HashMap<String, Arc<TimeInterval>>,
}

impl RouteTable {
    /// Compiles the `routes:` tree and `default:` against the endpoint list.
    pub fn build(
        routes: &[RouteConfig],
        default: &[String],
        endpoints: Vec<EndpointFilter>,
    ) -> Result<RouteTable, RouteBuildError> {
        let resolve = |route: &str, names: &[String]| -> Result<Vec<EndpointId>, RouteBuildError> {
            names
                .iter()
                .map(|n| {
                    endpoints
                        .iter()
                        .position(|e| &*e.name == n.as_str())
                        .ok_or_else(|| RouteBuildError::UnknownEndpoint {
                            route: route.to_string(),
                            endpoint: n.clone(),
                        })
                })
                .collect()
        };
        fn build_level(
            configs: &[RouteConfig],
            inherited: &[EndpointId],
            inherited_by: Option<&Option<Vec<String>>>,
            inherited_timing: Timing,
            inherited_intervals: &Arc<RouteIntervals>,
            path: &str,
            resolve: &Resolve<'_>,
        ) -> Result<Vec<RouteNode>, RouteBuildError> {
            let mut nodes = Vec::with_capacity(configs.len());
            for (i, cfg) in configs.iter().enumerate() {
                let name: Arc<str> = match &cfg.name {
                    Some(n) => n.as_str().into(),
                    None => format!("{path}{i}").into(),
                };
                let matchers = cfg
                    .matchers
                    .iter()
                    .map(|m| Matcher::parse(m))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|source| RouteBuildError::Matcher {
                        route: name.to_string(),
                        source,
                    })?;
                let to = match &cfg.to {
                    Some(names) => resolve(&name, names)?,
                    None => inherited.to_vec(),
                };
                let duration =
                    |d: &Option<String>, up: Option<Duration>| match d {
                        Some(t) => parse_duration(t).map(Some).map_err(|source| {
                            RouteBuildError::Duration {
                                route: name.to_string(),
                                source,
                            }
                        }),
                        None => Ok(up),
                    };
                let timing = Timing {
                    wait: duration(&cfg.group_wait, inherited_timing.wait)?,
                    interval: duration(&cfg.group_interval, inherited_timing.interval)?,
                    repeat: duration(&cfg.repeat_interval, inherited_timing.repeat)?,
                };
                // `group_by` as written or inherited: None (not grouped), Some(None) (every
                // label), Some(Some(names)).
                let own_by = cfg.group_by.as_ref().map(|names| {
                    if names.iter().any(|n| n == "...") {
                        None
                    } else {
                        Some(names.clone())
                    }
                });
                let by = match (&own_by, cfg.group_by.as_ref()) {
                    (_, Some(names)) if names.is_empty() => None,
                    (Some(b), _) => Some(b.clone()),
                    (None, _) => inherited_by.cloned(),
                };
                let grouping = by.as_ref().map(|by| {
                    Arc::new(Grouping {
                        by: by.clone(),
                        wait: timing.wait.unwrap_or(DEFAULT_GROUP_WAIT),
                        interval: timing.interval.unwrap_or(DEFAULT_GROUP_INTERVAL),
                        repeat: timing.repeat.unwrap_or(DEFAULT_REPEAT_INTERVAL),
                    })
                });
                let intervals = match (&cfg.mute_time_intervals, &cfg.active_time_intervals) {
                    (None, None) => inherited_intervals.clone(),
                    (mute, active) => Arc::new(RouteIntervals {
                        mute: mute
                            .clone()
                            .unwrap_or_else(|| inherited_intervals.mute.clone()),
                        active: active
                            .clone()
                            .unwrap_or_else(|| inherited_intervals.active.clone()),
                    }),
                };
                let children = build_level(
                    &cfg.routes,
                    &to,
                    by.as_ref(),
                    timing,
                    &intervals,
                    &format!("{name}."),
                    resolve,
                )?;
                nodes.push(RouteNode {
                    name,
                    matchers,
                    to,
                    continue_: cfg.continue_,
                    children,
                    reminder: if grouping.is_none() {
                        timing.repeat
                    } else {
                        None
                    },
                    grouping,
                    timing: intervals,
                });
            }
            Ok(nodes)
        }
        let none = Arc::new(RouteIntervals::default());
        let routes = build_level(
            routes,
            &[],
            None,
            Timing::default(),
            &none,
            "route#",
            &resolve,
        )?;
        let default = resolve("default", default)?;
        Ok(RouteTable {
            routes,
            default,
            endpoints,
            intervals: HashMap::new(),
        })
    }

    /// Whether any route without grouping reminds (`repeat_interval`).
    pub fn has_reminders(&self) -> bool {
        fn any(nodes: &[RouteNode]) -> bool {
            nodes
                .iter()
                .any(|n| n.reminder.is_some() || any(&n.children))
        }
        any(&self.routes)
    }

    /// The endpoints that take `event`'s reminders (those of its reminding routes that take
    /// `incident.reminder`) and how often, if any route reminds it.
    pub fn reminder_of(&self, event: &Event) -> Option<(Vec<Arc<str>>, Duration)> {
        let d = self.route(event);
        let every = d.reminders.iter().map(|(_, e)| *e).min()?;
        let mut endpoints: Vec<Arc<str>> = Vec::new();
        for (ids, _) in &d.reminders {
            for e in ids.iter().filter_map(|&id| self.endpoints.get(id)) {
                if e.accepts(EventType::Reminder) && !endpoints.contains(&e.name) {
                    endpoints.push(e.name.clone());
                }
            }
        }
        Some((endpoints, every))
    }

    /// A table with no routes, no default and no endpoints: it routes nothing.
    pub fn empty() -> RouteTable {
        RouteTable {
            routes: Vec::new(),
            default: Vec::new(),
            endpoints: Vec::new(),
            intervals: HashMap::new(),
        }
    }

    /// The route tree as the config has it (inherited `to` filled in), for the console.
    pub fn tree(&self) -> Vec<RouteView> {
        fn level(nodes: &[RouteNode], table: &RouteTable) -> Vec<RouteView> {
            nodes
                .iter()
                .map(|n| RouteView {
                    name: n.name.to_string(),
                    matchers: n.matchers.iter().map(|m| m.to_string()).collect(),
                    to: table.names(&n.to),
                    continue_: n.continue_,
                    grouping: n.grouping.as_ref().map(|g| {
                        format!(
                            "group_by [{}], wait {}s, interval {}s, repeat {}s",
                            g.by.as_ref()
                                .map(|b| b.join(", "))
                                .unwrap_or_else(|| "...".into()),
                            g.wait.as_secs(),
                            g.interval.as_secs(),
                            g.repeat.as_secs()
                        )
                    }),
                    routes: level(&n.children, table),
                })
                .collect()
        }
        level(&self.routes, self)
    }

    /// The endpoints of `default:`.
    pub fn default_endpoints(&self) -> Vec<String> {
        self.names(&self.default)
    }

    fn names(&self, ids: &[EndpointId]) -> Vec<String> {
        ids.iter()
            .filter_map(|&id| self.endpoints.get(id).map(|e| e.name.to_string()))
            .collect()
    }

    /// Whether any route groups (`group_by`).
    pub fn has_groups(&self) -> bool {
        fn any(nodes: &[RouteNode]) -> bool {
            nodes
                .iter()
                .any(|n| n.grouping.is_some() || any(&n.children))
        }
        any(&self.routes)
    }

    /// The endpoint list this table routes to.
    pub fn endpoints(&self) -> &[EndpointFilter] {
        &self.endpoints
    }

    /// The names of the endpoints of one event.
    pub fn endpoint_names(&self, event: &Event) -> Vec<Arc<str>> {
        self.route(event)
            .endpoints
            .into_iter()
            .filter_map(|id| self.endpoints.get(id))
            .map(|e| e.name.clone())
            .collect()
    }

    /// Picks the endpoints of one event.
    pub fn route(&self, event: &Event) -> RouteDecision {
        let mut decision = RouteDecision::default();
        let mut raw = Vec::new();
        let mut grouped = Vec::new();
        let matched = route_level(&self.routes, event, &mut raw, &mut grouped, &mut decision);
        if !matched {
            decision.defaulted = !self.default.is_empty();
            raw.extend_from_slice(&self.default);
            decision.untimed.extend_from_slice(&self.default);
        }
        for node in grouped {
            let Some(grouping) = &node.grouping else {
                continue;
            };
            let mut endpoints: Vec<Arc<str>> = Vec::new();
            for e in node.to.iter().filter_map(|&id| self.endpoints.get(id)) {
                if e.accepts(EventType::GroupNotification) && !endpoints.contains(&e.name) {
                    endpoints.push(e.name.clone());
                }
            }
            decision.groups.push(GroupTarget::of(
                node.name.clone(),
                grouping.clone(),
                event,
                endpoints,
            ));
        }
        for id in raw {
            if !decision.endpoints.contains(&id)
                && self
                    .endpoints
                    .get(id)
                    .is_some_and(|e| e.accepts(event.kind))
            {
                decision.endpoints.push(id);
            }
        }
        decision
    }
}

/// Tries one level of siblings; returns whether any matched. Routes that decide add their
/// endpoints to `out`, or themselves to `grouped` when they group.
fn route_level<'a>(
    nodes: &'a [RouteNode],
    event: &Event,
    out: &mut Vec<EndpointId>,
    grouped: &mut Vec<&'a RouteNode>,
    decision: &mut RouteDecision,
) -> bool {
    let mut any = false;
    for node in nodes {
        if !node
            .matchers
            .iter()
            .all(|m| m.matches(field(event, &m.name)))
        {
            continue;
        }
        any = true;
        if !route_level(&node.children, event, out, grouped, decision) {
            if node.grouping.is_some() {
                grouped.push(node);
            } else {
                out.extend_from_slice(&node.to);
                if let Some(every) = node.reminder {
                    decision.reminders.push((node.to.clone(), every));
                }
                if node.timing.is_empty() {
                    decision.untimed.extend_from_slice(&node.to);
                } else {
                    decision.timed.push((node.to.clone(), node.timing.clone()));
                }
            }
            decision.routes.push(node.name.clone());
        }
        if !node.continue_ {
            break;
        }
    }
    any
}

/// The value a matcher name addresses: one of the event's fields, else a label ("" if none).
pub fn field<'a>(event: &'a Event, name: &str) -> &'a str {
    let inc = &event.incident;
    match name {
        "severity" => inc.severity.as_str(),
        "status" => inc.status.as_str(),
        "source" => &event.source.name,
        "kind" => &event.source.kind,
        "title" => &inc.title,
        "event" => event.kind.as_str(),
        label => inc.labels.get(label).map(String::as_str).unwrap_or(""),
    }
}

impl Routing for RouteTable {
    fn endpoints_of(&self, event: &Event) -> Vec<Arc<str>> {
        self.endpoint_names(event)
    }
}

mod intervals;
pub use intervals::{IntervalHold, RouteIntervals};

#[cfg(test)]
mod tests;
