//! One connection through the front door: the TLS handshake, the choice of who serves
//! it (by the negotiated ALPN protocol, then by the first request), and the hand-over.
//!
//! Each phase's future is boxed and freed when the phase ends, so what a long-lived
//! connection keeps is what its server needs and not the largest state any phase had.

use super::first_request::{self, First};
use super::replay::Replay;
use super::{CLIENT_DISCONNECT_TIMEOUT, CLIENT_REQUEST_TIMEOUT, Shared, TLS_HANDSHAKE_TIMEOUT};
use crate::metrics;
use crate::relay::websocket::direct;
use actix_http::Protocol;
use actix_http::error::DispatchError;
use actix_service::Service;
use actix_utils::counter::CounterGuard;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A connection after its TLS handshake.
pub type Tls = Box<tokio_rustls::server::TlsStream<TcpStream>>;
/// What the servers behind the front door read and write: the decrypted stream, with
/// the bytes read to route it given back first.
pub type Io = Replay<Tls>;

/// Who serves a connection, by the protocol agreed in the TLS handshake.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The HTTP server, straight away.
    Http(Protocol),
    /// HTTP/1.1: the first request decides.
    FirstRequest,
    /// TURN over TLS (ALPN `stun.turn`).
    Turn,
}

fn by_alpn(protocol: Option<&[u8]>) -> Next {
    match protocol {
        Some(b"h2") => Next::Http(Protocol::Http2),
        Some(b"stun.turn") => Next::Turn,
        Some(b"http/1.1") | None => Next::FirstRequest,
        // rustls agrees only on protocols the listener offers; should another one
        // appear, HTTP/1.1 is what the peer will be answered in.
        Some(_) => Next::FirstRequest,
    }
}

/// Serve one accepted TCP connection to its end. `handshake` holds this connection's
/// place among the worker's handshakes in progress until the handshake is over.
pub async fn serve<H>(shared: Arc<Shared>, http: Rc<H>, tcp: TcpStream, handshake: CounterGuard)
where
    H: Service<(Io, Protocol, Option<SocketAddr>), Response = (), Error = DispatchError>,
{
    let peer = tcp.peer_addr().ok();
    // Responses go out as several small TLS records; with Nagle's algorithm the later
    // ones wait ~40 ms for the client's delayed ACK on every new connection.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(peer = ?peer, error = %e, "cannot set TCP_NODELAY");
    }
    let accepting = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, shared.tls.accept(tcp));
    let tls: Tls = match Box::pin(accepting).await {
        Ok(Ok(tls)) => Box::new(tls),
        Ok(Err(e)) => {
            tracing::debug!(peer = ?peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = ?peer, "TLS handshake timed out");
            return;
        }
    };
    drop(handshake);
    match by_alpn(tls.get_ref().1.alpn_protocol()) {
        Next::Http(protocol) => to_http(&*http, Replay::plain(tls), protocol, peer).await,
        Next::FirstRequest => first_request(&shared, &*http, tls, peer).await,
        Next::Turn => turn(&shared, tls, peer).await,
    }
}

/// TURN over TLS, served by the calling relay on this connection.
async fn turn(shared: &Shared, tls: Tls, peer: Option<SocketAddr>) {
    let (Some(turn), Some(client)) = (shared.turn.get(), peer) else {
        return;
    };
    let Ok(server) = tls.get_ref().0.local_addr() else {
        return;
    };
    let five = crate::calling::allocation::FiveTuple {
        transport: crate::calling::allocation::Transport::Tls,
        client,
        server,
    };
    Box::pin(turn.clone().serve_stream(tls, five)).await;
}

async fn first_request<H>(shared: &Shared, http: &H, mut tls: Tls, peer: Option<SocketAddr>)
where
    H: Service<(Io, Protocol, Option<SocketAddr>), Response = (), Error = DispatchError>,
{
    match Box::pin(first_request::read(&mut tls, CLIENT_REQUEST_TIMEOUT)).await {
        First::DeviceStream(head) => Box::pin(device_stream(shared, Replay::new(tls, head))).await,
        First::Http(head) => to_http(http, Replay::new(tls, head), Protocol::Http1, peer).await,
        First::TimedOut => request_timeout(tls).await,
        First::Gone => {}
    }
}

/// The device stream, served by the relay on this connection.
async fn device_stream(shared: &Shared, io: Io) {
    let started = Instant::now();
    let max = shared.relay.config.max_frame_bytes;
    let ws = match direct::accept(io, max, shared.headers).await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(error = %e, "the device stream's WebSocket handshake failed");
            return;
        }
    };
    // Counted as the HTTP server counts the same upgrade (`metrics::track`).
    let route = first_request::STREAM_PATH;
    metrics::http::REQUESTS
        .with_label_values(&[route, "GET", "101"])
        .inc();
    metrics::http::DURATION
        .with_label_values(&[route, "GET"])
        .observe(started.elapsed().as_secs_f64());
    direct::run(shared.relay.clone(), ws).await;
}

/// The connection, served by the HTTP server (actix-web's `App`).
async fn to_http<H>(http: &H, io: Io, protocol: Protocol, peer: Option<SocketAddr>)
where
    H: Service<(Io, Protocol, Option<SocketAddr>), Response = (), Error = DispatchError>,
{
    if std::future::poll_fn(|cx| http.poll_ready(cx))
        .await
        .is_err()
    {
        return;
    }
    if let Err(e) = Box::pin(http.call((io, protocol, peer))).await {
        tracing::debug!(peer = ?peer, error = %e, "an HTTP connection ended with an error");
    }
}

/// No request in time: answer as the HTTP server does (408) and close.
async fn request_timeout(mut tls: Tls) {
    const RESPONSE: &[u8] =
        b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let _ = tokio::time::timeout(CLIENT_DISCONNECT_TIMEOUT, async {
        tls.write_all(RESPONSE).await?;
        tls.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_picks_http2_or_the_first_request() {
        assert_eq!(by_alpn(Some(b"h2")), Next::Http(Protocol::Http2));
        assert_eq!(by_alpn(Some(b"http/1.1")), Next::FirstRequest);
        assert_eq!(by_alpn(None), Next::FirstRequest);
        assert_eq!(by_alpn(Some(b"stun.turn")), Next::Turn);
    }
}
