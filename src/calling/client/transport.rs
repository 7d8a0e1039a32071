//! The TURN client's connection to the server: a connected UDP socket, a TCP stream or a
//! TLS stream ([`Transport`] says which), sending whole frames and receiving them one at a
//! time — a datagram over UDP, or the next STUN message or ChannelData frame cut from the
//! byte stream over TCP and TLS ([`crate::calling::framing::frame_len`]).
//!
//! Receiving is cancel-safe (a caller may wrap it in `tokio::time::timeout`): bytes read
//! from a stream are kept in the connection's buffer until a whole frame is there.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::error::TurnError;
use crate::calling::framing;

/// The largest UDP datagram accepted from the server.
const MAX_DATAGRAM: usize = 65_535;
/// How much a stream read asks for at a time.
const STREAM_READ: usize = 16 * 1024;
/// How long a TCP connection and a TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The ALPN name of TURN over TLS (RFC 7443).
pub const ALPN_STUN_TURN: &[u8] = b"stun.turn";

/// How the client reaches the server.
#[derive(Clone)]
pub enum Transport {
    /// UDP from `local` (e.g. `127.0.0.1:0`, so that a test can open thousands of clients
    /// on loopback); `None` binds the unspecified address of the server's family.
    Udp {
        local: Option<SocketAddr>,
    },
    Tcp,
    Tls(TlsSettings),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Udp { local } => f.debug_struct("Udp").field("local", local).finish(),
            Transport::Tcp => f.write_str("Tcp"),
            Transport::Tls(t) => f
                .debug_struct("Tls")
                .field("server_name", &t.server_name)
                .finish_non_exhaustive(),
        }
    }
}

impl Transport {
    /// UDP from an ephemeral port of `ip`.
    pub fn udp_from(ip: std::net::IpAddr) -> Self {
        Transport::Udp {
            local: Some(SocketAddr::new(ip, 0)),
        }
    }

    /// The transport's name, as TURN documents call it.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Udp { .. } => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls(_) => "TLS",
        }
    }
}

/// The server name to check the certificate against, and the rustls configuration.
#[derive(Clone)]
pub struct TlsSettings {
    pub server_name: ServerName<'static>,
    pub config: Arc<rustls::ClientConfig>,
}

impl TlsSettings {
    /// Checks the server's certificate for `server_name` (a DNS name or an IP address) with
    /// `config` as given.
    pub fn new(server_name: &str, config: Arc<rustls::ClientConfig>) -> Result<Self, TurnError> {
        let server_name = crate::client::tls::server_name(server_name)
            .map_err(|e| TurnError::Tls(format!("{e:#}")))?;
        Ok(TlsSettings {
            server_name,
            config,
        })
    }

    /// Trusts the CA certificates of a PEM file (e.g. a self-signed server certificate, or
    /// the appliance's `tls/ca.pem`) and offers the ALPN name `stun.turn`.
    pub fn from_ca_file(server_name: &str, ca_pem: &Path) -> Result<Self, TurnError> {
        let trust = crate::client::tls::Trust::CaFile(ca_pem.to_path_buf());
        let config = trust
            .rustls_config(&[ALPN_STUN_TURN])
            .map_err(|e| TurnError::Tls(format!("{e:#}")))?;
        Self::new(server_name, Arc::new(config))
    }
}

/// A byte stream to the server (TCP or TLS over TCP).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The open connection.
pub(crate) enum Conn {
    Udp(UdpSocket),
    Stream {
        io: Box<dyn Stream>,
        local: SocketAddr,
        /// Bytes read and not yet returned as frames: `rx[start..]`.
        rx: Vec<u8>,
        start: usize,
    },
}

impl Conn {
    pub(crate) async fn open(transport: Transport, server: SocketAddr) -> Result<Conn, TurnError> {
        match transport {
            Transport::Udp { local } => {
                let local = local.unwrap_or(match server {
                    SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                    SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
                });
                let socket = UdpSocket::bind(local)
                    .await
                    .map_err(|e| TurnError::io(format!("cannot bind UDP {local}"), e))?;
                socket
                    .connect(server)
                    .await
                    .map_err(|e| TurnError::io(format!("cannot connect UDP to {server}"), e))?;
                Ok(Conn::Udp(socket))
            }
            Transport::Tcp => {
                let tcp = tcp_connect(server).await?;
                let local = tcp
                    .local_addr()
                    .map_err(|e| TurnError::io("cannot read the local TCP address", e))?;
                Ok(Conn::stream(Box::new(tcp), local))
            }
            Transport::Tls(tls) => {
                let tcp = tcp_connect(server).await?;
                let local = tcp
                    .local_addr()
                    .map_err(|e| TurnError::io("cannot read the local TCP address", e))?;
                let connector = tokio_rustls::TlsConnector::from(tls.config);
                let stream =
                    tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(tls.server_name, tcp))
                        .await
                        .map_err(|_| {
                            TurnError::Tls(format!("no TLS handshake with {server} in 10 s"))
                        })?
                        .map_err(|e| TurnError::Tls(format!("handshake with {server}: {e}")))?;
                Ok(Conn::stream(Box::new(stream), local))
            }
        }
    }

    fn stream(io: Box<dyn Stream>, local: SocketAddr) -> Conn {
        Conn::Stream {
            io,
            local,
            rx: Vec::new(),
            start: 0,
        }
    }

    /// Whether the transport delivers in order without loss (no retransmission, and
    /// ChannelData padded to 4 bytes).
    pub(crate) fn reliable(&self) -> bool {
        matches!(self, Conn::Stream { .. })
    }

    pub(crate) fn local_addr(&self) -> Result<SocketAddr, TurnError> {
        match self {
            Conn::Udp(s) => s
                .local_addr()
                .map_err(|e| TurnError::io("cannot read the local UDP address", e)),
            Conn::Stream { local, .. } => Ok(*local),
        }
    }

    /// Sends one whole frame.
    pub(crate) async fn send(&mut self, frame: &[u8]) -> Result<(), TurnError> {
        match self {
            Conn::Udp(s) => {
                let n = s
                    .send(frame)
                    .await
                    .map_err(|e| TurnError::io("cannot send a UDP datagram", e))?;
                if n != frame.len() {
                    return Err(TurnError::io(
                        "cannot send a UDP datagram",
                        std::io::Error::other(format!("sent {n} of {} bytes", frame.len())),
                    ));
                }
                Ok(())
            }
            Conn::Stream { io, .. } => {
                io.write_all(frame)
                    .await
                    .map_err(|e| TurnError::io("cannot write to the stream", e))?;
                io.flush()
                    .await
                    .map_err(|e| TurnError::io("cannot write to the stream", e))
            }
        }
    }

    /// Receives the next frame: a whole datagram over UDP (whatever it holds), or the next
    /// STUN message or padded ChannelData frame of the stream.
    pub(crate) async fn recv(&mut self) -> Result<Vec<u8>, TurnError> {
        match self {
            Conn::Udp(s) => {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                let n = loop {
                    match s.recv(&mut buf).await {
                        Ok(n) => break n,
                        // An ICMP "port unreachable" for an earlier datagram (a server
                        // still starting, or restarting): UDP is lossy anyway, so keep
                        // listening; the retransmissions and the caller's timeout decide.
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                        Err(e) => return Err(TurnError::io("cannot receive a UDP datagram", e)),
                    }
                };
                buf.truncate(n);
                Ok(buf)
            }
            Conn::Stream { io, rx, start, .. } => loop {
                if let Some(len) = framing::frame_len(&rx[*start..]).map_err(TurnError::Framing)?
                    && let Some(frame) = rx.get(*start..*start + len)
                {
                    let frame = frame.to_vec();
                    *start += len;
                    if *start == rx.len() {
                        rx.clear();
                        *start = 0;
                    }
                    return Ok(frame);
                }
                if *start > 0 {
                    rx.drain(..*start);
                    *start = 0;
                }
                rx.reserve(STREAM_READ);
                // `read_buf` appends only the bytes it read: cancelling it loses nothing.
                let n = io
                    .read_buf(rx)
                    .await
                    .map_err(|e| TurnError::io("cannot read from the stream", e))?;
                if n == 0 {
                    return Err(TurnError::Closed);
                }
            },
        }
    }
}

async fn tcp_connect(server: SocketAddr) -> Result<TcpStream, TurnError> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(server))
        .await
        .map_err(|_| {
            TurnError::io(
                format!("cannot connect TCP to {server}"),
                std::io::ErrorKind::TimedOut.into(),
            )
        })?
        .map_err(|e| TurnError::io(format!("cannot connect TCP to {server}"), e))?;
    tcp.set_nodelay(true)
        .map_err(|e| TurnError::io("cannot set TCP_NODELAY", e))?;
    Ok(tcp)
}
