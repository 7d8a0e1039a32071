//! Idle authenticated device streams: how many the server holds and what each costs.
//!
//! The data folder is seeded through the library before the server starts (1,000
//! users × 50 devices, the most an account may have), the open-files limit is raised
//! (the server inherits it), and then 50,000 WebSocket streams are opened over TLS
//! from several loopback source addresses (127.0.0.2, .3, … — one address has only
//! ~28,000 ephemeral ports), each authenticated with its own device token until it
//! has received `ready`. Once all are up and quiet, the server's resident memory is
//! read and the baseline (before the first connection) subtracted. A sample of the
//! streams is pinged to show they are alive.
//!
//! `IDLE_BENCH_STAGE=upgraded` stops each stream after its WebSocket upgrade, without
//! authenticating, to see what the stream costs before its session (the server closes
//! such streams after 15 s, so use it with fewer streams, e.g. 10,000).
//!
//! DESIGN.md's target: ≥ 50,000 idle authenticated connections at ≤ 20 KiB each.
//! If the server stops accepting short of the target, the benchmark says how far it
//! got and why, within bounded time; it fails only on misbehaviour (a refused
//! authentication, a stream that dies, an unclean stop).

#[allow(dead_code)]
mod common;

use anyhow::{Context, Result, anyhow, bail};
use common::seed::{self, Plan};
use common::stream::{self, Ws};
use common::{Server, procstat, temp_data_dir};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use outpost::relay::frame::{ClientFrame, ServerFrame};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const DEVICES_PER_USER: usize = 50;
/// Streams being opened at once.
const PARALLEL: usize = 128;
/// One stream's connect + TLS + upgrade + authenticate.
const ONE_LIMIT: Duration = Duration::from_secs(30);
/// All of them.
const ALL_LIMIT: Duration = Duration::from_secs(600);
/// Stop opening more after this many failures in a row (the server is full).
const GIVE_UP_AFTER: usize = 200;
/// Every n-th stream is pinged at the end.
const PING_EVERY: usize = 500;

fn main() -> std::process::ExitCode {
    common::main_with(run)
}

fn env_usize(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("{name}={v} is not a number")),
        _ => Ok(default),
    }
}

/// Raise the open-files limit to `want` (as root, the hard limit too); returns the
/// soft limit now in force and, when it could not be raised as asked, why.
fn raise_nofile(want: u64) -> Result<(u64, Option<String>)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        if lim.rlim_cur >= want {
            return Ok((lim.rlim_cur, None));
        }
        let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20);
        let raised = libc::rlimit {
            rlim_cur: want.min(nr_open),
            rlim_max: want.min(nr_open).max(lim.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return Ok((raised.rlim_cur, None));
        }
        let why = format!(
            "setrlimit(RLIMIT_NOFILE, {}) failed: {} (raising the hard limit {} needs root with CAP_SYS_RESOURCE)",
            raised.rlim_cur,
            std::io::Error::last_os_error(),
            lim.rlim_max
        );
        // As far as the hard limit allows.
        let soft = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &soft) == 0 {
            return Ok((soft.rlim_cur, Some(why)));
        }
        Ok((lim.rlim_cur, Some(why)))
    }
}

/// How far each stream is taken before it idles.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Upgraded to a WebSocket, not authenticated.
    Upgraded,
    /// Authenticated: `ready` received (the default).
    Ready,
}

impl Stage {
    fn from_env() -> Result<Stage> {
        match std::env::var("IDLE_BENCH_STAGE").as_deref().map(str::trim) {
            Err(_) | Ok("") | Ok("ready") => Ok(Stage::Ready),
            Ok("upgraded") => Ok(Stage::Upgraded),
            Ok(other) => bail!("IDLE_BENCH_STAGE={other} is neither ready nor upgraded"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Stage::Upgraded => "upgraded",
            Stage::Ready => "ready",
        }
    }
}

fn run() -> Result<String> {
    let target = env_usize("IDLE_BENCH_CONNECTIONS", 50_000)?;
    let stage = Stage::from_env()?;
    let sources = env_usize("IDLE_BENCH_SOURCES", 10)?.clamp(1, 250);
    if target == 0 {
        bail!("IDLE_BENCH_CONNECTIONS must be positive");
    }
    let (nofile, not_raised) = raise_nofile(target as u64 * 2 + 10_000)?;
    println!("open-files limit: {nofile} (the server inherits it)");
    if let Some(why) = &not_raised {
        println!("  {why}");
    }
    if (nofile as usize) < target + 1000 {
        println!(
            "  warning: with {nofile} open files per process, neither this client nor the server can hold {target} connections"
        );
    }
    let users = target.div_ceil(DEVICES_PER_USER);
    let dir = temp_data_dir("idle")?;
    println!(
        "seeding {users} users × {DEVICES_PER_USER} devices in {}",
        dir.path().display()
    );
    seed::bootstrap(dir.path())?;
    let seeded = seed::seed(
        dir.path(),
        &Plan {
            users,
            devices_per_user: DEVICES_PER_USER,
            ..Default::default()
        },
    )?;
    let tokens: Vec<String> = seeded
        .users
        .iter()
        .flat_map(|u| u.devices.iter().map(|d| d.token.clone()))
        .take(target)
        .collect();
    drop(seeded);

    let mut server = Server::start(dir.path())?;
    let addr = server.wait_addr()?;
    let pid = server.pid();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = rt.block_on(measure(&server, addr, pid, &tokens, sources, nofile, stage));
    drop(rt);
    match outcome {
        Ok(line) => {
            let took = server.stop()?;
            println!(
                "server stopped cleanly in {:.0} ms",
                took.as_secs_f64() * 1000.0
            );
            Ok(line)
        }
        Err(e) => {
            let tail = server.stderr_tail();
            drop(server);
            Err(e.context(format!("the server's last lines on stderr:\n{tail}")))
        }
    }
}

async fn measure(
    server: &Server,
    addr: std::net::SocketAddr,
    pid: u32,
    tokens: &[String],
    sources: usize,
    nofile: u64,
    stage: Stage,
) -> Result<String> {
    let tls = stream::tls_connector(&server.ca_file())?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline_kib = procstat::tree_rss_kib(pid);
    let client_baseline_kib =
        procstat::tree_rss_kib(std::process::id()).saturating_sub(procstat::tree_rss_kib(pid));
    println!(
        "server (pid {pid}) on {addr}: RSS {:.1} MiB before any stream; opening {} streams from {sources} source addresses",
        baseline_kib as f64 / 1024.0,
        tokens.len()
    );
    let source = |i: usize| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % sources) as u8));
    let started = Instant::now();
    let mut conns: Vec<Ws> = Vec::with_capacity(tokens.len());
    let mut failures = 0usize;
    let mut in_a_row = 0usize;
    let mut first_errors: Vec<String> = Vec::new();
    let mut stopped_because: Option<String> = None;
    let mut last_report = Instant::now();
    {
        let mut pending = FuturesUnordered::new();
        let mut next = 0;
        while next < tokens.len() || !pending.is_empty() {
            let may_open = stopped_because.is_none() && started.elapsed() < ALL_LIMIT;
            while may_open && next < tokens.len() && pending.len() < PARALLEL {
                let i = next;
                let token = &tokens[i];
                let tls = tls.clone();
                let local = source(i);
                pending.push(async move {
                    let r = tokio::time::timeout(ONE_LIMIT, async {
                        let mut ws =
                            stream::open(addr, Some(local), &tls, stream::ws_config(2048)).await?;
                        if stage == Stage::Ready {
                            stream::authenticate(&mut ws, token, ONE_LIMIT).await?;
                        }
                        Ok::<Ws, anyhow::Error>(ws)
                    })
                    .await
                    .map_err(|_| anyhow!("no ready within {} s", ONE_LIMIT.as_secs()))
                    .and_then(|r| r);
                    (i, r)
                });
                next += 1;
            }
            if !may_open && stopped_because.is_none() {
                stopped_because = Some(format!(
                    "the {} s limit for opening streams passed",
                    ALL_LIMIT.as_secs()
                ));
            }
            let Some((i, r)) = pending.next().await else {
                break;
            };
            match r {
                Ok(ws) => {
                    conns.push(ws);
                    in_a_row = 0;
                }
                Err(e) => {
                    let text = format!("stream {i} from {}: {e:#}", source(i));
                    // A refusal on the stream (an error frame) is misbehaviour.
                    if text.contains("was not ready") {
                        bail!("{text}");
                    }
                    failures += 1;
                    in_a_row += 1;
                    if text.contains("os error 24") && stopped_because.is_none() {
                        stopped_because = Some(format!(
                            "this process ran out of file descriptors (RLIMIT_NOFILE {nofile}); the server has the same limit"
                        ));
                    }
                    if first_errors.len() < 5 {
                        first_errors.push(text);
                    }
                    if in_a_row >= GIVE_UP_AFTER && stopped_because.is_none() {
                        stopped_because =
                            Some(format!("{GIVE_UP_AFTER} streams in a row failed to open"));
                    }
                }
            }
            if last_report.elapsed() > Duration::from_secs(5) {
                println!(
                    "  {:>6} streams ready, {failures} failed, {:.0} s; server RSS {:.0} MiB",
                    conns.len(),
                    started.elapsed().as_secs_f64(),
                    procstat::tree_rss_kib(pid) as f64 / 1024.0
                );
                last_report = Instant::now();
            }
        }
    }
    let open_seconds = started.elapsed().as_secs_f64();
    let n = conns.len();
    println!(
        "{n} streams {} in {open_seconds:.1} s ({:.0}/s), {failures} failed",
        stage.name(),
        n as f64 / open_seconds.max(1e-9)
    );
    for e in &first_errors {
        println!("  failure: {e}");
    }
    if let Some(why) = &stopped_because {
        println!("  stopped opening streams: {why}");
    }
    if n == 0 {
        bail!("no stream could be opened");
    }

    // Let the server settle (the connect-time writes, allocator caches).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_kib = procstat::tree_rss_kib(pid);
    let peak_kib = procstat::peak_rss_kib(pid);
    let client_kib = procstat::tree_rss_kib(std::process::id())
        .saturating_sub(rss_kib)
        .saturating_sub(client_baseline_kib);
    let per_conn_kib = rss_kib.saturating_sub(baseline_kib) as f64 / n as f64;
    println!(
        "server RSS {:.1} MiB (peak {:.1} MiB), baseline {:.1} MiB: {per_conn_kib:.1} KiB per stream (target ≤ 20 KiB); \
         this client holds {:.1} KiB per stream",
        rss_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0,
        baseline_kib as f64 / 1024.0,
        client_kib as f64 / n as f64
    );

    // Are they alive? Ping a sample.
    let mut pinged = 0usize;
    let mut pongs = 0usize;
    for (i, ws) in conns.iter_mut().enumerate() {
        if i % PING_EVERY != 0 {
            continue;
        }
        pinged += 1;
        let nonce = format!("p{i}");
        let ok = tokio::time::timeout(Duration::from_secs(10), async {
            // An authenticated stream answers a ping frame; one that is not, a
            // WebSocket ping.
            let ping = match stage {
                Stage::Ready => Message::text(stream::encode(&ClientFrame::Ping {
                    nonce: Some(nonce.clone()),
                })),
                Stage::Upgraded => Message::Ping(nonce.clone().into_bytes().into()),
            };
            ws.send(ping).await?;
            while let Some(m) = ws.next().await {
                match m? {
                    Message::Text(t) => {
                        if let Ok(ServerFrame::Pong { nonce: got }) = serde_json::from_str(&t) {
                            return Ok::<bool, anyhow::Error>(got.as_deref() == Some(&nonce));
                        }
                    }
                    Message::Pong(p) if stage == Stage::Upgraded => {
                        return Ok(p == nonce.as_bytes());
                    }
                    _ => {}
                }
            }
            Ok(false)
        })
        .await;
        match ok {
            Ok(Ok(true)) => pongs += 1,
            Ok(Ok(false)) => bail!("stream {i} did not answer its ping with the right pong"),
            Ok(Err(e)) => bail!("stream {i} failed when pinged: {e:#}"),
            Err(_) => bail!("stream {i} did not answer a ping within 10 s"),
        }
    }
    println!("{pongs} of {pinged} sampled streams answered a ping");

    // Close every stream before stopping the server.
    let t = Instant::now();
    drop(conns);
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("closed the streams in {:.1} s", t.elapsed().as_secs_f64());

    let mut line = format!(
        "connections={n} target_connections={} server_rss_mib={:.1} baseline_rss_mib={:.1} \
         rss_per_connection_kib={per_conn_kib:.1} server_peak_rss_mib={:.1} client_kib_per_connection={:.1} \
         open_seconds={open_seconds:.1} failed={failures} pings_answered={pongs} nofile_limit={nofile}",
        tokens.len(),
        rss_kib as f64 / 1024.0,
        baseline_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0,
        client_kib as f64 / n as f64,
    );
    if n < tokens.len() {
        line.push_str(" reached_target=false");
    }
    if stage != Stage::Ready {
        line.push_str(&format!(" stage={}", stage.name()));
    }
    Ok(line)
}
