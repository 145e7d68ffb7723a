//! Where an HTTP connection may reach. By default only public addresses: loopback,
//! private (RFC 1918, unique-local), link-local (which holds the cloud metadata
//! endpoints), carrier-grade NAT, multicast and unspecified addresses are refused,
//! both when the URL names one and when its name resolves to one (the check runs on
//! the addresses actually connected to, so DNS rebinding does not get around it).
//! A connection to an on-premises app or a test server says `allow_private_network`.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Carrier-grade NAT (100.64.0.0/10) and benchmarking (198.18.0.0/15).
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique-local fc00::/7 (also AWS's fd00:ec2::254 metadata), link-local fe80::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // NAT64 well-known prefix could reach any IPv4 address, private ones included.
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)
        // Documentation 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// Whether a URL names this machine (`localhost` or a loopback address).
pub fn is_loopback_url(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// Why a URL's literal address is refused, if it is.
pub fn check_literal(url: &url::Url) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(format!(
            "{ip} is a loopback, private, link-local or metadata address; set allow_private_network = true \
             on the connection to reach it"
        ))
    }
}

/// A name refused because it resolves only to addresses the connection may not reach.
#[derive(Debug, thiserror::Error)]
#[error(
    "{host} resolves only to non-public addresses ({addresses}); set allow_private_network = true on the \
     connection to reach it"
)]
pub struct Refused {
    pub host: String,
    pub addresses: String,
}

/// A resolver that hands the client only public addresses.
#[derive(Debug, Default)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.iter().copied().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let shown: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
                return Err(Box::new(Refused {
                    host,
                    addresses: shown.join(", "),
                }) as _);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "140.82.112.3", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn a_literal_address_is_checked_and_a_name_is_left_to_the_resolver() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        assert!(check_literal(&url("http://169.254.169.254/latest/meta-data")).is_err());
        assert!(check_literal(&url("https://[::1]:8443/")).is_err());
        assert!(check_literal(&url("https://93.184.215.14/")).is_ok());
        assert!(check_literal(&url("https://api.lever.co/v1")).is_ok());
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_to_loopback_is_refused() {
        let err = PublicOnly
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("non-public"), "{err}");
    }
}
