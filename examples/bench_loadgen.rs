//! A fixed-rate load generator for the load harness (scripts/bench.sh): sends new alerts (labels
//! never seen before) at a steady rate, open loop, and reports what was accepted and the ingest
//! latency measured from each request's scheduled time whenever its connection was still busy
//! then (so a stall is not hidden by sending less: no coordinated omission), else from when it
//! went out (the timer's up-to-1-ms lateness is the load tool's own).
//!
//! Every alert carries a `sent_ns` label (nanoseconds since the epoch at the same moment its
//! latency counts from, so a late send is not hidden either) so that the bench receiver can measure
//! end-to-end latency, and an `instance` label unique in the run.
//!
//! ```text
//! bench_loadgen --url http://127.0.0.1:18080/ingest/bench --format switchyard \
//!     --rate 2000 --seconds 10 [--connections 32] [--alerts-per-body 1] [--token T] [--threads 1]
//! bench_loadgen --url http://127.0.0.1:9093/api/v2/alerts --format alertmanager ...
//! ```
//! `--rate 0` sends as fast as the connections allow. Prints one JSON line of results.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone)]
struct Args {
    url: String,
    format: String,
    rate: f64,
    seconds: f64,
    total: Option<u64>,
    connections: usize,
    per_body: usize,
    token: Option<String>,
    threads: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:18080/ingest/bench".into(),
        format: "switchyard".into(),
        rate: 2000.0,
        seconds: 10.0,
        total: None,
        connections: 32,
        per_body: 1,
        token: None,
        threads: 1,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.chunks(2);
    while let Some([k, v]) = it.next() {
        let num = |v: &str| -> f64 {
            v.parse()
                .unwrap_or_else(|_| panic!("{k}: `{v}` is not a number"))
        };
        match k.as_str() {
            "--url" => a.url = v.clone(),
            "--format" => a.format = v.clone(),
            "--rate" => a.rate = num(v),
            "--seconds" => a.seconds = num(v),
            "--total" => a.total = Some(num(v) as u64),
            "--connections" => a.connections = num(v) as usize,
            "--alerts-per-body" => a.per_body = num(v) as usize,
            "--token" => a.token = Some(v.clone()),
            "--threads" => a.threads = num(v) as usize,
            other => panic!("unknown option {other}"),
        }
    }
    a
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// One alert as JSON text. Written by hand (every value is a plain word or number here), so
/// that making the load costs the shared cores little.
fn alert(format: &str, prefix: &str, n: u64, sent_ns: u128) -> String {
    let labels = format!(
        r#"{{"alertname":"BenchAlert","instance":"{prefix}-{n}","job":"bench","severity":"warning","sent_ns":"{sent_ns}"}}"#
    );
    match format {
        "alertmanager" => format!(
            r#"{{"labels":{labels},"annotations":{{"summary":"bench alert {n}"}},"generatorURL":"http://bench/graph"}}"#
        ),
        _ => format!(
            r#"{{"status":"firing","labels":{labels},"annotations":{{"summary":"bench alert {n}"}},"startsAt":"2026-11-22T10:00:00Z","endsAt":"0001-01-01T00:00:00Z"}}"#
        ),
    }
}

fn body(format: &str, alerts: Vec<String>) -> Vec<u8> {
    let alerts = alerts.join(",");
    match format {
        "alertmanager" => format!("[{alerts}]"),
        _ => format!(
            r#"{{"version":"4","status":"firing","receiver":"switchyard","groupLabels":{{}},"commonLabels":{{}},"commonAnnotations":{{}},"externalURL":"http://bench","alerts":[{alerts}]}}"#
        ),
    }
    .into_bytes()
}

#[derive(Default)]
struct Results {
    latencies_us: Vec<u64>,
    codes: std::collections::BTreeMap<u16, u64>,
    errors: u64,
}

fn run_thread(
    args: Args,
    tid: usize,
    next: Arc<AtomicU64>,
    out: Arc<Mutex<Results>>,
    start: Instant,
) {
    let total_requests = match args.total {
        Some(t) => t.div_ceil(args.per_body as u64),
        None if args.rate > 0.0 => (args.rate * args.seconds) as u64,
        None => u64::MAX,
    };
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let prefix = format!("{:x}-{tid}", now_ns());
    // `start` is a moment just ahead: the epoch time then.
    let epoch_ns_at_start = now_ns() + start.saturating_duration_since(Instant::now()).as_nanos();
    let (host, path) = split_url(&args.url);
    actix_rt::System::new().block_on(async move {
        let mut tasks = Vec::new();
        for _ in 0..args.connections.max(1) {
            let (args, next, out, prefix, host, path) = (
                args.clone(),
                next.clone(),
                out.clone(),
                prefix.clone(),
                host.clone(),
                path.clone(),
            );
            tasks.push(actix_rt::spawn(async move {
                let mut local = Results::default();
                let mut conn: Option<Conn> = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total_requests {
                        break;
                    }
                    let scheduled = if args.rate > 0.0 {
                        start + Duration::from_secs_f64(i as f64 / args.rate)
                    } else {
                        Instant::now()
                    };
                    if args.total.is_none() && scheduled >= deadline {
                        break;
                    }
                    // Where its latency counts from. A request whose connection was still
                    // busy when it was due counts from when it was due, so that a stall is not
                    // hidden (no coordinated omission). One whose connection was free counts
                    // from when it went out: the runtime's timer wakes on whole milliseconds,
                    // up to 1 ms after the due time, and that wait is the load tool's, not
                    // the system's.
                    let free_before_due = Instant::now() < scheduled;
                    actix_rt::time::sleep_until(scheduled.into()).await;
                    let origin = if free_before_due {
                        Instant::now()
                    } else {
                        scheduled
                    };
                    let sent_ns =
                        epoch_ns_at_start + origin.saturating_duration_since(start).as_nanos();
                    let alerts = (0..args.per_body as u64)
                        .map(|k| {
                            alert(&args.format, &prefix, i * args.per_body as u64 + k, sent_ns)
                        })
                        .collect();
                    let body = body(&args.format, alerts);
                    let mut request = format!(
                        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                        body.len()
                    );
                    if let Some(t) = &args.token {
                        request.push_str(&format!("Authorization: Bearer {t}\r\n"));
                    }
                    request.push_str("\r\n");
                    let mut request = request.into_bytes();
                    request.extend_from_slice(&body);
                    let c = match conn.take() {
                        Some(c) => c,
                        None => match Conn::open(&host).await {
                            Ok(c) => c,
                            Err(_) => {
                                local.errors += 1;
                                continue;
                            }
                        },
                    };
                    match c.exchange(&request).await {
                        Ok((c, status)) => {
                            *local.codes.entry(status).or_default() += 1;
                            local
                                .latencies_us
                                .push(origin.elapsed().as_micros() as u64);
                            conn = c;
                        }
                        Err(_) => local.errors += 1,
                    }
                }
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                o.latencies_us.extend(local.latencies_us);
                for (c, n) in local.codes {
                    *o.codes.entry(c).or_default() += n;
                }
                o.errors += local.errors;
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

/// `http://host:port/path` -> ("host:port", "/path").
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

/// One keep-alive HTTP/1.1 connection, spoken by hand (as wrk does) so that the load tool
/// costs the shared cores as little as possible: one write per request, and reads until the
/// answer's `Content-Length` is in.
struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(host: &str) -> std::io::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one request and reads its answer; gives the connection back unless the server
    /// closes it.
    async fn exchange(mut self, request: &[u8]) -> std::io::Result<(Option<Conn>, u16)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        self.stream.write_all(request).await?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).map_err(|_| bad("head"))?;
                let status: u16 = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("status"))?;
                let lower = head.to_ascii_lowercase();
                let length: usize = lower
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| bad("content-length"))?;
                let close = lower.contains("connection: close");
                while self.buf.len() < end + 4 + length {
                    let n = self.stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Err(bad("closed"));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                return Ok(((!close).then_some(self), status));
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn main() {
    let args = parse_args();
    let next = Arc::new(AtomicU64::new(0));
    let out = Arc::new(Mutex::new(Results::default()));
    let start = Instant::now() + Duration::from_millis(50);
    let mut per_thread = args.clone();
    per_thread.connections = args.connections.div_ceil(args.threads.max(1));
    let handles: Vec<_> = (0..args.threads.max(1))
        .map(|tid| {
            let (a, n, o) = (per_thread.clone(), next.clone(), out.clone());
            std::thread::spawn(move || run_thread(a, tid, n, o, start))
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let o = out.lock().unwrap_or_else(|e| e.into_inner());
    let mut lat = o.latencies_us.clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() as f64 - 1.0) * p).round() as usize] as f64 / 1_000.0
        }
    };
    let ok: u64 = o
        .codes
        .iter()
        .filter(|(c, _)| (200..300).contains(*c))
        .map(|(_, n)| n)
        .sum();
    println!(
        "{}",
        serde_json::json!({
            "requests": lat.len() as u64 + o.errors,
            "ok_requests": ok,
            "ok_alerts": ok * args.per_body as u64,
            "codes": o.codes.iter().map(|(c, n)| (c.to_string(), serde_json::Value::from(*n))).collect::<serde_json::Map<_, _>>(),
            "errors": o.errors,
            "seconds": elapsed,
            "ok_per_s": ok as f64 / elapsed,
            "alerts_per_s": (ok * args.per_body as u64) as f64 / elapsed,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": pct(1.0),
        })
    );
}
