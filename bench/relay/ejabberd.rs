//! The same load against ejabberd (the Debian package), through XMPP.
//!
//! ejabberd runs from a configuration written to a temporary folder (its Mnesia
//! database and logs there too), as a child of the benchmark (`erl -s ejabberd`,
//! no Erlang distribution, nothing else touched), with one direct-TLS c2s listener on
//! an ephemeral loopback port, `mod_offline` on, `mod_stream_mgmt` (XEP-0198) for the
//! server's per-stanza acknowledgements, `mod_muc` for rooms, no traffic shaper. Users
//! register in-band (XEP-0077), in parallel.
//!
//! Mapping: a direct conversation is a `type='chat'` message to the peer's bare JID;
//! a room is a MUC room every member has joined (the message goes once to the room,
//! which fans it out; the echo to the sender is not counted as a delivery). "Accepted"
//! is the server's stream-management ack (`<a h=…/>`) covering the message — the
//! server has handled it, but unlike outpost's `accepted` nothing is on disk: ejabberd
//! routes messages to online recipients from memory and only writes to mod_offline
//! when the recipient is offline. Receivers answer the server's `<r/>` requests.

use crate::common::procstat;
use crate::common::stream::tls_connector;
use crate::load::{self, ACK_EVERY, Control, MAX_OUTSTANDING, Mode, Samples, Shape, Target};
use crate::xmpp::{Conn, Element, SM};
use crate::{Settings, SystemResult};
use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;

const DOMAIN: &str = "localhost";
const MUC: &str = "conference.localhost";
const PASSWORD: &str = "bench-password-2024";
/// Bytes of random payload per message (before base64), as outpost's ciphertext.
const PAYLOAD_BYTES: usize = 300;
const CONNECT_PARALLEL: usize = 32;
const STEP_LIMIT: Duration = Duration::from_secs(60);
const START_LIMIT: Duration = Duration::from_secs(120);
const STOP_LIMIT: Duration = Duration::from_secs(30);
const TAIL_LINES: usize = 40;

fn user(i: usize) -> String {
    format!("u{i:05}")
}

fn room_jid(r: usize) -> String {
    format!("r{r:04}@{MUC}")
}

/// Where the Debian package keeps ejabberd's Erlang applications.
fn erl_libs() -> Option<PathBuf> {
    let base = Path::new("/usr/lib/x86_64-linux-gnu");
    let dirs = [
        base.to_path_buf(),
        PathBuf::from("/usr/lib/aarch64-linux-gnu"),
    ];
    for d in dirs {
        if let Ok(rd) = std::fs::read_dir(&d)
            && rd
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("ejabberd-"))
        {
            return Some(d);
        }
    }
    None
}

fn erl() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/erl");
    p.is_file().then_some(p)
}

/// ejabberd's Erlang library folder, installing the package first if it is absent.
pub fn ensure_installed() -> Result<PathBuf> {
    if let (Some(libs), Some(_)) = (erl_libs(), erl()) {
        return Ok(libs);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "ejabberd is not installed and this is not root: run `sudo apt-get install -y ejabberd` first"
        );
    }
    println!("ejabberd: not installed; running: apt-get install -y ejabberd");
    let status = Command::new("apt-get")
        .args(["install", "-y", "ejabberd"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!("apt-get install -y ejabberd failed ({status})");
    }
    match (erl_libs(), erl()) {
        (Some(libs), Some(_)) => Ok(libs),
        _ => bail!("ejabberd was installed but its Erlang applications are not where expected"),
    }
}

fn config(port: u16, cert: &Path) -> String {
    format!(
        r#"hosts:
  - {DOMAIN}
loglevel: warning
certfiles:
  - "{cert}"
listen:
  -
    port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 4096
    max_stanza_size: 262144
    shaper: none
    access: c2s
    tls: true
auth_method: internal
auth_password_format: plain
registration_timeout: infinity
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  register:
    allow: all
  muc_create:
    allow: local
shaper_rules:
  max_user_offline_messages: 100000
  max_user_sessions: 10
  c2s_shaper: none
modules:
  mod_offline:
    access_max_user_messages: max_user_offline_messages
  mod_register:
    ip_access: all
    access: register
  mod_stream_mgmt:
    resend_on_timeout: false
  mod_disco: {{}}
  mod_muc:
    access: all
    access_create: muc_create
    access_persistent: muc_create
    history_size: 0
    max_users: 500
    max_user_conferences: 100
    default_room_options:
      persistent: false
      logging: false
      mam: false
"#,
        cert = cert.display()
    )
}

/// A running ejabberd, killed if dropped before [`Ejabberd::stop`].
pub struct Ejabberd {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub cert: PathBuf,
    tail: Arc<Mutex<VecDeque<String>>>,
    _dir: tempfile::TempDir,
}

impl Ejabberd {
    pub fn start(libs: &Path) -> Result<Ejabberd> {
        let dir = tempfile::Builder::new()
            .prefix("outpost-bench-ejabberd-")
            .tempdir()?;
        let d = dir.path();
        std::fs::create_dir_all(d.join("db"))?;
        std::fs::create_dir_all(d.join("log"))?;
        // A self-signed certificate for the domain, valid for a few days (ejabberd's
        // expiry timers cannot handle rcgen's default end date in the year 4096).
        let mut params = rcgen::CertificateParams::new(vec![DOMAIN.to_string()])?;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(7);
        let key = rcgen::KeyPair::generate()?;
        let c = params
            .self_signed(&key)
            .context("cannot generate a certificate for ejabberd")?;
        let cert = d.join("cert.pem");
        std::fs::write(&cert, c.pem())?;
        let both = d.join("xmpp.pem");
        std::fs::write(&both, format!("{}{}", c.pem(), key.serialize_pem()))?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let cfg = d.join("ejabberd.yml");
        std::fs::write(&cfg, config(port, &both))?;
        let mut cmd = Command::new(erl().context("erl is missing")?);
        cmd.arg("-noinput")
            .args(["+P", "1000000"])
            .arg("-mnesia")
            .arg("dir")
            .arg(format!("\"{}\"", d.join("db").display()))
            .args(["-s", "ejabberd"])
            .env("EJABBERD_CONFIG_PATH", &cfg)
            .env("EJABBERD_LOG_PATH", d.join("log").join("ejabberd.log"))
            .env("ERL_LIBS", libs)
            .env("ERL_CRASH_DUMP", d.join("log").join("erl_crash.dump"))
            .env("HOME", d)
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        println!(
            "ejabberd: starting on 127.0.0.1:{port} with {}",
            cfg.display()
        );
        let mut child = cmd.spawn().context("cannot run erl")?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        for out in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let t = tail.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    let mut t = t.lock().unwrap_or_else(|p| p.into_inner());
                    if t.len() == TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            });
        }
        let mut e = Ejabberd {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            cert,
            tail,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            if std::net::TcpStream::connect_timeout(&e.addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Some(s) = e.child.as_mut().expect("running").try_wait()? {
                bail!("ejabberd exited ({s}) while starting:\n{}", e.tail());
            }
            if started.elapsed() > START_LIMIT {
                bail!(
                    "ejabberd did not listen within {} s:\n{}",
                    START_LIMIT.as_secs(),
                    e.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        println!(
            "ejabberd: listening after {:.1} s (pid {})",
            started.elapsed().as_secs_f64(),
            e.pid()
        );
        Ok(e)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn tail(&self) -> String {
        let t = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        t.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM, then wait for the VM to exit (killed after [`STOP_LIMIT`]).
    pub fn stop(mut self) -> Result<Duration> {
        let mut child = self.child.take().expect("running");
        let asked = Instant::now();
        // SAFETY: kill(2) on the pid of a child we have not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        loop {
            if let Some(s) = child.try_wait()? {
                if !s.success() {
                    println!("ejabberd: exited with {s} after SIGTERM");
                }
                return Ok(asked.elapsed());
            }
            if asked.elapsed() > STOP_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "ejabberd did not stop within {} s of SIGTERM (killed)",
                    STOP_LIMIT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Start ejabberd, register and connect every user, join the rooms, run both
/// phases, stop.
pub fn run(
    settings: &Settings,
    shape: Arc<Shape>,
    rt: &tokio::runtime::Runtime,
) -> Result<SystemResult> {
    let libs = ensure_installed()?;
    let server = Ejabberd::start(&libs)?;
    let result = rt.block_on(drive(settings, shape, &server));
    match result {
        Ok(r) => {
            let took = server.stop()?;
            println!("ejabberd: stopped in {:.0} ms", took.as_secs_f64() * 1000.0);
            Ok(r)
        }
        Err(e) => {
            let tail = server.tail();
            drop(server);
            Err(e.context(format!("ejabberd's last lines:\n{tail}")))
        }
    }
}

/// Run `f(i)` for every i in 0..n, `CONNECT_PARALLEL` at a time, each bounded.
async fn parallel<T, F, Fut>(n: usize, what: &str, f: F) -> Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut pending = FuturesUnordered::new();
    let mut next = 0;
    while next < n || !pending.is_empty() {
        while next < n && pending.len() < CONNECT_PARALLEL {
            let i = next;
            let fut = f(i);
            pending.push(async move {
                let r = tokio::time::timeout(STEP_LIMIT, fut)
                    .await
                    .map_err(|_| anyhow!("timed out after {} s", STEP_LIMIT.as_secs()))
                    .and_then(|r| r);
                (i, r)
            });
            next += 1;
        }
        if let Some((i, r)) = pending.next().await {
            out[i] = Some(r.with_context(|| format!("{what} {}", user(i)))?);
        }
    }
    Ok(out.into_iter().map(|o| o.expect("all done")).collect())
}

/// A logged-in user: its connection and the stanzas it has sent and received since
/// stream management was enabled.
struct Session {
    conn: Conn,
    sent: u32,
    received: u32,
}

impl Session {
    async fn stanza(&mut self, s: &str) -> Result<()> {
        self.sent = self.sent.wrapping_add(1);
        self.conn.send(s).await
    }

    /// Wait for an element matching `want`, answering `<r/>` and failing on errors.
    async fn wait_for(&mut self, what: &str, want: impl Fn(&Element) -> bool) -> Result<()> {
        loop {
            let e = self.conn.next_answering(&mut self.received).await?;
            if want(&e) {
                return Ok(());
            }
            if e.attr("type") == Some("error") || e.name() == "stream:error" {
                bail!("{what}: the server answered {}", e.0);
            }
        }
    }

    /// Join a room; the creator also submits the default configuration (an instant
    /// room, XEP-0045 §10.1.2) so the room is unlocked before anyone else joins.
    async fn join(&mut self, room: &str, nick: &str, creator: bool) -> Result<()> {
        self.stanza(&format!(
            "<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>\
             <history maxstanzas='0'/></x></presence>"
        ))
        .await?;
        let me = format!("{room}/{nick}");
        self.wait_for("joining a room", |e| {
            e.name() == "presence"
                && e.attr("from") == Some(me.as_str())
                && e.attr("type").is_none()
        })
        .await?;
        if creator {
            self.stanza(&format!(
                "<iq type='set' id='cfg' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
                 <x xmlns='jabber:x:data' type='submit'/></query></iq>"
            ))
            .await?;
            self.wait_for("configuring a room", |e| {
                e.name() == "iq" && e.attr("id") == Some("cfg") && e.attr("type") == Some("result")
            })
            .await?;
        }
        Ok(())
    }
}

async fn drive(settings: &Settings, shape: Arc<Shape>, server: &Ejabberd) -> Result<SystemResult> {
    let tls = tls_connector(&server.cert)?;
    let addr = server.addr;
    let pid = server.pid();
    let n = shape.users;
    let t = Instant::now();
    parallel(n, "registering", |i| {
        let tls = tls.clone();
        async move {
            let mut c = Conn::connect(addr, DOMAIN, &tls).await?;
            c.register(&user(i), PASSWORD).await?;
            c.close().await;
            Ok(())
        }
    })
    .await?;
    println!(
        "ejabberd: registered {n} users in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let baseline_kib = procstat::tree_rss_kib(pid);
    let sessions = parallel(n, "logging in", |i| {
        let tls = tls.clone();
        async move {
            let mut conn = Conn::connect(addr, DOMAIN, &tls).await?;
            conn.login(&user(i), PASSWORD, "bench").await?;
            let mut s = Session {
                conn,
                sent: 0,
                received: 0,
            };
            s.stanza("<presence/>").await?;
            Ok(s)
        }
    })
    .await?;
    println!(
        "ejabberd: {n} users connected, authenticated, bound, with stream management, in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Creators first (each room's first member), then everyone else.
    let t = Instant::now();
    let sessions: Vec<Arc<tokio::sync::Mutex<Session>>> = sessions
        .into_iter()
        .map(|s| Arc::new(tokio::sync::Mutex::new(s)))
        .collect();
    for creators in [true, false] {
        let shape = shape.clone();
        let sessions = &sessions;
        parallel(n, "joining rooms", |i| {
            let shape = shape.clone();
            async move {
                let Some(r) = shape.user_room[i] else {
                    return Ok(());
                };
                let creator = shape.rooms[r][0] == i;
                if creator != creators {
                    return Ok(());
                }
                let mut s = sessions[i].lock().await;
                s.join(&room_jid(r), &user(i), creator).await
            }
        })
        .await?;
    }
    println!(
        "ejabberd: {} rooms created and joined in {:.1} s; server RSS {:.0} MiB (was {:.0} MiB before logins)",
        shape.rooms.len(),
        t.elapsed().as_secs_f64(),
        procstat::tree_rss_kib(pid) as f64 / 1024.0,
        baseline_kib as f64 / 1024.0,
    );

    let ctl = Arc::new(Control::new());
    let mut tasks = Vec::with_capacity(n);
    let mut rng = StdRng::seed_from_u64(7);
    for (i, s) in sessions.into_iter().enumerate() {
        let s = Arc::try_unwrap(s)
            .map_err(|_| anyhow!("a session is still shared"))?
            .into_inner();
        let mut pad = vec![0u8; PAYLOAD_BYTES];
        rng.fill_bytes(&mut pad);
        let pad = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pad);
        tasks.push(tokio::spawn(device(ctl.clone(), shape.clone(), i, s, pad)));
    }
    crate::measure(settings, &ctl, &shape, pid, false, tasks, baseline_kib).await
}

async fn device(
    ctl: Arc<Control>,
    shape: Arc<Shape>,
    me: usize,
    s: Session,
    pad: String,
) -> Samples {
    let mut samples = Samples::default();
    if let Err(e) = device_loop(&ctl, &shape, me, s, &pad, &mut samples).await {
        ctl.fail(format!("ejabberd user {}: {e:#}", user(me)));
    }
    samples
}

async fn device_loop(
    ctl: &Control,
    shape: &Shape,
    me: usize,
    mut s: Session,
    pad: &str,
    samples: &mut Samples,
) -> Result<()> {
    let mut mode_rx = ctl.mode.subscribe();
    let mut mode = *mode_rx.borrow_and_update();
    let mut rng = StdRng::seed_from_u64(1000 + me as u64);
    // Unanswered messages in order: (stanza number, send µs, recipients).
    let mut inflight: VecDeque<(u32, u64, u64)> = VecDeque::new();
    let my_room = shape.user_room[me].map(room_jid);
    let my_nick = user(me);
    let mut pace = load::pacer(mode, &mut rng);
    // Stream-management acks the client owes are answered at once; this timer only
    // keeps the loop shape of the outpost client (which acks on a timer).
    let mut tick = tokio::time::interval(ACK_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut out = String::new();
    loop {
        if mode == Mode::Stop {
            s.conn.close().await;
            return Ok(());
        }
        if let Mode::Closed { window } = mode {
            while inflight.len() < window {
                message(
                    ctl,
                    shape,
                    me,
                    &mut s,
                    pad,
                    &mut rng,
                    &mut inflight,
                    &mut out,
                );
            }
        }
        if !out.is_empty() {
            s.conn.send(&out).await?;
            out.clear();
        }
        // Handle everything already buffered before reading more.
        while let Some(e) = s.conn.buffered()? {
            handle(
                ctl,
                me,
                &mut s,
                e,
                &my_room,
                &my_nick,
                &mut inflight,
                samples,
                &mut out,
            )?;
        }
        if !out.is_empty() {
            s.conn.send(&out).await?;
            out.clear();
            continue;
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
            r = s.conn.read_more() => r?,
            _ = async { pace.as_mut().expect("guarded").tick().await }, if pace.is_some() => {
                if inflight.len() < MAX_OUTSTANDING {
                    message(ctl, shape, me, &mut s, pad, &mut rng, &mut inflight, &mut out);
                } else {
                    ctl.skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ = tick.tick() => {}
        }
    }
}

/// Queue one message (and a stream-management ack request) in `out`.
#[allow(clippy::too_many_arguments)]
fn message(
    ctl: &Control,
    shape: &Shape,
    me: usize,
    s: &mut Session,
    pad: &str,
    rng: &mut StdRng,
    inflight: &mut VecDeque<(u32, u64, u64)>,
    out: &mut String,
) {
    let target = shape.pick(me, rng);
    let now = ctl.now_us();
    let (to, kind) = match target {
        Target::Direct(d) => {
            let (a, b) = shape.directs[d];
            let peer = if a == me { b } else { a };
            (format!("{}@{DOMAIN}", user(peer)), "chat")
        }
        Target::Room(r) => (room_jid(r), "groupchat"),
    };
    s.sent = s.sent.wrapping_add(1);
    inflight.push_back((s.sent, now, shape.recipients(target) as u64));
    ctl.sent.fetch_add(1, Ordering::Relaxed);
    out.push_str(&format!(
        "<message to='{to}' type='{kind}' id='{me}.{}'><body>{now} {pad}</body></message><r xmlns='{SM}'/>",
        s.sent
    ));
}

#[allow(clippy::too_many_arguments)]
fn handle(
    ctl: &Control,
    me: usize,
    s: &mut Session,
    e: Element,
    my_room: &Option<String>,
    my_nick: &str,
    inflight: &mut VecDeque<(u32, u64, u64)>,
    samples: &mut Samples,
    out: &mut String,
) -> Result<()> {
    match e.name() {
        "r" => {
            out.push_str(&format!("<a xmlns='{SM}' h='{}'/>", s.received));
            ctl.acks.fetch_add(1, Ordering::Relaxed);
        }
        "a" => {
            let h: u32 = e
                .attr("h")
                .and_then(|h| h.parse().ok())
                .ok_or_else(|| anyhow!("a stream-management ack without h: {}", e.0))?;
            while let Some(&(k, t, recips)) = inflight.front() {
                // Stanza numbers wrap at 2^32 (XEP-0198); compare as a window.
                if h.wrapping_sub(k) >= u32::MAX / 2 {
                    break;
                }
                inflight.pop_front();
                samples.accept(
                    ctl.window.load(Ordering::Relaxed),
                    ctl.now_us().saturating_sub(t),
                );
                ctl.expected.fetch_add(recips, Ordering::Relaxed);
                ctl.accepted.fetch_add(1, Ordering::Relaxed);
            }
        }
        "message" => {
            s.received = s.received.wrapping_add(1);
            if e.attr("type") == Some("error") {
                bail!("an error message: {}", e.0);
            }
            let from = e.attr("from").unwrap_or("");
            if e.attr("type") == Some("groupchat")
                && let Some(room) = my_room
                && from
                    .strip_prefix(room.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                    == Some(my_nick)
            {
                return Ok(()); // The room's echo of our own message.
            }
            let Some(body) = e.child_text("body") else {
                return Ok(()); // Subjects, chat states: not deliveries.
            };
            let sent: u64 = body
                .split(' ')
                .next()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| anyhow!("user {me} received a message it cannot read: {}", e.0))?;
            samples.delivery(
                ctl.window.load(Ordering::Relaxed),
                ctl.now_us().saturating_sub(sent),
            );
            ctl.delivered.fetch_add(1, Ordering::Relaxed);
        }
        "presence" | "iq" => {
            s.received = s.received.wrapping_add(1);
            if e.attr("type") == Some("error") {
                bail!("an error stanza: {}", e.0);
            }
        }
        "stream:error" => bail!("stream error: {}", e.0),
        _ => {}
    }
    Ok(())
}
