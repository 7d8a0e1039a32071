//! The device stream inside the HTTP server (actix-ws): the `GET /api/v1/stream`
//! route. The front door serves a connection whose first request is the upgrade with
//! [`super::direct`]; this route answers the upgrade when it comes later on a
//! keep-alive connection (or over a path the front door does not take).

use super::{Carrier, Incoming, Source};
use crate::relay::Relay;
use crate::relay::session::{self, FrameSink};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, Session};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;

struct Receiver {
    stream: AggregatedMessageStream,
    session: Session,
}

impl Carrier for Receiver {
    async fn receive(&mut self) -> Option<Incoming> {
        Some(match self.stream.next().await? {
            Ok(AggregatedMessage::Text(t)) => Incoming::Text(t.to_string()),
            Ok(AggregatedMessage::Binary(_)) => Incoming::Binary,
            Ok(AggregatedMessage::Ping(b)) => Incoming::Ping(b),
            Ok(AggregatedMessage::Pong(_)) => Incoming::Pong,
            Ok(AggregatedMessage::Close(_)) => Incoming::Close,
            Err(actix_ws::ProtocolError::Overflow) => Incoming::TooLarge,
            Err(e) => Incoming::Broken(e.to_string()),
        })
    }

    async fn pong(&mut self, payload: Bytes) -> bool {
        self.session.pong(&payload).await.is_ok()
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
        let src = Source(Receiver {
            stream,
            session: session.clone(),
        });
        let sink = Sink {
            session: Some(session),
        };
        session::run(relay, src, sink, "websocket").await;
    });
    Ok(response)
}
