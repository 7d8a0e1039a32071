//! The QUIC transport of the device stream (PROTOCOL.md §4): UDP, ALPN `outpost/1`,
//! the appliance's certificate. The device opens one bidirectional stream; each
//! frame is a 4-byte big-endian length and that many bytes of JSON.

use super::Relay;
use super::frame::QUIC_ALPN;
use super::session::{self, FrameSink, FrameSource};
use crate::error::Error;
use anyhow::{Context, Result};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// How long an idle QUIC connection lives without keep-alives from the client.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

fn codec(max: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(max)
        .new_codec()
}

struct Source(FramedRead<quinn::RecvStream, LengthDelimitedCodec>);

impl FrameSource for Source {
    async fn next_frame(&mut self) -> Option<Result<String, Error>> {
        match self.0.next().await? {
            Ok(b) => {
                Some(String::from_utf8(b.to_vec()).map_err(|_| {
                    Error::bad_request("malformed_frame", "a frame must be UTF-8 JSON")
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Some(Err(session::frame_too_large()))
            }
            Err(_) => None,
        }
    }
}

struct Sink(FramedWrite<quinn::SendStream, LengthDelimitedCodec>);

impl FrameSink for Sink {
    async fn send_frame(&mut self, text: String) -> bool {
        self.0.send(Bytes::from(text)).await.is_ok()
    }

    async fn feed_frame(&mut self, text: String) -> bool {
        self.0.feed(Bytes::from(text)).await.is_ok()
    }

    async fn flush(&mut self) -> bool {
        SinkExt::<Bytes>::flush(&mut self.0).await.is_ok()
    }

    async fn close(&mut self) {
        let _ = SinkExt::<Bytes>::close(&mut self.0).await;
    }
}

/// Bind QUIC endpoints on `addrs` and serve device streams on them until the
/// returned endpoints are closed.
pub fn listen(
    relay: Arc<Relay>,
    addrs: &[SocketAddr],
    mut tls: rustls::ServerConfig,
) -> Result<Vec<quinn::Endpoint>> {
    tls.alpn_protocols = vec![QUIC_ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .context("the TLS configuration cannot be used for QUIC (TLS 1.3 needed)")?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(IDLE_TIMEOUT.try_into().expect("valid idle timeout")))
        .max_concurrent_bidi_streams(1u32.into())
        .max_concurrent_uni_streams(0u32.into());
    server.transport_config(Arc::new(transport));
    let mut out = Vec::new();
    for addr in addrs {
        let ep = quinn::Endpoint::server(server.clone(), *addr)
            .with_context(|| format!("cannot listen for QUIC on udp {addr} (relay.quic_listen)"))?;
        let relay = relay.clone();
        let accept = ep.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accept.accept().await {
                let relay = relay.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(relay, incoming).await {
                        tracing::debug!(error = %e, "a QUIC connection ended with an error");
                    }
                });
            }
        });
        out.push(ep);
    }
    Ok(out)
}

async fn serve(relay: Arc<Relay>, incoming: quinn::Incoming) -> Result<()> {
    let conn = incoming.await?;
    let (send, recv) = conn.accept_bi().await?;
    let max = relay.config.max_frame_bytes;
    let src = Source(FramedRead::new(recv, codec(max)));
    let sink = Sink(FramedWrite::new(send, codec(max)));
    session::run(relay, src, sink, "quic").await;
    // The stream is finished; give the peer a moment to read the last frames (a
    // closing error) before the connection goes, or they would be discarded.
    let _ = tokio::time::timeout(Duration::from_secs(3), conn.closed()).await;
    conn.close(0u32.into(), b"bye");
    Ok(())
}
