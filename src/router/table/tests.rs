//! Route table tests: Alertmanager semantics, fields, filters, grouping.
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
    let routes = routes_json(serde_json::json!([{"matchers": ["team=\"ops\""], "to": ["ops"]}]));
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

#[test]
fn time_intervals_are_inherited_and_hold_their_routes_endpoints_only() {
    use crate::config::intervals::TimeInterval;
    use crate::config::types::{TimeIntervalConfig, TimeIntervalSpec, TimeRangeConfig};
    let routes = routes_json(serde_json::json!([
        {"name": "office", "to": ["pager"], "active_time_intervals": ["hours"], "continue": true,
         "routes": [{"name": "child", "matchers": ["team=\"ops\""]}]},
        {"name": "night", "to": ["chat"], "mute_time_intervals": ["hours"]}
    ]));
    let hours = TimeInterval::build(&TimeIntervalConfig {
        name: "hours".into(),
        time_intervals: vec![TimeIntervalSpec {
            times: vec![TimeRangeConfig {
                start_time: "09:00".into(),
                end_time: "17:00".into(),
            }],
            ..Default::default()
        }],
    })
    .unwrap();
    let table = RouteTable::build(&routes, &[], endpoints(&["pager", "chat"]))
        .unwrap()
        .with_time_intervals(vec![hours]);
    assert!(table.has_intervals());
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let e = event(EventType::Created, Severity::Critical, &[("team", "ops")]);
    let d = table.route(&e);
    assert_eq!(d.routes.len(), 2, "the child decides for office");
    // At 10:00 the office route is active, the night route muted: chat is held.
    let (held, hold) = table
        .held_by_intervals(&d, at("2026-05-04T10:00:00Z"))
        .unwrap();
    assert_eq!(
        names(
            &table,
            &RouteDecision {
                endpoints: held,
                ..Default::default()
            }
        ),
        ["chat"]
    );
    assert_eq!(hold.names, ["hours"]);
    assert_eq!(hold.until, Some(at("2026-05-04T17:00:00Z")));
    // At 20:00 the office route (inherited by its child) is out of its active interval.
    let (held, hold) = table
        .held_by_intervals(&d, at("2026-05-04T20:00:00Z"))
        .unwrap();
    assert_eq!(
        names(
            &table,
            &RouteDecision {
                endpoints: held,
                ..Default::default()
            }
        ),
        ["pager"]
    );
    assert_eq!(hold.until, Some(at("2026-05-05T09:00:00Z")));
    assert!(table
        .intervals_of("child")
        .is_some_and(|i| i.active == ["hours"]));
}
