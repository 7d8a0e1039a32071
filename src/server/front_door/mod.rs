//! The front door: outpost's HTTPS listeners. It accepts TCP itself, does the TLS
//! handshake (the appliance's live certificate; ALPN `h2` and `http/1.1`) and hands
//! each connection to whoever serves it:
//!
//! - HTTP/2 → the HTTP server;
//! - HTTP/1.1 whose first request is the device stream's WebSocket upgrade → the
//!   relay, on the TLS stream itself (`relay::websocket::direct`), so an idle device
//!   keeps no HTTP machinery (actix's dispatcher keeps two 8 KiB buffers per
//!   connection for the connection's whole life);
//! - any other HTTP/1.1 connection → the HTTP server, the bytes read to decide given
//!   back first ([`replay`]);
//! - ALPN `stun.turn` (offered when `calling.on_https`) → the calling relay's TURN
//!   over TLS, so TCP 443 serves both.
//!
//! The HTTP server is actix-web's `App`, run by actix-http's `HttpService` on the
//! decrypted stream on actix-server workers — what `HttpServer` does itself — with the
//! same timeouts, peer addresses, `https` connection info and graceful shutdown.
//! Connections are dispatched in [`connection`].

mod connection;
mod first_request;
mod replay;

use crate::config::HttpConfig;
use crate::relay::Relay;
use actix_http::error::DispatchError;
use actix_http::{HttpService, Protocol, Request, Response, body::MessageBody};
use actix_service::{IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, map_config};
use actix_utils::counter::Counter;
use actix_web::dev::AppConfig;
use anyhow::{Context, Result};
use connection::Io;
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::net::TcpStream;

/// The protocols the TLS handshake offers, preferred first.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// The ALPN protocol of TURN over TLS (RFC 7443), offered too when the calling relay
/// shares the HTTPS port.
pub const ALPN_TURN: &[u8] = b"stun.turn";
/// Time a TLS handshake may take (actix-tls's default).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// Time the first request's head may take to arrive (actix-web's
/// `client_request_timeout`); the HTTP server applies it to later requests too.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Time an idle keep-alive connection stays open (actix-web's default).
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Time a closing connection waits for the peer (actix-web's
/// `client_disconnect_timeout`).
pub const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// TLS handshakes one worker runs at once (actix-tls's limit); further connections
/// wait in the listen backlog.
const MAX_HANDSHAKES: usize = 256;
/// Connections waiting to be accepted (actix-web's default).
const BACKLOG: u32 = 1024;

/// What every connection of a listener needs, shared by its workers.
struct Shared {
    tls: tokio_rustls::TlsAcceptor,
    relay: Arc<Relay>,
    /// Headers added to the device stream's `101 Switching Protocols`, as the HTTP
    /// server adds them to every answer.
    headers: &'static [(&'static str, &'static str)],
    /// The calling relay, once it is started (TURN over TLS by ALPN).
    turn: Arc<std::sync::OnceLock<Arc<crate::calling::Turn>>>,
}

/// Bind `config.http.listen` and start serving: the HTTP server built by `app` (as
/// `HttpServer::new` takes it), device streams by `relay`. Returns the running server
/// (await it; stop it through its handle) and the addresses bound.
pub fn start<F, I, S, B>(
    config: &HttpConfig,
    mut tls: rustls::ServerConfig,
    relay: Arc<Relay>,
    turn: Option<Arc<std::sync::OnceLock<Arc<crate::calling::Turn>>>>,
    headers: &'static [(&'static str, &'static str)],
    app: F,
) -> Result<(actix_server::Server, Vec<SocketAddr>)>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    B: MessageBody + 'static,
{
    tls.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    if turn.is_some() {
        tls.alpn_protocols.push(ALPN_TURN.to_vec());
    }
    let shared = Arc::new(Shared {
        tls: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
        relay,
        headers,
        turn: turn.unwrap_or_default(),
    });
    let mut builder = actix_server::Server::build()
        .disable_signals()
        .shutdown_timeout(config.shutdown_timeout_secs);
    if config.workers > 0 {
        builder = builder.workers(config.workers);
    }
    let stopping = builder.graceful_shutdown_signal();
    let mut bound = Vec::new();
    for addr in &config.listen {
        let listener =
            bind(*addr).with_context(|| format!("cannot listen on {addr} (http.listen)"))?;
        let local = listener.local_addr()?;
        bound.push(local);
        let (app, shared, stopping) = (app.clone(), shared.clone(), stopping.clone());
        // Called once per worker, on the worker's thread.
        let worker = move || {
            let stopping = stopping.clone();
            let http = HttpService::<Io, _, _>::build()
                .keep_alive(KEEP_ALIVE)
                .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
                .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
                .local_addr(local)
                // Hidden in actix-http, but what `HttpServer` itself uses: idle
                // keep-alive connections close as soon as a graceful stop begins.
                .graceful_shutdown_signal(move || {
                    let s = stopping.clone();
                    async move { s.notified().await }
                })
                .finish(map_config(
                    app().into_factory().map_err(|e| e.into().error_response()),
                    // actix-web's `AppConfig::new` is crate-private; this is its
                    // public (hidden) twin, which actix-test uses. Secure: `https`.
                    move |_| AppConfig::__priv_test_new(true, local.to_string(), local),
                ));
            let shared = shared.clone();
            actix_service::fn_factory(move || {
                let handler = http.new_service(());
                let shared = shared.clone();
                async move {
                    let handler = handler.await?;
                    Ok::<_, ()>(Door {
                        shared,
                        http: Rc::new(handler),
                        handshakes: Counter::new(MAX_HANDSHAKES),
                    })
                }
            })
        };
        builder = builder
            .listen(format!("outpost-https-{local}"), listener, worker)
            .with_context(|| format!("cannot listen on {addr} (http.listen)"))?;
    }
    Ok((builder.run(), bound))
}

/// A listening socket as actix-web binds one (address reuse, the same backlog).
fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)?.into_std()
}

/// One worker's service for one listener: takes accepted connections while fewer
/// than [`MAX_HANDSHAKES`] are in their TLS handshake.
struct Door<H> {
    shared: Arc<Shared>,
    http: Rc<H>,
    handshakes: Counter,
}

impl<H> Service<TcpStream> for Door<H>
where
    H: Service<(Io, Protocol, Option<SocketAddr>), Response = (), Error = DispatchError> + 'static,
{
    type Response = ();
    type Error = ();
    type Future = LocalBoxFuture<'static, Result<(), ()>>;

    fn poll_ready(&self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), ()>> {
        if self.handshakes.available(cx) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&self, tcp: TcpStream) -> Self::Future {
        let handshake = self.handshakes.get();
        connection::serve(self.shared.clone(), self.http.clone(), tcp, handshake)
            .map(Ok)
            .boxed_local()
    }
}
