//! Fixtures of tools without a built-in adapter (tests/fixtures/payloads/SOURCES.md §3-4),
//! run through `kind: generic` with the `mapping` a user would write for each. CloudWatch via
//! SNS is not here: its alarm is a JSON *string* inside the envelope, which a JSON pointer
//! cannot reach (a plugin's job).

use chrono::Utc;

use super::{test_fixtures, SourceSpec};
use crate::config::types::{MappingConfig, SourceConfig, SourceKind};
use crate::model::{Alert, AlertStatus, Link, Severity};
use test_fixtures::source_config;

fn spec(mapping: &[(&str, &str)]) -> SourceSpec {
    SourceSpec::build(&SourceConfig {
        mapping: MappingConfig::pointers(mapping).unwrap(),
        ..source_config("tool", SourceKind::Generic)
    })
    .unwrap()
}

fn one(spec: &SourceSpec, fixture: &str) -> Alert {
    let mut alerts = spec
        .normalize(&test_fixtures::fixture(fixture), Utc::now())
        .unwrap();
    assert_eq!(alerts.len(), 1, "{fixture}");
    alerts.remove(0)
}

#[test]
fn pagerduty_events_v2_trigger_acknowledge_resolve() {
    let s = spec(&[
        ("title", "/payload/summary"),
        ("severity", "/payload/severity"),
        ("status", "/event_action"),
        ("source", "/payload/source"),
    ]);
    let t = one(&s, "pagerduty-events-v2-trigger.json");
    assert_eq!(t.dedup_key, "srv01/mysql");
    assert_eq!(t.status, AlertStatus::Firing);
    assert_eq!(t.severity, Severity::Critical);
    assert_eq!(
        t.title,
        "DISK at 99% on machine prod-datapipe03.example.com"
    );
    assert_eq!(t.labels["source"], "prod-datapipe03.example.com");
    assert_eq!(
        t.links,
        vec![Link {
            label: "An example link.".into(),
            url: "http://pagerduty.example.com".into()
        }]
    );
    let a = one(&s, "pagerduty-events-v2-acknowledge.json");
    assert_eq!(
        (a.dedup_key.as_str(), a.status),
        ("dedupkeyhere", AlertStatus::Acknowledged)
    );
    let r = one(&s, "pagerduty-events-v2-resolve.json");
    assert_eq!(
        (r.dedup_key.as_str(), r.status),
        ("dedupkeyhere", AlertStatus::Resolved)
    );
}

#[test]
fn zabbix_problem_and_ok() {
    let s = spec(&[("title", "/trigger"), ("dedup_key", "/item")]);
    let p = one(&s, "zabbix-problem-zulip-template.json");
    assert_eq!(p.status, AlertStatus::Firing);
    assert_eq!(p.severity, Severity::Warning, "Zabbix `Average`");
    assert_eq!(
        p.title,
        "Zabbix agent on www.example.com is unreachable for 5 minutes"
    );
    assert_eq!(p.dedup_key, "Agent ping is Up (1)");
    assert_eq!(
        p.links[0].url,
        "https://zabbix.example.com/tr_events.php?triggerid=14032&eventid=10528"
    );
    let ok = one(&s, "zabbix-ok-zulip-template.json");
    assert_eq!(ok.status, AlertStatus::Resolved);
    assert_eq!(ok.dedup_key, p.dedup_key);
}

#[test]
fn uptimerobot_down_and_up() {
    let s = spec(&[
        ("title", "/monitor_friendly_name"),
        ("status", "/alert_type_friendly_name"),
        ("description", "/alert_details"),
        ("dedup_key", "/monitor_url"),
    ]);
    let d = one(&s, "uptimerobot-monitor-down-zulip-template.json");
    assert_eq!(d.status, AlertStatus::Firing);
    assert_eq!(d.title, "Web Server");
    assert_eq!(d.description, "Host Is Unreachable");
    assert_eq!(d.dedup_key, "server1.example.com");
    let u = one(&s, "uptimerobot-monitor-up-zulip-template.json");
    assert_eq!(u.status, AlertStatus::Resolved);
    assert_eq!(u.dedup_key, "server2.example.com");
}

#[test]
fn azure_monitor_common_schema() {
    let s = spec(&[
        ("title", "/data/essentials/alertRule"),
        ("status", "/data/essentials/monitorCondition"),
        ("severity", "/data/essentials/severity"),
        ("dedup_key", "/data/essentials/alertId"),
        ("source", "/data/essentials/monitoringService"),
    ]);
    let r = one(&s, "azure-monitor-common-schema-metric-resolved.json");
    assert_eq!(r.status, AlertStatus::Resolved);
    assert_eq!(r.title, "WCUS-R2-Gen2");
    assert!(r
        .dedup_key
        .ends_with("/alerts/b9569717-bc32-442f-add5-83a997729330"));
    assert_eq!(r.labels["source"], "Platform");
    let f = one(&s, "azure-monitor-common-schema-resourcehealth-fired.json");
    assert_eq!(f.status, AlertStatus::Firing);
    assert_eq!(f.title, "test-ResourceHealthAlertRule");
    assert_eq!(f.severity, Severity::Info, "Sev4");
}
