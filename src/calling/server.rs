//! The TURN server's assembly: binding the relay range and the listeners, the shared
//! state every packet path reads ([`Turn`]), and the background work — expiring
//! allocations, permissions and channels, and tearing down the allocations of users who
//! may no longer call (suspended, deleted, calling turned off, TCP required).

use super::allocation::{Allocation, FiveTuple, Transport};
use super::calls::Calls;
use super::nonce::Nonces;
use super::peers::PeerPolicy;
use super::registry::{Registry, RelayPort};
use super::secrets::SecretKeeper;
use crate::config::{CallingConfig, Config};
use crate::metrics::calling as m;
use crate::relay::Relay;
use crate::store::Store;
use anyhow::{Context, Result};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UdpSocket};

/// The SOFTWARE attribute of authenticated answers.
const SOFTWARE: &str = concat!("outpost ", env!("CARGO_PKG_VERSION"));

/// The TURN server's shared state.
pub struct Turn {
    pub config: CallingConfig,
    pub realm: String,
    /// The appliance's first host name (ICE URLs for wildcard listeners).
    hostname: String,
    pub registry: Registry,
    pub nonces: Nonces,
    pub secrets: SecretKeeper,
    pub peers: PeerPolicy,
    pub calls: Calls,
    pub(super) relay: Arc<Relay>,
    pub(super) limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// What clients are told to connect to (filled in when the listeners are bound).
    pub bound: Bound,
    /// TLS for the TURN-over-TLS listeners.
    pub(super) tls: tokio_rustls::TlsAcceptor,
    pub(super) traffic: super::datapath::Traffic,
}

/// The addresses the listeners bound.
#[derive(Debug, Clone, Default)]
pub struct Bound {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    /// The HTTPS listeners, when they also take TURN over TLS (ALPN `stun.turn`).
    pub https: Vec<SocketAddr>,
}

/// Sockets bound before the server starts serving them.
struct Sockets {
    udp: Vec<Arc<UdpSocket>>,
    tcp: Vec<TcpListener>,
    tls: Vec<TcpListener>,
}

impl Turn {
    pub fn software(&self) -> &'static str {
        SOFTWARE
    }

    /// The host name ICE URLs use for listeners bound to a wildcard address.
    pub fn realm_host(&self) -> &str {
        &self.hostname
    }

    /// Binds the relay range and the listeners, and starts serving. `https` are the bound
    /// HTTPS addresses (own services the relay must never reach, and TURN-over-TLS
    /// entry points when `calling.on_https`).
    pub async fn start(
        config: &Config,
        relay: Arc<Relay>,
        store: Store,
        tls: rustls::ServerConfig,
        https: &[SocketAddr],
    ) -> Result<Arc<Turn>> {
        let c = config.calling.clone();
        let realm = if c.realm.trim().is_empty() {
            config.hostnames[0].clone()
        } else {
            c.realm.trim().to_string()
        };
        let external = c.external_ip();
        let ports_v4 = bind_relay_range(c.relay_ip, external, c.relay_port_min, c.relay_port_max)?;
        let ports_v6 = match c.relay_ip6() {
            Some(ip6) => bind_relay_range(ip6, None, c.relay_port_min, c.relay_port_max)?,
            None => Vec::new(),
        };
        let sockets = bind_listeners(&c).await?;
        let mut bound = Bound {
            udp: sockets
                .udp
                .iter()
                .filter_map(|s| s.local_addr().ok())
                .collect(),
            tcp: sockets
                .tcp
                .iter()
                .filter_map(|s| s.local_addr().ok())
                .collect(),
            tls: sockets
                .tls
                .iter()
                .filter_map(|s| s.local_addr().ok())
                .collect(),
            https: Vec::new(),
        };
        if c.on_https {
            bound.https = https.to_vec();
        }
        let mut peers = PeerPolicy::new(c.allow_loopback_peers, &c.peer_allow, &c.peer_deny);
        for a in https
            .iter()
            .chain(&bound.udp)
            .chain(&bound.tcp)
            .chain(&bound.tls)
        {
            peers.add_own_service(*a);
        }
        let secrets = SecretKeeper::load(&store, &c.secret, c.credential_ttl_secs)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let per_sec = NonZeroU32::new(c.unauthenticated_per_second.max(1)).expect("non-zero");
        let mut tls = tls;
        tls.alpn_protocols = vec![b"stun.turn".to_vec()];
        let turn = Arc::new(Turn {
            realm,
            hostname: config.hostnames[0].clone(),
            registry: Registry::new(ports_v4, ports_v6, c.user_quota, c.total_quota),
            nonces: Nonces::new(c.nonce_lifetime_secs),
            secrets,
            peers,
            calls: Calls::new(store),
            relay,
            limiter: RateLimiter::keyed(
                Quota::per_second(per_sec).allow_burst(
                    NonZeroU32::new(c.unauthenticated_per_second.saturating_mul(2).max(1))
                        .expect("non-zero"),
                ),
            ),
            bound,
            tls: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
            traffic: super::datapath::Traffic::new(),
            config: c,
        });
        for port in turn.registry.ports_v4.iter().chain(&turn.registry.ports_v6) {
            tokio::spawn(turn.clone().relay_port_loop(port.clone()));
        }
        for s in sockets.udp {
            tokio::spawn(turn.clone().udp_listener_loop(s));
        }
        for l in sockets.tcp {
            tokio::spawn(turn.clone().accept_loop(l, Transport::Tcp));
        }
        for l in sockets.tls {
            tokio::spawn(turn.clone().accept_loop(l, Transport::Tls));
        }
        tokio::spawn(turn.clone().expiry_loop());
        tokio::spawn(turn.clone().policy_loop());
        let b = &turn.bound;
        tracing::info!(
            udp = ?b.udp, tcp = ?b.tcp, tls = ?b.tls, https = ?b.https,
            relay = %format!("{}:{}-{}", turn.config.relay_ip, turn.config.relay_port_min, turn.config.relay_port_max),
            realm = %turn.realm,
            "listening for STUN/TURN"
        );
        Ok(turn)
    }

    /// Removes an allocation and, if it ended its call, records the call.
    pub fn remove(&self, a: &Arc<Allocation>) {
        if !self.registry.remove(a) {
            return;
        }
        m::ALLOCATIONS_ACTIVE
            .with_label_values(&[a.five.transport.label()])
            .dec();
        if let Some(record) = self
            .calls
            .detach(&a.call, &a.user_id, a.counters.total_bytes())
        {
            // Recording must not hold the packet path: one small store write, later.
            let store = self.calls.store();
            tokio::spawn(async move {
                if let Err(e) = Calls::save(store, record).await {
                    tracing::warn!(error = %e, "cannot record a finished call");
                }
            });
        }
    }

    /// Removes the allocation of a client 5-tuple (its TCP/TLS connection closed).
    pub fn remove_five(&self, five: &FiveTuple) {
        if let Some(a) = self.registry.get(five) {
            self.remove(&a);
        }
    }

    /// Every second: ends expired allocations and permissions.
    async fn expiry_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = Instant::now();
            for a in self.registry.all() {
                let expired = a.state().expires <= now;
                if expired {
                    self.remove(&a);
                } else {
                    self.registry.prune(&a, now);
                }
            }
            self.limiter.retain_recent();
        }
    }

    /// Whenever the directory changes: tears down the allocations of users who may no
    /// longer hold them.
    async fn policy_loop(self: Arc<Self>) {
        let changed = self.relay.directory_changes();
        loop {
            changed.notified().await;
            for a in self.registry.all() {
                if let Err(why) = self.caller_policy(&a.user_id, a.five.transport) {
                    tracing::info!(user = %a.user_id, reason = why, relayed = %a.relayed, "TURN allocation torn down");
                    self.remove(&a);
                }
            }
        }
    }
}

/// Binds one UDP socket per port of the range on `ip`.
fn bind_relay_range(
    ip: IpAddr,
    external: Option<IpAddr>,
    min: u16,
    max: u16,
) -> Result<Vec<Arc<RelayPort>>> {
    let mut ports = Vec::with_capacity(usize::from(max - min) + 1);
    for port in min..=max {
        let addr = SocketAddr::new(ip, port);
        let socket = relay_socket(addr).with_context(|| {
            format!(
                "cannot bind the calling relay port {addr} (calling.relay_port_min..calling.relay_port_max); \
                 is another TURN server using the range?"
            )
        })?;
        let advertised = SocketAddr::new(external.unwrap_or(ip), port);
        ports.push(Arc::new(RelayPort::new(Arc::new(socket), advertised)));
    }
    Ok(ports)
}

/// A relay socket: non-blocking, larger buffers, and datagrams sent with DF set (so the
/// DONT-FRAGMENT attribute is always honoured).
fn relay_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let std_socket = std::net::UdpSocket::bind(addr)?;
    std_socket.set_nonblocking(true)?;
    tune_udp(&std_socket, addr.is_ipv6());
    UdpSocket::from_std(std_socket)
}

/// Socket options for relay and listener sockets (best effort: the kernel may cap them).
fn tune_udp(socket: &std::net::UdpSocket, ipv6: bool) {
    use std::os::fd::AsRawFd;
    let fd = socket.as_raw_fd();
    let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| {
        // SAFETY: fd is a valid socket for the duration of the call; value is a c_int.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                &value as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    set(libc::SOL_SOCKET, libc::SO_RCVBUF, 1 << 20);
    set(libc::SOL_SOCKET, libc::SO_SNDBUF, 1 << 20);
    if ipv6 {
        set(libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 1);
    } else {
        set(
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DO,
        );
    }
}

/// Binds `calling.listen` (UDP and TCP on the same port) and `calling.tls_listen`.
async fn bind_listeners(c: &CallingConfig) -> Result<Sockets> {
    let mut s = Sockets {
        udp: Vec::new(),
        tcp: Vec::new(),
        tls: Vec::new(),
    };
    for addr in &c.listen {
        // Port 0: UDP picks a port and TCP takes the same one (retried if it is taken).
        let mut tries = 0;
        loop {
            let udp = std::net::UdpSocket::bind(addr)
                .with_context(|| format!("cannot listen on udp {addr} (calling.listen)"))?;
            udp.set_nonblocking(true)?;
            tune_udp(&udp, addr.is_ipv6());
            let local = udp.local_addr()?;
            match TcpListener::bind(local).await {
                Ok(tcp) => {
                    s.udp.push(Arc::new(UdpSocket::from_std(udp)?));
                    s.tcp.push(tcp);
                    break;
                }
                Err(_) if addr.port() == 0 && tries < 10 => tries += 1,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot listen on tcp {local} (calling.listen)"));
                }
            }
        }
    }
    for addr in &c.tls_listen {
        s.tls.push(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on tcp {addr} (calling.tls_listen)"))?,
        );
    }
    Ok(s)
}
