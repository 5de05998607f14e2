//! Property-based fuzzing (proptest) of everything that reads untrusted or hand-written text:
//! the built-in adapters (alertmanager, grafana, sentry, generic), the matcher parser, the
//! duration and rate parser, and the config loader with its validation.
//!
//! Inputs are arbitrary bytes and structure-aware mutations of the real payloads in
//! tests/fixtures/payloads/ and of real routes.yaml files: nodes replaced by values of other
//! types, keys dropped or added, bytes flipped, inserted, removed or cut off. The properties:
//! nothing panics, and every error is a clear one (a non-empty message; a JSON syntax error
//! has its line and column, a config error its place in the file).
//!
//! `cargo test` runs a few cases of each (128, a few seconds in all). Fuzz at length with
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release --lib fuzz_
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use crate::config::duration::{parse_duration, parse_rate};
use crate::config::load::load_str;
use crate::config::matcher::{MatchOp, Matcher};
use crate::config::types::{MappingConfig, SourceKind};
use crate::sources::test_fixtures::{fixture, fixture_names, source_config};
use crate::sources::{NormalizeError, SourceSpec};

/// 128 cases per property unless `PROPTEST_CASES` says otherwise; no regression files (a case
/// found is turned into a named regression test instead).
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 128;
    }
    c.failure_persistence = None;
    c
}

// ---------------------------------------------------------------------------------------
// Adapters
// ---------------------------------------------------------------------------------------

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

/// Every source the fuzzers feed: each built-in kind, generic with and without a mapping.
fn specs() -> Vec<SourceSpec> {
    vec![
        spec(SourceKind::Alertmanager),
        spec(SourceKind::Grafana),
        spec(SourceKind::Sentry),
        spec(SourceKind::Generic),
        generic_mapped(),
    ]
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

/// One change to a JSON document, applied to the `at`-th node (in document order, modulo the
/// number of nodes).
#[derive(Debug, Clone)]
enum JsonMutation {
    Replace {
        at: usize,
        with: serde_json::Value,
    },
    RemoveKey {
        at: usize,
    },
    AddKey {
        at: usize,
        key: String,
        value: serde_json::Value,
    },
    Wrap {
        at: usize,
        in_array: bool,
    },
    Truncate {
        at: usize,
    },
}

fn arb_json_leaf() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as V;
    prop_oneof![
        Just(V::Null),
        any::<bool>().prop_map(V::Bool),
        any::<i64>().prop_map(V::from),
        any::<u64>().prop_map(V::from),
        any::<f64>().prop_map(V::from),
        ".{0,24}".prop_map(V::String),
        // Words the adapters look for, in the wrong places.
        prop::sample::select(vec![
            "firing",
            "resolved",
            "alerting",
            "ok",
            "critical",
            "triggered",
            "0001-01-01T00:00:00Z",
            "2026-13-45T99:99:99Z",
            "9999-12-31T23:59:59Z",
            "-1",
            "",
        ])
        .prop_map(|s| V::String(s.to_string())),
    ]
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    arb_json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{1,10}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_json_mutation() -> impl Strategy<Value = JsonMutation> {
    prop_oneof![
        4 => (any::<usize>(), arb_json()).prop_map(|(at, with)| JsonMutation::Replace { at, with }),
        3 => any::<usize>().prop_map(|at| JsonMutation::RemoveKey { at }),
        2 => (any::<usize>(), "[a-zA-Z_]{1,12}", arb_json())
            .prop_map(|(at, key, value)| JsonMutation::AddKey { at, key, value }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(at, in_array)| JsonMutation::Wrap { at, in_array }),
        1 => any::<usize>().prop_map(|at| JsonMutation::Truncate { at }),
    ]
}

fn count_nodes(v: &serde_json::Value) -> usize {
    1 + match v {
        serde_json::Value::Array(a) => a.iter().map(count_nodes).sum(),
        serde_json::Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The path (child positions) of the `n`-th node in document order (0 = the root).
fn nth_path(v: &serde_json::Value, n: &mut usize, path: &mut Vec<usize>) -> bool {
    if *n == 0 {
        return true;
    }
    *n -= 1;
    let children: Vec<&serde_json::Value> = match v {
        serde_json::Value::Array(a) => a.iter().collect(),
        serde_json::Value::Object(o) => o.values().collect(),
        _ => return false,
    };
    for (i, c) in children.into_iter().enumerate() {
        path.push(i);
        if nth_path(c, n, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn node_at(root: &mut serde_json::Value, at: usize) -> &mut serde_json::Value {
    let mut n = at % count_nodes(root);
    let mut path = Vec::new();
    assert!(
        nth_path(root, &mut n, &mut path),
        "n is below the node count"
    );
    let mut node = root;
    for i in path {
        node = match node {
            serde_json::Value::Array(a) => &mut a[i],
            serde_json::Value::Object(o) => o.values_mut().nth(i).expect("the path's child"),
            _ => unreachable!("a path goes through collections only"),
        };
    }
    node
}

fn apply(doc: &mut serde_json::Value, m: &JsonMutation) {
    use serde_json::Value as V;
    match m {
        JsonMutation::Replace { at, with } => *node_at(doc, *at) = with.clone(),
        JsonMutation::RemoveKey { at } => match node_at(doc, *at) {
            V::Object(o) if !o.is_empty() => {
                let k = o.keys().nth(at % o.len()).cloned().unwrap();
                o.remove(&k);
            }
            V::Array(a) if !a.is_empty() => {
                a.remove(at % a.len());
            }
            _ => {}
        },
        JsonMutation::AddKey { at, key, value } => {
            if let V::Object(o) = node_at(doc, *at) {
                o.insert(key.clone(), value.clone());
            }
        }
        JsonMutation::Wrap { at, in_array } => {
            let node = node_at(doc, *at);
            let inner = node.take();
            *node = if *in_array {
                V::Array(vec![inner])
            } else {
                serde_json::json!({ "value": inner })
            };
        }
        JsonMutation::Truncate { at } => match node_at(doc, *at) {
            V::Array(a) => a.truncate(at % (a.len() + 1)),
            V::String(s) => {
                let cut = s.char_indices().map(|(i, _)| i).nth(at % (s.len() + 1));
                if let Some(i) = cut {
                    s.truncate(i);
                }
            }
            _ => {}
        },
    }
}

/// One change to the bytes of a document.
#[derive(Debug, Clone)]
enum ByteMutation {
    Flip { at: usize, bit: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
    Cut { at: usize },
}

fn arb_byte_mutation() -> impl Strategy<Value = ByteMutation> {
    let tokens: Vec<Vec<u8>> = [
        "{", "}", "[", "]", "\"", ":", ",", "\\", "\\u", "\\ud800", "null", "-", "1e999", "\n",
        "\u{0}", "\u{feff}", "\u{e9}", "${", "\t", "  ", "- ", "#", "&a", "*a", "!!str", "'",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .collect();
    prop_oneof![
        3 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| ByteMutation::Flip { at, bit }),
        3 => (any::<usize>(), prop_oneof![prop::sample::select(tokens), prop::collection::vec(any::<u8>(), 1..8)])
            .prop_map(|(at, bytes)| ByteMutation::Insert { at, bytes }),
        2 => (any::<usize>(), 1usize..16).prop_map(|(at, len)| ByteMutation::Remove { at, len }),
        1 => any::<usize>().prop_map(|at| ByteMutation::Cut { at }),
    ]
}

fn apply_bytes(doc: &mut Vec<u8>, m: &ByteMutation) {
    let n = doc.len();
    match m {
        ByteMutation::Flip { at, bit } if n > 0 => doc[at % n] ^= 1 << bit,
        ByteMutation::Flip { .. } => {}
        ByteMutation::Insert { at, bytes } => {
            let i = at % (n + 1);
            doc.splice(i..i, bytes.iter().copied());
        }
        ByteMutation::Remove { at, len } if n > 0 => {
            let i = at % n;
            doc.drain(i..(i + len).min(n));
        }
        ByteMutation::Remove { .. } => {}
        ByteMutation::Cut { at } => doc.truncate(at % (n + 1)),
    }
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

// ---------------------------------------------------------------------------------------
// Matchers
// ---------------------------------------------------------------------------------------

/// Writes `value` quoted as the matcher syntax reads it.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn check_matcher_error(input: &str) -> Result<(), TestCaseError> {
    if let Err(e) = Matcher::parse(input) {
        prop_assert!(
            !e.to_string().trim().is_empty(),
            "empty error for {input:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_matcher_arbitrary_text(input in ".{0,64}") {
        check_matcher_error(&input)?;
    }

    #[test]
    fn fuzz_matcher_near_the_syntax(
        parts in prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec!["=", "!=", "=~", "!~", "!", "~", "\"", "\\", "\\\"", "(", ")", "[", "*", "{", "}", " ", "a", "_", "9", "\u{e9}", "\n"]).prop_map(str::to_string),
                "[a-z_]{1,6}",
            ],
            0..12,
        ),
    ) {
        check_matcher_error(&parts.concat())?;
    }

    /// A matcher written from its parts reads back as those parts, and an equality matcher
    /// matches exactly its value.
    #[test]
    fn fuzz_matcher_round_trip(
        name in "[a-zA-Z_][a-zA-Z0-9_]{0,12}",
        op in prop::sample::select(vec![MatchOp::Equal, MatchOp::NotEqual, MatchOp::Regex, MatchOp::NotRegex]),
        value in ".{0,24}",
    ) {
        let text = format!("{name}{}{}", op.as_str(), quote(&value));
        match Matcher::parse(&text) {
            Ok(m) => {
                prop_assert_eq!(&m.name, &name);
                prop_assert_eq!(m.op, op);
                prop_assert_eq!(&m.value, &value);
                match op {
                    MatchOp::Equal => prop_assert!(m.matches(&value)),
                    MatchOp::NotEqual => prop_assert!(!m.matches(&value)),
                    _ => {}
                }
            }
            // Only a value that is not a valid regex may be refused.
            Err(e) => {
                prop_assert!(matches!(op, MatchOp::Regex | MatchOp::NotRegex), "{text:?}: {e}");
                prop_assert!(e.to_string().contains("invalid regex"), "{e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Durations and rates
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_duration_arbitrary_text(input in ".{0,32}") {
        if let Err(e) = parse_duration(&input) {
            let text = e.to_string();
            prop_assert!(text.contains("is not a duration"), "{text}");
        }
        if let Err(e) = parse_rate(&input) {
            let text = e.to_string();
            prop_assert!(text.contains("is not a rate"), "{text}");
        }
    }

    /// Durations written from parts read back as their sum; overflow is an error, not a panic.
    #[test]
    fn fuzz_duration_parts_sum(
        parts in prop::collection::vec(
            (prop_oneof![0u64..1000, any::<u64>()], prop::sample::select(vec!["ms", "s", "m", "h", "d"])),
            1..5,
        ),
    ) {
        let text: String = parts.iter().map(|(n, u)| format!("{n}{u}")).collect();
        let expected = parts.iter().try_fold(Duration::ZERO, |acc, (n, u)| {
            let ms: u64 = match *u { "ms" => 1, "s" => 1_000, "m" => 60_000, "h" => 3_600_000, _ => 86_400_000 };
            acc.checked_add(Duration::from_millis(n.checked_mul(ms)?))
        });
        match (parse_duration(&text), expected) {
            (Ok(d), Some(e)) => prop_assert_eq!(d, e),
            (Err(e), None) => prop_assert!(e.to_string().contains(&text)),
            (got, want) => prop_assert!(false, "{text}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn fuzz_rate_parts(n in any::<u64>(), unit in prop::sample::select(vec!["s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "", "x"])) {
        let text = format!("{n}/{unit}");
        let per = match unit {
            "s" | "sec" | "second" => Some(1),
            "m" | "min" | "minute" => Some(60),
            "h" | "hour" => Some(3600),
            _ => None,
        };
        match (parse_rate(&text), per) {
            (Ok(r), Some(p)) => {
                prop_assert_eq!(u64::from(r.count), n);
                prop_assert_eq!(r.per, Duration::from_secs(p));
            }
            (Err(e), p) => {
                prop_assert!(p.is_none() || n == 0 || n > u64::from(u32::MAX), "{text}: {e}");
                prop_assert!(e.to_string().contains(&text));
            }
            (Ok(r), None) => prop_assert!(false, "{text} read as {r:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The config loader
// ---------------------------------------------------------------------------------------

/// Real configs: the repository's routes.yaml and one with every section.
fn configs() -> Vec<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    vec![
        std::fs::read_to_string(format!("{root}/routes.yaml")).expect("routes.yaml"),
        FULL_CONFIG.to_string(),
    ]
}

const FULL_CONFIG: &str = r#"version: 1
server:
  listen: 127.0.0.1:${PORT:-8080}
  admin_token: ${TOKEN}
  max_body_bytes: 65536
sources:
  - name: prometheus
    kind: alertmanager
    auth: { bearer: "${TOKEN}" }
    labels: { env: prod }
  - name: custom
    kind: generic
    severity: error
    auth: { hmac: { secret: s3cret } }
    mapping: { title: /alert/name, dedup_key: /alert/id }
  - name: sentry
    kind: sentry
endpoints:
  - name: hook
    kind: webhook
    url: http://127.0.0.1:9/hook
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    headers: { X-Team: ops }
    timeout: 2s
    rate_limit: 30/m
    retry: { schedule: [50ms, 1s, 1h30m] }
    template: |
      {"text": {{ incident.title | tojson }}}
  - name: chat
    kind: slack
    url: https://hooks.slack.com/services/T/B/X
routes:
  - name: critical
    matchers: ['severity="critical"', 'env=~"prod|staging"']
    to: [hook, chat]
  - name: rest
    matchers: []
    to: [hook]
store:
  kind: memory
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "TOKEN" => Some("t0ken".into()),
        "PORT" => Some("8080".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// Loads `text`; every error names a place in the file and says something.
fn check_config(text: &str) -> Result<(), TestCaseError> {
    if let Err(errors) = load_str("routes.yaml", text, &env) {
        prop_assert!(!errors.is_empty(), "an Err without errors");
        // YAML's line breaks: `\r\n`, `\n`, and a lone `\r` (found by the fuzzer: "\r\r" is
        // three lines to YAML, and to an editor).
        let lines = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .split('\n')
            .count();
        for e in errors.iter() {
            prop_assert!(!e.message.trim().is_empty(), "empty message: {e:?}");
            prop_assert!(
                e.line >= 1 && e.line <= lines + 1,
                "line {} of {lines}: {e}",
                e.line
            );
            prop_assert!(e.col >= 1, "column {}: {e}", e.col);
            let place = format!("routes.yaml:{}:{}: ", e.line, e.col);
            prop_assert!(e.to_string().starts_with(&place), "{e}");
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum LineMutation {
    Delete(usize),
    Duplicate(usize),
    Indent(usize, usize),
    Dedent(usize),
    Insert(usize, String),
    Swap(usize, usize),
}

fn arb_line_mutation() -> impl Strategy<Value = LineMutation> {
    let snippets = prop::sample::select(vec![
        "${",
        "${NOPE}",
        "${TOKEN:-x}",
        "$$",
        "  - ",
        "key: value",
        "  timeout: 1x",
        "  retry: { schedule: [] }",
        "    kind: nosuch",
        "  - name: hook",
        "    matchers: ['a=~\"(\"']",
        "    template: '{{ x '",
        "anchor: &a [1, 2]",
        "alias: *a",
        "bad: *nowhere",
        "!!binary x",
        "? complex",
        ": lonely",
        "\t",
        "'unclosed",
        "\"unclosed",
        "{",
        "[",
        "---",
        "...",
        "%YAML 1.2",
        "version: 2",
        "\u{feff}",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        2 => any::<usize>().prop_map(LineMutation::Delete),
        1 => any::<usize>().prop_map(LineMutation::Duplicate),
        1 => (any::<usize>(), 1usize..5).prop_map(|(l, n)| LineMutation::Indent(l, n)),
        1 => any::<usize>().prop_map(LineMutation::Dedent),
        3 => (any::<usize>(), prop_oneof![snippets, ".{0,16}"]).prop_map(|(l, s)| LineMutation::Insert(l, s)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| LineMutation::Swap(a, b)),
    ]
}

fn apply_line(text: &str, m: &LineMutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len().max(1);
    match m {
        LineMutation::Delete(i) if !lines.is_empty() => {
            lines.remove(i % n);
        }
        LineMutation::Duplicate(i) if !lines.is_empty() => {
            let l = lines[i % n].clone();
            lines.insert(i % n, l);
        }
        LineMutation::Indent(i, k) if !lines.is_empty() => {
            lines[i % n].insert_str(0, &" ".repeat(*k));
        }
        LineMutation::Dedent(i) if !lines.is_empty() => {
            let l = &mut lines[i % n];
            *l = l.trim_start().to_string();
        }
        LineMutation::Insert(i, s) => {
            let at = i % (lines.len() + 1);
            lines.insert(at, s.clone());
        }
        LineMutation::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
        _ => {}
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Replaces the `at`-th scalar or collection of the YAML document with `with` (YAML written
/// from a JSON value), keeping the document's structure elsewhere.
fn mutate_yaml_value(text: &str, at: usize, with: &serde_json::Value) -> Option<String> {
    let mut doc: serde_json::Value = serde_yaml::from_str(text).ok()?;
    *node_at(&mut doc, at) = with.clone();
    serde_yaml::to_string(&doc).ok()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_config_arbitrary_text(text in ".{0,256}") {
        check_config(&text)?;
    }

    #[test]
    fn fuzz_config_arbitrary_bytes_mutations(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(arb_byte_mutation(), 1..6),
    ) {
        let mut bytes = which.get(&configs()).clone().into_bytes();
        for m in &mutations {
            apply_bytes(&mut bytes, m);
        }
        // Config files are text: a file that is not UTF-8 is refused when read.
        check_config(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn fuzz_config_line_mutations(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(arb_line_mutation(), 1..6),
    ) {
        let mut text = which.get(&configs()).clone();
        for m in &mutations {
            text = apply_line(&text, m);
        }
        check_config(&text)?;
    }

    #[test]
    fn fuzz_config_value_mutations(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec((any::<usize>(), arb_json()), 1..4),
    ) {
        let mut text = which.get(&configs()).replace("${TOKEN}", "t0ken").replace("${PORT:-8080}", "8080");
        for (at, with) in &mutations {
            if let Some(t) = mutate_yaml_value(&text, *at, with) {
                text = t;
            }
        }
        check_config(&text)?;
    }
}

#[test]
fn fuzz_config_errors_count_lines_as_yaml_does() {
    // Regression (fuzzer): lone carriage returns are line breaks in YAML.
    check_config("\r\r").unwrap();
    let errors = load_str("routes.yaml", "version: 1\r\rnope: 1\r", &env).unwrap_err();
    assert!(
        errors.to_string().starts_with("routes.yaml:3:1: "),
        "{errors}"
    );
}

#[test]
fn fuzz_config_the_real_configs_load() {
    // The mutations start from configs that load, so what they find is the mutation's doing.
    for text in configs() {
        load_str("routes.yaml", &text, &env).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

#[test]
fn fuzz_config_deep_nesting_is_a_clear_error() {
    // Not deeper: the YAML scanner's time grows with the square of the flow depth (100,000
    // unclosed `[` take 40 s in a debug build), and a config file is the operator's own.
    for text in [
        format!("version: 1\nx: {}\n", "[".repeat(5_000)),
        format!(
            "version: 1\nsources: {}{}\n",
            "[".repeat(5_000),
            "]".repeat(5_000)
        ),
        format!("version: 1\nsources: {}\n", "{a: ".repeat(5_000)),
        format!("version: 1\nsources:\n{}", "- ".repeat(5_000)),
        "a: &a [*a]\n".to_string(),
    ] {
        let errors = load_str("routes.yaml", &text, &env).expect_err("refused");
        for e in errors.iter() {
            assert!(!e.message.is_empty() && e.line >= 1 && e.col >= 1, "{e}");
        }
    }
}
