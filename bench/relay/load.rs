//! The load both systems get, and how it is measured, independent of the protocol.
//!
//! [`Shape`]: who talks to whom — every user has two direct conversations (with its
//! neighbours on a ring) and belongs to one room (sizes 10, 20, 30, 40, 50, …); each
//! send picks the user's room with probability `room_share`, else one of its two
//! direct conversations.
//!
//! [`Control`]: what the per-connection tasks read and update — the current
//! [`Mode`] (quiet, paced at a fixed offered rate, closed loop with a window, stop),
//! shared counters (sent, accepted, delivered, deliveries expected from what was
//! accepted), the measuring window a delivery falls into, and the first failure.
//!
//! [`run_phase`] drives one measured phase: warm-up, a timed window with CPU and
//! memory sampling of the server, then a drain that checks every accepted message
//! reached every recipient exactly once.

use crate::common::procstat::{self, CpuMeter};
use anyhow::{Result, bail};
use rand::Rng;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Most unanswered sends a device may have; a paced tick beyond it is skipped (and
/// counted), so an overloaded server cannot make the generator queue without end.
pub const MAX_OUTSTANDING: usize = 64;
/// A receiver acknowledges after this many deliveries, or after [`ACK_EVERY`].
pub const ACK_AFTER: u64 = 64;
pub const ACK_EVERY: Duration = Duration::from_millis(100);
/// Longest wait for the last deliveries after sending stops.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Room sizes, repeated over the users.
const ROOM_SIZES: [usize; 5] = [10, 20, 30, 40, 50];

#[derive(Debug, Clone, Copy)]
pub enum Target {
    Direct(usize),
    Room(usize),
}

pub struct Shape {
    pub users: usize,
    pub directs: Vec<(usize, usize)>,
    pub rooms: Vec<Vec<usize>>,
    /// Direct conversation indexes of each user.
    pub user_directs: Vec<Vec<usize>>,
    pub user_room: Vec<Option<usize>>,
    pub room_share: f64,
}

impl Shape {
    pub fn new(users: usize, room_share: f64) -> Shape {
        let mut directs = Vec::new();
        let mut user_directs = vec![Vec::new(); users];
        if users >= 3 {
            for i in 0..users {
                let j = (i + 1) % users;
                user_directs[i].push(directs.len());
                user_directs[j].push(directs.len());
                directs.push((i, j));
            }
        } else if users == 2 {
            user_directs[0].push(0);
            user_directs[1].push(0);
            directs.push((0, 1));
        }
        let mut rooms: Vec<Vec<usize>> = Vec::new();
        let mut user_room = vec![None; users];
        let mut next = 0;
        let mut k = 0;
        while next < users {
            let size = ROOM_SIZES[k % ROOM_SIZES.len()].min(users - next);
            let members: Vec<usize> = (next..next + size).collect();
            if members.len() < 2 {
                // A lone remainder joins the previous room.
                if let Some(last) = rooms.last_mut() {
                    last.extend(&members);
                    for &m in &members {
                        user_room[m] = Some(rooms.len() - 1);
                    }
                }
            } else {
                for &m in &members {
                    user_room[m] = Some(rooms.len());
                }
                rooms.push(members);
            }
            next += size;
            k += 1;
        }
        Shape {
            users,
            directs,
            rooms,
            user_directs,
            user_room,
            room_share,
        }
    }

    /// The conversation user `u`'s next message goes to.
    pub fn pick(&self, u: usize, rng: &mut impl Rng) -> Target {
        let directs = &self.user_directs[u];
        match self.user_room[u] {
            Some(r) if directs.is_empty() || rng.random::<f64>() < self.room_share => {
                Target::Room(r)
            }
            _ => Target::Direct(directs[rng.random_range(0..directs.len())]),
        }
    }

    /// Receiving users of a message (one device each).
    pub fn recipients(&self, t: Target) -> usize {
        match t {
            Target::Direct(_) => 1,
            Target::Room(r) => self.rooms[r].len() - 1,
        }
    }

    /// Deliveries per send on average over all users.
    pub fn deliveries_per_send(&self) -> f64 {
        let mut total = 0.0;
        for u in 0..self.users {
            let room = self.user_room[u].map(|r| (self.rooms[r].len() - 1) as f64);
            let has_directs = !self.user_directs[u].is_empty();
            total += match (room, has_directs) {
                (Some(r), true) => self.room_share * r + (1.0 - self.room_share),
                (Some(r), false) => r,
                (None, _) => 1.0,
            };
        }
        total / self.users.max(1) as f64
    }
}

/// What the connection tasks do right now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Connected, not sending (still receiving and acknowledging).
    Quiet,
    /// One send per device every `interval` (offered load), at most
    /// [`MAX_OUTSTANDING`] unanswered.
    Paced { interval: Duration },
    /// Keep `window` sends unanswered per device (as fast as the server answers).
    Closed { window: usize },
    /// Close the connection and end the task.
    Stop,
}

/// The send timer of a device in `mode` (paced only), started at a random phase so
/// that devices do not send in lockstep.
pub fn pacer(mode: Mode, rng: &mut impl Rng) -> Option<tokio::time::Interval> {
    match mode {
        Mode::Paced { interval } => {
            let offset = interval.mul_f64(rng.random::<f64>());
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
            // Catch up after a stall, so the offered rate holds.
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            Some(i)
        }
        _ => None,
    }
}

/// State shared by the bench and every connection task.
pub struct Control {
    pub mode: watch::Sender<Mode>,
    /// Which measuring window deliveries fall into now (0: none).
    pub window: AtomicU8,
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub delivered: AtomicU64,
    /// Deliveries owed for the accepted messages.
    pub expected: AtomicU64,
    /// Paced sends skipped because a device had [`MAX_OUTSTANDING`] unanswered.
    pub skipped: AtomicU64,
    pub acks: AtomicU64,
    failure: Mutex<Option<String>>,
    epoch: Instant,
}

impl Control {
    pub fn new() -> Control {
        Control {
            mode: watch::Sender::new(Mode::Quiet),
            window: AtomicU8::new(0),
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            acks: AtomicU64::new(0),
            failure: Mutex::new(None),
            epoch: Instant::now(),
        }
    }

    /// Microseconds since the bench started (the clock every send time uses).
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Record a misbehaviour (the first one wins) and stop everything.
    pub fn fail(&self, what: String) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(what);
        }
        drop(f);
        self.mode.send_replace(Mode::Stop);
    }

    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn check(&self) -> Result<()> {
        match self.failure() {
            Some(f) => bail!("{f}"),
            None => Ok(()),
        }
    }

    fn snapshot(&self) -> Counts {
        Counts {
            sent: self.sent.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Counts {
    sent: u64,
    accepted: u64,
    delivered: u64,
    skipped: u64,
}

/// Latency samples one connection task took (microseconds), per measuring window.
#[derive(Default)]
pub struct Samples {
    /// Send → delivery at the recipient.
    pub delivery: [Vec<u32>; 3],
    /// Send → accepted at the sender.
    pub accept: [Vec<u32>; 3],
}

impl Samples {
    pub fn delivery(&mut self, window: u8, us: u64) {
        if window > 0 {
            self.delivery[window as usize].push(us.min(u32::MAX as u64) as u32);
        }
    }

    pub fn accept(&mut self, window: u8, us: u64) {
        if window > 0 {
            self.accept[window as usize].push(us.min(u32::MAX as u64) as u32);
        }
    }

    pub fn merge(&mut self, other: Samples) {
        for w in 0..3 {
            self.delivery[w].extend_from_slice(&other.delivery[w]);
            self.accept[w].extend_from_slice(&other.accept[w]);
        }
    }
}

/// The `q` quantile (0..1) of samples in microseconds, in milliseconds.
pub fn quantile_ms(v: &mut [u32], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)] as f64 / 1000.0
}

/// One measured phase's figures.
#[derive(Debug, Clone, Default)]
pub struct PhaseResult {
    pub seconds: f64,
    pub sent_per_s: f64,
    pub accepted_per_s: f64,
    pub delivered_per_s: f64,
    pub skipped: u64,
    pub server_cpu_cores: f64,
    pub generator_cpu_cores: f64,
    /// Every process on the machine, the server and the generator included.
    pub machine_cpu_cores: f64,
    pub server_rss_mib: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub accept_p50_ms: f64,
    pub accept_p99_ms: f64,
    /// Owed deliveries that had not arrived when the drain gave up (only when not strict).
    pub undelivered: u64,
}

impl PhaseResult {
    /// Fill in the latency figures from the merged samples of `window`.
    /// Cores used by processes other than the server and the generator (other work
    /// on the machine disturbing the measurement).
    pub fn other_cpu_cores(&self) -> f64 {
        (self.machine_cpu_cores - self.server_cpu_cores - self.generator_cpu_cores).max(0.0)
    }

    pub fn latencies(&mut self, samples: &mut Samples, window: u8) {
        let d = &mut samples.delivery[window as usize];
        self.p50_ms = quantile_ms(d, 0.50);
        self.p99_ms = quantile_ms(d, 0.99);
        self.max_ms = quantile_ms(d, 1.0);
        let a = &mut samples.accept[window as usize];
        self.accept_p50_ms = quantile_ms(a, 0.50);
        self.accept_p99_ms = quantile_ms(a, 0.99);
    }
}

async fn sleep_checked(ctl: &Control, d: Duration) -> Result<()> {
    let until = Instant::now() + d;
    loop {
        ctl.check()?;
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        tokio::time::sleep((until - now).min(Duration::from_millis(100))).await;
    }
}

/// Run one phase: `mode` for `warmup`, then measured for `seconds` as window
/// `window` (1 or 2), then quiet until every accepted message is delivered. `strict`:
/// a lost or duplicated delivery is an error (outpost); otherwise it is counted.
#[allow(clippy::too_many_arguments)]
pub async fn run_phase(
    ctl: &Control,
    label: &str,
    mode: Mode,
    window: u8,
    warmup: Duration,
    seconds: Duration,
    server_pid: u32,
    strict: bool,
) -> Result<PhaseResult> {
    let gap_before = gap(ctl);
    ctl.mode.send_replace(mode);
    println!("  {label}: warming up for {} s", warmup.as_secs());
    sleep_checked(ctl, warmup).await?;
    let server_cpu = CpuMeter::tree(server_pid);
    let generator_cpu = CpuMeter::process(std::process::id());
    let machine_cpu = procstat::MachineMeter::start();
    let start = ctl.snapshot();
    let started = Instant::now();
    ctl.window.store(window, Ordering::Relaxed);
    let mut last = start;
    let mut last_at = started;
    let step = Duration::from_secs(5);
    while started.elapsed() < seconds {
        let left = seconds.saturating_sub(started.elapsed());
        sleep_checked(ctl, left.min(step)).await?;
        let now = ctl.snapshot();
        let dt = last_at.elapsed().as_secs_f64();
        println!(
            "  {label}: {:>4.0} s  sent {:>8.0}/s  accepted {:>8.0}/s  delivered {:>8.0}/s",
            started.elapsed().as_secs_f64(),
            (now.sent - last.sent) as f64 / dt,
            (now.accepted - last.accepted) as f64 / dt,
            (now.delivered - last.delivered) as f64 / dt,
        );
        last = now;
        last_at = Instant::now();
    }
    ctl.window.store(0, Ordering::Relaxed);
    let end = ctl.snapshot();
    let secs = started.elapsed().as_secs_f64();
    let threads = server_cpu
        .busiest_threads(4)
        .iter()
        .map(|(name, cores)| format!("{name} {cores:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!("  {label}: busiest server threads (cores): {threads}");
    let mut result = PhaseResult {
        seconds: secs,
        sent_per_s: (end.sent - start.sent) as f64 / secs,
        accepted_per_s: (end.accepted - start.accepted) as f64 / secs,
        delivered_per_s: (end.delivered - start.delivered) as f64 / secs,
        skipped: end.skipped - start.skipped,
        server_cpu_cores: server_cpu.cores(),
        generator_cpu_cores: generator_cpu.cores(),
        machine_cpu_cores: machine_cpu.cores(),
        server_rss_mib: procstat::tree_rss_kib(server_pid) as f64 / 1024.0,
        ..Default::default()
    };
    ctl.mode.send_replace(Mode::Quiet);
    drain(ctl, label, strict).await?;
    result.undelivered = gap(ctl).saturating_sub(gap_before);
    Ok(result)
}

/// Owed deliveries not (yet) arrived.
fn gap(ctl: &Control) -> u64 {
    ctl.expected
        .load(Ordering::Relaxed)
        .saturating_sub(ctl.delivered.load(Ordering::Relaxed))
}

/// Wait until every send is answered and every owed delivery has arrived.
pub async fn drain(ctl: &Control, label: &str, strict: bool) -> Result<()> {
    let started = Instant::now();
    loop {
        ctl.check()?;
        let sent = ctl.sent.load(Ordering::Relaxed);
        let accepted = ctl.accepted.load(Ordering::Relaxed);
        let expected = ctl.expected.load(Ordering::Relaxed);
        let delivered = ctl.delivered.load(Ordering::Relaxed);
        if sent == accepted && delivered == expected {
            println!(
                "  {label}: drained in {:.1} s: {accepted} messages accepted, {delivered} deliveries, all accounted for",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if sent == accepted && delivered > expected {
            let what = format!(
                "{label}: {delivered} deliveries arrived for {expected} owed: {} duplicates",
                delivered - expected
            );
            if strict {
                bail!("{what}");
            }
            println!("  {what}");
            return Ok(());
        }
        if started.elapsed() > DRAIN_LIMIT {
            if !strict {
                println!(
                    "  {label}: gave up waiting after {} s: {} of {sent} sends unanswered, {delivered} of {expected} owed deliveries arrived",
                    DRAIN_LIMIT.as_secs(),
                    sent.saturating_sub(accepted),
                );
                return Ok(());
            }
            bail!(
                "{label}: {} s after sending stopped, {} of {sent} sends are unanswered and {} of {expected} owed deliveries have not arrived",
                DRAIN_LIMIT.as_secs(),
                sent.saturating_sub(accepted),
                expected.saturating_sub(delivered)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
