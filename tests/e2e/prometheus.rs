//! Prometheus straight to switchyard, without an Alertmanager: `path_prefix: /ingest/{source}`
//! in Prometheus' `alerting.alertmanagers` makes it POST its alerts to
//! `/ingest/{source}/api/v2/alerts`. The real `prometheus` binary (Debian package `prometheus`,
//! installed by scripts/test.sh) evaluates a rule that fires at once and sends it, with its
//! bearer credentials; the event reaches a real receiver.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::both_stores;
use crate::support::{eventually, fixture, skipped, wait_for, Receiver, Switchyard, TestStore};

fn config(url: &str) -> String {
    config_on(&TestStore::memory(), url)
}

fn config_on(store: &TestStore, url: &str) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
sources:
  - name: prometheus
    kind: alertmanager
    auth: {{ bearer: prom-t0ken }}
  - name: open
    kind: generic
endpoints:
  - name: hook
    kind: webhook
    url: {url}
    retry: {{ schedule: [50ms] }}
routes:
  - matchers: []
    to: [hook]
{}"#,
        store.section()
    )
}

#[actix_rt::test]
async fn the_alertmanager_api_path_takes_prometheus_bodies_with_the_sources_auth() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url));
    let body = fixture("alertmanager-api-v2-alerts-official-ha-example.json");
    let bearer = [("Authorization", "Bearer prom-t0ken")];

    let (s, b) = sy.ingest("prometheus/api/v2/alerts", &body, &bearer).await;
    assert_eq!(s, 202, "{b}");
    assert!(b["accepted"].as_u64().unwrap_or(0) >= 1, "{b}");
    assert_eq!(b["events"][0]["type"], "incident.created", "{b}");
    // Prometheus before 3.0 can be told `api_version: v1`: the same body.
    let (s, b) = sy.ingest("prometheus/api/v1/alerts", &body, &bearer).await;
    assert_eq!(s, 202, "{b}");

    // The source's auth applies on this path too.
    let (s, b) = sy
        .ingest(
            "prometheus/api/v2/alerts",
            &body,
            &[("Authorization", "Bearer wrong")],
        )
        .await;
    assert_eq!(s, 401, "{b}");
    // Only alertmanager sources have the path; other paths under a source are unknown.
    let (s, b) = sy.ingest("open/api/v2/alerts", &body, &[]).await;
    assert_eq!(s, 404, "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap_or("")
            .contains("kind: alertmanager"),
        "{b}"
    );
    let (s, _) = sy
        .ingest("prometheus/api/v2/silences", &body, &bearer)
        .await;
    assert_eq!(s, 404);
}

/// A running `prometheus`, stopped on drop.
struct Prometheus {
    child: Child,
    dir: tempfile::TempDir,
    log: std::path::PathBuf,
}

impl Prometheus {
    /// Starts `prometheus` on a free port, in a temporary directory, with one rule that fires
    /// at once (`vector(1)`, `for: 0s`, evaluated every second) and switchyard at `target`
    /// (`host:port`) as its Alertmanager under `path_prefix`, with bearer credentials.
    fn start(target: &str, path_prefix: &str, token: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = r#"groups:
  - name: switchyard-e2e
    interval: 1s
    rules:
      - alert: SwitchyardE2EAlwaysFiring
        expr: vector(1)
        for: 0s
        labels:
          severity: critical
          service: db-main
        annotations:
          summary: Always firing, from the real Prometheus
"#;
        std::fs::write(dir.path().join("rules.yml"), rules).expect("rules.yml");
        let config = format!(
            r#"global:
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - scheme: http
      api_version: v2
      path_prefix: {path_prefix}
      authorization:
        type: Bearer
        credentials: {token}
      static_configs:
        - targets: ['{target}']
"#
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("prometheus.yml");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = dir.path().join("prometheus.log");
        let child = Command::new("prometheus")
            .current_dir(dir.path())
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--rules.alert.resend-delay=1s")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")))
            .spawn()
            .expect("start prometheus");
        Prometheus { child, dir, log }
    }

    /// Removes every rule and reloads the configuration (SIGHUP), as an operator deleting
    /// the rule would: Prometheus then stops sending the alert, and sends no resolve for it.
    fn remove_rules(&self) {
        std::fs::write(self.dir.path().join("rules.yml"), "groups: []\n").expect("rules.yml");
        let sent = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(sent.success());
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- prometheus log ---\n{log}");
        }
    }
}

fn prometheus_installed() -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| Path::new(&d).join("prometheus").is_file())
    })
}

#[actix_rt::test]
async fn real_prometheus_with_path_prefix_creates_an_incident() {
    const TEST: &str = "prometheus::real_prometheus_with_path_prefix_creates_an_incident";
    if !prometheus_installed() {
        skipped(
            TEST,
            "no `prometheus` binary (scripts/test.sh installs it as root)",
        );
        return;
    }
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url));
    let target = sy
        .base
        .strip_prefix("http://")
        .expect("an http base URL")
        .trim_end_matches('/')
        .to_string();
    let _prom = Prometheus::start(&target, "/ingest/prometheus", "prom-t0ken");

    let created = wait_for("incident.created from Prometheus' alert", || {
        rx.delivered().into_iter().find(|r| {
            r.json()["type"] == "incident.created"
                && r.json()["data"]["incident"]["labels"]["alertname"]
                    == "SwitchyardE2EAlwaysFiring"
        })
    })
    .await;
    let incident = &created.json()["data"]["incident"];
    assert_eq!(incident["title"], "Always firing, from the real Prometheus");
    assert_eq!(incident["severity"], "critical");
    assert_eq!(incident["status"], "triggered");
    assert_eq!(incident["labels"]["service"], "db-main");
    assert_eq!(created.json()["source"]["name"], "prometheus");
    // Prometheus' link to the expression that fired.
    let links = incident["links"].as_array().cloned().unwrap_or_default();
    assert!(
        links
            .iter()
            .any(|l| l["url"].as_str().unwrap_or("").contains("/graph?g0.expr=")),
        "{links:?}"
    );
    // Prometheus' re-sends (every second here) fold into the same incident: one created.
    let metric = r#"switchyard_ingest_requests_total{source="prometheus",code="202"}"#;
    eventually("a second request from Prometheus", || async {
        sy.metric(metric).await.is_some_and(|n| n >= 2.0)
    })
    .await;
    let created_count = rx
        .delivered()
        .iter()
        .filter(|r| r.json()["type"] == "incident.created")
        .count();
    assert_eq!(created_count, 1);
}

/// Prometheus re-sends a firing alert with an `endsAt` 4 resend intervals ahead (4 s here);
/// a rule that is removed is not sent again, and no resolve is sent for it: switchyard
/// resolves the incident when the last `endsAt` passes (Alertmanager's behaviour), by its
/// durable timer.
async fn real_prometheus_removed_rule_resolves_after_ends_at(store: TestStore) {
    const TEST: &str = "prometheus::real_prometheus_removed_rule_resolves_after_ends_at";
    if !prometheus_installed() {
        skipped(
            TEST,
            "no `prometheus` binary (scripts/test.sh installs it as root)",
        );
        return;
    }
    let rx = Receiver::start();
    let sy = Switchyard::start(&config_on(&store, &rx.url));
    let target = sy
        .base
        .strip_prefix("http://")
        .expect("an http base URL")
        .trim_end_matches('/')
        .to_string();
    let prom = Prometheus::start(&target, "/ingest/prometheus", "prom-t0ken");
    let is = |r: &crate::support::Received, kind: &str| {
        r.json()["type"] == kind
            && r.json()["data"]["incident"]["labels"]["alertname"] == "SwitchyardE2EAlwaysFiring"
    };
    wait_for("incident.created from Prometheus' alert", || {
        rx.delivered()
            .into_iter()
            .find(|r| is(r, "incident.created"))
    })
    .await;
    // A few re-sends fold into it and move its expiry.
    let metric = r#"switchyard_ingest_requests_total{source="prometheus",code="202"}"#;
    eventually("Prometheus re-sent the alert", || async {
        sy.metric(metric).await.is_some_and(|n| n >= 3.0)
    })
    .await;
    assert!(!rx.delivered().iter().any(|r| is(r, "incident.resolved")));

    prom.remove_rules();
    let removed = std::time::Instant::now();
    let resolved = wait_for("incident.resolved after endsAt", || {
        rx.delivered()
            .into_iter()
            .find(|r| is(r, "incident.resolved"))
    })
    .await;
    // Not before the last endsAt (4 s after the last send, which was at most ~1 s before).
    let waited = removed.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(2),
        "resolved {waited:?} after the reload"
    );
    assert_eq!(resolved.json()["data"]["incident"]["status"], "resolved");
    // switchyard's timer resolved it, not a resolve from Prometheus.
    assert_eq!(
        sy.metric(r#"switchyard_incident_expiry_total{outcome="resolved"}"#)
            .await,
        Some(1.0)
    );
    drop(prom);
}
both_stores!(real_prometheus_removed_rule_resolves_after_ends_at);
