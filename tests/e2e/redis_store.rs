//! The redis store's promises, with real `redis-server`s and real `switchyard` processes:
//! a `kill -9` loses nothing, several instances share one Redis without sending an event
//! twice, and a Redis outage is answered with 503 and recovered from.

use std::collections::HashMap;

use deadpool_redis::redis::AsyncCommands;

use crate::config_for;
use crate::support::{
    eventually, wait_for, Received, Receiver, RedisServer, Switchyard, TestStore,
};

/// `config_for` with a slower retry schedule (8 retries, 300ms apart) and a second endpoint,
/// `doomed` at `doomed_url` (4 retries, 200ms apart), that gets every event too. Neither
/// circuit opens (these tests count attempts by the retry schedule alone).
fn crash_config(store: &TestStore, url: &str, doomed_url: &str) -> String {
    config_for(store, url, "")
        .replace(
            "[50ms, 100ms]",
            "[300ms, 300ms, 300ms, 300ms, 300ms, 300ms, 300ms, 300ms] }\n    circuit_breaker: { failures: 1000",
        )
        .replace(
            "routes:\n",
            &format!(
                "  - name: doomed\n    kind: webhook\n    url: {doomed_url}\n    timeout: 2s\n    retry: {{ schedule: [200ms, 200ms, 200ms, 200ms] }}\n    circuit_breaker: {{ failures: 1000 }}\nroutes:\n"
            ),
        )
        .replace("to: [hook]", "to: [hook, doomed]")
}

const NO_HEADERS: &[(&str, &str)] = &[];

fn kind(r: &Received) -> String {
    r.json()["type"].as_str().unwrap_or_default().to_string()
}

fn incident(r: &Received) -> String {
    r.json()["data"]["incident"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every event was delivered (2xx) exactly once, and per incident `created` came first.
fn assert_once_and_in_order(delivered: &[Received]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in delivered {
        *seen
            .entry(r.header("webhook-id").unwrap().to_string())
            .or_default() += 1;
    }
    assert!(
        seen.values().all(|n| *n == 1),
        "an event was delivered twice: {seen:?}"
    );
    let mut per_incident: HashMap<String, Vec<String>> = HashMap::new();
    for r in delivered {
        per_incident.entry(incident(r)).or_default().push(kind(r));
    }
    for (inc, kinds) in per_incident {
        assert_eq!(kinds[0], "incident.created", "{inc}: {kinds:?}");
        if kinds.len() > 1 {
            assert_eq!(kinds[1..], ["incident.resolved"], "{inc}: {kinds:?}");
        }
    }
}

async fn pending(store: &TestStore) -> i64 {
    let mut conn = store.redis_conn().await;
    let n: Option<i64> = conn
        .get(format!("{}:pending", store.key_prefix))
        .await
        .unwrap();
    n.unwrap_or(0)
}

/// An endpoint's deliveries as stored in Redis (the entries of its lanes, then of its log),
/// each split into its fields: delivery id, lane, event id, replay_of, state, attempts JSON,
/// incident JSON, envelope (the layout in src/store/redis/common.lua).
pub(crate) async fn stored_deliveries(store: &TestStore, endpoint: &str) -> Vec<Vec<String>> {
    let mut conn = store.redis_conn().await;
    let q = format!("{}:q:{endpoint}", store.key_prefix);
    let mut lanes: Vec<String> = conn.zrange(format!("{q}:due"), 0, -1).await.unwrap();
    let leased: Vec<String> = conn.zrange(format!("{q}:leases"), 0, -1).await.unwrap();
    lanes.extend(leased);
    let mut entries: Vec<String> = Vec::new();
    for lane in lanes {
        let in_lane: Vec<String> = conn
            .lrange(format!("{q}:lane:{lane}"), 0, -1)
            .await
            .unwrap();
        entries.extend(in_lane);
    }
    let log: Vec<String> = conn.lrange(format!("{q}:log"), 0, -1).await.unwrap();
    entries.extend(log);
    entries
        .iter()
        .map(|e| {
            let fields = e.strip_prefix("2\n").expect("an entry of this layout");
            fields.splitn(8, '\n').map(str::to_string).collect()
        })
        .collect()
}

/// The attempt counts of an endpoint's deliveries by event id, as stored in Redis (the
/// deliveries in its lanes and in its log).
async fn stored_attempts(store: &TestStore, endpoint: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for d in stored_deliveries(store, endpoint).await {
        let v: serde_json::Value = serde_json::from_str(&d[5]).unwrap();
        out.insert(d[2].clone(), v.as_array().map_or(0, Vec::len));
    }
    out
}

/// How many requests each event got at a receiver.
fn requests_per_event(rx: &Receiver) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for r in rx.received() {
        *out.entry(r.header("webhook-id").unwrap().to_string())
            .or_default() += 1;
    }
    out
}

#[actix_rt::test]
async fn kill_9_while_retries_wait_loses_nothing_and_attempt_counts_resume() {
    let store = TestStore::redis();
    let rx = Receiver::start();
    let doomed = Receiver::start();
    // The receiver fails the first 8 requests: every event waits for retries.
    rx.answer(&[(500, NO_HEADERS); 8]);
    doomed.answer(&[(500, NO_HEADERS); 50]);
    let cfg = crash_config(&store, &rx.url, &doomed.url);
    let mut sy = Switchyard::start(&cfg);

    for id in ["k-1", "k-2", "k-3"] {
        let body = format!(r#"{{"title": "Crash {id}", "id": "{id}", "status": "firing"}}"#);
        let (s, b) = sy.ingest("open", body.as_bytes(), &[]).await;
        assert_eq!(s, 202, "{b}");
    }
    for id in ["k-1", "k-2"] {
        let body = format!(r#"{{"title": "Crash {id}", "id": "{id}", "status": "resolved"}}"#);
        let (s, b) = sy.ingest("open", body.as_bytes(), &[]).await;
        assert_eq!(
            (s, b["events"][0]["type"].as_str()),
            (202, Some("incident.resolved"))
        );
    }
    // Wait until `doomed` has two failed attempts stored for its first event, then kill -9:
    // its third attempt is 200ms away, the receivers' retries are pending.
    eventually("two stored attempts at doomed", || async {
        stored_attempts(&store, "doomed")
            .await
            .values()
            .any(|n| *n == 2)
    })
    .await;
    sy.kill();
    assert!(pending(&store).await > 0, "deliveries wait in Redis");
    // Requests sent but not yet stored when the process died are attempts lost with it.
    let stored_at_kill = stored_attempts(&store, "doomed").await;
    let seen_at_kill = requests_per_event(&doomed);
    assert!(
        stored_at_kill.values().any(|n| *n >= 2),
        "{stored_at_kill:?}"
    );

    let sy = Switchyard::start(&cfg);
    let got = rx.wait_delivered(5).await;
    assert_once_and_in_order(&got);
    eventually("doomed's deliveries dead", || async {
        pending(&store).await == 0
    })
    .await;
    assert_eq!(rx.delivered().len(), 5, "no event twice");
    // Every doomed delivery got 1 + 4 stored attempts across both processes: the schedule
    // went on from the stored count (plus any request in flight at the kill, not stored).
    let per_event = requests_per_event(&doomed);
    assert_eq!(per_event.len(), 5);
    for (event, n) in &per_event {
        let stored = stored_at_kill.get(event).copied().unwrap_or(0);
        let lost = seen_at_kill.get(event).copied().unwrap_or(0) - stored;
        assert_eq!(*n, 5 + lost, "{event}: {per_event:?} {stored_at_kill:?}");
    }
    assert!(
        stored_attempts(&store, "doomed")
            .await
            .values()
            .all(|n| *n == 5),
        "attempts are kept with the dead deliveries"
    );
    drop(sy);
}

#[actix_rt::test]
async fn two_instances_on_one_redis_create_once_and_deliver_each_event_once() {
    let store = TestStore::redis();
    let rx = Receiver::start();
    let cfg = config_for(&store, &rx.url, "");
    let a = Switchyard::start(&cfg);
    let b = Switchyard::start(&cfg);

    // The same alert to both at once, several times over.
    let mut created = 0;
    for round in 0..5 {
        let body = format!(r#"{{"title": "Shared {round}", "id": "shared-{round}"}}"#);
        let (ra, rb) = futures_util::join!(
            a.ingest("open", body.as_bytes(), &[]),
            b.ingest("open", body.as_bytes(), &[])
        );
        for (s, body) in [ra, rb] {
            assert_eq!(s, 202, "{body}");
            created += body["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == "incident.created")
                .count();
        }
    }
    assert_eq!(created, 5, "one incident.created per shared alert");
    // Different alerts to each, then their resolution through the other instance.
    for i in 0..10 {
        let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let fire = format!(r#"{{"title": "Own {i}", "id": "own-{i}"}}"#);
        assert_eq!(first.ingest("open", fire.as_bytes(), &[]).await.0, 202);
        let resolve = format!(r#"{{"title": "Own {i}", "id": "own-{i}", "status": "resolved"}}"#);
        let (s, body) = second.ingest("open", resolve.as_bytes(), &[]).await;
        assert_eq!(
            (s, body["events"][0]["type"].as_str()),
            (202, Some("incident.resolved"))
        );
    }
    let got = rx.wait_delivered(25).await;
    eventually("both queues drained", || async {
        pending(&store).await == 0
    })
    .await;
    assert_eq!(rx.received().len(), 25, "each event once at the receiver");
    assert_once_and_in_order(&got);
    let delivered = |sy: &Switchyard| {
        let sy = sy.base.clone();
        async move {
            let text = awc::Client::default()
                .get(format!("{sy}/metrics"))
                .send()
                .await
                .unwrap()
                .body()
                .await
                .unwrap();
            String::from_utf8_lossy(&text)
                .lines()
                .find_map(|l| {
                    l.strip_prefix(
                        "switchyard_deliveries_total{endpoint=\"hook\",outcome=\"delivered\"}",
                    )
                    .and_then(|v| v.trim().parse::<f64>().ok())
                })
                .unwrap_or(0.0)
        }
    };
    assert_eq!(delivered(&a).await + delivered(&b).await, 25.0);
}

#[actix_rt::test]
async fn a_killed_instances_deliveries_are_finished_by_the_other() {
    let store = TestStore::redis();
    let rx = Receiver::start();
    rx.answer(&[(500, NO_HEADERS); 3]);
    let cfg = config_for(&store, &rx.url, "").replace("[50ms, 100ms]", "[300ms, 300ms, 300ms]");
    let mut a = Switchyard::start(&cfg);
    for i in 0..3 {
        let body = format!(r#"{{"title": "Orphan {i}", "id": "orphan-{i}"}}"#);
        assert_eq!(a.ingest("open", body.as_bytes(), &[]).await.0, 202);
    }
    wait_for("three failed attempts", || {
        (rx.received().len() >= 3).then_some(())
    })
    .await;
    a.kill();
    let b = Switchyard::start(&cfg);
    let got = rx.wait_delivered(3).await;
    assert_once_and_in_order(&got);
    eventually("b delivered them", || async {
        b.metric("switchyard_deliveries_total{endpoint=\"hook\",outcome=\"delivered\"}")
            .await
            == Some(3.0)
    })
    .await;
}

#[actix_rt::test]
async fn a_redis_outage_answers_503_records_nothing_and_recovers() {
    let mut server = RedisServer::start_persistent();
    let store = TestStore::on(&server);
    let rx = Receiver::start();
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));
    let (s, _) = sy.get("/readyz").await;
    assert_eq!(s, 200);
    let (s, b) = sy
        .ingest("open", br#"{"title": "Before", "id": "before"}"#, &[])
        .await;
    assert_eq!(s, 202, "{b}");
    rx.wait_delivered(1).await;

    server.stop();
    for i in 0..5 {
        let body = format!(r#"{{"title": "During {i}", "id": "during-{i}"}}"#);
        let client = awc::Client::default();
        let resp = client
            .post(sy.url("/ingest/open"))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body)
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 503, "while redis is down");
        assert_eq!(resp.headers().get("Retry-After").unwrap(), "1");
    }
    let (s, _) = sy.get("/readyz").await;
    assert_eq!(s, 503, "not ready without redis");
    let (s, _) = sy
        .ingest(
            "open",
            br#"{"title": "Before", "id": "before", "status": "resolved"}"#,
            &[],
        )
        .await;
    assert_eq!(s, 503);

    server.restart();
    eventually("ready again", || async { sy.get("/readyz").await.0 == 200 }).await;
    // Nothing of the refused requests was recorded: each alert is new now.
    for i in 0..5 {
        let body = format!(r#"{{"title": "During {i}", "id": "during-{i}"}}"#);
        let (s, b) = sy.ingest("open", body.as_bytes(), &[]).await;
        assert_eq!(
            (s, b["events"][0]["type"].as_str()),
            (202, Some("incident.created")),
            "{b}"
        );
    }
    // What was recorded before the outage is still there.
    let (s, b) = sy
        .ingest("open", br#"{"title": "Before", "id": "before"}"#, &[])
        .await;
    assert_eq!((s, b["events"].as_array().map(Vec::len)), (202, Some(0)));
    let got = rx.wait_delivered(6).await;
    assert_once_and_in_order(&got);
    eventually("queue drained", || async { pending(&store).await == 0 }).await;
    assert_eq!(rx.received().len(), 6);
}

#[actix_rt::test]
async fn a_frozen_redis_is_answered_within_the_timeouts_and_recovered_from() {
    let server = RedisServer::start();
    let store = TestStore::on(&server);
    let rx = Receiver::start();
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));
    let (s, _) = sy
        .ingest("open", br#"{"title": "Warm", "id": "warm"}"#, &[])
        .await;
    assert_eq!(s, 202);
    rx.wait_delivered(1).await;

    // Connections stay open but nothing answers: only the timeouts end the wait.
    server.freeze(true);
    let started = std::time::Instant::now();
    let (s, b) = sy
        .ingest("open", br#"{"title": "Frozen", "id": "frozen"}"#, &[])
        .await;
    assert_eq!(s, 503, "{b}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "answered within the timeouts: {:?}",
        started.elapsed()
    );
    let (s, _) = sy.get("/readyz").await;
    assert_eq!(s, 503);

    server.freeze(false);
    eventually("ready again", || async { sy.get("/readyz").await.0 == 200 }).await;
    let (s, b) = sy
        .ingest("open", br#"{"title": "Thawed", "id": "thawed"}"#, &[])
        .await;
    assert_eq!(
        (s, b["events"][0]["type"].as_str()),
        (202, Some("incident.created"))
    );
    // (The frozen request's script may run after the thaw: it was sent, only unanswered.)
    wait_for("the thawed alert delivered", || {
        rx.delivered()
            .iter()
            .any(|r| r.json()["data"]["incident"]["dedup_key"] == "thawed")
            .then_some(())
    })
    .await;
}

#[test]
fn check_reports_a_bad_redis_url_at_its_line() {
    let c = crate::support::check_yaml("version: 1\nstore:\n  kind: redis\n  url: http://nope\n");
    let (p, err) = (&c.path, &c.err);
    assert_eq!(c.code, 1, "{err}");
    assert!(err.contains(&format!("{p}:4:")), "{err}");
    assert!(err.contains("redis URL"), "{err}");
}

#[actix_rt::test]
async fn ingest_racing_a_redis_kill_is_all_or_nothing_per_request() {
    use std::sync::{Arc, Mutex};
    let mut server = RedisServer::start_persistent();
    let store = TestStore::on(&server);
    let rx = Receiver::start();
    let sy = Switchyard::start(&config_for(&store, &rx.url, ""));
    const N: usize = 160;
    let answers: Arc<Mutex<Vec<(usize, u16)>>> = Arc::default();
    // 8 clients POST distinct alerts while redis is killed and started again.
    for worker in 0..8 {
        let answers = answers.clone();
        let url = sy.url("/ingest/open");
        actix_rt::spawn(async move {
            let client = awc::Client::default();
            for i in (worker..N).step_by(8) {
                let body = format!(r#"{{"title": "Race {i}", "id": "race-{i}"}}"#);
                let status = match client
                    .post(&url)
                    .insert_header(("Content-Type", "application/json"))
                    .send_body(body)
                    .await
                {
                    Ok(resp) => resp.status().as_u16(),
                    Err(_) => 0,
                };
                answers.lock().unwrap().push((i, status));
                // Paced, so that the kill lands in the middle of the stream.
                actix_rt::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        });
    }
    let answered = || answers.lock().unwrap().len();
    wait_for("a third answered", || (answered() >= N / 3).then_some(())).await;
    server.stop();
    wait_for("two thirds answered", || {
        (answered() >= 2 * N / 3).then_some(())
    })
    .await;
    server.restart();
    wait_for("all answered", || (answered() == N).then_some(())).await;
    let answers = answers.lock().unwrap().clone();
    assert!(
        answers.iter().all(|(_, s)| *s == 202 || *s == 503),
        "{answers:?}"
    );
    let refused = answers.iter().filter(|(_, s)| *s == 503).count();
    assert!(refused > 0, "some requests met the outage");
    assert!(refused < N, "some were accepted");

    eventually("ready again", || async { sy.get("/readyz").await.0 == 200 }).await;
    // A 202 was recorded whole (the same alert again is a repeat); a 503 left nothing (the
    // same alert again creates the incident).
    for (i, status) in &answers {
        let body = format!(r#"{{"title": "Race {i}", "id": "race-{i}"}}"#);
        let (s, b) = sy.ingest("open", body.as_bytes(), &[]).await;
        assert_eq!(s, 202, "{b}");
        let events = b["events"].as_array().unwrap().len();
        if *status == 202 {
            assert_eq!(events, 0, "race-{i} was accepted before: a repeat");
        } else {
            // Refused: recorded not at all (a new incident now), or wholly, when Redis died
            // after committing the script but before answering (then its event was queued
            // with it: the receiver count below proves it).
            assert!(events <= 1, "race-{i}: {b}");
        }
    }
    let got = rx.wait_delivered(N).await;
    assert_once_and_in_order(&got);
    eventually("queue drained", || async { pending(&store).await == 0 }).await;
    assert_eq!(rx.delivered().len(), N, "one incident.created per alert");
}
