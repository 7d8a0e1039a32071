//! The device stream straight on a connection (tokio-tungstenite): the WebSocket
//! handshake on an already decrypted stream, then the stream itself, then a clean
//! close. Used by the front door for connections whose first request is the upgrade;
//! an idle stream served this way holds only the TLS state, one small read buffer and
//! the session.

use super::{Carrier, Incoming, Source};
use crate::relay::Relay;
use crate::relay::session::{self, FrameSink};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// The read buffer each stream keeps for its whole life. Devices send small frames
/// (acks, receipts, envelopes of a few hundred bytes) and most of the time nothing at
/// all, so a small buffer costs little; a larger frame is read into room reserved
/// for exactly its length, this many bytes per read from the (already decrypted)
/// TLS buffer. 4 KiB cost 2 KiB more per idle stream (bench/README.md, idle_streams).
pub const READ_BUFFER: usize = 2048;

/// Frames a stream sends together (a commit's deliveries and acceptances) are gathered
/// up to this many bytes before they are written: one TLS record and one system call
/// for all of them. The buffer grows only when used, so an idle stream holds none.
pub const WRITE_BUFFER: usize = 16 * 1024;

/// How long a closing stream waits for the peer to finish (its close frame, the end
/// of its data) before the connection is dropped; actix's client_disconnect_timeout.
const LINGER: Duration = Duration::from_secs(1);

/// The WebSocket settings of a device stream: a small read buffer, gathered writes,
/// messages and frames up to `max_frame_bytes`.
pub fn config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
}

/// Answer the upgrade request waiting on `io` (the bytes of the request must still be
/// there to read), adding `headers` to the `101 Switching Protocols`.
// The callback's error type (a whole refusal response) is tungstenite's.
#[allow(clippy::result_large_err)]
pub async fn accept<S>(
    io: S,
    max_frame_bytes: usize,
    headers: &'static [(&'static str, &'static str)],
) -> Result<WebSocketStream<S>, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let add_headers =
        move |_: &tungstenite::handshake::server::Request,
              mut response: tungstenite::handshake::server::Response| {
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(*name, HeaderValue::from_static(value));
            }
            Ok(response)
        };
    tokio_tungstenite::accept_hdr_async_with_config(io, add_headers, Some(config(max_frame_bytes)))
        .await
}

struct Receiver<S>(SplitStream<WebSocketStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> Carrier for Receiver<S> {
    async fn receive(&mut self) -> Option<Incoming> {
        Some(match self.0.next().await? {
            Ok(Message::Text(t)) => Incoming::Text(t.as_str().to_owned()),
            Ok(Message::Binary(_)) => Incoming::Binary,
            Ok(Message::Ping(p)) => Incoming::Ping(p),
            // Raw frames are never handed out when reading.
            Ok(Message::Pong(_) | Message::Frame(_)) => Incoming::Pong,
            Ok(Message::Close(_)) => Incoming::Close,
            Err(tungstenite::Error::Capacity(_)) => Incoming::TooLarge,
            Err(tungstenite::Error::Protocol(e)) => Incoming::Broken(e.to_string()),
            Err(tungstenite::Error::Utf8(e)) => Incoming::Broken(format!("text is not UTF-8: {e}")),
            // The connection is gone (reset, closed, unreadable): nobody to tell.
            Err(_) => return None,
        })
    }

    /// tungstenite queues the pong itself and sends it with the next read or write.
    async fn pong(&mut self, _payload: Bytes) -> bool {
        true
    }
}

struct Sender<S>(SplitSink<WebSocketStream<S>, Message>);

impl<S: AsyncRead + AsyncWrite + Unpin> FrameSink for Sender<S> {
    async fn send_frame(&mut self, text: String) -> bool {
        self.0.send(Message::text(text)).await.is_ok()
    }

    async fn feed_frame(&mut self, text: String) -> bool {
        self.0.feed(Message::text(text)).await.is_ok()
    }

    async fn flush(&mut self) -> bool {
        self.0.flush().await.is_ok()
    }

    async fn close(&mut self) {
        let _ = self.0.close().await;
    }
}

/// Run the device's stream on `ws` to its end, then close the connection cleanly.
pub async fn run<S>(relay: Arc<Relay>, ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (sink, stream) = ws.split();
    let mut src = Source(Receiver(stream));
    let mut sink = Sender(sink);
    session::run(relay, &mut src, &mut sink, "websocket").await;
    if let Ok(ws) = src.0.0.reunite(sink.0) {
        linger(ws).await;
    }
}

/// After our close frame: read until the peer's close frame and the end of its data,
/// then end TLS, so that closing the socket does not reset the connection while our
/// last frames (a closing error) are still unread at the peer.
async fn linger<S>(mut ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ =
        tokio::time::timeout(LINGER, async { while let Some(Ok(_)) = ws.next().await {} }).await;
    let io = ws.get_mut();
    let _ = tokio::time::timeout(LINGER, async {
        io.shutdown().await?;
        let mut rest = [0u8; 256];
        while io.read(&mut rest).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}
