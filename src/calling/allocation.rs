//! One TURN allocation (RFC 8656 §2.2): who holds it, where its client is, its relayed
//! address, and the state the data path reads on every packet — lifetime, permissions,
//! channel bindings and the bandwidth budget.
//!
//! The data path takes the allocation's small mutex once per packet; only the two
//! directions of the same allocation ever contend for it.

use super::turn::{CHANNEL_LIFETIME_SECS, PERMISSION_LIFETIME_SECS};
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// How a client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// Over a stream, ChannelData frames are padded to a multiple of 4 (RFC 8656 §12.5).
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }
}

/// The client side of an allocation: transport, client address and server address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    pub transport: Transport,
    pub client: SocketAddr,
    pub server: SocketAddr,
}

/// Where packets for the client go.
#[derive(Debug, Clone)]
pub enum ClientPath {
    /// Sent from the listening socket the client talks to.
    Udp(Arc<UdpSocket>),
    /// Handed to the connection's writer; a full queue drops the packet, as UDP would.
    Stream(mpsc::Sender<Bytes>),
}

/// A channel binding.
#[derive(Debug, Clone, Copy)]
pub struct Channel {
    pub number: u16,
    pub peer: SocketAddr,
    pub expires: Instant,
}

/// Why a packet was not relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// No live permission for the peer's address.
    NoPermission,
    /// No live binding for the channel number.
    NoChannel,
    /// Over the allocation's bandwidth cap.
    Bandwidth,
    /// The allocation expired or was removed.
    Gone,
}

/// A token bucket in bytes: one second's worth of burst.
#[derive(Debug)]
struct Budget {
    per_sec: u64,
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn take(&mut self, bytes: usize, now: Instant) -> bool {
        if self.per_sec == 0 {
            return true;
        }
        let cap = self.per_sec as f64;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * cap).min(cap);
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }
}

/// A channel number bound to another peer, or a peer bound to another number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindConflict;

/// What changes during an allocation's life.
#[derive(Debug)]
pub struct State {
    pub expires: Instant,
    /// Peer addresses with a permission and when it expires (a handful per allocation).
    pub permissions: Vec<(IpAddr, Instant)>,
    pub channels: Vec<Channel>,
    /// The transaction id and response of the last successful request, answered again
    /// to a retransmission (RFC 8656 §7.2, and idempotent Refresh/CreatePermission).
    pub last_response: Option<([u8; 12], Vec<u8>)>,
    budget: Budget,
    pub removed: bool,
}

/// Packet and byte counts of one allocation, by direction.
#[derive(Debug, Default)]
pub struct Counters {
    pub to_peer_packets: AtomicU64,
    pub to_peer_bytes: AtomicU64,
    pub to_client_packets: AtomicU64,
    pub to_client_bytes: AtomicU64,
}

impl Counters {
    pub fn total_bytes(&self) -> u64 {
        self.to_peer_bytes.load(Ordering::Relaxed) + self.to_client_bytes.load(Ordering::Relaxed)
    }
}

/// One allocation.
#[derive(Debug)]
pub struct Allocation {
    pub id: u64,
    pub five: FiveTuple,
    pub path: ClientPath,
    pub user_id: Arc<str>,
    /// The TURN username it was created with; later requests must use the same.
    pub username: Box<str>,
    /// The long-term credential key (MD5 of username:realm:password).
    pub key: [u8; 16],
    /// The relayed transport address given to the client.
    pub relayed: SocketAddr,
    /// Index of its relay socket in the registry's port list.
    pub port: usize,
    /// The call this allocation belongs to.
    pub call: Arc<str>,
    pub created: Instant,
    pub counters: Counters,
    state: Mutex<State>,
}

impl Allocation {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        five: FiveTuple,
        path: ClientPath,
        user_id: Arc<str>,
        username: &str,
        key: [u8; 16],
        relayed: SocketAddr,
        port: usize,
        call: Arc<str>,
        lifetime: Duration,
        bandwidth_per_sec: u64,
    ) -> Allocation {
        let now = Instant::now();
        Allocation {
            id,
            five,
            path,
            user_id,
            username: username.into(),
            key,
            relayed,
            port,
            call,
            created: now,
            counters: Counters::default(),
            state: Mutex::new(State {
                expires: now + lifetime,
                permissions: Vec::new(),
                channels: Vec::new(),
                last_response: None,
                budget: Budget {
                    per_sec: bandwidth_per_sec,
                    tokens: bandwidth_per_sec as f64,
                    at: now,
                },
                removed: false,
            }),
        }
    }

    /// The mutable state (a poisoned lock is recovered: the state stays consistent
    /// between statements).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Client → peer through a channel: the peer, if the packet may go.
    pub fn outbound_channel(
        &self,
        number: u16,
        len: usize,
        now: Instant,
    ) -> Result<SocketAddr, Drop> {
        let mut s = self.state();
        s.alive(now)?;
        let peer = s
            .channels
            .iter()
            .find(|c| c.number == number && c.expires > now)
            .map(|c| c.peer)
            .ok_or(Drop::NoChannel)?;
        s.admit(peer, len, now)?;
        Ok(peer)
    }

    /// Client → peer in a Send indication: whether the packet may go.
    pub fn outbound_send(&self, peer: SocketAddr, len: usize, now: Instant) -> Result<(), Drop> {
        let mut s = self.state();
        s.alive(now)?;
        s.admit(peer, len, now)
    }

    /// Peer → client: the channel to use (None = a Data indication), if it may go.
    pub fn inbound(&self, peer: SocketAddr, len: usize, now: Instant) -> Result<Option<u16>, Drop> {
        let mut s = self.state();
        s.alive(now)?;
        s.admit(peer, len, now)?;
        Ok(s.channels
            .iter()
            .find(|c| c.peer == peer && c.expires > now)
            .map(|c| c.number))
    }

    /// Whether this allocation has a live channel to exactly `peer` (used to pick among
    /// allocations that share a relay port and a peer address).
    pub fn has_channel_to(&self, peer: SocketAddr, now: Instant) -> bool {
        self.state()
            .channels
            .iter()
            .any(|c| c.peer == peer && c.expires > now)
    }
}

impl State {
    /// Err unless the allocation is still alive.
    fn alive(&self, now: Instant) -> Result<(), Drop> {
        if self.removed || self.expires <= now {
            Err(Drop::Gone)
        } else {
            Ok(())
        }
    }

    /// A packet of `len` bytes to or from `peer`: it needs a permission and the budget.
    fn admit(&mut self, peer: SocketAddr, len: usize, now: Instant) -> Result<(), Drop> {
        if !self.permitted(peer.ip(), now) {
            return Err(Drop::NoPermission);
        }
        if !self.budget.take(len, now) {
            return Err(Drop::Bandwidth);
        }
        Ok(())
    }

    pub fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.iter().any(|(p, e)| *p == ip && *e > now)
    }

    /// Installs or refreshes a permission; returns true if it is new.
    pub fn permit(&mut self, ip: IpAddr, now: Instant) -> bool {
        let until = now + Duration::from_secs(u64::from(PERMISSION_LIFETIME_SECS));
        match self.permissions.iter_mut().find(|(p, _)| *p == ip) {
            Some(entry) => {
                entry.1 = until;
                false
            }
            None => {
                self.permissions.push((ip, until));
                true
            }
        }
    }

    /// Binds or refreshes a channel. Err if the number or the peer is bound otherwise.
    pub fn bind(
        &mut self,
        number: u16,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<(), BindConflict> {
        let until = now + Duration::from_secs(u64::from(CHANNEL_LIFETIME_SECS));
        // An expired binding keeps its number and peer for 5 more minutes (RFC 8656
        // §12), so a conflicting rebind is refused even then.
        for c in &mut self.channels {
            match (c.number == number, c.peer == peer) {
                (true, true) => {
                    c.expires = until;
                    return Ok(());
                }
                (true, false) | (false, true) => return Err(BindConflict),
                _ => {}
            }
        }
        self.channels.push(Channel {
            number,
            peer,
            expires: until,
        });
        Ok(())
    }

    /// Drops expired permissions and long-expired channels; returns the addresses whose
    /// permission ended.
    pub fn prune(&mut self, now: Instant) -> Vec<IpAddr> {
        let grace = Duration::from_secs(300);
        self.channels.retain(|c| c.expires + grace > now);
        let mut gone = Vec::new();
        self.permissions.retain(|(ip, e)| {
            let keep = *e > now;
            if !keep {
                gone.push(*ip);
            }
            keep
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(bandwidth: u64) -> Allocation {
        let five = FiveTuple {
            transport: Transport::Tcp,
            client: "192.0.2.1:5000".parse().unwrap(),
            server: "192.0.2.9:3478".parse().unwrap(),
        };
        let (tx, _rx) = mpsc::channel(1);
        Allocation::new(
            1,
            five,
            ClientPath::Stream(tx),
            "u".into(),
            "1:u",
            [0; 16],
            "192.0.2.9:16384".parse().unwrap(),
            0,
            "call".into(),
            Duration::from_secs(600),
            bandwidth,
        )
    }

    #[test]
    fn packets_need_a_permission_and_channels_a_binding() {
        let a = alloc(0);
        let now = Instant::now();
        let peer: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        assert_eq!(a.outbound_send(peer, 10, now), Err(Drop::NoPermission));
        assert_eq!(a.inbound(peer, 10, now), Err(Drop::NoPermission));
        assert!(a.state().permit(peer.ip(), now));
        assert_eq!(a.outbound_send(peer, 10, now), Ok(()));
        assert_eq!(a.inbound(peer, 10, now), Ok(None));
        assert_eq!(a.outbound_channel(0x4000, 10, now), Err(Drop::NoChannel));
        a.state().bind(0x4000, peer, now).unwrap();
        assert_eq!(a.outbound_channel(0x4000, 10, now), Ok(peer));
        assert_eq!(a.inbound(peer, 10, now), Ok(Some(0x4000)));
        // The same number for another peer, or another number for the same peer: refused.
        let other: SocketAddr = "198.51.100.8:4000".parse().unwrap();
        assert!(a.state().bind(0x4000, other, now).is_err());
        assert!(a.state().bind(0x4001, peer, now).is_err());
        // Permissions end after 5 minutes.
        let later = now + Duration::from_secs(301);
        assert_eq!(a.outbound_send(peer, 10, later), Err(Drop::NoPermission));
        assert_eq!(a.state().prune(later), vec![peer.ip()]);
    }

    #[test]
    fn the_bandwidth_cap_refills_each_second() {
        let a = alloc(1000);
        let now = Instant::now();
        let peer: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        a.state().permit(peer.ip(), now);
        assert_eq!(a.outbound_send(peer, 600, now), Ok(()));
        assert_eq!(a.inbound(peer, 600, now), Err(Drop::Bandwidth));
        let later = now + Duration::from_millis(700);
        assert_eq!(a.inbound(peer, 600, later), Ok(None));
    }

    #[test]
    fn an_expired_allocation_relays_nothing() {
        let a = alloc(0);
        let now = Instant::now();
        let peer: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        a.state().permit(peer.ip(), now);
        let later = now + Duration::from_secs(601);
        assert_eq!(a.outbound_send(peer, 1, later), Err(Drop::Gone));
    }
}
