//! Ingest: Alertmanager in, signed webhook out; repeats fold; bad input changes nothing.

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::support::TestStore;
use crate::support::{eventually, fixture, wait_for, Receiver, Switchyard};
use crate::{both_stores, config_for};

const BEARER: (&str, &str) = ("Authorization", "Bearer t0ken");

/// Checks both signatures of a delivery independently of switchyard's own code.
fn assert_signed(r: &crate::support::Received) {
    let key = base64::engine::general_purpose::STANDARD
        .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap();
    let id = r.header("webhook-id").expect("webhook-id");
    let ts = r.header("webhook-timestamp").expect("webhook-timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let sig = r.header("webhook-signature").expect("webhook-signature");
    let b64 = sig.strip_prefix("v1,").expect("v1, prefix");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    mac.verify_slice(&raw).expect("webhook-signature verifies");

    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(&r.body);
    let hex_sig = r
        .header("X-Webhook-Signature")
        .expect("X-Webhook-Signature");
    let raw = hex::decode(hex_sig.strip_prefix("sha256=").expect("sha256= prefix")).unwrap();
    mac.verify_slice(&raw)
        .expect("X-Webhook-Signature verifies");

    let body = r.json();
    assert_eq!(body["id"].as_str(), Some(id), "webhook-id is the event id");
    assert_eq!(r.header("X-Webhook-Event"), body["type"].as_str());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(r.header("User-Agent").unwrap().starts_with("switchyard/"));
    assert_eq!(r.header("X-Team"), Some("ops"));
    assert_eq!(r.path, "/hook", "delivered to the configured URL's path");
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
    assert!(
        (0..60).contains(&age),
        "webhook-timestamp is this attempt's time"
    );
}

use hmac::Hmac;

both_stores!(alertmanager_created_then_repeat_then_resolved_arrive_signed_in_order_once);
async fn alertmanager_created_then_repeat_then_resolved_arrive_signed_in_order_once(
    store: TestStore,
) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));

    let (status, body) = sy
        .ingest(
            "prometheus",
            &fixture("alertmanager-webhook-firing-alertmanager-bot.json"),
            &[BEARER],
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["events"][0]["type"], "incident.created");
    let incident_id = body["events"][0]["incident_id"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, body) = sy
        .ingest(
            "prometheus",
            &fixture("alertmanager-webhook-firing-alertmanager-bot.json"),
            &[BEARER],
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        body["events"],
        serde_json::json!([]),
        "a repeat emits nothing"
    );

    let (status, body) = sy
        .ingest(
            "prometheus",
            &fixture("alertmanager-webhook-resolved-alertmanager-bot.json"),
            &[BEARER],
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["events"][0]["type"], "incident.resolved");
    assert_eq!(body["events"][0]["incident_id"], incident_id.as_str());

    let got = rx.wait_delivered(2).await;
    for r in &got {
        assert_signed(r);
    }
    let kinds: Vec<_> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, vec!["incident.created", "incident.resolved"]);
    let created = got[0].json();
    let inc = &created["data"]["incident"];
    assert_eq!(inc["id"], incident_id.as_str());
    assert_eq!(inc["status"], "triggered");
    assert_eq!(inc["labels"]["alertname"], "Fire");
    assert_eq!(inc["title"], "Fire");
    assert_eq!(inc["description"], "Something is on fire");
    assert_eq!(inc["severity"], "critical");
    assert_eq!(
        created["source"],
        serde_json::json!({"name": "prometheus", "kind": "alertmanager"})
    );
    let resolved = got[1].json();
    assert_eq!(resolved["data"]["incident"]["status"], "resolved");
    assert_eq!(resolved["data"]["incident"]["occurrences"], 2);
    assert!(resolved["data"]["incident"]["resolved_at"].is_string());

    // Nothing is left to deliver, so no third request can come.
    eventually("queue drained", || async {
        sy.metric("switchyard_delivery_queue_depth{endpoint=\"hook\"}")
            .await
            == Some(0.0)
    })
    .await;
    assert_eq!(rx.received().len(), 2, "each event exactly once");
    assert_eq!(
        sy.metric("switchyard_deliveries_total{endpoint=\"hook\",outcome=\"delivered\"}")
            .await,
        Some(2.0)
    );
}

both_stores!(api_v2_array_body_and_multi_alert_webhook_make_one_incident_per_alert);
async fn api_v2_array_body_and_multi_alert_webhook_make_one_incident_per_alert(store: TestStore) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));
    let (status, body) = sy
        .ingest(
            "prometheus",
            &fixture("alertmanager-api-v2-alerts-official-ha-example.json"),
            &[BEARER],
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let n = body["accepted"].as_u64().unwrap() as usize;
    assert!(n >= 1);
    assert_eq!(
        body["events"].as_array().unwrap().len(),
        n,
        "every alert of the array is new"
    );

    let (status, body) = sy
        .ingest(
            "prometheus",
            &fixture("alertmanager-webhook-firing-multi-alert-fingerprint.json"),
            &[BEARER],
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["accepted"], 2);
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_ne!(events[0]["incident_id"], events[1]["incident_id"]);
    let got = rx.wait_delivered(n + 2).await;
    let keys: Vec<_> = got
        .iter()
        .map(|r| {
            r.json()["data"]["incident"]["dedup_key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(keys.contains(&"848d4fa77803ce9d".to_string()), "{keys:?}");
    assert!(keys.contains(&"e4a26b1cdb7fcfe4".to_string()), "{keys:?}");
}

both_stores!(bad_inputs_get_the_right_status_and_create_nothing);
async fn bad_inputs_get_the_right_status_and_create_nothing(store: TestStore) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));
    let firing = fixture("alertmanager-webhook-firing-alertmanager-bot.json");

    let (s, b) = sy.ingest("nope", &firing, &[BEARER]).await;
    assert_eq!((s, b["error"].as_str()), (404, Some("unknown_source")));
    // The path holds exactly one source name (regression: ingest is served under a static
    // prefix, not a `{source}` pattern); other methods than POST get 405.
    for path in ["", "prometheus/extra", "/prometheus"] {
        let (s, _) = sy.ingest(path, &firing, &[BEARER]).await;
        assert_eq!(s, 404, "/ingest/{path}");
    }
    let (s, _) = sy.get("/ingest/prometheus").await;
    assert_eq!(s, 405);

    let (s, b) = sy.ingest("prometheus", &firing, &[]).await;
    assert_eq!(s, 401, "{b}");
    let (s, _) = sy
        .ingest("prometheus", &firing, &[("Authorization", "Bearer wrong")])
        .await;
    assert_eq!(s, 401);

    let (s, b) = sy
        .ingest("prometheus", b"{\"alerts\": [\n  {\"status\": }", &[BEARER])
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "malformed_json");
    assert!(
        b["detail"].as_str().unwrap().contains("line 2 column"),
        "{b}"
    );

    let (s, b) = sy.ingest("prometheus", b"{\"hello\": 1}", &[BEARER]).await;
    assert_eq!(s, 400, "{b}");

    let huge = vec![b' '; 70_000];
    let (s, b) = sy.ingest("prometheus", &huge, &[BEARER]).await;
    assert_eq!((s, b["error"].as_str()), (413, Some("too_large")));

    let (s, b) = sy
        .ingest(
            "prometheus",
            &firing,
            &[BEARER, ("Content-Type", "application/xml")],
        )
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );

    // A wrong HMAC on the generic source.
    let (s, _) = sy
        .ingest(
            "custom",
            br#"{"alert": {"name": "x", "id": "1"}}"#,
            &[("X-Signature", "sha256=00")],
        )
        .await;
    assert_eq!(s, 401);

    // The series exists from the start (at 0, so that rate() works); nothing was counted.
    assert_eq!(
        sy.metric("switchyard_alerts_received_total{source=\"prometheus\"}")
            .await
            .unwrap_or(0.0),
        0.0
    );
    assert!(rx.received().is_empty());

    // The same server still works for good input.
    let (s, b) = sy.ingest("prometheus", &firing, &[BEARER]).await;
    assert_eq!(s, 202);
    assert_eq!(
        b["events"][0]["type"], "incident.created",
        "nothing was half-recorded before"
    );
    rx.wait_delivered(1).await;
}

both_stores!(generic_source_with_hmac_mapping_and_labels);
async fn generic_source_with_hmac_mapping_and_labels(store: TestStore) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));
    let body = br#"{"alert": {"name": "Queue stuck", "id": "q-7"}, "severity": "high", "status": "firing"}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(body);
    let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let (s, b) = sy.ingest("custom", body, &[("X-Signature", &sig)]).await;
    assert_eq!(s, 202, "{b}");
    let got = rx.wait_delivered(1).await;
    let inc = got[0].json()["data"]["incident"].clone();
    assert_eq!(inc["title"], "Queue stuck");
    assert_eq!(inc["dedup_key"], "q-7");
    assert_eq!(inc["severity"], "critical");
    assert_eq!(inc["labels"]["team"], "platform");
}

both_stores!(saturated_backlog_answers_503_with_retry_after_and_records_nothing);
async fn saturated_backlog_answers_503_with_retry_after_and_records_nothing(store: TestStore) {
    let rx = Receiver::start();
    // Every attempt fails, with a long retry: the one accepted delivery stays pending.
    rx.answer(&[(500, &[]), (500, &[]), (500, &[])]);
    let cfg =
        config_for(&store, &rx.url, "  max_pending_deliveries: 1").replace("[50ms, 100ms]", "[1h]");
    let sy = Switchyard::start(&cfg);
    let (s, _) = sy
        .ingest("open", br#"{"title": "one", "id": "1"}"#, &[])
        .await;
    assert_eq!(s, 202);
    wait_for("first attempt", || {
        (!rx.received().is_empty()).then_some(())
    })
    .await;

    let client = awc::Client::default();
    let resp = client
        .post(sy.url("/ingest/open"))
        .insert_header(("Content-Type", "application/json"))
        .send_body(r#"{"title": "two", "id": "2"}"#)
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers().get("Retry-After").unwrap(), "1");
    assert_eq!(
        sy.metric("switchyard_alerts_received_total{source=\"open\"}")
            .await,
        Some(1.0),
        "the refused request recorded nothing"
    );
}

/// Regression: mimalloc asked the kernel for transparent huge pages for its arenas
/// (`MADV_HUGEPAGE`). Every first touch of one then zeroes 2 MiB at once; on this project's
/// VMs that was 7-14% of switchyard's CPU under load and doubled its baseline memory. Built
/// with mimalloc's `no_thp`, the process holds no huge pages unless the system forces them on
/// everything (`transparent_hugepage/enabled` = `always`, an operator's choice).
#[actix_web::test]
async fn the_allocator_takes_no_transparent_huge_pages() {
    let thp_mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
    const TEST: &str = "ingest::the_allocator_takes_no_transparent_huge_pages";
    let Ok(thp_mode) = thp_mode else {
        crate::support::skipped(TEST, "no transparent huge pages on this kernel");
        return;
    };
    if thp_mode.contains("[always]") {
        crate::support::skipped(
            TEST,
            "transparent huge pages are forced on for every process here (`always`)",
        );
        return;
    }
    assert!(
        thp_mode.contains("[madvise]") || thp_mode.contains("[never]"),
        "unexpected transparent_hugepage/enabled: {thp_mode}"
    );
    let rx = Receiver::start();
    let sy = Switchyard::start(&config_for(&TestStore::memory(), &rx.url, ""));
    // Enough new incidents for the allocator to map fresh arenas.
    for batch in 0..20 {
        let alerts: Vec<String> = (0..100)
            .map(|i| {
                format!(
                    r#"{{"status": "firing", "labels": {{"alertname": "Thp{batch}x{i}"}}, "annotations": {{"summary": "{}"}}}}"#,
                    "x".repeat(400)
                )
            })
            .collect();
        let body = format!(r#"{{"version": "4", "alerts": [{}]}}"#, alerts.join(","));
        let (s, _) = sy.ingest("prometheus", body.as_bytes(), &[BEARER]).await;
        assert_eq!(s, 202);
    }
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", sy.pid()))
        .expect("smaps_rollup of the switchyard process");
    let huge_kib: u64 = rollup
        .lines()
        .find_map(|l| l.strip_prefix("AnonHugePages:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("an AnonHugePages line");
    assert_eq!(huge_kib, 0, "huge pages held by switchyard:\n{rollup}");
}
