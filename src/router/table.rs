//! The route table: the compiled routing tree of routes.yaml, and the function that picks the
//! endpoints of one event with Alertmanager's semantics.
//!
//! Routes are tried in order. A route matches when all of its matchers hold. When a matching
//! route has children, the children are tried the same way; if one of them matches, the
//! children decide, otherwise the route itself does. A route stops its siblings from being tried
//! unless it has `continue: true`. Children without `to` inherit their parent's. Events that no
//! top-level route matches go to `default`. Finally each endpoint's `events:` filter applies.

use std::sync::Arc;

use thiserror::Error;

use crate::config::matcher::{Matcher, MatcherError};
use crate::config::types::RouteConfig;
use crate::model::{Event, EventType};
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
}

/// The compiled routing tree.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<RouteNode>,
    default: Vec<EndpointId>,
    endpoints: Vec<EndpointFilter>,
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
                let children = build_level(&cfg.routes, &to, &format!("{name}."), resolve)?;
                nodes.push(RouteNode {
                    name,
                    matchers,
                    to,
                    continue_: cfg.continue_,
                    children,
                });
            }
            Ok(nodes)
        }
        let routes = build_level(routes, &[], "route#", &resolve)?;
        let default = resolve("default", default)?;
        Ok(RouteTable {
            routes,
            default,
            endpoints,
        })
    }

    /// A table with no routes, no default and no endpoints: it routes nothing.
    pub fn empty() -> RouteTable {
        RouteTable {
            routes: Vec::new(),
            default: Vec::new(),
            endpoints: Vec::new(),
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
        let matched = route_level(&self.routes, event, &mut raw, &mut decision.routes);
        if !matched {
            decision.defaulted = !self.default.is_empty();
            raw.extend_from_slice(&self.default);
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

/// Tries one level of siblings; returns whether any matched.
fn route_level(
    nodes: &[RouteNode],
    event: &Event,
    out: &mut Vec<EndpointId>,
    names: &mut Vec<Arc<str>>,
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
        if !route_level(&node.children, event, out, names) {
            out.extend_from_slice(&node.to);
            names.push(node.name.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Severity, SourceRef};

    fn event(kind: EventType, severity: Severity, labels: &[(&str, &str)]) -> Event {
        let mut e = crate::model::test_event("inc_1", kind);
        e.source = SourceRef {
            name: "prometheus".into(),
            kind: "alertmanager".into(),
        };
        e.incident.severity = severity;
        e.incident.title = "Disk full".into();
        e.incident.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        e
    }

    fn routes_json(value: serde_json::Value) -> Vec<RouteConfig> {
        serde_json::from_value(value).unwrap()
    }

    fn endpoints(names: &[&str]) -> Vec<EndpointFilter> {
        names
            .iter()
            .map(|n| EndpointFilter {
                name: (*n).into(),
                enabled: true,
                events: None,
            })
            .collect()
    }

    fn names(table: &RouteTable, d: &RouteDecision) -> Vec<String> {
        d.endpoints
            .iter()
            .map(|&i| table.endpoints()[i].name.to_string())
            .collect()
    }

    #[test]
    fn the_tree_shows_each_route_with_its_inherited_endpoints() {
        let routes = routes_json(serde_json::json!([
            {"name": "db", "matchers": ["service=~\"db-.*\""], "to": ["slack"], "continue": true,
             "routes": [{"matchers": ["severity=\"critical\""]}]},
        ]));
        let table =
            RouteTable::build(&routes, &["itsm".into()], endpoints(&["slack", "itsm"])).unwrap();
        let tree = table.tree();
        assert_eq!(tree.len(), 1);
        assert_eq!(tree[0].matchers, vec![r#"service=~"db-.*""#.to_string()]);
        assert!(tree[0].continue_);
        assert_eq!(tree[0].routes[0].name, "db.0");
        assert_eq!(tree[0].routes[0].to, vec!["slack".to_string()]);
        assert_eq!(table.default_endpoints(), vec!["itsm".to_string()]);
        assert!(RouteTable::empty().tree().is_empty());
    }

    #[test]
    fn first_match_wins_unless_continue() {
        let routes = routes_json(serde_json::json!([
            {"name": "db", "matchers": ["severity=~\"critical|error\"", "service=~\"db-.*\""], "to": ["slack"]},
            {"name": "all", "matchers": [], "to": ["itsm"]}
        ]));
        let table = RouteTable::build(&routes, &[], endpoints(&["slack", "itsm"])).unwrap();
        let db = event(
            EventType::Created,
            Severity::Critical,
            &[("service", "db-main")],
        );
        assert_eq!(names(&table, &table.route(&db)), vec!["slack"]);
        let web = event(
            EventType::Created,
            Severity::Critical,
            &[("service", "web")],
        );
        assert_eq!(names(&table, &table.route(&web)), vec!["itsm"]);

        let mut routes = routes;
        routes[0].continue_ = true;
        let table = RouteTable::build(&routes, &[], endpoints(&["slack", "itsm"])).unwrap();
        assert_eq!(names(&table, &table.route(&db)), vec!["slack", "itsm"]);
    }

    #[test]
    fn children_decide_and_inherit_to() {
        let routes = routes_json(serde_json::json!([
            {"matchers": ["team=\"ops\""], "to": ["ops"], "routes": [
                {"matchers": ["severity=\"critical\""], "to": ["pager"]},
                {"matchers": ["env=\"prod\""]}
            ]}
        ]));
        let table = RouteTable::build(
            &routes,
            &["fallback".into()],
            endpoints(&["ops", "pager", "fallback"]),
        )
        .unwrap();
        let crit = event(EventType::Created, Severity::Critical, &[("team", "ops")]);
        assert_eq!(names(&table, &table.route(&crit)), vec!["pager"]);
        let prod = event(
            EventType::Created,
            Severity::Warning,
            &[("team", "ops"), ("env", "prod")],
        );
        assert_eq!(
            names(&table, &table.route(&prod)),
            vec!["ops"],
            "child inherits `to`"
        );
        let other = event(EventType::Created, Severity::Info, &[("team", "ops")]);
        assert_eq!(
            names(&table, &table.route(&other)),
            vec!["ops"],
            "parent decides"
        );
        let stranger = event(EventType::Created, Severity::Info, &[("team", "web")]);
        let d = table.route(&stranger);
        assert!(d.defaulted);
        assert_eq!(names(&table, &d), vec!["fallback"]);
    }

    #[test]
    fn no_default_drops_unmatched_events() {
        let routes =
            routes_json(serde_json::json!([{"matchers": ["team=\"ops\""], "to": ["ops"]}]));
        let table = RouteTable::build(&routes, &[], endpoints(&["ops"])).unwrap();
        let d = table.route(&event(EventType::Created, Severity::Info, &[]));
        assert!(d.endpoints.is_empty() && !d.defaulted);
    }

    #[test]
    fn fields_address_event_and_source() {
        let routes = routes_json(serde_json::json!([{"matchers": [
            "event=\"incident.resolved\"", "source=\"prometheus\"", "kind=\"alertmanager\"",
            "title=~\"Disk.*\"", "status=\"triggered\""], "to": ["a"]}]));
        let table = RouteTable::build(&routes, &[], endpoints(&["a"])).unwrap();
        assert_eq!(
            table
                .route(&event(EventType::Resolved, Severity::Info, &[]))
                .endpoints,
            vec![0]
        );
        assert!(table
            .route(&event(EventType::Created, Severity::Info, &[]))
            .endpoints
            .is_empty());
    }

    #[test]
    fn fields_win_over_labels_of_the_same_name() {
        // Labels named like fields, with other values: matchers see the fields.
        let labels = [
            ("severity", "info"),
            ("status", "resolved"),
            ("source", "grafana"),
            ("kind", "generic"),
            ("title", "Other"),
            ("event", "incident.resolved"),
        ];
        let e = event(EventType::Created, Severity::Critical, &labels);
        for (field, value, label_value) in [
            ("severity", "critical", "info"),
            ("status", "triggered", "resolved"),
            ("source", "prometheus", "grafana"),
            ("kind", "alertmanager", "generic"),
            ("title", "Disk full", "Other"),
            ("event", "incident.created", "incident.resolved"),
        ] {
            assert_eq!(super::field(&e, field), value);
            let by_field = routes_json(
                serde_json::json!([{"matchers": [format!("{field}=\"{value}\"")], "to": ["a"]}]),
            );
            let table = RouteTable::build(&by_field, &[], endpoints(&["a"])).unwrap();
            assert_eq!(
                table.route(&e).endpoints,
                vec![0],
                "{field} matches the field"
            );
            let by_label = routes_json(
                serde_json::json!([{"matchers": [format!("{field}=\"{label_value}\"")], "to": ["a"]}]),
            );
            let table = RouteTable::build(&by_label, &[], endpoints(&["a"])).unwrap();
            assert!(
                table.route(&e).endpoints.is_empty(),
                "{field} does not match the label's value"
            );
        }
        // Any other name is a label.
        let e = event(EventType::Created, Severity::Critical, &[("team", "db")]);
        let routes = routes_json(serde_json::json!([{"matchers": ["team=\"db\""], "to": ["a"]}]));
        let table = RouteTable::build(&routes, &[], endpoints(&["a"])).unwrap();
        assert_eq!(table.route(&e).endpoints, vec![0]);
    }

    #[test]
    fn endpoint_event_filter_and_dedup() {
        let routes = routes_json(serde_json::json!([{"to": ["a", "b", "a"]}]));
        let mut eps = endpoints(&["a", "b"]);
        eps[1].events = Some(vec![EventType::Created]);
        let table = RouteTable::build(&routes, &[], eps).unwrap();
        assert_eq!(
            table
                .route(&event(EventType::Created, Severity::Info, &[]))
                .endpoints,
            vec![0, 1]
        );
        assert_eq!(
            table
                .route(&event(EventType::Resolved, Severity::Info, &[]))
                .endpoints,
            vec![0]
        );
    }

    #[test]
    fn unknown_endpoint_is_refused() {
        let routes = routes_json(serde_json::json!([{"to": ["nope"]}]));
        assert!(matches!(
            RouteTable::build(&routes, &[], endpoints(&["a"])),
            Err(RouteBuildError::UnknownEndpoint { .. })
        ));
    }
}
