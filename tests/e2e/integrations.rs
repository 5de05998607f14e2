//! The integrations of issue 17 end to end, through the real binary: presets of the generic
//! mapping with the tools' real bodies and headers (GitHub signed with `X-Hub-Signature-256`,
//! Honeycomb's token header, Pingdom, AppDynamics and Kibana with basic auth, Better Stack),
//! fire then resolve at a real receiver; and `allow_from`
//! with `X-Forwarded-For` read only from trusted proxies.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::{fixture, Receiver, Switchyard};

const GITHUB_SECRET: &str = "gh-s3cret";
const HONEYCOMB_TOKEN: &str = "would you like to play a game";

fn config(url: &str) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
sources:
  - name: github
    kind: generic
    preset: github-actions
    delivery_id_header: X-GitHub-Delivery
    auth: {{ hmac: {{ secret: {GITHUB_SECRET}, header: X-Hub-Signature-256, prefix: "sha256=" }} }}
  - name: honeycomb
    kind: generic
    preset: honeycomb
    auth: {{ header: {{ name: X-Honeycomb-Webhook-Token, value: {HONEYCOMB_TOKEN} }} }}
  - name: pingdom
    kind: generic
    preset: pingdom
    mapping: {{ url_label: Pingdom check }}
  - name: appdynamics
    kind: generic
    preset: appdynamics
    auth: {{ basic: {{ username: appd, password: appd-pw }} }}
  - name: kibana
    kind: generic
    preset: elastic-kibana
    auth: {{ basic: {{ username: kibana, password: kibana-pw }} }}
  - name: betterstack
    kind: generic
    preset: betterstack
    allow_from: [127.0.0.0/8]
  - name: office
    kind: generic
    allow_from: [10.0.0.0/8]
  - name: proxied
    kind: generic
    allow_from: [10.0.0.0/8]
    trusted_proxies: [127.0.0.1/32]
  - name: local
    kind: generic
    allow_from: [127.0.0.0/8, "::1"]
endpoints:
  - name: hook
    kind: webhook
    url: {url}
    retry: {{ schedule: [50ms] }}
routes:
  - matchers: []
    to: [hook]
"#
    )
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(GITHUB_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post_github(sy: &Switchyard, event: &str, delivery: &str, body: &[u8]) -> (u16, Value) {
    let sig = sign(body);
    sy.ingest(
        "github",
        body,
        &[
            ("User-Agent", "GitHub-Hookshot/abc1234"),
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", &sig),
        ],
    )
    .await
}

fn with(name: &str, pointer: &str, value: Value) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
    *v.pointer_mut(pointer).unwrap() = value;
    serde_json::to_vec(&v).unwrap()
}

fn types(b: &Value) -> Vec<String> {
    b["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|x| x["type"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[actix_rt::test]
async fn github_workflow_runs_signed_fail_then_succeed() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url));

    // The ping GitHub sends when the hook is made, and a requested run: nothing.
    let (s, b) = post_github(&sy, "ping", "d-1", &fixture("github-ping.json")).await;
    assert_eq!((s, &b["accepted"]), (202, &json!(0)), "{b}");
    let (s, b) = post_github(
        &sy,
        "workflow_run",
        "d-2",
        &fixture("github-workflow-run-requested.json"),
    )
    .await;
    assert_eq!((s, &b["accepted"]), (202, &json!(0)), "{b}");

    let failed = with(
        "github-workflow-run-completed-success.json",
        "/workflow_run/conclusion",
        json!("failure"),
    );
    let (s, b) = post_github(&sy, "workflow_run", "d-3", &failed).await;
    assert_eq!(
        (s, types(&b)),
        (202, vec!["incident.created".to_string()]),
        "{b}"
    );
    // GitHub redelivering it (same X-GitHub-Delivery): answered, not recorded again.
    let (s, b) = post_github(&sy, "workflow_run", "d-3", &failed).await;
    assert_eq!((s, &b["accepted"]), (202, &json!(0)), "{b}");
    let (s, b) = post_github(
        &sy,
        "workflow_run",
        "d-4",
        &fixture("github-workflow-run-completed-success.json"),
    )
    .await;
    assert_eq!(
        (s, types(&b)),
        (202, vec!["incident.resolved".to_string()]),
        "{b}"
    );

    let got = rx.wait_delivered(2).await;
    let created = got[0].json();
    assert_eq!(created["data"]["incident"]["title"], "test");
    assert_eq!(
        created["data"]["incident"]["labels"]["repository"],
        "octo-org/octo-repo"
    );
    assert_eq!(
        created["data"]["incident"]["links"][0]["url"],
        "https://github.com/octo-org/octo-repo/actions/runs/289782451"
    );
    assert_eq!(got[1].json()["type"], "incident.resolved");

    // A body signed with another secret, or changed after signing, is refused.
    let mut tampered = fixture("github-workflow-run-completed-success.json");
    let sig = sign(&tampered);
    tampered[10] ^= 1;
    let (s, _) = sy
        .ingest("github", &tampered, &[("X-Hub-Signature-256", &sig)])
        .await;
    assert_eq!(s, 401);
}

#[actix_rt::test]
async fn honeycomb_token_and_pingdom_down_then_up() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url));

    let body = fixture("honeycomb-trigger-triggered.json");
    let (s, _) = sy
        .ingest(
            "honeycomb",
            &body,
            &[("X-Honeycomb-Webhook-Token", "wrong")],
        )
        .await;
    assert_eq!(s, 401);
    let (s, b) = sy
        .ingest(
            "honeycomb",
            &body,
            &[("X-Honeycomb-Webhook-Token", HONEYCOMB_TOKEN)],
        )
        .await;
    assert_eq!(
        (s, types(&b)),
        (202, vec!["incident.created".to_string()]),
        "{b}"
    );

    let (s, b) = sy
        .ingest("pingdom", &fixture("pingdom-http-up-to-down.json"), &[])
        .await;
    assert_eq!(
        (s, types(&b)),
        (202, vec!["incident.created".to_string()]),
        "{b}"
    );
    let up = with(
        "pingdom-http-up-to-down.json",
        "/current_state",
        json!("UP"),
    );
    let (s, b) = sy.ingest("pingdom", &up, &[]).await;
    assert_eq!(
        (s, types(&b)),
        (202, vec!["incident.resolved".to_string()]),
        "{b}"
    );
    let got = rx.wait_delivered(3).await;
    let pingdom = got
        .iter()
        .map(|r| r.json())
        .find(|e| e["source"]["name"] == "pingdom")
        .expect("a pingdom event");
    // The source's own mapping key wins over the preset's.
    assert_eq!(
        pingdom["data"]["incident"]["links"][0]["label"],
        "Pingdom check"
    );
}

#[actix_rt::test]
async fn allow_from_refuses_other_addresses() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url));
    let body = br#"{"title": "from somewhere", "id": "a1"}"#;

    // The test connects from 127.0.0.1, which `office` does not allow.
    let (s, b) = sy.ingest("office", body, &[]).await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["detail"].as_str().unwrap_or("").contains("127.0.0.1"),
        "{b}"
    );
    // X-Forwarded-For is not read from a peer that is not a trusted proxy.
    let (s, _) = sy
        .ingest("office", body, &[("X-Forwarded-For", "10.1.2.3")])
        .await;
    assert_eq!(s, 403);
    // Through a trusted proxy (127.0.0.1 for `proxied`), the forwarded sender decides.
    let (s, b) = sy
        .ingest("proxied", body, &[("X-Forwarded-For", "10.1.2.3")])
        .await;
    assert_eq!(s, 202, "{b}");
    let (s, _) = sy
        .ingest(
            "proxied",
            body,
            &[("X-Forwarded-For", "10.1.2.3, 203.0.113.9")],
        )
        .await;
    assert_eq!(s, 403);
    let (s, b) = sy.ingest("local", body, &[]).await;
    assert_eq!(s, 202, "{b}");

    let refused = sy
        .metric(r#"switchyard_ingest_requests_total{source="office",code="403"}"#)
        .await;
    assert!(refused.unwrap_or(0.0) >= 2.0, "{refused:?}");
}

/// `Authorization: Basic` of `user:password`, as an AppDynamics HTTP request template with
/// basic authentication and a Kibana webhook connector with basic authentication send it.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[actix_rt::test]
async fn appdynamics_kibana_and_betterstack_fire_then_resolve() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url));
    let json_type = ("Content-Type", "application/json");

    // AppDynamics: a health rule violation starts, then ends.
    let appd = "appdynamics-health-rule-violation-started-cloudforet.json";
    let auth = basic("appd", "wrong");
    let (s, _) = sy
        .ingest(
            "appdynamics",
            &fixture(appd),
            &[json_type, ("Authorization", &auth)],
        )
        .await;
    assert_eq!(s, 401);
    let auth = basic("appd", "appd-pw");
    let headers = [json_type, ("Authorization", auth.as_str())];
    let (s, b) = sy.ingest("appdynamics", &fixture(appd), &headers).await;
    assert_eq!(
        (s, types(&b)),
        (202, vec!["incident.created".to_string()]),
        "{b}"
    );
    let ended = with(appd, "/event_type", json!("POLICY_CLOSE_CRITICAL"));
    let (s, b) = sy.ingest("appdynamics", &ended, &headers).await;
    assert_eq!(
        (s, types(&b)),
        (202, vec!["incident.resolved".to_string()]),
        "{b}"
    );

    // Kibana: the rule's alert is active, then recovered.
    let kibana = "elastic-kibana-webhook-template-active.json";
    let auth = basic("kibana", "kibana-pw");
    let headers = [json_type, ("Authorization", auth.as_str())];
    let (s, b) = sy.ingest("kibana", &fixture(kibana), &headers).await;
    assert_eq!(
        (s, types(&b)),
        (202, vec!["incident.created".to_string()]),
        "{b}"
    );
    let recovered = with(kibana, "/action_group", json!("recovered"));
    let (s, b) = sy.ingest("kibana", &recovered, &headers).await;
    assert_eq!(
        (s, types(&b)),
        (202, vec!["incident.resolved".to_string()]),
        "{b}"
    );

    // Better Stack: started, acknowledged, resolved (no credentials: allow_from).
    let bs = "betterstack-incident-acknowledged-docs.json";
    let mut seen = Vec::new();
    for event in ["started", "acknowledged", "resolved"] {
        let (s, b) = sy
            .ingest(
                "betterstack",
                &with(bs, "/event", json!(event)),
                &[json_type],
            )
            .await;
        assert_eq!(s, 202, "{b}");
        seen.extend(types(&b));
    }
    assert_eq!(
        seen,
        [
            "incident.created",
            "incident.acknowledged",
            "incident.resolved"
        ]
    );

    // What a user sees at the endpoint: title, severity, labels and links of each tool.
    let got = rx.wait_delivered(7).await;
    let created = |source: &str| {
        got.iter()
            .map(|r| r.json())
            .find(|e| e["source"]["name"] == source && e["type"] == "incident.created")
            .unwrap_or_else(|| panic!("no incident.created from {source}"))
    };
    let appd = created("appdynamics");
    let inc = &appd["data"]["incident"];
    assert_eq!(inc["title"], "Business Transaction Health");
    assert_eq!(inc["severity"], "critical");
    assert_eq!(inc["labels"]["application"], "MyApp");
    assert_eq!(inc["links"][0]["label"], "AppDynamics");
    let kib = created("kibana");
    let inc = &kib["data"]["incident"];
    assert_eq!(inc["title"], "name-of-alert");
    assert_eq!(inc["labels"]["alert_id"], "host-1");
    assert_eq!(inc["links"][0]["label"], "Kibana rule");
    let better = created("betterstack");
    let inc = &better["data"]["incident"];
    assert_eq!(inc["title"], "Tesla.com homepage");
    assert_eq!(inc["links"][0]["url"], "https://tesla.com");
    assert_eq!(inc["labels"]["monitor_id"], "4");
}
