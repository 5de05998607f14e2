//! Adapter plugins end to end: the real cdylibs cargo built from adapters/ (they are
//! dev-dependencies of switchyard, so `cargo test` builds them next to the binary), copied
//! into a temporary plugins directory and loaded by the real binary.

use std::path::{Path, PathBuf};

use crate::support::{fixture, Receiver, Switchyard};

/// The file cargo built for library `lib_name` (e.g. `switchyard_uptime_kuma`).
pub fn built_plugin(lib_name: &str) -> PathBuf {
    let file = format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_switchyard"))
        .parent()
        .expect("the binary's directory");
    // `cargo build` leaves one next to the binary and `cargo test` one in deps/: the newer.
    [bin_dir.join(&file), bin_dir.join("deps").join(&file)]
        .into_iter()
        .filter(|p| p.is_file())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| {
            panic!(
                "{file} not found next to {} (run `cargo build --workspace`)",
                bin_dir.display()
            )
        })
}

/// A temporary plugins directory holding copies of these built libraries.
fn plugins_dir(libs: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (lib, as_name) in libs {
        let to = dir.path().join(format!(
            "{}{as_name}{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ));
        std::fs::copy(built_plugin(lib), &to).unwrap();
    }
    dir
}

fn config(url: &str, dir: &Path) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
plugins:
  dir: {dir}
  timeout: 1s
sources:
  - name: kuma
    kind: plugin
    plugin: uptime-kuma
    labels: {{ team: sre }}
    config: {{ base_url: "https://kuma.example.com" }}
  - name: panicky
    kind: plugin
    plugin: test-panic
endpoints:
  - name: hook
    kind: webhook
    url: {url}
    retry: {{ schedule: [50ms] }}
routes:
  - matchers: []
    to: [hook]
"#,
        dir = dir.display()
    )
}

use crate::support::run_cli as run;

#[actix_rt::test]
async fn uptime_kuma_plugin_down_then_up_reaches_the_receiver() {
    let dir = plugins_dir(&[
        ("switchyard_uptime_kuma", "switchyard_uptime_kuma"),
        ("switchyard_test_panic", "switchyard_test_panic"),
    ]);
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url, dir.path()));

    // Uptime Kuma posts with axios: JSON, no signature.
    let ua = ("User-Agent", "axios/0.27.2");
    let (s, b) = sy
        .ingest("kuma", &fixture("uptimekuma-webhook-down.json"), &[ua])
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["events"][0]["type"], "incident.created");
    let (s, b) = sy
        .ingest("kuma", &fixture("uptimekuma-webhook-up.json"), &[ua])
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["events"][0]["type"], "incident.resolved");

    let got = rx.wait_delivered(2).await;
    let created = got[0].json();
    assert_eq!(created["type"], "incident.created");
    assert_eq!(
        created["source"],
        serde_json::json!({"name": "kuma", "kind": "plugin"})
    );
    let inc = &created["data"]["incident"];
    assert_eq!(inc["dedup_key"], "89");
    assert_eq!(inc["title"], "test is down");
    assert_eq!(inc["severity"], "critical");
    assert_eq!(
        inc["description"],
        "getaddrinfo ENOTFOUND exampleasdsda.com"
    );
    assert_eq!(inc["labels"]["monitor"], "test");
    assert_eq!(
        inc["labels"]["team"], "sre",
        "the source's labels are added"
    );
    assert_eq!(
        inc["links"][1],
        serde_json::json!({"label": "Uptime Kuma", "url": "https://kuma.example.com/dashboard/89"}),
        "the source's config reached the plugin"
    );
    let resolved = got[1].json();
    assert_eq!(resolved["type"], "incident.resolved");
    assert_eq!(resolved["data"]["incident"]["id"], inc["id"]);

    // A body the plugin refuses is a 400 with the plugin's message.
    let (s, b) = sy
        .ingest("kuma", br#"{"heartbeat":{"status":7}}"#, &[])
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_payload")),
        "{b}"
    );
    assert!(b["detail"].as_str().unwrap().contains("uptime-kuma"), "{b}");
}

#[actix_rt::test]
async fn a_panicking_plugin_gets_500_and_switchyard_keeps_running() {
    let dir = plugins_dir(&[
        ("switchyard_uptime_kuma", "switchyard_uptime_kuma"),
        ("switchyard_test_panic", "switchyard_test_panic"),
    ]);
    let rx = Receiver::start();
    // Without RUST_BACKTRACE, a panic does not spend the call's time writing a backtrace.
    let sy = Switchyard::start_with_env(&config(&rx.url, dir.path()), &[("RUST_BACKTRACE", "0")]);

    for _ in 0..3 {
        let (s, b) = sy.ingest("panicky", br#"{"panic": true}"#, &[]).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (500, Some("plugin_panicked")),
            "{b}"
        );
        assert!(
            b["detail"]
                .as_str()
                .unwrap()
                .contains("test-panic was asked to panic"),
            "{b}"
        );
    }
    let (s, _) = sy.get("/healthz").await;
    assert_eq!(s, 200, "the process is still up");
    // The same plugin and the other one still work.
    let (s, b) = sy.ingest("panicky", br#"{"id": "ok-1"}"#, &[]).await;
    assert_eq!(
        (s, b["events"][0]["type"].as_str()),
        (202, Some("incident.created")),
        "{b}"
    );
    let (s, _) = sy
        .ingest("kuma", &fixture("uptimekuma-webhook-down.json"), &[])
        .await;
    assert_eq!(s, 202);
    rx.wait_delivered(2).await;

    // A call over the time limit is a 504, and the process stays up.
    let slow = br#"{"sleep_ms": 5000}"#;
    let (s, b) = sy.ingest("panicky", slow, &[]).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (504, Some("plugin_timeout")),
        "{b}"
    );
    let (s, _) = sy.get("/healthz").await;
    assert_eq!(s, 200);

    // The timed-out call still holds one of the 4 slots: of 5 more slow calls, 3 run (504)
    // and 2 find no slot within the time limit (503).
    let calls = (0..5).map(|_| sy.ingest("panicky", slow, &[]));
    let mut codes: Vec<u16> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    codes.sort();
    assert_eq!(codes, [503, 503, 504, 504, 504]);

    let calls = |outcome: &str| {
        format!("switchyard_plugin_calls_total{{plugin=\"test-panic\",outcome=\"{outcome}\"}}")
    };
    assert_eq!(sy.metric(&calls("panicked")).await, Some(3.0));
    assert_eq!(sy.metric(&calls("ok")).await, Some(1.0));
    assert_eq!(sy.metric(&calls("timeout")).await, Some(4.0));
    assert_eq!(sy.metric(&calls("busy")).await, Some(2.0));
}

#[actix_rt::test]
async fn a_failing_plugin_gets_502_and_malformed_alerts_from_it_are_refused() {
    let dir = plugins_dir(&[("switchyard_test_panic", "switchyard_test_panic")]);
    let rx = Receiver::start();
    let cfg = config(&rx.url, dir.path()).replace(
        "  - name: kuma\n    kind: plugin\n    plugin: uptime-kuma\n    labels: { team: sre }\n    config: { base_url: \"https://kuma.example.com\" }\n",
        "",
    );
    assert!(!cfg.contains("uptime-kuma"));
    let sy = Switchyard::start(&cfg);
    for (body, detail) in [
        (
            r#"{"fail": "the tool's API is down"}"#,
            "plugin `test-panic` failed: the tool's API is down",
        ),
        (
            r#"{"bad": "empty_key"}"#,
            "plugin `test-panic` failed: alert 0 has an empty dedup_key",
        ),
        (
            r#"{"bad": "time", "id": "t-1"}"#,
            "plugin `test-panic` failed: alert 0: started_at `yesterday at noon` is not RFC 3339",
        ),
    ] {
        let (s, b) = sy.ingest("panicky", body.as_bytes(), &[]).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (502, Some("plugin_failed")),
            "{b}"
        );
        assert!(
            b["detail"].as_str().unwrap().starts_with(detail),
            "{body}: {b}"
        );
    }
    // Nothing was recorded; the plugin and the process still work.
    let (s, b) = sy.ingest("panicky", br#"{"id": "fine"}"#, &[]).await;
    assert_eq!(
        (s, b["events"][0]["type"].as_str()),
        (202, Some("incident.created")),
        "{b}"
    );
    let got = rx.wait_delivered(1).await;
    assert_eq!(got[0].json()["data"]["incident"]["dedup_key"], "fine");
    let failed = sy
        .metric("switchyard_plugin_calls_total{plugin=\"test-panic\",outcome=\"failed\"}")
        .await;
    assert_eq!(failed, Some(3.0));
    assert_eq!(rx.received().len(), 1, "only the good alert was delivered");
}

/// `server.max_inflight_requests`: while its permits are held by requests still being
/// processed (here a plugin call that waits for a file), another request is answered 503 with
/// `Retry-After` and records nothing; once they finish, requests are accepted again. Holds
/// whether the permit is taken before or after the body is read (the held request's body is
/// whole).
#[actix_rt::test]
async fn max_inflight_requests_answers_503_while_its_permits_are_held() {
    let dir = plugins_dir(&[("switchyard_test_panic", "switchyard_test_panic")]);
    let rx = Receiver::start();
    let cfg = config(&rx.url, dir.path())
        .replace(
            "  - name: kuma\n    kind: plugin\n    plugin: uptime-kuma\n    labels: { team: sre }\n    config: { base_url: \"https://kuma.example.com\" }\n",
            "  - name: open\n    kind: generic\n",
        )
        .replace("  timeout: 1s", "  timeout: 60s")
        .replace("listen: 127.0.0.1:0", "listen: 127.0.0.1:0\n  max_inflight_requests: 2");
    let sy = Switchyard::start(&cfg);
    let gate = tempfile::tempdir().unwrap();
    let open_gate = gate.path().join("open");
    let held = serde_json::json!({"id": "held", "wait_for_file": open_gate}).to_string();
    // Two requests take both permits and wait inside the plugin; meanwhile a third comes.
    let holders =
        futures_util::future::join_all((0..2).map(|_| sy.ingest("panicky", held.as_bytes(), &[])));
    let meanwhile = async {
        crate::support::eventually("both permits held", || async {
            sy.metric("switchyard_ingest_in_flight").await == Some(2.0)
        })
        .await;
        let client = awc::Client::default();
        let mut resp = client
            .post(sy.url("/ingest/open"))
            .insert_header(("Content-Type", "application/json"))
            .send_body(r#"{"title": "refused", "id": "r"}"#)
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("Retry-After").cloned();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let recorded = sy
            .metric("switchyard_alerts_received_total{source=\"open\"}")
            .await;
        // Let the held requests go.
        std::fs::write(&open_gate, b"").unwrap();
        (status, retry_after, body, recorded)
    };
    let (done, (status, retry_after, body, recorded)) = futures_util::join!(holders, meanwhile);
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.unwrap(), "1");
    assert_eq!(body["error"], "unavailable", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("too many ingest requests in flight"),
        "{body}"
    );
    assert_eq!(recorded, Some(0.0), "the refused request recorded nothing");
    assert!(done.iter().all(|(s, _)| *s == 202), "{done:?}");
    let (s, b) = sy
        .ingest("open", br#"{"title": "after", "id": "a"}"#, &[])
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(sy.metric("switchyard_ingest_in_flight").await, Some(0.0));
}

#[test]
fn wrong_abi_missing_symbol_and_name_clash_are_refused_naming_the_file() {
    let dir = plugins_dir(&[
        ("switchyard_uptime_kuma", "switchyard_uptime_kuma"),
        ("switchyard_uptime_kuma", "kuma_copy"),
        ("switchyard_test_bad_abi", "switchyard_test_bad_abi"),
    ]);
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("routes.yaml");
    std::fs::write(
        &cfg,
        config("http://127.0.0.1:9/hook", dir.path()).replace(
            "  - name: panicky\n    kind: plugin\n    plugin: test-panic\n",
            "",
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();

    let (code, out, err) = run(&["check", "-c", cfg]);
    assert_eq!(code, 1, "{out}{err}");
    let bad = dir.path().join("libswitchyard_test_bad_abi.so");
    let bad = bad.to_str().unwrap();
    assert!(
        err.contains(&format!(
            "{bad}: plugin ABI version 999, but this switchyard speaks version 1"
        )),
        "{err}"
    );
    assert!(
        err.contains("a plugin named `uptime-kuma` is already loaded from"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{cfg}:5:")),
        "located at plugins.dir: {err}"
    );

    // `serve` refuses to start with the same messages.
    let (code, _, err) = run(&["serve", "-c", cfg]);
    assert_eq!(code, 1);
    assert!(err.contains("ABI version 999"), "{err}");
    assert!(err.contains("not starting"), "{err}");

    // A library that is not a plugin at all.
    std::fs::remove_file(bad).unwrap();
    std::fs::remove_file(dir.path().join("libkuma_copy.so")).unwrap();
    std::fs::copy(
        built_plugin("switchyard_uptime_kuma"),
        dir.path().join("libuptime.so"),
    )
    .unwrap();
    std::fs::write(dir.path().join("libnot_a_library.so"), b"not ELF").unwrap();
    let (code, _, err) = run(&["check", "-c", cfg]);
    assert_eq!(code, 1);
    assert!(
        err.contains("libnot_a_library.so: cannot load the library"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("libnot_a_library.so")).unwrap();
    std::fs::remove_file(dir.path().join("libuptime.so")).unwrap();

    let (code, out, err) = run(&["check", "-c", cfg]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 plugins"), "{out}");
    let (code, out, err) = run(&["plugins", "-c", cfg]);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("uptime-kuma"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("0.1.0"), "{line}");
    assert!(line.contains("libswitchyard_uptime_kuma.so"), "{line}");
}

#[test]
fn a_plugin_source_naming_an_unknown_plugin_is_a_config_error() {
    let dir = plugins_dir(&[("switchyard_uptime_kuma", "switchyard_uptime_kuma")]);
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("routes.yaml");
    std::fs::write(&cfg, config("http://127.0.0.1:9/hook", dir.path())).unwrap();
    let (code, _, err) = run(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no loaded plugin is named `test-panic` (loaded: uptime-kuma)"),
        "{err}"
    );
}

#[test]
fn missing_symbol_is_refused_naming_the_symbol() {
    // Any shared library that is not a plugin: one this test process has loaded itself (the
    // C library, libgcc_s, ...), so there always is one; the test fails, never skips.
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    let libm = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(Path::new)
        .find(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("lib") && n.contains(".so"))
        })
        .unwrap_or_else(|| panic!("no shared library mapped into this process:\n{maps}"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(libm, dir.path().join("libm.so")).unwrap();
    let cfg = dir.path().join("routes.yaml");
    std::fs::write(
        &cfg,
        format!("version: 1\nplugins: {{ dir: {} }}\n", dir.path().display()),
    )
    .unwrap();
    let (code, _, err) = run(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("libm.so: not a switchyard adapter plugin: symbol `switchyard_adapter_abi_version` is missing"),
        "{err}"
    );
}
