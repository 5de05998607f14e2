//! The ceiling of this machine for what switchyard does, measured by the load harness
//! (scripts/bench.sh, the `ceiling` step): the same stack (actix-web in, awc out, mimalloc,
//! two HTTP workers) with none of switchyard's logic.
//!
//! - `parse`: answers 202 to `POST /ingest/{source}` after parsing the Alertmanager webhook
//!   body into typed alerts, and does nothing else (the "bare actix-web handler that only
//!   parses the same JSON body" of the benchmarks issue).
//! - `forward RECEIVER_URL`: the same, and then POSTs the body to the receiver, from the HTTP
//!   worker that took it (one awc client per worker, at most
//!   [`MAX_IN_FLIGHT_PER_WORKER`] requests in flight each; more wait their turn). No
//!   incidents, no routing, no signing, no queue, no retry: the least any alert router has
//!   to do per alert, so no router on this stack and these cores can go faster.
//!
//! Run: `cargo run --release --example bench_ceiling -- forward 127.0.0.1:9200
//! http://127.0.0.1:9100/hook`

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use actix_web::{web, App, HttpResponse, HttpServer};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::Semaphore;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Requests each HTTP worker keeps in flight to the receiver (switchyard's per-endpoint
/// limit is 256 on one thread; two workers at 128 hold as many).
const MAX_IN_FLIGHT_PER_WORKER: usize = 128;

/// The largest body taken, as switchyard's bench config.
const MAX_BODY_BYTES: usize = 16 << 20;

#[derive(Deserialize)]
#[allow(dead_code)] // parsed to cost what parsing costs; not read
struct Body {
    version: Option<String>,
    status: Option<String>,
    alerts: Vec<Alert>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Alert {
    status: String,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<String>,
}

thread_local! {
    /// awc's client is `!Send`: one per worker thread, with its in-flight limit.
    static CLIENT: RefCell<Option<(awc::Client, Rc<Semaphore>)>> = const { RefCell::new(None) };
}

async fn ingest(body: Bytes, forward_to: web::Data<Option<String>>) -> HttpResponse {
    if serde_json::from_slice::<Body>(&body).is_err() {
        return HttpResponse::BadRequest().finish();
    }
    if let Some(url) = forward_to.get_ref().clone() {
        let (client, room) = CLIENT.with(|c| {
            c.borrow_mut()
                .get_or_insert_with(|| {
                    let client = awc::Client::builder()
                        .connector(awc::Connector::new().limit(MAX_IN_FLIGHT_PER_WORKER))
                        .finish();
                    (client, Rc::new(Semaphore::new(MAX_IN_FLIGHT_PER_WORKER)))
                })
                .clone()
        });
        actix_web::rt::spawn(async move {
            let Ok(_permit) = room.acquire().await else {
                return;
            };
            match client
                .post(&url)
                .insert_header(("content-type", "application/json"))
                .send_body(body)
                .await
            {
                Ok(mut resp) => {
                    let _ = resp.body().await;
                }
                Err(e) => eprintln!("forward failed: {e}"),
            }
        });
    }
    HttpResponse::Accepted().finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, forward_to) = match args.as_slice() {
        [mode, listen] if mode == "parse" => (listen.clone(), None),
        [mode, listen, url] if mode == "forward" => (listen.clone(), Some(url.clone())),
        _ => {
            eprintln!(
                "usage: bench_ceiling parse LISTEN | bench_ceiling forward LISTEN RECEIVER_URL"
            );
            std::process::exit(2);
        }
    };
    let forward_to = web::Data::new(forward_to);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(forward_to.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route("/ingest/{source}", web::post().to(ingest))
            .route("/readyz", web::get().to(HttpResponse::Ok))
    })
    .bind(&listen)?;
    println!("bench_ceiling listening on http://{listen}");
    server.run().await
}
