//! Regression tests for the hardening issue: no sender's input loses another's data or stalls
//! ingest.

use crate::support::{Receiver, Switchyard, TestStore};
use crate::{both_stores, config_for};

const BEARER: (&str, &str) = ("Authorization", "Bearer t0ken");

fn am_body(name: &str, starts_at: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "version": "4", "status": "firing",
        "alerts": [{"status": "firing",
                    "labels": {"alertname": name, "severity": "critical"},
                    "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z"}]
    }))
    .unwrap()
}

// Item 1: a start time past 2262 made the memory store's record fail halfway through its
// group: other requests got 503 and the recorded alerts' events were never sent.
both_stores!(a_far_future_start_time_loses_nothing_of_any_request);
async fn a_far_future_start_time_loses_nothing_of_any_request(store: TestStore) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));
    // Concurrent requests, so that the incident actor records several of them in one group.
    let mut requests = Vec::new();
    for i in 0..30 {
        let starts_at = if i % 6 == 3 {
            "9999-01-01T00:00:00Z"
        } else {
            "2026-11-22T10:00:00Z"
        };
        let body = am_body(&format!("Alert{i}"), starts_at);
        let sy = &sy;
        requests.push(async move { sy.ingest("prometheus", &body, &[BEARER]).await });
    }
    let answers = futures_util::future::join_all(requests).await;
    for (status, body) in &answers {
        assert_eq!(*status, 202, "{body}");
        assert_eq!(body["events"][0]["type"], "incident.created", "{body}");
    }
    let delivered = rx.wait_delivered(30).await;
    let mut names: Vec<String> = delivered
        .iter()
        .map(|r| {
            r.json()["data"]["incident"]["labels"]["alertname"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        30,
        "every request's incident.created was delivered"
    );
    let far = delivered
        .iter()
        .find(|r| r.json()["data"]["incident"]["labels"]["alertname"] == "Alert3")
        .unwrap();
    assert_eq!(
        far.json()["data"]["incident"]["started_at"],
        "9999-01-01T00:00:00Z"
    );

    // Sent again, a good alert is a repeat of an incident whose creation went out.
    let (status, body) = sy
        .ingest(
            "prometheus",
            &am_body("Alert0", "2026-11-22T10:00:00Z"),
            &[BEARER],
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(0));
}
