//! The Grafana and Sentry adapters end to end: each fixture POSTed with the headers the tool
//! really sends (signed as the tool signs), the events at a real receiver, wrong signatures
//! refused, a redelivered Sentry request dropped.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::support::{fixture, Receiver, Switchyard};

const GRAFANA_SECRET: &str = "grafana-s3cret";
const SENTRY_SECRET: &str = "sentry-client-s3cret";

fn config(url: &str) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
sources:
  - name: grafana
    kind: grafana
    labels: {{ team: observability }}
    auth: {{ hmac: {{ secret: {GRAFANA_SECRET}, timestamp_header: X-Grafana-Alerting-Timestamp }} }}
  - name: grafana-basic
    kind: grafana
    auth: {{ basic: {{ username: grafana, password: pw }} }}
  - name: sentry
    kind: sentry
    auth: {{ hmac: {{ secret: {SENTRY_SECRET} }} }}
  - name: sentry-legacy
    kind: sentry
endpoints:
  - name: hook
    kind: webhook
    url: {url}
    retry: {{ schedule: [50ms] }}
routes:
  - matchers: []
    to: [hook]
"#
    )
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// POSTs a Grafana body as Grafana 12 does with HMAC and a timestamp header.
async fn post_grafana(sy: &Switchyard, body: &[u8]) -> (u16, serde_json::Value) {
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = hmac_hex(GRAFANA_SECRET, &[ts.as_bytes(), b":", body]);
    sy.ingest(
        "grafana",
        body,
        &[
            ("User-Agent", "Grafana"),
            ("X-Grafana-Alerting-Timestamp", &ts),
            ("X-Grafana-Alerting-Signature", &sig),
        ],
    )
    .await
}

/// POSTs a Sentry integration-platform body with Sentry's headers, signed over the body.
async fn post_sentry(
    sy: &Switchyard,
    resource: &str,
    request_id: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let sig = hmac_hex(SENTRY_SECRET, &[body]);
    let ts = chrono::Utc::now().timestamp().to_string();
    sy.ingest(
        "sentry",
        body,
        &[
            ("Request-ID", request_id),
            ("Sentry-Hook-Resource", resource),
            ("Sentry-Hook-Timestamp", &ts),
            ("Sentry-Hook-Signature", &sig),
        ],
    )
    .await
}

fn event_types(body: &serde_json::Value) -> Vec<String> {
    body["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|x| x["type"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A fixture with its `action` replaced (Sentry sends the same shape for each action).
fn with_action(name: &str, action: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
    v["action"] = action.into();
    serde_json::to_vec(&v).unwrap()
}

#[actix_rt::test]
async fn grafana_fixtures_signed_as_grafana_signs_make_the_expected_events() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url));

    let (s, b) = post_grafana(&sy, &fixture("grafana-unified-firing-docs.json")).await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["accepted"], 2);
    assert_eq!(event_types(&b), ["incident.created", "incident.created"]);

    let (s, b) = post_grafana(&sy, &fixture("grafana-unified-firing-values-v11.json")).await;
    assert_eq!((s, event_types(&b)), (202, vec!["incident.created".into()]));

    // Top-level status firing; two of its three alerts are resolved (and never fired here,
    // so they change nothing), one fires.
    let (s, b) = post_grafana(&sy, &fixture("grafana-unified-mixed-firing-resolved.json")).await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["accepted"], 3);
    assert_eq!(event_types(&b), ["incident.created"]);

    let (s, b) = post_grafana(&sy, &fixture("grafana-unified-resolved.json")).await;
    assert_eq!((s, b["accepted"].as_u64()), (202, Some(1)));
    assert_eq!(
        event_types(&b),
        Vec::<String>::new(),
        "nothing open to resolve"
    );

    let (s, b) = post_grafana(&sy, &fixture("grafana-legacy-alerting.json")).await;
    assert_eq!((s, event_types(&b)), (202, vec!["incident.created".into()]));
    let (s, b) = post_grafana(&sy, &fixture("grafana-legacy-ok.json")).await;
    assert_eq!(
        (s, event_types(&b)),
        (202, vec!["incident.resolved".into()])
    );

    let got = rx.wait_delivered(6).await;
    let seen: Vec<(String, String, String, String)> = got
        .iter()
        .map(|r| {
            let j = r.json();
            let inc = &j["data"]["incident"];
            (
                j["type"].as_str().unwrap().to_string(),
                inc["dedup_key"].as_str().unwrap().to_string(),
                inc["title"].as_str().unwrap().to_string(),
                inc["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = |t: &str, k: &str, title: &str| {
        (
            t.to_string(),
            k.to_string(),
            title.to_string(),
            "warning".to_string(),
        )
    };
    for e in [
        expect(
            "incident.created",
            "c6eadffa33fcdf37",
            "This alert was triggered for zone us-1",
        ),
        expect(
            "incident.created",
            "bc97ff14869b13e3",
            "This alert was triggered for zone eu-1",
        ),
        expect("incident.created", "e6349a25f5ef0e9e", "High memory usage"),
        expect(
            "incident.created",
            "6f9cd313db421ef1",
            "Testing **another** failing alert",
        ),
        expect("incident.created", "legacy:0:0", "Test rule"),
        expect("incident.resolved", "legacy:0:0", "Test rule"),
    ] {
        assert!(seen.contains(&e), "{e:?} not in {seen:?}");
    }
    let v11 = got
        .iter()
        .map(|r| r.json())
        .find(|j| j["data"]["incident"]["dedup_key"] == "e6349a25f5ef0e9e")
        .unwrap();
    let inc = &v11["data"]["incident"];
    assert_eq!(inc["labels"]["team"], "observability");
    assert_eq!(inc["labels"]["grafana_folder"], "device");
    assert_eq!(v11["source"]["kind"], "grafana");
    let links: Vec<&str> = inc["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["label"].as_str().unwrap())
        .collect();
    assert_eq!(links, ["Source", "Dashboard", "Panel", "Silence", "Image"]);
}

#[actix_rt::test]
async fn grafana_wrong_signature_stale_timestamp_and_basic_auth() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url));
    let body = fixture("grafana-unified-firing-docs.json");
    let ts = chrono::Utc::now().timestamp().to_string();

    // Signed over the body only (no timestamp): wrong for this source.
    let sig = hmac_hex(GRAFANA_SECRET, &[&body]);
    let (s, b) = sy
        .ingest(
            "grafana",
            &body,
            &[
                ("X-Grafana-Alerting-Timestamp", &ts),
                ("X-Grafana-Alerting-Signature", &sig),
            ],
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("unauthorized")), "{b}");

    // Grafana's code default header name is accepted too, but an old timestamp is not.
    let old = (chrono::Utc::now().timestamp() - 3600).to_string();
    let sig = hmac_hex(GRAFANA_SECRET, &[old.as_bytes(), b":", &body]);
    let (s, b) = sy
        .ingest(
            "grafana",
            &body,
            &[
                ("X-Grafana-Alerting-Timestamp", &old),
                ("X-Grafana-Alert-Signature", &sig),
            ],
        )
        .await;
    assert_eq!(s, 401, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("timestamp"), "{b}");

    // Basic auth, as Grafana's webhook contact point sends it.
    let (s, _) = sy
        .ingest(
            "grafana-basic",
            &body,
            &[("Authorization", "Basic Z3JhZmFuYTp3cm9uZw==")],
        )
        .await;
    assert_eq!(s, 401);
    let (s, b) = sy
        .ingest(
            "grafana-basic",
            &body,
            &[("Authorization", "Basic Z3JhZmFuYTpwdw==")],
        )
        .await;
    assert_eq!((s, b["accepted"].as_u64()), (202, Some(2)), "{b}");
    rx.wait_delivered(2).await;
}

#[actix_rt::test]
async fn sentry_fixtures_signed_as_sentry_signs_make_the_expected_events() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url));

    let created = fixture("sentry-issue-created-docs.json");
    let (s, b) = post_sentry(&sy, "issue", "req-1", &created).await;
    assert_eq!(
        (s, event_types(&b)),
        (202, vec!["incident.created".into()]),
        "{b}"
    );

    // The same delivery again (Sentry retried it): dropped, nothing recorded.
    let (s, b) = post_sentry(&sy, "issue", "req-1", &created).await;
    assert_eq!((s, b["accepted"].as_u64()), (202, Some(0)), "{b}");
    assert_eq!(
        sy.metric("switchyard_redeliveries_dropped_total{source=\"sentry\"}")
            .await,
        Some(1.0)
    );

    // An issue alert for an issue: its own incident, keyed by the issue id.
    let (s, b) = post_sentry(
        &sy,
        "event_alert",
        "req-2",
        &fixture("sentry-event-alert-triggered-docs.json"),
    )
    .await;
    assert_eq!((s, event_types(&b)), (202, vec!["incident.created".into()]));

    // Issue 1638821441 reopens (unresolved), is resolved, and archived (no further event).
    let reopened = with_action("sentry-issue-resolved.json", "unresolved");
    let (s, b) = post_sentry(&sy, "issue", "req-3", &reopened).await;
    assert_eq!((s, event_types(&b)), (202, vec!["incident.created".into()]));
    let (s, b) = post_sentry(
        &sy,
        "issue",
        "req-4",
        &fixture("sentry-issue-resolved.json"),
    )
    .await;
    assert_eq!(
        (s, event_types(&b)),
        (202, vec!["incident.resolved".into()])
    );
    let (s, b) = post_sentry(&sy, "issue", "req-5", &fixture("sentry-issue-ignored.json")).await;
    assert_eq!((s, event_types(&b)), (202, vec![]));

    // Issue 1638844654 is created, then assigned: acknowledged.
    let (s, b) = post_sentry(
        &sy,
        "issue",
        "req-6",
        &with_action("sentry-issue-assigned.json", "created"),
    )
    .await;
    assert_eq!((s, event_types(&b)), (202, vec!["incident.created".into()]));
    let (s, b) = post_sentry(
        &sy,
        "issue",
        "req-7",
        &fixture("sentry-issue-assigned.json"),
    )
    .await;
    assert_eq!(
        (s, event_types(&b)),
        (202, vec!["incident.acknowledged".into()])
    );

    // A metric alert goes critical, then resolves.
    let (s, b) = post_sentry(
        &sy,
        "metric_alert",
        "req-8",
        &with_action("sentry-metric-alert-resolved-docs.json", "critical"),
    )
    .await;
    assert_eq!((s, event_types(&b)), (202, vec!["incident.created".into()]));
    let (s, b) = post_sentry(
        &sy,
        "metric_alert",
        "req-9",
        &fixture("sentry-metric-alert-resolved-docs.json"),
    )
    .await;
    assert_eq!(
        (s, event_types(&b)),
        (202, vec!["incident.resolved".into()])
    );

    // The legacy plugin: no signature, no resource header.
    let (s, b) = sy
        .ingest(
            "sentry-legacy",
            &fixture("sentry-legacy-plugin-webhook.json"),
            &[("User-Agent", "sentry-webhooks/23.6.0")],
        )
        .await;
    assert_eq!((s, event_types(&b)), (202, vec!["incident.created".into()]));

    let got = rx.wait_delivered(9).await;
    let seen: Vec<(String, String, String, String)> = got
        .iter()
        .map(|r| {
            let j = r.json();
            let inc = &j["data"]["incident"];
            (
                j["type"].as_str().unwrap().to_string(),
                inc["dedup_key"].as_str().unwrap().to_string(),
                inc["severity"].as_str().unwrap().to_string(),
                inc["title"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let e = |t: &str, k: &str, sev: &str, title: &str| {
        (
            t.to_string(),
            k.to_string(),
            sev.to_string(),
            title.to_string(),
        )
    };
    for want in [
        e(
            "incident.created",
            "1170820242",
            "error",
            "ReferenceError: blooopy is not defined",
        ),
        e(
            "incident.created",
            "1117540176",
            "error",
            "ReferenceError: heck is not defined",
        ),
        e(
            "incident.created",
            "1638821441",
            "error",
            "Exception: program has entered an invalid state.",
        ),
        e(
            "incident.resolved",
            "1638821441",
            "error",
            "Exception: program has entered an invalid state.",
        ),
        e(
            "incident.created",
            "1638844654",
            "info",
            "A test message event from golang.",
        ),
        e(
            "incident.acknowledged",
            "1638844654",
            "info",
            "A test message event from golang.",
        ),
        e("incident.created", "4", "critical", "Too many errors"),
        e("incident.resolved", "4", "critical", "Too many errors"),
        e(
            "incident.created",
            "4218258981",
            "error",
            "This is an example Python exception",
        ),
    ] {
        assert!(seen.contains(&want), "{want:?} not in {seen:?}");
    }
    let issue = got
        .iter()
        .map(|r| r.json())
        .find(|j| j["data"]["incident"]["dedup_key"] == "1170820242")
        .unwrap();
    assert_eq!(
        issue["data"]["incident"]["links"][0]["url"],
        "https://sentry.io/issues/1170820242/"
    );
    assert_eq!(issue["data"]["incident"]["labels"]["project"], "front-end");
}

#[actix_rt::test]
async fn sentry_wrong_or_missing_signature_is_401_and_records_nothing() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url));
    let body = fixture("sentry-issue-created-docs.json");
    let wrong = hmac_hex("not-the-secret", &[&body]);
    let (s, b) = sy
        .ingest(
            "sentry",
            &body,
            &[
                ("Sentry-Hook-Resource", "issue"),
                ("Request-ID", "r1"),
                ("Sentry-Hook-Signature", &wrong),
            ],
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("unauthorized")), "{b}");
    let (s, b) = sy
        .ingest("sentry", &body, &[("Sentry-Hook-Resource", "issue")])
        .await;
    assert_eq!(s, 401);
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("Sentry-Hook-Signature"),
        "{b}"
    );
    // A refused request does not poison its Request-ID: the real delivery is recorded.
    let (s, b) = post_sentry(&sy, "issue", "r1", &body).await;
    assert_eq!(
        (s, event_types(&b)),
        (202, vec!["incident.created".into()]),
        "{b}"
    );
    rx.wait_delivered(1).await;
    assert_eq!(rx.received().len(), 1);
}

#[test]
fn route_test_runs_grafana_and_sentry_fixtures_through_the_example_config() {
    let run = |source: &str, fixture: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["route-test", "-c", "routes.yaml", "--source", source])
            .arg(format!("tests/fixtures/payloads/{fixture}"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let out = run("sentry", "sentry-issue-created-docs.json");
    assert!(
        out.contains(r#"[firing] error "ReferenceError: blooopy is not defined""#),
        "{out}"
    );
    assert!(out.contains("dedup_key: 1170820242"), "{out}");
    let out = run("grafana", "grafana-unified-mixed-firing-resolved.json");
    assert!(out.starts_with("3 alert(s) from source `grafana`"), "{out}");
    assert!(out.contains("[resolved]"), "{out}");
    assert!(out.contains("[firing]"), "{out}");
}
