//! Auto-resolve through the real binary: a source's `resolve_after` and an alert's own
//! (`mapping.resolve_after`) resolve an incident not seen again for that long, a renewal keeps
//! it open (both stores); with redis the timer survives a kill -9 and a restart, and two
//! instances resolve it once. Prometheus' `endsAt` with the real Prometheus is in
//! `prometheus.rs`.

use std::time::{Duration, Instant};

use crate::both_stores;
use crate::support::{wait_for, Receiver, Switchyard, TestStore};

fn config(store: &TestStore, url: &str) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
sources:
  - name: logs
    kind: generic
    resolve_after: 1500ms
  - name: ttl
    kind: generic
    mapping: {{ resolve_after: /ttl }}
endpoints:
  - name: hook
    kind: webhook
    url: {url}
    retry: {{ schedule: [50ms] }}
routes:
  - matchers: []
    to: [hook]
{}"#,
        store.section()
    )
}

/// The types of the events delivered for incidents of `source`, in order.
fn kinds(rx: &Receiver, source: &str) -> Vec<String> {
    rx.delivered()
        .iter()
        .map(|r| r.json())
        .filter(|e| e["source"]["name"] == source)
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn resolve_after_resolves_what_is_not_seen_again(store: TestStore) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&store, &rx.url));
    let body = br#"{"title": "disk almost full", "id": "disk-1"}"#;

    // Sent again every 500 ms for 3 s (twice the resolve_after): it stays open.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        let (s, b) = sy.ingest("logs", body, &[]).await;
        assert_eq!(s, 202, "{b}");
        actix_rt::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(kinds(&rx, "logs"), ["incident.created"]);
    // Then not again: resolved about 1.5 s after the last one.
    let last = Instant::now();
    let resolved = wait_for("incident.resolved by resolve_after", || {
        rx.delivered()
            .into_iter()
            .find(|r| r.json()["type"] == "incident.resolved")
    })
    .await;
    let waited = last.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "resolved too early: {waited:?}"
    );
    let incident = &resolved.json()["data"]["incident"];
    assert_eq!(incident["status"], "resolved");
    assert!(
        incident["occurrences"].as_u64().unwrap_or(0) >= 5,
        "{incident}"
    );

    // An alert's own resolve_after: this one 1 s, a firing one without a value never.
    let (s, b) = sy
        .ingest(
            "ttl",
            br#"{"title": "one-shot", "id": "o-1", "ttl": "1s"}"#,
            &[],
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let (s, b) = sy
        .ingest("ttl", br#"{"title": "stays", "id": "o-2"}"#, &[])
        .await;
    assert_eq!(s, 202, "{b}");
    // A bad value is refused and records nothing.
    let (s, b) = sy
        .ingest(
            "ttl",
            br#"{"title": "bad", "id": "o-3", "ttl": "soon"}"#,
            &[],
        )
        .await;
    assert_eq!(s, 400, "{b}");
    wait_for("the one-shot alert resolved", || {
        rx.delivered().into_iter().find(|r| {
            r.json()["type"] == "incident.resolved"
                && r.json()["data"]["incident"]["dedup_key"] == "o-1"
        })
    })
    .await;
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        kinds(&rx, "ttl"),
        ["incident.created", "incident.created", "incident.resolved"]
    );
    assert_eq!(
        sy.metric(r#"switchyard_incident_expiry_total{outcome="resolved"}"#)
            .await,
        Some(2.0)
    );
}
both_stores!(resolve_after_resolves_what_is_not_seen_again);

/// How many `incident.resolved` the receiver got.
fn resolved_count(rx: &Receiver) -> usize {
    rx.delivered()
        .iter()
        .filter(|r| r.json()["type"] == "incident.resolved")
        .count()
}

#[actix_rt::test]
async fn a_timer_armed_before_a_kill_fires_after_the_restart() {
    let store = TestStore::redis();
    let rx = Receiver::start();
    let cfg = config(&store, &rx.url);
    let mut first = Switchyard::start(&cfg);
    let (s, b) = first
        .ingest(
            "logs",
            br#"{"title": "before the crash", "id": "c-1"}"#,
            &[],
        )
        .await;
    assert_eq!(s, 202, "{b}");
    wait_for("incident.created delivered", || {
        rx.delivered()
            .into_iter()
            .find(|r| r.json()["type"] == "incident.created")
    })
    .await;
    first.kill();
    // Down past the expiry: nobody is there to resolve it.
    actix_rt::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(resolved_count(&rx), 0);

    let second = Switchyard::start(&cfg);
    let resolved = wait_for("incident.resolved after the restart", || {
        rx.delivered()
            .into_iter()
            .find(|r| r.json()["type"] == "incident.resolved")
    })
    .await;
    assert_eq!(resolved.json()["data"]["incident"]["dedup_key"], "c-1");
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(resolved_count(&rx), 1);
    assert_eq!(
        second
            .metric(r#"switchyard_incident_expiry_total{outcome="resolved"}"#)
            .await,
        Some(1.0)
    );
}

#[actix_rt::test]
async fn two_instances_resolve_an_expired_incident_once() {
    let store = TestStore::redis();
    let rx = Receiver::start();
    let cfg = config(&store, &rx.url);
    let a = Switchyard::start(&cfg);
    let b = Switchyard::start(&cfg);
    for i in 0..10 {
        let body = format!(r#"{{"title": "shared {i}", "id": "s-{i}"}}"#);
        // Each alert to both instances.
        let (ra, rb) = futures_util::join!(
            a.ingest("logs", body.as_bytes(), &[]),
            b.ingest("logs", body.as_bytes(), &[])
        );
        assert_eq!((ra.0, rb.0), (202, 202));
    }
    wait_for("ten incidents resolved", || {
        (resolved_count(&rx) >= 10).then_some(())
    })
    .await;
    actix_rt::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(resolved_count(&rx), 10, "each incident resolved once");
    let resolved = |sy: &Switchyard| {
        let sy = sy.base.clone();
        async move {
            let text = awc::Client::default()
                .get(format!("{sy}/metrics"))
                .send()
                .await
                .unwrap()
                .body()
                .await
                .unwrap();
            String::from_utf8_lossy(&text)
                .lines()
                .find_map(|l| {
                    l.strip_prefix(r#"switchyard_incident_expiry_total{outcome="resolved"}"#)
                        .and_then(|v| v.trim().parse::<f64>().ok())
                })
                .unwrap_or(0.0)
        }
    };
    assert_eq!(resolved(&a).await + resolved(&b).await, 10.0);
}
