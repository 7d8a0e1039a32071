//! The load against outpost: a seeded data folder, the real server, one WebSocket
//! device stream per user, envelopes of valid shape (random ciphertext, one 80-byte
//! sealed key per recipient device, a 64-byte signature) and acks as a client sends
//! them.
//!
//! The send time travels in the `client_msg_id` (`<user>.<n>.<µs since start>`), which
//! the recipient's `deliver` frame carries back, so latency is measured on one clock.

use crate::common::seed::{self, Plan, Seeded};
use crate::common::stream::{self, Ws};
use crate::common::{Server, procstat, temp_data_dir};
use crate::load::{
    self, ACK_AFTER, ACK_EVERY, Control, MAX_OUTSTANDING, Mode, Samples, Shape, Target,
};
use crate::{Settings, SystemResult};
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use outpost::relay::frame::{ClientFrame, Kind, OutgoingEnvelope, SealedKey, ServerFrame};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

/// Bytes of random ciphertext per envelope (before base64).
const CIPHERTEXT_BYTES: usize = 300;
const ID_PLACEHOLDER: &str = "@@client_msg_id@@";
/// Each device's WebSocket read buffer. tungstenite zeroes the room it reads into on
/// every read, so a large one costs: 64 KiB took 17 % of the generator's CPU in memset.
const READ_BUFFER: usize = 8 * 1024;
/// Connections opened at once.
const CONNECT_PARALLEL: usize = 32;
const CONNECT_LIMIT: Duration = Duration::from_secs(30);

fn random_b64(rng: &mut impl RngCore, n: usize) -> String {
    let mut b = vec![0u8; n];
    rng.fill_bytes(&mut b);
    STANDARD.encode(b)
}

/// A `send` frame for one conversation, rendered once with a placeholder where the
/// client message id goes.
struct Template {
    head: String,
    tail: String,
    recipients: u64,
}

impl Template {
    fn new(conversation_id: &str, recipients: &[String], rng: &mut impl RngCore) -> Template {
        let env = OutgoingEnvelope {
            conversation_id: conversation_id.to_string(),
            client_msg_id: ID_PLACEHOLDER.to_string(),
            kind: Kind::Text,
            ttl_secs: None,
            bor_secs: 0,
            forwarded: false,
            keys: recipients
                .iter()
                .map(|d| SealedKey {
                    device_id: d.clone(),
                    sealed: random_b64(rng, 80),
                })
                .collect(),
            ciphertext: random_b64(rng, CIPHERTEXT_BYTES),
            attachments: Vec::new(),
            signature: random_b64(rng, 64),
        };
        let json = stream::encode(&ClientFrame::Send { envelope: env });
        let (head, tail) = json
            .split_once(ID_PLACEHOLDER)
            .expect("placeholder present");
        Template {
            head: head.to_string(),
            tail: tail.to_string(),
            recipients: recipients.len() as u64,
        }
    }

    fn render(&self, id: &str) -> String {
        let mut s = String::with_capacity(self.head.len() + id.len() + self.tail.len());
        s.push_str(&self.head);
        s.push_str(id);
        s.push_str(&self.tail);
        s
    }
}

/// Templates of one device: its direct conversations (by index) and its room.
struct Templates {
    directs: Vec<(usize, Template)>,
    room: Option<(usize, Template)>,
}

impl Templates {
    fn get(&self, t: Target) -> &Template {
        match t {
            Target::Direct(d) => {
                &self
                    .directs
                    .iter()
                    .find(|(i, _)| *i == d)
                    .expect("a direct of this user")
                    .1
            }
            Target::Room(r) => {
                let (i, t) = self.room.as_ref().expect("the user's room");
                debug_assert_eq!(*i, r);
                t
            }
        }
    }
}

fn plan(shape: &Shape) -> Plan {
    Plan {
        users: shape.users,
        devices_per_user: 1,
        directs: shape.directs.clone(),
        rooms: shape.rooms.clone(),
    }
}

fn templates(shape: &Shape, seeded: &Seeded, u: usize, rng: &mut impl RngCore) -> Templates {
    let device_of = |m: usize| seeded.users[m].devices[0].id.clone();
    let directs = shape.user_directs[u]
        .iter()
        .map(|&d| {
            let (a, b) = shape.directs[d];
            let peer = if a == u { b } else { a };
            (
                d,
                Template::new(&seeded.directs[d].id, &[device_of(peer)], rng),
            )
        })
        .collect();
    let room = shape.user_room[u].map(|r| {
        let others: Vec<String> = shape.rooms[r]
            .iter()
            .filter(|&&m| m != u)
            .map(|&m| device_of(m))
            .collect();
        (r, Template::new(&seeded.rooms[r].id, &others, rng))
    });
    Templates { directs, room }
}

/// Seed, start the server, connect every device, run both phases, stop.
pub fn run(
    settings: &Settings,
    shape: Arc<Shape>,
    rt: &tokio::runtime::Runtime,
) -> Result<SystemResult> {
    println!(
        "outpost: seeding {} users with one device each",
        shape.users
    );
    let dir = temp_data_dir("relay")?;
    seed::bootstrap(dir.path())?;
    let seeded = seed::seed(dir.path(), &plan(&shape))?;
    let mut server = Server::start(dir.path())?;
    let addr = server.wait_addr()?;
    let pid = server.pid();
    println!("outpost: serving on {addr} (pid {pid})");
    let result = rt.block_on(drive(settings, shape, &seeded, &server, addr, pid));
    match result {
        Ok(r) => {
            let took = server.stop()?;
            println!(
                "outpost: stopped cleanly in {:.0} ms",
                took.as_secs_f64() * 1000.0
            );
            Ok(r)
        }
        Err(e) => {
            let tail = server.stderr_tail();
            drop(server);
            Err(e.context(format!("the server's last lines on stderr:\n{tail}")))
        }
    }
}

async fn drive(
    settings: &Settings,
    shape: Arc<Shape>,
    seeded: &Seeded,
    server: &Server,
    addr: std::net::SocketAddr,
    pid: u32,
) -> Result<SystemResult> {
    let tls = stream::tls_connector(&server.ca_file())?;
    let baseline_kib = procstat::tree_rss_kib(pid);
    let ctl = Arc::new(Control::new());
    let started = Instant::now();
    let mut conns: Vec<Option<Ws>> = (0..shape.users).map(|_| None).collect();
    {
        let mut pending = FuturesUnordered::new();
        let mut next = 0;
        while next < shape.users || !pending.is_empty() {
            while next < shape.users && pending.len() < CONNECT_PARALLEL {
                let u = next;
                let token = seeded.users[u].devices[0].token.clone();
                let tls = tls.clone();
                pending.push(async move {
                    let r = tokio::time::timeout(CONNECT_LIMIT, async {
                        let mut ws =
                            stream::open(addr, None, &tls, stream::ws_config(READ_BUFFER)).await?;
                        let ready = stream::authenticate(&mut ws, &token, CONNECT_LIMIT).await?;
                        if ready.pending != 0 {
                            bail!("device {u} has {} items waiting on connect", ready.pending);
                        }
                        Ok(ws)
                    })
                    .await
                    .map_err(|_| {
                        anyhow!(
                            "device {u} did not connect within {} s",
                            CONNECT_LIMIT.as_secs()
                        )
                    })
                    .and_then(|r| r);
                    (u, r)
                });
                next += 1;
            }
            if let Some((u, r)) = pending.next().await {
                conns[u] = Some(r.with_context(|| format!("connecting device {u}"))?);
            }
        }
    }
    println!(
        "outpost: {} devices connected and authenticated in {:.1} s; server RSS {:.0} MiB (was {:.0} MiB)",
        shape.users,
        started.elapsed().as_secs_f64(),
        procstat::tree_rss_kib(pid) as f64 / 1024.0,
        baseline_kib as f64 / 1024.0
    );

    let mut tasks = Vec::with_capacity(shape.users);
    let mut rng = StdRng::seed_from_u64(7);
    for (u, ws) in conns.into_iter().enumerate() {
        let ws = ws.expect("connected above");
        let t = templates(&shape, seeded, u, &mut rng);
        tasks.push(tokio::spawn(device(ctl.clone(), shape.clone(), u, ws, t)));
    }
    crate::measure(settings, &ctl, &shape, pid, true, tasks, baseline_kib).await
}

/// The send time in a `<user>.<n>.<µs>` client message id.
/// The send time an id carries. Ids are `{send µs, 16 digits}.{device}.{n}`: time
/// first, like the reference client's UUIDv7 (PROTOCOL.md §4.4 asks for time-ordered
/// ids), so they sort by time as a real client's do.
fn sent_us(id: &str) -> Option<u64> {
    id.split('.').next()?.parse().ok()
}

fn msg_id(me: usize, n: u64, sent_us: u64) -> String {
    format!("{sent_us:016}.{me}.{n}")
}

/// One device: sends as the mode says, reads everything, acknowledges deliveries.
async fn device(
    ctl: Arc<Control>,
    shape: Arc<Shape>,
    me: usize,
    ws: Ws,
    templates: Templates,
) -> Samples {
    let mut samples = Samples::default();
    if let Err(e) = device_loop(&ctl, &shape, me, ws, &templates, &mut samples).await {
        ctl.fail(format!("device {me}: {e:#}"));
    }
    samples
}

async fn device_loop(
    ctl: &Control,
    shape: &Shape,
    me: usize,
    ws: Ws,
    templates: &Templates,
    samples: &mut Samples,
) -> Result<()> {
    let (mut sink, mut source) = ws.split();
    let mut mode_rx = ctl.mode.subscribe();
    let mut mode = *mode_rx.borrow_and_update();
    let mut rng = StdRng::seed_from_u64(1000 + me as u64);
    // Unanswered sends in order: (n, send µs, recipients).
    let mut inflight: VecDeque<(u64, u64, u64)> = VecDeque::new();
    let mut n = 0u64;
    let mut last_seq = 0u64;
    let mut acked = 0u64;
    // Deliveries since the last ack (seqs are global, so their difference is not).
    let mut unacked = 0u64;
    // Each device's ack timer at its own phase: devices are started together, and
    // timers started together would send 1,000 acks in one burst every ACK_EVERY.
    let mut ack_tick = tokio::time::interval_at(
        tokio::time::Instant::now() + ACK_EVERY.mul_f64(rng.random::<f64>()),
        ACK_EVERY,
    );
    ack_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut pace = load::pacer(mode, &mut rng);
    loop {
        if mode == Mode::Stop {
            let _ = sink.send(Message::Close(None)).await;
            return Ok(());
        }
        if let Mode::Closed { window } = mode {
            while inflight.len() < window {
                send(
                    ctl,
                    shape,
                    me,
                    &mut sink,
                    templates,
                    &mut rng,
                    &mut n,
                    &mut inflight,
                )
                .await?;
            }
        }
        tokio::select! {
            changed = mode_rx.changed() => {
                if changed.is_err() {
                    mode = Mode::Stop;
                    continue;
                }
                mode = *mode_rx.borrow_and_update();
                pace = load::pacer(mode, &mut rng);
            }
            msg = source.next() => {
                let msg = match msg {
                    None => bail!("the server closed the stream"),
                    Some(m) => m.context("reading the stream")?,
                };
                let text = match msg {
                    Message::Text(t) => t,
                    Message::Close(c) => {
                        if mode == Mode::Stop {
                            return Ok(());
                        }
                        bail!("the server closed the stream: {c:?}");
                    }
                    Message::Ping(_) | Message::Pong(_) => continue,
                    other => bail!("unexpected WebSocket message {other:?}"),
                };
                // Most frames are deliveries and acceptances: read only what the
                // generator checks, without copying the envelope's strings.
                let frame = match serde_json::from_str::<Peek>(&text) {
                    Ok(Peek { ty: "deliver", envelope: Some(d), .. }) => Seen::Deliver(d),
                    Ok(Peek { ty: "accepted", client_msg_id: Some(id), duplicate, .. }) => {
                        Seen::Accepted(id, duplicate)
                    }
                    _ => Seen::Other(Box::new(serde_json::from_str::<ServerFrame>(&text).with_context(|| {
                        format!("an unreadable frame: {}", text.chars().take(300).collect::<String>())
                    })?)),
                };
                match frame {
                    Seen::Deliver(d) => {
                        if d.seq <= last_seq {
                            bail!("deliver seq {} after seq {last_seq}: out of order or repeated", d.seq);
                        }
                        last_seq = d.seq;
                        let now = ctl.now_us();
                        if let Some(t) = sent_us(d.client_msg_id) {
                            samples.delivery(ctl.window.load(Ordering::Relaxed), now.saturating_sub(t));
                        }
                        ctl.delivered.fetch_add(1, Ordering::Relaxed);
                        unacked += 1;
                        if unacked >= ACK_AFTER {
                            unacked = 0;
                            ack(ctl, &mut sink, last_seq).await?;
                            acked = last_seq;
                        }
                    }
                    Seen::Accepted(client_msg_id, duplicate) => {
                        let Some((k, t, recips)) = inflight.pop_front() else {
                            bail!("accepted {client_msg_id} with nothing in flight");
                        };
                        let want = msg_id(me, k, t);
                        if client_msg_id != want || duplicate {
                            bail!("accepted {client_msg_id} (duplicate: {duplicate}) when {want} was next");
                        }
                        let now = ctl.now_us();
                        samples.accept(ctl.window.load(Ordering::Relaxed), now.saturating_sub(t));
                        ctl.expected.fetch_add(recips, Ordering::Relaxed);
                        ctl.accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    Seen::Other(other) => match *other {
                        ServerFrame::Deliver { .. } | ServerFrame::Accepted { .. } => {
                            bail!("a deliver or accepted frame of an unexpected shape: {}", text.chars().take(300).collect::<String>())
                        }
                        ServerFrame::Error { code, message, client_msg_id, details, fatal } => {
                            bail!(
                                "error frame: code {code}, fatal {fatal}, client_msg_id {client_msg_id:?}, message {message:?}, details {}",
                                details.map(|d| d.to_string()).unwrap_or_default()
                            );
                        }
                        ServerFrame::Ready { .. } => bail!("a second ready frame"),
                        ServerFrame::Membership { .. } | ServerFrame::Receipt { .. }
                        | ServerFrame::Policy { .. } | ServerFrame::Pong { .. }
                        | ServerFrame::DevicesPending { .. } => {}
                    },
                }
            }
            _ = async { pace.as_mut().expect("guarded").tick().await }, if pace.is_some() => {
                if inflight.len() < MAX_OUTSTANDING {
                    send(ctl, shape, me, &mut sink, templates, &mut rng, &mut n, &mut inflight).await?;
                } else {
                    ctl.skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ = ack_tick.tick() => {
                if last_seq > acked {
                    unacked = 0;
                    ack(ctl, &mut sink, last_seq).await?;
                    acked = last_seq;
                }
            }
        }
    }
}

/// The fields of a `deliver` or `accepted` frame the generator checks, borrowed from
/// the frame's text (everything else in it is skipped, not copied).
#[derive(serde::Deserialize)]
struct Peek<'a> {
    #[serde(rename = "type", borrow)]
    ty: &'a str,
    #[serde(borrow)]
    envelope: Option<PeekDelivery<'a>>,
    #[serde(borrow)]
    client_msg_id: Option<&'a str>,
    #[serde(default)]
    duplicate: bool,
}

#[derive(serde::Deserialize)]
struct PeekDelivery<'a> {
    seq: u64,
    #[serde(borrow)]
    client_msg_id: &'a str,
}

enum Seen<'a> {
    Deliver(PeekDelivery<'a>),
    Accepted(&'a str, bool),
    Other(Box<ServerFrame>),
}

type Sink = futures_util::stream::SplitSink<Ws, Message>;

async fn ack(ctl: &Control, sink: &mut Sink, up_to: u64) -> Result<()> {
    let f = stream::encode(&ClientFrame::Ack { up_to });
    sink.send(Message::text(f))
        .await
        .context("sending an ack")?;
    ctl.acks.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn send(
    ctl: &Control,
    shape: &Shape,
    me: usize,
    sink: &mut Sink,
    templates: &Templates,
    rng: &mut StdRng,
    n: &mut u64,
    inflight: &mut VecDeque<(u64, u64, u64)>,
) -> Result<()> {
    let target = shape.pick(me, rng);
    let t = templates.get(target);
    *n += 1;
    let now = ctl.now_us();
    let id = msg_id(me, *n, now);
    inflight.push_back((*n, now, t.recipients));
    ctl.sent.fetch_add(1, Ordering::Relaxed);
    sink.send(Message::text(t.render(&id)))
        .await
        .context("sending an envelope")
}
