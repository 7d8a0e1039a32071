//! One device's stream, whatever carries it (WebSocket or QUIC): authentication and
//! the consent gate, the mailbox backlog, live deliveries, sends and their
//! acceptances, acks, receipts, and closing when the account or device stops being
//! valid or the appliance stops (PROTOCOL.md §4).
//!
//! Sends are checked and queued in the order they arrive and answered in that order
//! once durable; the stream keeps reading meanwhile (up to [`MAX_IN_FLIGHT`]), so
//! one device can pipeline many envelopes into one commit. Acks are coalesced: at
//! most one ack write per device is in flight, covering everything acked so far.

use super::frame::{ClientFrame, PendingDevice, ServerFrame};
use super::{DeviceSession, Pending, Relay, mailbox::Acceptance};
use crate::error::Error;
use crate::metrics;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Sends awaiting their commit before the stream stops reading.
pub const MAX_IN_FLIGHT: usize = 256;
/// Time a new stream has to authenticate.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(15);
/// Mailbox entries read per page of backlog.
const PAGE: usize = 256;
/// Most frames gathered into one write after the one that woke the stream.
const GATHER: usize = 64;

/// Where frames come from.
pub trait FrameSource {
    /// The next frame's text; `None` when the peer closed; an error for a frame the
    /// transport could not accept (too large, not text).
    fn next_frame(&mut self) -> impl Future<Output = Option<Result<String, Error>>>;
}

/// Where frames go.
pub trait FrameSink {
    /// Send one frame now; false if the connection is gone.
    fn send_frame(&mut self, text: String) -> impl Future<Output = bool>;
    /// Queue one frame to go with the next [`FrameSink::flush`] (a transport may send
    /// it sooner); false if the connection is gone. Frames that are ready together go
    /// in one write: one TLS record and one system call instead of one per frame.
    fn feed_frame(&mut self, text: String) -> impl Future<Output = bool> {
        self.send_frame(text)
    }
    /// Send every queued frame; false if the connection is gone.
    fn flush(&mut self) -> impl Future<Output = bool> {
        std::future::ready(true)
    }
    /// Close the connection (after a fatal error or when the stream ends).
    fn close(&mut self) -> impl Future<Output = ()>;
}

impl<T: FrameSource> FrameSource for &mut T {
    fn next_frame(&mut self) -> impl Future<Output = Option<Result<String, Error>>> {
        (**self).next_frame()
    }
}

impl<T: FrameSink> FrameSink for &mut T {
    fn send_frame(&mut self, text: String) -> impl Future<Output = bool> {
        (**self).send_frame(text)
    }

    fn feed_frame(&mut self, text: String) -> impl Future<Output = bool> {
        (**self).feed_frame(text)
    }

    fn flush(&mut self) -> impl Future<Output = bool> {
        (**self).flush()
    }

    fn close(&mut self) -> impl Future<Output = ()> {
        (**self).close()
    }
}

/// The refusal of a frame over `relay.max_frame_bytes`, whatever the transport.
pub fn frame_too_large() -> Error {
    Error::new(
        crate::error::Kind::TooLarge,
        "frame_too_large",
        "the frame is larger than this appliance accepts (relay.max_frame_bytes)",
    )
}

fn encode(f: &ServerFrame) -> String {
    serde_json::to_string(f).unwrap_or_else(|_| {
        r#"{"type":"error","code":"internal","message":"a frame could not be encoded","fatal":false}"#.into()
    })
}

async fn fatal<W: FrameSink>(sink: &mut W, e: &Error) {
    sink.send_frame(encode(&ServerFrame::error(e, None, true)))
        .await;
    sink.close().await;
}

/// The frame types a device may send.
const FRAME_TYPES: [&str; 5] = ["authenticate", "send", "ack", "receipt", "ping"];

/// A frame that did not parse, with what could still be read of it.
struct Broken {
    object: bool,
    ty: Option<String>,
    client_msg_id: Option<String>,
    reason: String,
}

impl Broken {
    /// Read what there is (only on the error path: the text is parsed a second time).
    fn read(text: &str, e: serde_json::Error) -> Broken {
        let v = serde_json::from_str::<serde_json::Value>(text).ok();
        let str_at = |path: &[&str]| {
            let mut at = v.as_ref()?;
            for p in path {
                at = at.get(p)?;
            }
            at.as_str().map(str::to_string)
        };
        Broken {
            object: v.as_ref().is_some_and(|v| v.is_object()),
            ty: str_at(&["type"]),
            client_msg_id: str_at(&["envelope", "client_msg_id"])
                .filter(|id| super::policy::valid_client_msg_id(id)),
            reason: e.to_string(),
        }
    }

    /// A frame with a type other than authenticate (refused as too early).
    fn is_not_authenticate(&self) -> bool {
        self.ty.as_deref().is_some_and(|t| t != "authenticate")
    }

    /// The refusal and whether it ends the stream: a JSON object of a known type whose
    /// fields do not parse is refused and the stream goes on; text that is not a frame
    /// at all, or of an unknown type, ends it.
    fn refusal(&self) -> (Error, bool) {
        match self.ty.as_deref() {
            Some(t) if !FRAME_TYPES.contains(&t) => (
                Error::bad_request(
                    "unknown_frame_type",
                    format!("there is no frame type {t:?}; see PROTOCOL.md §4.1"),
                ),
                true,
            ),
            Some("send") if self.object => (
                Error::invalid(
                    "invalid_envelope",
                    format!("the envelope is not valid: {}", self.reason),
                ),
                false,
            ),
            _ => (
                Error::bad_request(
                    "malformed_frame",
                    format!("the frame is not valid: {}", self.reason),
                ),
                !self.object,
            ),
        }
    }
}

fn parse(text: &str) -> Result<ClientFrame, Broken> {
    ClientFrame::from_json(text).map_err(|e| Broken::read(text, e))
}

fn too_early() -> Error {
    Error::unauthorized(
        "authentication_required",
        "the first frame must be authenticate",
    )
}

/// Run a stream to its end.
pub async fn run<R: FrameSource, W: FrameSink>(
    relay: Arc<Relay>,
    mut src: R,
    mut sink: W,
    transport: &'static str,
) {
    // Boxed, like the backlog below: both are short phases with large states, which
    // would otherwise be reserved in every stream's future for its whole life.
    let Some(mut session) = Box::pin(authenticate(&relay, &mut src, &mut sink)).await else {
        return;
    };
    relay.touch(&session);
    let device_id = session.device.id.clone();
    let mut reg = relay.hub.register(&device_id, session.user_id(), transport);
    let mut acks = Acks {
        wanted: 0,
        written: 0,
        in_flight: None,
    };
    let ended = serve(
        &relay,
        &mut session,
        &mut reg,
        &mut acks,
        &mut src,
        &mut sink,
        transport,
    )
    .await;
    relay.hub.unregister(&device_id, &reg);
    // An ack that arrived just before the stream ended is still written (queued now;
    // the writer applies it whether or not anyone waits).
    if acks.wanted > acks.written {
        drop(relay.ack(&device_id, acks.wanted));
    }
    if let Err(e) = ended {
        fatal(&mut sink, &e).await;
    } else {
        sink.close().await;
    }
}

async fn authenticate<R: FrameSource, W: FrameSink>(
    relay: &Relay,
    src: &mut R,
    sink: &mut W,
) -> Option<DeviceSession> {
    loop {
        let text = match tokio::time::timeout(AUTH_TIMEOUT, src.next_frame()).await {
            Err(_) => {
                let e = Error::unauthorized(
                    "authentication_required",
                    "authenticate within 15 seconds of connecting",
                );
                fatal(sink, &e).await;
                return None;
            }
            Ok(None) => return None,
            Ok(Some(Err(e))) => {
                fatal(sink, &e).await;
                return None;
            }
            Ok(Some(Ok(t))) => t,
        };
        // Anything but an authenticate frame (even a broken one of another type) is
        // refused for what it is: too early.
        let (token, consent_version) = match parse(&text) {
            Ok(ClientFrame::Authenticate {
                token,
                consent_version,
            }) => (token, consent_version),
            Ok(_) => {
                fatal(sink, &too_early()).await;
                return None;
            }
            Err(b) => {
                let e = if b.is_not_authenticate() {
                    too_early()
                } else {
                    b.refusal().0
                };
                fatal(sink, &e).await;
                return None;
            }
        };
        let session = match relay.authenticate(&token) {
            Ok(s) => s,
            Err(e) => {
                fatal(sink, &e).await;
                return None;
            }
        };
        let session = match consent_version {
            Some(v) if !session.account.consent_ok(session.device.consent_version) => {
                match relay.acknowledge_consent(&session, v).await {
                    Ok(s) => s,
                    Err(e) => {
                        sink.send_frame(encode(&ServerFrame::error(&e, None, false)))
                            .await;
                        continue;
                    }
                }
            }
            _ => session,
        };
        if let Some(e) = relay.consent_required(&session, false) {
            if !sink
                .send_frame(encode(&ServerFrame::error(&e, None, false)))
                .await
            {
                return None;
            }
            continue;
        }
        return Some(session);
    }
}

/// A send (or receipt) awaiting its commit: the client message id to answer, if any.
type InFlight =
    std::pin::Pin<Box<dyn Future<Output = (Option<String>, Result<Acceptance, Error>)> + Send>>;

/// A token bucket over the frames a device sends.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: std::time::Instant,
}

impl Bucket {
    fn new(per_second: u32) -> Bucket {
        Bucket {
            rate: per_second as f64,
            tokens: per_second as f64 * 2.0,
            at: std::time::Instant::now(),
        }
    }

    /// Take one token; false if the stream is over its rate.
    fn take(&mut self) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate * 2.0);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// State of the coalesced ack writes.
struct Acks {
    wanted: u64,
    written: u64,
    in_flight: Option<(u64, Pending<u64>)>,
}

/// The frame answering a send (or receipt) once its commit is done: `accepted` with
/// the seq, or the refusal; nothing for a receipt that was stored.
fn answer(id: Option<String>, result: Result<Acceptance, Error>) -> Option<String> {
    match (result, id) {
        (Ok(a), Some(id)) => Some(encode(&ServerFrame::Accepted {
            client_msg_id: id,
            seq: a.seq,
            server_time: a.server_time,
            duplicate: a.duplicate,
        })),
        (Ok(_), None) => None,
        (Err(e), id) => Some(encode(&ServerFrame::error(&e, id.as_deref(), false))),
    }
}

/// A delivery on its way to the device, counted once it is sent.
struct Delivery {
    seq: u64,
    server_time: u64,
}

async fn serve<R: FrameSource, W: FrameSink>(
    relay: &Relay,
    session: &mut DeviceSession,
    reg: &mut super::hub::Registration,
    acks: &mut Acks,
    src: &mut R,
    sink: &mut W,
    transport: &'static str,
) -> Result<(), Error> {
    let device_id = session.device.id.clone();
    let pending_n = relay.index.len(&device_id);
    let ready = encode(&ServerFrame::Ready {
        user_id: session.user_id().to_string(),
        device_id: device_id.clone(),
        network_id: session.account.user.network_id.clone(),
        policy: session.account.policy.clone(),
        pending: pending_n,
    });
    if !sink.send_frame(ready).await {
        return Ok(());
    }
    if let Some(f) = pending_devices_frame(session)
        && !sink.send_frame(f).await
    {
        return Ok(());
    }
    let delivered = metrics::relay::DELIVERED.with_label_values(&[transport]);
    let mut last_sent = 0u64;
    if !Box::pin(backlog(relay, &device_id, &mut last_sent, sink, &delivered)).await? {
        return Ok(());
    }
    let mut sends: FuturesOrdered<InFlight> = FuturesOrdered::new();
    let mut bucket = Bucket::new(relay.config.max_frames_per_second);
    // Once the appliance is stopping the stream reads no more frames, answers the sends
    // in flight and ends (`run` queues the last ack).
    let mut draining = relay.hub.is_closing();
    // Every stream waits here most of its life, so the branches only decide what to
    // send; the sending (the one await besides the wait) comes after, and the stream's
    // state stays small.
    loop {
        if draining && sends.is_empty() {
            return Ok(());
        }
        if acks.in_flight.is_none() && acks.wanted > acks.written {
            acks.in_flight = Some((acks.wanted, relay.ack(&device_id, acks.wanted)));
        }
        let mut delivery = None;
        let mut reread = false;
        let mut then: Option<String> = None;
        let out: Option<String> = tokio::select! {
            _ = reg.slot.recheck.notified() => {
                if relay.hub.is_closing() {
                    draining = true;
                    None
                } else {
                    let (policy, devices) = recheck(relay, session, &device_id, reg.id)?;
                    then = devices;
                    policy
                }
            }
            Some((id, result)) = sends.next(), if !sends.is_empty() => answer(id, result),
            r = async { acks.in_flight.as_mut().expect("guarded").1.as_mut().await }, if acks.in_flight.is_some() => {
                let (upto, _) = acks.in_flight.take().expect("guarded");
                match r {
                    Ok(_) => acks.written = upto,
                    Err(e) => tracing::warn!(device = %device_id, error = %e, "an ack could not be written; it will be retried"),
                }
                None
            }
            push = reg.slot.next() => {
                reread = reg.slot.lagged.swap(false, Ordering::AcqRel);
                (push.item.seq > last_sent).then(|| {
                    delivery = Some(Delivery { seq: push.item.seq, server_time: push.item.server_time });
                    push.item.frame_for(push.index as usize)
                })
            }
            frame = src.next_frame(), if !draining && sends.len() < MAX_IN_FLIGHT => match frame {
                None => return Ok(()),
                Some(Err(e)) => return Err(e),
                Some(Ok(text)) => on_frame(relay, session, &text, &mut bucket, &mut sends, acks, last_sent)?,
            },
        };
        let mut fed = false;
        for text in out.into_iter().chain(then) {
            if !sink.feed_frame(text).await {
                return Ok(());
            }
            fed = true;
        }
        let note = |d: Delivery, last_sent: &mut u64| {
            *last_sent = d.seq;
            delivered.inc();
            let age = super::now_ms().saturating_sub(d.server_time);
            metrics::relay::DELIVERY_SECONDS.observe(age as f64 / 1000.0);
        };
        if let Some(d) = delivery {
            note(d, &mut last_sent);
        }
        // What else is ready now — the rest of a commit's deliveries and acceptances —
        // goes in the same write.
        if fed {
            for _ in 0..GATHER {
                if let Some(push) = reg.slot.pop() {
                    reread |= reg.slot.lagged.swap(false, Ordering::AcqRel);
                    if push.item.seq > last_sent {
                        let d = Delivery {
                            seq: push.item.seq,
                            server_time: push.item.server_time,
                        };
                        if !sink
                            .feed_frame(push.item.frame_for(push.index as usize))
                            .await
                        {
                            return Ok(());
                        }
                        note(d, &mut last_sent);
                    }
                    continue;
                }
                let Some(Some((id, result))) = sends.next().now_or_never() else {
                    break;
                };
                if let Some(text) = answer(id, result)
                    && !sink.feed_frame(text).await
                {
                    return Ok(());
                }
            }
            if !sink.flush().await {
                return Ok(());
            }
        }
        if reread && !Box::pin(backlog(relay, &device_id, &mut last_sent, sink, &delivered)).await?
        {
            return Ok(());
        }
    }
}

/// The `devices_pending` frame for the account's devices that wait for approval, if any.
fn pending_devices_frame(session: &DeviceSession) -> Option<String> {
    let pending = session.account.pending_devices();
    (!pending.is_empty()).then(|| {
        encode(&ServerFrame::DevicesPending {
            devices: pending.into_iter().map(PendingDevice::of).collect(),
        })
    })
}

/// Re-check the stream after a change: still the device's current stream, the
/// account and device still valid, consent still given. Returns the frames to tell the
/// device — the new policy and the devices waiting for approval — if they changed; an
/// error ends the stream.
fn recheck(
    relay: &Relay,
    session: &mut DeviceSession,
    device_id: &str,
    registration: u64,
) -> Result<(Option<String>, Option<String>), Error> {
    if !relay.hub.is_current(device_id, registration) {
        return Err(Error::conflict(
            "replaced",
            "this device opened another stream; this one is closed",
        ));
    }
    // The device knows the policy of the session it has now.
    let fresh = relay.revalidate(session)?;
    let policy_changed = fresh.account.policy != session.account.policy;
    let ids = |s: &DeviceSession| -> Vec<String> {
        s.account
            .pending_devices()
            .iter()
            .map(|d| d.id.clone())
            .collect()
    };
    let pending_changed = ids(&fresh) != ids(session);
    *session = fresh;
    if let Some(e) = relay.consent_required(session, true) {
        return Err(e);
    }
    let policy = policy_changed.then(|| {
        encode(&ServerFrame::Policy {
            policy: session.account.policy.clone(),
        })
    });
    let devices = pending_changed.then(|| {
        encode(&ServerFrame::DevicesPending {
            devices: session
                .account
                .pending_devices()
                .into_iter()
                .map(PendingDevice::of)
                .collect(),
        })
    });
    Ok((policy, devices))
}

/// Handle one frame from the device: queue its send or receipt, note its ack, or
/// refuse it. Returns the frame to answer with, if any; an error ends the stream.
fn on_frame(
    relay: &Relay,
    session: &DeviceSession,
    text: &str,
    bucket: &mut Bucket,
    sends: &mut FuturesOrdered<InFlight>,
    acks: &mut Acks,
    last_sent: u64,
) -> Result<Option<String>, Error> {
    // A frame of a known type with bad fields is refused and the stream goes on; text
    // that is not a frame at all, or of an unknown type, ends it.
    let frame = match parse(text) {
        Ok(f) => f,
        Err(b) => {
            let (e, ends) = b.refusal();
            if ends {
                return Err(e);
            }
            return Ok(Some(encode(&ServerFrame::error(
                &e,
                b.client_msg_id.as_deref(),
                false,
            ))));
        }
    };
    if !bucket.take() {
        let id = match &frame {
            ClientFrame::Send { envelope } => Some(envelope.client_msg_id.as_str()),
            _ => None,
        };
        let e = Error::new(
            crate::error::Kind::RateLimited,
            "rate_limited",
            "this stream sends frames faster than the appliance accepts; slow down and send again",
        );
        metrics::relay::REFUSED
            .with_label_values(&["rate_limited"])
            .inc();
        return Ok(Some(encode(&ServerFrame::error(&e, id, false))));
    }
    Ok(match frame {
        ClientFrame::Authenticate { .. } => {
            let e = Error::bad_request(
                "already_authenticated",
                "this stream is already authenticated",
            );
            Some(encode(&ServerFrame::error(&e, None, false)))
        }
        ClientFrame::Send { envelope } => {
            let id = envelope.client_msg_id.clone();
            match relay.send(session, envelope) {
                Ok(fut) => {
                    sends.push_back(Box::pin(async move { (Some(id), fut.await) }));
                    None
                }
                Err(e) => Some(encode(&ServerFrame::error(&e, Some(&id), false))),
            }
        }
        ClientFrame::Ack { up_to } => {
            acks.wanted = acks.wanted.max(up_to.min(last_sent));
            None
        }
        ClientFrame::Receipt { receipt } => match relay.receipt(session, receipt) {
            Ok(fut) => {
                sends.push_back(Box::pin(async move { (None, fut.await) }));
                None
            }
            Err(e) => Some(encode(&ServerFrame::error(&e, None, false))),
        },
        ClientFrame::Ping { nonce } => Some(encode(&ServerFrame::Pong { nonce })),
    })
}

/// Send every waiting mailbox entry after `last_sent`; false if the peer went away.
async fn backlog<W: FrameSink>(
    relay: &Relay,
    device_id: &str,
    last_sent: &mut u64,
    sink: &mut W,
    delivered: &prometheus::IntCounter,
) -> Result<bool, Error> {
    loop {
        let page = relay.backlog(device_id, *last_sent, PAGE)?;
        let n = page.len();
        for (seq, frame) in page {
            if !sink.feed_frame(encode(&frame)).await {
                return Ok(false);
            }
            *last_sent = seq;
            delivered.inc();
        }
        if n > 0 && !sink.flush().await {
            return Ok(false);
        }
        if n < PAGE {
            return Ok(true);
        }
    }
}
