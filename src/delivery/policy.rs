//! Which addresses deliveries may reach (`server.endpoint_policy`), checked on the address
//! every attempt connects to: a name is resolved by [`PolicyResolver`] (the connector's own
//! resolver, so the address checked is the address connected to and DNS cannot route around
//! it), an address written in the URL is checked by [`AddressPolicy::check_url`] before the
//! request. The cloud metadata addresses are refused always; loopback, private, link-local and
//! unique-local ranges with `deny_private`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use futures_util::future::LocalBoxFuture;

/// The metadata services of cloud instances, refused whatever the policy.
pub const METADATA_ADDRESSES: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// What deliveries may connect to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Refuse loopback, private, link-local, unique-local and unspecified addresses.
    pub deny_private: bool,
}

impl AddressPolicy {
    /// Why `ip` may not be reached, if it may not.
    pub fn refuses(&self, ip: IpAddr) -> Option<String> {
        // An IPv4 address written as IPv6 (::ffff:a.b.c.d) is that IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if METADATA_ADDRESSES.contains(&ip) {
            return Some(format!("{ip} is a cloud metadata address (always refused)"));
        }
        if !self.deny_private {
            return None;
        }
        let private = match ip {
            IpAddr::V4(v4) => {
                v4.is_loopback()
                    || v4.is_private()
                    || v4.is_link_local()
                    || v4.is_unspecified()
                    || v4.is_broadcast()
                    // Carrier-grade NAT, 100.64.0.0/10: another operator's private space.
                    || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
            }
            IpAddr::V6(v6) => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                    || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local fe80::/10
            }
        };
        private.then(|| {
            format!("{ip} is a private, loopback or link-local address (server.endpoint_policy.deny_private)")
        })
    }

    /// The check of a URL whose host is an address (names are checked when resolved).
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let Some(host) = url_host(url) else {
            return Ok(());
        };
        match host.parse::<IpAddr>() {
            Ok(ip) => match self.refuses(ip) {
                Some(why) => Err(format!("refused by the endpoint policy: {why}")),
                None => Ok(()),
            },
            Err(_) => Ok(()),
        }
    }
}

/// The host of `scheme://[user@]host[:port]/...`, without IPv6 brackets.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit('@').next()?;
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split(']').next();
    }
    Some(hostport.rsplit_once(':').map_or(hostport, |(h, _)| h))
}

/// The resolver of the deliveries' connector: the system's lookup, then the policy on every
/// address found (one refused address refuses the name: a name that resolves to both a
/// public and a private address is a DNS rebinding attempt or a mistake).
#[derive(Debug, Clone, Copy)]
pub struct PolicyResolver(pub AddressPolicy);

impl actix_tls::connect::Resolve for PolicyResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            for a in &addrs {
                if let Some(why) = self.0.refuses(a.ip()) {
                    return Err(format!("{host}: refused by the endpoint policy: {why}").into());
                }
            }
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_tls::connect::Resolve;

    #[test]
    fn metadata_is_refused_always_and_private_ranges_with_deny_private() {
        let open = AddressPolicy::default();
        let strict = AddressPolicy { deny_private: true };
        for ip in ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(open.refuses(ip).is_some(), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(open.refuses(ip).is_none(), "{ip} allowed by default");
            assert!(
                strict.refuses(ip).is_some(),
                "{ip} refused with deny_private"
            );
        }
        for ip in ["8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(strict.refuses(ip.parse().unwrap()).is_none(), "{ip}");
        }
        assert!(strict.check_url("http://10.0.0.1:8080/x").is_err());
        assert!(strict.check_url("https://[::1]/x").is_err());
        assert!(open
            .check_url("http://169.254.169.254/latest/meta-data")
            .is_err());
        assert!(strict.check_url("https://example.com/x").is_ok());
    }

    #[actix_rt::test]
    async fn names_are_checked_on_the_addresses_they_resolve_to() {
        let strict = PolicyResolver(AddressPolicy { deny_private: true });
        let e = strict
            .lookup("localhost", 80)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("refused by the endpoint policy"), "{e}");
        let open = PolicyResolver(AddressPolicy::default());
        assert!(!open.lookup("localhost", 80).await.unwrap().is_empty());
    }
}
