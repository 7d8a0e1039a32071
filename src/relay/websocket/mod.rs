//! The WebSocket transport of the device stream: `GET /api/v1/stream` (PROTOCOL.md §4).
//! One text message is one frame; WebSocket pings are answered; binary messages and
//! messages over `relay.max_frame_bytes` end the stream with a clear error.
//!
//! Two carriers serve it. [`direct`] runs the stream on the TLS connection itself
//! (tokio-tungstenite): the front door (`crate::server::front_door`) hands it every
//! connection whose first request is the upgrade, so an idle device stream holds no
//! HTTP machinery. [`fallback`] (actix-ws) answers the upgrade when it arrives later
//! on a keep-alive connection, inside the HTTP server. Both turn what they receive
//! into an [`Incoming`] and share [`Source`], so a device sees the same stream either
//! way.

pub mod direct;
pub mod fallback;

pub use fallback::upgrade;

use super::session::{self, FrameSource};
use crate::error::Error;
use bytes::Bytes;
use std::future::Future;

/// What a carrier received, in terms that do not depend on the WebSocket library.
#[derive(Debug)]
pub enum Incoming {
    Text(String),
    Binary,
    Ping(Bytes),
    Pong,
    /// The peer closed the WebSocket.
    Close,
    /// A message or frame over `relay.max_frame_bytes`.
    TooLarge,
    /// A message that breaks the WebSocket protocol, and how.
    Broken(String),
}

/// One side of a WebSocket library: receiving, and answering pings.
pub trait Carrier {
    /// The next message; `None` once the connection is gone.
    fn receive(&mut self) -> impl Future<Output = Option<Incoming>>;
    /// Answer a ping; false if the connection is gone.
    fn pong(&mut self, payload: Bytes) -> impl Future<Output = bool>;
}

/// The stream's frames from a WebSocket carrier: the WebSocket rules of PROTOCOL.md §4.
pub struct Source<C>(pub C);

impl<C: Carrier> FrameSource for Source<C> {
    async fn next_frame(&mut self) -> Option<Result<String, Error>> {
        loop {
            match self.0.receive().await? {
                Incoming::Text(t) => return Some(Ok(t)),
                Incoming::Binary => {
                    return Some(Err(Error::bad_request(
                        "malformed_frame",
                        "frames are JSON text messages, not binary",
                    )));
                }
                Incoming::Ping(p) => {
                    if !self.0.pong(p).await {
                        return None;
                    }
                }
                Incoming::Pong => {}
                Incoming::Close => return None,
                Incoming::TooLarge => return Some(Err(session::frame_too_large())),
                Incoming::Broken(why) => {
                    return Some(Err(Error::bad_request(
                        "malformed_frame",
                        format!("the WebSocket message is broken: {why}"),
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A carrier that replays a script and records the pongs it was asked for.
    struct Script {
        incoming: VecDeque<Incoming>,
        pongs: Vec<Bytes>,
    }

    impl Carrier for Script {
        async fn receive(&mut self) -> Option<Incoming> {
            self.incoming.pop_front()
        }

        async fn pong(&mut self, payload: Bytes) -> bool {
            self.pongs.push(payload);
            true
        }
    }

    fn source(script: Vec<Incoming>) -> Source<Script> {
        Source(Script {
            incoming: script.into(),
            pongs: Vec::new(),
        })
    }

    fn code(r: Option<Result<String, Error>>) -> &'static str {
        match r {
            Some(Err(e)) => e.code,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn text_is_a_frame_and_pings_are_answered_on_the_way() {
        let mut s = source(vec![
            Incoming::Ping(Bytes::from_static(b"hi")),
            Incoming::Pong,
            Incoming::Text("{}".into()),
            Incoming::Close,
            Incoming::Text("never read".into()),
        ]);
        assert_eq!(s.next_frame().await.unwrap().unwrap(), "{}");
        assert_eq!(s.0.pongs, vec![Bytes::from_static(b"hi")]);
        assert!(s.next_frame().await.is_none(), "a close ends the stream");
    }

    #[tokio::test]
    async fn binary_oversized_and_broken_messages_are_refused_with_their_codes() {
        assert_eq!(
            code(source(vec![Incoming::Binary]).next_frame().await),
            "malformed_frame"
        );
        assert_eq!(
            code(source(vec![Incoming::TooLarge]).next_frame().await),
            "frame_too_large"
        );
        assert_eq!(
            code(
                source(vec![Incoming::Broken("bad opcode".into())])
                    .next_frame()
                    .await
            ),
            "malformed_frame"
        );
        assert!(source(vec![]).next_frame().await.is_none());
    }
}
