//! Delivery: retries on the schedule, Retry-After, 410 disables, order per incident.

use std::time::Duration;

use crate::support::TestStore;
use crate::support::{eventually, wait_for, Receiver, Switchyard};
use crate::{both_stores, config_for};

both_stores!(a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt);
async fn a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(store: TestStore) {
    let rx = Receiver::start();
    rx.answer(&[(500, &[]), (503, &[])]);
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));
    let (s, _) = sy
        .ingest("open", br#"{"title": "Flaky", "id": "f-1"}"#, &[])
        .await;
    assert_eq!(s, 202);
    let got = rx.wait_delivered(1).await;
    let all = rx.received();
    assert_eq!(all.len(), 3, "two failures then the success");
    assert_eq!(
        all.iter().map(|r| r.answered).collect::<Vec<_>>(),
        vec![500, 503, 200]
    );
    let ids: Vec<_> = all
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_string())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the same webhook-id on every retry"
    );
    assert!(
        all.iter().all(|r| r.body == got[0].body),
        "the same body on every retry"
    );
    eventually("failed and delivered counted", || async {
        sy.metric("switchyard_deliveries_total{endpoint=\"hook\",outcome=\"failed\"}")
            .await
            == Some(2.0)
            && sy
                .metric("switchyard_deliveries_total{endpoint=\"hook\",outcome=\"delivered\"}")
                .await
                == Some(1.0)
    })
    .await;
}

both_stores!(retry_after_is_honoured);
async fn retry_after_is_honoured(store: TestStore) {
    let rx = Receiver::start();
    rx.answer(&[(429, &[("Retry-After", "1")])]);
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));
    let (s, _) = sy
        .ingest("open", br#"{"title": "Slow down", "id": "r-1"}"#, &[])
        .await;
    assert_eq!(s, 202);
    rx.wait_delivered(1).await;
    let all = rx.received();
    assert_eq!(all.len(), 2);
    // The schedule says 50ms; the receiver asked for 1s: the gap between the two attempts, as
    // the receiver measured it, is at least that (not whole-second timestamps, which a 50ms
    // retry across a second boundary would also pass).
    let gap = all[1].at - all[0].at;
    assert!(
        gap >= Duration::from_millis(1000),
        "retry waited for Retry-After: {gap:?}"
    );
    assert!(gap < Duration::from_secs(10), "and not far longer: {gap:?}");
}

both_stores!(dead_after_the_last_attempt);
async fn dead_after_the_last_attempt(store: TestStore) {
    let rx = Receiver::start();
    rx.answer(&[(500, &[]), (500, &[]), (500, &[]), (500, &[])]);
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));
    sy.ingest("open", br#"{"title": "Doomed", "id": "d-1"}"#, &[])
        .await;
    eventually("dead counted", || async {
        sy.metric("switchyard_deliveries_total{endpoint=\"hook\",outcome=\"dead\"}")
            .await
            == Some(1.0)
    })
    .await;
    assert_eq!(
        rx.received().len(),
        3,
        "1 + len(schedule) attempts, then dead"
    );
}

both_stores!(gone_disables_the_endpoint);
async fn gone_disables_the_endpoint(store: TestStore) {
    let rx = Receiver::start();
    rx.answer(&[(410, &[])]);
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));
    sy.ingest("open", br#"{"title": "A", "id": "g-1"}"#, &[])
        .await;
    wait_for("first request", || (rx.received().len() == 1).then_some(())).await;
    eventually("dead counted", || async {
        sy.metric("switchyard_deliveries_total{endpoint=\"hook\",outcome=\"dead\"}")
            .await
            == Some(1.0)
    })
    .await;
    let (s, b) = sy
        .ingest("open", br#"{"title": "B", "id": "g-2"}"#, &[])
        .await;
    assert_eq!(s, 202, "ingest still accepts: {b}");
    eventually("second event marked dead", || async {
        sy.metric("switchyard_deliveries_total{endpoint=\"hook\",outcome=\"dead\"}")
            .await
            == Some(2.0)
    })
    .await;
    assert_eq!(
        rx.received().len(),
        1,
        "a disabled endpoint gets no more requests"
    );
    assert!(sy.logs().contains("410"), "the reason is logged");
}

both_stores!(events_of_one_incident_arrive_in_order_even_when_the_first_fails);
async fn events_of_one_incident_arrive_in_order_even_when_the_first_fails(store: TestStore) {
    let rx = Receiver::start();
    // The head (created) fails until the second event (resolved) is queued behind it and the
    // head was tried again after that: the second event has to wait.
    rx.fail_with(Some(500));
    let cfg = config_for(&store, &rx.url, "").replace(
        "schedule: [50ms, 100ms]",
        "schedule: [50ms, 50ms, 50ms, 50ms, 50ms, 100ms, 100ms, 100ms, 100ms, 100ms, 200ms, 200ms, 200ms, 200ms, 200ms, 500ms, 500ms, 500ms, 500ms, 500ms, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s]",
    );
    let sy = Switchyard::start(&cfg);
    sy.ingest(
        "open",
        br#"{"title": "Ordered", "id": "o-1", "status": "firing"}"#,
        &[],
    )
    .await;
    wait_for("first attempt", || {
        (!rx.received().is_empty()).then_some(())
    })
    .await;
    let (s, b) = sy
        .ingest(
            "open",
            br#"{"title": "Ordered", "id": "o-1", "status": "resolved"}"#,
            &[],
        )
        .await;
    assert_eq!(
        (s, b["events"][0]["type"].as_str()),
        (202, Some("incident.resolved"))
    );
    let queued_at = std::time::Instant::now();
    wait_for(
        "a failed attempt of the head after the second event was queued",
        || rx.received().iter().any(|r| r.at > queued_at).then_some(()),
    )
    .await;
    rx.fail_with(None);
    let got = rx.wait_delivered(2).await;
    let kinds: Vec<_> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, vec!["incident.created", "incident.resolved"]);
    // Every request before the head's success was the head: the second never went first.
    let all = rx.received();
    let first_ok = all.iter().position(|r| r.answered == 200).unwrap();
    assert!(first_ok >= 2, "the head failed at least twice: {first_ok}");
    assert!(
        all[..=first_ok]
            .iter()
            .all(|r| r.json()["type"] == "incident.created"),
        "only the head was tried while it failed"
    );
}

both_stores!(a_hanging_endpoint_times_out_and_is_retried);
async fn a_hanging_endpoint_times_out_and_is_retried(store: TestStore) {
    // A TCP listener that accepts and never answers.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", hang.local_addr().unwrap());
    let cfg = config_for(&store, &url, "").replace("timeout: 2s", "timeout: 200ms");
    let sy = Switchyard::start(&cfg);
    let (s, _) = sy
        .ingest("open", br#"{"title": "Hang", "id": "h-1"}"#, &[])
        .await;
    assert_eq!(s, 202);
    eventually("dead after timeouts", || async {
        sy.metric("switchyard_deliveries_total{endpoint=\"hook\",outcome=\"dead\"}")
            .await
            == Some(1.0)
    })
    .await;
    assert_eq!(
        sy.metric("switchyard_deliveries_total{endpoint=\"hook\",outcome=\"failed\"}")
            .await,
        Some(2.0)
    );
    let _ = Duration::ZERO;
    drop(hang);
}

both_stores!(without_a_secret_no_signature_headers_are_sent);
async fn without_a_secret_no_signature_headers_are_sent(store: TestStore) {
    let rx = Receiver::start();
    let cfg = config_for(&store, &rx.url, "")
        .replace("    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", "");
    assert!(!cfg.contains("whsec_"));
    let sy = Switchyard::start(&cfg);
    let (s, _) = sy
        .ingest("open", br#"{"title": "Unsigned", "id": "u-1"}"#, &[])
        .await;
    assert_eq!(s, 202);
    let got = rx.wait_delivered(1).await;
    let r = &got[0];
    assert_eq!(r.header("webhook-signature"), None, "{:?}", r.headers);
    assert_eq!(r.header("x-webhook-signature"), None, "{:?}", r.headers);
    // The rest of the Standard Webhooks headers are still there.
    assert_eq!(r.header("webhook-id"), r.json()["id"].as_str());
    assert!(r.header("webhook-timestamp").is_some());
    assert_eq!(r.header("x-webhook-event"), Some("incident.created"));
}
