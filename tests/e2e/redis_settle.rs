//! Batched settles (`settle_many`) and `kill -9`: results that were answered 2xx by the
//! endpoint but not yet stored in Redis when the instance died are sent again by the next
//! instance (the documented at-least-once window), each at most once more, and nothing is lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use deadpool_redis::redis::AsyncCommands;

use crate::config_for;
use crate::support::{eventually, wait_for, RedisServer, Switchyard, TestStore};

/// A receiver that answers every request 200 after `delay`, recording each event id when the
/// request arrives and again when it is answered.
#[derive(Clone)]
pub(crate) struct SlowReceiver {
    pub(crate) url: String,
    arrived: Arc<Mutex<Vec<String>>>,
    answered: Arc<Mutex<Vec<String>>>,
}

impl SlowReceiver {
    pub(crate) fn start(delay: Duration) -> SlowReceiver {
        let arrived = Arc::new(Mutex::new(Vec::new()));
        let answered = Arc::new(Mutex::new(Vec::new()));
        let (a, b) = (arrived.clone(), answered.clone());
        let server = HttpServer::new(move || {
            let (arrived, answered) = (a.clone(), b.clone());
            App::new().default_service(web::to(move |req: HttpRequest| {
                let (arrived, answered) = (arrived.clone(), answered.clone());
                async move {
                    let id = req
                        .headers()
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    arrived.lock().unwrap().push(id.clone());
                    actix_rt::time::sleep(delay).await;
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
        }
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
    const N: usize = 8;
    let server = RedisServer::start();
    let store = TestStore::on(&server);
    let rx = SlowReceiver::start(Duration::from_millis(400));
    let cfg = config_for(&store, &rx.url, "");
    let mut a = Switchyard::start(&cfg);
    for i in 0..N {
        let body = format!(r#"{{"title": "Pending {i}", "id": "pending-{i}"}}"#);
        assert_eq!(a.ingest("open", body.as_bytes(), &[]).await.0, 202);
    }
    // Every delivery is out at the endpoint; Redis stops answering before any 2xx comes back,
    // so no result can be stored; then the instance dies.
    wait_for("every delivery at the endpoint", || {
        (rx.arrived().len() >= N).then_some(())
    })
    .await;
    server.freeze(true);
    wait_for("every delivery answered 2xx", || {
        (rx.answered() >= N).then_some(())
    })
    .await;
    a.kill();
    server.freeze(false);

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
        let distinct: std::collections::HashSet<&String> = arrived.iter().collect();
        (distinct.len() == N + 1 && rx.answered() == arrived.len()).then_some(())
    })
    .await;

    let mut per_event = std::collections::HashMap::<String, usize>::new();
    for id in rx.arrived() {
        *per_event.entry(id).or_default() += 1;
    }
    assert_eq!(per_event.len(), N + 1, "every event arrived: {per_event:?}");
    assert!(
        per_event.values().all(|&n| n <= 2),
        "an unsettled delivery is sent at most once more: {per_event:?}"
    );
    let repeated = per_event.values().filter(|&&n| n == 2).count();
    assert!(
        repeated <= N,
        "only deliveries in flight at the kill repeat: {per_event:?}"
    );
}
