//! The file store: what it holds after being closed (or killed) and opened again, torn
//! writes, damage, the lock, compaction and backups.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::*;
use crate::model::delivery::{Attempt, DeliveryState};
use crate::model::{AlertStatus, Event, IncidentStatus, Severity};
use crate::store::query::IncidentFilter;

struct ToHook;

impl Routing for ToHook {
    fn endpoints_of(&self, _event: &Event) -> Vec<Arc<str>> {
        vec!["hook".into()]
    }
}

fn alert(key: &str, status: AlertStatus) -> Alert {
    Alert::for_tests(key, status, Severity::Warning)
}

/// A record call and the `persist` the ingest makes after it.
async fn record(store: &FileStore, alerts: &[Alert]) -> Recording {
    let recording = store
        .record(alerts, Utc::now(), &ToHook, &mut LeaseOffer::none())
        .await
        .unwrap();
    store.persist().await.unwrap();
    recording
}

fn attempt(status: u16) -> Attempt {
    Attempt {
        at: Utc::now(),
        status: Some(status),
        duration_ms: 3,
        error: None,
        response: "no".into(),
    }
}

/// Claims every due head of `hook` (up to 10) and settles each as `settlement`.
async fn settle_claimed(store: &FileStore, settlement: Settlement) {
    let claim = store
        .claim("hook", 10, Duration::from_secs(30))
        .await
        .unwrap();
    let settles: Vec<_> = claim
        .deliveries
        .into_iter()
        .map(|c| (c, settlement))
        .collect();
    store.settle_many("hook", &settles).await.unwrap();
}

/// Opens the store in `dir` again: the one before must be dropped (its lock released).
fn reopen(dir: &std::path::Path) -> Arc<FileStore> {
    FileStore::open(dir).expect("open again")
}

fn journal(dir: &std::path::Path) -> std::path::PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a journal")
}

#[actix_rt::test]
async fn incidents_deliveries_attempts_retry_times_logs_and_refs_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let first = record(
        &store,
        &[
            alert("a", AlertStatus::Firing),
            alert("b", AlertStatus::Firing),
        ],
    )
    .await;
    record(&store, &[alert("b", AlertStatus::Resolved)]).await;
    let claim = store
        .claim("hook", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claim.deliveries.len(), 2, "one head per lane");
    let lane_a = first.recorded[0].incident_id.clone().unwrap();
    let mut settles = Vec::new();
    for mut c in claim.deliveries {
        if *c.lane == *lane_a {
            c.attempts.push(attempt(503));
            settles.push((c, Settlement::Retry(Duration::from_secs(3600))));
        } else {
            c.attempts.push(attempt(200));
            settles.push((c, Settlement::Delivered));
        }
    }
    store.settle_many("hook", &settles).await.unwrap();
    store.put("jira", &lane_a, "OPS-1").await.unwrap();
    store
        .recorded("sentry", "req-1", Duration::from_secs(600))
        .await
        .unwrap();
    let before = store.deliveries("hook").await.unwrap();
    let retry_at = before
        .deliveries
        .iter()
        .find(|d| d.state == DeliveryState::Failed)
        .and_then(|d| d.next_attempt_at)
        .expect("a retry time");
    drop(store);

    let store = reopen(dir.path());
    assert_eq!(store.open_count().await.unwrap(), 1);
    let incidents = store
        .list_incidents(&IncidentFilter {
            limit: 10,
            ..IncidentFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(incidents.len(), 2);
    assert!(incidents
        .iter()
        .any(|i| i.dedup_key == "b" && i.status == IncidentStatus::Resolved));
    let after = store.deliveries("hook").await.unwrap();
    let states = |d: &StoredDeliveries| {
        let mut s: Vec<_> = d
            .deliveries
            .iter()
            .map(|d| (d.id.clone(), format!("{:?}", d.state), d.attempts.len()))
            .collect();
        s.sort();
        s
    };
    assert_eq!(states(&after), states(&before));
    let failed = after
        .deliveries
        .iter()
        .find(|d| d.state == DeliveryState::Failed)
        .unwrap();
    let drift = (failed.next_attempt_at.unwrap() - retry_at)
        .num_milliseconds()
        .abs();
    assert!(drift < 1000, "the retry time is kept ({drift} ms off)");
    assert_eq!(failed.attempts[0].status, Some(503));
    // The retry is not due yet: nothing to claim; lane b waits behind its delivered head.
    let claim = store
        .claim("hook", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        claim.deliveries.iter().all(|c| *c.lane != *lane_a),
        "a head waiting for its retry is not claimed early"
    );
    assert_eq!(
        claim.deliveries.len(),
        1,
        "b's resolved event is due now (its lane went on)"
    );
    assert_eq!(
        store.get("jira", &lane_a).await.unwrap().as_deref(),
        Some("OPS-1")
    );
    assert_eq!(
        store.begin_recording("sentry", "req-1").await.unwrap(),
        IdState::Recorded
    );
}

#[actix_rt::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = FileStore::open(dir.path()).unwrap();
    let err = FileStore::open(dir.path()).err().expect("refused");
    assert!(
        err.to_string()
            .contains("in use by another switchyard process"),
        "{err}"
    );
}

#[actix_rt::test]
async fn a_torn_write_at_the_end_is_cut_off_and_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    record(&store, &[alert("a", AlertStatus::Firing)]).await;
    record(&store, &[alert("b", AlertStatus::Firing)]).await;
    drop(store);
    let path = journal(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 5).unwrap();
    drop(file);

    let store = reopen(dir.path());
    assert_eq!(
        store.open_count().await.unwrap(),
        1,
        "the torn record is gone"
    );
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".torn-"))
        .collect();
    assert_eq!(kept.len(), 1, "the torn bytes are kept aside");
    // The journal goes on from the cut: what is recorded now comes back too.
    record(&store, &[alert("c", AlertStatus::Firing)]).await;
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(store.open_count().await.unwrap(), 2);
}

#[actix_rt::test]
async fn damage_before_whole_frames_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    for k in ["a", "b", "c"] {
        record(&store, &[alert(k, AlertStatus::Firing)]).await;
    }
    drop(store);
    let path = journal(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = FileStore::open(dir.path()).err().expect("refused");
    let msg = err.to_string();
    assert!(msg.contains("is damaged at byte 8"), "{msg}");
    assert!(msg.contains("not an interrupted write"), "{msg}");
}

#[actix_rt::test]
async fn compaction_keeps_the_state_and_only_the_newest_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    for k in 0..50 {
        record(&store, &[alert(&format!("k{k}"), AlertStatus::Firing)]).await;
    }
    settle_claimed(&store, Settlement::Dead).await;
    store.put("jira", "inc_x", "OPS-9").await.unwrap();
    let info = store.compact().unwrap();
    assert_eq!(info.generation, 1);
    // A change after the snapshot lands in the next journal.
    record(&store, &[alert("late", AlertStatus::Firing)]).await;
    let before = store.deliveries("hook").await.unwrap();
    drop(store);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "LOCK",
            "journal-0000000000000001.log",
            "snapshot-0000000000000001.snap"
        ]
    );
    let store = reopen(dir.path());
    assert_eq!(store.open_count().await.unwrap(), 51);
    let after = store.deliveries("hook").await.unwrap();
    assert_eq!(after.deliveries.len(), before.deliveries.len());
    assert_eq!(
        after
            .deliveries
            .iter()
            .filter(|d| d.state == DeliveryState::Dead)
            .count(),
        10
    );
    assert_eq!(
        store.get("jira", "inc_x").await.unwrap().as_deref(),
        Some("OPS-9")
    );
}

#[actix_rt::test]
async fn a_backup_is_a_data_directory_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    record(&store, &[alert("a", AlertStatus::Firing)]).await;
    let backup = store.backup().unwrap();
    assert!(backup.dir.starts_with(dir.path().join("backups")));
    record(&store, &[alert("after", AlertStatus::Firing)]).await;
    let copy = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&backup.dir).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.path().join(e.file_name())).unwrap();
    }
    let restored = FileStore::open(copy.path()).unwrap();
    assert_eq!(restored.open_count().await.unwrap(), 1, "as of the backup");
    assert_eq!(
        restored.deliveries("hook").await.unwrap().deliveries.len(),
        1
    );
}

#[actix_rt::test]
async fn timers_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    crate::store::timers::tests::timers_follow_the_contract(&*store, "s").await;
    crate::store::timers::tests::each_timer_goes_to_one_claimant(&*store, &*store, "t").await;
}

#[actix_rt::test]
async fn groups_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    crate::store::groups::tests::groups_follow_the_contract(&*store).await;
}

#[actix_rt::test]
async fn timers_groups_and_enqueued_deliveries_come_back_after_a_restart_and_a_compaction() {
    use crate::store::groups::Groups;
    use crate::store::timers::{Timers, When};
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let at = crate::store::timers::tests::at;
    store
        .schedule("group", "g1", at(100), "p1", When::Replace)
        .await
        .unwrap();
    store
        .schedule("group", "g2", at(200), "p2", When::Replace)
        .await
        .unwrap();
    // A claimed timer is due again after a restart (its lease is not kept).
    let claimed = store
        .claim_due("group", at(150), 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store.cancel("group", "g2").await.unwrap();
    store
        .join(&[("g1".into(), "meta".into(), "inc_1".into())])
        .await
        .unwrap();
    let event = Arc::new(crate::model::test_event(
        "grp_1",
        crate::model::EventType::Updated,
    ));
    store.enqueue(event, &["hook".into()]).await.unwrap();
    drop(store);

    for round in 0..2 {
        let store = reopen(dir.path());
        assert_eq!(
            Timers::get(&*store, "group", "g1")
                .await
                .unwrap()
                .map(|t| t.payload),
            Some("p1".into()),
            "round {round}"
        );
        assert!(Timers::get(&*store, "group", "g2").await.unwrap().is_none());
        let again = store
            .claim_due("group", at(150), 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            again.len(),
            1,
            "a claimed timer fires again after a restart"
        );
        let g = Groups::get(&*store, "g1")
            .await
            .unwrap()
            .expect("the group");
        assert_eq!(g.members.get("inc_1"), Some(&1));
        let d = store.deliveries("hook").await.unwrap();
        assert_eq!(d.deliveries.len(), 1, "the enqueued delivery");
        store.compact().unwrap();
    }
}

#[actix_rt::test]
async fn documents_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    crate::store::documents::tests::documents_follow_the_contract(&*store, "c").await;
}

/// Silences and held incidents are documents: they come back after a restart and after a
/// compaction, and a removed one stays removed.
#[actix_rt::test]
async fn documents_come_back_after_a_restart_and_a_compaction() {
    use crate::store::documents::Documents;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FileStore::open(dir.path()).unwrap();
        let docs = [
            ("s1".to_string(), "{\"a\":1}".to_string()),
            ("s2".to_string(), "{\"b\":2}".to_string()),
        ];
        let d: &dyn Documents = &*store;
        d.put("silences", &docs).await.unwrap();
        assert_eq!(d.remove("silences", &["s2".to_string()]).await.unwrap(), 1);
        assert!(!d.remove_if("silences", "s1", "stale").await.unwrap());
    }
    for _ in 0..2 {
        let store = reopen(dir.path());
        let got = Documents::list(&*store, "silences", 10).await.unwrap();
        assert_eq!(
            got,
            vec![("s1".to_string(), "{\"a\":1}".to_string())],
            "s1 kept as written, s2 removed"
        );
        store.compact().unwrap();
    }
}

/// Regression: a join journaled its whole group (every member), so a storm into a few
/// groups wrote more per alert as the groups grew (0.37x of ingest without grouping).
#[actix_rt::test]
async fn a_join_journals_its_own_bytes_not_its_groups() {
    use crate::store::groups::Groups;
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let meta = "m".repeat(100);
    let many: Vec<(String, String, String)> = (0..2000)
        .map(|i| ("g".to_string(), meta.clone(), format!("inc_{i:05}")))
        .collect();
    store.join(&many).await.unwrap();
    let before = store.journal.appended();
    store
        .join(&[("g".into(), meta.clone(), "inc_new".into())])
        .await
        .unwrap();
    let grew = store.journal.appended() - before;
    assert!(
        grew < 1024,
        "one join into a group of 2,000 journaled {grew} bytes"
    );
    // Joins are applied again on replay, to the same state.
    store
        .join(&[("g".into(), String::new(), "inc_00001".into())])
        .await
        .unwrap();
    let want = Groups::get(&*store, "g").await.unwrap().unwrap();
    drop(store);
    let store = reopen(dir.path());
    let got = Groups::get(&*store, "g").await.unwrap().unwrap();
    assert_eq!(got, want);
    assert_eq!(got.members.len(), 2001);
    assert_eq!(got.members.get("inc_00001"), Some(&2));
    assert_eq!(got.meta, meta);
}

/// Regression (issue 15, 2026-12-03): a grouped ingest synced three times one after the
/// other (the record call, the group join, the group's timer), so every alert of a grouped
/// route cost three `fdatasync`s. They are written as they are made and synced once, by
/// `persist`, and they come back after a restart.
#[actix_rt::test]
async fn a_record_with_its_join_and_timer_is_synced_once_by_persist() {
    use crate::store::groups::Groups;
    use crate::store::timers::{Timers, When};
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let journal = store.journal.clone();
    let due = Utc::now() + chrono::Duration::seconds(30);
    let mut ids = Vec::new();
    let mut unsynced = 0;
    // Three rounds: the background sync (every second) could run inside one of them.
    for round in 0..3 {
        let recording = store
            .record(
                &[alert(&format!("a{round}"), AlertStatus::Firing)],
                Utc::now(),
                &ToHook,
                &mut LeaseOffer::none(),
            )
            .await
            .unwrap();
        let id = recording.recorded[0].incident_id.clone().unwrap();
        store
            .join(&[("g".into(), "meta".into(), id.clone())])
            .await
            .unwrap();
        store
            .schedule("group", "g", due, "", When::IfAbsent)
            .await
            .unwrap();
        if journal.synced() < journal.appended() {
            unsynced += 1;
        }
        store.persist().await.unwrap();
        assert_eq!(
            journal.synced(),
            journal.appended(),
            "one sync covers all three"
        );
        ids.push(id);
    }
    assert!(
        unsynced >= 2,
        "the record, join and timer synced on their own"
    );
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(store.open_count().await.unwrap(), 3);
    let group = Groups::get(&*store, "g").await.unwrap().expect("the group");
    assert!(ids.iter().all(|id| group.members.contains_key(id)));
    let timer = Timers::get(&*store, "group", "g")
        .await
        .unwrap()
        .expect("its timer");
    assert_eq!(timer.due.timestamp_millis(), due.timestamp_millis());
}

/// A settle does not wait for its write (it asks the background thread), yet its frame is in
/// the file long before the background sync (a `kill -9` then keeps it).
#[actix_rt::test]
async fn a_settle_is_written_soon_without_waiting_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    record(&store, &[alert("a", AlertStatus::Firing)]).await;
    let before = std::fs::metadata(journal(dir.path())).unwrap().len();
    settle_claimed(&store, Settlement::Delivered).await;
    let (_, end) = store.journal.position();
    assert!(end > before, "the settle appended a frame");
    // Well inside DEFAULT_FILE_SYNC_EVERY (1 s), which would write it anyway.
    let deadline = std::time::Instant::now() + Duration::from_millis(400);
    while std::fs::metadata(journal(dir.path())).unwrap().len() < end {
        assert!(
            std::time::Instant::now() < deadline,
            "the settle's frame is not in the file"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(store);
    let store = reopen(dir.path());
    let listed = store.deliveries("hook").await.unwrap();
    assert_eq!(listed.deliveries[0].state, DeliveryState::Delivered);
}
