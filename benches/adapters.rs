//! Per-call cost of the adapters: built-in ones against the uptime-kuma plugin, on the real
//! fixtures. `cargo bench --bench adapters`.
//!
//! - `builtin/*`: `SourceSpec::normalize` of a built-in adapter (parse + convert).
//! - `plugin/uptime-kuma/direct`: the plugin called on this thread: JSON request built,
//!   FFI call (the plugin parses it, normalizes, answers JSON), output parsed and converted.
//! - `plugin/uptime-kuma/pool`: the same through the path requests take: a slot of the
//!   bounded pool, `spawn_blocking`, the time limit.
//! - `plugin/uptime-kuma/in-process`: the plugin's own Rust function linked in (its rlib), no
//!   ABI and no JSON round trip: `direct` minus this is the ABI's cost.
//! - `builtin/generic-uptime-kuma`: the same Uptime Kuma body through `kind: generic` with a
//!   mapping, the closest built-in equivalent.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use actix_web::http::header::HeaderMap;
use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};

use switchyard::config::types::{MappingConfig, SourceConfig, SourceKind};
use switchyard::sources::plugins::PluginRegistry;
use switchyard::sources::SourceSpec;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/payloads")
            .join(name),
    )
    .expect("fixture")
}

fn source(name: &str, kind: SourceKind, mapping: &[(&str, &str)]) -> SourceSpec {
    SourceSpec::build(&SourceConfig {
        name: name.into(),
        kind,
        auth: None,
        allow_from: Vec::new(),
        trusted_proxies: Vec::new(),
        delivery_id_header: None,
        labels: BTreeMap::new(),
        severity: None,
        resolve_after: None,
        preset: None,
        mapping: MappingConfig::pointers(mapping).expect("mapping"),
        sentry: None,
        sns: None,
        plugin: (kind == SourceKind::Plugin).then(|| "uptime-kuma".to_string()),
        config: None,
    })
    .expect("source")
}

/// The uptime-kuma cdylib cargo built (a dev-dependency), copied into a plugins directory.
fn kuma_registry(dir: &Path) -> PluginRegistry {
    let file = format!(
        "{}switchyard_uptime_kuma{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_switchyard"))
        .parent()
        .expect("bin dir");
    let built = [bin_dir.join(&file), bin_dir.join("deps").join(&file)]
        .into_iter()
        .find(|p| p.is_file())
        .expect("the uptime-kuma plugin is built (cargo build --workspace)");
    std::fs::copy(built, dir.join(&file)).expect("copy plugin");
    let (registry, errors) = PluginRegistry::load_dir(dir, Duration::from_secs(5));
    assert!(errors.is_empty(), "{errors:?}");
    registry
}

fn bench(c: &mut Criterion) {
    let now = Utc::now();
    let headers = HeaderMap::new();

    let am = source("am", SourceKind::Alertmanager, &[]);
    let am_body = fixture("alertmanager-webhook-firing-multi-alert-fingerprint.json");
    c.bench_function("builtin/alertmanager", |b| {
        b.iter(|| am.normalize(&am_body, now).expect("alerts"))
    });

    let grafana = source("grafana", SourceKind::Grafana, &[]);
    let grafana_body = fixture("grafana-unified-firing-values-v11.json");
    c.bench_function("builtin/grafana", |b| {
        b.iter(|| grafana.normalize(&grafana_body, now).expect("alerts"))
    });

    let sentry = source("sentry", SourceKind::Sentry, &[]);
    let sentry_body = fixture("sentry-issue-created-docs.json");
    c.bench_function("builtin/sentry", |b| {
        b.iter(|| sentry.normalize(&sentry_body, now).expect("alerts"))
    });

    let kuma_body = fixture("uptimekuma-webhook-down.json");
    let generic = source(
        "generic",
        SourceKind::Generic,
        &[
            ("title", "/monitor/name"),
            ("dedup_key", "/monitor/id"),
            ("description", "/heartbeat/msg"),
        ],
    );
    c.bench_function("builtin/generic-uptime-kuma", |b| {
        b.iter(|| generic.normalize(&kuma_body, now).expect("alerts"))
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let registry = kuma_registry(dir.path());
    let mut kuma = source("kuma", SourceKind::Plugin, &[]);
    let plugin = registry.get("uptime-kuma").expect("loaded").clone();
    kuma.attach_plugin(registry.adapter(plugin, serde_json::Value::Null));
    c.bench_function("plugin/uptime-kuma/direct", |b| {
        b.iter(|| {
            kuma.normalize_request(&headers, &kuma_body, now)
                .expect("alerts")
        })
    });

    let req = switchyard_adapter_sdk::Request {
        source: "kuma".into(),
        body: String::from_utf8(kuma_body.clone()).expect("UTF-8"),
        ..Default::default()
    };
    c.bench_function("plugin/uptime-kuma/in-process", |b| {
        b.iter(|| {
            <switchyard_uptime_kuma::UptimeKuma as switchyard_adapter_sdk::Adapter>::normalize(&req)
                .expect("alerts")
        })
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let adapter = kuma.plugin().expect("attached").clone();
    c.bench_function("plugin/uptime-kuma/pool", |b| {
        b.iter(|| {
            rt.block_on(adapter.normalize(&kuma, &headers, &kuma_body))
                .expect("alerts")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
