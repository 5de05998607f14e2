//! Unit tests of the incident actor: record groups, the schedule, rejected and large requests.

use super::*;
use crate::incidents::record::split;
use crate::store::leases::LeaseOffer;
use crate::store::{Recording, Routing};

fn waiting(
    keys: &[&str],
) -> (
    Waiting,
    oneshot::Receiver<Result<Vec<Recorded>, RecordError>>,
) {
    let (tx, rx) = oneshot::channel();
    let w = Waiting {
        alerts: keys.iter().map(|k| alert(k)).collect(),
        reply: Box::new(move |r| {
            let _ = tx.send(r);
        }),
    };
    (w, rx)
}

fn keys(group: &[Waiting]) -> Vec<Vec<String>> {
    group
        .iter()
        .map(|w| w.alerts.iter().map(|a| a.dedup_key.clone()).collect())
        .collect()
}

/// A recorder for `store` with an empty route table.
fn recorder(store: Arc<dyn IncidentStore>) -> Arc<Recorder> {
    let table = crate::router::table::RouteTable::build(&[], &[], Vec::new()).expect("routes");
    Arc::new(Recorder {
        store,
        routes: SharedRoutes::new(Arc::new(table)),
        leases: None,
        metrics: Metrics::new(),
        grouper: None,
        holding: None,
        expiry: None,
    })
}

/// The memory store, failing every call after its first `ok` ones (a store that goes
/// away part way through a large request); counts the alerts of each call.
struct FailingAfter {
    store: crate::store::memory::MemoryStore,
    ok: std::sync::atomic::AtomicUsize,
    calls: std::sync::Mutex<Vec<usize>>,
}

#[async_trait::async_trait]
impl IncidentStore for FailingAfter {
    async fn record(
        &self,
        alerts: &[Alert],
        now: DateTime<Utc>,
        routes: &dyn Routing,
        offer: &mut LeaseOffer,
    ) -> Result<Recording, StoreError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(alerts.len());
            calls.len()
        };
        if n > self.ok.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Unavailable("gone".into()));
        }
        self.store.record(alerts, now, routes, offer).await
    }
    async fn persist(&self) -> Result<(), StoreError> {
        self.store.persist().await
    }
    async fn open_count(&self) -> Result<usize, StoreError> {
        self.store.open_count().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Regression (hardening item 3): a body of 70,000 alerts was one Redis script of 2.1 s
/// (503 to the client although everything was recorded, Redis blocked meanwhile). A large
/// request is recorded in bounded calls; a failure part way routes what was recorded.
#[actix_rt::test]
async fn a_large_request_is_recorded_in_bounded_calls() {
    let keys: Vec<String> = (0..2_500).map(|i| format!("k{i}")).collect();
    let alerts: Vec<Alert> = keys.iter().map(|k| alert(k)).collect();

    let whole = Arc::new(FailingAfter {
        store: crate::store::memory::MemoryStore::new(),
        ok: usize::MAX.into(),
        calls: Default::default(),
    });
    let (answers, events, _) =
        record_requests(recorder(whole.clone()), alerts.clone(), vec![alerts.len()]).await;
    assert_eq!(answers[0].as_ref().unwrap().len(), 2_500);
    assert_eq!(events.len(), 2_500);
    let calls = whole.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![1_024, 1_024, 452],
        "calls of at most DEFAULT_RECORD_GROUP_ALERTS"
    );

    let broken = Arc::new(FailingAfter {
        store: crate::store::memory::MemoryStore::new(),
        ok: 2.into(),
        calls: Default::default(),
    });
    let (answers, events, _) =
        record_requests(recorder(broken.clone()), alerts.clone(), vec![alerts.len()]).await;
    match &answers[0] {
        Err(RecordError::Partial {
            recorded, total, ..
        }) => assert_eq!((*recorded, *total), (2_048, 2_500)),
        other => panic!("expected a partial recording, got {other:?}"),
    }
    assert_eq!(events.len(), 2_048, "what was recorded is routed");
    // Sent again, the whole request notifies only what was not recorded before.
    broken
        .ok
        .store(usize::MAX, std::sync::atomic::Ordering::Relaxed);
    let (answers, events, _) = record_requests(recorder(broken.clone()), alerts, vec![2_500]).await;
    assert_eq!(answers[0].as_ref().unwrap().len(), 2_500);
    assert_eq!(
        events.len(),
        452,
        "the recorded alerts are repeats: nothing twice"
    );
}

/// The memory store, refusing any call that holds an alert with the dedup key `poison`
/// (as a store refuses input it cannot keep).
struct PoisonRefusing(crate::store::memory::MemoryStore);

#[async_trait::async_trait]
impl IncidentStore for PoisonRefusing {
    async fn record(
        &self,
        alerts: &[Alert],
        now: DateTime<Utc>,
        routes: &dyn Routing,
        offer: &mut LeaseOffer,
    ) -> Result<Recording, StoreError> {
        if alerts.iter().any(|a| a.dedup_key == "poison") {
            return Err(StoreError::Rejected("poison cannot be kept".into()));
        }
        self.0.record(alerts, now, routes, offer).await
    }
    async fn persist(&self) -> Result<(), StoreError> {
        self.0.persist().await
    }
    async fn open_count(&self) -> Result<usize, StoreError> {
        self.0.open_count().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Regression (hardening item 1): one request's bad alert made every request of its group
/// fail, and the alerts recorded before it were never routed.
#[actix_rt::test]
async fn a_rejected_request_is_refused_alone_and_the_rest_of_its_group_is_recorded() {
    let store: Arc<dyn IncidentStore> =
        Arc::new(PoisonRefusing(crate::store::memory::MemoryStore::new()));
    let alerts = vec![alert("a"), alert("b"), alert("poison"), alert("c")];
    let (answers, events, _) =
        record_requests(recorder(store.clone()), alerts, vec![2, 1, 1]).await;
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0].as_ref().unwrap().len(), 2);
    assert!(matches!(
        answers[1],
        Err(RecordError::Store(StoreError::Rejected(_)))
    ));
    assert_eq!(answers[2].as_ref().unwrap().len(), 1);
    let keys: Vec<_> = events
        .iter()
        .map(|(e, _)| e.incident.dedup_key.as_str())
        .collect();
    assert_eq!(
        keys,
        vec!["a", "b", "c"],
        "every recorded alert's event, in order"
    );
    assert_eq!(store.open_count().await.unwrap(), 3);
}

/// A store that is down fails every request of the group with the same error.
#[actix_rt::test]
async fn an_unavailable_store_fails_the_whole_group() {
    struct Down;
    #[async_trait::async_trait]
    impl IncidentStore for Down {
        async fn record(
            &self,
            _: &[Alert],
            _: DateTime<Utc>,
            _: &dyn Routing,
            _: &mut LeaseOffer,
        ) -> Result<Recording, StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
        async fn persist(&self) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
        async fn open_count(&self) -> Result<usize, StoreError> {
            Ok(0)
        }
        async fn ping(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }
    let (answers, events, _) = record_requests(
        recorder(Arc::new(Down)),
        vec![alert("a"), alert("b")],
        vec![1, 1],
    )
    .await;
    assert!(events.is_empty());
    assert!(answers
        .iter()
        .all(|a| matches!(a, Err(RecordError::Store(StoreError::Unavailable(_))))));
}

#[test]
fn groups_take_whole_requests_in_order_and_results_split_back() {
    let mut schedule = RecordSchedule::new(1, 5);
    for n in [2, 3, 1] {
        schedule.waiting.push_back(waiting(&vec!["k"; n]).0);
    }
    let (first, group) = schedule.next_group().expect("a group");
    assert_eq!(
        group.iter().map(|w| w.alerts.len()).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(schedule.waiting.len(), 1);
    // One group at a time.
    assert!(schedule.next_group().is_none());
    schedule.finished(first);
    // A request larger than the limit still goes, alone.
    schedule.max_alerts = 0;
    assert_eq!(schedule.next_group().expect("the rest").1.len(), 1);
    assert_eq!(
        split(vec![1, 2, 3, 4, 5], &[2, 3]),
        vec![vec![1, 2], vec![3, 4, 5]]
    );
}

#[test]
fn groups_run_at_once_only_when_they_share_no_incident() {
    let mut schedule = RecordSchedule::new(3, 2);
    for k in [&["a", "b"][..], &["c", "d"], &["e", "b"], &["f", "g"]] {
        schedule.waiting.push_back(waiting(k).0);
    }
    let (first, g1) = schedule.next_group().expect("first group");
    assert_eq!(keys(&g1), vec![vec!["a", "b"]]);
    let (_, g2) = schedule.next_group().expect("disjoint: starts at once");
    assert_eq!(keys(&g2), vec![vec!["c", "d"]]);
    // `b` is being recorded: its next alert waits, and so does everything behind it (the
    // requests keep their order).
    assert!(schedule.next_group().is_none());
    assert_eq!(schedule.waiting.len(), 2);
    schedule.finished(first);
    let (_, g3) = schedule.next_group().expect("b is free again");
    assert_eq!(keys(&g3), vec![vec!["e", "b"]]);
    let (_, g4) = schedule.next_group().expect("third in flight");
    assert_eq!(keys(&g4), vec![vec!["f", "g"]]);
    assert!(schedule.waiting.is_empty());
    // At most three at once.
    schedule.waiting.push_back(waiting(&["h"]).0);
    assert!(schedule.next_group().is_none());
}

#[test]
fn the_same_dedup_key_from_two_sources_is_two_incidents() {
    let mut a = alert("k");
    let b = alert("k");
    assert_eq!(incident_fingerprint(&a), incident_fingerprint(&b));
    a.source.name = "other".into();
    assert_ne!(incident_fingerprint(&a), incident_fingerprint(&b));
}

fn alert(dedup_key: &str) -> Alert {
    use crate::model::{AlertStatus, Severity};
    Alert::for_tests(dedup_key, AlertStatus::Firing, Severity::Info)
}
