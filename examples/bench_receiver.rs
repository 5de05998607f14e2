//! A fast webhook receiver for the load harness (scripts/bench.sh): answers 200 at once,
//! counts every delivery, counts duplicates (the same alert notified twice), and measures the
//! end-to-end latency of each alert from the `sent_ns` label the load generator put on it
//! (nanoseconds since the epoch, same machine, same clock) to its arrival here.
//!
//! It reads both switchyard's webhook body (`data.incident.labels`) and Alertmanager's
//! (`alerts[].labels`), so one receiver serves both sides of the comparison.
//!
//! `GET /stats` answers `{"requests", "alerts", "unique", "duplicates", "p50_ms", "p99_ms",
//! "max_ms", "last_arrival_lag_ms"}`; `POST /reset` forgets everything.
//!
//! Run: `cargo run --release --example bench_receiver -- 127.0.0.1:9100`

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpResponse, HttpServer};
use bytes::Bytes;
use serde::Deserialize;

#[derive(Default)]
struct Stats {
    requests: u64,
    alerts: u64,
    seen: HashSet<String>,
    duplicates: u64,
    latencies_us: Vec<u64>,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The parts of a body the receiver reads, borrowed from it: a switchyard event (`type`,
/// `data.incident.labels`) or an Alertmanager notification (`status`, `alerts[].labels`).
/// Everything else is skipped without being built, so the receiver stays cheap next to the
/// systems it measures.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<Data<'a>>,
    #[serde(borrow, default)]
    alerts: Vec<Labelled<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    incident: Labelled<'a>,
}

#[derive(Deserialize)]
struct Labelled<'a> {
    #[serde(borrow)]
    labels: Labels<'a>,
}

#[derive(Deserialize)]
struct Labels<'a> {
    #[serde(borrow, default)]
    instance: Cow<'a, str>,
    #[serde(borrow)]
    sent_ns: Option<Cow<'a, str>>,
}

async fn receive(stats: web::Data<Mutex<Stats>>, body: Bytes) -> HttpResponse {
    let arrived = now_ns();
    let Ok(parsed) = serde_json::from_slice::<Body>(&body) else {
        return HttpResponse::BadRequest().finish();
    };
    // A switchyard event is identified by its event type and incident; an Alertmanager
    // notification by the alert's status and labels.
    let kind = parsed
        .kind
        .as_deref()
        .or(parsed.status.as_deref())
        .unwrap_or("");
    let sets: Vec<&Labels> = match &parsed.data {
        Some(d) => vec![&d.incident.labels],
        None => parsed.alerts.iter().map(|a| &a.labels).collect(),
    };
    let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
    s.requests += 1;
    for labels in sets {
        s.alerts += 1;
        if !s.seen.insert(format!("{kind}/{}", labels.instance)) {
            s.duplicates += 1;
            continue;
        }
        if let Some(sent) = labels
            .sent_ns
            .as_deref()
            .and_then(|v| v.parse::<u128>().ok())
        {
            let us = arrived.saturating_sub(sent) / 1_000;
            s.latencies_us.push(us as u64);
        }
    }
    HttpResponse::Ok().finish()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1_000.0
}

async fn stats(stats: web::Data<Mutex<Stats>>) -> HttpResponse {
    let s = stats.lock().unwrap_or_else(|e| e.into_inner());
    let mut lat = s.latencies_us.clone();
    lat.sort_unstable();
    HttpResponse::Ok().json(serde_json::json!({
        "requests": s.requests,
        "alerts": s.alerts,
        "unique": s.seen.len(),
        "duplicates": s.duplicates,
        "p50_ms": percentile(&lat, 0.50),
        "p99_ms": percentile(&lat, 0.99),
        "max_ms": percentile(&lat, 1.0),
        "last_arrival_lag_ms": s.latencies_us.last().map(|&us| us as f64 / 1_000.0).unwrap_or(0.0),
    }))
}

async fn reset(stats: web::Data<Mutex<Stats>>) -> HttpResponse {
    *stats.lock().unwrap_or_else(|e| e.into_inner()) = Stats::default();
    HttpResponse::Ok().finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9100".into());
    let state = web::Data::new(Mutex::new(Stats::default()));
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(16 << 20))
            .route("/stats", web::get().to(stats))
            .route("/reset", web::post().to(reset))
            .default_service(web::to(receive))
    })
    .workers(1)
    .bind(&addr)?
    .run()
    .await
}
