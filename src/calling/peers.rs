//! Which peer addresses an allocation may relay to (RFC 8656 §21.1, PRODUCT.md F7).
//!
//! By default the relay refuses peers it must never reach on a client's behalf: the
//! unspecified, loopback, link-local (which holds the cloud metadata address
//! 169.254.169.254), multicast and broadcast ranges, the IPv6 forms of those and the
//! AWS IPv6 metadata address; and the appliance's own service sockets (its HTTPS and
//! TURN listeners). `calling.peer_allow` re-opens chosen networks, `calling.peer_deny`
//! closes more, and `calling.allow_loopback_peers` opens loopback (tests, one-host setups).
//! Peers on the relay's own relay ports stay allowed: that is how two callers on the same
//! appliance reach each other.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// Networks refused unless `peer_allow` lists them.
const DENIED_BY_DEFAULT: &[&str] = &[
    "0.0.0.0/8",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "fe80::/10",
    "ff00::/8",
    "fd00:ec2::254/128",
    "::ffff:0:0/96",
];

/// Loopback networks, refused unless `allow_loopback_peers`.
const LOOPBACK: &[&str] = &["127.0.0.0/8", "::1/128"];

/// The peer policy of one appliance.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    /// Built-in refusals, which `allowed` may re-open.
    builtin: Vec<IpNet>,
    /// The site's own refusals, which nothing re-opens.
    site_denied: Vec<IpNet>,
    allowed: Vec<IpNet>,
    /// The appliance's own service sockets, never a peer.
    own_services: Vec<SocketAddr>,
}

/// Why a peer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The address is in a denied network.
    Address,
    /// The address and port are one of the appliance's own services.
    OwnService,
}

impl PeerPolicy {
    pub fn new(allow_loopback: bool, allow: &[IpNet], deny: &[IpNet]) -> PeerPolicy {
        let parse = |s: &&str| s.parse::<IpNet>().expect("static network");
        let mut builtin: Vec<IpNet> = DENIED_BY_DEFAULT.iter().map(parse).collect();
        if !allow_loopback {
            builtin.extend(LOOPBACK.iter().map(parse));
        }
        PeerPolicy {
            builtin,
            site_denied: deny.to_vec(),
            allowed: allow.to_vec(),
            own_services: Vec::new(),
        }
    }

    /// Adds one of the appliance's listening sockets (HTTPS, STUN/TURN) to the refused set.
    pub fn add_own_service(&mut self, addr: SocketAddr) {
        self.own_services.push(addr);
    }

    /// Whether a permission for `ip` may be installed (permissions carry no port).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Denied> {
        let ip = canonical(ip);
        if self.site_denied.iter().any(|n| n.contains(&ip)) {
            return Err(Denied::Address);
        }
        if self.builtin.iter().any(|n| n.contains(&ip))
            && !self.allowed.iter().any(|n| n.contains(&ip))
        {
            return Err(Denied::Address);
        }
        Ok(())
    }

    /// Whether data may be sent to `peer` (address and port).
    pub fn check(&self, peer: SocketAddr) -> Result<(), Denied> {
        self.check_ip(peer.ip())?;
        let peer = SocketAddr::new(canonical(peer.ip()), peer.port());
        let hits_own = self.own_services.iter().any(|s| {
            s.port() == peer.port()
                && (s.ip() == peer.ip()
                    || (s.ip().is_unspecified() && s.is_ipv4() == peer.is_ipv4()))
        });
        if hits_own {
            return Err(Denied::OwnService);
        }
        Ok(())
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_defaults_refuse_internal_and_metadata_addresses() {
        let p = PeerPolicy::new(false, &[], &[]);
        for bad in [
            "127.0.0.1",
            "127.9.9.9",
            "0.0.0.0",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "ff02::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(p.check_ip(ip(bad)), Err(Denied::Address), "{bad}");
        }
        for good in ["192.0.2.10", "10.1.2.3", "2001:db8::1", "198.51.100.7"] {
            assert_eq!(p.check_ip(ip(good)), Ok(()), "{good}");
        }
    }

    #[test]
    fn loopback_can_be_allowed_and_lists_apply() {
        let p = PeerPolicy::new(
            true,
            &["169.254.10.0/24".parse().unwrap()],
            &["10.0.0.0/8".parse().unwrap()],
        );
        assert_eq!(p.check_ip(ip("127.0.0.1")), Ok(()));
        assert_eq!(p.check_ip(ip("169.254.10.5")), Ok(()));
        assert_eq!(p.check_ip(ip("169.254.169.254")), Err(Denied::Address));
        assert_eq!(p.check_ip(ip("10.9.8.7")), Err(Denied::Address));
        let strict = PeerPolicy::new(false, &[], &["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(strict.check_ip(ip("10.9.8.7")), Err(Denied::Address));
        assert_eq!(strict.check_ip(ip("127.0.0.1")), Err(Denied::Address));
        // An allow does not re-open what the site denied explicitly.
        let both = PeerPolicy::new(
            false,
            &["10.0.0.0/8".parse().unwrap()],
            &["10.0.0.0/8".parse().unwrap()],
        );
        assert_eq!(both.check_ip(ip("10.1.1.1")), Err(Denied::Address));
    }

    #[test]
    fn the_appliance_own_services_are_refused_but_not_its_relay_ports() {
        let mut p = PeerPolicy::new(true, &[], &[]);
        p.add_own_service("127.0.0.1:8443".parse().unwrap());
        p.add_own_service("0.0.0.0:3478".parse().unwrap());
        assert_eq!(
            p.check("127.0.0.1:8443".parse().unwrap()),
            Err(Denied::OwnService)
        );
        assert_eq!(
            p.check("127.0.0.5:3478".parse().unwrap()),
            Err(Denied::OwnService)
        );
        assert_eq!(p.check("127.0.0.1:16400".parse().unwrap()), Ok(()));
        assert_eq!(p.check("[::1]:3478".parse().unwrap()), Ok(()));
    }
}
