//! Concurrent allocations: how many a server holds at once in the relay range. The
//! benchmark opens TURN clients (`outpost::calling::client`, UDP, one local socket each on
//! 127.0.0.1), `CONCURRENCY` allocations in flight, until the cap, the first refusal, or
//! the first allocation that gets no answer after every retransmission (15.5 s). coturn
//! binds one relay port per allocation, so in a 201-port range it stops near 200 with
//! 508 (Insufficient Capacity / "Cannot create socket"); outpost shares relay ports
//! between allocations. With every allocation held, the server's RSS is read; then every
//! allocation is released (Refresh, lifetime 0).

use crate::server::{Credentials, LOCALHOST};
use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use futures_util::stream;
use outpost::calling::client::{AllocateOptions, Transport, TurnClient, TurnError};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How the run ended and what it held.
#[derive(Debug, Clone, Default)]
pub struct CapacityResult {
    pub held: usize,
    pub cap: usize,
    /// The first failure's STUN code, if it was a refusal.
    pub code: Option<u16>,
    /// The first failure (or "reached the cap").
    pub stop_reason: String,
    pub failures: usize,
    pub seconds: f64,
    pub rss_before_kib: u64,
    pub rss_held_kib: u64,
    pub released: usize,
    pub release_failures: usize,
}

impl CapacityResult {
    /// The server's memory per held allocation, KiB.
    pub fn kib_per_allocation(&self) -> f64 {
        if self.held == 0 {
            return 0.0;
        }
        self.rss_held_kib.saturating_sub(self.rss_before_kib) as f64 / self.held as f64
    }

    /// `code` as a figure: the STUN code, `timeout`, `error`, or `none` (the cap was reached).
    pub fn stop_figure(&self) -> String {
        match (self.code, self.failures) {
            (Some(c), _) => c.to_string(),
            (None, 0) => "none".into(),
            (None, _) if self.stop_reason.contains("no response") => "timeout".into(),
            _ => "error".into(),
        }
    }
}

/// Raises the open-files soft limit to the hard limit; returns the limit in force.
pub fn raise_nofile() -> Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                bail!(
                    "setrlimit(RLIMIT_NOFILE, {}): {}",
                    lim.rlim_max,
                    std::io::Error::last_os_error()
                );
            }
            lim = raised;
        }
    }
    Ok(lim.rlim_cur)
}

async fn open_one(server: SocketAddr, creds: &Credentials) -> Result<TurnClient, TurnError> {
    let mut c = TurnClient::connect(
        Transport::udp_from(LOCALHOST),
        server,
        creds.username.clone(),
        creds.password.clone(),
    )
    .await?;
    c.allocate(&AllocateOptions::default()).await?;
    Ok(c)
}

/// Opens up to `cap` allocations, `concurrency` at a time, on `server` (pid `pid`).
pub async fn run(
    server: SocketAddr,
    pid: u32,
    creds: &Credentials,
    cap: usize,
    concurrency: usize,
) -> Result<CapacityResult> {
    let mut r = CapacityResult {
        cap,
        rss_before_kib: crate::common::procstat::tree_rss_kib(pid),
        ..CapacityResult::default()
    };
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let mut clients: Vec<TurnClient> = Vec::with_capacity(cap.min(100_000));
    let mut attempts = stream::iter(0..cap)
        .map(|_| {
            let stop = &stop;
            async move {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                Some(open_one(server, creds).await)
            }
        })
        .buffer_unordered(concurrency.max(1));
    let mut next_report = 1000;
    while let Some(outcome) = attempts.next().await {
        match outcome {
            None => {}
            Some(Ok(c)) => {
                clients.push(c);
                if clients.len() >= next_report {
                    println!(
                        "    {} allocations held after {:.1} s",
                        clients.len(),
                        started.elapsed().as_secs_f64()
                    );
                    next_report += 1000;
                }
            }
            Some(Err(e)) => {
                r.failures += 1;
                if r.failures == 1 {
                    r.code = e.code();
                    r.stop_reason = e.to_string();
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
    }
    drop(attempts);
    r.seconds = started.elapsed().as_secs_f64();
    r.held = clients.len();
    if r.failures == 0 {
        r.stop_reason = format!("reached the cap of {cap}");
    }
    // Let the server settle, then read its memory with everything held.
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.rss_held_kib = crate::common::procstat::tree_rss_kib(pid);

    let outcomes: Vec<Result<(), TurnError>> = stream::iter(clients.iter_mut())
        .map(|c| c.release())
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    r.released = outcomes.iter().filter(|o| o.is_ok()).count();
    r.release_failures = outcomes.len() - r.released;
    if let Some(Err(e)) = outcomes.iter().find(|o| o.is_err()) {
        println!("    first release failure: {e}");
    }
    drop(clients);
    Ok(r)
}

/// Runs [`run`] on `rt`, with context for errors.
pub fn measure(
    rt: &tokio::runtime::Runtime,
    server: SocketAddr,
    pid: u32,
    creds: &Credentials,
    cap: usize,
    concurrency: usize,
) -> Result<CapacityResult> {
    rt.block_on(run(server, pid, creds, cap, concurrency))
        .context("the capacity run failed")
}
