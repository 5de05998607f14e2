//! The config loader with its validation, on mutated real routes.yaml files.

use super::*;

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
