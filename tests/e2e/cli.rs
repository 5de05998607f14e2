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

/// `route-test` says which group an event joins and whether a silence, an inhibition or a
/// time interval would hold it at `--at`; `check` warns of an inhibit rule that never holds.
#[test]
fn route_test_shows_groups_and_holds_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("routes.yaml");
    std::fs::write(
        &cfg,
        r#"version: 1
sources:
  - name: generic
    kind: generic
endpoints:
  - { name: pager, kind: webhook, url: "http://127.0.0.1:1/p" }
  - { name: chat, kind: webhook, url: "http://127.0.0.1:1/c" }
routes:
  - name: grouped
    matchers: ['team="k8s"']
    to: [chat]
    group_by: [cluster]
  - name: office
    to: [pager]
    mute_time_intervals: [evenings]
time_intervals:
  - name: evenings
    time_intervals: [{ times: [{ start_time: '17:00', end_time: '24:00' }], location: Europe/Berlin }]
inhibit_rules:
  - source_matchers: ['alertname="ClusterDown"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [severity]
silences:
  - matchers: ['service="batch"']
    starts_at: 2026-12-01T00:00:00Z
    ends_at: 2026-12-02T00:00:00Z
    comment: migration
"#,
    )
    .unwrap();
    let payload = dir.path().join("alerts.json");
    std::fs::write(
        &payload,
        r#"[
  {"id": "a", "title": "Cluster down", "severity": "critical", "labels": {"alertname": "ClusterDown", "cluster": "c1"}},
  {"id": "b", "title": "Disk", "severity": "warning", "labels": {"alertname": "Disk", "cluster": "c1"}},
  {"id": "c", "title": "Batch", "severity": "critical", "labels": {"alertname": "Batch", "service": "batch"}},
  {"id": "d", "title": "Pods", "severity": "critical", "labels": {"alertname": "Pods", "team": "k8s", "cluster": "c2"}}
]"#,
    )
    .unwrap();
    let (c, p) = (cfg.to_str().unwrap(), payload.to_str().unwrap());
    let run = |at: &str| {
        let (code, out, err) =
            switchyard(&["route-test", "-c", c, "--source", "generic", "--at", at, p]);
        assert_eq!(code, 0, "{out}{err}");
        (out, err)
    };
    // 2026-12-01 10:00 UTC: the silence holds, no evening.
    let (out, err) = run("2026-12-01T10:00:00Z");
    let alerts: Vec<&str> = out.split("\nalert ").skip(1).collect();
    assert_eq!(alerts.len(), 4, "{out}");
    assert!(alerts[0].contains("held: no"), "{out}");
    assert!(alerts[1].contains("held: inhibited by alert 1"), "{out}");
    assert!(alerts[2].contains("held: silenced by config-"), "{out}");
    assert!(
        alerts[3].contains("group: grouped:{cluster=\"c2\"}"),
        "{out}"
    );
    assert!(alerts[3].contains("held: no"), "{out}");
    // The warning of the second rule, at its `equal` label.
    assert!(
        err.contains("warning: ") && err.contains(":25:13:") && err.contains("never inhibits"),
        "{err}"
    );
    // 18:00 in Berlin on another day: the evening interval holds the office route until
    // Berlin's midnight; the silence is over.
    let (out, _) = run("2026-12-05T17:00:00Z");
    let alerts: Vec<&str> = out.split("\nalert ").skip(1).collect();
    assert!(
        alerts[2].contains(
            "held: time interval evenings (endpoints pager) until 2026-12-05T23:00:00+00:00"
        ),
        "{out}"
    );
    let (code, _, err) = switchyard(&[
        "route-test",
        "-c",
        c,
        "--source",
        "generic",
        "--at",
        "soon",
        p,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--at"), "{err}");
}
