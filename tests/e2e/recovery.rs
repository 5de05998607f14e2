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

both_stores!(a_dead_delivery_is_noticed_at_the_on_dead_endpoints);
async fn a_dead_delivery_is_noticed_at_the_on_dead_endpoints(store: TestStore) {
    let (rx, ops) = (Receiver::start(), Receiver::start());
    rx.fail_with(Some(500));
    let endpoints = format!(
        "{}\n  - {{ name: ops, kind: webhook, url: '{}' }}",
        hook("hook", &rx.url, ""),
        ops.url
    );
    let sy = Switchyard::start(&config(&store, &endpoints, "hook", "on_dead: [ops]"));
    alert(&sy, json!({"title": "Doomed", "id": "nd-1"})).await;
    let got = ops.wait_delivered(1).await;
    let v = got[0].json();
    assert_eq!(v["type"], "delivery.dead", "{v}");
    assert_eq!(v["data"]["incident"]["dedup_key"], "nd-1");
    let d = &v["data"]["delivery"];
    assert_eq!(d["endpoint"], "hook");
    assert_eq!(d["event_type"], "incident.created");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 3, "{d}");
    assert_eq!(d["attempts"][2]["status"], 500);
    assert!(
        d["reason"].as_str().unwrap().contains("out of attempts"),
        "{d}"
    );
    let (_, dead) = admin_call(
        &sy,
        "GET",
        "/api/v1/deliveries?endpoint=hook&state=dead",
        Some(ADMIN),
    )
    .await;
    assert_eq!(d["delivery_id"], dead["deliveries"][0]["id"]);
    // The notice is a delivery of its own at `ops` (listed, retried like any other).
    admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=ops&state=delivered",
        "the notice delivered",
        |v| v["deliveries"][0]["event_type"] == "delivery.dead",
    )
    .await;
    assert_eq!(ops.received().len(), 1, "ops gets the notice only");
}

both_stores!(an_endpoint_failing_for_disable_after_is_disabled_with_a_notice);
async fn an_endpoint_failing_for_disable_after_is_disabled_with_a_notice(store: TestStore) {
    let (rx, ops) = (Receiver::start(), Receiver::start());
    rx.fail_with(Some(503));
    let endpoints = format!(
        "  - {{ name: hook, kind: webhook, url: '{}', disable_after: 400ms, retry: {{ schedule: [100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms] }}, circuit_breaker: {{ failures: 1000 }} }}\n  - {{ name: ops, kind: webhook, url: '{}' }}",
        rx.url, ops.url
    );
    let sy = Switchyard::start(&config(&store, &endpoints, "hook", "on_dead: [ops]"));
    alert(&sy, json!({"title": "Down", "id": "da-1"})).await;
    let got = ops.wait_delivered(1).await;
    let v = got[0].json();
    assert_eq!(v["type"], "endpoint.disabled", "{v}");
    assert_eq!(v["data"]["delivery"]["endpoint"], "hook");
    assert!(
        v["data"]["delivery"]["reason"]
            .as_str()
            .unwrap()
            .contains("without a success"),
        "{v}"
    );
    let tries = rx.received().len();
    assert!(
        (4..=8).contains(&tries),
        "about 400 ms of 100 ms retries, not all ten: {tries}"
    );
    let (_, list) = admin_call(&sy, "GET", "/api/v1/deliveries?endpoint=hook", Some(ADMIN)).await;
    assert_eq!(list["endpoints"][0]["disabled"], true, "{list}");
    // A recovery enables it again and delivers.
    rx.fail_with(None);
    let (s, body) = admin_call(&sy, "POST", "/api/v1/endpoints/hook/recover", Some(ADMIN)).await;
    assert_eq!((s, &body["replayed"]), (202, &json!(1)), "{body}");
    rx.wait_delivered(1).await;
}

#[actix_rt::test]
async fn ping_on_load_pings_endpoints_the_loaded_config_adds() {
    let (rx, second) = (Receiver::start(), Receiver::start());
    rx.answer(&[(503, &[])]);
    let one = hook("hook", &rx.url, ", ping_on_load: true");
    let sy = Switchyard::start(&config(&TestStore::memory(), &one, "hook", ""));
    let list = admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=hook",
        "the ping's answer",
        |v| v["endpoints"][0]["last_ping"].is_object(),
    )
    .await;
    let ping = &list["endpoints"][0]["last_ping"];
    assert_eq!(
        (&ping["ok"], &ping["attempt"]["status"]),
        (&json!(false), &json!(503)),
        "{ping}"
    );
    assert_eq!(rx.received()[0].json()["type"], "ping");
    assert!(sy.logs().contains("ping on load"), "the answer is logged");
    // A reload that adds an endpoint pings it, and not the one that stays.
    let two = format!(
        "{one}\n{}",
        hook("second", &second.url, ", ping_on_load: true")
    );
    std::fs::write(
        sy.config_path(),
        config(&TestStore::memory(), &two, "hook", ""),
    )
    .unwrap();
    let (s, body) = admin_call(&sy, "POST", "/api/v1/reload", Some(ADMIN)).await;
    assert_eq!(s, 200, "{body}");
    let got = second.wait_delivered(1).await;
    assert_eq!(got[0].json()["type"], "ping");
    admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=second",
        "the second ping's answer",
        |v| v["endpoints"][0]["last_ping"]["ok"] == true,
    )
    .await;
    assert_eq!(
        rx.received().len(),
        1,
        "the kept endpoint is not pinged again"
    );
}

#[test]
fn on_dead_names_existing_webhook_or_chat_endpoints() {
    let yaml = |on_dead: &str| {
        format!(
            "version: 1\nendpoints:\n  - {{ name: hook, kind: webhook, url: 'http://127.0.0.1:9/' }}\n  - {{ name: pd, kind: pagerduty, routing_key: k }}\nroutes:\n  - {{ matchers: [], to: [hook] }}\non_dead: [{on_dead}]\n"
        )
    };
    let ok = crate::support::check_yaml(&yaml("hook"));
    assert_eq!(ok.code, 0, "{}{}", ok.out, ok.err);
    let typo = crate::support::check_yaml(&yaml("hok"));
    assert!(
        typo.err
            .contains("unknown endpoint `hok`; did you mean `hook`?"),
        "{}",
        typo.err
    );
    let pd = crate::support::check_yaml(&yaml("pd"));
    assert!(
        pd.err
            .contains("kind `pagerduty`, which cannot take `delivery.dead` notices"),
        "{}",
        pd.err
    );
    let zero = crate::support::check_yaml(&yaml("hook").replace(
        "url: 'http://127.0.0.1:9/'",
        "url: 'http://127.0.0.1:9/', disable_after: 0s",
    ));
    assert!(
        zero.err.contains("disable_after: must be longer than 0s"),
        "{}",
        zero.err
    );
}

#[actix_rt::test]
async fn redis_disable_after_counts_from_the_failing_start_kept_across_a_restart() {
    use deadpool_redis::redis::AsyncCommands;
    let store = TestStore::redis();
    let (rx, ops) = (Receiver::start(), Receiver::start());
    rx.fail_with(Some(503));
    let endpoints = format!(
        "  - {{ name: hook, kind: webhook, url: '{}', disable_after: 1h, retry: {{ schedule: [200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms] }}, circuit_breaker: {{ failures: 1000 }} }}\n  - {{ name: ops, kind: webhook, url: '{}' }}",
        rx.url, ops.url
    );
    let yaml = config(&store, &endpoints, "hook", "on_dead: [ops]");
    let mut sy = Switchyard::start(&yaml);
    alert(&sy, json!({"title": "Down", "id": "dk-1"})).await;
    let key = format!("{}:ref:hook:~failing_since", store.key_prefix);
    let mut conn = store.redis_conn().await;
    crate::support::eventually("the failing start stored in redis", || {
        let mut conn = conn.clone();
        let key = key.clone();
        async move {
            let v: Option<String> = conn.get(&key).await.unwrap();
            v.is_some_and(|v| chrono::DateTime::parse_from_rfc3339(&v).is_ok())
        }
    })
    .await;
    assert!(ops.received().is_empty(), "an hour has not passed");
    sy.kill();
    // As if the endpoint had been failing for two hours when this instance went down.
    let two_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let _: () = conn.set(&key, &two_hours_ago).await.unwrap();
    let _sy = Switchyard::start(&yaml);
    let got = ops.wait_delivered(1).await;
    let v = got[0].json();
    assert_eq!(v["type"], "endpoint.disabled", "{v}");
    assert!(
        v["data"]["delivery"]["reason"]
            .as_str()
            .unwrap()
            .contains("failing for 1h"),
        "{v}"
    );
}
