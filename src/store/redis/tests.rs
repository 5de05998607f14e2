//! The redis store against a real `redis-server`: the one in `SWITCHYARD_TEST_REDIS_URL`
//! (scripts/test.sh starts it), else one started here for the test. Each test uses its own
//! random key prefix, so they run in parallel on one server.

use std::process::{Child, Command, Stdio};

use chrono::{DateTime, Utc};
use deadpool_redis::redis;

use super::conn::unavailable;
use super::*;
use crate::model::delivery::{Attempt, DeliveryState, Settlement};
use crate::model::transition::Outcome;
use crate::model::{Alert, AlertStatus, Event, Severity};
use crate::store::leases::{LeaseRooms, LeasedHeads, RecordLeases};
use crate::store::{
    Claim, Claimed, DeliveryQueueStore, IncidentStore, Recorded, Routing, StoreError,
};

/// Every event goes to every endpoint named.
struct ToAll(Vec<Arc<str>>);

impl Routing for ToAll {
    fn endpoints_of(&self, _event: &Event) -> Vec<Arc<str>> {
        self.0.clone()
    }
}

/// A Redis for one test: the shared one, or a throwaway `redis-server` owned by the test.
pub(crate) struct TestRedis {
    url: String,
    child: Option<Child>,
}

impl TestRedis {
    /// A redis store on this server, its keys under `prefix`.
    pub(crate) fn redis_store(&self, prefix: &str) -> RedisStore {
        let pool = RedisSpec::new(&self.url, prefix).pool().expect("pool");
        RedisStore::new(pool, prefix)
    }

    pub(crate) fn get() -> TestRedis {
        if let Ok(url) = std::env::var("SWITCHYARD_TEST_REDIS_URL") {
            return TestRedis { url, child: None };
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is needed for these tests (scripts/test.sh installs it)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TestRedis {
            url: format!("redis://127.0.0.1:{port}"),
            child: Some(child),
        }
    }

    fn store(&self, prefix: &str, endpoints: &[&str]) -> TestStore {
        let routes = ToAll(endpoints.iter().map(|n| Arc::from(*n)).collect());
        let pool = RedisSpec::new(&self.url, prefix).pool().expect("pool");
        TestStore {
            store: RedisStore::new(pool, prefix),
            routes,
            rooms: Arc::new(LeaseRooms::default()),
        }
    }
}

/// A store as one instance uses it: its routes, and its dispatchers' room for lanes leased at
/// record (see [`record_leases`]).
struct TestStore {
    store: RedisStore,
    routes: ToAll,
    rooms: Arc<LeaseRooms>,
}

impl std::ops::Deref for TestStore {
    type Target = RedisStore;
    fn deref(&self) -> &RedisStore {
        &self.store
    }
}

impl TestStore {
    /// Records as the incident actor does: routed, leasing within the dispatchers' room, the
    /// leased heads handed over; what each alert did.
    async fn record(
        &self,
        alerts: &[Alert],
        now: DateTime<Utc>,
    ) -> Result<Vec<Recorded>, StoreError> {
        let mut offer = self.rooms.offer();
        match self
            .store
            .record(alerts, now, &self.routes, &mut offer)
            .await
        {
            Ok(r) => {
                offer.finish(r.leased, &r.due);
                Ok(r.recorded)
            }
            Err(e) => {
                offer.finish(Vec::new(), &[]);
                Err(e)
            }
        }
    }

    /// Whether the event's dedup key exists (the scripts read and write them).
    async fn is_delivered(&self, endpoint: &str, event_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.store.conn().await?;
        redis::cmd("EXISTS")
            .arg(self.store.dedup_key(endpoint, event_id))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    /// Writes the event's dedup key, as a settle does.
    async fn mark_delivered(&self, endpoint: &str, event_id: &str) -> Result<(), StoreError> {
        let mut conn = self.store.conn().await?;
        let _: Option<String> = redis::cmd("SET")
            .arg(self.store.dedup_key(endpoint, event_id))
            .arg("1")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The store's count of unfinished deliveries.
    async fn pending(&self) -> usize {
        let mut conn = self.store.conn().await.expect("conn");
        let n: Option<i64> = redis::cmd("GET")
            .arg(self.store.pending_key())
            .query_async(&mut conn)
            .await
            .expect("GET pending");
        n.unwrap_or(0).max(0) as usize
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A claimed delivery with every attempt so far, to settle.
fn with_attempts(
    mut claimed: Claimed,
    attempts: Vec<Attempt>,
    settlement: Settlement,
) -> (Claimed, Settlement) {
    claimed.attempts = attempts;
    (claimed, settlement)
}

/// Settles one claimed delivery.
async fn settle(
    store: &RedisStore,
    endpoint: &str,
    claimed: &Claimed,
    attempts: &[Attempt],
    settlement: Settlement,
) -> Result<Option<Duration>, StoreError> {
    let one = with_attempts(claimed.clone(), attempts.to_vec(), settlement);
    store
        .settle_many(endpoint, std::slice::from_ref(&one))
        .await
        .map(|s| s.next_claimable_in)
}

/// Two instances (their own connections, lease tokens and known incidents) on one key prefix.
fn two_instances(redis: &TestRedis, endpoints: &[&str]) -> (TestStore, TestStore) {
    let p = prefix();
    (redis.store(&p, endpoints), redis.store(&p, endpoints))
}

pub(crate) fn prefix() -> String {
    format!("sytest:{}", uuid::Uuid::now_v7().simple())
}

/// Claims `hook` on `store` until the claim has a delivery (a retry came due, a lease ran
/// out): the test waits for that, not for a guessed time. Fails after 10 s.
async fn claim_once_due(store: &RedisStore, lease: Duration) -> Claim {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let c = store.claim("hook", 10, lease).await.unwrap();
        if !c.deliveries.is_empty() {
            return c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing came due within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A "not yet" check that does not depend on the machine's speed: `store` claims `hook` once,
/// and when that claim finished before `window` (a lease or a retry's wait, started at
/// `since`) ran out it must have got nothing; then it claims until something comes due, and
/// returns that claim. On a machine too slow to tell, the first claim may be the one that
/// takes it.
async fn nothing_until_due(
    store: &RedisStore,
    since: std::time::Instant,
    window: Duration,
    lease: Duration,
) -> Claim {
    let early = store.claim("hook", 10, lease).await.unwrap();
    if since.elapsed() < window {
        assert!(
            early.deliveries.is_empty(),
            "claimed before its time ran out"
        );
        assert!(
            early.next_due_in.is_some_and(|d| d <= window),
            "next due within the window: {:?}",
            early.next_due_in
        );
    } else if !early.deliveries.is_empty() {
        return early;
    }
    claim_once_due(store, lease).await
}

fn alert(key: &str, status: AlertStatus, severity: Severity) -> Alert {
    Alert::for_tests(key, status, severity)
}

fn attempt(status: u16) -> Attempt {
    Attempt {
        at: Utc::now(),
        status: Some(status),
        duration_ms: 1,
        error: None,
        response: String::new(),
    }
}

/// Records `alerts` now; a test's Redis is there, so an error fails the test.
async fn record_now(store: &TestStore, alerts: &[Alert]) -> Vec<Recorded> {
    store.record(alerts, Utc::now()).await.unwrap()
}

fn outcomes(r: &[Recorded]) -> Vec<Outcome> {
    r.iter().map(|x| x.outcome).collect()
}

#[actix_rt::test]
async fn records_the_transition_table_and_counts_open_incidents() {
    let redis = TestRedis::get();
    let store = redis.store(&prefix(), &["hook"]);
    let now = Utc::now();
    let r = store
        .record(
            &[
                alert("a", AlertStatus::Firing, Severity::Warning),
                alert("a", AlertStatus::Firing, Severity::Warning),
                alert("b", AlertStatus::Firing, Severity::Warning),
                alert("a", AlertStatus::Firing, Severity::Critical),
                alert("a", AlertStatus::Resolved, Severity::Warning),
                alert("c", AlertStatus::Resolved, Severity::Warning),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        outcomes(&r),
        vec![
            Outcome::Created,
            Outcome::Repeat,
            Outcome::Created,
            Outcome::Updated,
            Outcome::Resolved,
            Outcome::Ignored
        ]
    );
    assert_eq!(r[0].incident_id, r[4].incident_id);
    let resolved = r[4].event.as_ref().unwrap();
    assert_eq!(resolved.incident.occurrences, 3);
    assert_eq!(resolved.incident.severity, Severity::Critical);
    assert_eq!(store.open_count().await.unwrap(), 1);

    // A second batch reads what the first stored.
    let r = store
        .record(&[alert("b", AlertStatus::Firing, Severity::Warning)], now)
        .await
        .unwrap();
    assert_eq!(outcomes(&r), vec![Outcome::Repeat]);
    let r = store
        .record(&[alert("a", AlertStatus::Firing, Severity::Warning)], now)
        .await
        .unwrap();
    assert_eq!(
        outcomes(&r),
        vec![Outcome::Created],
        "a resolved incident reopens anew"
    );
    assert_eq!(store.open_count().await.unwrap(), 2);
}

#[actix_rt::test]
async fn keeps_each_incidents_history_and_an_index_by_id() {
    let redis = TestRedis::get();
    let p = prefix();
    let store = redis.store(&p, &["hook"]);
    let r = record_now(
        &store,
        &[
            alert("h", AlertStatus::Firing, Severity::Warning),
            alert("h", AlertStatus::Firing, Severity::Critical),
            alert("h", AlertStatus::Resolved, Severity::Critical),
        ],
    )
    .await;
    let id = r[0].incident_id.clone().unwrap();
    let mut conn = store.conn().await.unwrap();
    let history: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{p}:hist:{id}"))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let kinds: Vec<String> = history
        .iter()
        .map(|h| serde_json::from_str::<serde_json::Value>(h).unwrap()["type"].to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "\"incident.created\"",
            "\"incident.updated\"",
            "\"incident.resolved\""
        ]
    );
    let key: String = redis::cmd("GET")
        .arg(format!("{p}:incid:{id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(key, format!("{p}:inc:s:h"));
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "a resolved incident expires");
}

#[actix_rt::test]
async fn two_instances_racing_on_one_alert_create_one_incident() {
    let redis = TestRedis::get();
    let p = prefix();
    let a = Arc::new(redis.store(&p, &["hook"]));
    let b = Arc::new(redis.store(&p, &["hook"]));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(actix_rt::spawn(async move {
            // A group that kept losing the race is refused (503) and its sender tries again,
            // as a client does; on a loaded machine 40 racers can outlast the retries.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let alerts = [alert("same", AlertStatus::Firing, Severity::Warning)];
                match store.record(&alerts, Utc::now()).await {
                    Ok(r) => break r,
                    Err(StoreError::Unavailable(e)) if std::time::Instant::now() < deadline => {
                        tracing::debug!(error = %e, "lost the race; again");
                    }
                    Err(e) => panic!("record: {e}"),
                }
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let created = all.iter().filter(|r| r.outcome == Outcome::Created).count();
    let repeats = all.iter().filter(|r| r.outcome == Outcome::Repeat).count();
    assert_eq!((created, repeats), (1, 39));
    let r = record_now(
        &a,
        &[alert("same", AlertStatus::Resolved, Severity::Warning)],
    )
    .await;
    assert_eq!(r[0].event.as_ref().unwrap().incident.occurrences, 40);
}

/// Each instance decides a batch first against the incidents as it last recorded them (no read
/// round trip); when another instance changed one since, or it expired, the script's conflict
/// answer carries it as it is and the batch is decided against that, never against the guess.
#[actix_rt::test]
async fn an_incident_changed_elsewhere_since_this_instance_knew_it_is_decided_as_it_is() {
    let (a, b) = two_instances(&TestRedis::get(), &["hook"]);
    let first = record_now(&a, &[alert("x", AlertStatus::Firing, Severity::Warning)]).await;
    assert_eq!(outcomes(&first), [Outcome::Created]);
    let id = first[0].incident_id.clone();
    // `b` raises the severity; `a` still knows the incident at Warning.
    let r = record_now(&b, &[alert("x", AlertStatus::Firing, Severity::Critical)]).await;
    assert_eq!(outcomes(&r), [Outcome::Updated]);
    let r = record_now(&a, &[alert("x", AlertStatus::Firing, Severity::Critical)]).await;
    assert_eq!(
        outcomes(&r),
        [Outcome::Repeat],
        "decided against b's change"
    );
    let event = r[0].event.clone();
    assert!(event.is_none(), "a repeat emits nothing");
    assert_eq!(r[0].incident_id, id);
    // The incident disappears (as a resolved one expires): `a` knows it, Redis does not.
    let key = a
        .store
        .incident_key(&alert("x", AlertStatus::Firing, Severity::Critical));
    let mut conn = a.store.conn().await.unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let r = record_now(&a, &[alert("x", AlertStatus::Firing, Severity::Critical)]).await;
    assert_eq!(outcomes(&r), [Outcome::Created]);
    assert_ne!(r[0].incident_id, id);
    let r = record_now(&b, &[alert("x", AlertStatus::Resolved, Severity::Critical)]).await;
    let resolved = r[0].event.as_ref().expect("resolved").incident.clone();
    assert_eq!(
        (resolved.occurrences, Some(resolved.id)),
        (1, r[0].incident_id.clone())
    );
}

#[actix_rt::test]
async fn deliveries_are_written_with_their_event_and_leased_one_lane_head_at_a_time() {
    let redis = TestRedis::get();
    let p = prefix();
    let a = redis.store(&p, &["hook", "other"]);
    let b = redis.store(&p, &["hook", "other"]);
    let now = Utc::now();
    let r = a
        .record(
            &[
                alert("x", AlertStatus::Firing, Severity::Warning),
                alert("y", AlertStatus::Firing, Severity::Warning),
                alert("x", AlertStatus::Resolved, Severity::Warning),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(a.pending().await, 6, "3 events x 2 endpoints");
    let lease = Duration::from_secs(30);
    let first = a.claim("hook", 10, lease).await.unwrap();
    let kinds: Vec<_> = first
        .deliveries
        .iter()
        .map(|c| (c.lane.to_string(), c.event.kind))
        .collect();
    assert_eq!(kinds.len(), 2, "one head per incident lane: {kinds:?}");
    assert!(kinds.contains(&(r[0].incident_id.clone().unwrap(), EVENT_CREATED)));
    assert!(
        b.claim("hook", 10, lease)
            .await
            .unwrap()
            .deliveries
            .is_empty(),
        "leased lanes are not handed to another instance"
    );

    // x's created fails: its lane waits, with the attempt kept.
    let x = first
        .deliveries
        .iter()
        .find(|c| Some(&*c.lane) == r[0].incident_id.as_deref())
        .unwrap();
    let failed = Attempt {
        at: Utc::now(),
        status: Some(500),
        duration_ms: 3,
        error: Some("HTTP 500".into()),
        response: "nope".into(),
    };
    let wait = Duration::from_millis(500);
    let since = std::time::Instant::now();
    settle(
        &a,
        "hook",
        x,
        std::slice::from_ref(&failed),
        Settlement::Retry(wait),
    )
    .await
    .unwrap();
    let again = nothing_until_due(&b, since, wait, lease).await;
    assert_eq!(again.deliveries.len(), 1);
    let x2 = &again.deliveries[0];
    assert_eq!(
        (x2.delivery_id.as_str(), x2.event.kind),
        (x.delivery_id.as_str(), EVENT_CREATED)
    );
    assert_eq!(
        x2.attempts,
        vec![failed.clone()],
        "attempts survive the hand-over"
    );
    // A settle under the old lease changes nothing.
    settle(&a, "hook", x, &[], Settlement::Dead).await.unwrap();
    assert!(b
        .claim("hook", 10, lease)
        .await
        .unwrap()
        .deliveries
        .is_empty());
    settle(&b, "hook", x2, &[failed], Settlement::Delivered)
        .await
        .unwrap();
    assert!(
        !b.is_delivered("hook", &x2.event.id).await.unwrap(),
        "settled under its lease, the entry left its lane: no dedup key is needed"
    );
    let next = b.claim("hook", 10, lease).await.unwrap();
    assert_eq!(next.deliveries.len(), 1);
    assert_eq!(
        next.deliveries[0].event.kind,
        crate::model::EventType::Resolved
    );
    assert_eq!(b.pending().await, 5);
}

#[actix_rt::test]
async fn a_crashed_holders_lease_runs_out_and_another_instance_takes_the_lane() {
    let (a, b) = two_instances(&TestRedis::get(), &["hook"]);
    record_now(&a, &[alert("z", AlertStatus::Firing, Severity::Info)]).await;
    let lease = Duration::from_millis(500);
    let since = std::time::Instant::now();
    let got = a.claim("hook", 10, lease).await.unwrap();
    assert_eq!(got.deliveries.len(), 1);
    // `a` "crashes": it never settles. `b` gets nothing until the lease runs out.
    let taken = nothing_until_due(&b, since, lease, Duration::from_secs(5)).await;
    assert_eq!(taken.deliveries.len(), 1);
    assert_eq!(
        taken.deliveries[0].delivery_id,
        got.deliveries[0].delivery_id
    );
}

#[actix_rt::test]
async fn gone_disables_the_endpoint_for_every_instance() {
    let redis = TestRedis::get();
    let p = prefix();
    let a = redis.store(&p, &["hook"]);
    record_now(&a, &[alert("g", AlertStatus::Firing, Severity::Info)]).await;
    let c = a.claim("hook", 1, Duration::from_secs(5)).await.unwrap();
    assert!(!c.disabled);
    assert_eq!(c.depth, 1, "the endpoint's unfinished deliveries");
    settle(&a, "hook", &c.deliveries[0], &[], Settlement::Gone)
        .await
        .unwrap();
    let b = redis.store(&p, &["hook"]);
    let after = b.claim("hook", 1, Duration::from_secs(5)).await.unwrap();
    assert!(after.disabled);
    assert_eq!(after.depth, 0);
    assert_eq!(b.pending().await, 0);
}

#[actix_rt::test]
async fn a_head_delivered_already_is_finished_by_the_claim_not_handed_out() {
    let redis = TestRedis::get();
    let p = prefix();
    let a = redis.store(&p, &["hook"]);
    let r = record_now(
        &a,
        &[
            alert("d", AlertStatus::Firing, Severity::Info),
            alert("d", AlertStatus::Resolved, Severity::Info),
        ],
    )
    .await;
    let created = r[0].event.as_ref().unwrap();
    a.mark_delivered("hook", &created.id).await.unwrap();
    let c = a.claim("hook", 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(c.duplicates, 1);
    assert_eq!(c.deliveries.len(), 1, "the lane moved on to the next head");
    assert_eq!(
        c.deliveries[0].event.kind,
        crate::model::EventType::Resolved
    );
    assert_eq!((c.depth, a.pending().await), (1, 1));
}

#[actix_rt::test]
async fn dedup_keys_are_per_endpoint() {
    let redis = TestRedis::get();
    let store = redis.store(&prefix(), &["hook"]);
    store.mark_delivered("e1", "evt_1").await.unwrap();
    assert!(store.is_delivered("e1", "evt_1").await.unwrap());
    assert!(!store.is_delivered("e2", "evt_1").await.unwrap());
}

#[actix_rt::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = TestRedis {
        url: format!("redis://127.0.0.1:{port}"),
        child: None,
    };
    let store = redis.store(&prefix(), &["hook"]);
    let started = std::time::Instant::now();
    assert!(store.ping().await.is_err());
    assert!(store
        .record(
            &[alert("a", AlertStatus::Firing, Severity::Info)],
            Utc::now()
        )
        .await
        .is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

const EVENT_CREATED: crate::model::EventType = crate::model::EventType::Created;

#[actix_rt::test]
async fn the_log_lists_every_state_a_release_keeps_the_attempts_and_a_replay_passes_dedup() {
    let (a, b) = two_instances(&TestRedis::get(), &["hook"]);
    record_now(
        &a,
        &[
            alert("x", AlertStatus::Firing, Severity::Warning),
            alert("y", AlertStatus::Firing, Severity::Warning),
        ],
    )
    .await;
    let lease = Duration::from_secs(30);
    let c = a.claim("hook", 10, lease).await.unwrap();
    assert_eq!(c.deliveries.len(), 2);
    let (x, y) = (&c.deliveries[0], &c.deliveries[1]);
    let failed = Attempt {
        at: Utc::now(),
        status: Some(503),
        duration_ms: 1,
        error: Some("HTTP 503".into()),
        response: String::new(),
    };
    settle(
        &a,
        "hook",
        x,
        std::slice::from_ref(&failed),
        Settlement::Retry(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    // Another instance sees x failed (waiting for its retry, held by no one) and y pending.
    let log = b.deliveries("hook").await.unwrap();
    let state = |id: &str| {
        log.deliveries
            .iter()
            .find(|d| d.id == id)
            .map(|d| (d.state, d.attempts.len()))
    };
    assert_eq!(state(&x.delivery_id), Some((DeliveryState::Failed, 1)));
    assert_eq!(state(&y.delivery_id), Some((DeliveryState::Pending, 0)));
    assert!(!log.disabled);

    // y released unattempted: due again at once for anyone, still pending.
    settle(&a, "hook", y, &[], Settlement::Release)
        .await
        .unwrap();
    let again = b.claim("hook", 10, lease).await.unwrap();
    assert_eq!(again.deliveries.len(), 1);
    let y2 = &again.deliveries[0];
    assert_eq!(y2.delivery_id, y.delivery_id);
    assert!(y2.attempts.is_empty());
    settle(&b, "hook", y2, &[], Settlement::Delivered)
        .await
        .unwrap();
    let log = a.deliveries("hook").await.unwrap();
    let delivered: Vec<&str> = log
        .deliveries
        .iter()
        .filter(|d| d.state == DeliveryState::Delivered)
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(delivered, [y.delivery_id.as_str()]);

    // Pending ones cannot be replayed; a delivered one is sent again despite its dedup key.
    assert_eq!(a.replay("hook", &x.delivery_id).await.unwrap(), None);
    assert_eq!(a.replay("hook", "dlv_nope").await.unwrap(), None);
    let new_id = a.replay("hook", &y.delivery_id).await.unwrap().unwrap();
    let c = b.claim("hook", 10, lease).await.unwrap();
    assert_eq!(c.duplicates, 0, "a replay is not skipped as a duplicate");
    assert_eq!(c.deliveries.len(), 1);
    assert_eq!(c.deliveries[0].delivery_id, new_id);
    assert_eq!(c.deliveries[0].event.id, y.event.id);
    let log = b.deliveries("hook").await.unwrap();
    let replay = log.deliveries.iter().find(|d| d.id == new_id).unwrap();
    assert_eq!(replay.replay_of.as_deref(), Some(y.delivery_id.as_str()));
    assert_eq!(replay.state, DeliveryState::Pending);
}

#[actix_rt::test]
async fn a_batch_settle_judges_each_delivery_on_its_own() {
    let (a, b) = two_instances(&TestRedis::get(), &["hook"]);
    let keys = ["ok1", "fails", "ok2", "stale", "more"];
    let mut alerts: Vec<Alert> = keys
        .iter()
        .map(|k| alert(k, AlertStatus::Firing, Severity::Warning))
        .collect();
    // A second event waits behind ok1's head in its lane.
    alerts.push(alert("ok1", AlertStatus::Resolved, Severity::Warning));
    a.record(&alerts, Utc::now()).await.unwrap();
    assert_eq!(a.pending().await, 6);
    let lease = Duration::from_secs(30);
    let c = a.claim("hook", 10, lease).await.unwrap();
    assert_eq!(c.deliveries.len(), 5, "one head per lane");
    let by_key = |k: &str| {
        c.deliveries
            .iter()
            .find(|d| d.event.incident.dedup_key == k)
            .unwrap()
            .clone()
    };
    let attempt = |status: u16| Attempt {
        at: Utc::now(),
        status: Some(status),
        duration_ms: 1,
        error: None,
        response: String::new(),
    };
    let mut stale = by_key("stale");
    stale.lease = "someone-else:1".into();
    let retry_wait = Duration::from_millis(500);
    let settles = vec![
        with_attempts(by_key("ok1"), vec![attempt(200)], Settlement::Delivered),
        with_attempts(
            by_key("fails"),
            vec![attempt(500)],
            Settlement::Retry(retry_wait),
        ),
        with_attempts(by_key("ok2"), vec![attempt(200)], Settlement::Delivered),
        with_attempts(stale.clone(), vec![attempt(200)], Settlement::Dead),
    ];
    let since = std::time::Instant::now();
    a.settle_many("hook", &settles).await.unwrap();
    // Two finished; `fails` waits for its retry, `stale` changed nothing, `more` is still out.
    assert_eq!(a.pending().await, 4);
    for k in ["ok1", "ok2"] {
        // Finished under their leases (entries out of their lanes): no dedup key needed.
        assert!(!a.is_delivered("hook", &by_key(k).event.id).await.unwrap());
    }
    assert!(!a
        .is_delivered("hook", &by_key("fails").event.id)
        .await
        .unwrap());
    let log = a.deliveries("hook").await.unwrap().deliveries;
    let state = |id: &str| {
        let d = log.iter().find(|d| d.id == id).unwrap();
        (d.state, d.attempts.len())
    };
    assert_eq!(
        state(&by_key("ok1").delivery_id),
        (DeliveryState::Delivered, 1)
    );
    assert_eq!(
        state(&by_key("ok2").delivery_id),
        (DeliveryState::Delivered, 1)
    );
    assert_eq!(
        state(&by_key("fails").delivery_id),
        (DeliveryState::Failed, 1)
    );
    assert_eq!(state(&stale.delivery_id), (DeliveryState::Pending, 0));
    // Only ok1's next event is due now (and, on a machine slower than the retry's wait,
    // `fails`); `stale` and `more` are still leased to `a`.
    let next = b.claim("hook", 10, lease).await.unwrap();
    let mut kinds: Vec<_> = next
        .deliveries
        .iter()
        .map(|d| (d.event.incident.dedup_key.clone(), d.event.kind))
        .collect();
    let retry_came_due = since.elapsed() >= retry_wait;
    let ok1 = ("ok1".to_string(), crate::model::EventType::Resolved);
    if retry_came_due {
        kinds.retain(|k| k.0 != "fails");
    }
    assert_eq!(kinds, vec![ok1]);
    // The failed one, and only it, comes back after its wait, with its attempt.
    let retry = match next
        .deliveries
        .iter()
        .find(|d| d.event.incident.dedup_key == "fails")
    {
        Some(d) => vec![d.clone()],
        None => claim_once_due(&b, lease).await.deliveries,
    };
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].delivery_id, by_key("fails").delivery_id);
    assert_eq!(retry[0].attempts.len(), 1);
    // `stale`'s real lease still holds: its own settle finishes it.
    settle(
        &a,
        "hook",
        &by_key("stale"),
        &[attempt(200)],
        Settlement::Delivered,
    )
    .await
    .unwrap();
    assert_eq!(a.pending().await, 3);
}

#[actix_rt::test]
async fn a_claimed_event_is_the_recorded_one() {
    let redis = TestRedis::get();
    let p = prefix();
    let a = redis.store(&p, &["hook"]);
    let now = Utc::now();
    let r = a
        .record(
            &[
                alert("same", AlertStatus::Firing, Severity::Warning),
                alert("same", AlertStatus::Firing, Severity::Critical),
            ],
            now,
        )
        .await
        .unwrap();
    let lease = Duration::from_secs(30);
    for rec in &r {
        let c = a.claim("hook", 10, lease).await.unwrap();
        assert_eq!(c.deliveries.len(), 1);
        let mut expected = (*rec.event.clone().unwrap()).clone();
        expected.incident.source = Some(expected.source.clone());
        assert_eq!(
            *c.deliveries[0].event, expected,
            "incident, changes and all"
        );
        settle(&a, "hook", &c.deliveries[0], &[], Settlement::Delivered)
            .await
            .unwrap();
    }
}

#[actix_rt::test]
async fn a_settle_says_when_a_lane_can_be_claimed_next() {
    // The durable actor claims after a settle only when this says "now" (else it looks when
    // it says): a next head in the lane, a retry's due time, nothing left.
    let redis = TestRedis::get();
    let p = prefix();
    let a = redis.store(&p, &["hook"]);
    record_now(
        &a,
        &[
            alert("n", AlertStatus::Firing, Severity::Warning),
            alert("n", AlertStatus::Resolved, Severity::Warning),
        ],
    )
    .await;
    let lease = Duration::from_secs(30);
    let settle = |c: &Claim, attempts: Vec<Attempt>, settlement| {
        with_attempts(c.deliveries[0].clone(), attempts, settlement)
    };
    let c = a.claim("hook", 10, lease).await.unwrap();
    let out = a
        .settle_many(
            "hook",
            &[settle(&c, vec![attempt(200)], Settlement::Delivered)],
        )
        .await
        .unwrap()
        .next_claimable_in;
    assert_eq!(out, Some(Duration::ZERO), "the next head of the lane");
    let c = a.claim("hook", 10, lease).await.unwrap();
    let out = a
        .settle_many(
            "hook",
            &[settle(
                &c,
                vec![attempt(500)],
                Settlement::Retry(Duration::from_secs(20)),
            )],
        )
        .await
        .unwrap()
        .next_claimable_in;
    let next = out.expect("the retry waits");
    assert!(
        next > Duration::from_secs(15) && next <= Duration::from_secs(20),
        "{next:?}"
    );
    assert_ne!(out, Some(Duration::ZERO));
    // Nothing due now: a claim hands out nothing (the actor would not have claimed).
    assert!(a
        .claim("hook", 10, lease)
        .await
        .unwrap()
        .deliveries
        .is_empty());
}

#[actix_rt::test]
async fn a_settle_after_the_last_head_leaves_nothing_to_claim() {
    let redis = TestRedis::get();
    let p = prefix();
    let a = redis.store(&p, &["hook"]);
    record_now(&a, &[alert("last", AlertStatus::Firing, Severity::Warning)]).await;
    let c = a.claim("hook", 10, Duration::from_secs(30)).await.unwrap();
    let out = a
        .settle_many(
            "hook",
            &[with_attempts(
                c.deliveries[0].clone(),
                vec![attempt(200)],
                Settlement::Delivered,
            )],
        )
        .await
        .unwrap()
        .next_claimable_in;
    assert_eq!(out, None);
}

/// A dispatcher's sink for leases at record, registered with `store`, with `room`.
fn record_leases(
    store: &TestStore,
    endpoint: &str,
    lease: Duration,
    room: usize,
) -> (Arc<RecordLeases>, LeasedHeads) {
    let (sink, rx) = RecordLeases::new(lease);
    store.rooms.register(endpoint, sink.clone());
    sink.set_room(room);
    (sink, rx)
}

#[actix_rt::test]
async fn new_lanes_are_leased_to_the_recording_instance_and_settled_without_a_claim() {
    let (a, b) = two_instances(&TestRedis::get(), &["hook"]);
    let (sink, mut rx) = record_leases(&a, "hook", Duration::from_secs(30), 32);
    let r = record_now(
        &a,
        &[
            alert("l1", AlertStatus::Firing, Severity::Warning),
            alert("l2", AlertStatus::Firing, Severity::Warning),
            // A second event of l1's new lane: waits behind its head.
            alert("l1", AlertStatus::Resolved, Severity::Warning),
        ],
    )
    .await;
    let heads = rx.try_recv().expect("the new lanes' heads, handed over");
    assert!(rx.try_recv().is_none(), "in one message");
    let mut got: Vec<(String, String)> = heads
        .iter()
        .map(|c| (c.lane.to_string(), c.event.id.clone()))
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = [&r[0], &r[1]]
        .iter()
        .map(|x| {
            let e = x.event.as_ref().unwrap();
            (e.incident.id.clone(), e.id.clone())
        })
        .collect();
    want.sort();
    assert_eq!(got, want, "each new lane's head: its first event");
    assert!(heads.iter().all(|c| c.attempts.is_empty()));
    assert!(!sink.take_due(), "no lane went to the due set");
    assert_eq!(
        sink.in_transit(),
        2,
        "counted until the dispatcher takes them"
    );
    sink.arrived(2, 30);
    assert_eq!(sink.in_transit(), 0);
    // Another instance finds nothing to claim: the lanes are leased to `a`.
    assert!(b
        .claim("hook", 10, Duration::from_secs(5))
        .await
        .unwrap()
        .deliveries
        .is_empty());
    let settles: Vec<(Claimed, Settlement)> = heads
        .iter()
        .map(|c| with_attempts(c.clone(), vec![attempt(200)], Settlement::Delivered))
        .collect();
    let out = a
        .settle_many("hook", &settles)
        .await
        .unwrap()
        .next_claimable_in;
    assert_eq!(out, Some(Duration::ZERO), "l1's next event is due now");
    assert_eq!(a.pending().await, 1);
    let log = a.deliveries("hook").await.unwrap().deliveries;
    for c in &heads {
        let d = log.iter().find(|d| d.id == c.delivery_id).unwrap();
        assert_eq!((d.state, d.attempts.len()), (DeliveryState::Delivered, 1));
    }
    let next = b.claim("hook", 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(next.deliveries.len(), 1);
    assert_eq!(
        next.deliveries[0].event.kind,
        crate::model::EventType::Resolved
    );
}

#[actix_rt::test]
async fn without_room_new_lanes_are_due_and_claimed_and_unused_room_is_given_back() {
    let redis = TestRedis::get();
    let p = prefix();
    let a = redis.store(&p, &["hook"]);
    let (sink, mut rx) = record_leases(&a, "hook", Duration::from_secs(30), 0);
    record_now(
        &a,
        &[
            alert("n1", AlertStatus::Firing, Severity::Warning),
            alert("n2", AlertStatus::Firing, Severity::Warning),
        ],
    )
    .await;
    assert!(rx.try_recv().is_none(), "no room: nothing leased");
    assert!(sink.take_due(), "the new lanes are due: a claim is needed");
    assert!(!sink.take_due(), "told once");
    let c = a.claim("hook", 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(c.deliveries.len(), 2);

    // Room for one: one lane leased, the others due, the unused reservation given back.
    sink.set_room(1);
    record_now(
        &a,
        &[
            alert("n3", AlertStatus::Firing, Severity::Warning),
            alert("n4", AlertStatus::Firing, Severity::Warning),
            alert("n5", AlertStatus::Firing, Severity::Warning),
        ],
    )
    .await;
    assert_eq!(rx.try_recv().unwrap().len(), 1);
    assert_eq!(sink.in_transit(), 1, "only the one handed over");
    assert!(sink.take_due());
    let c = a.claim("hook", 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(c.deliveries.len(), 2);
}

#[actix_rt::test]
async fn a_lane_leased_at_record_by_a_crashed_instance_is_taken_over_once_its_lease_runs_out() {
    let redis = TestRedis::get();
    let p = prefix();
    let b = redis.store(&p, &["hook"]);
    let lease = Duration::from_millis(500);
    let since = std::time::Instant::now();
    let recorded = {
        let a = redis.store(&p, &["hook"]);
        let (_sink, mut rx) = record_leases(&a, "hook", lease, 32);
        let r = record_now(&a, &[alert("t", AlertStatus::Firing, Severity::Info)]).await;
        assert_eq!(rx.try_recv().unwrap().len(), 1);
        r[0].event.clone().unwrap()
        // `a` "crashes": dropped without settling.
    };
    // Leased to `a` until its lease runs out.
    let c = nothing_until_due(&b, since, lease, Duration::from_secs(5)).await;
    assert_eq!(c.deliveries.len(), 1);
    assert_eq!(c.deliveries[0].event.id, recorded.id);
    settle(
        &b,
        "hook",
        &c.deliveries[0],
        &[attempt(200)],
        Settlement::Delivered,
    )
    .await
    .unwrap();
    assert!(b
        .claim("hook", 10, Duration::from_secs(5))
        .await
        .unwrap()
        .deliveries
        .is_empty());
    let log = b.deliveries("hook").await.unwrap().deliveries;
    assert_eq!(log.len(), 1, "one delivery, delivered once");
    assert_eq!(log[0].state, DeliveryState::Delivered);
    assert_eq!(b.pending().await, 0);
}

#[actix_rt::test]
async fn a_disabled_endpoint_leases_nothing_at_record() {
    let redis = TestRedis::get();
    let p = prefix();
    let a = redis.store(&p, &["hook"]);
    let mut conn = a.conn().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{p}:q:hook:disabled"))
        .arg("1")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (sink, mut rx) = record_leases(&a, "hook", Duration::from_secs(30), 32);
    record_now(&a, &[alert("x", AlertStatus::Firing, Severity::Info)]).await;
    assert!(rx.try_recv().is_none());
    assert_eq!(sink.in_transit(), 0, "the reservation is given back");
    assert!(sink.take_due());
    let c = a.claim("hook", 10, Duration::from_secs(5)).await.unwrap();
    assert!(c.disabled);
    assert_eq!(
        c.deliveries.len(),
        1,
        "claimed, and settled dead by the actor"
    );
}

#[actix_rt::test]
async fn a_delivered_settle_under_a_lost_lease_writes_the_dedup_key_the_next_claim_honours() {
    let (a, b) = two_instances(&TestRedis::get(), &["hook"]);
    record_now(&a, &[alert("s", AlertStatus::Firing, Severity::Info)]).await;
    let old = a
        .claim("hook", 10, Duration::from_millis(100))
        .await
        .unwrap()
        .deliveries
        .remove(0);
    // `b` takes it once `a`'s lease ran out.
    let new = claim_once_due(&b, Duration::from_secs(5))
        .await
        .deliveries
        .remove(0);
    // `a` sent it and reports late: its lease is gone, but the event was delivered.
    settle(&a, "hook", &old, &[attempt(200)], Settlement::Delivered)
        .await
        .unwrap();
    assert!(a.is_delivered("hook", &old.event.id).await.unwrap());
    // `b` had not sent it yet (held back): released, then found delivered, not sent again.
    settle(&b, "hook", &new, &[], Settlement::Release)
        .await
        .unwrap();
    let c = b.claim("hook", 10, Duration::from_secs(5)).await.unwrap();
    assert!(c.deliveries.is_empty());
    assert_eq!(c.duplicates, 1);
    assert_eq!(b.pending().await, 0);
}

/// Regression (hardening item 6): request ids (Standard Webhooks `webhook-id`, Sentry's
/// `Request-ID`) are remembered in Redis, for every instance.
#[actix_rt::test]
async fn request_ids_follow_the_contract() {
    let redis = TestRedis::get();
    let store = redis.store(&prefix(), &["hook"]);
    crate::store::request_ids::tests::claims_follow_the_contract(&store.store, "src").await;
    // A second instance on the same Redis sees the first one's ids.
    let p = prefix();
    let (a, b) = (redis.store(&p, &["hook"]), redis.store(&p, &["hook"]));
    use crate::store::request_ids::{IdState, RequestIds};
    assert_eq!(
        a.store.begin_recording("src", "x").await.unwrap(),
        IdState::New
    );
    assert_eq!(
        b.begin_recording("src", "x").await.unwrap(),
        IdState::Recording
    );
    a.store
        .recorded("src", "x", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        b.begin_recording("src", "x").await.unwrap(),
        IdState::Recorded
    );
}

#[actix_rt::test]
async fn a_replay_enables_an_endpoint_disabled_by_a_410_for_every_instance() {
    let (a, b) = two_instances(&TestRedis::get(), &["hook"]);
    record_now(&a, &[alert("g", AlertStatus::Firing, Severity::Info)]).await;
    let lease = Duration::from_secs(30);
    let c = a.claim("hook", 10, lease).await.unwrap();
    assert_eq!(c.deliveries.len(), 1);
    let gone = c.deliveries[0].clone();
    settle(&a, "hook", &gone, &[attempt(410)], Settlement::Gone)
        .await
        .unwrap();
    record_now(&a, &[alert("h", AlertStatus::Firing, Severity::Info)]).await;
    let c = b.claim("hook", 10, lease).await.unwrap();
    assert!(c.disabled, "disabled for the other instance too");
    for d in &c.deliveries {
        settle(&b, "hook", d, &[], Settlement::Dead).await.unwrap();
    }
    // The replay, from either instance, enables it: the next claim is not disabled and has it.
    let new_id = b
        .replay("hook", &gone.delivery_id)
        .await
        .unwrap()
        .expect("a dead delivery can be replayed");
    let c = a.claim("hook", 10, lease).await.unwrap();
    assert!(!c.disabled, "enabled again");
    assert_eq!(c.deliveries.len(), 1);
    assert_eq!(c.deliveries[0].delivery_id, new_id);
    assert_eq!(c.deliveries[0].event.id, gone.event.id);
}
