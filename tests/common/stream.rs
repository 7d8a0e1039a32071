//! A raw device stream for tests: WebSocket (`/api/v1/stream`) or QUIC (ALPN
//! `outpost/1`, length-prefixed frames), driven from blocking test code. It sends any
//! text — valid frames, broken ones, oversized ones — and hands back every frame the
//! server sends, so tests can pin the protocol exactly as a client sees it.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::mpsc as tmpsc;

pub const WAIT: Duration = Duration::from_secs(20);

enum Event {
    Frame(Value),
    Closed,
}

/// One connection. Dropping it closes the connection.
pub struct Stream {
    out: tmpsc::UnboundedSender<String>,
    rx: mpsc::Receiver<Event>,
    closed: bool,
    pub transport: &'static str,
}

/// A TLS client configuration trusting `ca` and offering `alpn`.
pub fn tls(ca: &Path, alpn: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).expect("the server's CA file");
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    cfg
}

fn host_port(url: &str) -> (String, u16) {
    let rest = url.trim_start_matches("https://");
    let (h, p) = rest.rsplit_once(':').expect("url with a port");
    (h.to_string(), p.trim_end_matches('/').parse().unwrap())
}

impl Stream {
    /// Connect over WebSocket.
    pub fn websocket(url: &str, ca: &Path) -> Stream {
        let (host, port) = host_port(url);
        let cfg = tls(ca, b"http/1.1");
        Stream::spawn("websocket", move |out_rx, tx| async move {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .expect("connect");
            let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = connector.connect(name, tcp).await.expect("TLS");
            let req = format!("wss://localhost:{port}/api/v1/stream");
            let (ws, _) = tokio_tungstenite::client_async(req, tls)
                .await
                .expect("WebSocket upgrade");
            let (mut w, mut r) = ws.split();
            pump(
                out_rx,
                tx,
                async move |s: String| {
                    w.send(tokio_tungstenite::tungstenite::Message::Text(s.into()))
                        .await
                        .is_ok()
                },
                async move || loop {
                    match r.next().await {
                        Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                            return Some(t.to_string());
                        }
                        Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None => {
                            return None;
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(_)) => return None,
                    }
                },
            )
            .await;
        })
    }

    /// Connect over QUIC to the same host and port (UDP).
    pub fn quic(url: &str, ca: &Path) -> Stream {
        let (host, port) = host_port(url);
        let cfg = tls(ca, b"outpost/1");
        Stream::spawn("quic", move |out_rx, tx| async move {
            let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(cfg).unwrap();
            let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
            ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
            let addr = format!("{host}:{port}").parse().unwrap();
            let conn = ep.connect(addr, "localhost").unwrap().await.expect("QUIC");
            let (send, recv) = conn.open_bi().await.unwrap();
            let codec = || {
                tokio_util::codec::LengthDelimitedCodec::builder()
                    .length_field_length(4)
                    .big_endian()
                    .max_frame_length(64 << 20)
                    .new_codec()
            };
            let mut w = tokio_util::codec::FramedWrite::new(send, codec());
            let mut r = tokio_util::codec::FramedRead::new(recv, codec());
            pump(
                out_rx,
                tx,
                async move |s: String| w.send(bytes::Bytes::from(s)).await.is_ok(),
                async move || match r.next().await {
                    Some(Ok(b)) => Some(String::from_utf8_lossy(&b).to_string()),
                    _ => None,
                },
            )
            .await;
            drop(conn);
            ep.wait_idle().await;
        })
    }

    fn spawn<F, Fut>(transport: &'static str, f: F) -> Stream
    where
        F: FnOnce(tmpsc::UnboundedReceiver<String>, mpsc::Sender<Event>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let (out, out_rx) = tmpsc::unbounded_channel();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(f(out_rx, tx));
        });
        Stream {
            out,
            rx,
            closed: false,
            transport,
        }
    }

    /// Send text as one frame.
    pub fn send_raw(&self, text: impl Into<String>) {
        let _ = self.out.send(text.into());
    }

    pub fn send(&self, frame: &Value) {
        self.send_raw(frame.to_string());
    }

    /// The next frame, or None if the stream closed or nothing came within `wait`.
    pub fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        if self.closed {
            return None;
        }
        match self.rx.recv_timeout(wait) {
            Ok(Event::Frame(v)) => Some(v),
            Ok(Event::Closed) => {
                self.closed = true;
                None
            }
            Err(_) => None,
        }
    }

    /// The next frame; panics if none comes.
    pub fn recv(&mut self) -> Value {
        self.recv_within(WAIT).expect("a frame from the server")
    }

    /// The next frame, which must be of type `ty`.
    pub fn expect(&mut self, ty: &str) -> Value {
        let f = self.recv();
        assert_eq!(f["type"], ty, "expected a {ty} frame, got {f}");
        f
    }

    /// Skip frames until one of type `ty` arrives.
    pub fn next_of(&mut self, ty: &str) -> Value {
        loop {
            let f = self.recv();
            if f["type"] == ty {
                return f;
            }
        }
    }

    /// The next error frame, which must carry `code`.
    pub fn expect_error(&mut self, code: &str) -> Value {
        let f = self.expect("error");
        assert_eq!(f["code"], code, "unexpected error frame {f}");
        f
    }

    /// Whether the server closes the stream within `wait` (frames before it are skipped).
    pub fn closes_within(&mut self, wait: Duration) -> bool {
        let deadline = std::time::Instant::now() + wait;
        while !self.closed {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(left) {
                Ok(Event::Frame(_)) => {}
                Ok(Event::Closed) => self.closed = true,
                Err(_) => return false,
            }
        }
        true
    }

    /// Authenticate and wait for `ready`.
    pub fn authenticate(&mut self, token: &str) -> Value {
        self.send(&serde_json::json!({"type": "authenticate", "token": token}));
        self.expect("ready")
    }
}

async fn pump<S, R>(
    mut out_rx: tmpsc::UnboundedReceiver<String>,
    tx: mpsc::Sender<Event>,
    mut send: S,
    mut recv: R,
) where
    S: AsyncFnMut(String) -> bool,
    R: AsyncFnMut() -> Option<String>,
{
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(s) => { if !send(s).await { break; } }
                None => break,
            },
            incoming = recv() => match incoming {
                Some(t) => {
                    let v = serde_json::from_str(&t).unwrap_or(Value::String(t));
                    if tx.send(Event::Frame(v)).is_err() { break; }
                }
                None => break,
            },
        }
    }
    let _ = tx.send(Event::Closed);
}
