//! The relayed packets: client → peer (ChannelData and Send indications arriving on a
//! listener) and peer → client (datagrams arriving on a relay port, framed as ChannelData
//! or Data indications). This is the per-packet hot path, which must cost fewer CPU
//! cycles than coturn's: one lookup, one small lock, no allocation, one system call.
//!
//! A datagram from a peer is received `HEADROOM` bytes into its buffer, so the
//! ChannelData header is written in front of it in place and the frame leaves in the
//! same buffer. Packets between two allocations of this appliance are handed over
//! directly, without going through the kernel.

use super::allocation::{Allocation, ClientPath, Drop, FiveTuple, Transport};
use super::attributes::{Attribute, attr};
use super::batch::{Batch, Outbox};
use super::framing::{Kind, classify};
use super::message::{Class, Message, MessageWriter, Method};
use super::registry::RelayPort;
use super::server::Turn;
use super::turn::ChannelData;
use crate::metrics::calling as m;
use bytes::Bytes;
use prometheus::IntCounter;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::net::UdpSocket;

/// Room in front of a received datagram for the frame header that carries it to the client.
pub const HEADROOM: usize = 4;

/// Pre-resolved traffic counters (a label lookup per packet would cost more than the
/// packet's relaying).
pub struct Traffic {
    packets: [[IntCounter; 3]; 2],
    bytes: [[IntCounter; 3]; 2],
    dropped: [IntCounter; 6],
}

#[derive(Clone, Copy)]
enum Dir {
    ToPeer = 0,
    ToClient = 1,
}

/// Why a packet was dropped, as the `reason` label says it.
#[derive(Clone, Copy)]
enum DropReason {
    NoPermission = 0,
    NoChannel = 1,
    Bandwidth = 2,
    NoAllocation = 3,
    QueueFull = 4,
    DeniedPeer = 5,
}

impl From<Drop> for DropReason {
    fn from(d: Drop) -> Self {
        match d {
            Drop::NoPermission => DropReason::NoPermission,
            Drop::NoChannel => DropReason::NoChannel,
            Drop::Bandwidth => DropReason::Bandwidth,
            Drop::Gone => DropReason::NoAllocation,
        }
    }
}

fn transport_index(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
    }
}

impl Traffic {
    pub fn new() -> Traffic {
        let by = |dir: &str| ["udp", "tcp", "tls"].map(|t| m::PACKETS.with_label_values(&[dir, t]));
        let bytes_by =
            |dir: &str| ["udp", "tcp", "tls"].map(|t| m::BYTES.with_label_values(&[dir, t]));
        Traffic {
            packets: [by("to_peer"), by("to_client")],
            bytes: [bytes_by("to_peer"), bytes_by("to_client")],
            dropped: [
                "no_permission",
                "no_channel",
                "bandwidth",
                "no_allocation",
                "queue_full",
                "denied_peer",
            ]
            .map(|r| m::DROPPED.with_label_values(&[r])),
        }
    }

    /// Counts a packet on its allocation. Called before the packet leaves, so a client
    /// that has received it and ends the allocation at once still finds it counted in the
    /// call record.
    fn on_allocation(&self, dir: Dir, a: &Allocation, len: usize) {
        let (p, b) = match dir {
            Dir::ToPeer => (&a.counters.to_peer_packets, &a.counters.to_peer_bytes),
            Dir::ToClient => (&a.counters.to_client_packets, &a.counters.to_client_bytes),
        };
        p.fetch_add(1, Ordering::Relaxed);
        b.fetch_add(len as u64, Ordering::Relaxed);
    }

    /// Counts a relayed packet in the metrics.
    fn relayed(&self, dir: Dir, a: &Allocation, len: usize) {
        let t = transport_index(a.five.transport);
        self.packets[dir as usize][t].inc();
        self.bytes[dir as usize][t].inc_by(len as u64);
    }

    /// The tag a queued datagram carries to its flush.
    fn tag(dir: Dir, a: &Allocation, len: usize) -> u32 {
        ((dir as u32) << 31)
            | ((transport_index(a.five.transport) as u32) << 29)
            | (len as u32 & 0x1FFF_FFFF)
    }

    /// Counts a datagram a flush sent (or could not).
    fn flushed(&self, tag: u32, ok: bool) {
        if !ok {
            self.dropped(DropReason::QueueFull);
            return;
        }
        let dir = (tag >> 31) as usize;
        let t = ((tag >> 29) & 3) as usize;
        self.packets[dir][t].inc();
        self.bytes[dir][t].inc_by(u64::from(tag & 0x1FFF_FFFF));
    }

    fn dropped(&self, why: DropReason) {
        self.dropped[why as usize].inc();
    }
}

impl Default for Traffic {
    fn default() -> Self {
        Self::new()
    }
}

/// Buffers one packet loop reuses.
pub struct Scratch {
    /// An answer to the client.
    pub out: Vec<u8>,
    /// A packet handed over between two allocations of this appliance.
    frame: Vec<u8>,
    /// A Data indication being built.
    spare: Vec<u8>,
    /// Relayed datagrams waiting for the end of the batch ([`Turn::flush`]).
    pub outbox: Outbox,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            out: Vec::with_capacity(1500),
            frame: Vec::with_capacity(2048),
            spare: Vec::with_capacity(2048),
            outbox: Outbox::default(),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Turn {
    /// Serves one UDP listener: requests, Send indications and ChannelData from clients.
    pub(super) async fn udp_listener_loop(self: Arc<Self>, socket: Arc<UdpSocket>) {
        let Ok(local) = socket.local_addr() else {
            return;
        };
        let mut batch = match Batch::new(&socket) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, %local, "cannot serve a STUN/TURN listener");
                return;
            }
        };
        let path = ClientPath::Udp(socket.clone());
        let mut scratch = Scratch::new();
        loop {
            let n = match batch.recv(&socket).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, %local, "STUN/TURN listener receive failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            for i in 0..n {
                let (from, slot, len) = batch.datagram(i);
                let five = FiveTuple {
                    transport: Transport::Udp,
                    client: from,
                    server: local,
                };
                self.on_client_packet(&five, &path, &slot[HEADROOM..HEADROOM + len], &mut scratch);
                if !scratch.out.is_empty() {
                    let _ = socket.try_send_to(&scratch.out, from);
                    scratch.out.clear();
                }
            }
            self.flush(&mut scratch.outbox);
        }
    }

    /// One packet (or stream frame) from a client. An answer, if any, is left in
    /// `scratch.out`.
    pub fn on_client_packet(
        &self,
        five: &FiveTuple,
        path: &ClientPath,
        pkt: &[u8],
        scratch: &mut Scratch,
    ) {
        let Some(&first) = pkt.first() else {
            return;
        };
        match classify(first) {
            Kind::ChannelData => {
                let Ok(cd) = ChannelData::parse(pkt) else {
                    return;
                };
                let Some(a) = self.registry.get(five) else {
                    self.traffic.dropped(DropReason::NoAllocation);
                    return;
                };
                let now = Instant::now();
                match a.outbound_channel(cd.channel, cd.data.len(), now) {
                    Ok(peer) => self.to_peer(&a, peer, cd.data, now, scratch),
                    Err(d) => self.traffic.dropped(d.into()),
                }
            }
            Kind::Stun => {
                let Ok(msg) = Message::parse(pkt) else {
                    return;
                };
                match msg.class() {
                    Class::Request => self.handle_request(five, path, &msg, &mut scratch.out),
                    Class::Indication if msg.method() == Method::SEND => {
                        self.send_indication(five, &msg, scratch)
                    }
                    _ => {}
                }
            }
            Kind::Other => {}
        }
    }

    /// A Send indication (RFC 8656 §10.2): never answered; dropped if not allowed.
    fn send_indication(&self, five: &FiveTuple, msg: &Message<'_>, scratch: &mut Scratch) {
        let (Some(Ok(Attribute::XorPeerAddress(peer))), Some(Ok(Attribute::Data(data)))) = (
            msg.get_decoded(attr::XOR_PEER_ADDRESS),
            msg.get_decoded(attr::DATA),
        ) else {
            return;
        };
        let Some(a) = self.registry.get(five) else {
            self.traffic.dropped(DropReason::NoAllocation);
            return;
        };
        if peer.is_ipv6() != a.relayed.is_ipv6() {
            return;
        }
        if self.peers.check(peer).is_err() && self.registry.own_relay(&peer).is_none() {
            self.traffic.dropped(DropReason::DeniedPeer);
            return;
        }
        let now = Instant::now();
        match a.outbound_send(peer, data.len(), now) {
            Ok(()) => self.to_peer(&a, peer, data, now, scratch),
            Err(d) => self.traffic.dropped(d.into()),
        }
    }

    /// Sends application data from allocation `a` to `peer`.
    fn to_peer(
        &self,
        a: &Arc<Allocation>,
        peer: SocketAddr,
        data: &[u8],
        now: Instant,
        scratch: &mut Scratch,
    ) {
        self.traffic.on_allocation(Dir::ToPeer, a, data.len());
        if let Some(port) = self.registry.own_relay(&peer) {
            self.traffic.relayed(Dir::ToPeer, a, data.len());
            // Another allocation of this appliance: hand the packet over.
            let Some(target) = port.route(a.relayed, Some(a.id), now) else {
                self.traffic.dropped(DropReason::NoAllocation);
                return;
            };
            let frame = &mut scratch.frame;
            frame.clear();
            frame.resize(HEADROOM, 0);
            frame.extend_from_slice(data);
            frame.extend_from_slice(&[0; 3]);
            let mut taken = std::mem::take(frame);
            self.deliver(
                &target,
                a.relayed,
                &mut taken,
                data.len(),
                now,
                &mut scratch.spare,
                &mut scratch.outbox,
            );
            scratch.frame = taken;
            return;
        }
        let tag = Traffic::tag(Dir::ToPeer, a, data.len());
        scratch
            .outbox
            .push(&self.registry.port_of(a).socket, peer, data, tag);
    }

    /// Sends the datagrams a batch queued.
    pub fn flush(&self, outbox: &mut Outbox) {
        if !outbox.is_empty() {
            outbox.flush(|(tag, ok)| self.traffic.flushed(tag, ok));
        }
    }

    /// Serves one relay port: datagrams from peers, to their allocations' clients.
    pub(super) async fn relay_port_loop(self: Arc<Self>, port: Arc<RelayPort>) {
        let mut batch = match Batch::new(&port.socket) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, port = %port.advertised, "cannot serve a relay port");
                return;
            }
        };
        let mut spare = Vec::with_capacity(2048);
        let mut outbox = Outbox::default();
        loop {
            let n = match batch.recv(&port.socket).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, port = %port.advertised, "relay port receive failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let now = Instant::now();
            for i in 0..n {
                let (peer, slot, len) = batch.datagram(i);
                let Some(target) = port.route(peer, None, now) else {
                    self.traffic.dropped(DropReason::NoAllocation);
                    continue;
                };
                self.deliver(&target, peer, slot, len, now, &mut spare, &mut outbox);
            }
            self.flush(&mut outbox);
        }
    }

    /// Delivers `n` bytes of data from `peer` to `target`'s client. The data sits at
    /// `buf[HEADROOM..HEADROOM + n]`, with 3 spare bytes after it; `spare` is a buffer
    /// for a Data indication. UDP clients' datagrams wait in `outbox` for the batch's end.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &self,
        target: &Allocation,
        peer: SocketAddr,
        buf: &mut [u8],
        n: usize,
        now: Instant,
        spare: &mut Vec<u8>,
        outbox: &mut Outbox,
    ) {
        let channel = match target.inbound(peer, n, now) {
            Ok(c) => c,
            Err(d) => {
                self.traffic.dropped(d.into());
                return;
            }
        };
        let stream = target.five.transport.is_stream();
        let frame: &[u8] = match channel {
            Some(number) => {
                let Ok(len) = u16::try_from(n) else {
                    return;
                };
                buf[..2].copy_from_slice(&number.to_be_bytes());
                buf[2..4].copy_from_slice(&len.to_be_bytes());
                let mut end = HEADROOM + n;
                if stream {
                    let pad = (4 - n % 4) % 4;
                    buf[end..end + pad].fill(0);
                    end += pad;
                }
                &buf[..end]
            }
            None => {
                spare.clear();
                let tid: [u8; 12] = rand::random();
                let mut w = MessageWriter::new(spare, Method::DATA, Class::Indication, tid);
                if w.attr(&Attribute::XorPeerAddress(peer)).is_err()
                    || w.attr(&Attribute::Data(&buf[HEADROOM..HEADROOM + n]))
                        .is_err()
                {
                    return;
                }
                w.finish();
                &spare[..]
            }
        };
        self.traffic.on_allocation(Dir::ToClient, target, n);
        match &target.path {
            ClientPath::Udp(socket) => {
                let tag = Traffic::tag(Dir::ToClient, target, n);
                outbox.push(socket, target.five.client, frame, tag);
            }
            ClientPath::Stream(tx) => {
                if tx.try_send(Bytes::copy_from_slice(frame)).is_ok() {
                    self.traffic.relayed(Dir::ToClient, target, n);
                } else {
                    self.traffic.dropped(DropReason::QueueFull);
                }
            }
        }
    }
}
