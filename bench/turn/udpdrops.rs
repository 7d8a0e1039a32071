//! Where UDP datagrams were dropped over a run: the machine's receive-buffer overflows
//! (`RcvbufErrors` in `/proc/net/snmp`) and each loopback socket's `drops` column in
//! `/proc/net/udp`, split by who owns the port — the echo peer, the server's listening
//! port, the relay range, and the rest (uclient's sockets, gone once it exits, so counted as
//! the remainder). A packet uclient reports lost was dropped by one of them.

use std::collections::HashMap;

/// A reading of the counters.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    rcvbuf_errors: u64,
    /// Drops per local port (summed over sockets sharing a port).
    by_port: HashMap<u16, u64>,
}

/// Drops over a run, by owner.
#[derive(Debug, Clone, Copy, Default)]
pub struct Split {
    pub total: u64,
    pub peer: u64,
    pub server_listen: u64,
    pub relay: u64,
    /// `total` less the others: the load generator's sockets, and sockets closed meanwhile.
    pub other: u64,
}

fn rcvbuf_errors() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/net/snmp") else {
        return 0;
    };
    let mut lines = s.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn drops_by_port() -> HashMap<u16, u64> {
    let mut out = HashMap::new();
    let Ok(s) = std::fs::read_to_string("/proc/net/udp") else {
        return out;
    };
    for line in s.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(drops)) = (f.get(1), f.last()) else {
            continue;
        };
        let Some(port) = local
            .split_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
        else {
            continue;
        };
        if let Ok(d) = drops.parse::<u64>() {
            *out.entry(port).or_default() += d;
        }
    }
    out
}

impl Snapshot {
    pub fn take() -> Snapshot {
        Snapshot {
            rcvbuf_errors: rcvbuf_errors(),
            by_port: drops_by_port(),
        }
    }

    /// The drops since `self`, split by the ports' owners.
    pub fn split_since(
        &self,
        now: &Snapshot,
        peer_ports: &[u16],
        listen_port: u16,
        relay: (u16, u16),
    ) -> Split {
        let delta = |port: u16| {
            now.by_port
                .get(&port)
                .copied()
                .unwrap_or(0)
                .saturating_sub(self.by_port.get(&port).copied().unwrap_or(0))
        };
        let peer = peer_ports.iter().map(|&p| delta(p)).sum();
        let server_listen = delta(listen_port);
        let relay = now
            .by_port
            .keys()
            .filter(|&&p| (relay.0..=relay.1).contains(&p))
            .map(|&p| delta(p))
            .sum();
        let total = now.rcvbuf_errors.saturating_sub(self.rcvbuf_errors);
        Split {
            total,
            peer,
            server_listen,
            relay,
            other: total.saturating_sub(peer + server_listen + relay),
        }
    }
}
