//! The Alertmanager adapter (`kind: alertmanager`).
//!
//! It reads both bodies Prometheus-world tools send:
//! - the webhook receiver body (version 4): `{version, status, receiver, alerts: [...],
//!   groupLabels, commonLabels, externalURL, ...}`, whose alerts carry `status` and (since
//!   Alertmanager 0.19) `fingerprint`;
//! - the `POST /api/v2/alerts` body Prometheus sends to Alertmanager: a JSON array of
//!   `{labels, annotations, startsAt, endsAt, generatorURL}`, without status: an alert is
//!   resolved when its `endsAt` has passed.
//!
//! The body is parsed once, into typed structs that borrow from it where they can. Unknown
//! fields are ignored and optional ones may be missing or `null`.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Datelike, Utc};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{fingerprint, NormalizeError, SourceSpec};
use crate::model::{Alert, AlertStatus, Labels, Link, Severity};

/// A JSON string that borrows from the body unless it has escapes.
#[derive(Debug, Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

impl Str<'_> {
    fn non_empty<'s>(s: &'s Option<Str<'_>>) -> Option<&'s str> {
        s.as_ref().map(|s| s.0.as_ref()).filter(|s| !s.is_empty())
    }
}

/// The webhook receiver body; every field but `alerts` and `truncatedAlerts` is ignored.
#[derive(Debug, Deserialize)]
struct Webhook<'a> {
    #[serde(borrow)]
    alerts: Vec<AmAlert<'a>>,
    /// Alerts Alertmanager left out of this body (`max_alerts`); they cannot be recovered.
    #[serde(default, rename = "truncatedAlerts")]
    truncated_alerts: Option<u64>,
}

/// One alert, of either body.
#[derive(Debug, Deserialize)]
struct AmAlert<'a> {
    #[serde(default, borrow)]
    status: Option<Str<'a>>,
    #[serde(default)]
    labels: Option<Labels>,
    #[serde(default)]
    annotations: Option<Labels>,
    #[serde(default, borrow, rename = "startsAt")]
    starts_at: Option<Str<'a>>,
    #[serde(default, borrow, rename = "endsAt")]
    ends_at: Option<Str<'a>>,
    #[serde(default, borrow, rename = "generatorURL")]
    generator_url: Option<Str<'a>>,
    #[serde(default, borrow)]
    fingerprint: Option<Str<'a>>,
}

/// Which body it was.
enum Body<'a> {
    Webhook(Webhook<'a>),
    Alerts(Vec<AmAlert<'a>>),
}

const EXPECTED: &str = "an object with an `alerts` array or an array of alerts";

impl<'de: 'a, 'a> Deserialize<'de> for Body<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BodyVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for BodyVisitor<'a> {
            type Value = Body<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Body<'a>, A::Error> {
                Webhook::deserialize(MapAccessDeserializer::new(map)).map(Body::Webhook)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Body<'a>, A::Error> {
                Vec::<AmAlert<'a>>::deserialize(SeqAccessDeserializer::new(seq)).map(Body::Alerts)
            }
        }

        d.deserialize_any(BodyVisitor(PhantomData))
    }
}

/// Parses an RFC 3339 time; Go's zero time (`0001-01-01T00:00:00Z`, "not set") and
/// unreadable values give `None`.
fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(s?.trim()).ok()?.to_utc();
    (t.year() > 1).then_some(t)
}

/// Normalizes an Alertmanager webhook or `POST /api/v2/alerts` body.
pub fn normalize(
    spec: &SourceSpec,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<Alert>, NormalizeError> {
    let body: Body<'_> = serde_json::from_slice(body).map_err(NormalizeError::from_json)?;
    let (alerts, api) = match body {
        Body::Webhook(w) => {
            if let Some(n) = w.truncated_alerts.filter(|n| *n > 0) {
                tracing::warn!(
                    source = %spec.name,
                    truncated = n,
                    "Alertmanager truncated this group: {n} alert(s) were not sent (raise max_alerts on the webhook_config)"
                );
            }
            (w.alerts, false)
        }
        Body::Alerts(a) => (a, true),
    };
    alerts
        .into_iter()
        .enumerate()
        .map(|(i, a)| convert(spec, i, a, now, api))
        .collect()
}

/// One alert. `api`: it came on the API path (from Prometheus, which sends a firing alert
/// again every `--rules.alert.resend-delay` with a later `endsAt`), so a firing alert's
/// `endsAt` is when it expires. A webhook's `endsAt` is not: Alertmanager notifies again only
/// at its `repeat_interval`, and sends the resolve itself.
fn convert(
    spec: &SourceSpec,
    index: usize,
    a: AmAlert<'_>,
    now: DateTime<Utc>,
    api: bool,
) -> Result<Alert, NormalizeError> {
    let mut labels = a.labels.unwrap_or_default();
    let annotations = a.annotations.unwrap_or_default();

    let dedup_key = match Str::non_empty(&a.fingerprint) {
        Some(fp) => fp.to_string(),
        None => fingerprint::fingerprint_hex(&labels),
    };
    let started_at = parse_time(Str::non_empty(&a.starts_at));
    let ended_at = parse_time(Str::non_empty(&a.ends_at));

    let status = match Str::non_empty(&a.status) {
        Some(s) if s.eq_ignore_ascii_case("firing") => AlertStatus::Firing,
        Some(s) if s.eq_ignore_ascii_case("resolved") => AlertStatus::Resolved,
        Some(other) => {
            return Err(NormalizeError::Shape(format!(
                "alerts[{index}].status: unknown status `{other}` (expected firing or resolved)"
            )))
        }
        // The API body has no status: Alertmanager treats an alert as resolved once its
        // endsAt has passed.
        None => match ended_at {
            Some(end) if end <= now => AlertStatus::Resolved,
            _ => AlertStatus::Firing,
        },
    };

    let severity = labels
        .get("severity")
        .and_then(|s| Severity::from_word(s))
        .unwrap_or(spec.default_severity);

    let non_empty = |m: &Labels, k: &str| m.get(k).filter(|v| !v.is_empty()).cloned();
    let title = non_empty(&annotations, "summary")
        .or_else(|| non_empty(&labels, "alertname"))
        .unwrap_or_else(|| "alert".to_string());
    let description = non_empty(&annotations, "description")
        .or_else(|| non_empty(&annotations, "message"))
        .unwrap_or_default();

    let mut links = Vec::new();
    if let Some(url) = Str::non_empty(&a.generator_url) {
        links.push(Link {
            label: "Source".into(),
            url: url.to_string(),
        });
    }
    if let Some(url) = non_empty(&annotations, "runbook_url") {
        links.push(Link {
            label: "Runbook".into(),
            url,
        });
    }
    if let Some(url) =
        non_empty(&annotations, "dashboard_url").or_else(|| non_empty(&annotations, "dashboard"))
    {
        links.push(Link {
            label: "Dashboard".into(),
            url,
        });
    }

    spec.add_source_labels(&mut labels);
    Ok(Alert {
        dedup_key,
        status,
        severity,
        title,
        description,
        labels,
        annotations,
        links,
        started_at,
        ended_at,
        expires_at: ended_at.filter(|end| api && status == AlertStatus::Firing && *end > now),
        source: spec.source_ref(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::types::{SourceConfig, SourceKind};
    use crate::sources::test_fixtures::{fixture, source_config};
    use std::collections::BTreeMap;

    fn spec() -> SourceSpec {
        SourceSpec::build(&SourceConfig {
            labels: BTreeMap::from([
                ("team".to_string(), "platform".to_string()),
                ("severity".to_string(), "info".to_string()),
            ]),
            severity: Some("error".into()),
            ..source_config("prometheus", SourceKind::Alertmanager)
        })
        .unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn now() -> DateTime<Utc> {
        t("2026-11-22T10:30:00Z")
    }

    fn run(name: &str) -> Vec<Alert> {
        spec().normalize(&fixture(name), now()).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn link(label: &str, url: &str) -> Link {
        Link {
            label: label.into(),
            url: url.into(),
        }
    }

    /// Every alertmanager-*.json fixture has a hand-written expectation below.
    const COVERED: [&str; 8] = [
        "alertmanager-api-v2-alerts-official-ha-example.json",
        "alertmanager-api-v2-alerts-prometheus-captured.json",
        "alertmanager-webhook-firing-alertmanager-bot.json",
        "alertmanager-webhook-firing-multi-alert-fingerprint.json",
        "alertmanager-webhook-firing-nested-route.json",
        "alertmanager-webhook-resolved-alertmanager-bot.json",
        "alertmanager-webhook-resolved-fingerprint.json",
        "alertmanager-webhook-resolved-notification-reason.json",
    ];

    #[test]
    fn every_alertmanager_fixture_is_covered() {
        assert_eq!(
            crate::sources::test_fixtures::fixture_names("alertmanager-"),
            COVERED
        );
    }

    #[test]
    fn webhook_firing_alertmanager_bot() {
        let alerts = run("alertmanager-webhook-firing-alertmanager-bot.json");
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.title, "Fire");
        assert_eq!(a.description, "Something is on fire");
        // No `fingerprint` in this 2018 body: computed from the labels.
        let own = labels(&[("alertname", "Fire"), ("severity", "critical")]);
        assert_eq!(a.dedup_key, fingerprint::fingerprint_hex(&own));
        assert_eq!(
            a.labels,
            labels(&[
                ("alertname", "Fire"),
                ("severity", "critical"),
                ("team", "platform")
            ])
        );
        assert_eq!(
            a.annotations,
            labels(&[("message", "Something is on fire")])
        );
        assert_eq!(
            a.links,
            vec![link(
                "Source",
                "http://localhost:9090/graph?g0.expr=vector%28666%29&g0.tab=1"
            )]
        );
        assert_eq!(a.started_at, Some(t("2018-11-04T21:43:58.283995108Z")));
        assert_eq!(a.ended_at, Some(t("2018-11-04T21:46:58.283995108Z")));
        assert_eq!(&*a.source.name, "prometheus");
        assert_eq!(&*a.source.kind, "alertmanager");
    }

    #[test]
    fn webhook_resolved_alertmanager_bot_has_the_firing_alerts_key() {
        let firing = run("alertmanager-webhook-firing-alertmanager-bot.json");
        let alerts = run("alertmanager-webhook-resolved-alertmanager-bot.json");
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.status, AlertStatus::Resolved);
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.title, "Fire");
        assert_eq!(a.dedup_key, firing[0].dedup_key);
        assert_eq!(a.ended_at, Some(t("2018-11-04T21:48:13.283995108Z")));
        assert_eq!(a.links.len(), 1);
    }

    #[test]
    fn webhook_firing_multi_alert_fingerprint() {
        let alerts = run("alertmanager-webhook-firing-multi-alert-fingerprint.json");
        assert_eq!(alerts.len(), 2);

        let a = &alerts[0];
        assert_eq!(a.dedup_key, "848d4fa77803ce9d");
        assert_eq!(a.status, AlertStatus::Firing);
        // No severity label: the source default (error).
        assert_eq!(a.severity, Severity::Error);
        assert_eq!(a.title, "InstanceDown");
        assert_eq!(a.description, "");
        assert_eq!(
            a.labels,
            labels(&[
                ("alertname", "InstanceDown"),
                ("instance", "idonotexists:564"),
                ("job", "services"),
                ("severity", "info"), // the source's label, underneath
                ("team", "platform"),
            ])
        );
        assert!(a.annotations.is_empty());
        assert_eq!(
            a.links,
            vec![link(
                "Source",
                "http://686d2501c850:9090/graph?g0.expr=up%7Bjob%3D%22services%22%7D+%3C+1&g0.tab=1"
            )]
        );
        assert_eq!(a.started_at, Some(t("2021-02-15T08:35:16.877347671Z")));
        assert_eq!(a.ended_at, None, "the zero time means not set");

        let b = &alerts[1];
        assert_eq!(b.dedup_key, "e4a26b1cdb7fcfe4");
        assert_eq!(b.status, AlertStatus::Firing);
        assert_eq!(b.severity, Severity::Critical);
        assert_eq!(b.title, "Mere end 3 langsomme requests seneste time");
        assert_eq!(b.description, ".....");
        assert_eq!(
            b.labels,
            labels(&[
                ("alertname", "SlowResponse2"),
                ("severity", "critical"),
                ("team", "platform")
            ])
        );
        assert_eq!(b.links.len(), 1);
        assert_eq!(b.links[0].label, "Source");
        assert_eq!(b.ended_at, None);
    }

    #[test]
    fn webhook_firing_nested_route() {
        let alerts = run("alertmanager-webhook-firing-nested-route.json");
        assert_eq!(alerts.len(), 3);
        for (a, ip) in alerts
            .iter()
            .zip(["172.29.254.30", "172.29.254.50", "172.29.254.66"])
        {
            assert_eq!(a.status, AlertStatus::Firing);
            // `severity: major` maps to error.
            assert_eq!(a.severity, Severity::Error);
            // `summary` is a label here, not an annotation: the title is the alertname.
            assert_eq!(a.title, "ICMP ping failed");
            assert_eq!(a.description, format!("{ip} does not reply to ICMP pings"));
            let own = labels(&[
                ("alertname", "ICMP ping failed"),
                ("instance", ip),
                ("job", "blackbox-icmp"),
                ("monitor", "monis"),
                ("severity", "major"),
                ("tags", "icmp, ping failed"),
                ("summary", &format!("No physical connection to {ip}")),
            ]);
            assert_eq!(a.dedup_key, fingerprint::fingerprint_hex(&own));
            let mut all = own.clone();
            all.insert("team".into(), "platform".into());
            assert_eq!(a.labels, all);
            assert_eq!(
                a.links,
                vec![link(
                    "Source",
                    "http://9ed35ff90bf8:9090/graph?g0.expr=probe_success%7Bjob%3D%22blackbox-icmp%22%7D+%3D%3D+0&g0.tab=1"
                )]
            );
        }
        let keys: std::collections::BTreeSet<_> = alerts.iter().map(|a| &a.dedup_key).collect();
        assert_eq!(keys.len(), 3, "distinct instances, distinct keys");
    }

    #[test]
    fn webhook_resolved_fingerprint() {
        let alerts = run("alertmanager-webhook-resolved-fingerprint.json");
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.dedup_key, "fbab788ec4c1018b");
        assert_eq!(a.status, AlertStatus::Resolved);
        assert_eq!(
            a.severity,
            Severity::Warning,
            "`Warning` is case-insensitive"
        );
        assert_eq!(a.title, "Kubernetes Deployment Replicas Mismatch");
        assert_eq!(
            a.description,
            "Deployment Replicas mismatch, desired value does not match.."
        );
        assert_eq!(a.labels.len(), 14);
        assert_eq!(a.labels["deployment"], "eric-log-transformer");
        assert_eq!(a.labels["severity"], "Warning");
        assert_eq!(a.labels["team"], "platform");
        assert_eq!(a.links.len(), 1);
        assert!(a.links[0].url.starts_with("/metrics/viewer/graph?g0.expr="));
        assert_eq!(a.started_at, Some(t("2022-07-29T11:13:27.3Z")));
        assert_eq!(a.ended_at, Some(t("2022-07-29T11:17:27.3Z")));
    }

    #[test]
    fn webhook_resolved_notification_reason() {
        let alerts = run("alertmanager-webhook-resolved-notification-reason.json");
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.dedup_key, "1c90b4a513296c21");
        assert_eq!(a.status, AlertStatus::Resolved);
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(
            a.title,
            "Target 19 has failed repeatedly in the last 5 minutes"
        );
        assert_eq!(a.description, "");
        // The alert's own `status: error` label is a label, not the alert's status.
        assert_eq!(
            a.labels,
            labels(&[
                ("alertname", "TargetDown"),
                ("error_class", "ConnectError"),
                ("instance", "app:8000"),
                ("job", "synthetic-uptime-monitor"),
                ("severity", "critical"),
                ("status", "error"),
                ("target_id", "19"),
                ("team", "platform"),
            ])
        );
        assert_eq!(a.links.len(), 1);
        assert_eq!(a.links[0].label, "Source");
        assert_eq!(a.ended_at, Some(t("2026-08-07T07:36:13.599Z")));
    }

    #[test]
    fn api_v2_official_ha_example() {
        let alerts = run("alertmanager-api-v2-alerts-official-ha-example.json");
        assert_eq!(alerts.len(), 6);
        let expected = [
            (
                "sda1",
                "example1",
                Some("please check the instance example1"),
                None,
            ),
            (
                "sda2",
                "example1",
                Some("please check the instance example1"),
                None,
            ),
            (
                "sda1",
                "example2",
                Some("please check the instance example2"),
                None,
            ),
            (
                "sdb2",
                "example2",
                Some("please check the instance example2"),
                None,
            ),
            ("sda1", "example3", None, Some("critical")),
            ("sda1", "example3", None, Some("warning")),
        ];
        for (a, (dev, instance, summary, severity)) in alerts.iter().zip(expected) {
            // No status and no endsAt: firing.
            assert_eq!(a.status, AlertStatus::Firing);
            assert_eq!(a.title, summary.unwrap_or("DiskRunningFull"));
            assert_eq!(
                a.severity,
                match severity {
                    Some("critical") => Severity::Critical,
                    Some("warning") => Severity::Warning,
                    _ => Severity::Error, // the source default
                }
            );
            let mut own = labels(&[
                ("alertname", "DiskRunningFull"),
                ("dev", dev),
                ("instance", instance),
            ]);
            if let Some(s) = severity {
                own.insert("severity".into(), s.into());
            }
            assert_eq!(a.dedup_key, fingerprint::fingerprint_hex(&own));
            let mut all = own;
            all.entry("severity".into())
                .or_insert_with(|| "info".into());
            all.insert("team".into(), "platform".into());
            assert_eq!(a.labels, all);
            // `info` and `runbook` are not description/runbook_url: annotations only.
            assert_eq!(a.description, "");
            assert!(a.links.is_empty());
            assert_eq!(a.started_at, None);
            assert_eq!(a.ended_at, None);
        }
        assert_eq!(
            alerts[1].annotations["runbook"],
            "the following link http://test-url should be clickable"
        );
        assert_eq!(
            alerts[0].annotations["info"],
            "The disk sda1 is running full"
        );
        assert!(alerts[4].annotations.is_empty());
        // Same labels but the severity: two incidents.
        assert_ne!(alerts[4].dedup_key, alerts[5].dedup_key);
    }

    #[test]
    fn api_v2_prometheus_captured_resolves_once_ends_at_passes() {
        let body = fixture("alertmanager-api-v2-alerts-prometheus-captured.json");
        let check = |now: DateTime<Utc>, status: AlertStatus| {
            let alerts = spec().normalize(&body, now).unwrap();
            assert_eq!(alerts.len(), 1);
            let a = &alerts[0];
            assert_eq!(a.status, status, "at {now}");
            assert_eq!(a.title, "Instance is down");
            assert_eq!(a.severity, Severity::Critical);
            let own = labels(&[
                ("alertname", "InstanceDown"),
                ("instance", "localhost:8080"),
                ("job", "node"),
                ("severity", "critical"),
            ]);
            assert_eq!(a.dedup_key, fingerprint::fingerprint_hex(&own));
            assert_eq!(
                a.links,
                vec![link(
                    "Source",
                    "http://sia:9090/graph?g0.expr=up%7Bjob%3D%22node%22%7D+%3D%3D+0&g0.tab=1"
                )]
            );
            assert_eq!(a.started_at, Some(t("2020-09-13T12:27:02.153716049Z")));
            assert_eq!(a.ended_at, Some(t("2020-09-13T12:31:02.153716049Z")));
            // A firing alert from Prometheus expires at its endsAt unless sent again.
            let expires =
                (status == AlertStatus::Firing).then(|| t("2020-09-13T12:31:02.153716049Z"));
            assert_eq!(a.expires_at, expires, "at {now}");
        };
        // While Prometheus keeps re-sending, endsAt lies in the future: firing.
        check(t("2020-09-13T12:28:00Z"), AlertStatus::Firing);
        // endsAt <= now: resolved.
        check(t("2020-09-13T12:31:02.153716049Z"), AlertStatus::Resolved);
        check(now(), AlertStatus::Resolved);
    }

    #[test]
    fn a_webhook_alerts_ends_at_is_no_expiry() {
        // Alertmanager passes Prometheus' endsAt on in its webhook, but notifies again only
        // at repeat_interval and resolves by itself: that endsAt must not resolve anything.
        let body = fixture("alertmanager-webhook-firing-alertmanager-bot.json");
        let alerts = spec().normalize(&body, t("2018-11-04T21:30:00Z")).unwrap();
        assert!(alerts.iter().any(|a| a.ended_at.is_some()));
        assert!(alerts.iter().all(|a| a.expires_at.is_none()));
    }

    #[test]
    fn links_from_annotations_and_tolerant_fields() {
        let body = br#"{"version":"4","status":"firing","unknown":{"x":[1,2]},"alerts":[
            {"status":"firing","labels":{"alertname":"A"},
             "annotations":{"summary":"","runbook_url":"https://r","dashboard":"https://d",
                            "message":"msg"},
             "startsAt":null,"endsAt":"0001-01-01T00:00:00Z","generatorURL":"",
             "fingerprint":""},
            {"labels":{"alertname":"B"},"annotations":{"dashboard_url":"https://du",
             "dashboard":"https://d"},"endsAt":"2999-01-01T00:00:00Z"},
            {"status":"RESOLVED"},
            {}
        ]}"#;
        let alerts = spec().normalize(body, now()).unwrap();
        assert_eq!(alerts.len(), 4);
        let a = &alerts[0];
        assert_eq!(a.title, "A", "an empty summary falls back to alertname");
        assert_eq!(a.description, "msg");
        assert_eq!(
            a.links,
            vec![link("Runbook", "https://r"), link("Dashboard", "https://d")]
        );
        assert_eq!(
            a.dedup_key,
            fingerprint::fingerprint_hex(&labels(&[("alertname", "A")]))
        );
        assert_eq!((a.started_at, a.ended_at), (None, None));
        assert_eq!(alerts[1].status, AlertStatus::Firing);
        assert_eq!(alerts[1].links, vec![link("Dashboard", "https://du")]);
        assert_eq!(alerts[2].status, AlertStatus::Resolved);
        assert_eq!(alerts[3].title, "alert");
        assert_eq!(alerts[3].dedup_key, "cbf29ce484222325");
    }

    #[test]
    fn empty_lists_and_shape_errors() {
        let s = spec();
        assert_eq!(s.normalize(b"[]", now()), Ok(vec![]));
        assert_eq!(s.normalize(br#"{"alerts":[]}"#, now()), Ok(vec![]));
        for bad in [
            &br#"{"version":"4"}"#[..],
            br#"42"#,
            br#"{"alerts":{}}"#,
            br#"[1]"#,
            br#"[{"labels":{"a":1}}]"#,
            br#"[{"status":"pending"}]"#,
        ] {
            match s.normalize(bad, now()) {
                Err(NormalizeError::Shape(msg)) => assert!(!msg.is_empty()),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
        let Err(NormalizeError::Shape(msg)) = s.normalize(b"true", now()) else {
            panic!()
        };
        assert!(msg.contains(EXPECTED), "{msg}");
        let Err(NormalizeError::Shape(msg)) = s.normalize(br#"{"status":"firing"}"#, now()) else {
            panic!()
        };
        assert!(msg.contains("missing field `alerts`"), "{msg}");
    }

    #[test]
    fn truncated_groups_still_give_the_alerts_they_carry() {
        let body = br#"{"version":"4","status":"firing","truncatedAlerts":3,
            "alerts":[{"status":"firing","labels":{"alertname":"A"},"fingerprint":"00aa"}]}"#;
        let alerts = spec().normalize(body, now()).unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].dedup_key, "00aa");
        let bad = br#"{"truncatedAlerts":"many","alerts":[]}"#;
        assert!(matches!(
            spec().normalize(bad, now()),
            Err(NormalizeError::Shape(_))
        ));
    }
}
