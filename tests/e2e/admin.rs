//! The admin API end to end: auth, incidents, the delivery log, replay, test pings, reload
//! (HTTP and SIGHUP) and the OpenAPI document.

use std::process::Command;

use serde_json::json;

use crate::endpoints::{admin_call, admin_until, alert, ADMIN};
use crate::support::{eventually, Receiver, Switchyard, TestStore};
use crate::{both_stores, config_for};

fn with_admin(store: &TestStore, url: &str) -> String {
    config_for(store, url, &format!("  admin_token: {ADMIN}"))
}

both_stores!(wrong_or_missing_token_is_401_and_no_token_configured_is_404);
async fn wrong_or_missing_token_is_401_and_no_token_configured_is_404(store: TestStore) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&with_admin(&store, &rx.url));
    assert_eq!(
        admin_call(&sy, "GET", "/api/v1/incidents", Some("nope"))
            .await
            .0,
        401
    );
    assert_eq!(
        admin_call(&sy, "GET", "/api/v1/incidents", None).await.0,
        401
    );
    let (s, body) = admin_call(&sy, "POST", "/api/v1/reload", Some("nope")).await;
    assert_eq!(s, 401);
    assert_eq!(body["error"], "unauthorized");
    // A file store is one process's: the second instance gets a directory of its own.
    let own = store.file_dir.is_some().then(TestStore::file);
    let off = Switchyard::start(&config_for(own.as_ref().unwrap_or(&store), &rx.url, ""));
    assert_eq!(
        admin_call(&off, "GET", "/api/v1/incidents", Some(ADMIN))
            .await
            .0,
        404
    );
    assert_eq!(
        admin_call(&off, "GET", "/api/v1/deliveries", None).await.0,
        404
    );
    let (s, doc) = admin_call(&off, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/deliveries/{id}/replay"]["post"].is_object());
}

both_stores!(incidents_are_listed_filtered_acknowledged_and_resolved_with_events);
async fn incidents_are_listed_filtered_acknowledged_and_resolved_with_events(store: TestStore) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&with_admin(&store, &rx.url));
    let a = alert(
        &sy,
        json!({"title": "A", "id": "i-1", "severity": "critical"}),
    )
    .await
    .unwrap();
    let _b = alert(&sy, json!({"title": "B", "id": "i-2"}))
        .await
        .unwrap();
    rx.wait_delivered(2).await;
    let (s, list) = admin_call(
        &sy,
        "GET",
        "/api/v1/incidents?status=triggered&source=open",
        Some(ADMIN),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list["incidents"].as_array().unwrap().len(), 2);
    assert_eq!(
        list["incidents"][0]["source"],
        json!({"name": "open", "kind": "generic"})
    );
    let (_, none) = admin_call(
        &sy,
        "GET",
        "/api/v1/incidents?source=prometheus",
        Some(ADMIN),
    )
    .await;
    assert_eq!(none["incidents"], json!([]));
    assert_eq!(
        admin_call(&sy, "GET", "/api/v1/incidents?status=exploded", Some(ADMIN))
            .await
            .0,
        400
    );
    let (s, one) = admin_call(&sy, "GET", &format!("/api/v1/incidents/{a}"), Some(ADMIN)).await;
    assert_eq!((s, one["title"].as_str()), (200, Some("A")));
    assert_eq!(
        admin_call(&sy, "GET", "/api/v1/incidents/inc_nope", Some(ADMIN))
            .await
            .0,
        404
    );

    let (s, acked) = admin_call(
        &sy,
        "POST",
        &format!("/api/v1/incidents/{a}/acknowledge"),
        Some(ADMIN),
    )
    .await;
    assert_eq!((s, acked["status"].as_str()), (200, Some("acknowledged")));
    let (s, _) = admin_call(
        &sy,
        "POST",
        &format!("/api/v1/incidents/{a}/acknowledge"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(s, 409, "already acknowledged");
    let (s, resolved) = admin_call(
        &sy,
        "POST",
        &format!("/api/v1/incidents/{a}/resolve"),
        Some(ADMIN),
    )
    .await;
    assert_eq!((s, resolved["status"].as_str()), (200, Some("resolved")));
    assert_eq!(
        admin_call(
            &sy,
            "POST",
            &format!("/api/v1/incidents/{a}/resolve"),
            Some(ADMIN)
        )
        .await
        .0,
        409
    );
    let got = rx.wait_delivered(4).await;
    let kinds: Vec<_> = got[2..]
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["incident.acknowledged", "incident.resolved"],
        "admin changes are routed like alerts"
    );
    assert_eq!(got[3].json()["data"]["incident"]["id"], a.as_str());
    let (_, open) = admin_call(&sy, "GET", "/api/v1/incidents?status=resolved", Some(ADMIN)).await;
    assert_eq!(open["incidents"].as_array().unwrap().len(), 1);
}

both_stores!(the_delivery_log_shows_failed_attempts_replay_delivers_and_ping_works);
async fn the_delivery_log_shows_failed_attempts_replay_delivers_and_ping_works(store: TestStore) {
    let rx = Receiver::start();
    rx.answer(&[(500, &[]), (500, &[]), (500, &[])]);
    let sy = Switchyard::start(&with_admin(&store, &rx.url));
    alert(&sy, json!({"title": "Doomed", "id": "dl-1"})).await;
    let dead = admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=hook&state=dead",
        "the delivery to be dead",
        |v| v["deliveries"].as_array().is_some_and(|a| a.len() == 1),
    )
    .await;
    let d = &dead["deliveries"][0];
    assert_eq!(d["endpoint"], "hook");
    assert_eq!(d["event_type"], "incident.created");
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    for a in attempts {
        assert_eq!(a["status"], 500);
        assert_eq!(a["error"], "HTTP 500");
        assert_eq!(a["response"], "ok");
        assert!(a["duration_ms"].is_u64() && a["at"].is_string());
    }
    assert_eq!(
        admin_call(&sy, "GET", "/api/v1/deliveries?state=bogus", Some(ADMIN))
            .await
            .0,
        400
    );
    assert_eq!(
        admin_call(&sy, "GET", "/api/v1/deliveries?endpoint=nope", Some(ADMIN))
            .await
            .0,
        404
    );

    let id = d["id"].as_str().unwrap();
    let (s, r) = admin_call(
        &sy,
        "POST",
        &format!("/api/v1/deliveries/{id}/replay"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let got = rx.wait_delivered(1).await;
    assert_eq!(got[0].json()["data"]["incident"]["dedup_key"], "dl-1");
    eventually("the replay is delivered", || async {
        let (_, v) = admin_call(
            &sy,
            "GET",
            "/api/v1/deliveries?state=delivered",
            Some(ADMIN),
        )
        .await;
        v["deliveries"][0]["replay_of"] == id
    })
    .await;
    assert_eq!(
        admin_call(
            &sy,
            "POST",
            "/api/v1/deliveries/dlv_nope/replay",
            Some(ADMIN)
        )
        .await
        .0,
        404
    );

    let (s, ping) = admin_call(&sy, "POST", "/api/v1/endpoints/hook/test", Some(ADMIN)).await;
    assert_eq!(s, 200, "{ping}");
    assert_eq!(ping["ok"], true);
    assert_eq!(ping["attempt"]["status"], 200);
    let last = rx.received().pop().unwrap();
    assert_eq!(last.header("x-webhook-event"), Some("ping"));
    assert_eq!(last.json()["type"], "ping");
    assert_eq!(
        admin_call(&sy, "POST", "/api/v1/endpoints/nope/test", Some(ADMIN))
            .await
            .0,
        404
    );
}

both_stores!(reload_with_a_broken_file_keeps_serving_and_a_good_one_applies_also_on_sighup);
async fn reload_with_a_broken_file_keeps_serving_and_a_good_one_applies_also_on_sighup(
    store: TestStore,
) {
    let rx = Receiver::start();
    let rx2 = Receiver::start();
    // A delivery waits for its retry across both reloads; it must not be lost.
    rx.answer(&[(503, &[("Retry-After", "2")])]);
    let sy = Switchyard::start(&with_admin(&store, &rx.url));
    alert(&sy, json!({"title": "Before", "id": "rl-1"})).await;
    crate::support::wait_for("first attempt", || {
        (!rx.received().is_empty()).then_some(())
    })
    .await;

    std::fs::write(
        sy.config_path(),
        "version: 1\nendpoints:\n  - name: x\n    kind: pager\n",
    )
    .unwrap();
    let (s, err) = admin_call(&sy, "POST", "/api/v1/reload", Some(ADMIN)).await;
    assert_eq!(s, 400, "{err}");
    assert_eq!(err["error"], "invalid_config");
    let detail = err["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("{}:4:", sy.config_path().display())),
        "{detail}"
    );
    alert(&sy, json!({"title": "Still served", "id": "rl-2"})).await;

    // A good file: a second endpoint takes everything too.
    let good = with_admin(&store, &rx.url).replace(
        "routes:\n  - name: everything\n    matchers: []\n    to: [hook]",
        &format!("  - name: second\n    kind: webhook\n    url: {}\nroutes:\n  - name: everything\n    matchers: []\n    to: [hook, second]", rx2.url),
    );
    assert!(good.contains("second"));
    std::fs::write(sy.config_path(), &good).unwrap();
    let (s, summary) = admin_call(&sy, "POST", "/api/v1/reload", Some(ADMIN)).await;
    assert_eq!(s, 200, "{summary}");
    assert_eq!(summary["endpoints"], 2);
    alert(&sy, json!({"title": "After", "id": "rl-3"})).await;
    let got2 = rx2.wait_delivered(1).await;
    assert_eq!(got2[0].json()["data"]["incident"]["title"], "After");

    // SIGHUP: only `second` now.
    std::fs::write(
        sy.config_path(),
        good.replace("to: [hook, second]", "to: [second]"),
    )
    .unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &sy.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    eventually("the SIGHUP reload is logged", || async {
        sy.logs().contains("config reloaded") && sy.logs().matches("config reloaded").count() >= 2
    })
    .await;
    alert(&sy, json!({"title": "Only second", "id": "rl-4"})).await;
    rx2.wait_delivered(2).await;

    // hook got: rl-1 (after its retry), rl-2, rl-3; never rl-4.
    let got = rx.wait_delivered(3).await;
    let titles: Vec<_> = got
        .iter()
        .map(|r| {
            r.json()["data"]["incident"]["title"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        titles.contains(&"Before".to_string()),
        "queued work survived the reloads: {titles:?}"
    );
    assert!(titles.contains(&"Still served".to_string()));
    assert!(!titles.contains(&"Only second".to_string()));
}

both_stores!(a_delivery_waiting_for_its_retry_is_listed_as_failed_with_its_attempts);
async fn a_delivery_waiting_for_its_retry_is_listed_as_failed_with_its_attempts(store: TestStore) {
    let rx = Receiver::start();
    // The retry waits 2s (Retry-After): long enough to look at the log in between.
    rx.answer(&[(503, &[("Retry-After", "2")])]);
    let sy = Switchyard::start(&with_admin(&store, &rx.url));
    alert(&sy, json!({"title": "Later", "id": "rt-1"})).await;
    let failed = admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=hook&state=failed",
        "the delivery to wait for its retry, with its next attempt's time",
        |v| {
            v["deliveries"].as_array().is_some_and(|a| a.len() == 1)
                && v["deliveries"][0]["next_attempt_at"].is_string()
        },
    )
    .await;
    let d = &failed["deliveries"][0];
    assert_eq!(d["event_type"], "incident.created");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(d["attempts"][0]["status"], 503);
    // When the retry is due: the attempt's time plus the 2 s Retry-After (not the 50 ms of
    // the schedule).
    let at = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("a time: {d}")))
            .unwrap()
    };
    let wait = at(&d["next_attempt_at"]) - at(&d["attempts"][0]["at"]);
    assert!(
        (1_500..3_000).contains(&wait.num_milliseconds()),
        "next attempt {wait:?} after the first: {d}"
    );
    assert!(rx.delivered().is_empty(), "still waiting: {d}");
    rx.wait_delivered(1).await;
    let delivered = admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=hook&state=delivered",
        "the retry to be delivered",
        |v| v["deliveries"].as_array().is_some_and(|a| a.len() == 1),
    )
    .await;
    let d2 = &delivered["deliveries"][0];
    assert_eq!(d2["id"], d["id"], "the same delivery");
    assert!(d2.get("next_attempt_at").is_none(), "{d2}");
    let statuses: Vec<_> = d2["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_u64())
        .collect();
    assert_eq!(statuses, [Some(503), Some(200)]);
}

both_stores!(reload_with_a_changed_endpoint_uses_its_new_settings_and_a_removed_one_drains);
async fn reload_with_a_changed_endpoint_uses_its_new_settings_and_a_removed_one_drains(
    store: TestStore,
) {
    let rx = Receiver::start();
    let rx_new = Receiver::start();
    let rx_gone = Receiver::start();
    // `gone` holds a delivery waiting for its retry when it is removed.
    rx_gone.answer(&[(503, &[("Retry-After", "1")])]);
    let two = with_admin(&store, &rx.url).replace(
        "routes:\n  - name: everything\n    matchers: []\n    to: [hook]",
        &format!("  - name: gone\n    kind: webhook\n    url: {}\n    retry: {{ schedule: [50ms] }}\nroutes:\n  - name: everything\n    matchers: []\n    to: [hook, gone]", rx_gone.url),
    );
    assert!(two.contains("to: [hook, gone]"));
    let sy = Switchyard::start(&two);
    alert(&sy, json!({"title": "Before", "id": "ch-1"})).await;
    rx.wait_delivered(1).await;
    crate::support::wait_for("gone's first attempt", || {
        (!rx_gone.received().is_empty()).then_some(())
    })
    .await;

    // `hook` moves to another URL with another header; `gone` is removed.
    let changed = with_admin(&store, &rx_new.url).replace("X-Team: ops", "X-Team: sre");
    assert!(changed.contains("X-Team: sre") && !changed.contains("gone"));
    std::fs::write(sy.config_path(), &changed).unwrap();
    let (s, summary) = admin_call(&sy, "POST", "/api/v1/reload", Some(ADMIN)).await;
    assert_eq!(s, 200, "{summary}");
    assert_eq!(summary["endpoints"], 1);
    assert_eq!(summary["retired_endpoints"], json!(["gone"]));

    alert(&sy, json!({"title": "After", "id": "ch-2"})).await;
    let got = rx_new.wait_delivered(1).await;
    assert_eq!(got[0].json()["data"]["incident"]["title"], "After");
    assert_eq!(got[0].header("X-Team"), Some("sre"), "the new headers");
    // The removed endpoint still delivers what it held, and nothing new.
    let drained = rx_gone.wait_delivered(1).await;
    assert_eq!(drained[0].json()["data"]["incident"]["title"], "Before");
    assert_eq!(
        rx.delivered().len(),
        1,
        "the old URL gets nothing after the reload"
    );
    // Wait for one more delivery to the new URL, then check `gone` got nothing new.
    alert(&sy, json!({"title": "Later", "id": "ch-3"})).await;
    rx_new.wait_delivered(2).await;
    assert!(
        rx_gone
            .received()
            .iter()
            .all(|r| r.json()["data"]["incident"]["title"] == "Before"),
        "a removed endpoint gets no new events"
    );
}

both_stores!(replaying_a_delivery_of_an_endpoint_disabled_by_410_enables_it_again);
async fn replaying_a_delivery_of_an_endpoint_disabled_by_410_enables_it_again(store: TestStore) {
    let rx = Receiver::start();
    rx.answer(&[(410, &[])]);
    let sy = Switchyard::start(&with_admin(&store, &rx.url));
    alert(&sy, json!({"title": "Gone", "id": "g-1"})).await;
    let dead = admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=hook&state=dead",
        "the 410'd delivery to be dead",
        |v| v["deliveries"].as_array().is_some_and(|a| a.len() == 1),
    )
    .await;
    // Disabled: the next event is dead without a request.
    alert(&sy, json!({"title": "While disabled", "id": "g-2"})).await;
    admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=hook&state=dead",
        "the next delivery to be dead too",
        |v| v["deliveries"].as_array().is_some_and(|a| a.len() == 2),
    )
    .await;
    assert_eq!(rx.received().len(), 1, "nothing sent while disabled");

    let id = dead["deliveries"][0]["id"].as_str().unwrap();
    let (s, r) = admin_call(
        &sy,
        "POST",
        &format!("/api/v1/deliveries/{id}/replay"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let got = rx.wait_delivered(1).await;
    assert_eq!(got[0].json()["data"]["incident"]["title"], "Gone");
    // Enabled again: a new event is delivered.
    alert(&sy, json!({"title": "Back", "id": "g-3"})).await;
    let got = rx.wait_delivered(2).await;
    assert_eq!(got[1].json()["data"]["incident"]["title"], "Back");
}
