//! Test support for the adapters' tests: the real payloads in tests/fixtures/payloads/ (see
//! its SOURCES.md) and a source config with every option at its default.

use std::collections::BTreeMap;

use crate::config::types::{MappingConfig, SourceConfig, SourceKind};

/// The bytes of one fixture.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/payloads/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A source `name` of `kind` with every other option at its default.
pub fn source_config(name: &str, kind: SourceKind) -> SourceConfig {
    SourceConfig {
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
        mapping: MappingConfig::default(),
        sentry: None,
        sns: None,
        plugin: None,
        config: None,
    }
}

/// The names of the fixtures whose file name starts with `prefix`, sorted: each adapter's
/// tests compare them with the list they cover, so a new fixture cannot go untested.
pub fn fixture_names(prefix: &str) -> Vec<String> {
    let dir = format!("{}/tests/fixtures/payloads", env!("CARGO_MANIFEST_DIR"));
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .expect("the fixtures directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
        .collect();
    found.sort();
    found
}
