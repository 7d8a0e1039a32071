//! The first request on an HTTP/1.1 connection, read just far enough to decide who
//! serves the connection: a device stream's WebSocket upgrade goes to the relay, and
//! everything else — other requests, broken ones, an upgrade the WebSocket library
//! would refuse, a request with more bytes behind it — to the HTTP server, which
//! answers it exactly as it would have without the front door.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The device stream's path (PROTOCOL.md §4).
pub const STREAM_PATH: &str = "/api/v1/stream";
/// Bytes read before giving up on routing and handing the connection to the HTTP
/// server as it is (which has its own limits on request heads).
const MAX_HEAD: usize = 16 * 1024;
/// The first read's room; heads of device upgrades are a few hundred bytes.
const FIRST_READ: usize = 1024;
/// Headers parsed for routing; a request with more goes to the HTTP server.
const MAX_HEADERS: usize = 32;

/// Who serves the connection, with the bytes read so far (to be replayed).
#[derive(Debug, PartialEq, Eq)]
pub enum First {
    /// A WebSocket upgrade on the device stream's path, nothing after it.
    DeviceStream(Vec<u8>),
    /// Anything else.
    Http(Vec<u8>),
    /// No complete request head within the time allowed.
    TimedOut,
    /// The peer closed the connection (or it failed) before a complete head.
    Gone,
}

/// Read the first request head from `io` (for at most `limit`) and route it.
pub async fn read<R: AsyncRead + Unpin>(io: &mut R, limit: Duration) -> First {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = Vec::with_capacity(FIRST_READ);
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= MAX_HEAD {
                return First::Http(buf);
            }
            buf.reserve(buf.len());
        }
        match tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await {
            Err(_) => return First::TimedOut,
            Ok(Err(_) | Ok(0)) => return First::Gone,
            Ok(Ok(_)) => {}
        }
        match route(&buf) {
            Some(true) => return First::DeviceStream(buf),
            Some(false) => return First::Http(buf),
            None => {}
        }
    }
}

/// Whether `bytes` start with a complete device-stream upgrade and hold nothing
/// else; `None` while the head is incomplete.
fn route(bytes: &[u8]) -> Option<bool> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Partial) => None,
        Ok(httparse::Status::Complete(n)) => Some(n == bytes.len() && is_stream_upgrade(&req)),
        Err(_) => Some(false),
    }
}

/// A WebSocket upgrade of the device stream that tungstenite's handshake accepts
/// as it is (anything it would refuse is left to the HTTP server to answer).
fn is_stream_upgrade(req: &httparse::Request<'_, '_>) -> bool {
    let path_ok = req.path.is_some_and(|p| {
        p.strip_prefix(STREAM_PATH)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('?'))
    });
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    req.method == Some("GET")
        && req.version == Some(1)
        && path_ok
        && header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && has_token("connection", "upgrade")
        && header("sec-websocket-version") == Some("13")
        && header("sec-websocket-key").is_some_and(|k| !k.is_empty())
        && header("content-length").is_none_or(|v| v == "0")
        && header("transfer-encoding").is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const UPGRADE: &str = "GET /api/v1/stream HTTP/1.1\r\nHost: localhost\r\n\
        Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    #[test]
    fn only_a_complete_well_formed_stream_upgrade_goes_to_the_relay() {
        assert_eq!(route(UPGRADE.as_bytes()), Some(true));
        let with_query = UPGRADE.replace("/api/v1/stream ", "/api/v1/stream?v=1 ");
        assert_eq!(route(with_query.as_bytes()), Some(true));
        assert_eq!(route(&UPGRADE.as_bytes()[..40]), None, "incomplete");
        for other in [
            UPGRADE.replace("/api/v1/stream ", "/api/v1/streams "),
            UPGRADE.replace("/api/v1/stream ", "/api/v1/stream/ "),
            UPGRADE.replace("/api/v1/stream ", "/readyz "),
            UPGRADE.replace("GET ", "POST "),
            UPGRADE.replace("HTTP/1.1", "HTTP/1.0"),
            UPGRADE.replace("Upgrade: websocket\r\n", ""),
            UPGRADE.replace("keep-alive, Upgrade", "keep-alive"),
            UPGRADE.replace("Version: 13", "Version: 8"),
            UPGRADE.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            UPGRADE.replace("\r\n\r\n", "\r\nContent-Length: 3\r\n\r\nabc"),
            format!("{UPGRADE}GET /readyz HTTP/1.1\r\n\r\n"),
            "\x16\x03\x01 not http at all\r\n\r\n".to_string(),
        ] {
            assert_eq!(route(other.as_bytes()), Some(false), "{other:?}");
        }
    }

    #[tokio::test]
    async fn heads_arriving_in_pieces_are_read_to_the_end_and_silence_times_out() {
        let (mut peer, mut io) = tokio::io::duplex(4096);
        let (a, b) = UPGRADE.as_bytes().split_at(50);
        peer.write_all(a).await.unwrap();
        let reading = tokio::spawn(async move {
            let first = read(&mut io, Duration::from_secs(5)).await;
            (first, io)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        peer.write_all(b).await.unwrap();
        let (first, mut io) = reading.await.unwrap();
        assert_eq!(first, First::DeviceStream(UPGRADE.as_bytes().to_vec()));

        assert_eq!(
            read(&mut io, Duration::from_millis(50)).await,
            First::TimedOut
        );
        drop(peer);
        assert_eq!(read(&mut io, Duration::from_secs(5)).await, First::Gone);
    }

    #[tokio::test]
    async fn an_endless_head_is_handed_over_at_the_limit() {
        let (mut peer, mut io) = tokio::io::duplex(64 * 1024);
        let mut long = b"GET /readyz HTTP/1.1\r\nX-Long: ".to_vec();
        long.resize(40 * 1024, b'a');
        peer.write_all(&long).await.unwrap();
        match read(&mut io, Duration::from_secs(5)).await {
            First::Http(bytes) => assert!(bytes.len() >= MAX_HEAD && long.starts_with(&bytes)),
            other => panic!("expected the HTTP server, got {other:?}"),
        }
    }
}
