//! Regression tests for the hardening issue: no sender's input loses another's data or stalls
//! ingest.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{Receiver, Switchyard, TestStore};
use crate::{base_config, both_stores, config_for};

const BEARER: (&str, &str) = ("Authorization", "Bearer t0ken");

/// The distinct `alertname` labels of the incidents in these deliveries, sorted.
fn distinct_alertnames(delivered: &[crate::support::Received]) -> Vec<String> {
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
    names
}

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
    let names = distinct_alertnames(&delivered);
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

/// Opens a connection to `base` (`http://host:port`) and sends a POST's headers and the first
/// `sent` bytes of a body of `declared` bytes, then nothing more.
fn stalled_post(base: &str, path: &str, declared: usize, sent: usize, extra: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {declared}\r\n{extra}\r\n"
    );
    s.write_all(head.as_bytes()).expect("headers");
    s.write_all(&vec![b' '; sent]).expect("part of the body");
    s
}

/// The status line's code of whatever the server answered on `s` (waits for it).
fn status_of(s: &mut TcpStream) -> u16 {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    let line = String::from_utf8_lossy(&buf[..n]).to_string();
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

// Item 2: 512 connections sending 10 bytes of a body and then nothing kept every ingest at
// 503 (the permit was taken before the body was read; no body deadline; credentials checked
// after the body).
#[actix_rt::test]
async fn slow_bodies_do_not_stall_ingest_and_time_out() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&base_config(
        &rx.url,
        "  max_inflight_requests: 8\n  body_timeout: 2s",
    ));
    // The generic `custom` source signs its body (HMAC): the body must be read to check it.
    let mut stalled: Vec<TcpStream> = (0..600)
        .map(|_| {
            stalled_post(
                &sy.base,
                "/ingest/custom",
                50_000,
                10,
                "X-Signature: sha256=00\r\n",
            )
        })
        .collect();
    // Unauthenticated senders to a bearer source are refused on their headers, at once.
    let mut refused = stalled_post(&sy.base, "/ingest/prometheus", 50_000, 10, "");
    assert_eq!(status_of(&mut refused), 401);

    // An authenticated sender is served meanwhile, again and again.
    for i in 0..20 {
        let (status, body) = sy
            .ingest(
                "prometheus",
                &am_body(&format!("Busy{i}"), "2026-11-22T10:00:00Z"),
                &[BEARER],
            )
            .await;
        assert_eq!(status, 202, "request {i} while 600 bodies stall: {body}");
    }
    rx.wait_delivered(20).await;
    // The stalled bodies are answered 408 once body_timeout has passed.
    let started = std::time::Instant::now();
    assert_eq!(status_of(&mut stalled[0]), 408);
    assert_eq!(status_of(&mut stalled[599]), 408);
    assert!(started.elapsed() < Duration::from_secs(15));
}

fn batch_body(prefix: &str, n: usize) -> Vec<u8> {
    let alerts: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({"status": "firing",
                "labels": {"alertname": format!("{prefix}{i}")},
                "startsAt": "2026-11-22T10:00:00Z"})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"version": "4", "status": "firing", "alerts": alerts}))
        .unwrap()
}

// Item 4: `max_pending_deliveries` was checked before the body was read, so 8 bodies of
// 25,000 alerts went past a limit of 1,000 to 200,000 queued. Each request now reserves room
// for its alerts.
both_stores!(the_pending_limit_counts_what_each_body_adds);
async fn the_pending_limit_counts_what_each_body_adds(store: TestStore) {
    let config = format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
  max_pending_deliveries: 100
sources:
  - name: prometheus
    kind: alertmanager
    auth: {{ bearer: t0ken }}
endpoints:
  - name: down
    kind: webhook
    url: http://127.0.0.1:9/never
    retry: {{ schedule: [1h] }}
routes:
  - name: all
    matchers: []
    to: [down]
{}"#,
        store.section()
    );
    let sy = Switchyard::start(&config);
    let bodies: Vec<Vec<u8>> = (0..8).map(|b| batch_body(&format!("B{b}-"), 60)).collect();
    let answers = futures_util::future::join_all(
        bodies.iter().map(|b| sy.ingest("prometheus", b, &[BEARER])),
    )
    .await;
    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    let refused = answers.iter().filter(|(s, _)| *s == 503).count();
    assert_eq!(accepted, 1, "{answers:?}");
    assert_eq!(refused, 7, "{answers:?}");
    // Still refused while the 60 deliveries wait for their retry.
    let (status, _) = sy
        .ingest("prometheus", &batch_body("Late-", 60), &[BEARER])
        .await;
    assert_eq!(status, 503);
    // A small body still fits.
    let (status, body) = sy
        .ingest("prometheus", &batch_body("Small-", 10), &[BEARER])
        .await;
    assert_eq!(status, 202, "{body}");
}

// Item 9: the smaller ones.
#[actix_rt::test]
async fn small_answers_are_clear_bounded_and_tell_nothing_internal() {
    let rx = Receiver::start();
    let sy = Switchyard::start(
        &base_config(&rx.url, "  admin_token: adm1n")
            .replace("max_body_bytes: 65536", "max_body_bytes: 1048576"),
    );
    // A compressed body: 415, not 400.
    let client = awc::Client::default();
    let resp = client
        .post(sy.url("/ingest/prometheus"))
        .insert_header(("Authorization", "Bearer t0ken"))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("Content-Encoding", "gzip"))
        .send_body(vec![0x1f, 0x8b, 0x08, 0x00])
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);

    // An unknown source's name is not echoed back whole.
    let long = "x".repeat(20_000);
    let (status, body) = sy.ingest(&long, b"{}", &[]).await;
    assert_eq!(status, 404);
    let text = body.to_string();
    assert!(text.len() < 300, "{} bytes", text.len());
    assert!(text.contains("xxxx..."), "{text}");

    // The 202 to a body of 1,500 alerts lists 1,000 events and counts the rest.
    let (status, body) = sy
        .ingest("prometheus", &batch_body("Many-", 1_500), &[BEARER])
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1_500);
    assert_eq!(body["events"].as_array().unwrap().len(), 1_000);
    assert_eq!(body["events_omitted"], 500);

    // A reload that changes `server:` is applied for the rest, with a warning about it.
    let path = sy.config_path();
    let yaml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        yaml.replace("max_body_bytes: 1048576", "max_body_bytes: 2048"),
    )
    .unwrap();
    let (status, summary) =
        crate::endpoints::admin_call(&sy, "POST", "/api/v1/reload", Some("adm1n")).await;
    assert_eq!(status, 200, "{summary}");
    let warnings = summary["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{summary}");
    assert!(
        warnings[0].as_str().unwrap().contains("`server:` changed"),
        "{summary}"
    );
}

// Item 9: /readyz needs no credentials, so it does not show the store's own error text.
#[actix_rt::test]
async fn readiness_does_not_show_the_redis_stores_error_text() {
    let mut redis = crate::support::RedisServer::start();
    let store = TestStore::on(&redis);
    let rx = Receiver::start();
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));
    let (status, _) = sy.get("/readyz").await;
    assert_eq!(status, 200);
    redis.stop();
    crate::support::eventually("/readyz answers 503", || async {
        sy.get("/readyz").await.0 == 503
    })
    .await;
    let (_, body) = sy.get("/readyz").await;
    assert!(body.contains("the store does not answer"), "{body}");
    assert!(!body.to_lowercase().contains("refused"), "{body}");
    assert!(!body.contains("os error"), "{body}");
}

/// Signs `body` as Standard Webhooks does (`v1,<base64 HMAC-SHA256 of id.ts.body>`), with the
/// raw key `key`; the headers to send.
fn sw_headers(key: &[u8], id: &str, body: &[u8]) -> Vec<(String, String)> {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), ts),
        ("webhook-signature".into(), format!("v1,{sig}")),
    ]
}

fn generic_body(id: &str, status: &str) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"alert": {"id": id, "name": "Replayed"}, "status": status}),
    )
    .unwrap()
}

// Item 6: a captured Standard Webhooks request re-sent within the tolerance window was
// accepted again (after a resolve it re-opened the incident).
both_stores!(a_replayed_standard_webhooks_request_is_not_recorded_again);
async fn a_replayed_standard_webhooks_request_is_not_recorded_again(store: TestStore) {
    let rx = Receiver::start();
    let config = config_for(&store, &rx.url, "").replace(
        "  - name: open\n    kind: generic\n",
        "  - name: open\n    kind: generic\n  - name: signed\n    kind: generic\n    auth: { standard_webhooks: { secret: whsec_c2lnbmluZy1rZXktZm9yLXRlc3Rz } }\n    mapping: { title: /alert/name, dedup_key: /alert/id, status: /status }\n",
    );
    let sy = Switchyard::start(&config);
    let key = b"signing-key-for-tests";
    let post = |id: &'static str, body: Vec<u8>| {
        let sy = &sy;
        async move {
            let headers = sw_headers(key, id, &body);
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            sy.ingest("signed", &body, &h).await
        }
    };
    let firing = generic_body("db-1", "firing");
    let (status, body) = post("msg_fire", firing.clone()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["events"][0]["type"], "incident.created", "{body}");
    let (status, body) = post("msg_resolve", generic_body("db-1", "resolved")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["events"][0]["type"], "incident.resolved", "{body}");
    // The captured firing request, re-sent as it was: accepted, nothing recorded.
    let (status, body) = post("msg_fire", firing.clone()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 0, "{body}");
    rx.wait_delivered(2).await;
    // A new request (a new webhook-id) is recorded as usual: it opens a new incident.
    let (status, body) = post("msg_fire_again", firing).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["events"][0]["type"], "incident.created", "{body}");
    let delivered = rx.wait_delivered(3).await;
    let kinds: Vec<_> = delivered
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["incident.created", "incident.resolved", "incident.created"]
    );
}

fn one_endpoint(store: &TestStore, url: &str, endpoint_extra: &str, server_extra: &str) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
{server_extra}
sources:
  - name: prometheus
    kind: alertmanager
    auth: {{ bearer: t0ken }}
endpoints:
  - name: hook
    kind: webhook
    url: {url}
{endpoint_extra}
routes:
  - name: all
    matchers: []
    to: [hook]
{}"#,
        store.section()
    )
}

// Item 8: SIGTERM with deliveries in flight and queued exited after 2.3 s, the queued events
// never sent and nothing in the log. Now what is held is finished within the grace period.
#[actix_rt::test]
async fn sigterm_finishes_queued_deliveries_before_exiting() {
    let rx = Receiver::start();
    let mut sy = Switchyard::start(&one_endpoint(
        &TestStore::memory(),
        &rx.url,
        "    rate_limit: 4/s",
        "",
    ));
    let (status, body) = sy
        .ingest("prometheus", &batch_body("Term-", 8), &[BEARER])
        .await;
    assert_eq!(status, 202, "{body}");
    // The rate limit lets 4 go at once; the others wait in the queue.
    rx.wait_delivered(1).await;
    assert!(rx.delivered().len() < 8, "some deliveries are still queued");
    let code = actix_rt::task::spawn_blocking(move || {
        let code = sy.terminate();
        (code, sy.logs())
    })
    .await
    .unwrap();
    assert_eq!(code.0, Some(0), "{}", code.1);
    let names = distinct_alertnames(&rx.delivered());
    assert_eq!(
        names.len(),
        8,
        "every queued delivery was sent before exiting"
    );
    assert!(
        code.1
            .contains("every delivery this process held is finished"),
        "{}",
        code.1
    );
}

#[actix_rt::test]
async fn sigterm_after_the_grace_period_says_what_the_memory_store_lost() {
    let rx = Receiver::start();
    rx.answer(&[(500, &[]), (500, &[]), (500, &[])]);
    let mut sy = Switchyard::start(&one_endpoint(
        &TestStore::memory(),
        &rx.url,
        "    retry: { schedule: [1h] }",
        "  shutdown_grace: 1s",
    ));
    let (status, body) = sy
        .ingest("prometheus", &batch_body("Lost-", 3), &[BEARER])
        .await;
    assert_eq!(status, 202, "{body}");
    crate::support::wait_for("three failed attempts", || {
        (rx.received().len() >= 3).then_some(())
    })
    .await;
    let (code, logs) = actix_rt::task::spawn_blocking(move || (sy.terminate(), sy.logs()))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        logs.contains("stopped: 3 deliveries lost (memory store)"),
        "{logs}"
    );
}

// Item 3: about 70,000 alerts in one body made one record.lua call of 2.1 s: 503 to the client
// although everything was recorded, and Redis blocked for every other instance meanwhile.
#[actix_rt::test]
async fn a_large_body_is_recorded_in_bounded_redis_scripts() {
    use deadpool_redis::redis;
    let server = crate::support::RedisServer::start();
    let store = TestStore::on(&server);
    let mut conn = store.redis_conn().await;
    // Any script over 250 ms is logged by Redis.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(250_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async(&mut conn)
        .await
        .unwrap();
    let rx = Receiver::start();
    let config = one_endpoint(
        &store,
        &rx.url,
        "    events: [incident.acknowledged]",
        "  max_body_bytes: 8388608",
    );
    let sy = Switchyard::start(&config);
    // A debug build on a busy machine takes seconds for 20,000 alerts: more than awc's
    // default 5 s.
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(120))
        .finish();
    let mut resp = client
        .post(sy.url("/ingest/prometheus"))
        .insert_header(BEARER)
        .insert_header(("Content-Type", "application/json"))
        .send_body(batch_body("Big-", 20_000))
        .await
        .expect("ingest");
    let status = resp.status().as_u16();
    let body: serde_json::Value =
        serde_json::from_slice(&resp.body().limit(1 << 20).await.unwrap()).unwrap();
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 20_000);
    assert_eq!(body["events_omitted"], 19_000);
    let slow: i64 = redis::cmd("SLOWLOG")
        .arg("LEN")
        .query_async(&mut conn)
        .await
        .unwrap();
    let entries: redis::Value = redis::cmd("SLOWLOG")
        .arg("GET")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(slow, 0, "no Redis call took 250 ms or more: {entries:?}");
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    let scripts: u64 = stats
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(
        scripts >= 20,
        "recorded in calls of at most 1,024 alerts: {scripts} scripts"
    );
}

// Item 7: a Redis outage of 10 s gave duplicate deliveries: results that could not be stored
// were dropped after 5 s, their leases ran out and the heads were sent again. They now wait
// (ten minutes), and a head claimed again takes its waiting result instead of being re-sent.
#[actix_rt::test]
async fn a_redis_outage_while_answers_arrive_sends_nothing_twice() {
    let mut server = crate::support::RedisServer::start_persistent();
    let store = TestStore::on(&server);
    let rx = Receiver::start();
    let sy = Switchyard::start(&one_endpoint(&store, &rx.url, "    timeout: 1s", ""));
    rx.delay_answers(Some(Duration::from_millis(300)));
    let (status, body) = sy
        .ingest("prometheus", &batch_body("During-", 5), &[BEARER])
        .await;
    assert_eq!(status, 202, "{body}");
    crate::support::wait_for("5 requests in flight", || {
        (rx.received().len() >= 5).then_some(())
    })
    .await;
    server.stop();
    // Longer than the lease (timeout 1 s + 5 s margin) and the old 5 s of settle tries.
    actix_rt::time::sleep(Duration::from_secs(8)).await;
    server.restart();
    store.wait_queue_settled("hook").await;
    let during: Vec<String> = rx
        .received()
        .iter()
        .filter_map(|r| r.json()["id"].as_str().map(str::to_string))
        .collect();
    let mut unique = during.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "every event delivered");
    assert_eq!(during.len(), 5, "none sent twice: {during:?}");
}
