//! Unit tests of the memory store: recording, rollback, reads, retention, dedup keys.

use super::*;

/// Records with no routes and no lease offer; what each alert did.
async fn record(
    store: &MemoryStore,
    alerts: &[Alert],
    now: DateTime<Utc>,
) -> Result<Vec<Recorded>, StoreError> {
    struct NoRoutes;
    impl Routing for NoRoutes {
        fn endpoints_of(&self, _event: &crate::model::Event) -> Vec<Arc<str>> {
            Vec::new()
        }
    }
    store
        .record(alerts, now, &NoRoutes, &mut LeaseOffer::none())
        .await
        .map(|r| r.recorded)
}
use crate::model::transition::Outcome;
use crate::model::{AlertStatus, Labels, Severity, SourceRef};
use crate::store::query::IncidentQuery;

fn alert(key: &str, status: AlertStatus) -> Alert {
    Alert::for_tests(key, status, Severity::Warning)
}

/// Regression (hardening item 1): a start time past 2262 (out of `i64` nanoseconds) made
/// `record` fail halfway through its group; any time chrono holds is kept now.
#[actix_rt::test]
async fn a_start_time_far_in_the_future_is_recorded_with_the_rest() {
    let store = MemoryStore::new();
    let now = Utc::now();
    let far = DateTime::parse_from_rfc3339("9999-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let mut bad = alert("far", AlertStatus::Firing);
    bad.started_at = Some(far);
    let alerts = [
        alert("before", AlertStatus::Firing),
        bad,
        alert("after", AlertStatus::Firing),
    ];
    let recorded = record(&store, &alerts, now).await.unwrap();
    assert_eq!(recorded.len(), 3);
    assert!(recorded.iter().all(|r| r.outcome == Outcome::Created));
    let far_id = recorded[1].incident_id.clone().unwrap();
    let got = store.get_incident(&far_id).await.unwrap().unwrap();
    assert_eq!(got.started_at, far);
    assert_eq!(store.open_count().await.unwrap(), 3);
}

/// A call that fails part way leaves no trace: every key, the index by id, the open
/// count and the resolved queue are as they were.
#[actix_rt::test]
async fn a_rolled_back_call_leaves_the_store_as_it_was() {
    let store = MemoryStore::new();
    let now = Utc::now();
    let first = record(
        &store,
        &[
            alert("a", AlertStatus::Firing),
            alert("b", AlertStatus::Firing),
        ],
        now,
    )
    .await
    .unwrap();
    let a_id = first[0].incident_id.clone().unwrap();
    // Incidents `a` and `b` as stored.
    let read_ab = || -> Vec<Option<Incident>> {
        ["a", "b"]
            .iter()
            .map(|k| {
                let state = store.incidents();
                let key: IncidentKey = ("s".into(), (*k).into());
                state.by_key.get(&key).and_then(|s| s.incident(k))
            })
            .collect()
    };
    let before = read_ab();

    // What a failing call would have done before failing: resolve `a`, create `c`.
    {
        let mut state = store.incidents();
        let mut undo = Undo {
            changes: Vec::new(),
            open: state.open,
            resolved_len: state.resolved.len(),
        };
        for (k, status) in [("a", AlertStatus::Resolved), ("c", AlertStatus::Firing)] {
            let key: IncidentKey = ("s".into(), k.into());
            let current = state.by_key.get(&key).and_then(|s| s.incident(k));
            let (recorded, next) = decide_once(current.as_ref(), &alert(k, status), now);
            let next = next.get(&recorded).unwrap();
            let stored = Stored::new(next, alert(k, status).source).unwrap();
            if !next.status.is_open() {
                state.resolved.push_back((now, key.clone(), stored.id));
                state.open -= 1;
            } else {
                state.open += 1;
            }
            let prev = state.put(key.clone(), stored);
            undo.changes.push((key, prev));
        }
        state.roll_back(undo);
        assert_eq!(state.open, 2);
        assert!(state.resolved.is_empty());
        assert!(state.by_key.get(&("s".into(), "c".into())).is_none());
    }
    let after = read_ab();
    assert_eq!(
        serde_json::to_string(&before).unwrap(),
        serde_json::to_string(&after).unwrap()
    );
    let a = store.get_incident(&a_id).await.unwrap().unwrap();
    assert_eq!(a.status, IncidentStatus::Triggered);
    assert_eq!(
        store.incidents().by_id.len(),
        2,
        "c's id is gone from the index"
    );
}

#[test]
fn stored_incidents_read_back_whole() {
    let source = SourceRef {
        name: "prom".into(),
        kind: "alertmanager".into(),
    };
    // Nanoseconds, a time before the epoch, text that JSON would escape, every field set.
    let started = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
    let mut full = Incident::bare(
        "inc_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6".into(),
        "key \"quoted\" ü".into(),
        "Disk \"/\" full\n".into(),
        "line one\nline two \u{1F525}".into(),
        started,
    );
    full.status = IncidentStatus::Resolved;
    full.severity = Severity::Critical;
    full.labels = Labels::from([
        ("alertname".into(), "DiskFull".into()),
        ("instance".into(), "db-1:9100".into()),
    ]);
    full.annotations = Labels::from([("runbook".into(), "https://r/x?a=1&b=2".into())]);
    full.links = vec![Link {
        label: "Dashboard".into(),
        url: "https://grafana/d/1".into(),
    }];
    full.resolved_at = DateTime::from_timestamp(1_700_000_600, 999_999_999);
    full.last_seen_at = DateTime::from_timestamp(-86_400, 1).unwrap();
    full.occurrences = 42;
    full.source = Some(source.clone());
    let stored = Stored::new(&full, source.clone()).unwrap();
    assert_eq!(stored.incident(&full.dedup_key), Some(full.clone()));

    // An open incident with nothing optional, and an id of another form (kept whole).
    let mut bare = Incident::bare(
        "legacy-7".into(),
        "k".into(),
        String::new(),
        String::new(),
        started,
    );
    bare.source = Some(source.clone());
    let stored = Stored::new(&bare, source).unwrap();
    assert_eq!(stored.id, 0, "not an inc_<hex> id: found by no index");
    assert_eq!(stored.incident("k"), Some(bare));
}

#[actix_rt::test]
async fn records_in_order_and_counts_open_incidents() {
    let store = MemoryStore::new();
    let now = Utc::now();
    let r = record(
        &store,
        &[
            alert("a", AlertStatus::Firing),
            alert("a", AlertStatus::Firing),
            alert("b", AlertStatus::Firing),
            alert("a", AlertStatus::Resolved),
        ],
        now,
    )
    .await
    .unwrap();
    let outcomes: Vec<_> = r.iter().map(|x| x.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            Outcome::Created,
            Outcome::Repeat,
            Outcome::Created,
            Outcome::Resolved
        ]
    );
    assert_eq!(r[0].incident_id, r[3].incident_id);
    assert!(r[1].event.is_none());
    assert_eq!(store.open_count().await.unwrap(), 1);
}

#[actix_rt::test]
async fn resolved_incidents_are_forgotten_after_the_retention_and_open_ones_kept() {
    let mut store = MemoryStore::new();
    store.resolved_retention = Duration::from_secs(60);
    let t0 = Utc::now();
    record(
        &store,
        &[
            alert("gone", AlertStatus::Firing),
            alert("gone", AlertStatus::Resolved),
            alert("open", AlertStatus::Firing),
        ],
        t0,
    )
    .await
    .unwrap();
    assert_eq!(store.incidents().by_key.len(), 2);
    // Within the retention the resolved incident is still there...
    record(&store, &[], t0 + chrono::Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(store.incidents().by_key.len(), 2);
    // ...after it, only the open one is.
    record(&store, &[], t0 + chrono::Duration::seconds(61))
        .await
        .unwrap();
    let state = store.incidents();
    assert_eq!(state.by_key.len(), 1);
    assert!(state.by_key.keys().all(|(_, k)| &**k == "open"));
    assert_eq!(state.open, 1);
}

#[actix_rt::test]
async fn an_incident_reads_back_as_it_was_recorded() {
    use crate::store::query::{IncidentFilter, IncidentQuery};
    let store = MemoryStore::new();
    let mut a = alert("k", AlertStatus::Firing);
    a.labels.insert("service".into(), "db".into());
    let r = record(&store, &[a], Utc::now()).await.unwrap();
    let created = r[0].event.as_ref().unwrap().incident.clone();
    let got = store.get_incident(&created.id).await.unwrap().unwrap();
    assert_eq!(got.labels, created.labels);
    assert_eq!(got.title, created.title);
    assert_eq!(got.started_at, created.started_at);
    assert_eq!(got.source.as_ref().map(|s| &*s.name), Some("s"));
    assert!(store.get_incident("inc_nope").await.unwrap().is_none());
    let listed = store
        .list_incidents(&IncidentFilter {
            status: Some(IncidentStatus::Triggered),
            source: Some("s".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.id);
}

#[actix_rt::test]
async fn incidents_are_found_by_id_through_their_whole_life() {
    use crate::store::query::IncidentQuery;
    let mut store = MemoryStore::new();
    store.resolved_retention = Duration::from_secs(60);
    let t0 = Utc::now();
    let id_of = |r: &[Recorded], i: usize| r[i].event.as_ref().unwrap().incident.id.clone();
    let r = record(
        &store,
        &[
            alert("k", AlertStatus::Firing),
            alert("k", AlertStatus::Resolved),
            alert("k", AlertStatus::Firing),
        ],
        t0,
    )
    .await
    .unwrap();
    let (first, second) = (id_of(&r, 0), id_of(&r, 2));
    assert_ne!(first, second, "firing after resolved opens a new incident");
    // The key now holds the second incident: the first is gone, by key and by id.
    assert!(store.get_incident(&first).await.unwrap().is_none());
    let got = store.get_incident(&second).await.unwrap().unwrap();
    assert_eq!(got.status, IncidentStatus::Triggered);
    assert_eq!(store.incidents().by_id.len(), 1);
    // Resolved, it is still found within the retention...
    record(&store, &[alert("k", AlertStatus::Resolved)], t0)
        .await
        .unwrap();
    let got = store.get_incident(&second).await.unwrap().unwrap();
    assert_eq!(got.status, IncidentStatus::Resolved);
    // ...and forgotten after it, from the index too.
    record(&store, &[], t0 + chrono::Duration::seconds(61))
        .await
        .unwrap();
    assert!(store.get_incident(&second).await.unwrap().is_none());
    assert_eq!(store.incidents().by_id.len(), 0);
}

#[actix_rt::test]
async fn a_list_is_the_newest_first_up_to_its_limit() {
    use crate::store::query::{IncidentFilter, IncidentQuery};
    let store = MemoryStore::new();
    let t0 = Utc::now();
    let mut ids = Vec::new();
    // Recorded out of order: the list sorts by start, not by insertion.
    for (n, secs) in [(0, 5), (1, 1), (2, 9), (3, 3), (4, 7), (5, 0)] {
        let mut a = alert(&format!("k{n}"), AlertStatus::Firing);
        a.started_at = Some(t0 + chrono::Duration::seconds(secs));
        let r = record(&store, &[a], t0).await.unwrap();
        ids.push((secs, r[0].event.as_ref().unwrap().incident.id.clone()));
    }
    ids.sort_by_key(|(secs, _)| std::cmp::Reverse(*secs));
    let filter = |limit| IncidentFilter {
        status: None,
        source: None,
        limit,
    };
    let got: Vec<String> = store
        .list_incidents(&filter(3))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    let want: Vec<String> = ids.iter().take(3).map(|(_, id)| id.clone()).collect();
    assert_eq!(got, want);
    assert_eq!(store.list_incidents(&filter(100)).await.unwrap().len(), 6);
    assert!(store.list_incidents(&filter(0)).await.unwrap().is_empty());
}
