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
        let writer = tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                if wr.write_all(&frame).await.is_err() {
                    return;
                }
            }
            let _ = wr.shutdown().await;
        });
        let path = ClientPath::Stream(tx.clone());
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut scratch = Scratch::new();
        let opened = Instant::now();
        let mut had_allocation = false;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        'conn: loop {
            // Serve every whole frame in the buffer.
            let mut start = 0;
            loop {
                match framing::frame_len(&buf[start..]) {
                    Ok(Some(len)) if buf.len() - start >= len => {
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
                    Ok(_) => break,
                    // Not TURN: the stream cannot be resynchronised.
                    Err(_) => break 'conn,
                }
            }
            self.flush(&mut scratch.outbox);
            buf.drain(..start);
            let mut chunk = [0u8; 4096];
            tokio::select! {
                read = rd.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                },
                _ = tick.tick() => {
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
