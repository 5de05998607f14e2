//! The adapters (alertmanager, grafana, sentry, generic and its presets) on arbitrary bytes,
//! arbitrary JSON and mutated real payloads.

use super::*;

fn spec(kind: SourceKind) -> SourceSpec {
    let mut cfg = source_config("fuzz", kind);
    cfg.labels = BTreeMap::from([("team".to_string(), "fuzz".to_string())]);
    SourceSpec::build(&cfg).expect("a plain source builds")
}

/// A generic source with a mapping into the shapes the fixtures have.
fn generic_mapped() -> SourceSpec {
    let mut cfg = source_config("fuzz-mapped", SourceKind::Generic);
    cfg.labels = BTreeMap::from([("team".to_string(), "fuzz".to_string())]);
    cfg.mapping = MappingConfig::pointers(&[
        ("title", "/data/issue/title"),
        ("dedup_key", "/commonLabels/alertname"),
        ("severity", "/payload/severity"),
        ("status", "/status"),
        ("description", "/message"),
    ])
    .expect("pointers");
    SourceSpec::build(&cfg).expect("the mapping builds")
}

/// Every source the fuzzers feed: each built-in kind, generic with and without a mapping, and
/// two presets.
fn specs() -> Vec<SourceSpec> {
    vec![
        spec(SourceKind::Alertmanager),
        spec(SourceKind::Grafana),
        spec(SourceKind::Sentry),
        spec(SourceKind::Generic),
        spec(SourceKind::Sns),
        generic_mapped(),
        generic_preset("github-actions"),
        generic_preset("azure-monitor"),
    ]
}

/// A generic source with one of the shipped presets (value maps, pointers into nested
/// objects, start times).
fn generic_preset(name: &str) -> SourceSpec {
    let mut cfg = source_config(&format!("fuzz-{name}"), SourceKind::Generic);
    cfg.labels = BTreeMap::from([("team".to_string(), "fuzz".to_string())]);
    cfg.preset = Some(name.to_string());
    SourceSpec::build(&cfg).expect("the preset builds")
}

/// Every JSON fixture, each adapter's and the other tools' (fed to every adapter).
fn all_fixtures() -> Vec<Vec<u8>> {
    fixture_names("").iter().map(|n| fixture(n)).collect()
}

const SENTRY_RESOURCES: &[&str] = &[
    "issue",
    "event_alert",
    "metric_alert",
    "installation",
    "error",
    "comment",
    "",
    "\u{e9}",
];

fn headers(resource: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(r) = resource {
        if let Ok(v) = HeaderValue::from_str(r) {
            h.insert(HeaderName::from_static("sentry-hook-resource"), v);
        }
    }
    h
}

/// The checks on one adapter's answer: an error is a clear one; alerts are well formed.
fn check_normalized(
    spec: &SourceSpec,
    body: &[u8],
    result: Result<Vec<crate::model::Alert>, NormalizeError>,
) -> Result<(), TestCaseError> {
    match result {
        Err(e) => {
            let text = e.to_string();
            prop_assert!(!text.trim().is_empty(), "empty error for {:?}", spec.kind);
            match &e {
                NormalizeError::Json {
                    line,
                    column,
                    message,
                } => {
                    prop_assert!(!message.trim().is_empty(), "{text}");
                    let lines = body.iter().filter(|&&b| b == b'\n').count() + 1;
                    prop_assert!(
                        *line >= 1 && *line <= lines,
                        "line {line} of {lines}: {text}"
                    );
                    prop_assert!(
                        text.contains(&format!("line {line} column {column}")),
                        "{text}"
                    );
                }
                NormalizeError::Shape(m) => prop_assert!(!m.trim().is_empty(), "{text}"),
                other => prop_assert!(false, "unexpected error kind for a built-in: {other:?}"),
            }
        }
        Ok(alerts) => {
            for a in alerts {
                prop_assert!(!a.dedup_key.is_empty(), "an alert without a dedup key");
                // The source's labels are added under the payload's own.
                prop_assert!(a.labels.contains_key("team"), "source labels dropped");
            }
        }
    }
    Ok(())
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0).unwrap()
}

/// Feeds `body` to every adapter (sentry with each resource header, and without one).
fn feed_all(body: &[u8], resource: usize) -> Result<(), TestCaseError> {
    for spec in specs() {
        let h = if spec.kind == SourceKind::Sentry {
            headers(SENTRY_RESOURCES.get(resource).copied())
        } else {
            HeaderMap::new()
        };
        let result = spec.normalize_request(&h, body, now());
        check_normalized(&spec, body, result)?;
    }
    Ok(())
}
proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_adapters_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512), resource in 0usize..10) {
        feed_all(&body, resource)?;
    }

    #[test]
    fn fuzz_adapters_arbitrary_json(doc in arb_json(), resource in 0usize..10) {
        feed_all(doc.to_string().as_bytes(), resource)?;
    }

    #[test]
    fn fuzz_adapters_mutated_fixtures(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(arb_json_mutation(), 1..6),
        resource in 0usize..10,
    ) {
        let fixtures = all_fixtures();
        let original: &Vec<u8> = which.get(&fixtures);
        let mut doc: serde_json::Value =
            serde_json::from_slice(original).expect("fixtures are JSON");
        for m in &mutations {
            apply(&mut doc, m);
        }
        feed_all(doc.to_string().as_bytes(), resource)?;
    }

    #[test]
    fn fuzz_adapters_byte_mutated_fixtures(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(arb_byte_mutation(), 1..6),
        resource in 0usize..10,
    ) {
        let fixtures = all_fixtures();
        let mut body = which.get(&fixtures).clone();
        for m in &mutations {
            apply_bytes(&mut body, m);
        }
        feed_all(&body, resource)?;
    }
}

#[test]
fn fuzz_adapters_deep_nesting_and_huge_numbers_are_clear_errors() {
    for body in [
        "[".repeat(100_000),
        format!("{}{}", "{\"a\":".repeat(50_000), "}".repeat(50_000)),
        r#"{"alerts": [{"labels": {"a": 1e999999}}]}"#.to_string(),
        r#"{"alerts": [{"labels": {"alertname": "\ud800"}}]}"#.to_string(),
        String::new(),
        "\u{feff}{}".to_string(),
    ] {
        feed_all(body.as_bytes(), 0).unwrap();
    }
}
