//! The device stream (`docs/PROTOCOL.md` §4) over WebSocket (`wss://…/api/v1/stream`,
//! TLS by tokio-rustls) or QUIC (ALPN `outpost/1`, one bidirectional stream of
//! length-prefixed JSON frames), behind one type that sends [`ClientFrame`]s and
//! receives [`ServerFrame`]s.

use anyhow::{Context, Result, anyhow, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::framing;
use super::tls::{Trust, server_name};
use crate::relay::frame::{ClientFrame, QUIC_ALPN, ServerFrame};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Which transport carries the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    WebSocket,
    Quic,
}

impl std::str::FromStr for Transport {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "websocket" | "ws" | "wss" => Ok(Transport::WebSocket),
            "quic" => Ok(Transport::Quic),
            other => bail!("unknown transport {other:?} (websocket or quic)"),
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::WebSocket => "websocket",
            Transport::Quic => "quic",
        })
    }
}

/// Where and how to open the stream.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// The appliance's base URL (`https://host:port`).
    pub url: Url,
    pub trust: Trust,
    pub transport: Transport,
    /// QUIC `host:port`; default the URL's host and port number (over UDP).
    pub quic_addr: Option<String>,
}

/// The frame types this client understands; others are skipped (a later protocol
/// version may add some).
const KNOWN_SERVER_FRAMES: &[&str] = &[
    "ready",
    "accepted",
    "deliver",
    "membership",
    "receipt",
    "policy",
    "error",
    "pong",
];

/// Decode a server frame. `Ok(None)`: a well-formed frame of a type this client does not
/// know, to be skipped.
pub fn decode_server_frame(bytes: &[u8]) -> Result<Option<ServerFrame>> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).context("the server sent a frame that is not JSON")?;
    let Some(t) = v.get("type").and_then(|t| t.as_str()) else {
        bail!("the server sent a frame without a type");
    };
    if !KNOWN_SERVER_FRAMES.contains(&t) {
        tracing::debug!(frame_type = t, "skipping a frame of an unknown type");
        return Ok(None);
    }
    let t = t.to_string();
    serde_json::from_value(v)
        .map(Some)
        .with_context(|| format!("the server sent a malformed {t} frame"))
}

/// A URL's host (without IPv6 brackets) and port.
fn host_port(url: &Url) -> Result<(String, u16)> {
    let Some(host) = url.host_str() else {
        bail!("the appliance URL has no host");
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    Ok((host, port))
}

/// The WebSocket URL of the stream of the appliance at `base`.
pub fn websocket_url(base: &Url) -> Result<Url> {
    let mut u = base.clone();
    u.path_segments_mut()
        .map_err(|_| anyhow!("the appliance URL cannot have a path"))?
        .pop_if_empty()
        .extend(["api", "v1", "stream"]);
    u.set_scheme("wss")
        .map_err(|_| anyhow!("cannot make a wss:// URL of {base}"))?;
    Ok(u)
}

type Wss = WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// Keeps the QUIC endpoint and connection alive while either half is in use.
struct QuicLink {
    endpoint: quinn::Endpoint,
    connection: quinn::Connection,
}

enum SenderInner {
    Ws(SplitSink<Wss, Message>),
    Quic(quinn::SendStream, Arc<QuicLink>),
}

enum ReceiverInner {
    Ws(SplitStream<Wss>),
    Quic(quinn::RecvStream, Arc<QuicLink>),
}

/// The sending half of a stream.
pub struct StreamSender(SenderInner);
/// The receiving half of a stream.
pub struct StreamReceiver(ReceiverInner);

/// An open device stream. Use [`send`](Self::send)/[`recv`](Self::recv), or
/// [`split`](Self::split) it to send and receive from different tasks.
pub struct Stream {
    sender: StreamSender,
    receiver: StreamReceiver,
    transport: Transport,
}

impl Stream {
    /// Connect (not yet authenticated: send [`ClientFrame::Authenticate`] first).
    pub async fn connect(config: &StreamConfig) -> Result<Stream> {
        match config.transport {
            Transport::WebSocket => connect_websocket(config).await,
            Transport::Quic => connect_quic(config).await,
        }
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    pub async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        self.sender.send(frame).await
    }

    /// The next frame; `None` once the server closed the stream.
    pub async fn recv(&mut self) -> Result<Option<ServerFrame>> {
        self.receiver.recv().await
    }

    pub fn split(self) -> (StreamSender, StreamReceiver) {
        (self.sender, self.receiver)
    }

    /// Close politely: close the sending direction, then read (and discard) what the
    /// server still sends until it closes too, for at most 2 seconds. A socket closed
    /// with unread data is reset, and the reset can destroy frames (a last `ack`) the
    /// server has received but not yet read.
    pub async fn close(self) {
        let Stream {
            sender,
            mut receiver,
            ..
        } = self;
        sender.close().await;
        let drain = async { while let Ok(Some(_)) = receiver.recv().await {} };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    }
}

impl StreamSender {
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        match &mut self.0 {
            SenderInner::Ws(sink) => {
                let json = serde_json::to_string(frame).context("cannot encode a frame")?;
                sink.send(Message::text(json))
                    .await
                    .context("cannot send on the stream")
            }
            SenderInner::Quic(send, _) => framing::write_frame(send, frame).await,
        }
    }

    /// Close this direction (and, for QUIC, the connection).
    pub async fn close(self) {
        match self.0 {
            SenderInner::Ws(mut sink) => {
                let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
            }
            SenderInner::Quic(mut send, link) => {
                // Closing the connection drops undelivered stream data (a last `ack`):
                // finish the stream and wait until the server has read it all.
                if send.finish().is_ok() {
                    let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
                }
                link.connection.close(0u32.into(), b"bye");
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), link.endpoint.wait_idle()).await;
            }
        }
    }
}

impl StreamReceiver {
    /// The next frame; `None` once the server closed the stream.
    pub async fn recv(&mut self) -> Result<Option<ServerFrame>> {
        loop {
            let bytes = match &mut self.0 {
                ReceiverInner::Ws(stream) => match stream.next().await {
                    None => return Ok(None),
                    Some(Err(e)) => {
                        use tokio_tungstenite::tungstenite::Error as E;
                        return match e {
                            E::ConnectionClosed | E::AlreadyClosed => Ok(None),
                            e => Err(anyhow!(e).context("the stream failed")),
                        };
                    }
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Close(_))) => return Ok(None),
                    Some(Ok(_)) => continue,
                },
                ReceiverInner::Quic(recv, link) => {
                    match framing::read_frame(recv, framing::MAX_INCOMING_FRAME).await {
                        Ok(Some(b)) => b,
                        Ok(None) => return Ok(None),
                        Err(e) => {
                            use quinn::ConnectionError as C;
                            return match link.connection.close_reason() {
                                Some(C::ApplicationClosed(_) | C::LocallyClosed) => Ok(None),
                                _ => Err(e),
                            };
                        }
                    }
                }
            };
            if let Some(frame) = decode_server_frame(&bytes)? {
                return Ok(Some(frame));
            }
        }
    }
}

async fn connect_websocket(config: &StreamConfig) -> Result<Stream> {
    let url = websocket_url(&config.url)?;
    let (host, port) = host_port(&config.url)?;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| anyhow!("timed out connecting to {host}:{port}"))?
        .with_context(|| format!("cannot connect to {host}:{port}"))?;
    let _ = tcp.set_nodelay(true);
    let tls = config.trust.rustls_config(&[b"http/1.1"])?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server_name(&host)?, tcp))
        .await
        .map_err(|_| anyhow!("timed out in the TLS handshake with {host}:{port}"))?
        .with_context(|| format!("TLS handshake with {host}:{port} failed"))?;
    let mut request = url
        .as_str()
        .into_client_request()
        .context("cannot build the WebSocket request")?;
    request.headers_mut().insert(
        "user-agent",
        concat!("outpost-client/", env!("CARGO_PKG_VERSION"))
            .parse()
            .context("user agent")?,
    );
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(framing::MAX_INCOMING_FRAME))
        .max_frame_size(Some(framing::MAX_INCOMING_FRAME));
    let (ws, _response) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::client_async_with_config(request, tls, Some(ws_config)),
    )
    .await
    .map_err(|_| anyhow!("timed out opening the WebSocket at {url}"))?
    .with_context(|| format!("cannot open the WebSocket at {url}"))?;
    let (sink, stream) = ws.split();
    Ok(Stream {
        sender: StreamSender(SenderInner::Ws(sink)),
        receiver: StreamReceiver(ReceiverInner::Ws(stream)),
        transport: Transport::WebSocket,
    })
}

/// The QUIC address to use: `--quic-addr`, else the URL's host and port.
pub fn quic_target(config: &StreamConfig) -> Result<(String, u16)> {
    match &config.quic_addr {
        None => host_port(&config.url),
        Some(a) => {
            let (h, p) = a
                .rsplit_once(':')
                .ok_or_else(|| anyhow!("the QUIC address {a} has no port (host:port)"))?;
            let p: u16 = p
                .parse()
                .with_context(|| format!("the QUIC address {a} has a bad port"))?;
            let h = h.trim_start_matches('[').trim_end_matches(']');
            Ok((h.to_string(), p))
        }
    }
}

async fn connect_quic(config: &StreamConfig) -> Result<Stream> {
    let (host, port) = quic_target(config)?;
    let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .ok_or_else(|| anyhow!("{host} has no address"))?;
    let tls = config.trust.rustls_config(&[QUIC_ALPN])?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .context("cannot set up QUIC's TLS")?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(10)));
    transport.max_idle_timeout(Some(
        Duration::from_secs(60).try_into().context("idle timeout")?,
    ));
    client.transport_config(Arc::new(transport));
    let bind: SocketAddr = if addr.is_ipv6() {
        "[::]:0".parse()?
    } else {
        "0.0.0.0:0".parse()?
    };
    let mut endpoint = quinn::Endpoint::client(bind).context("cannot open a UDP socket")?;
    endpoint.set_default_client_config(client);
    let name = server_name(&host)?;
    let name = match &name {
        rustls::pki_types::ServerName::DnsName(d) => d.as_ref().to_string(),
        _ => host.clone(),
    };
    let connecting = endpoint
        .connect(addr, &name)
        .with_context(|| format!("cannot connect to {addr} over QUIC"))?;
    let connection = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| anyhow!("timed out connecting to {addr} over QUIC"))?
        .with_context(|| format!("cannot connect to {addr} over QUIC"))?;
    let (send, recv) = connection
        .open_bi()
        .await
        .context("cannot open the QUIC stream")?;
    let link = Arc::new(QuicLink {
        endpoint,
        connection,
    });
    Ok(Stream {
        sender: StreamSender(SenderInner::Quic(send, link.clone())),
        receiver: StreamReceiver(ReceiverInner::Quic(recv, link)),
        transport: Transport::Quic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_addresses() {
        let base = Url::parse("https://outpost.example.org:8443").unwrap();
        assert_eq!(
            websocket_url(&base).unwrap().as_str(),
            "wss://outpost.example.org:8443/api/v1/stream"
        );
        let base6 = Url::parse("https://[::1]/").unwrap();
        assert_eq!(
            websocket_url(&base6).unwrap().as_str(),
            "wss://[::1]/api/v1/stream"
        );
        let mut c = StreamConfig {
            url: base,
            trust: Trust::Insecure,
            transport: Transport::Quic,
            quic_addr: None,
        };
        assert_eq!(
            quic_target(&c).unwrap(),
            ("outpost.example.org".into(), 8443)
        );
        c.quic_addr = Some("[::1]:9443".into());
        assert_eq!(quic_target(&c).unwrap(), ("::1".into(), 9443));
        c.url = base6;
        c.quic_addr = None;
        assert_eq!(quic_target(&c).unwrap(), ("::1".into(), 443));
        assert_eq!("QUIC".parse::<Transport>().unwrap(), Transport::Quic);
        assert!("tcp".parse::<Transport>().is_err());
    }

    #[test]
    fn decodes_frames_leniently() {
        let f = decode_server_frame(br#"{"type":"pong","nonce":"1","extra":true}"#).unwrap();
        assert!(matches!(f, Some(ServerFrame::Pong { .. })));
        assert!(
            decode_server_frame(br#"{"type":"typing","who":"x"}"#)
                .unwrap()
                .is_none()
        );
        assert!(decode_server_frame(br#"{"type":"accepted"}"#).is_err());
        assert!(decode_server_frame(br#"{"nope":1}"#).is_err());
        assert!(decode_server_frame(b"\xff").is_err());
    }
}
