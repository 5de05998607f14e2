//! A fast webhook receiver for the load harness (scripts/bench.sh): answers 200 at once,
//! counts every delivery, counts duplicates (the same alert notified twice), and measures the
//! end-to-end latency of each alert from the `sent_ns` label the load generator put on it
//! (nanoseconds since the epoch, same machine, same clock) to its arrival here.
//!
//! It reads both switchyard's webhook body (`data.incident.labels`) and Alertmanager's
//! (`alerts[].labels`), so one receiver serves both sides of the comparison.
//!
//! `GET /stats` answers `{"requests", "alerts", "unique", "duplicates", "p50_ms", "p99_ms",
//! "max_ms", "last_arrival_lag_ms", "worst_ms_by_second"}` (the last: the worst latency of the
//! alerts sent in each second of the run); `POST /reset` forgets everything. Any other request
//! with a JSON body is a delivery.
//!
//! It shares the two cores with the systems it measures, so it speaks HTTP/1.1 by hand on one
//! thread (keep-alive, pipelining, `Content-Length` bodies; both switchyard's client and
//! Alertmanager's send those), parses only the fields it counts, and answers every request
//! read in one go with one write. A chunked body is refused (400, connection closed), which
//! shows up in the sender's failure counts.
//!
//! Run: `cargo run --release --example bench_receiver -- 127.0.0.1:9100`

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest request the receiver takes (head and body); a bigger one closes the connection.
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Alerts the receiver makes room for up front: growing its set of seen alerts at a million
/// entries would pause it for tens of milliseconds, and the sender's deliveries with it,
/// which would be charged to the system under test.
const EXPECTED_ALERTS: usize = 4 << 20;

struct Stats {
    requests: u64,
    alerts: u64,
    /// A 64-bit hash of (event type or status, `instance` label) per alert seen.
    seen: HashSet<u64>,
    duplicates: u64,
    latencies_us: Vec<u64>,
    /// When the first alert measured was sent (ns since the epoch).
    first_sent_ns: Option<u128>,
    /// The worst latency of the alerts sent in each second after the first one: where in a
    /// run a stall happened.
    worst_us_by_second: Vec<u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            requests: 0,
            alerts: 0,
            seen: HashSet::with_capacity(EXPECTED_ALERTS),
            duplicates: 0,
            latencies_us: Vec::with_capacity(EXPECTED_ALERTS),
            first_sent_ns: None,
            worst_us_by_second: Vec::new(),
        }
    }
}

/// The identity of one notified alert.
fn alert_key(kind: &str, instance: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (kind, instance).hash(&mut h);
    h.finish()
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The parts of a body the receiver reads, borrowed from it: a switchyard event (`type`,
/// `data.incident.labels`) or an Alertmanager notification (`status`, `alerts[].labels`).
/// Everything else is skipped without being built.
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

impl Stats {
    /// Counts one delivery; false when the body is not one this receiver reads.
    fn receive(&mut self, body: &[u8], arrived: u128) -> bool {
        let Ok(parsed) = serde_json::from_slice::<Body>(body) else {
            return false;
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
        self.requests += 1;
        for labels in sets {
            self.alerts += 1;
            if !self.seen.insert(alert_key(kind, &labels.instance)) {
                self.duplicates += 1;
                continue;
            }
            if let Some(sent) = labels
                .sent_ns
                .as_deref()
                .and_then(|v| v.parse::<u128>().ok())
            {
                let us = (arrived.saturating_sub(sent) / 1_000) as u64;
                self.latencies_us.push(us);
                let first = *self.first_sent_ns.get_or_insert(sent);
                let second = (sent.saturating_sub(first) / 1_000_000_000) as usize;
                if second < 3_600 {
                    if self.worst_us_by_second.len() <= second {
                        self.worst_us_by_second.resize(second + 1, 0);
                    }
                    let w = &mut self.worst_us_by_second[second];
                    *w = (*w).max(us);
                }
            }
        }
        true
    }

    fn summary(&self) -> String {
        let mut lat = self.latencies_us.clone();
        lat.sort_unstable();
        serde_json::json!({
            "requests": self.requests,
            "alerts": self.alerts,
            "unique": self.seen.len(),
            "duplicates": self.duplicates,
            "p50_ms": percentile(&lat, 0.50),
            "p99_ms": percentile(&lat, 0.99),
            "max_ms": percentile(&lat, 1.0),
            "last_arrival_lag_ms": self.latencies_us.last().map(|&us| us as f64 / 1_000.0).unwrap_or(0.0),
            "worst_ms_by_second": self.worst_us_by_second.iter().map(|&us| (us / 100) as f64 / 10.0).collect::<Vec<_>>(),
        })
        .to_string()
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1_000.0
}

/// One request's head, as far as the receiver needs it.
struct Head {
    /// Bytes of the head, the blank line included.
    len: usize,
    method_get: bool,
    path_stats: bool,
    path_reset: bool,
    content_length: usize,
    chunked: bool,
    close: bool,
}

/// Parses the head at the start of `buf`; `None` until all of it is in.
fn parse_head(buf: &[u8]) -> Option<Head> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = &buf[..end];
    let mut lines = head.split(|&b| b == b'\n');
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let mut h = Head {
        len: end + 4,
        method_get: method == b"GET",
        path_stats: path == b"/stats",
        path_reset: path == b"/reset",
        content_length: 0,
        chunked: false,
        close: false,
    };
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let value = std::str::from_utf8(&line[colon + 1..])
            .unwrap_or_default()
            .trim();
        if name.eq_ignore_ascii_case(b"content-length") {
            h.content_length = value.parse().unwrap_or(usize::MAX);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            h.chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            h.close = value.eq_ignore_ascii_case("close");
        }
    }
    Some(h)
}

fn respond(out: &mut Vec<u8>, status: &str, body: &str) {
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

async fn serve(mut stream: tokio::net::TcpStream, stats: Rc<RefCell<Stats>>) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let arrived = now_ns();
        let mut used = 0;
        let mut close = false;
        // Every complete request in the buffer (a client may pipeline).
        while let Some(head) = parse_head(&buf[used..]) {
            if head.chunked || head.len + head.content_length > MAX_REQUEST_BYTES {
                respond(&mut out, "400 Bad Request", "");
                close = true;
                break;
            }
            let total = head.len + head.content_length;
            if buf.len() - used < total {
                break;
            }
            let body = &buf[used + head.len..used + total];
            if head.method_get && head.path_stats {
                respond(&mut out, "200 OK", &stats.borrow().summary());
            } else if head.path_reset {
                *stats.borrow_mut() = Stats::default();
                respond(&mut out, "200 OK", "");
            } else if stats.borrow_mut().receive(body, arrived) {
                respond(&mut out, "200 OK", "");
            } else {
                respond(&mut out, "400 Bad Request", "");
            }
            used += total;
            if head.close {
                close = true;
                break;
            }
        }
        buf.drain(..used);
        if buf.len() > MAX_REQUEST_BYTES {
            return;
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if close {
            return;
        }
    }
}

/// The receiver's listen backlog: more than the connections a switchyard endpoint opens at
/// once, so none of its connects waits for a SYN retransmission.
const DEFAULT_LISTEN_BACKLOG: u32 = 4096;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9100".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        // A listen backlog above the connections a switchyard endpoint opens at once (256):
        // with the default 128, the first burst of connects overflowed the accept queue and
        // each dropped SYN came back a second later (TCP's first retransmission), which the
        // bench showed as a 1 s delivery.
        let addr: std::net::SocketAddr = addr
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(DEFAULT_LISTEN_BACKLOG)?;
        let stats = Rc::new(RefCell::new(Stats::default()));
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::task::spawn_local(serve(stream, stats.clone()));
        }
    })
}
