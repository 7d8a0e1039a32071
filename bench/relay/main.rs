//! Messaging throughput and latency: 1,000 connected devices exchanging envelopes
//! through outpost (durable mailboxes, WebSocket streams over TLS), then the same
//! load through ejabberd (XMPP over TLS, mod_offline on), printed side by side.
//!
//! The load (see `load.rs`): every user has one device, two direct conversations and
//! one room (10–50 members); a send goes to the room with probability
//! `RELAY_BENCH_ROOM_SHARE` (default 0.1), else to a direct conversation. Two phases:
//!
//! - **paced**: a fixed offered load, `RELAY_BENCH_RATE` deliveries per second in all
//!   (default 50,000, DESIGN.md's target), spread evenly over the devices;
//! - **max**: closed loop, every device keeps `RELAY_BENCH_WINDOW` (default 4) sends
//!   unanswered — as fast as the server answers.
//!
//! Each phase: a warm-up, `RELAY_BENCH_SECONDS` (default 20) measured, then a drain
//! that checks every accepted message reached every recipient exactly once. The
//! generator runs in this process (a 2-thread tokio runtime) on the same two cores
//! as the server; its own CPU use is reported beside the server's.

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
mod ejabberd;
mod load;
mod outpost_relay;
mod xmpp;

use anyhow::{Context, Result, bail};
use load::{Control, Mode, PhaseResult, Shape};
use std::sync::Arc;
use std::time::Duration;

fn main() -> std::process::ExitCode {
    common::main_with(run)
}

/// What the environment asks for.
pub struct Settings {
    pub devices: usize,
    /// Offered deliveries per second in the paced phase.
    pub rate: f64,
    pub seconds: Duration,
    pub warmup: Duration,
    pub room_share: f64,
    pub window: usize,
    pub ejabberd: bool,
    pub outpost: bool,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .ok()
            .with_context(|| format!("{name}={v} is not a valid value")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let s = Settings {
            devices: env("RELAY_BENCH_DEVICES", 1000usize)?,
            rate: env("RELAY_BENCH_RATE", 50_000f64)?,
            seconds: Duration::from_secs(env("RELAY_BENCH_SECONDS", 20u64)?),
            warmup: Duration::from_secs(env("RELAY_BENCH_WARMUP", 5u64)?),
            room_share: env("RELAY_BENCH_ROOM_SHARE", 0.1f64)?,
            window: env("RELAY_BENCH_WINDOW", 4usize)?,
            ejabberd: env("RELAY_BENCH_EJABBERD", 1u8)? != 0,
            outpost: env("RELAY_BENCH_OUTPOST", 1u8)? != 0,
        };
        if s.devices < 2 || s.devices > 100_000 {
            bail!("RELAY_BENCH_DEVICES must be 2 … 100000");
        }
        if !(0.0..=1.0).contains(&s.room_share) {
            bail!("RELAY_BENCH_ROOM_SHARE must be between 0 and 1");
        }
        if s.rate <= 0.0 || s.window == 0 || s.seconds.is_zero() {
            bail!("RELAY_BENCH_RATE, _WINDOW and _SECONDS must be positive");
        }
        Ok(s)
    }
}

/// Both phases' figures for one system.
#[derive(Debug, Clone, Default)]
pub struct SystemResult {
    pub paced: PhaseResult,
    pub max: PhaseResult,
    pub baseline_rss_mib: f64,
}

/// The paced phase, then the closed-loop one.
/// Run both phases with the device tasks already started, stop them, and fold their
/// latency samples and the server's baseline memory into the result.
pub async fn measure(
    settings: &Settings,
    ctl: &Control,
    shape: &Shape,
    server_pid: u32,
    strict: bool,
    tasks: Vec<tokio::task::JoinHandle<load::Samples>>,
    baseline_kib: u64,
) -> Result<SystemResult> {
    let result = phases(settings, ctl, shape, server_pid, strict).await;
    ctl.mode.send_replace(Mode::Stop);
    let mut samples = load::Samples::default();
    for t in tasks {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(10), t).await {
            samples.merge(s);
        }
    }
    let mut r = result?;
    r.paced.latencies(&mut samples, 1);
    r.max.latencies(&mut samples, 2);
    r.baseline_rss_mib = baseline_kib as f64 / 1024.0;
    Ok(r)
}

pub async fn phases(
    settings: &Settings,
    ctl: &Control,
    shape: &Shape,
    server_pid: u32,
    strict: bool,
) -> Result<SystemResult> {
    let sends_per_s = settings.rate / shape.deliveries_per_send();
    let interval = Duration::from_secs_f64(shape.users as f64 / sends_per_s);
    println!(
        "  paced: {:.0} deliveries/s offered = {sends_per_s:.0} sends/s, one per device every {:.1} ms",
        settings.rate,
        interval.as_secs_f64() * 1000.0
    );
    let paced = load::run_phase(
        ctl,
        "paced",
        Mode::Paced { interval },
        1,
        settings.warmup,
        settings.seconds,
        server_pid,
        strict,
    )
    .await?;
    println!(
        "  max: closed loop, {} unanswered sends per device",
        settings.window
    );
    let max = load::run_phase(
        ctl,
        "max",
        Mode::Closed {
            window: settings.window,
        },
        2,
        settings.warmup,
        settings.seconds,
        server_pid,
        strict,
    )
    .await?;
    Ok(SystemResult {
        paced,
        max,
        baseline_rss_mib: 0.0,
    })
}

fn figures(prefix: &str, r: &SystemResult) -> String {
    let p = &r.paced;
    let m = &r.max;
    let mut s = format!(
        "{prefix}_delivered_per_s={:.0} {prefix}_p50_ms={:.1} {prefix}_p99_ms={:.1} \
         {prefix}_accepted_per_s={:.0} {prefix}_accept_p99_ms={:.1} \
         {prefix}_server_cpu_cores={:.2} {prefix}_generator_cpu_cores={:.2} {prefix}_other_cpu_cores={:.2} \
         {prefix}_server_rss_mib={:.0}",
        p.delivered_per_s,
        p.p50_ms,
        p.p99_ms,
        p.accepted_per_s,
        p.accept_p99_ms,
        p.server_cpu_cores,
        p.generator_cpu_cores,
        p.other_cpu_cores(),
        p.server_rss_mib,
    );
    if p.skipped > 0 {
        s.push_str(&format!(" {prefix}_skipped={}", p.skipped));
    }
    s.push_str(&format!(
        " {prefix}_max_delivered_per_s={:.0} {prefix}_max_p50_ms={:.1} {prefix}_max_p99_ms={:.1} \
         {prefix}_max_accepted_per_s={:.0} {prefix}_max_server_cpu_cores={:.2} {prefix}_max_generator_cpu_cores={:.2} \
         {prefix}_max_other_cpu_cores={:.2}",
        m.delivered_per_s,
        m.p50_ms,
        m.p99_ms,
        m.accepted_per_s,
        m.server_cpu_cores,
        m.generator_cpu_cores,
        m.other_cpu_cores(),
    ));
    if p.undelivered + m.undelivered > 0 {
        s.push_str(&format!(
            " {prefix}_undelivered={}",
            p.undelivered + m.undelivered
        ));
    }
    s
}

fn report(name: &str, r: &SystemResult) {
    for (label, p) in [("paced", &r.paced), ("max", &r.max)] {
        println!(
            "{name} {label}: sent {:.0}/s, accepted {:.0}/s, delivered {:.0}/s, acks sent {:.0}/s; delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
             accepted p50 {:.1} ms, p99 {:.1} ms; server {:.2} cores, generator {:.2} cores, other processes {:.2} cores; server RSS {:.0} MiB{}{}",
            p.sent_per_s,
            p.accepted_per_s,
            p.delivered_per_s,
            p.acks_per_s,
            p.p50_ms,
            p.p99_ms,
            p.max_ms,
            p.accept_p50_ms,
            p.accept_p99_ms,
            p.server_cpu_cores,
            p.generator_cpu_cores,
            p.other_cpu_cores(),
            p.server_rss_mib,
            if p.skipped > 0 {
                format!(
                    "; {} paced sends skipped (device at {} unanswered)",
                    p.skipped,
                    load::MAX_OUTSTANDING
                )
            } else {
                String::new()
            },
            if p.undelivered > 0 {
                format!(
                    "; {} owed deliveries not arrived 90 s after sending stopped",
                    p.undelivered
                )
            } else {
                String::new()
            },
        );
    }
}

fn run() -> Result<String> {
    let settings = Settings::from_env()?;
    let shape = Arc::new(Shape::new(settings.devices, settings.room_share));
    println!(
        "load: {} devices (one per user), {} direct conversations, {} rooms of {}–{} members; \
         {:.0}% of sends to rooms, {:.2} deliveries per send on average",
        shape.users,
        shape.directs.len(),
        shape.rooms.len(),
        shape.rooms.iter().map(Vec::len).min().unwrap_or(0),
        shape.rooms.iter().map(Vec::len).max().unwrap_or(0),
        settings.room_share * 100.0,
        shape.deliveries_per_send()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let o = if settings.outpost {
        let o = outpost_relay::run(&settings, shape.clone(), &rt)?;
        report("outpost", &o);
        Some(o)
    } else {
        println!("outpost: skipped (RELAY_BENCH_OUTPOST=0)");
        None
    };
    let e = if settings.ejabberd {
        let e = ejabberd::run(&settings, shape.clone(), &rt)?;
        report("ejabberd", &e);
        Some(e)
    } else {
        println!("ejabberd: skipped (RELAY_BENCH_EJABBERD=0)");
        None
    };
    let mut line = format!(
        "devices={} directs={} rooms={} room_share={} offered_deliveries_per_s={:.0} seconds={} window={}",
        shape.users,
        shape.directs.len(),
        shape.rooms.len(),
        settings.room_share,
        settings.rate,
        settings.seconds.as_secs(),
        settings.window,
    );
    if let Some(o) = &o {
        line.push(' ');
        line.push_str(&figures("outpost", o));
    }
    if let Some(e) = &e {
        line.push(' ');
        line.push_str(&figures("ejabberd", e));
    }
    Ok(line)
}
