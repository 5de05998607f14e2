//! The routes.yaml examples of docs/INTEGRATIONS.md stay valid: every `yaml` block there is
//! made a whole config (its `${VARS}` set, a webhook endpoint and a route added) and checked
//! with `switchyard check`.

use std::path::Path;
use std::process::Command;

use crate::plugins::built_plugin;

/// The ```yaml blocks of a Markdown file, in order.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The `${NAME}` variables a block uses.
fn variables(block: &str) -> Vec<String> {
    block
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn every_integrations_example_passes_check() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/INTEGRATIONS.md"))
            .expect("docs/INTEGRATIONS.md");
    let blocks = yaml_blocks(&doc);
    assert!(
        blocks.len() >= 15,
        "only {} yaml blocks found",
        blocks.len()
    );
    let mut names = Vec::new();
    for block in &blocks {
        let dir = tempfile::tempdir().unwrap();
        if block.contains("kind: plugin") {
            let lib = dir.path().join("adapters/lib");
            std::fs::create_dir_all(&lib).unwrap();
            let from = built_plugin("switchyard_uptime_kuma");
            std::fs::copy(&from, lib.join(from.file_name().unwrap())).unwrap();
        }
        let config = format!(
            "version: 1\n{block}endpoints:\n  - {{ name: hook, kind: webhook, url: \"http://127.0.0.1:9/hook\" }}\nroutes:\n  - {{ matchers: [], to: [hook] }}\n"
        );
        let path = dir.path().join("routes.yaml");
        std::fs::write(&path, &config).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(["check", "-c"]).arg(&path);
        for var in variables(block) {
            // A CIDR where the example restricts senders, a token elsewhere.
            let value = if var.ends_with("_RANGE") || var.ends_with("_CIDR") {
                "192.0.2.0/24"
            } else {
                "test-value"
            };
            cmd.env(var, value);
        }
        let out = cmd.output().expect("run switchyard check");
        assert!(
            out.status.success(),
            "docs/INTEGRATIONS.md example fails `switchyard check`:\n{block}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        names.extend(
            block
                .lines()
                .filter_map(|l| l.trim().strip_prefix("- name: ").map(str::to_string)),
        );
    }
    // Each preset shipped is shown in at least one example.
    for preset in [
        "azure-monitor",
        "bitbucket-pipelines",
        "gcp-monitoring",
        "github-actions",
        "honeycomb",
        "newrelic",
        "pingdom",
        "splunk",
        "uptimerobot",
        "zabbix",
    ] {
        assert!(
            doc.contains(&format!("preset: {preset}")),
            "{preset} has no example"
        );
    }
    assert!(names.iter().any(|n| n == "aws"), "{names:?}");
}

#[test]
fn a_broken_example_would_be_caught() {
    // The same harness refuses a block with a typo, so the test above checks something.
    let block = "sources:\n  - name: x\n    kind: generic\n    preset: pingdomm\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, format!("version: 1\n{block}")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean `pingdom`"), "{err}");
}
