//! STUN and TURN requests (RFC 8489, RFC 8656 §7–§11): Binding, Allocate, Refresh,
//! CreatePermission, ChannelBind, and the long-term-credential check in front of them.
//!
//! Every request gets an answer or, when its source is over the unauthenticated rate,
//! silence. Answers to unauthenticated requests carry nothing but what the client needs
//! to authenticate (ERROR-CODE without reason phrase over UDP, REALM, NONCE), so they
//! stay as small as the challenge can be; authenticated answers carry SOFTWARE,
//! MESSAGE-INTEGRITY (or -SHA256, as the request did) and FINGERPRINT if the request had
//! one. Indications (Send) are in [`super::datapath`].

use super::allocation::{Allocation, ClientPath, FiveTuple, Transport};
use super::attributes::{Attribute, Family, attr, is_known};
use super::credentials;
use super::integrity::long_term_key_md5;
use super::message::{Class, Message, MessageWriter, Method};
use super::nonce::NonceCheck;
use super::peers::Denied;
use super::registry::Refusal;
use super::server::Turn;
use super::turn::{DEFAULT_LIFETIME_SECS, TRANSPORT_UDP, valid_channel};
use crate::metrics::calling as m;
use crate::relay::now_ms;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An authenticated request's sender.
struct Auth {
    user: Arc<str>,
    network_id: String,
    username: String,
    key: [u8; 16],
    sha256: bool,
    fingerprint: bool,
}

/// Attributes this server acts on; other comprehension-required ones get 420. Relay
/// ports are shared, so there is no port to reserve: RESERVATION-TOKEN is unsupported,
/// and EVEN-PORT gets an even port without a reservation for the next one.
fn supported(t: u16) -> bool {
    is_known(t) && t != attr::RESERVATION_TOKEN
}

/// The reason phrases of the error codes this server sends.
fn reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        420 => "Unknown Attribute",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        440 => "Address Family not Supported",
        441 => "Wrong Credentials",
        442 => "Unsupported Transport Protocol",
        443 => "Peer Address Family Mismatch",
        486 => "Allocation Quota Reached",
        508 => "Insufficient Capacity",
        _ => "Server Error",
    }
}

impl Turn {
    /// Answers one STUN request from `five` (already known to be a request), writing the
    /// answer to `out` (left empty for no answer).
    pub fn handle_request(
        &self,
        five: &FiveTuple,
        path: &ClientPath,
        msg: &Message<'_>,
        out: &mut Vec<u8>,
    ) {
        let tid = *msg.transaction_id();
        let method = msg.method();
        if msg.has_fingerprint() && msg.verify_fingerprint().is_err() {
            return;
        }
        let unknown = msg.unknown_comprehension_required(supported);
        if !unknown.is_empty() {
            if !self.admit_unauthenticated(five) {
                return;
            }
            let mut w = MessageWriter::new(out, method, Class::Error, tid);
            let _ = w.attr(&Attribute::ErrorCode {
                code: 420,
                reason: "",
            });
            let mut list = Vec::with_capacity(unknown.as_slice().len() * 2);
            for t in unknown.as_slice() {
                list.extend_from_slice(&t.to_be_bytes());
            }
            let _ = w.raw(attr::UNKNOWN_ATTRIBUTES, &list);
            w.finish();
            return;
        }
        if method == Method::BINDING {
            if !self.admit_unauthenticated(five) {
                return;
            }
            let mut w = MessageWriter::new(out, method, Class::Success, tid);
            let _ = w.attr(&Attribute::XorMappedAddress(five.client));
            if msg.has_fingerprint() {
                let _ = w.fingerprint();
            }
            w.finish();
            return;
        }
        if ![
            Method::ALLOCATE,
            Method::REFRESH,
            Method::CREATE_PERMISSION,
            Method::CHANNEL_BIND,
        ]
        .contains(&method)
        {
            if self.admit_unauthenticated(five) {
                self.error(out, five, msg, 400);
            }
            return;
        }
        let auth = match self.authenticate(five, msg, out) {
            Some(a) => a,
            None => return,
        };
        let result = match method {
            Method::ALLOCATE => self.allocate(five, path, msg, &auth, out),
            Method::REFRESH => self.refresh(five, msg, &auth, out),
            Method::CREATE_PERMISSION => self.create_permission(five, msg, &auth, out),
            _ => self.channel_bind(five, msg, &auth, out),
        };
        if let Err(code) = result {
            tracing::debug!(client = %five.client, method = method.0, code, "TURN request refused");
            out.clear();
            let mut w = MessageWriter::new(out, method, Class::Error, tid);
            let _ = w.attr(&Attribute::ErrorCode {
                code,
                reason: reason(code),
            });
            let _ = w.attr(&Attribute::Software(self.software()));
            self.seal(&mut w, &auth);
            w.finish();
        }
    }

    /// Takes one unit of the source's unauthenticated budget.
    fn admit_unauthenticated(&self, five: &FiveTuple) -> bool {
        // Over TCP and TLS the handshake proved the source address: no reflection.
        if five.transport.is_stream() {
            return true;
        }
        if self.limiter.check_key(&five.client.ip()).is_ok() {
            true
        } else {
            m::RATE_LIMITED.inc();
            false
        }
    }

    /// An error answer to an unauthenticated request: no reason phrase over UDP, and the
    /// realm and a fresh nonce for 401 and 438. With `calling.strict_amplification`, a UDP
    /// request this answer would outgrow gets no answer at all.
    fn error(&self, out: &mut Vec<u8>, five: &FiveTuple, request: &Message<'_>, code: u16) {
        out.clear();
        let mut w = MessageWriter::new(
            out,
            request.method(),
            Class::Error,
            *request.transaction_id(),
        );
        let phrase = if five.transport.is_stream() {
            reason(code)
        } else {
            ""
        };
        let _ = w.attr(&Attribute::ErrorCode {
            code,
            reason: phrase,
        });
        if code == 401 || code == 438 {
            let nonce = self.nonces.issue(five.client.ip(), now_ms() / 1000);
            let _ = w.attr(&Attribute::Realm(&self.realm));
            let _ = w.attr(&Attribute::Nonce(&nonce));
        }
        if request.has_fingerprint() {
            let _ = w.fingerprint();
        }
        let len = w.finish();
        if self.config.strict_amplification && !five.transport.is_stream() && len > request.len() {
            m::AMPLIFICATION_REFUSED.inc();
            out.clear();
        }
    }

    /// The long-term credential check (RFC 8489 §9.2.4) and the caller's policy. On
    /// refusal the answer is in `out` and None is returned.
    fn authenticate(&self, five: &FiveTuple, msg: &Message<'_>, out: &mut Vec<u8>) -> Option<Auth> {
        let tid = *msg.transaction_id();
        let method = msg.method();
        let sha256 = msg.has_integrity_sha256() && !msg.has_integrity();
        if !msg.has_integrity() && !msg.has_integrity_sha256() {
            if self.admit_unauthenticated(five) {
                self.error(out, five, msg, 401);
            }
            return None;
        }
        let text = |t: u16| match msg.get_decoded(t) {
            Some(Ok(Attribute::Username(s)))
            | Some(Ok(Attribute::Realm(s)))
            | Some(Ok(Attribute::Nonce(s))) => Some(s),
            _ => None,
        };
        let (Some(username), Some(realm), Some(nonce)) =
            (text(attr::USERNAME), text(attr::REALM), text(attr::NONCE))
        else {
            if self.admit_unauthenticated(five) {
                self.error(out, five, msg, 400);
            }
            return None;
        };
        let refuse = |out: &mut Vec<u8>, code: u16, why: &str| {
            m::AUTH_FAILURES.with_label_values(&[why]).inc();
            if self.admit_unauthenticated(five) {
                self.error(out, five, msg, code);
            }
            None
        };
        let now = now_ms() / 1000;
        match self.nonces.check(nonce, five.client.ip(), now) {
            NonceCheck::Fresh => {}
            NonceCheck::Stale | NonceCheck::Invalid => return refuse(out, 438, "stale_nonce"),
        }
        if realm != self.realm {
            return refuse(out, 401, "wrong_realm");
        }
        let user = match credentials::parse_username(username) {
            Ok(u) if u.expires_at < now => return refuse(out, 401, "expired"),
            Ok(u) => u,
            Err(_) => return refuse(out, 401, "malformed_username"),
        };
        // Requests on an existing allocation reuse its key (no derivation per request).
        let existing = self.registry.get(five).filter(|a| &*a.username == username);
        let check = |key: &[u8]| {
            if sha256 {
                msg.verify_integrity_sha256(key).is_ok()
            } else {
                msg.verify_integrity(key).is_ok()
            }
        };
        let key = match existing.as_ref() {
            Some(a) if check(&a.key) => Some(a.key),
            _ => {
                let secrets = self.secrets.current();
                let passwords = match secrets.passwords(username, now) {
                    Ok(p) => p.collect::<Vec<_>>(),
                    Err(_) => return refuse(out, 401, "expired"),
                };
                passwords
                    .iter()
                    .map(|p| long_term_key_md5(username, &self.realm, p))
                    .find(|k| check(k))
            }
        };
        let Some(key) = key else {
            return refuse(out, 401, "wrong_password");
        };
        // From here on the sender proved the credentials: answers are sealed with its key.
        let mut auth = Auth {
            user: Arc::from(user.user_id),
            network_id: String::new(),
            username: username.to_string(),
            key,
            sha256,
            fingerprint: msg.has_fingerprint(),
        };
        let policy_refusal = match self.caller_policy(&auth.user, five.transport) {
            Ok(account) => {
                auth.network_id = account.user.network_id.clone();
                None
            }
            Err(why) => Some(why),
        };
        if let Some(why) = policy_refusal {
            m::AUTH_FAILURES.with_label_values(&[why]).inc();
            let code = if why == "unknown_user" { 401 } else { 403 };
            let mut w = MessageWriter::new(out, method, Class::Error, tid);
            let phrase = match why {
                "account_inactive" => "this account is suspended, locked or deleted",
                "calling_disabled" => "calls are turned off for your security group",
                "tcp_required" => "your security group requires calls over TCP or TLS",
                _ => reason(code),
            };
            let _ = w.attr(&Attribute::ErrorCode {
                code,
                reason: phrase,
            });
            if code == 401 {
                let nonce = self.nonces.issue(five.client.ip(), now);
                let _ = w.attr(&Attribute::Realm(&self.realm));
                let _ = w.attr(&Attribute::Nonce(&nonce));
            } else {
                self.seal(&mut w, &auth);
            }
            w.finish();
            return None;
        }
        Some(auth)
    }

    /// Closes an authenticated answer: SOFTWARE is added by the caller; this adds the
    /// integrity attribute the request used and FINGERPRINT if the request had one.
    fn seal(&self, w: &mut MessageWriter<'_>, auth: &Auth) {
        let _ = if auth.sha256 {
            w.message_integrity_sha256(&auth.key)
        } else {
            w.message_integrity(&auth.key)
        };
        if auth.fingerprint {
            let _ = w.fingerprint();
        }
    }

    /// The allocation of `five`, which must belong to the same username (441 otherwise).
    fn own_allocation(&self, five: &FiveTuple, auth: &Auth) -> Result<Arc<Allocation>, u16> {
        let a = self.registry.get(five).ok_or(437u16)?;
        if *a.username != *auth.username {
            m::AUTH_FAILURES
                .with_label_values(&["wrong_username"])
                .inc();
            return Err(441);
        }
        Ok(a)
    }

    fn allocate(
        &self,
        five: &FiveTuple,
        path: &ClientPath,
        msg: &Message<'_>,
        auth: &Auth,
        out: &mut Vec<u8>,
    ) -> Result<(), u16> {
        let tid = *msg.transaction_id();
        if let Some(existing) = self.registry.get(five) {
            // A retransmission gets the same answer; anything else is a mismatch.
            let s = existing.state();
            if let Some((t, bytes)) = &s.last_response
                && *t == tid
                && *existing.username == *auth.username
            {
                out.extend_from_slice(bytes);
                return Ok(());
            }
            return Err(437);
        }
        match msg.get_decoded(attr::REQUESTED_TRANSPORT) {
            Some(Ok(Attribute::RequestedTransport(TRANSPORT_UDP))) => {}
            Some(Ok(Attribute::RequestedTransport(_))) => return Err(442),
            _ => return Err(400),
        }
        let requested = match msg.get_decoded(attr::REQUESTED_ADDRESS_FAMILY) {
            Some(Ok(Attribute::RequestedAddressFamily(f))) => Some(f),
            Some(_) => return Err(400),
            None => None,
        };
        let additional = match msg.get_decoded(attr::ADDITIONAL_ADDRESS_FAMILY) {
            Some(Ok(Attribute::AdditionalAddressFamily(Family::V6))) => true,
            Some(_) => return Err(400),
            None => false,
        };
        if requested.is_some() && additional {
            return Err(400);
        }
        let ipv6 = requested == Some(Family::V6);
        let lifetime = self.granted_lifetime(msg);
        if lifetime == 0 {
            return Err(400);
        }
        let even = msg.get(attr::EVEN_PORT).is_some();
        let (port, relayed) = match self.registry.reserve(&auth.user, ipv6, even) {
            Ok(r) => r,
            Err(Refusal::Family) => return Err(440),
            Err(Refusal::UserQuota) => {
                m::QUOTA_REFUSALS.with_label_values(&["user"]).inc();
                return Err(486);
            }
            Err(Refusal::TotalQuota) => {
                m::QUOTA_REFUSALS.with_label_values(&["total"]).inc();
                return Err(508);
            }
        };
        let call = self
            .calls
            .attach(&auth.username, &auth.user, &auth.network_id);
        let alloc = Arc::new(Allocation::new(
            self.registry.next_id(),
            *five,
            path.clone(),
            auth.user.clone(),
            &auth.username,
            auth.key,
            relayed,
            port,
            call.clone(),
            Duration::from_secs(u64::from(lifetime)),
            self.config.max_bandwidth_bytes_per_sec,
        ));
        if self.registry.insert(alloc.clone()).is_err() {
            self.registry.unreserve(&auth.user, ipv6, port);
            self.calls.detach(&call, &auth.user, 0);
            return Err(437);
        }
        let transport = five.transport.label();
        m::ALLOCATIONS.with_label_values(&[transport]).inc();
        m::ALLOCATIONS_ACTIVE.with_label_values(&[transport]).inc();
        let mut w = MessageWriter::new(out, Method::ALLOCATE, Class::Success, tid);
        let _ = w.attr(&Attribute::XorRelayedAddress(relayed));
        if additional {
            // Dual allocation (RFC 8656 §7.2): only the IPv4 half here.
            let _ = w.attr(&Attribute::AddressErrorCode {
                family: Family::V6,
                code: 440,
                reason: reason(440),
            });
        }
        let _ = w.attr(&Attribute::Lifetime(lifetime));
        let _ = w.attr(&Attribute::XorMappedAddress(five.client));
        let _ = w.attr(&Attribute::Software(self.software()));
        self.seal(&mut w, auth);
        w.finish();
        alloc.state().last_response = Some((tid, out.clone()));
        tracing::debug!(user = %auth.user, relayed = %relayed, transport, lifetime, "TURN allocation");
        Ok(())
    }

    /// RFC 8656 §7.2: min(requested, maximum), but never below the default; 0 stays 0
    /// (for Refresh, which deletes).
    fn granted_lifetime(&self, msg: &Message<'_>) -> u32 {
        match msg.get_decoded(attr::LIFETIME) {
            Some(Ok(Attribute::Lifetime(0))) => 0,
            Some(Ok(Attribute::Lifetime(s))) => s
                .min(self.config.max_lifetime_secs)
                .max(DEFAULT_LIFETIME_SECS.min(self.config.max_lifetime_secs)),
            _ => DEFAULT_LIFETIME_SECS.min(self.config.max_lifetime_secs),
        }
    }

    fn refresh(
        &self,
        five: &FiveTuple,
        msg: &Message<'_>,
        auth: &Auth,
        out: &mut Vec<u8>,
    ) -> Result<(), u16> {
        let a = self.own_allocation(five, auth)?;
        if let Some(Ok(Attribute::RequestedAddressFamily(f))) =
            msg.get_decoded(attr::REQUESTED_ADDRESS_FAMILY)
            && (f == Family::V6) != a.relayed.is_ipv6()
        {
            return Err(443);
        }
        let lifetime = self.granted_lifetime(msg);
        if lifetime == 0 {
            self.remove(&a);
        } else {
            a.state().expires = Instant::now() + Duration::from_secs(u64::from(lifetime));
        }
        let mut w = MessageWriter::new(out, Method::REFRESH, Class::Success, *msg.transaction_id());
        let _ = w.attr(&Attribute::Lifetime(lifetime));
        let _ = w.attr(&Attribute::Software(self.software()));
        self.seal(&mut w, auth);
        w.finish();
        Ok(())
    }

    /// The peer addresses of a request, each checked against the allocation's family and
    /// the peer policy.
    fn peers(
        &self,
        msg: &Message<'_>,
        a: &Allocation,
        with_port: bool,
    ) -> Result<Vec<SocketAddr>, u16> {
        let mut peers = Vec::new();
        for raw in msg.effective_attributes() {
            if raw.attr_type != attr::XOR_PEER_ADDRESS {
                continue;
            }
            let Ok(Attribute::XorPeerAddress(p)) = Attribute::decode(raw, msg.transaction_id())
            else {
                return Err(400);
            };
            if p.is_ipv6() != a.relayed.is_ipv6() {
                return Err(443);
            }
            let verdict = if with_port {
                self.peers.check(p)
            } else {
                self.peers.check_ip(p.ip())
            };
            // A peer that is another allocation of this appliance is always allowed.
            if let Err(why) = verdict
                && self.registry.own_relay(&p).is_none()
            {
                m::DENIED_PEERS
                    .with_label_values(&[match why {
                        Denied::Address => "address",
                        Denied::OwnService => "own_service",
                    }])
                    .inc();
                return Err(403);
            }
            peers.push(p);
        }
        if peers.is_empty() {
            return Err(400);
        }
        Ok(peers)
    }

    fn create_permission(
        &self,
        five: &FiveTuple,
        msg: &Message<'_>,
        auth: &Auth,
        out: &mut Vec<u8>,
    ) -> Result<(), u16> {
        let a = self.own_allocation(five, auth)?;
        let peers = self.peers(msg, &a, false)?;
        let now = Instant::now();
        for p in peers {
            self.registry.permit(&a, p.ip(), now);
        }
        self.empty_success(out, msg, auth);
        Ok(())
    }

    fn channel_bind(
        &self,
        five: &FiveTuple,
        msg: &Message<'_>,
        auth: &Auth,
        out: &mut Vec<u8>,
    ) -> Result<(), u16> {
        let a = self.own_allocation(five, auth)?;
        let number = match msg.get_decoded(attr::CHANNEL_NUMBER) {
            Some(Ok(Attribute::ChannelNumber(n))) if valid_channel(n) => n,
            _ => return Err(400),
        };
        let peers = self.peers(msg, &a, true)?;
        let [peer] = peers[..] else {
            return Err(400);
        };
        let now = Instant::now();
        a.state().bind(number, peer, now).map_err(|_| 400u16)?;
        self.registry.permit(&a, peer.ip(), now);
        self.empty_success(out, msg, auth);
        Ok(())
    }

    /// A success answer with no attributes but SOFTWARE and the integrity ones.
    fn empty_success(&self, out: &mut Vec<u8>, msg: &Message<'_>, auth: &Auth) {
        let mut w = MessageWriter::new(out, msg.method(), Class::Success, *msg.transaction_id());
        let _ = w.attr(&Attribute::Software(self.software()));
        self.seal(&mut w, auth);
        w.finish();
    }

    /// Whether `user` may hold an allocation over `transport` now: Err(metric reason).
    pub fn caller_policy(
        &self,
        user: &str,
        transport: Transport,
    ) -> Result<Arc<crate::relay::roster::Account>, &'static str> {
        let account = match self.relay.roster.account(user) {
            Ok(Some(a)) => a,
            Ok(None) => return Err("unknown_user"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the caller's account; refusing the TURN request");
                return Err("unknown_user");
            }
        };
        if account.refusal().is_some() {
            return Err("account_inactive");
        }
        if !account.policy.audio_calls {
            return Err("calling_disabled");
        }
        if account.policy.force_tcp_calls && transport == Transport::Udp {
            return Err("tcp_required");
        }
        Ok(account)
    }
}
