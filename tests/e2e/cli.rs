//! The CLI: `check` and `route-test` on real files.

use std::path::Path;

use crate::support::{check_yaml, run_cli as switchyard};

#[test]
fn check_accepts_the_example_routes_yaml() {
    let (code, out, err) = switchyard(&["check", "-c", "routes.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("routes.yaml: OK"), "{out}");
}

#[test]
fn check_reports_every_error_with_file_line_col() {
    let c = check_yaml(
        "version: 1\nendpoints:\n  - name: ops-slack\n    kind: webhook\n    url: http://127.0.0.1:1/x\nroutes:\n  - matchers: ['a=~\"(\"']\n    to: [ops-slak]\n",
    );
    let (p, code, out, err) = (c.path.as_str(), c.code, &c.out, &c.err);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!("{p}:8:")),
        "unknown endpoint located on line 8: {err}"
    );
    assert!(err.contains("did you mean `ops-slack`"), "{err}");
    assert!(
        err.contains(&format!("{p}:7:")),
        "bad regex located on line 7: {err}"
    );
}

#[test]
fn check_reports_yaml_syntax_errors_unclosed_interpolation_and_unreadable_files() {
    let c = check_yaml("version: 1\nserver:\n\tlisten: 127.0.0.1:1\n");
    assert_eq!(c.code, 1, "{}", c.err);
    assert!(
        c.err.contains(&format!("{}:3:1: ", c.path)) && c.err.contains("(a tab: indent"),
        "{}",
        c.err
    );
    let c = check_yaml("version: 1\nserver:\n  admin_token: ${TOKEN\n");
    assert_eq!(c.code, 1, "{}", c.err);
    assert!(
        c.err.contains(&format!(
            "{}:3:16: unclosed `${{`: expected `${{VAR}}` or `${{VAR:-default}}`",
            c.path
        )),
        "{}",
        c.err
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let (code, out, err) = switchyard(&["check", "-c", missing.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!(
            "{}: cannot read the config file: No such file or directory",
            missing.display()
        )),
        "{err}"
    );
    // `serve` with it exits at once with the same message, instead of starting.
    let (code, _, err) = switchyard(&["serve", "-c", missing.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot read the config file"), "{err}");
}

#[test]
fn route_test_prints_events_and_checks_expectations() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("routes.yaml");
    std::fs::write(
        &cfg,
        r#"version: 1
sources:
  - name: prometheus
    kind: alertmanager
endpoints:
  - { name: db-team, kind: webhook, url: "http://127.0.0.1:1/db" }
  - { name: everyone, kind: webhook, url: "http://127.0.0.1:1/all" }
routes:
  - name: db
    matchers: ['alertname="Fire"']
    to: [db-team]
default: [everyone]
"#,
    )
    .unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/payloads/alertmanager-webhook-firing-alertmanager-bot.json");
    let c = cfg.to_str().unwrap();
    let f = fixture.to_str().unwrap();
    let (code, out, err) = switchyard(&[
        "route-test",
        "-c",
        c,
        "--source",
        "prometheus",
        "--expect",
        "db-team",
        f,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("event: incident.created"), "{out}");
    assert!(out.contains("endpoints: db-team"), "{out}");
    let (code, out, _) = switchyard(&[
        "route-test",
        "-c",
        c,
        "--source",
        "prometheus",
        "--expect",
        "everyone",
        f,
    ]);
    assert_eq!(code, 1, "a different expectation fails: {out}");
    assert!(out.contains("MISMATCH"));
    let (code, _, err) = switchyard(&["route-test", "-c", c, "--source", "nope", f]);
    assert_eq!(code, 1);
    assert!(err.contains("no source named `nope`"), "{err}");
}

/// `--version` names the commit the binary was built from (git's own answer, when this is a
/// git checkout).
#[test]
fn version_names_the_release_and_the_commit() {
    let (code, out, err) = switchyard(&["--version"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("switchyard {} (", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    let git = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match git {
        Ok(g) if g.status.success() => {
            let commit = String::from_utf8_lossy(&g.stdout).trim().to_string();
            assert!(out.contains(&format!("({commit})")), "{out} vs {commit}");
        }
        _ => assert!(out.contains("(unknown commit)"), "{out}"),
    }
}

/// Completions and the man page come from the same command definition.
#[test]
fn completions_and_man_page_cover_every_command() {
    let (code, bash, err) = switchyard(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    for sub in [
        "serve",
        "check",
        "route-test",
        "plugins",
        "completions",
        "man",
    ] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    let (code, zsh, _) = switchyard(&["completions", "zsh"]);
    assert_eq!(code, 0);
    assert!(zsh.starts_with("#compdef switchyard"), "{zsh}");
    let (code, man, err) = switchyard(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(man.contains(".TH switchyard 1"), "{man}");
    assert!(man.contains("route\\-test"), "{man}");
}

/// Commands that print an answer print nothing else: no log lines on stderr.
#[test]
fn check_and_route_test_print_their_answer_without_log_noise() {
    let (code, out, err) = switchyard(&["check", "-c", "routes.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "stderr: {err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let (code, out, err) = switchyard(&[
        "route-test",
        "-c",
        "routes.yaml",
        "--source",
        "prometheus",
        "tests/fixtures/payloads/alertmanager-webhook-firing-alertmanager-bot.json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.is_empty(), "stderr: {err}");
    assert!(!out.is_empty());
}

/// `events:` takes `*` and prefixes such as `incident.*`; `enabled: false` sends nothing.
#[test]
fn event_patterns_and_disabled_endpoints_decide_where_an_event_goes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("routes.yaml");
    std::fs::write(
        &cfg,
        r#"version: 1
sources:
  - name: prometheus
    kind: alertmanager
endpoints:
  - { name: all-incidents, kind: webhook, url: "http://127.0.0.1:1/a", events: ["incident.*"] }
  - { name: everything, kind: webhook, url: "http://127.0.0.1:1/b", events: ["*"] }
  - { name: resolves, kind: webhook, url: "http://127.0.0.1:1/c", events: [incident.resolved] }
  - { name: paused, kind: webhook, url: "http://127.0.0.1:1/d", enabled: false }
routes:
  - name: all
    matchers: []
    to: [all-incidents, everything, resolves, paused]
"#,
    )
    .unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/payloads/alertmanager-webhook-firing-alertmanager-bot.json");
    let (c, f) = (cfg.to_str().unwrap(), fixture.to_str().unwrap());
    let args = |expect: &'static str| {
        vec![
            "route-test",
            "-c",
            c,
            "--source",
            "prometheus",
            "--expect",
            expect,
            f,
        ]
    };
    let (code, out, err) = switchyard(&args("all-incidents,everything"));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = switchyard(&args("all-incidents,everything,paused"));
    assert_eq!(code, 1, "a disabled endpoint gets nothing: {out}");

    let bad = check_yaml(
        "version: 1\nendpoints:\n  - { name: e, kind: webhook, url: 'http://127.0.0.1:1/', events: ['alert.*'] }\n",
    );
    assert_eq!(bad.code, 1);
    assert!(bad.err.contains("matches no event type"), "{}", bad.err);
}
