//! Test support for the adapters' fixture tests: the real payloads in
//! tests/fixtures/payloads/ (see its SOURCES.md).

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
