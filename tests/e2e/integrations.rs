//! The integrations of issue 17 end to end, through the real binary: presets of the generic
//! mapping with the tools' real bodies and headers (GitHub signed with `X-Hub-Signature-256`,
//! Honeycomb's token header, Pingdom), fire then resolve at a real receiver; and `allow_from`
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
    auth: {{ hmac: {{ secret: {GITHUB_SECRET}, header: X-Hub-Signature-256, prefix: "sha256=" }} }}
  - name: honeycomb
    kind: generic
    preset: honeycomb
    auth: {{ header: {{ name: X-Honeycomb-Webhook-Token, value: {HONEYCOMB_TOKEN} }} }}
  - name: pingdom
    kind: generic
    preset: pingdom
    mapping: {{ url_label: Pingdom check }}
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

async fn post_github(sy: &Switchyard, event: &str, body: &[u8]) -> (u16, Value) {
    let sig = sign(body);
    sy.ingest(
        "github",
        body,
        &[
            ("User-Agent", "GitHub-Hookshot/abc1234"),
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
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
    let (s, b) = post_github(&sy, "ping", &fixture("github-ping.json")).await;
    assert_eq!((s, &b["accepted"]), (202, &json!(0)), "{b}");
    let (s, b) = post_github(
        &sy,
        "workflow_run",
        &fixture("github-workflow-run-requested.json"),
    )
    .await;
    assert_eq!((s, &b["accepted"]), (202, &json!(0)), "{b}");

    let failed = with(
        "github-workflow-run-completed-success.json",
        "/workflow_run/conclusion",
        json!("failure"),
    );
    let (s, b) = post_github(&sy, "workflow_run", &failed).await;
    assert_eq!(
        (s, types(&b)),
        (202, vec!["incident.created".to_string()]),
        "{b}"
    );
    let (s, b) = post_github(
        &sy,
        "workflow_run",
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
