//! TURN over TCP and TLS (RFC 8656 §3.1): accepting connections on `calling.listen`
//! (TCP) and `calling.tls_listen` (TLS), and serving one connection — from the listeners
//! here or from the HTTPS front door when the TLS handshake agreed on ALPN `stun.turn`.
//!
//! A connection carries STUN messages and padded ChannelData frames back to back; it
//! holds at most one allocation (its 5-tuple is the connection). Frames for the client go
//! through a bounded queue to the connection's writer: when the client reads too slowly,
//! relayed packets are dropped (as UDP would) while answers to requests wait their turn.
//! The connection closes when the client closes it, sends bytes that are not TURN, makes
//! no allocation within a minute, or loses its allocation (expiry, Refresh 0, policy).

use super::allocation::{ClientPath, FiveTuple, Transport};
use super::datapath::Scratch;
use super::framing;
use super::server::Turn;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Frames waiting for a slow client before relayed packets are dropped.
const QUEUE: usize = 1024;
/// A connection without an allocation closes after this long.
const NO_ALLOCATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Time the TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of queued frames the writer gathers into one write.
const WRITE_COALESCE: usize = 64 * 1024;
/// Bytes read from the connection at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Largest frame: a STUN message or ChannelData with its header and padding.
const MAX_FRAME: usize = 65_535 + 20;

impl Turn {
    /// Accepts TCP or TLS connections on one listener.
    pub(super) async fn accept_loop(self: Arc<Self>, listener: TcpListener, transport: Transport) {
        let Ok(local) = listener.local_addr() else {
            return;
        };
        loop {
            let (tcp, client) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "TURN accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let five = FiveTuple {
                transport,
                client,
                server: local,
            };
            let turn = self.clone();
            tokio::spawn(async move {
                match transport {
                    Transport::Tls => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, turn.tls.accept(tcp)).await {
                            Ok(Ok(tls)) => turn.serve_stream(tls, five).await,
                            _ => tracing::debug!(client = %client, "TURN TLS handshake failed"),
                        }
                    }
                    _ => turn.serve_stream(tcp, five).await,
                }
            });
        }
    }

    /// Serves one TCP or TLS connection to its end.
    pub async fn serve_stream<S>(self: Arc<Self>, io: S, five: FiveTuple)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(io);
        let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
        let record_per_frame = five.transport == Transport::Tls;
        let writer = tokio::spawn(async move {
            if record_per_frame {
                write_records(&mut wr, &mut rx).await;
            } else {
                write_gathered(&mut wr, &mut rx).await;
            }
            let _ = wr.shutdown().await;
        });
        let path = ClientPath::Stream(tx.clone());
        // Received bytes are `buf[start..end]`; the buffer grows only for a frame larger
        // than it (up to MAX_FRAME).
        let mut buf: Vec<u8> = vec![0; READ_CHUNK];
        let (mut start, mut end) = (0usize, 0usize);
        let mut scratch = Scratch::new();
        let opened = Instant::now();
        let mut had_allocation = false;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        'conn: loop {
            // Serve every whole frame in the buffer.
            loop {
                match framing::frame_len(&buf[start..end]) {
                    Ok(Some(len)) if end - start >= len => {
                        let frame = &buf[start..start + len];
                        self.on_client_packet(&five, &path, frame, &mut scratch);
                        // An answered request may have made the allocation: from then on
                        // the connection lives as long as it does.
                        if !had_allocation
                            && framing::classify(frame[0]) == framing::Kind::Stun
                            && self.registry.get(&five).is_some()
                        {
                            had_allocation = true;
                        }
                        start += len;
                        if !scratch.out.is_empty() {
                            let answer = Bytes::copy_from_slice(&scratch.out);
                            scratch.out.clear();
                            if tx.send(answer).await.is_err() {
                                break 'conn;
                            }
                        }
                    }
                    Ok(Some(len)) if len > MAX_FRAME => break 'conn,
                    Ok(Some(len)) => {
                        // A frame larger than the room left: make room for it.
                        if buf.len() - start < len {
                            buf.copy_within(start..end, 0);
                            (start, end) = (0, end - start);
                            if buf.len() < len {
                                buf.resize(len, 0);
                            }
                        }
                        break;
                    }
                    Ok(None) => break,
                    // Not TURN: the stream cannot be resynchronised.
                    Err(_) => break 'conn,
                }
            }
            self.flush(&mut scratch.outbox);
            if start == end {
                (start, end) = (0, 0);
            } else if end == buf.len() {
                buf.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            }
            let read = tokio::select! {
                read = rd.read(&mut buf[end..]) => Some(read),
                _ = tick.tick() => None,
            };
            match read {
                Some(Ok(0)) | Some(Err(_)) => break,
                Some(Ok(n)) => end += n,
                None => {
                    let has = self.registry.get(&five).is_some();
                    if has {
                        had_allocation = true;
                    } else if had_allocation || opened.elapsed() > NO_ALLOCATION_TIMEOUT {
                        break;
                    }
                }
            }
        }
        self.remove_five(&five);
        drop(path);
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    }
}

/// Plain TCP: what has queued up goes in one write, one system call for many frames
/// when the relay is busy.
async fn write_gathered<W: AsyncWrite + Unpin>(wr: &mut W, rx: &mut mpsc::Receiver<Bytes>) {
    let mut out: Vec<u8> = Vec::with_capacity(WRITE_COALESCE);
    while let Some(frame) = rx.recv().await {
        out.extend_from_slice(&frame);
        while out.len() < WRITE_COALESCE {
            match rx.try_recv() {
                Ok(f) => out.extend_from_slice(&f),
                Err(_) => break,
            }
        }
        if wr.write_all(&out).await.is_err() || wr.flush().await.is_err() {
            return;
        }
        out.clear();
    }
}

/// TLS: every frame in a TLS record of its own, as coturn sends them. TLS is a byte
/// stream and a careful client splits it by the frames' lengths, but coturn's own
/// clients (`turnutils_uclient`) take one `SSL_read` — one record — as one message, and
/// drop two frames gathered into one record as a malformed one.
async fn write_records<W: AsyncWrite + Unpin>(wr: &mut W, rx: &mut mpsc::Receiver<Bytes>) {
    while let Some(frame) = rx.recv().await {
        if wr.write_all(&frame).await.is_err() {
            return;
        }
        while let Ok(f) = rx.try_recv() {
            if wr.write_all(&f).await.is_err() {
                return;
            }
        }
        if wr.flush().await.is_err() {
            return;
        }
    }
}
