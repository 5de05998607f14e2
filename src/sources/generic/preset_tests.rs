//! Every preset with the real bodies of its tool (tests/fixtures/payloads, see SOURCES.md):
//! the alert a user would expect, and fire then resolve where the tool resolves.

use chrono::Utc;
use serde_json::{json, Value};

use crate::config::types::{SourceConfig, SourceKind};
use crate::model::{Alert, AlertStatus, Severity};
use crate::sources::test_fixtures::{fixture, source_config};
use crate::sources::SourceSpec;

fn preset(name: &str) -> SourceSpec {
    SourceSpec::build(&SourceConfig {
        preset: Some(name.into()),
        ..source_config(name, SourceKind::Generic)
    })
    .unwrap()
}

fn alerts(spec: &SourceSpec, body: &[u8]) -> Vec<Alert> {
    spec.normalize(body, Utc::now()).unwrap()
}

fn one(spec: &SourceSpec, name: &str) -> Alert {
    let mut v = alerts(spec, &fixture(name));
    assert_eq!(v.len(), 1, "{name}");
    v.remove(0)
}

/// A fixture with one JSON pointer's value replaced (the tool sends the same shape).
fn with(name: &str, pointer: &str, value: Value) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
    *v.pointer_mut(pointer).unwrap() = value;
    serde_json::to_vec(&v).unwrap()
}

/// A fixture with a top-level field added (a field the recommended template sends).
fn plus(name: &str, key: &str, value: Value) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
    v[key] = value;
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn azure_monitor_common_schema() {
    let s = preset("azure-monitor");
    let r = one(&s, "azure-monitor-common-schema-metric-resolved.json");
    assert_eq!(r.status, AlertStatus::Resolved);
    assert_eq!(r.title, "WCUS-R2-Gen2");
    assert_eq!(r.severity, Severity::Info, "Sev3");
    assert!(r
        .dedup_key
        .ends_with("/alerts/b9569717-bc32-442f-add5-83a997729330"));
    assert_eq!(r.labels["signal_type"], "Metric");
    assert_eq!(r.labels["configuration_item"], "wcus-r2-gen2");
    assert_eq!(r.labels["source"], "Platform");
    assert_eq!(
        r.started_at.map(|t| t.to_rfc3339()),
        Some("2019-03-22T13:58:24.371321300+00:00".into())
    );
    // The same alert fired: same key, so Resolved resolves it.
    let fired = with(
        "azure-monitor-common-schema-metric-resolved.json",
        "/data/essentials/monitorCondition",
        json!("Fired"),
    );
    let f = alerts(&s, &fired).remove(0);
    assert_eq!(
        (f.status, &f.dedup_key),
        (AlertStatus::Firing, &r.dedup_key)
    );
    let h = one(&s, "azure-monitor-common-schema-resourcehealth-fired.json");
    assert_eq!(h.status, AlertStatus::Firing);
    assert_eq!(h.title, "test-ResourceHealthAlertRule");
    assert_eq!(h.severity, Severity::Info, "Sev4");
}

#[test]
fn pingdom_down_then_up() {
    let s = preset("pingdom");
    let d = one(&s, "pingdom-http-up-to-down.json");
    assert_eq!(d.status, AlertStatus::Firing);
    assert_eq!(d.title, "Test check");
    assert_eq!(d.description, "Non-recoverable failure in name resolution");
    assert_eq!(d.dedup_key, "2048467");
    assert_eq!(d.labels["check_type"], "HTTP");
    assert_eq!(d.labels["hostname"], "someurl.com");
    assert_eq!(d.links[0].url, "http://someurl.com/");
    assert_eq!(d.started_at.map(|t| t.timestamp()), Some(1457939434));
    let u = one(&s, "pingdom-imap-down-to-up.json");
    assert_eq!(
        (u.status, u.dedup_key.as_str()),
        (AlertStatus::Resolved, "2051859")
    );
    // The same check coming back up resolves its incident.
    let up = with(
        "pingdom-http-up-to-down.json",
        "/current_state",
        json!("UP"),
    );
    let u = alerts(&s, &up).remove(0);
    assert_eq!(
        (u.status, u.dedup_key),
        (AlertStatus::Resolved, d.dedup_key)
    );
}

#[test]
fn splunk_search_alert() {
    let s = preset("splunk");
    let a = one(&s, "splunk-search-one-result.json");
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.title, "sudo");
    assert_eq!(a.dedup_key, "sudo");
    assert!(a.description.contains("session closed for user root"));
    assert_eq!(a.labels["host"], "myserver");
    assert_eq!(a.labels["app"], "search");
    assert_eq!(a.labels["sourcetype"], "syslog");
    assert_eq!(a.links[0].label, "Search results");
    assert!(a.links[0]
        .url
        .starts_with("http://example.com:8000/app/search/search?q="));
    assert_eq!(a.started_at.map(|t| t.timestamp()), Some(1483557272));
}

#[test]
fn newrelic_workflow_default_payload() {
    let s = preset("newrelic");
    let c = one(&s, "newrelic-workflow-default-created.json");
    assert_eq!(c.status, AlertStatus::Firing);
    assert_eq!(c.severity, Severity::Critical);
    assert_eq!(c.dedup_key, "208c5e92-f250-40be-b7c2-50508c268c15");
    assert_eq!(
        c.title,
        "MAIN-APP-UBUNTU query result is > 2.0 for 1 minutes on 'High CPU'"
    );
    assert_eq!(c.labels["policy"], "Golden Signals");
    assert_eq!(c.labels["condition"], "High CPU");
    assert_eq!(c.labels["entity"], "MAIN-APP-UBUNTU");
    assert_eq!(c.links[0].label, "New Relic issue");
    assert_eq!(
        c.started_at.map(|t| t.timestamp_millis()),
        Some(1713767789495)
    );
    let a = one(&s, "newrelic-workflow-default-acknowledged.json");
    assert_eq!(
        (a.status, a.severity),
        (AlertStatus::Firing, Severity::Error)
    );
    let closed = one(&s, "newrelic-workflow-default-closed.json");
    assert_eq!(closed.status, AlertStatus::Resolved);
    // The created issue closing: same id, resolved.
    let close = with(
        "newrelic-workflow-default-created.json",
        "/state",
        json!("CLOSED"),
    );
    let r = alerts(&s, &close).remove(0);
    assert_eq!(
        (r.status, r.dedup_key),
        (AlertStatus::Resolved, c.dedup_key)
    );
}

#[test]
fn github_actions_workflow_runs() {
    let s = preset("github-actions");
    let ok = one(&s, "github-workflow-run-completed-success.json");
    assert_eq!(ok.status, AlertStatus::Resolved);
    assert_eq!(ok.title, "test");
    assert_eq!(ok.dedup_key, "2823525");
    assert_eq!(ok.labels["repository"], "octo-org/octo-repo");
    assert_eq!(ok.labels["branch"], "master");
    assert_eq!(
        ok.links[0].url,
        "https://github.com/octo-org/octo-repo/actions/runs/289782451"
    );
    assert_eq!(
        ok.description,
        "build(test): check workflow run event payload"
    );
    // The same run failing fires the workflow's incident, which the success resolves.
    let failed = with(
        "github-workflow-run-completed-success.json",
        "/workflow_run/conclusion",
        json!("failure"),
    );
    let f = alerts(&s, &failed).remove(0);
    assert_eq!(
        (f.status, &f.dedup_key),
        (AlertStatus::Firing, &ok.dedup_key)
    );
    // Requested runs, and GitHub's ping when the hook is made, make no alert.
    assert!(alerts(&s, &fixture("github-workflow-run-requested.json")).is_empty());
    assert!(alerts(&s, &fixture("github-ping.json")).is_empty());
    let cancelled = with(
        "github-workflow-run-completed-success.json",
        "/workflow_run/conclusion",
        json!("cancelled"),
    );
    assert!(alerts(&s, &cancelled).is_empty());
}

#[test]
fn zabbix_problem_then_ok() {
    let s = preset("zabbix");
    // The recommended template adds `trigger_id` ({TRIGGER.ID}) to Zulip's.
    let p = alerts(
        &s,
        &plus(
            "zabbix-problem-zulip-template.json",
            "trigger_id",
            json!("14032"),
        ),
    )
    .remove(0);
    assert_eq!(p.status, AlertStatus::Firing);
    assert_eq!(p.severity, Severity::Warning, "Average");
    assert_eq!(
        p.title,
        "Zabbix agent on www.example.com is unreachable for 5 minutes"
    );
    assert_eq!(p.dedup_key, "14032");
    assert_eq!(p.labels["host"], "www.example.com");
    assert_eq!(p.links[0].label, "Zabbix event");
    let ok = alerts(
        &s,
        &plus(
            "zabbix-ok-zulip-template.json",
            "trigger_id",
            json!("14032"),
        ),
    )
    .remove(0);
    assert_eq!(
        (ok.status, ok.dedup_key),
        (AlertStatus::Resolved, p.dedup_key)
    );
    // Zulip's template as it is: no trigger id, so the key falls back to a hash of the
    // title (which differs between PROBLEM and OK) and the labels.
    let bare_p = one(&s, "zabbix-problem-zulip-template.json");
    let bare_ok = one(&s, "zabbix-ok-zulip-template.json");
    assert_ne!(bare_p.dedup_key, bare_ok.dedup_key);
}

#[test]
fn uptimerobot_down_then_up() {
    let s = preset("uptimerobot");
    let d = one(&s, "uptimerobot-monitor-down-zulip-template.json");
    assert_eq!(d.status, AlertStatus::Firing);
    assert_eq!(d.title, "Web Server");
    assert_eq!(d.description, "Host Is Unreachable");
    assert_eq!(d.labels["monitor_url"], "server1.example.com");
    let u = one(&s, "uptimerobot-monitor-up-zulip-template.json");
    assert_eq!(
        (u.status, u.title.as_str()),
        (AlertStatus::Resolved, "Mail Server")
    );
    // With the recommended template's monitor id, Up resolves Down's incident.
    let down = plus(
        "uptimerobot-monitor-down-zulip-template.json",
        "monitor_id",
        json!(777),
    );
    let up = with(
        "uptimerobot-monitor-down-zulip-template.json",
        "/alert_type",
        json!("2"),
    );
    let mut up: Value = serde_json::from_slice(&up).unwrap();
    up["monitor_id"] = json!(777);
    let d = alerts(&s, &down).remove(0);
    let u = alerts(&s, &serde_json::to_vec(&up).unwrap()).remove(0);
    assert_eq!(d.dedup_key, "777");
    assert_eq!(
        (u.status, u.dedup_key),
        (AlertStatus::Resolved, d.dedup_key)
    );
}

#[test]
fn every_preset_has_a_test_here() {
    let this = include_str!("preset_tests.rs");
    for name in super::presets::names() {
        assert!(
            this.contains(&format!("preset(\"{name}\")")),
            "preset `{name}` has no fixture test in preset_tests.rs"
        );
    }
}

#[test]
fn gcp_monitoring_open_then_closed() {
    let s = preset("gcp-monitoring");
    let o = one(&s, "gcp-monitoring-uptime-open.json");
    assert_eq!(o.status, AlertStatus::Firing);
    assert_eq!(o.title, "api - noc - users");
    assert_eq!(o.dedup_key, "0.ligwyr056k2l");
    assert_eq!(
        o.description,
        "An uptime check on Uptime Check URL labels {host=MYHOST} is failing."
    );
    assert_eq!(o.labels["host"], "MYHOST");
    assert_eq!(o.labels["resource_type"], "uptime_url");
    assert_eq!(
        o.labels["condition"],
        "Uptime Health Check on api-noc-users"
    );
    assert_eq!(o.links[0].label, "Cloud Monitoring incident");
    assert_eq!(o.started_at.map(|t| t.timestamp()), Some(1579559444));
    let c = one(&s, "gcp-monitoring-uptime-closed.json");
    assert_eq!(
        (c.status, &c.dedup_key),
        (AlertStatus::Resolved, &o.dedup_key)
    );
    assert_eq!(c.title, o.title, "the same title: no incident.updated");
}

#[test]
fn honeycomb_trigger() {
    let s = preset("honeycomb");
    let t = one(&s, "honeycomb-trigger-triggered.json");
    assert_eq!(t.status, AlertStatus::Firing);
    assert_eq!(t.title, "trig on ttt");
    assert_eq!(
        t.description,
        "Currently greater than threshold value (2) for foo:fooOOOddd (value 5)"
    );
    assert_eq!(t.labels["trigger"], "trig on ttt");
    // This body has no trigger id: the key is a hash of the name and labels, the same for
    // the trigger's OK.
    let ok = alerts(
        &s,
        &with("honeycomb-trigger-triggered.json", "/status", json!("OK")),
    )
    .remove(0);
    assert_eq!(
        (ok.status, &ok.dedup_key),
        (AlertStatus::Resolved, &t.dedup_key)
    );
    // With an id (newer bodies), the id is the key.
    let with_id = alerts(
        &s,
        &plus("honeycomb-trigger-triggered.json", "id", json!("aBcD1")),
    )
    .remove(0);
    assert_eq!(with_id.dedup_key, "aBcD1");
}

#[test]
fn bitbucket_build_status() {
    let s = preset("bitbucket-pipelines");
    let ok = one(&s, "bitbucket-commit-status-successful.json");
    assert_eq!(ok.status, AlertStatus::Resolved);
    assert_eq!(ok.title, "kolaszek/repository-name");
    assert_eq!(ok.description, "Unit Tests (Python)");
    assert_eq!(ok.dedup_key, "{59005838-3978-410b-84fd-8b4ce1b41089}");
    assert_eq!(ok.labels["build_key"], "mybuildtool");
    assert_eq!(
        ok.links[0].url,
        "https://my-build-tool.com/builds/MY-PROJECT/BUILD-777"
    );
    let failed = with(
        "bitbucket-commit-status-successful.json",
        "/commit_status/state",
        json!("FAILED"),
    );
    let f = alerts(&s, &failed).remove(0);
    assert_eq!(
        (f.status, &f.dedup_key),
        (AlertStatus::Firing, &ok.dedup_key)
    );
    let running = with(
        "bitbucket-commit-status-successful.json",
        "/commit_status/state",
        json!("INPROGRESS"),
    );
    assert!(alerts(&s, &running).is_empty());
}

#[test]
fn dynatrace_problem_open_then_resolved() {
    let s = preset("dynatrace");
    // Dynatrace's "Send test notification" body (placeholders it does not fill stay as sent).
    let o = one(&s, "dynatrace-test-notification.json");
    assert_eq!(o.status, AlertStatus::Firing);
    assert_eq!(o.title, "Dynatrace problem notification test run");
    assert_eq!(o.dedup_key, "TESTID");
    assert_eq!(o.labels["entity"], "Test run");
    let r = alerts(
        &s,
        &with(
            "dynatrace-test-notification.json",
            "/State",
            json!("RESOLVED"),
        ),
    )
    .remove(0);
    assert_eq!(
        (r.status, &r.dedup_key),
        (AlertStatus::Resolved, &o.dedup_key)
    );
    let sev = alerts(
        &s,
        &plus(
            "dynatrace-test-notification.json",
            "ProblemSeverity",
            json!("AVAILABILITY"),
        ),
    )
    .remove(0);
    assert_eq!(sev.severity, Severity::Critical);
    let tagged = alerts(
        &s,
        &with(
            "dynatrace-test-notification.json",
            "/Tags",
            json!("env:prod, team:payments, critical-path"),
        ),
    )
    .remove(0);
    assert_eq!(tagged.labels["env"], "prod");
    assert_eq!(tagged.labels["team"], "payments");
}

#[test]
fn datadog_triggered_then_recovered() {
    let s = preset("datadog");
    // A real pair captured in 2015 from a payload of $ALERT_TRANSITION, $EVENT_TITLE,
    // $EVENT_MSG, $DATE, $TAGS, $LINK (no $ALERT_CYCLE_KEY: see below).
    let t = one(&s, "datadog-webhook-triggered.json");
    assert_eq!(t.status, AlertStatus::Firing);
    assert_eq!(
        t.title,
        "[Triggered on {host:i-3b93aafb}] Dock is almost out of memory..."
    );
    assert!(t.description.contains("system.mem.usable"));
    assert_eq!(t.labels["host"], "i-3b93aafb");
    assert_eq!(t.labels["role"], "dock");
    assert_eq!(t.labels["event_type"], "metric_alert_monitor");
    assert_eq!(t.links[0].label, "Datadog");
    assert_eq!(
        t.started_at.map(|t| t.timestamp_millis()),
        Some(1448435530000)
    );
    let r = one(&s, "datadog-webhook-recovered.json");
    assert_eq!(r.status, AlertStatus::Resolved);
    // Without the cycle key the titles (which differ) make the keys: the recommended
    // payload's alert_cycle_key pairs them.
    assert_ne!(t.dedup_key, r.dedup_key);
    let t = alerts(
        &s,
        &plus(
            "datadog-webhook-triggered.json",
            "alert_cycle_key",
            json!("c-309811"),
        ),
    )
    .remove(0);
    let r = alerts(
        &s,
        &plus(
            "datadog-webhook-recovered.json",
            "alert_cycle_key",
            json!("c-309811"),
        ),
    )
    .remove(0);
    assert_eq!(t.dedup_key, "c-309811");
    assert_eq!(
        (r.status, &r.dedup_key),
        (AlertStatus::Resolved, &t.dedup_key)
    );
    let p1 = alerts(
        &s,
        &plus(
            "datadog-webhook-triggered.json",
            "alert_priority",
            json!("P1"),
        ),
    )
    .remove(0);
    assert_eq!(p1.severity, Severity::Critical);
    let no_data = with(
        "datadog-webhook-triggered.json",
        "/alert_transition",
        json!("No Data"),
    );
    assert!(alerts(&s, &no_data).is_empty());
}

#[test]
fn appdynamics_health_rule_violation_started_then_ended() {
    let s = preset("appdynamics");
    let name = "appdynamics-health-rule-violation-started-cloudforet.json";
    let o = one(&s, name);
    assert_eq!(o.status, AlertStatus::Firing);
    assert_eq!(o.title, "Business Transaction Health");
    assert_eq!(
        o.description,
        "AppDynamics has detected a problem with Business xxxxxx."
    );
    assert_eq!(o.severity, Severity::Critical, "ERROR");
    assert_eq!(o.dedup_key, "70646", "the violation's incident id");
    assert_eq!(o.labels["application"], "MyApp");
    assert_eq!(o.labels["tier"], "MyTier");
    assert_eq!(o.labels["policy"], "JAVA alert");
    assert_eq!(o.labels["event_type"], "POLICY_OPEN_CRITICAL");
    assert_eq!(o.links[0].label, "AppDynamics");
    assert!(o.links[0].url.contains("#location=APP_EVENT_"));
    // The violation continuing, downgraded: still firing, same incident, severity follows.
    for (event, sev) in [
        ("POLICY_CONTINUES_CRITICAL", "ERROR"),
        ("POLICY_DOWNGRADED", "WARN"),
    ] {
        let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
        v["event_type"] = json!(event);
        v["severity"] = json!(sev);
        let c = alerts(&s, &serde_json::to_vec(&v).unwrap()).remove(0);
        assert_eq!(
            (c.status, &c.dedup_key),
            (AlertStatus::Firing, &o.dedup_key)
        );
    }
    // Ended or canceled: resolves the same incident.
    for event in ["POLICY_CLOSE_CRITICAL", "POLICY_CANCELED_WARNING"] {
        let e = alerts(&s, &with(name, "/event_type", json!(event))).remove(0);
        assert_eq!(
            (e.status, &e.dedup_key),
            (AlertStatus::Resolved, &o.dedup_key),
            "{event}"
        );
    }
    // An event that is not a health rule violation (the template leaves out the incident
    // fields): fires, keyed by its summary and labels, and is not refused for its word.
    let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
    for k in [
        "health_rule_id",
        "health_rule_name",
        "incident_id",
        "incident_name",
    ] {
        v.as_object_mut().unwrap().remove(k);
    }
    v["event_type"] = json!("APPLICATION_ERROR");
    let a = alerts(&s, &serde_json::to_vec(&v).unwrap()).remove(0);
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.title, o.description, "the summary, with no health rule");
    assert_ne!(a.dedup_key, o.dedup_key);
}

#[test]
fn betterstack_incident_started_acknowledged_resolved() {
    let s = preset("betterstack");
    let name = "betterstack-incident-acknowledged-docs.json";
    let a = one(&s, name);
    assert_eq!(a.status, AlertStatus::Acknowledged);
    assert_eq!(a.title, "Tesla.com homepage");
    assert_eq!(a.description, "Error 500");
    assert_eq!(a.dedup_key, "1", "the incident's id");
    assert_eq!(a.labels["monitor_id"], "4");
    assert_eq!(a.labels["http_method"], "get");
    assert_eq!(
        (a.links[0].label.as_str(), a.links[0].url.as_str()),
        ("Monitored URL", "https://tesla.com")
    );
    assert_eq!(
        a.started_at.map(|t| t.to_rfc3339()),
        Some("2020-10-21T10:51:28.151+00:00".into())
    );
    // The same incident started, then resolved.
    for (event, status) in [
        ("started", AlertStatus::Firing),
        ("reopened", AlertStatus::Firing),
        ("resolved", AlertStatus::Resolved),
    ] {
        let x = alerts(&s, &with(name, "/event", json!(event))).remove(0);
        assert_eq!((x.status, &x.dedup_key), (status, &a.dedup_key), "{event}");
    }
    // A comment on the incident makes no alert.
    assert!(alerts(&s, &with(name, "/event", json!("comment"))).is_empty());
}

#[test]
fn elastic_kibana_rule_alert_active_then_recovered() {
    let s = preset("elastic-kibana");
    let name = "elastic-kibana-webhook-template-active.json";
    let a = one(&s, name);
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.title, "name-of-alert");
    assert!(a.description.starts_with("Document count is 12"));
    assert_eq!(a.dedup_key, "1:host-1", "{{rule.id}}:{{alert.id}}");
    assert_eq!(a.labels["alert_id"], "host-1");
    assert_eq!(a.labels["space"], "test1");
    assert!(a.labels.contains_key("tag-A") && a.labels.contains_key("tag-B"));
    assert_eq!(a.links[0].label, "Kibana rule");
    assert!(a.links[0].url.ends_with("/triggersActions/rule/1"));
    // Every rule type names its active group differently; all fire.
    for group in [
        "threshold met",
        "metrics.threshold.fired",
        "custom_threshold.fired",
    ] {
        let g = alerts(&s, &with(name, "/action_group", json!(group))).remove(0);
        assert_eq!(
            (g.status, &g.dedup_key),
            (AlertStatus::Firing, &a.dedup_key)
        );
    }
    let r = alerts(&s, &with(name, "/action_group", json!("recovered"))).remove(0);
    assert_eq!(
        (r.status, &r.dedup_key),
        (AlertStatus::Resolved, &a.dedup_key)
    );
}
