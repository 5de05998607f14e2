//! Criterion benchmarks of switchyard's per-alert work, each on its own: route matching against
//! 10, 1,000 and 10,000 rules (with regex matchers), the alertmanager and generic adapters'
//! normalize on the real fixtures, the incident transition, the webhook body and its signing,
//! and the memory store's admin reads with 100,000 incidents.
//! These guide optimisation; the load harness (scripts/bench.sh) measures the whole server.
//!
//! Run: `cargo bench --bench core` (figures in docs/PERFORMANCE.md).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use switchyard::config::types::{RouteConfig, SourceConfig};
use switchyard::delivery::webhook;
use switchyard::model::transition;
use switchyard::model::{Event, EventType, SourceRef};
use switchyard::router::table::{EndpointFilter, RouteTable};
use switchyard::sources::SourceSpec;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/payloads")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn source(kind: &str) -> SourceSpec {
    let cfg: SourceConfig =
        serde_json::from_value(serde_json::json!({"name": "bench", "kind": kind}))
            .expect("source config");
    SourceSpec::build(&cfg).expect("source spec")
}

/// The alerts of the multi-alert Alertmanager fixture, normalized at `now`.
fn fixture_alerts(now: chrono::DateTime<Utc>) -> Vec<switchyard::model::Alert> {
    source("alertmanager")
        .normalize(
            &fixture("alertmanager-webhook-firing-multi-alert-fingerprint.json"),
            now,
        )
        .expect("normalize")
}

/// One event of a firing alert from the multi-alert Alertmanager fixture.
fn sample_event() -> Event {
    let now = Utc::now();
    let alerts = fixture_alerts(now);
    let t = transition::apply(None, &alerts[0], now);
    let incident = t.next.expect("a new incident");
    Event {
        id: Event::new_id(),
        kind: EventType::Created,
        timestamp: now,
        source: SourceRef {
            name: "bench".into(),
            kind: "alertmanager".into(),
        },
        incident,
        changes: None,
        group: None,
        notice: None,
    }
}

/// `n` routes in the shape real trees have: one team per route, matching on a service regex
/// and a severity, with the last route being the one that matches the sample event.
fn route_table(n: usize, event: &Event) -> RouteTable {
    let instance = event
        .incident
        .labels
        .get("instance")
        .cloned()
        .unwrap_or_default();
    let mut routes: Vec<serde_json::Value> = (0..n.saturating_sub(1))
        .map(|i| {
            serde_json::json!({
                "name": format!("team-{i}"),
                "matchers": [format!("service=~\"svc-{i}-.*\""), "severity=~\"critical|error\""],
                "to": ["hook"],
            })
        })
        .collect();
    routes.push(serde_json::json!({
        "name": "last",
        "matchers": [format!("instance=~\"{}\"", regex_escape(&instance)), "event=\"incident.created\""],
        "to": ["hook"],
    }));
    let routes: Vec<RouteConfig> =
        serde_json::from_value(serde_json::Value::Array(routes)).expect("route configs");
    let endpoints = vec![EndpointFilter {
        name: Arc::from("hook"),
        enabled: true,
        events: None,
    }];
    RouteTable::build(&routes, &[], endpoints).expect("route table")
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

fn routing(c: &mut Criterion) {
    let event = sample_event();
    let mut g = c.benchmark_group("route");
    for n in [10, 1_000, 10_000] {
        let table = route_table(n, &event);
        assert_eq!(
            table.route(&event).endpoints,
            vec![0],
            "the last route matches"
        );
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::from_parameter(n), &table, |b, t| {
            b.iter(|| black_box(t.route(black_box(&event))))
        });
    }
    g.finish();
}

fn normalize(c: &mut Criterion) {
    let now = Utc::now();
    let mut g = c.benchmark_group("normalize");
    let cases = [
        (
            "alertmanager",
            "alertmanager-webhook-firing-alertmanager-bot.json",
        ),
        (
            "alertmanager",
            "alertmanager-webhook-firing-multi-alert-fingerprint.json",
        ),
        (
            "alertmanager",
            "alertmanager-webhook-firing-nested-route.json",
        ),
        (
            "alertmanager",
            "alertmanager-api-v2-alerts-official-ha-example.json",
        ),
        ("generic", "pagerduty-events-v2-trigger.json"),
    ];
    for (kind, file) in cases {
        let spec = source(kind);
        let body = fixture(file);
        let alerts = spec
            .normalize(&body, now)
            .expect("fixture normalizes")
            .len() as u64;
        g.throughput(Throughput::Elements(alerts));
        g.bench_function(
            BenchmarkId::new(kind, file.trim_end_matches(".json")),
            |b| b.iter(|| black_box(spec.normalize(black_box(&body), now))),
        );
    }
    g.finish();
}

fn incident_transition(c: &mut Criterion) {
    let event = sample_event();
    let now = Utc::now();
    let alerts = fixture_alerts(now);
    let mut g = c.benchmark_group("transition");
    g.bench_function("new_incident", |b| {
        b.iter(|| black_box(transition::apply(None, black_box(&alerts[0]), now)))
    });
    g.bench_function("repeat", |b| {
        b.iter(|| {
            black_box(transition::apply(
                Some(black_box(&event.incident)),
                &alerts[0],
                now,
            ))
        })
    });
    g.finish();
}

fn signing(c: &mut Criterion) {
    let event = sample_event();
    let secret = switchyard::config::types::Secret::new("0123456789abcdef0123456789abcdef");
    let signer = switchyard::delivery::signer::Signer::build(Some(&secret), None, None)
        .expect("a signing profile");
    let body = webhook::body(&event, Some("dlv_0"));
    let mut g = c.benchmark_group("webhook");
    g.bench_function("body", |b| {
        b.iter(|| black_box(webhook::body(black_box(&event), Some("dlv_0"))))
    });
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("sign", |b| {
        b.iter(|| {
            black_box(signer.headers(
                &event.id,
                event.kind.as_str(),
                1_700_000_000,
                black_box(&body),
            ))
        })
    });
    g.finish();
}

/// The memory store's admin reads with 100,000 open incidents: one by id (through its index)
/// and a page of the newest (a scan of every incident, which is what a read by id was).
fn admin_reads(c: &mut Criterion) {
    use futures_util::FutureExt;
    use switchyard::store::memory::MemoryStore;
    use switchyard::store::query::{IncidentFilter, IncidentQuery};
    use switchyard::store::IncidentStore;
    let now = Utc::now();
    let template = fixture_alerts(now).remove(0);
    let store = MemoryStore::new();
    let alerts: Vec<_> = (0..100_000)
        .map(|n| {
            let mut a = template.clone();
            a.dedup_key = format!("bench-{n}");
            a
        })
        .collect();
    let routes = RouteTable::build(&[], &[], Vec::new()).expect("routes");
    let recorded = store
        .record(
            &alerts,
            now,
            &routes,
            &mut switchyard::store::leases::LeaseOffer::none(),
        )
        .now_or_never()
        .expect("the memory store never waits")
        .expect("record")
        .recorded;
    let id = recorded[50_000]
        .event
        .as_ref()
        .expect("an event")
        .incident
        .id
        .clone();
    let mut g = c.benchmark_group("memory_store_100k");
    g.bench_function("get_by_id", |b| {
        b.iter(|| black_box(store.get_incident(black_box(&id)).now_or_never()))
    });
    let filter = IncidentFilter {
        status: None,
        source: None,
        limit: 50,
    };
    g.bench_function("list_newest_50", |b| {
        b.iter(|| black_box(store.list_incidents(black_box(&filter)).now_or_never()))
    });
    g.finish();
}

criterion_group!(
    benches,
    routing,
    normalize,
    incident_transition,
    signing,
    admin_reads
);
criterion_main!(benches);
