//! The delivery loop (claim, send, settle) against both implementations of the queue
//! contract, the memory store and the redis store (on `SWITCHYARD_TEST_REDIS_URL`, else a
//! `redis-server` started for the test), with a scripted transport: order per incident, the
//! retry schedule and `Retry-After`, 410, dead, replay, pacing, dedup and lease expiry.
//! Nothing sleeps a fixed time: each test waits for what it expects, with a deadline.

use bytes::Bytes;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::config::duration::parse_rate;
use crate::delivery::kinds::{OutboundRequest, Response};
use crate::metrics::Metrics;
use crate::model::{Alert, AlertStatus, Severity};
use crate::store::leases::{LeaseOffer, LeaseRooms, RecordLeases};
use crate::store::memory::MemoryStore;
use crate::store::redis::tests::{prefix, TestRedis};
use crate::store::refs::MemoryRefs;
use crate::store::{IncidentStore, Routing};

const ENDPOINT: &str = "test";
const WAIT: Duration = Duration::from_secs(10);

/// One request the script received.
#[derive(Debug, Clone)]
struct Sent {
    at: std::time::Instant,
    event_id: String,
    kind: String,
    incident_id: String,
}

/// Answers each request with the next scripted status (and `Retry-After`), then with
/// `then`; records what it was sent.
struct Script {
    sent: RefCell<Vec<Sent>>,
    answers: RefCell<VecDeque<(u16, Option<Duration>)>>,
    then: u16,
}

impl Script {
    fn new(answers: &[(u16, Option<Duration>)], then: u16) -> Rc<Script> {
        Rc::new(Script {
            sent: RefCell::new(Vec::new()),
            answers: RefCell::new(answers.iter().copied().collect()),
            then,
        })
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.borrow().clone()
    }
}

#[async_trait(?Send)]
impl Transport for Script {
    async fn send(&self, req: OutboundRequest) -> Result<Response, String> {
        let body: serde_json::Value =
            serde_json::from_slice(req.body.as_deref().unwrap_or_default())
                .map_err(|e| e.to_string())?;
        let field = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        self.sent.borrow_mut().push(Sent {
            at: std::time::Instant::now(),
            event_id: field(&body["id"]),
            kind: field(&body["type"]),
            incident_id: field(&body["data"]["incident"]["id"]),
        });
        let (status, retry_after) = self
            .answers
            .borrow_mut()
            .pop_front()
            .unwrap_or((self.then, None));
        Ok(Response {
            status,
            retry_after,
            body: Bytes::new(),
        })
    }
}

/// Every event goes to the test endpoint.
struct ToTest;

impl Routing for ToTest {
    fn endpoints_of(&self, _event: &Event) -> Vec<Arc<str>> {
        vec![Arc::from(ENDPOINT)]
    }
}

/// One implementation of the contract: its incident side (to record) and its queue.
struct Backend {
    name: &'static str,
    incidents: Arc<dyn IncidentStore>,
    queue: Arc<dyn DeliveryQueueStore>,
    _redis: Option<TestRedis>,
    _dir: Option<tempfile::TempDir>,
}

fn backends() -> Vec<Backend> {
    let memory = Arc::new(MemoryStore::new());
    let memory = Backend {
        name: "memory",
        incidents: memory.clone(),
        queue: memory,
        _redis: None,
        _dir: None,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = crate::store::file::FileStore::open(dir.path()).expect("file store");
    let file = Backend {
        name: "file",
        incidents: file.clone(),
        queue: file,
        _redis: None,
        _dir: Some(dir),
    };
    // scripts/test.sh's local-only switch; CI refuses it.
    if std::env::var_os("SWITCHYARD_SKIP_REDIS").is_some() {
        eprintln!("NOT RUN: the redis backend of the dispatcher tests (SWITCHYARD_SKIP_REDIS)");
        return vec![memory, file];
    }
    let redis = TestRedis::get();
    let store = Arc::new(redis.redis_store(&prefix()));
    vec![
        memory,
        file,
        Backend {
            name: "redis",
            incidents: store.clone(),
            queue: store,
            _redis: Some(redis),
            _dir: None,
        },
    ]
}

fn alert(key: &str, status: AlertStatus) -> Alert {
    Alert::for_tests(key, status, Severity::Warning)
}

/// Records `alerts` as the incident actor does (routed to the test endpoint); their events.
async fn record(b: &Backend, alerts: &[Alert]) -> Vec<Arc<Event>> {
    let r = b
        .incidents
        .record(alerts, Utc::now(), &ToTest, &mut LeaseOffer::none())
        .await
        .expect("record");
    r.recorded.into_iter().filter_map(|r| r.event).collect()
}

fn spec(schedule: &[u64]) -> EndpointSpec {
    let mut spec = EndpointSpec::for_tests("http://hook.invalid/");
    spec.name = ENDPOINT.into();
    spec.schedule = schedule
        .iter()
        .map(|ms| Duration::from_millis(*ms))
        .collect();
    spec
}

fn start(b: &Backend, spec: EndpointSpec, script: &Rc<Script>) -> Addr<DeliveryActor> {
    DeliveryActor::new(
        Arc::new(spec),
        b.queue.clone(),
        None,
        Arc::new(MemoryRefs::default()),
        Metrics::new(),
        Arc::new(Backlog::new(usize::MAX)),
    )
    .with_transport(script.clone())
    .start()
}

/// Waits until `done` holds, checking every few milliseconds; panics after [`WAIT`].
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the endpoint's delivery log says what `done` wants; returns it.
async fn until_listed(
    addr: &Addr<DeliveryActor>,
    what: &str,
    done: impl Fn(&EndpointDeliveries) -> bool,
) -> EndpointDeliveries {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let list = addr
            .send(ListDeliveries)
            .await
            .expect("actor")
            .expect("list");
        if done(&list) {
            return list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {list:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

fn count(list: &EndpointDeliveries, state: DeliveryState) -> usize {
    list.deliveries.iter().filter(|d| d.state == state).count()
}

#[actix_rt::test]
async fn an_incidents_events_go_out_in_order_even_through_retries() {
    for b in backends() {
        // The first request fails: the incident's second event must wait for the first.
        let script = Script::new(&[(500, None)], 200);
        let addr = start(&b, spec(&[30]), &script);
        let created = record(&b, &[alert("a", AlertStatus::Firing)]).await;
        let resolved = record(&b, &[alert("a", AlertStatus::Resolved)]).await;
        let other = record(&b, &[alert("b", AlertStatus::Firing)]).await;
        addr.do_send(ClaimDue);
        until("three deliveries", || script.sent().len() >= 4).await;
        let sent = script.sent();
        let of_a: Vec<&str> = sent
            .iter()
            .filter(|s| s.incident_id == created[0].incident.id)
            .map(|s| s.kind.as_str())
            .collect();
        assert_eq!(
            of_a,
            ["incident.created", "incident.created", "incident.resolved"],
            "{}",
            b.name
        );
        assert_eq!(sent.iter().filter(|s| s.event_id == other[0].id).count(), 1);
        assert_eq!(
            sent.iter().filter(|s| s.event_id == resolved[0].id).count(),
            1,
            "{}",
            b.name
        );
        until_listed(&addr, "all delivered", |l| {
            count(l, DeliveryState::Delivered) == 3
        })
        .await;
    }
}

#[actix_rt::test]
async fn retries_follow_the_schedule_and_a_longer_retry_after() {
    for b in backends() {
        let script = Script::new(&[(500, None), (503, Some(Duration::from_millis(400)))], 200);
        let addr = start(&b, spec(&[20, 20]), &script);
        record(&b, &[alert("a", AlertStatus::Firing)]).await;
        addr.do_send(ClaimDue);
        until("three attempts", || script.sent().len() >= 3).await;
        let sent = script.sent();
        let gaps: Vec<Duration> = sent.windows(2).map(|w| w[1].at - w[0].at).collect();
        assert!(gaps[0] >= Duration::from_millis(20), "{}: {gaps:?}", b.name);
        assert!(
            gaps[1] >= Duration::from_millis(400),
            "{}: Retry-After is longer than the schedule's wait: {gaps:?}",
            b.name
        );
        let list = until_listed(&addr, "delivered", |l| {
            count(l, DeliveryState::Delivered) == 1
        })
        .await;
        assert_eq!(list.deliveries[0].attempts.len(), 3, "{}", b.name);
    }
}

#[actix_rt::test]
async fn out_of_attempts_is_dead_and_a_replay_sends_it_again() {
    for b in backends() {
        let script = Script::new(&[(500, None), (500, None)], 200);
        let addr = start(&b, spec(&[10]), &script);
        record(&b, &[alert("a", AlertStatus::Firing)]).await;
        addr.do_send(ClaimDue);
        let list = until_listed(&addr, "dead", |l| count(l, DeliveryState::Dead) == 1).await;
        let dead = &list.deliveries[0];
        assert_eq!(
            dead.attempts.len(),
            2,
            "{}: 1 + the schedule's length",
            b.name
        );
        let id = addr
            .send(Replay(dead.id.clone()))
            .await
            .expect("actor")
            .expect("replayed");
        let list = until_listed(&addr, "the replay delivered", |l| {
            l.deliveries
                .iter()
                .any(|d| d.id == id && d.state == DeliveryState::Delivered)
        })
        .await;
        let replay = list.deliveries.iter().find(|d| d.id == id).expect("listed");
        assert_eq!(
            replay.replay_of.as_deref(),
            Some(dead.id.as_str()),
            "{}",
            b.name
        );
        assert_eq!(script.sent().len(), 3, "{}", b.name);
        assert!(matches!(
            addr.send(Replay("dlv_nope".into())).await.expect("actor"),
            Err(ReplayError::NotFound)
        ));
    }
}

#[actix_rt::test]
async fn gone_disables_the_endpoint_until_a_replay() {
    for b in backends() {
        let script = Script::new(&[(410, None)], 200);
        let addr = start(&b, spec(&[10]), &script);
        record(&b, &[alert("a", AlertStatus::Firing)]).await;
        addr.do_send(ClaimDue);
        let list = until_listed(&addr, "disabled", |l| l.disabled).await;
        assert_eq!(count(&list, DeliveryState::Dead), 1, "{}", b.name);
        // New work dies without a request while the endpoint is disabled.
        record(&b, &[alert("b", AlertStatus::Firing)]).await;
        addr.do_send(ClaimDue);
        let list = until_listed(&addr, "the new one dead", |l| {
            count(l, DeliveryState::Dead) == 2
        })
        .await;
        assert_eq!(script.sent().len(), 1, "{}", b.name);
        let first = list
            .deliveries
            .iter()
            .find(|d| d.attempts.len() == 1)
            .expect("the attempted one");
        addr.send(Replay(first.id.clone()))
            .await
            .expect("actor")
            .expect("replayed");
        until_listed(&addr, "enabled and delivered", |l| {
            !l.disabled && count(l, DeliveryState::Delivered) == 1
        })
        .await;
    }
}

#[actix_rt::test]
async fn the_rate_limit_spaces_requests() {
    for b in backends() {
        let script = Script::new(&[], 200);
        let mut s = spec(&[10]);
        s.rate_limit = Some(parse_rate("10/s").expect("rate"));
        let addr = start(&b, s, &script);
        let keys: Vec<String> = (0..15).map(|i| format!("k{i}")).collect();
        let alerts: Vec<Alert> = keys.iter().map(|k| alert(k, AlertStatus::Firing)).collect();
        record(&b, &alerts).await;
        addr.do_send(ClaimDue);
        until("every request", || script.sent().len() >= 15).await;
        let sent = script.sent();
        let span = sent[14].at - sent[0].at;
        assert!(
            span >= Duration::from_millis(400),
            "{}: 15 requests at 10/s (a full bucket first) take a while: {span:?}",
            b.name
        );
        until_listed(&addr, "all delivered", |l| {
            count(l, DeliveryState::Delivered) == 15
        })
        .await;
        assert_eq!(script.sent().len(), 15, "{}: nothing sent twice", b.name);
    }
}

#[actix_rt::test]
async fn a_delivered_event_is_not_sent_again() {
    for b in backends() {
        let script = Script::new(&[], 200);
        let events = record(&b, &[alert("a", AlertStatus::Firing)]).await;
        // Another holder sent it and settled after its lease ran out (the dedup key is
        // written then): claimed, attempted, its result stale.
        let c = b
            .queue
            .claim(ENDPOINT, 10, Duration::from_millis(1))
            .await
            .expect("claim");
        assert_eq!(c.deliveries.len(), 1);
        let mut held = c.deliveries[0].clone();
        // Claimed again once that lease ran out.
        let deadline = std::time::Instant::now() + WAIT;
        let again = loop {
            let again = b
                .queue
                .claim(ENDPOINT, 10, Duration::from_secs(30))
                .await
                .expect("claim");
            if !again.deliveries.is_empty() {
                break again;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: never taken over",
                b.name
            );
            actix_rt::time::sleep(Duration::from_millis(2)).await;
        };
        held.attempts.push(Attempt {
            at: Utc::now(),
            status: Some(200),
            duration_ms: 1,
            error: None,
            response: String::new(),
        });
        // The first holder's late result: stale, but it records that the event went out.
        b.queue
            .settle_many(ENDPOINT, &[(held, Settlement::Delivered)])
            .await
            .expect("settle");
        // The second holder gives its lease up without sending (as pacing would).
        b.queue
            .settle_many(
                ENDPOINT,
                &[(again.deliveries[0].clone(), Settlement::Release)],
            )
            .await
            .expect("release");
        let addr = start(&b, spec(&[10]), &script);
        addr.do_send(ClaimDue);
        let list = until_listed(&addr, "delivered without a request", |l| {
            count(l, DeliveryState::Delivered) == 1
        })
        .await;
        assert_eq!(list.deliveries[0].event_id, events[0].id);
        assert!(script.sent().is_empty(), "{}: not sent again", b.name);
    }
}

#[actix_rt::test]
async fn a_lane_whose_lease_ran_out_is_taken_over() {
    for b in backends() {
        let script = Script::new(&[], 200);
        let events = record(&b, &[alert("a", AlertStatus::Firing)]).await;
        // A holder that claimed and then stopped (crashed) before settling.
        let c = b
            .queue
            .claim(ENDPOINT, 10, Duration::from_millis(200))
            .await
            .expect("claim");
        assert_eq!(c.deliveries.len(), 1);
        let claimed_at = std::time::Instant::now();
        let addr = start(&b, spec(&[10]), &script);
        addr.do_send(ClaimDue);
        until("the takeover", || !script.sent().is_empty()).await;
        assert!(
            claimed_at.elapsed() >= Duration::from_millis(200),
            "{}: not before the lease ran out",
            b.name
        );
        assert_eq!(script.sent()[0].event_id, events[0].id);
        until_listed(&addr, "delivered", |l| {
            count(l, DeliveryState::Delivered) == 1
        })
        .await;
        assert_eq!(script.sent().len(), 1, "{}", b.name);
    }
}

/// Regression: under a steady stream of new incidents every new lane was leased at record
/// while older lanes (recorded when the actor had no room) waited in the due set, unclaimed
/// until the stream stopped: seconds of delay for some events at 20,000 alerts/s. Now a new
/// lane queues behind due ones.
#[actix_rt::test]
async fn new_lanes_queue_behind_due_ones_instead_of_being_leased_at_record() {
    for b in backends() {
        let rooms = Arc::new(LeaseRooms::default());
        let (sink, mut rx) = RecordLeases::new(Duration::from_secs(30));
        rooms.register(ENDPOINT, sink.clone());
        let record_offered = |alert: Alert| {
            let (b, rooms) = (&b, rooms.clone());
            async move {
                let mut offer = rooms.offer();
                let r = b
                    .incidents
                    .record(&[alert], Utc::now(), &ToTest, &mut offer)
                    .await
                    .expect("record");
                offer.finish(r.leased, &r.due);
                r.recorded[0].event.clone().expect("an event")
            }
        };
        // No room: the first lane falls due.
        let older = record_offered(alert("older", AlertStatus::Firing)).await;
        assert!(sink.take_due(), "{}: a lane went to the due set", b.name);
        // Room now, but a lane is due: the new one queues behind it.
        sink.set_room(10);
        let newer = record_offered(alert("newer", AlertStatus::Firing)).await;
        assert!(
            rx.try_recv().is_none(),
            "{}: nothing leased at record",
            b.name
        );
        assert_eq!(sink.in_transit(), 0, "{}: the room is given back", b.name);
        let claim = b
            .queue
            .claim(ENDPOINT, 10, Duration::from_secs(30))
            .await
            .expect("claim");
        let mut got: Vec<_> = claim
            .deliveries
            .iter()
            .map(|c| c.event.id.clone())
            .collect();
        got.sort();
        let mut want = vec![older.id.clone(), newer.id.clone()];
        want.sort();
        assert_eq!(got, want, "{}: both claimed", b.name);
        // Nothing due any more: a new lane is leased at record again.
        let third = record_offered(alert("third", AlertStatus::Firing)).await;
        let heads = rx.try_recv().expect("leased at record");
        assert_eq!(heads.len(), 1, "{}", b.name);
        assert_eq!(heads[0].event.id, third.id, "{}", b.name);
    }
}

/// A queue whose claims take a while (as Redis's do behind record scripts under load),
/// recording the limit each claim asked for.
struct SlowClaims {
    inner: Arc<dyn DeliveryQueueStore>,
    limits: std::sync::Mutex<Vec<usize>>,
}

#[async_trait]
impl DeliveryQueueStore for SlowClaims {
    async fn claim(
        &self,
        endpoint: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<crate::store::Claim, crate::store::StoreError> {
        self.limits.lock().expect("limits").push(limit);
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        self.inner.claim(endpoint, limit, lease).await
    }
    async fn settle_many(
        &self,
        endpoint: &str,
        settles: &[(crate::store::Claimed, Settlement)],
    ) -> Result<crate::store::QueueStatus, crate::store::StoreError> {
        self.inner.settle_many(endpoint, settles).await
    }
    async fn deliveries(
        &self,
        endpoint: &str,
    ) -> Result<crate::store::StoredDeliveries, crate::store::StoreError> {
        self.inner.deliveries(endpoint).await
    }
    async fn replay_many(
        &self,
        endpoint: &str,
        delivery_ids: &[String],
    ) -> Result<Vec<Option<String>>, crate::store::StoreError> {
        self.inner.replay_many(endpoint, delivery_ids).await
    }
    async fn enqueue(
        &self,
        event: Arc<Event>,
        endpoints: &[Arc<str>],
    ) -> Result<usize, crate::store::StoreError> {
        self.inner.enqueue(event, endpoints).await
    }
    fn concurrency(&self) -> usize {
        self.inner.concurrency()
    }
    fn is_durable(&self) -> bool {
        self.inner.is_durable()
    }
}

/// Regression: a claim took only what could start at once, so with claims that wait (the
/// redis store under 100-alert bodies) the endpoint got ~2,000 deliveries/s. A claim now takes
/// up to DEFAULT_CLAIM_AHEAD more, parked for the next free slots; never while a rate limit
/// paces the endpoint.
#[actix_rt::test]
async fn claims_take_heads_ahead_of_free_slots_unless_paced() {
    // Fresh stores for each: an actor of the first round would claim the second's work.
    for paced in [false, true] {
        for b in backends() {
            let slow = Arc::new(SlowClaims {
                inner: b.queue.clone(),
                limits: std::sync::Mutex::new(Vec::new()),
            });
            let concurrency = slow.concurrency().min(super::DEFAULT_ENDPOINT_CONCURRENCY);
            let n = if paced { 20 } else { 2 * concurrency + 10 };
            let script = Script::new(&[], 200);
            let mut s = spec(&[10]);
            if paced {
                s.rate_limit = Some(parse_rate("1000/s").expect("rate"));
            }
            let tag = if paced { "paced" } else { "free" };
            let alerts: Vec<Alert> = (0..n)
                .map(|i| alert(&format!("{tag}{i}"), AlertStatus::Firing))
                .collect();
            record(&b, &alerts).await;
            let addr = DeliveryActor::new(
                Arc::new(s),
                slow.clone(),
                None,
                Arc::new(MemoryRefs::default()),
                Metrics::new(),
                Arc::new(Backlog::new(usize::MAX)),
            )
            .with_transport(script.clone())
            .start();
            addr.do_send(ClaimDue);
            let what = format!("{} {tag}: every request", b.name);
            until(&what, || script.sent().len() >= n).await;
            let mut ids: Vec<String> = script.sent().into_iter().map(|s| s.event_id).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), n, "{} {tag}: every event sent", b.name);
            assert_eq!(script.sent().len(), n, "{} {tag}: none sent twice", b.name);
            let most = slow.limits.lock().expect("limits").iter().copied().max();
            let most = most.unwrap_or_default();
            if paced {
                assert!(
                    most <= concurrency,
                    "{}: a paced endpoint claims no more than it can start ({most} > {concurrency})",
                    b.name
                );
            } else {
                assert!(
                    most > concurrency,
                    "{}: a claim takes heads ahead of the free slots ({most} <= {concurrency})",
                    b.name
                );
            }
        }
    }
}
