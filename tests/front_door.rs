//! The front door: a device stream opened as a connection's first request (served by
//! the relay on the TLS stream itself) and one opened after another request on a
//! keep-alive connection (the HTTP server's route) behave alike; everything else
//! still reaches the HTTP server, over HTTP/1.1 and HTTP/2, with the client's
//! address; silent clients are not kept.

mod common;

use common::Server;
use common::people::{Person, person};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::Response;

const WAIT: Duration = Duration::from_secs(20);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn port(server: &Server) -> u16 {
    server.url.rsplit(':').next().unwrap().parse().unwrap()
}

/// A TLS connection to `server` offering `alpn`.
async fn tls(server: &Server, alpn: &[u8]) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port(server)))
        .await
        .unwrap();
    let cfg = common::stream::tls(&server.ca, alpn);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.expect("TLS")
}

/// One HTTP/1.1 response (head and `content-length` body), read without consuming
/// anything after it: the status, the head's text and the body.
async fn response<S: AsyncRead + Unpin>(io: &mut S) -> (u16, String, Vec<u8>) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(io.read_u8().await.expect("a response head"));
    }
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    io.read_exact(&mut body).await.unwrap();
    (status, head, body)
}

async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    server: &Server,
    io: S,
) -> (WebSocketStream<S>, Response) {
    let url = format!("wss://localhost:{}/api/v1/stream", port(server));
    tokio_tungstenite::client_async(url, io)
        .await
        .expect("WebSocket upgrade")
}

async fn next_frame<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Value {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("the stream is open")
            .expect("a readable message");
        match m {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => panic!("closed early: {c:?}"),
            _ => {}
        }
    }
}

async fn closes<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server closes the stream");
}

/// How a test stream ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Binary,
    TooLarge,
}

/// Everything a device stream does, on `ws`: authenticate, frame and WebSocket
/// pings, then a refused message that ends it with its error.
async fn exercise<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    device: &Person,
    ending: Ending,
) {
    let auth = json!({"type": "authenticate", "token": device.token}).to_string();
    ws.send(Message::text(auth)).await.unwrap();
    let ready = next_frame(ws).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["device_id"], device.device_id.as_str());

    let ping = json!({"type": "ping", "nonce": "n1"}).to_string();
    ws.send(Message::text(ping)).await.unwrap();
    let pong = next_frame(ws).await;
    assert_eq!(
        (pong["type"].as_str(), pong["nonce"].as_str()),
        (Some("pong"), Some("n1"))
    );

    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let answered = tokio::time::timeout(WAIT, async {
        loop {
            if let Message::Pong(p) = ws.next().await.unwrap().unwrap() {
                return p;
            }
        }
    })
    .await
    .expect("a WebSocket pong");
    assert_eq!(&answered[..], b"are you there");

    let (message, code) = match ending {
        Ending::Binary => (Message::binary(b"{}".to_vec()), "malformed_frame"),
        Ending::TooLarge => (
            Message::text(format!("\"{}\"", "x".repeat(2 * 1024 * 1024))),
            "frame_too_large",
        ),
    };
    ws.send(message).await.unwrap();
    let e = next_frame(ws).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some(code)),
        "{e}"
    );
    assert_eq!(e["fatal"], true);
    closes(ws).await;
}

/// The relay's own handshake does not date its answer; the HTTP server dates every
/// answer. That tells the two carriers apart from outside.
fn served_by_http_server(upgrade: &Response) -> bool {
    upgrade.headers().contains_key("date")
}

#[test]
fn a_device_stream_works_as_the_first_request_and_after_other_requests() {
    let s = Server::start();
    let owner = s.owner();
    let net = owner.first_network();
    let device = person(&s, &owner, &net, "door@example.test");
    runtime().block_on(async {
        for ending in [Ending::Binary, Ending::TooLarge] {
            // First request: the relay serves the connection.
            let io = tls(&s, b"http/1.1").await;
            let (mut ws, answer) = upgrade(&s, io).await;
            assert!(!served_by_http_server(&answer), "{answer:?}");
            assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
            assert!(answer.headers().contains_key("strict-transport-security"));
            exercise(&mut ws, &device, ending).await;

            // Second request on a keep-alive connection: the HTTP server's route.
            let mut io = tls(&s, b"http/1.1").await;
            io.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .unwrap();
            let (status, head, _) = response(&mut io).await;
            assert_eq!(status, 200, "{head}");
            let (mut ws, answer) = upgrade(&s, io).await;
            assert!(served_by_http_server(&answer), "{answer:?}");
            assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
            exercise(&mut ws, &device, ending).await;
        }
    });
}

#[test]
fn other_requests_reach_the_http_server_over_http1_and_http2_with_the_peer_address() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    assert_eq!(s.anon().get("/readyz").status, 200);
    // The admin API sees the client's address (audit, sign-in rate limits).
    let events = api.get("/audit?limit=50").ok()["items"].clone();
    let sign_in = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "CreateAdminSession")
        .unwrap_or_else(|| panic!("no sign-in in {events:#}"))
        .clone();
    assert_eq!(sign_in["source_ip"], "127.0.0.1");
    let token = api.token.clone().unwrap();

    runtime().block_on(async {
        // HTTP/2 by ALPN.
        let io = tls(&s, b"h2").await;
        assert_eq!(io.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut client, connection) = h2::client::handshake(io).await.expect("HTTP/2");
        tokio::spawn(connection);
        for (path, want) in [
            ("/readyz".to_string(), 200),
            (format!("/admin/api/v1/networks/{net}"), 200),
            ("/api/v1/stream".to_string(), 400),
        ] {
            let req = http::Request::get(format!("https://localhost{path}"))
                .header("authorization", format!("Bearer {token}"))
                .body(())
                .unwrap();
            let (answer, _) = client.send_request(req, true).unwrap();
            let answer = answer.await.unwrap();
            assert_eq!(answer.status().as_u16(), want, "{path} over HTTP/2");
            assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
        }

        // An upgrade the relay's handshake would refuse is the HTTP server's to answer.
        let mut io = tls(&s, b"http/1.1").await;
        io.write_all(
            b"GET /api/v1/stream HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
              Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
        let (status, head, _) = response(&mut io).await;
        assert_eq!(status, 400, "{head}");
        assert!(head.to_ascii_lowercase().contains("date:"), "{head}");
    });
}

#[test]
fn silent_clients_are_not_kept() {
    let s = Server::start();
    runtime().block_on(async {
        let started = Instant::now();
        // No TLS handshake at all.
        let mut raw = TcpStream::connect(("127.0.0.1", port(&s))).await.unwrap();
        // A TLS handshake, then no request.
        let mut quiet = tls(&s, b"http/1.1").await;
        let (a, b) = tokio::join!(
            tokio::time::timeout(WAIT, async { raw.read(&mut [0u8; 64]).await }),
            tokio::time::timeout(WAIT, async {
                let mut all = Vec::new();
                let _ = quiet.read_to_end(&mut all).await;
                all
            }),
        );
        assert!(
            matches!(a, Ok(Ok(0)) | Ok(Err(_))),
            "the handshake times out: {a:?}"
        );
        let answer = String::from_utf8(b.expect("the server closes")).unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    });
}

#[test]
fn stopping_closes_device_streams_at_once_on_both_carriers() {
    let mut s = Server::start();
    let owner = s.owner();
    let net = owner.first_network();
    let a = person(&s, &owner, &net, "first@example.test");
    let b = person(&s, &owner, &net, "second@example.test");
    let rt = runtime();
    // A stream opened as the first request, and one after another request.
    let mut first = a.connect();
    let mut later = rt.block_on(async {
        let mut io = tls(&s, b"http/1.1").await;
        io.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(response(&mut io).await.0, 200);
        let (mut ws, answer) = upgrade(&s, io).await;
        assert!(served_by_http_server(&answer));
        let auth = json!({"type": "authenticate", "token": b.token}).to_string();
        ws.send(Message::text(auth)).await.unwrap();
        assert_eq!(next_frame(&mut ws).await["type"], "ready");
        ws
    });
    let started = Instant::now();
    let status = s.signal_and_wait(libc::SIGTERM);
    let took = started.elapsed();
    assert!(status.success(), "{}", s.lines.text());
    // The harness gives the HTTP server 5 s (http.shutdown_timeout_secs) to finish;
    // open device streams no longer hold it that long.
    assert!(
        took < Duration::from_secs(4),
        "stopping took {took:?}\n{}",
        s.lines.text()
    );
    assert!(first.closes_within(Duration::from_secs(1)));
    rt.block_on(closes(&mut later));
    assert!(s.lines.text().contains("stopped cleanly"));
}
