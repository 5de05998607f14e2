//! Who may send to a source: `allow_from` (CIDRs) restricts the sender's address. Behind a
//! reverse proxy the sender is read from `X-Forwarded-For`, and only when the connection comes
//! from one of the source's `trusted_proxies` (anyone can write that header). Ingest checks it
//! on the headers, before a byte of the body is read.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use thiserror::Error;

/// Most `X-Forwarded-For` entries read (from the right, the end nearest to switchyard).
pub const DEFAULT_MAX_FORWARDED_HOPS: usize = 32;
/// Most entries of `allow_from` plus `trusted_proxies`.
pub const DEFAULT_MAX_CIDRS: usize = 1024;

/// Why a sender was refused (403).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SenderError {
    #[error("address {0} is not in this source's allow_from")]
    NotAllowed(IpAddr),
    #[error("the sender's address is unknown")]
    Unknown,
    #[error("X-Forwarded-For from a trusted proxy is unreadable: {0}")]
    Forwarded(String),
}

/// An address block, `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an address or CIDR block (e.g. 10.0.0.0/8)"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - prefix)
            }
        }
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// A source's `allow_from` and `trusted_proxies`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderFilter {
    allow: Vec<Cidr>,
    proxies: Vec<Cidr>,
}

impl SenderFilter {
    /// `None` when `allow_from` is empty (everyone may send).
    pub fn build(
        allow_from: &[String],
        trusted_proxies: &[String],
    ) -> Result<Option<Self>, String> {
        if allow_from.len() + trusted_proxies.len() > DEFAULT_MAX_CIDRS {
            return Err(format!(
                "allow_from and trusted_proxies: at most {DEFAULT_MAX_CIDRS} entries"
            ));
        }
        if allow_from.is_empty() {
            if !trusted_proxies.is_empty() {
                return Err("trusted_proxies: only read with allow_from".into());
            }
            return Ok(None);
        }
        let parse = |key: &str, list: &[String]| -> Result<Vec<Cidr>, String> {
            list.iter()
                .map(|s| Cidr::parse(s).map_err(|e| format!("{key}: {e}")))
                .collect()
        };
        Ok(Some(SenderFilter {
            allow: parse("allow_from", allow_from)?,
            proxies: parse("trusted_proxies", trusted_proxies)?,
        }))
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|c| c.contains(ip))
    }

    /// The sender's address: the connection's, or, when that is a trusted proxy, the last
    /// address in `X-Forwarded-For` that is not a trusted proxy itself.
    pub fn sender(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Result<IpAddr, SenderError> {
        let peer = peer.ok_or(SenderError::Unknown)?.to_canonical();
        if !self.trusted(peer) {
            return Ok(peer);
        }
        let mut hops: Vec<&str> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let value = value
                .to_str()
                .map_err(|_| SenderError::Forwarded("not visible ASCII".into()))?;
            hops.extend(value.split(',').map(str::trim).filter(|h| !h.is_empty()));
        }
        let mut sender = peer;
        for hop in hops.iter().rev().take(DEFAULT_MAX_FORWARDED_HOPS) {
            let ip = parse_hop(hop).ok_or_else(|| {
                SenderError::Forwarded(format!("`{}` is not an address", short(hop)))
            })?;
            sender = ip;
            if !self.trusted(ip) {
                break;
            }
        }
        Ok(sender)
    }

    /// Refuses a sender outside `allow_from`.
    pub fn check(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Result<(), SenderError> {
        let ip = self.sender(peer, headers)?;
        if self.allow.iter().any(|c| c.contains(ip)) {
            Ok(())
        } else {
            Err(SenderError::NotAllowed(ip))
        }
    }
}

/// An `X-Forwarded-For` entry: an address, an IPv4 address with a port, or `[v6]:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest
            .split_once(']')?
            .0
            .parse::<IpAddr>()
            .ok()
            .map(|i| i.to_canonical());
    }
    let (ip, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn filter(allow: &[&str], proxies: &[&str]) -> SenderFilter {
        let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        SenderFilter::build(&s(allow), &s(proxies))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.255.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("2001:db8::1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("192.0.2.7").unwrap().contains(ip("192.0.2.7")));
        assert!(!Cidr::parse("192.0.2.7").unwrap().contains(ip("192.0.2.8")));
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "::/129",
            "example.com",
            "10.0.0.0/x",
            "",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_connection_decides_without_trusted_proxies() {
        let f = filter(&["192.30.252.0/22"], &[]);
        assert_eq!(
            f.check(Some(ip("192.30.252.10")), &HeaderMap::new()),
            Ok(())
        );
        // X-Forwarded-For from an untrusted peer is not read.
        assert_eq!(
            f.check(Some(ip("203.0.113.9")), &xff(&["192.30.252.10"])),
            Err(SenderError::NotAllowed(ip("203.0.113.9")))
        );
        assert_eq!(f.check(None, &HeaderMap::new()), Err(SenderError::Unknown));
    }

    #[test]
    fn forwarded_for_is_read_from_trusted_proxies_only() {
        let f = filter(&["192.30.252.0/22"], &["10.0.0.0/8"]);
        let proxy = Some(ip("10.0.0.5"));
        assert_eq!(f.check(proxy, &xff(&["192.30.252.10"])), Ok(()));
        // The right-most address that is not a trusted proxy: a forged left part is skipped.
        assert_eq!(
            f.check(proxy, &xff(&["192.30.252.10, 203.0.113.9, 10.0.0.7"])),
            Err(SenderError::NotAllowed(ip("203.0.113.9")))
        );
        assert_eq!(
            f.check(proxy, &xff(&["203.0.113.9", "192.30.252.10:443"])),
            Ok(())
        );
        // A proxy that forwards no X-Forwarded-For: the proxy itself is the sender.
        assert_eq!(
            f.check(proxy, &HeaderMap::new()),
            Err(SenderError::NotAllowed(ip("10.0.0.5")))
        );
        assert!(matches!(
            f.check(proxy, &xff(&["not-an-ip"])),
            Err(SenderError::Forwarded(_))
        ));
        assert_eq!(
            f.check(proxy, &xff(&["[2001:db8::1]:443"])),
            Err(SenderError::NotAllowed(ip("2001:db8::1")))
        );
    }

    #[test]
    fn build_rules() {
        assert_eq!(SenderFilter::build(&[], &[]), Ok(None));
        assert!(SenderFilter::build(&[], &["10.0.0.0/8".into()])
            .unwrap_err()
            .contains("only read with allow_from"));
        assert!(SenderFilter::build(&["x".into()], &[])
            .unwrap_err()
            .starts_with("allow_from: "));
        assert!(SenderFilter::build(&["10.0.0.0/8".into()], &["y".into()])
            .unwrap_err()
            .starts_with("trusted_proxies: "));
    }
}
