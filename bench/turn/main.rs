//! Calling relay: outpost's TURN server beside coturn, in one run on the same host, each
//! configured with the same relay range (16384–16584 by default), REST secret and realm.
//!
//! - **throughput**: `turnutils_uclient` (40 clients × 20,000 messages of 120 bytes, no
//!   pause) through the server to a loopback `turnutils_peer` that echoes every message;
//!   the server's CPU time over the run (`/proc/PID/stat`) and its peak RSS (`VmHWM`). The
//!   figure that matters is CPU-seconds per million relayed packets, and outpost's as a
//!   ratio of coturn's (DESIGN.md: fewer cycles per packet than coturn, zero loss at the
//!   same offered load).
//! - **capacity**: concurrent UDP allocations with `outpost::calling::client` until the cap
//!   (12,000), a refusal or a timeout (DESIGN.md: ≥ 10,000 in the 200-port range).
//!
//! Each phase runs on a freshly started server. Settings (environment): `TURN_BENCH_SERVERS`
//! (`coturn,outpost`), `TURN_BENCH_TRANSPORTS` (`udp`; `udp,tcp` adds a TCP run; `none`
//! skips the phase), `TURN_BENCH_CLIENTS` (40), `TURN_BENCH_MESSAGES` (20000),
//! `TURN_BENCH_LENGTH` (120), `TURN_BENCH_RELAY_MIN`/`_MAX` (16384/16584),
//! `TURN_BENCH_CAPACITY` (12000; 0 skips the phase), `TURN_BENCH_CONCURRENCY` (64
//! allocations in flight), `TURN_BENCH_SECRET`, `TURN_BENCH_OUTPOST_USER` (see
//! `outpost_turn.rs`). See bench/README.md for the figures printed.

mod capacity;
#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
mod coturn;
mod outpost_turn;
mod server;
mod uclient;
mod udpdrops;

use anyhow::{Context, Result, bail};
use capacity::CapacityResult;
use common::procstat;
use server::{ServerConfig, TurnServer};
use std::path::Path;
use uclient::{Load, Peer, Summary};

fn main() -> std::process::ExitCode {
    common::main_with(run)
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

fn env_list(name: &str, default: &str, allowed: &[&str]) -> Result<Vec<String>> {
    let v = std::env::var(name).unwrap_or_default();
    let v = if v.trim().is_empty() { default } else { &v };
    let items: Vec<String> = v
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for i in &items {
        if !allowed.contains(&i.as_str()) {
            bail!("{name}: {i} is not one of {}", allowed.join(", "));
        }
    }
    if items.is_empty() {
        bail!("{name} lists nothing");
    }
    Ok(items)
}

/// What the environment asks for.
struct Settings {
    servers: Vec<String>,
    transports: Vec<String>,
    load: Load,
    server: ServerConfig,
    capacity: usize,
    concurrency: usize,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let capacity = env("TURN_BENCH_CAPACITY", 12_000usize)?;
        let s = Settings {
            servers: env_list(
                "TURN_BENCH_SERVERS",
                "coturn,outpost",
                &["coturn", "outpost"],
            )?,
            transports: env_list("TURN_BENCH_TRANSPORTS", "udp", &["udp", "tcp", "none"])?
                .into_iter()
                .filter(|t| t != "none")
                .collect(),
            load: Load {
                clients: env("TURN_BENCH_CLIENTS", 40u32)?,
                messages: env("TURN_BENCH_MESSAGES", 20_000u32)?,
                length: env("TURN_BENCH_LENGTH", 120u32)?,
            },
            server: ServerConfig {
                relay_min: env("TURN_BENCH_RELAY_MIN", 16_384u16)?,
                relay_max: env("TURN_BENCH_RELAY_MAX", 16_584u16)?,
                secret: env("TURN_BENCH_SECRET", "bench-turn-secret".to_string())?,
                realm: "outpost.bench".into(),
                quota: (capacity as u64 + 1_000).max(100_000),
            },
            capacity,
            concurrency: env("TURN_BENCH_CONCURRENCY", 64usize)?,
        };
        if s.server.relay_min == 0 || s.server.relay_min > s.server.relay_max {
            bail!("TURN_BENCH_RELAY_MIN must be 1 … TURN_BENCH_RELAY_MAX");
        }
        if s.load.clients == 0 || s.load.messages == 0 || s.load.length < 4 {
            bail!("TURN_BENCH_CLIENTS and _MESSAGES must be positive, _LENGTH at least 4");
        }
        if s.server.secret.contains(['"', '\\']) {
            bail!("TURN_BENCH_SECRET must not hold '\"' or '\\'");
        }
        Ok(s)
    }
}

/// One throughput run's figures.
struct Throughput {
    transport: String,
    summary: Summary,
    cpu_seconds: f64,
    peak_rss_mib: f64,
    machine_cores: f64,
    peer_cpu_seconds: f64,
    drops: udpdrops::Split,
}

impl Throughput {
    fn cpu_per_mpkt(&self) -> f64 {
        let m = self.summary.relayed() as f64 / 1e6;
        if m > 0.0 { self.cpu_seconds / m } else { 0.0 }
    }
}

/// Everything measured for one server.
struct ServerResult {
    name: String,
    throughput: Vec<Throughput>,
    capacity: Option<CapacityResult>,
}

/// How a server is started for each phase.
enum Launcher {
    Coturn,
    Outpost(outpost_turn::Prepared),
}

impl Launcher {
    fn launch(
        &self,
        cfg: &ServerConfig,
        rt: &tokio::runtime::Runtime,
    ) -> Result<Box<dyn TurnServer>> {
        Ok(match self {
            Launcher::Coturn => Box::new(coturn::Coturn::start(cfg, rt)?),
            Launcher::Outpost(p) => Box::new(p.launch(cfg, rt)?),
        })
    }
}

fn ticks_to_seconds(ticks: u64) -> f64 {
    ticks as f64 / procstat::clock_ticks()
}

fn throughput(
    srv: &mut dyn TurnServer,
    transport: &str,
    peer: &Peer,
    settings: &Settings,
    logs: &Path,
) -> Result<Throughput> {
    let load = &settings.load;
    let pid = srv.pid();
    let drops0 = udpdrops::Snapshot::take();
    let cpu0 = procstat::cpu_ticks(pid);
    let peer0 = procstat::cpu_ticks(peer.pid());
    let machine = procstat::MachineMeter::start();
    let creds = srv.credentials().clone();
    let log = logs.join(format!("uclient-{}-{transport}.log", srv.name()));
    let summary = uclient::run(
        srv.addr(),
        transport == "tcp",
        peer.port,
        &creds.username,
        &creds.password,
        load,
        &log,
    )
    .with_context(|| format!("{} over {transport}", srv.name()))?;
    let machine_cores = machine.cores();
    let drops = drops0.split_since(
        &udpdrops::Snapshot::take(),
        &[peer.port, peer.port + 1],
        srv.addr().port(),
        (settings.server.relay_min, settings.server.relay_max),
    );
    let cpu_seconds = ticks_to_seconds(procstat::cpu_ticks(pid).saturating_sub(cpu0));
    let peer_cpu_seconds = ticks_to_seconds(procstat::cpu_ticks(peer.pid()).saturating_sub(peer0));
    let peak_rss_mib = procstat::peak_rss_kib(pid) as f64 / 1024.0;
    if !srv.alive() {
        bail!(
            "{} exited during the {transport} run; its log ends:\n{}",
            srv.name(),
            srv.log_tail()
        );
    }
    Ok(Throughput {
        transport: transport.to_string(),
        summary,
        cpu_seconds,
        peak_rss_mib,
        machine_cores,
        peer_cpu_seconds,
        drops,
    })
}

fn report_throughput(name: &str, t: &Throughput) {
    let s = &t.summary;
    println!(
        "  {name} {}: sent {}, received {}, relayed {} packets; lost {} ({:.3}%), send dropped {}; \
         transmit {:.0} s (uclient wall {:.1} s); rtt {:.3} ms; server CPU {:.2} s = {:.2} s per million packets; \
         peak RSS {:.1} MiB; peer CPU {:.2} s; machine {:.2} cores busy (/proc/stat)",
        t.transport,
        s.sent,
        s.received,
        s.relayed(),
        s.lost,
        s.lost_pct,
        s.send_dropped,
        s.transmit_seconds,
        s.wall_seconds,
        s.rtt_ms,
        t.cpu_seconds,
        t.cpu_per_mpkt(),
        t.peak_rss_mib,
        t.peer_cpu_seconds,
        t.machine_cores,
    );
    let d = &t.drops;
    println!(
        "  {name} {}: UDP receive-buffer overflows {} — echo peer {}, server listening port {}, relay ports {}, \
         other sockets (uclient's) {}",
        t.transport, d.total, d.peer, d.server_listen, d.relay, d.other
    );
}

fn report_capacity(name: &str, c: &CapacityResult) {
    println!(
        "  {name} capacity: {} concurrent allocations held (cap {}) in {:.2} s; stopped: {}; \
         {} failed attempts; server RSS {:.1} → {:.1} MiB ({:.2} KiB per allocation); released {} ({} failed)",
        c.held,
        c.cap,
        c.seconds,
        c.stop_reason,
        c.failures,
        c.rss_before_kib as f64 / 1024.0,
        c.rss_held_kib as f64 / 1024.0,
        c.kib_per_allocation(),
        c.released,
        c.release_failures,
    );
}

fn measure_server(
    name: &str,
    settings: &Settings,
    peer: &Peer,
    rt: &tokio::runtime::Runtime,
    logs: &Path,
) -> Result<ServerResult> {
    println!("== {name}");
    let launcher = match name {
        "coturn" => Launcher::Coturn,
        _ => Launcher::Outpost(outpost_turn::Prepared::new(&settings.server)?),
    };
    let mut result = ServerResult {
        name: name.to_string(),
        throughput: Vec::new(),
        capacity: None,
    };
    for transport in &settings.transports {
        let mut srv = launcher.launch(&settings.server, rt)?;
        println!(
            "  {name} {transport}: turnutils_uclient -m {} -n {} -l {} through {} (pid {})",
            settings.load.clients,
            settings.load.messages,
            settings.load.length,
            srv.addr(),
            srv.pid()
        );
        let t = throughput(srv.as_mut(), transport, peer, settings, logs);
        let stopped = srv.stop();
        let t = t?;
        stopped.with_context(|| format!("{name} did not stop cleanly"))?;
        report_throughput(name, &t);
        result.throughput.push(t);
    }
    if settings.capacity > 0 {
        let mut srv = launcher.launch(&settings.server, rt)?;
        println!(
            "  {name} capacity: up to {} UDP allocations, {} at a time",
            settings.capacity, settings.concurrency
        );
        let c = capacity::measure(
            rt,
            srv.addr(),
            srv.pid(),
            srv.credentials(),
            settings.capacity,
            settings.concurrency,
        );
        let alive = srv.alive();
        let tail = srv.log_tail();
        let stopped = srv.stop();
        let c = c?;
        if !alive {
            bail!("{name} exited during the capacity run; its log ends:\n{tail}");
        }
        stopped.with_context(|| format!("{name} did not stop cleanly"))?;
        report_capacity(name, &c);
        result.capacity = Some(c);
    }
    Ok(result)
}

fn figures(r: &ServerResult) -> String {
    let n = &r.name;
    let mut parts = Vec::new();
    for t in &r.throughput {
        let p = format!("{n}_{}", t.transport);
        let s = &t.summary;
        parts.push(format!(
            "{p}_relayed={} {p}_loss_pct={:.3} {p}_send_dropped={} {p}_transmit_seconds={:.0} \
             {p}_cpu_seconds={:.2} {p}_cpu_s_per_mpkt={:.3} {p}_peak_rss_mib={:.1} {p}_rtt_ms={:.3} \
             {p}_rcvbuf_drops={} {p}_peer_drops={} {p}_server_drops={}",
            s.relayed(),
            s.lost_pct,
            s.send_dropped,
            s.transmit_seconds,
            t.cpu_seconds,
            t.cpu_per_mpkt(),
            t.peak_rss_mib,
            s.rtt_ms,
            t.drops.total,
            t.drops.peer,
            t.drops.server_listen + t.drops.relay,
        ));
    }
    if let Some(c) = &r.capacity {
        parts.push(format!(
            "{n}_capacity={} {n}_capacity_stop={} {n}_capacity_seconds={:.2} {n}_capacity_rss_mib={:.1} \
             {n}_capacity_kib_per_allocation={:.2}",
            c.held,
            c.stop_figure(),
            c.seconds,
            c.rss_held_kib as f64 / 1024.0,
            c.kib_per_allocation(),
        ));
    }
    parts.join(" ")
}

fn run() -> Result<String> {
    let settings = Settings::from_env()?;
    let nofile = capacity::raise_nofile()?;
    if settings.capacity + 1_000 > nofile as usize {
        println!(
            "warning: the open-files limit is {nofile}; {} allocations need one socket each",
            settings.capacity
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let logs = tempfile::Builder::new()
        .prefix("outpost-bench-turn-logs-")
        .tempdir()
        .context("cannot create a folder for the logs")?;
    let peer_port = server::free_port(true)?;
    let peer = Peer::start(peer_port, &logs.path().join("peer.log"))?;
    println!(
        "relay range {}–{} ({} ports); peer turnutils_peer on 127.0.0.1:{peer_port}; open-files limit {nofile}; \
         load {} clients × {} messages of {} bytes over {}",
        settings.server.relay_min,
        settings.server.relay_max,
        u32::from(settings.server.relay_max - settings.server.relay_min) + 1,
        settings.load.clients,
        settings.load.messages,
        settings.load.length,
        if settings.transports.is_empty() {
            "nothing (no throughput run)".to_string()
        } else {
            settings.transports.join(", ")
        }
    );
    let mut results = Vec::new();
    for name in &settings.servers {
        results.push(measure_server(name, &settings, &peer, &rt, logs.path())?);
    }
    drop(peer);

    let mut line = format!(
        "servers={} relay_ports={} uclient_clients={} uclient_messages={} uclient_length={} capacity_cap={}",
        settings.servers.join(","),
        u32::from(settings.server.relay_max - settings.server.relay_min) + 1,
        settings.load.clients,
        settings.load.messages,
        settings.load.length,
        settings.capacity,
    );
    for r in &results {
        line.push(' ');
        line.push_str(&figures(r));
    }
    let find = |name: &str| results.iter().find(|r| r.name == name);
    if let (Some(o), Some(c)) = (find("outpost"), find("coturn")) {
        for t in &o.throughput {
            if let Some(ct) = c.throughput.iter().find(|x| x.transport == t.transport)
                && ct.cpu_per_mpkt() > 0.0
            {
                let ratio = t.cpu_per_mpkt() / ct.cpu_per_mpkt();
                println!(
                    "outpost/coturn CPU per relayed packet over {}: {ratio:.3}",
                    t.transport
                );
                line.push_str(&format!(
                    " {}_cpu_ratio_outpost_coturn={ratio:.3}",
                    t.transport
                ));
            }
        }
    }
    Ok(line)
}
