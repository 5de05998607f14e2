//! When deliveries die: bulk recovery (`POST /api/v1/endpoints/{name}/recover`).

use serde_json::json;

use crate::both_stores;
use crate::endpoints::{admin_call, admin_until, alert, ADMIN};
use crate::support::{Receiver, Switchyard, TestStore};

/// A config with the generic source `open`, the admin token, and `endpoints` (YAML list items
/// indented by two) of which `to` takes everything.
fn config(store: &TestStore, endpoints: &str, to: &str, top: &str) -> String {
    format!(
        "version: 1\nserver: {{ listen: 127.0.0.1:0, admin_token: {ADMIN} }}\nsources:\n  - {{ name: open, kind: generic }}\nendpoints:\n{endpoints}\nroutes:\n  - {{ matchers: [], to: [{to}] }}\n{top}\n{}",
        store.section()
    )
}

/// A webhook endpoint `name` at `url` that fails fast: three attempts 50 and 100 ms apart,
/// no circuit breaker in the way.
fn hook(name: &str, url: &str, extra: &str) -> String {
    format!(
        "  - {{ name: {name}, kind: webhook, url: '{url}', retry: {{ schedule: [50ms, 100ms] }}, circuit_breaker: {{ failures: 1000 }}{extra} }}"
    )
}

both_stores!(recover_replays_every_dead_delivery_in_order_once);
async fn recover_replays_every_dead_delivery_in_order_once(store: TestStore) {
    let rx = Receiver::start();
    rx.fail_with(Some(500));
    let sy = Switchyard::start(&config(&store, &hook("hook", &rx.url, ""), "hook", ""));
    alert(&sy, json!({"title": "A", "id": "rc-a"})).await;
    alert(&sy, json!({"title": "B", "id": "rc-b"})).await;
    alert(
        &sy,
        json!({"title": "A", "id": "rc-a", "status": "resolved"}),
    )
    .await;
    let dead = admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=hook&state=dead",
        "three dead deliveries",
        |v| v["deliveries"].as_array().is_some_and(|a| a.len() == 3),
    )
    .await;
    let dead_ids: Vec<String> = dead["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();

    // Bad input changes nothing.
    let (s, body) = admin_call(
        &sy,
        "POST",
        "/api/v1/endpoints/hook/recover?since=yesterday",
        Some(ADMIN),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("RFC 3339"),
        "{body}"
    );
    let (s, _) = admin_call(&sy, "POST", "/api/v1/endpoints/nope/recover", Some(ADMIN)).await;
    assert_eq!(s, 404);
    let (s, _) = admin_call(&sy, "POST", "/api/v1/endpoints/hook/recover", None).await;
    assert_eq!(s, 401);
    let (s, body) = admin_call(
        &sy,
        "POST",
        "/api/v1/endpoints/hook/recover?since=2999-01-01T00:00:00Z",
        Some(ADMIN),
    )
    .await;
    assert_eq!((s, &body["replayed"]), (202, &json!(0)), "{body}");

    rx.fail_with(None);
    let (s, body) = admin_call(&sy, "POST", "/api/v1/endpoints/hook/recover", Some(ADMIN)).await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["replayed"], 3, "{body}");
    let mut replayed: Vec<String> = body["replays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["replay_of"].as_str().unwrap().to_string())
        .collect();
    replayed.sort();
    let mut want = dead_ids.clone();
    want.sort();
    assert_eq!(replayed, want);
    let got = rx.wait_delivered(3).await;
    let a_types: Vec<_> = got
        .iter()
        .map(|r| r.json())
        .filter(|v| v["data"]["incident"]["dedup_key"] == "rc-a")
        .map(|v| v["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        a_types,
        ["incident.created", "incident.resolved"],
        "in order"
    );
    admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=hook&state=delivered",
        "the three replays delivered",
        |v| v["deliveries"].as_array().is_some_and(|a| a.len() == 3),
    )
    .await;
    // Everything dead was replayed already: a second recovery sends nothing.
    let (s, body) = admin_call(&sy, "POST", "/api/v1/endpoints/hook/recover", Some(ADMIN)).await;
    assert_eq!((s, &body["replayed"]), (202, &json!(0)), "{body}");
    assert_eq!(rx.delivered().len(), 3);
}
