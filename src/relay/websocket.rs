//! The WebSocket transport of the device stream: `GET /api/v1/stream` (PROTOCOL.md §4).
//! One text message is one frame; WebSocket pings are answered; binary messages and
//! messages over `relay.max_frame_bytes` end the stream with a clear error.

use super::Relay;
use super::session::{self, FrameSink, FrameSource};
use crate::error::Error;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, Session};
use futures_util::StreamExt;
use std::sync::Arc;

struct Source {
    stream: AggregatedMessageStream,
    session: Session,
}

impl FrameSource for Source {
    async fn next_frame(&mut self) -> Option<Result<String, Error>> {
        loop {
            match self.stream.next().await? {
                Ok(AggregatedMessage::Text(t)) => return Some(Ok(t.to_string())),
                Ok(AggregatedMessage::Binary(_)) => {
                    return Some(Err(Error::bad_request(
                        "malformed_frame",
                        "frames are JSON text messages, not binary",
                    )));
                }
                Ok(AggregatedMessage::Ping(b)) => {
                    if self.session.pong(&b).await.is_err() {
                        return None;
                    }
                }
                Ok(AggregatedMessage::Pong(_)) => {}
                Ok(AggregatedMessage::Close(_)) => return None,
                Err(actix_ws::ProtocolError::Overflow) => {
                    return Some(Err(Error::new(
                        crate::error::Kind::TooLarge,
                        "frame_too_large",
                        "the frame is larger than this appliance accepts (relay.max_frame_bytes)",
                    )));
                }
                Err(e) => {
                    return Some(Err(Error::bad_request(
                        "malformed_frame",
                        format!("the WebSocket message is broken: {e}"),
                    )));
                }
            }
        }
    }
}

struct Sink {
    session: Option<Session>,
}

impl FrameSink for Sink {
    async fn send_frame(&mut self, text: String) -> bool {
        match &mut self.session {
            Some(s) => s.text(text).await.is_ok(),
            None => false,
        }
    }

    async fn close(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.close(None).await;
        }
    }
}

/// Upgrade to a WebSocket and run the device's stream on it.
pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    relay: web::Data<Arc<Relay>>,
) -> actix_web::Result<HttpResponse> {
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let max = relay.config.max_frame_bytes;
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let relay = relay.get_ref().clone();
    actix_web::rt::spawn(async move {
        let src = Source {
            stream,
            session: session.clone(),
        };
        let sink = Sink {
            session: Some(session),
        };
        session::run(relay, src, sink, "websocket").await;
    });
    Ok(response)
}
