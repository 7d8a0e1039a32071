//! A TURN client (RFC 8656 over STUN, RFC 8489) on tokio, for outpost's integration tests
//! and benchmarks. It speaks to any standard TURN server over UDP, TCP or TLS and is
//! checked against coturn (`tests/turn_client_coturn.rs`).
//!
//! [`TurnClient`] owns one connection and runs one request at a time (`&mut self`): it
//! sends the request, retransmits it over UDP on RFC 8489's schedule ([`Retransmit`]), and
//! reads until the response with the same transaction id arrives; peer data that arrives
//! meanwhile is queued for [`TurnClient::recv`]. Requests use the long-term credential
//! mechanism: the first goes without credentials, the 401 brings REALM and NONCE, and the
//! request is sent again signed (USERNAME, REALM, NONCE, MESSAGE-INTEGRITY, FINGERPRINT); a
//! 438 Stale Nonce brings a new NONCE and the request is sent once more. Realm and nonce are
//! kept for later requests. A refusal is [`TurnError::Refused`] with the server's code.
//!
//! Escape hatches for tests: [`TurnClient::set_nonce`] (replay an old nonce),
//! [`TurnClient::request_once`] (no automatic retry, so a 438 is seen),
//! [`TurnClient::request`] (any method and attributes), [`TurnClient::raw_transaction`]
//! (bytes in, response bytes out) and [`TurnClient::send_raw`].
//!
//! Files: `transport` (sockets and stream framing), `auth` (credentials and signing),
//! `retransmit` (the schedule), `allocation` (Allocate's options and result), `incoming`
//! (sorting what the server sends), `error` ([`TurnError`]).

mod allocation;
mod auth;
mod error;
mod incoming;
mod retransmit;
mod transport;

pub use crate::calling::attributes::Family;
pub use allocation::{AllocateOptions, Allocation};
pub use error::TurnError;
pub use incoming::Incoming;
pub use retransmit::Retransmit;
pub use transport::{ALPN_STUN_TURN, TlsSettings, Transport};

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use auth::{Auth, Learned};
use incoming::Inbound;
use transport::Conn;

use crate::calling::attributes::{Attribute, attr};
use crate::calling::message::{Class, Message, MessageWriter, Method, TransactionId};
use crate::calling::turn::ChannelData;

/// Peer data kept while no one calls [`TurnClient::recv`]; more is dropped and counted.
const PENDING_MAX: usize = 4096;

/// A TURN method's name, for errors.
pub fn method_name(method: Method) -> &'static str {
    match method {
        Method::BINDING => "Binding",
        Method::ALLOCATE => "Allocate",
        Method::REFRESH => "Refresh",
        Method::SEND => "Send",
        Method::DATA => "Data",
        Method::CREATE_PERMISSION => "CreatePermission",
        Method::CHANNEL_BIND => "ChannelBind",
        _ => "request",
    }
}

/// One client connection to a TURN server, holding at most one allocation.
pub struct TurnClient {
    conn: Conn,
    server: SocketAddr,
    transport: &'static str,
    auth: Auth,
    retransmit: Retransmit,
    pending: VecDeque<Incoming>,
    dropped: u64,
    allocation: Option<Allocation>,
}

impl std::fmt::Debug for TurnClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnClient")
            .field("server", &self.server)
            .field("transport", &self.transport)
            .field("auth", &self.auth)
            .field("allocation", &self.allocation)
            .finish_non_exhaustive()
    }
}

impl TurnClient {
    /// Opens the connection (binds and connects the UDP socket, or connects TCP and does the
    /// TLS handshake). Nothing is sent yet.
    pub async fn connect(
        transport: Transport,
        server: SocketAddr,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<TurnClient, TurnError> {
        let name = transport.name();
        let conn = Conn::open(transport, server).await?;
        Ok(TurnClient {
            conn,
            server,
            transport: name,
            auth: Auth::new(username.into(), password.into()),
            retransmit: Retransmit::default(),
            pending: VecDeque::new(),
            dropped: 0,
            allocation: None,
        })
    }

    pub fn set_retransmit(&mut self, r: Retransmit) {
        self.retransmit = r;
    }

    pub fn retransmit(&self) -> Retransmit {
        self.retransmit
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// `"UDP"`, `"TCP"` or `"TLS"`.
    pub fn transport(&self) -> &'static str {
        self.transport
    }

    /// The client's end of the connection.
    pub fn local_addr(&self) -> Result<SocketAddr, TurnError> {
        self.conn.local_addr()
    }

    pub fn username(&self) -> &str {
        self.auth.username()
    }

    /// The realm the server announced, once it has.
    pub fn realm(&self) -> Option<&str> {
        self.auth.realm()
    }

    /// The nonce the next signed request will carry.
    pub fn nonce(&self) -> Option<&str> {
        self.auth.nonce()
    }

    /// Replaces the nonce the next signed request carries (to replay an old one).
    pub fn set_nonce(&mut self, nonce: impl Into<String>) {
        self.auth.set_nonce(nonce.into());
    }

    /// The allocation granted on this connection, if any.
    pub fn allocation(&self) -> Option<&Allocation> {
        self.allocation.as_ref()
    }

    /// Peer data dropped because more than 4096 frames waited for [`Self::recv`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// A STUN Binding request (no credentials): the client's address as the server sees it.
    pub async fn binding(&mut self) -> Result<SocketAddr, TurnError> {
        let request = self.build(Method::BINDING, &[], false)?;
        let response = self.transaction("Binding", &request).await?;
        let msg = parse_response(Method::BINDING, &response)?;
        if msg.class() == Class::Error {
            return Err(refusal("Binding", &msg));
        }
        match msg.get_decoded(attr::XOR_MAPPED_ADDRESS) {
            Some(Ok(Attribute::XorMappedAddress(a))) => Ok(a),
            _ => Err(TurnError::bad("Binding", "no XOR-MAPPED-ADDRESS")),
        }
    }

    /// Allocates a relayed address (authenticating as needed).
    pub async fn allocate(&mut self, opts: &AllocateOptions) -> Result<Allocation, TurnError> {
        let response = self.request(Method::ALLOCATE, &opts.attributes()).await?;
        let msg = parse_response(Method::ALLOCATE, &response)?;
        let a = Allocation::from_response(&msg)?;
        self.allocation = Some(a);
        Ok(a)
    }

    /// Refreshes the allocation for `lifetime` seconds (0 deletes it); returns the lifetime
    /// the server granted.
    pub async fn refresh(&mut self, lifetime: u32) -> Result<u32, TurnError> {
        let response = self
            .request(Method::REFRESH, &[Attribute::Lifetime(lifetime)])
            .await?;
        let msg = parse_response(Method::REFRESH, &response)?;
        let granted = allocation::lifetime(&msg, "Refresh")?;
        if granted == 0 {
            self.allocation = None;
        } else if let Some(a) = &mut self.allocation {
            a.lifetime = granted;
        }
        Ok(granted)
    }

    /// Deletes the allocation (a Refresh with lifetime 0; the answer's LIFETIME, which
    /// some servers leave out here, is not needed).
    pub async fn release(&mut self) -> Result<(), TurnError> {
        self.request(Method::REFRESH, &[Attribute::Lifetime(0)])
            .await?;
        self.allocation = None;
        Ok(())
    }

    /// Installs (or refreshes) permissions for these peer addresses (ports are ignored).
    pub async fn create_permission(&mut self, peers: &[IpAddr]) -> Result<(), TurnError> {
        let attrs: Vec<Attribute<'_>> = peers
            .iter()
            .map(|ip| Attribute::XorPeerAddress(SocketAddr::new(*ip, 0)))
            .collect();
        self.request(Method::CREATE_PERMISSION, &attrs).await?;
        Ok(())
    }

    /// Binds `channel` (0x4000–0x4FFF; others are sent as given, for tests) to `peer`.
    pub async fn channel_bind(&mut self, channel: u16, peer: SocketAddr) -> Result<(), TurnError> {
        self.request(
            Method::CHANNEL_BIND,
            &[
                Attribute::ChannelNumber(channel),
                Attribute::XorPeerAddress(peer),
            ],
        )
        .await?;
        Ok(())
    }

    /// Sends `data` to `peer` in a Send indication (no answer comes back).
    pub async fn send_indication(
        &mut self,
        peer: SocketAddr,
        data: &[u8],
    ) -> Result<(), TurnError> {
        let mut buf = Vec::with_capacity(40 + data.len());
        let mut w = MessageWriter::new(&mut buf, Method::SEND, Class::Indication, new_tid());
        w.attr(&Attribute::XorPeerAddress(peer))?;
        w.attr(&Attribute::Data(data))?;
        w.finish();
        self.conn.send(&buf).await
    }

    /// Sends `data` on a bound channel (padded to 4 bytes over TCP and TLS).
    pub async fn send_channel_data(&mut self, channel: u16, data: &[u8]) -> Result<(), TurnError> {
        let mut buf = Vec::with_capacity(8 + data.len());
        ChannelData { channel, data }.encode(&mut buf, self.conn.reliable())?;
        self.conn.send(&buf).await
    }

    /// The next peer data (queued first). Waits as long as it takes: bound it with
    /// `tokio::time::timeout`, which is safe to cancel.
    pub async fn recv(&mut self) -> Result<Incoming, TurnError> {
        if let Some(i) = self.pending.pop_front() {
            return Ok(i);
        }
        loop {
            let frame = self.conn.recv().await?;
            if let Inbound::Incoming(i) = incoming::sort(&frame) {
                return Ok(i);
            }
        }
    }

    /// Sends a request of any method with these attributes, authenticating as needed
    /// (401 → sign; 438 → new nonce, once), and returns the success response's bytes.
    pub async fn request(
        &mut self,
        method: Method,
        attrs: &[Attribute<'_>],
    ) -> Result<Vec<u8>, TurnError> {
        self.exchange(method, attrs, true).await
    }

    /// Sends a request once, signed if a realm and nonce are known, with no automatic retry:
    /// a 401 or 438 is returned as [`TurnError::Refused`] (its REALM and NONCE are still
    /// taken, so the next request carries the fresh nonce).
    pub async fn request_once(
        &mut self,
        method: Method,
        attrs: &[Attribute<'_>],
    ) -> Result<Vec<u8>, TurnError> {
        self.exchange(method, attrs, false).await
    }

    /// Sends `request` (a STUN request as bytes, at least its 20-byte header), retransmitted
    /// over UDP, and returns the bytes of the response with its transaction id, whatever its
    /// class. Nothing is checked or learnt.
    pub async fn raw_transaction(&mut self, request: &[u8]) -> Result<Vec<u8>, TurnError> {
        self.transaction("raw request", request).await
    }

    /// Sends bytes as they are (one datagram over UDP), expecting nothing.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), TurnError> {
        self.conn.send(bytes).await
    }

    fn build(
        &self,
        method: Method,
        attrs: &[Attribute<'_>],
        sign: bool,
    ) -> Result<Vec<u8>, TurnError> {
        let mut buf = Vec::with_capacity(256);
        let mut w = MessageWriter::new(&mut buf, method, Class::Request, new_tid());
        for a in attrs {
            w.attr(a)?;
        }
        if sign {
            self.auth.sign(&mut w)?;
        }
        w.fingerprint()?;
        w.finish();
        Ok(buf)
    }

    /// One request with the credential dance; `retry` allows the re-sends after a 401
    /// challenge and a 438.
    async fn exchange(
        &mut self,
        method: Method,
        attrs: &[Attribute<'_>],
        retry: bool,
    ) -> Result<Vec<u8>, TurnError> {
        let name = method_name(method);
        let mut challenged = false;
        let mut stale = false;
        loop {
            let signed = self.auth.ready();
            let request = self.build(method, attrs, signed)?;
            let response = self.transaction(name, &request).await?;
            let msg = parse_response(method, &response)?;
            if msg.class() == Class::Success {
                if signed {
                    self.auth
                        .verify(&msg)
                        .map_err(|source| TurnError::Integrity {
                            method: name,
                            source,
                        })?;
                }
                return Ok(response);
            }
            let err = refusal(name, &msg);
            let again = match err.code() {
                Some(401) if !signed && !challenged => {
                    challenged = true;
                    self.auth.learn(&msg) == Learned::Challenge
                }
                Some(438) if !stale => {
                    stale = true;
                    self.auth.learn(&msg) == Learned::Challenge
                }
                Some(401 | 438) => {
                    self.auth.learn(&msg);
                    false
                }
                _ => false,
            };
            if !(again && retry) {
                return Err(err);
            }
        }
    }

    /// Sends `request` and waits for the response with its transaction id, retransmitting
    /// over UDP; peer data received meanwhile is queued.
    async fn transaction(
        &mut self,
        method: &'static str,
        request: &[u8],
    ) -> Result<Vec<u8>, TurnError> {
        let tid: TransactionId = request
            .get(8..20)
            .and_then(|t| t.try_into().ok())
            .ok_or_else(|| TurnError::InvalidInput("a STUN request is at least 20 bytes".into()))?;
        let started = Instant::now();
        let mut transmissions = 0;
        for wait in self.retransmit.schedule(self.conn.reliable()) {
            self.conn.send(request).await?;
            transmissions += 1;
            let deadline = tokio::time::Instant::now() + wait;
            while let Ok(frame) = tokio::time::timeout_at(deadline, self.conn.recv()).await {
                let frame = frame?;
                match incoming::sort(&frame) {
                    Inbound::Response(t) if t == tid => return Ok(frame),
                    Inbound::Incoming(i) => self.queue(i),
                    Inbound::Response(_) | Inbound::Ignored => {}
                }
            }
        }
        Err(TurnError::Timeout {
            method,
            transmissions,
            waited_ms: started.elapsed().as_millis() as u64,
        })
    }

    fn queue(&mut self, i: Incoming) {
        if self.pending.len() < PENDING_MAX {
            self.pending.push_back(i);
        } else {
            self.dropped += 1;
        }
    }
}

fn new_tid() -> TransactionId {
    rand::random()
}

/// Parses a response and checks it answers `method`.
fn parse_response(method: Method, bytes: &[u8]) -> Result<Message<'_>, TurnError> {
    let name = method_name(method);
    let msg = Message::parse(bytes).map_err(|e| TurnError::bad(name, e.to_string()))?;
    if msg.method() != method {
        return Err(TurnError::bad(
            name,
            format!("the answer is for method {:#05x}", msg.method().0),
        ));
    }
    Ok(msg)
}

/// The refusal an error response carries.
fn refusal(method: &'static str, msg: &Message<'_>) -> TurnError {
    match msg.get_decoded(attr::ERROR_CODE) {
        Some(Ok(Attribute::ErrorCode { code, reason })) => TurnError::Refused {
            method,
            code,
            reason: reason.to_string(),
        },
        Some(Err(e)) => TurnError::bad(method, format!("ERROR-CODE: {e}")),
        _ => TurnError::bad(method, "an error response without ERROR-CODE"),
    }
}
