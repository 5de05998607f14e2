//! Auto-resolve through the incident actor, on the memory store and its timers (the redis
//! store, a restart and two instances: e2e `expiry`).

use super::*;
use crate::model::{IncidentStatus, Severity};
use crate::router::actor::{RouterActor, SharedRoutes};
use crate::router::table::RouteTable;
use crate::store::backlog::Backlog;
use crate::store::memory::MemoryStore;
use crate::store::timers::MemoryTimers;

struct Setup {
    incidents: Addr<IncidentActor>,
    timers: Arc<MemoryTimers>,
    store: Arc<MemoryStore>,
}

fn setup() -> Setup {
    let metrics = Metrics::new();
    let table = RouteTable::build(&[], &[], Vec::new()).expect("routes");
    let routes = SharedRoutes::new(Arc::new(table));
    let router = RouterActor::new(
        routes.clone(),
        Vec::new(),
        metrics.clone(),
        Arc::new(Backlog::new(1000)),
    )
    .start();
    let store = Arc::new(MemoryStore::new());
    let timers = Arc::new(MemoryTimers::default());
    let incidents = IncidentActor::new(store.clone(), routes, router, metrics)
        .with_query(store.clone())
        .with_expiry(timers.clone())
        .start();
    Setup {
        incidents,
        timers,
        store,
    }
}

async fn record(incidents: &Addr<IncidentActor>, alert: Alert) -> Recorded {
    let (tx, rx) = oneshot::channel();
    incidents
        .send(RecordAlerts {
            alerts: vec![alert],
            reply: Box::new(move |r| {
                let _ = tx.send(r);
            }),
        })
        .await
        .unwrap();
    rx.await.unwrap().unwrap().remove(0)
}

fn firing(key: &str, expires_at: Option<DateTime<Utc>>) -> Alert {
    let mut a = Alert::for_tests(key, AlertStatus::Firing, Severity::Warning);
    a.expires_at = expires_at;
    a
}

#[actix_rt::test]
async fn a_renewal_moves_the_timer_and_the_expiry_resolves_at_its_time() {
    let s = setup();
    // Timers keep milliseconds.
    let now = crate::store::timers::from_ms(Utc::now().timestamp_millis());
    let (t1, t2) = (
        now + chrono::Duration::minutes(4),
        now + chrono::Duration::minutes(5),
    );
    let r = record(&s.incidents, firing("k", Some(t1))).await;
    let id = r.incident_id.clone().unwrap();
    let armed = s.timers.get(EXPIRY_SET, &id).await.unwrap().unwrap();
    assert_eq!(armed.due, t1);
    // Prometheus sends it again with a later endsAt: the same incident, the timer moves.
    let r2 = record(&s.incidents, firing("k", Some(t2))).await;
    assert_eq!(r2.incident_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        s.timers.get(EXPIRY_SET, &id).await.unwrap().unwrap().due,
        t2
    );
    // An alert without an expiry arms nothing.
    let other = record(&s.incidents, firing("no-expiry", None)).await;
    assert_eq!(
        s.timers
            .get(EXPIRY_SET, other.incident_id.as_deref().unwrap())
            .await
            .unwrap(),
        None
    );

    // Not due before t2; due at t2: resolved, at t2.
    let early = s
        .timers
        .claim_due(EXPIRY_SET, t1, 10, DEFAULT_EXPIRY_LEASE)
        .await
        .unwrap();
    assert!(early.is_empty());
    let due = s
        .timers
        .claim_due(EXPIRY_SET, t2, 10, DEFAULT_EXPIRY_LEASE)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    let found = s
        .incidents
        .send(ExpireIncident {
            claimed: due[0].clone(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, Expired::Resolved);
    let inc = s.store.get_incident(&id).await.unwrap().unwrap();
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert_eq!(
        inc.resolved_at.map(|t| t.timestamp_millis()),
        Some(t2.timestamp_millis())
    );
    // The same timer again (its claimant died before completing): nothing more to do.
    let again = s
        .incidents
        .send(ExpireIncident {
            claimed: due[0].clone(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, Expired::Closed);
}

#[actix_rt::test]
async fn a_renewal_after_the_claim_keeps_the_incident_open() {
    let s = setup();
    let now = Utc::now();
    let r = record(&s.incidents, firing("k", Some(now))).await;
    let id = r.incident_id.unwrap();
    let due = s
        .timers
        .claim_due(EXPIRY_SET, now, 10, DEFAULT_EXPIRY_LEASE)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    // The alert comes back before the claimed timer is handled: it re-arms the timer.
    record(
        &s.incidents,
        firing("k", Some(now + chrono::Duration::minutes(4))),
    )
    .await;
    let found = s
        .incidents
        .send(ExpireIncident {
            claimed: due[0].clone(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, Expired::Renewed);
    let inc = s.store.get_incident(&id).await.unwrap().unwrap();
    assert_eq!(inc.status, IncidentStatus::Triggered);
    // The claimant's completion does not remove the renewed timer.
    assert!(!s.timers.complete(&due[0], None).await.unwrap());
    assert!(s.timers.get(EXPIRY_SET, &id).await.unwrap().is_some());
}

#[actix_rt::test]
async fn the_expirer_resolves_due_incidents_by_itself() {
    let s = setup();
    let metrics = Metrics::new();
    actix_rt::spawn(run_expirer(
        s.timers.clone(),
        s.incidents.clone(),
        metrics.clone(),
    ));
    let soon = Utc::now() + chrono::Duration::milliseconds(200);
    let id = record(&s.incidents, firing("k", Some(soon)))
        .await
        .incident_id
        .unwrap();
    // The tool resolved this one itself: its timer fires on a closed incident.
    let closed = record(&s.incidents, firing("c", Some(soon)))
        .await
        .incident_id
        .unwrap();
    let mut resolved = Alert::for_tests("c", AlertStatus::Resolved, Severity::Warning);
    resolved.expires_at = None;
    record(&s.incidents, resolved).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let inc = s.store.get_incident(&id).await.unwrap().unwrap();
        let timers_left = s.timers.next_due(EXPIRY_SET).await.unwrap();
        if inc.status == IncidentStatus::Resolved && timers_left.is_none() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not resolved: {inc:?}, timers {timers_left:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let c = s.store.get_incident(&closed).await.unwrap().unwrap();
    assert_eq!(c.status, IncidentStatus::Resolved);
    let text = metrics.encode();
    assert!(
        text.contains(r#"switchyard_incident_expiry_total{outcome="resolved"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"switchyard_incident_expiry_total{outcome="closed"} 1"#),
        "{text}"
    );
}
