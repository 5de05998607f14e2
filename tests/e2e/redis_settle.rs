//! Batched settles (`settle_many`) and `kill -9`: results that were answered 2xx by the
//! endpoint but not yet stored in Redis when the instance died are sent again by the next
//! instance (the documented at-least-once window), each exactly once more; those whose results
//! were stored are not sent again; nothing is lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use deadpool_redis::redis::AsyncCommands;

use std::collections::{HashMap, HashSet};

use crate::config_for;
use crate::support::{eventually, wait_for, RedisServer, Switchyard, TestStore};

/// A receiver that answers every request 200 after `delay` (and, while held, not before it is
/// let go), recording each event id when the request arrives and again when it is answered.
#[derive(Clone)]
pub(crate) struct SlowReceiver {
    pub(crate) url: String,
    arrived: Arc<Mutex<Vec<String>>>,
    answered: Arc<Mutex<Vec<String>>>,
    held: Arc<AtomicBool>,
}

impl SlowReceiver {
    pub(crate) fn start(delay: Duration) -> SlowReceiver {
        let arrived = Arc::new(Mutex::new(Vec::new()));
        let answered = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::new(AtomicBool::new(false));
        let (a, b, h) = (arrived.clone(), answered.clone(), held.clone());
        let server = HttpServer::new(move || {
            let (arrived, answered, held) = (a.clone(), b.clone(), h.clone());
            App::new().default_service(web::to(move |req: HttpRequest| {
                let (arrived, answered, held) = (arrived.clone(), answered.clone(), held.clone());
                async move {
                    let id = req
                        .headers()
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    arrived.lock().unwrap().push(id.clone());
                    actix_rt::time::sleep(delay).await;
                    while held.load(Ordering::SeqCst) {
                        actix_rt::time::sleep(Duration::from_millis(5)).await;
                    }
                    answered.lock().unwrap().push(id);
                    HttpResponse::Ok().body("ok")
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind receiver");
        let addr = server.addrs()[0];
        actix_rt::spawn(server.run());
        SlowReceiver {
            url: format!("http://{addr}/hook"),
            arrived,
            answered,
            held,
        }
    }

    /// Holds every answer (`true`) until let go (`false`).
    pub(crate) fn hold(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }

    pub(crate) fn arrived(&self) -> Vec<String> {
        self.arrived.lock().unwrap().clone()
    }

    fn answered(&self) -> usize {
        self.answered.lock().unwrap().len()
    }
}

#[actix_rt::test]
async fn kill_9_with_settles_pending_resends_only_the_unsettled_ones_once() {
    const SETTLED: usize = 4;
    const PENDING: usize = 4;
    let mut server = RedisServer::start_persistent();
    let store = TestStore::on(&server);
    let rx = SlowReceiver::start(Duration::ZERO);
    let cfg = config_for(&store, &rx.url, "");
    let mut a = Switchyard::start(&cfg);
    // First, deliveries that are answered and whose results are stored.
    for i in 0..SETTLED {
        let body = format!(r#"{{"title": "Settled {i}", "id": "settled-{i}"}}"#);
        assert_eq!(a.ingest("open", body.as_bytes(), &[]).await.0, 202);
    }
    store.wait_queue_settled("hook").await;
    let settled: HashSet<String> = rx.arrived().into_iter().collect();
    assert_eq!(settled.len(), SETTLED);
    // Then deliveries held at the endpoint; Redis dies before any 2xx comes back, so no result
    // can be stored (a frozen Redis would not do: what was written to its socket before the
    // kill is still read once it thaws); then the instance dies, and Redis comes back with
    // what it had (append-only file, fsync always).
    rx.hold(true);
    for i in 0..PENDING {
        let body = format!(r#"{{"title": "Pending {i}", "id": "pending-{i}"}}"#);
        assert_eq!(a.ingest("open", body.as_bytes(), &[]).await.0, 202);
    }
    wait_for("every pending delivery at the endpoint", || {
        (rx.arrived().len() >= SETTLED + PENDING).then_some(())
    })
    .await;
    server.stop();
    rx.hold(false);
    wait_for("every delivery answered 2xx", || {
        (rx.answered() >= SETTLED + PENDING).then_some(())
    })
    .await;
    a.kill();
    server.restart();
    let unsettled: HashSet<String> = rx
        .arrived()
        .into_iter()
        .filter(|id| !settled.contains(id))
        .collect();
    assert_eq!(unsettled.len(), PENDING);

    let b = Switchyard::start(&cfg);
    let conn = store.redis_conn().await;
    let pending_key = format!("{}:pending", store.key_prefix);
    eventually("b finished every delivery", || {
        let mut conn = conn.clone();
        let key = pending_key.clone();
        async move {
            let n: Option<i64> = conn.get(key).await.unwrap();
            n == Some(0)
        }
    })
    .await;
    // A new alert after the takeover is delivered once.
    assert_eq!(
        b.ingest("open", br#"{"title": "After", "id": "after"}"#, &[])
            .await
            .0,
        202
    );
    wait_for("the new alert delivered", || {
        let arrived = rx.arrived();
        let distinct: HashSet<&String> = arrived.iter().collect();
        (distinct.len() == SETTLED + PENDING + 1 && rx.answered() == arrived.len()).then_some(())
    })
    .await;

    let mut per_event = HashMap::<String, usize>::new();
    for id in rx.arrived() {
        *per_event.entry(id).or_default() += 1;
    }
    assert_eq!(
        per_event.len(),
        SETTLED + PENDING + 1,
        "every event arrived: {per_event:?}"
    );
    for id in &settled {
        assert_eq!(
            per_event[id], 1,
            "a settled delivery is not sent again: {per_event:?}"
        );
    }
    for id in &unsettled {
        assert_eq!(
            per_event[id], 2,
            "an unsettled delivery is sent exactly once more: {per_event:?}"
        );
    }
    let after: Vec<_> = per_event
        .iter()
        .filter(|(id, _)| !settled.contains(*id) && !unsettled.contains(*id))
        .collect();
    assert_eq!(after.len(), 1);
    assert_eq!(*after[0].1, 1, "the new alert is delivered once");
}
