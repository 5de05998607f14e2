//! The parts of the CLI beside `serve`: `route-test` (`runtime::route_test`, which the
//! console runs too; with routes.yaml's silences, at `--at`) and `health`, which asks a
//! running switchyard's `/healthz`.

use thiserror::Error;

pub use crate::runtime::route_test::{HoldContext, RouteTestError, RouteTestReport};
use crate::runtime::Runtime;

/// `switchyard route-test`: [`crate::runtime::route_test::route_test`] on the config file's
/// sources and routes.
pub fn route_test(
    rt: &Runtime,
    at: Option<chrono::DateTime<chrono::Utc>>,
    source: &str,
    body: &[u8],
    expect: Option<&[String]>,
) -> Result<RouteTestReport, RouteTestError> {
    let ctx = HoldContext {
        at: at.unwrap_or_else(chrono::Utc::now),
        silences: rt.silences.clone(),
        inhibit_rules: rt.inhibit_rules.clone(),
    };
    crate::runtime::route_test::route_test(&rt.sources, &rt.routes, &ctx, source, body, expect)
}

/// How long `switchyard health` waits to connect, and then for the answer.
pub const DEFAULT_HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Why `switchyard health` found no healthy switchyard.
#[derive(Debug, Error)]
pub enum HealthError {
    #[error("`{0}` is not an address (host:port)")]
    Address(String),
    #[error("{addr}: {source}")]
    Io {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr}: /healthz answered `{status}`")]
    Status {
        addr: std::net::SocketAddr,
        status: String,
    },
}

/// GETs `/healthz` on `listen` (a wildcard address means this host) with plain HTTP/1.1;
/// Ok when it answers 200.
pub fn health(listen: &str) -> Result<(), HealthError> {
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
    let mut addr: SocketAddr = listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| HealthError::Address(listen.to_string()))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let io = |source| HealthError::Io { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, DEFAULT_HEALTH_TIMEOUT).map_err(io)?;
    stream
        .set_read_timeout(Some(DEFAULT_HEALTH_TIMEOUT))
        .map_err(io)?;
    stream
        .set_write_timeout(Some(DEFAULT_HEALTH_TIMEOUT))
        .map_err(io)?;
    stream
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .map_err(io)?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(io)?;
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line.lines().next().unwrap_or("").to_string();
    if status.split(' ').nth(1) == Some("200") {
        Ok(())
    } else {
        Err(HealthError::Status { addr, status })
    }
}
