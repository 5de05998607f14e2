//! The admin API and pacing with the redis store and several instances: every instance's
//! delivery log is the store's, a replay is written into the shared queue, and a rate-limited
//! endpoint never gets an event twice although work waits longer than a lease.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::json;

use crate::config_for;
use crate::endpoints::{admin_call, admin_until, alert, ADMIN};
use crate::support::{Receiver, Switchyard, TestStore};

fn with_admin(store: &TestStore, url: &str) -> String {
    config_for(store, url, &format!("  admin_token: {ADMIN}"))
}

#[actix_rt::test]
async fn every_instance_lists_the_stores_deliveries_and_replays_into_the_store() {
    let store = TestStore::redis();
    let rx = Receiver::start();
    let cfg = with_admin(&store, &rx.url);
    let a = Switchyard::start(&cfg);
    let b = Switchyard::start(&cfg);
    alert(&a, json!({"title": "Shared", "id": "sh-1"})).await;
    rx.wait_delivered(1).await;
    // Whichever instance delivered it, both show it delivered, with its attempt.
    for sy in [&a, &b] {
        let v = admin_until(
            sy,
            "/api/v1/deliveries?endpoint=hook&state=delivered",
            "the delivery in the store's log",
            |v| v["deliveries"].as_array().is_some_and(|d| d.len() == 1),
        )
        .await;
        assert_eq!(v["deliveries"][0]["attempts"][0]["status"], 200);
    }
    let (_, v) = admin_call(&b, "GET", "/api/v1/deliveries", Some(ADMIN)).await;
    let id = v["deliveries"][0]["id"].as_str().unwrap().to_string();

    // Replayed through B: written into the shared queue (sent although its dedup key exists).
    let (s, r) = admin_call(
        &b,
        "POST",
        &format!("/api/v1/deliveries/{id}/replay"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let new_id = r["delivery_id"].as_str().unwrap().to_string();
    let stored = crate::redis_store::stored_deliveries(&store, "hook").await;
    let replay_of = stored
        .iter()
        .find(|d| d[0] == new_id)
        .map(|d| d[3].as_str());
    assert_eq!(replay_of, Some(id.as_str()), "the replay is in the store");
    let got = rx.wait_delivered(2).await;
    assert_eq!(got[1].header("webhook-id"), got[0].header("webhook-id"));
    for sy in [&a, &b] {
        let v = admin_until(
            sy,
            "/api/v1/deliveries?endpoint=hook&state=delivered",
            "the replay in the store's log",
            |v| v["deliveries"].as_array().is_some_and(|d| d.len() == 2),
        )
        .await;
        let replay = v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == new_id.as_str())
            .cloned()
            .unwrap_or_default();
        assert_eq!(replay["replay_of"], id.as_str(), "{v}");
    }
    assert_eq!(rx.delivered().len(), 2, "replayed once");
    assert_eq!(
        admin_call(
            &a,
            "POST",
            "/api/v1/deliveries/dlv_nope/replay",
            Some(ADMIN)
        )
        .await
        .0,
        404
    );
}

#[actix_rt::test]
async fn work_held_back_by_the_rate_limit_outlives_no_lease() {
    const EVENTS: usize = 16;
    let store = TestStore::redis();
    let rx = Receiver::start();
    // 2/s per instance; a lease is timeout (200ms) + 5s. Before claims were bounded by the
    // rate limit, A claimed all 16 at once and still held the last ones when their leases ran
    // out, and B (started later, tokens to spare) sent them again.
    let cfg = config_for(&store, &rx.url, "")
        .replace("timeout: 2s", "timeout: 200ms\n    rate_limit: 2/s");
    assert!(cfg.contains("rate_limit: 2/s"));
    let a = Switchyard::start(&cfg);
    let started = Instant::now();
    for i in 0..EVENTS {
        alert(&a, json!({"title": "Paced", "id": format!("rl-{i}")})).await;
    }
    let b = Switchyard::start(&cfg);
    rx.wait_delivered(EVENTS).await;
    let took = started.elapsed();
    store.wait_queue_settled("hook").await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in rx.received() {
        *seen
            .entry(r.header("webhook-id").unwrap_or_default().to_string())
            .or_default() += 1;
    }
    eprintln!(
        "measured: {EVENTS} events at 2/s per instance, two instances: all delivered in {took:?}"
    );
    assert_eq!(seen.len(), EVENTS);
    assert!(
        seen.values().all(|n| *n == 1),
        "an event was sent twice: {seen:?}"
    );
    drop(b);
}
