//! A device stream as a client opens it (PROTOCOL.md §4): TCP (optionally from a
//! chosen loopback source address), TLS trusting only the server's CA, the WebSocket
//! upgrade on `/api/v1/stream`, and the `authenticate` → `ready` exchange. Frames are
//! the library's own serde types (`outpost::relay::frame`).

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use outpost::relay::frame::{ClientFrame, ServerFrame};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type Tls = TlsStream<TcpStream>;
pub type Ws = WebSocketStream<Tls>;

/// A TLS client configuration that trusts exactly the certificates in `pem_file`.
pub fn tls_connector(pem_file: &Path) -> Result<TlsConnector> {
    let pem =
        std::fs::read(pem_file).with_context(|| format!("cannot read {}", pem_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.context("a certificate in the trust file is unreadable")?)
            .context("a certificate in the trust file is not usable as a root")?;
    }
    if roots.is_empty() {
        bail!("{} holds no certificate", pem_file.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// TCP to `addr` (from `local`, port chosen by the kernel, when given), then TLS
/// checking the certificate against `server_name`.
pub async fn tls_connect(
    addr: SocketAddr,
    local: Option<IpAddr>,
    server_name: &str,
    tls: &TlsConnector,
) -> Result<Tls> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = local {
        sock.bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("cannot bind a client socket to {ip}"))?;
    }
    let tcp = sock
        .connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| anyhow!("bad server name {server_name}: {e}"))?;
    tls.connect(name, tcp)
        .await
        .with_context(|| format!("TLS handshake with {addr} failed"))
}

/// A lean WebSocket configuration: small eagerly allocated read buffer (the default
/// is 128 KiB per connection, far too much for 50,000 of them).
pub fn ws_config(read_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(0)
}

/// Open `wss://ADDR/api/v1/stream` (TLS name: the address's IP).
pub async fn open(
    addr: SocketAddr,
    local: Option<IpAddr>,
    tls: &TlsConnector,
    config: WebSocketConfig,
) -> Result<Ws> {
    let stream = tls_connect(addr, local, &addr.ip().to_string(), tls).await?;
    let url = format!("wss://{addr}/api/v1/stream");
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .context("the WebSocket upgrade on /api/v1/stream failed")?;
    Ok(ws)
}

/// What `ready` said.
#[derive(Debug, Clone)]
pub struct Ready {
    pub device_id: String,
    pub pending: u64,
}

pub fn encode(f: &ClientFrame) -> String {
    serde_json::to_string(f).expect("client frames always encode")
}

/// Send `authenticate` and wait (up to `limit`) for `ready`; an `error` frame, a
/// close or anything else first is an error naming what arrived.
pub async fn authenticate(ws: &mut Ws, token: &str, limit: Duration) -> Result<Ready> {
    let auth = ClientFrame::Authenticate {
        token: token.to_string(),
        consent_version: None,
    };
    ws.send(Message::text(encode(&auth))).await?;
    let next = tokio::time::timeout(limit, ws.next())
        .await
        .map_err(|_| anyhow!("no answer to authenticate within {} s", limit.as_secs()))?;
    let msg = match next {
        None => bail!("the server closed the stream after authenticate"),
        Some(m) => m.context("reading the answer to authenticate")?,
    };
    let text = match msg {
        Message::Text(t) => t,
        Message::Close(c) => bail!("the server closed the stream after authenticate: {c:?}"),
        other => bail!("unexpected WebSocket message after authenticate: {other:?}"),
    };
    match serde_json::from_str::<ServerFrame>(&text) {
        Ok(ServerFrame::Ready {
            device_id, pending, ..
        }) => Ok(Ready { device_id, pending }),
        Ok(_) | Err(_) => bail!(
            "the answer to authenticate was not ready: {}",
            text.chars().take(500).collect::<String>()
        ),
    }
}
