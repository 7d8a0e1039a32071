//! What the benchmark needs of a TURN server under test, whichever it is: the settings both
//! are given (relay range, REST secret, realm), the running process (pid, address,
//! credentials, stop), free loopback ports, and waiting until the server answers a STUN
//! Binding request.

use anyhow::{Context, Result, bail};
use outpost::calling::client::{Retransmit, Transport, TurnClient};
use outpost::calling::credentials::{self, Secret};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// What every server is configured with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub relay_min: u16,
    pub relay_max: u16,
    /// The TURN REST shared secret.
    pub secret: String,
    pub realm: String,
    /// Allocations one user and all users may hold: set high enough for the capacity run.
    pub quota: u64,
}

/// A username and password for the TURN server.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// TURN REST credentials for `user_id` valid for a day: username `"{now+86400}:{user_id}"`,
/// password base64(HMAC-SHA1(secret, username)).
pub fn rest_credentials(secret: &str, user_id: &str) -> Credentials {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let username = format!("{}:{user_id}", now + 86_400);
    let password = credentials::password(&Secret(secret.as_bytes().to_vec()), &username);
    Credentials { username, password }
}

/// A running TURN server.
pub trait TurnServer {
    fn name(&self) -> &'static str;
    fn pid(&self) -> u32;
    /// Where it listens for TURN over UDP and TCP.
    fn addr(&self) -> SocketAddr;
    fn credentials(&self) -> &Credentials;
    /// Whether the process is still running.
    fn alive(&mut self) -> bool;
    /// The end of its log, to explain a failure.
    fn log_tail(&self) -> String;
    fn stop(self: Box<Self>) -> Result<()>;
}

/// A loopback port free for both UDP and TCP (and, with `pair`, the next one for UDP too).
pub fn free_port(pair: bool) -> Result<u16> {
    for _ in 0..200 {
        let tcp = std::net::TcpListener::bind((LOCALHOST, 0)).context("cannot bind TCP")?;
        let port = tcp.local_addr()?.port();
        if port == u16::MAX {
            continue;
        }
        let udp = std::net::UdpSocket::bind((LOCALHOST, port));
        let next = if pair {
            std::net::UdpSocket::bind((LOCALHOST, port + 1)).is_ok()
        } else {
            true
        };
        if udp.is_ok() && next {
            return Ok(port);
        }
    }
    bail!("no loopback port is free for both UDP and TCP")
}

/// Waits until `addr` answers a STUN Binding request over UDP, or `limit` passes.
pub async fn wait_answering(addr: SocketAddr, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let mut c = TurnClient::connect(Transport::udp_from(LOCALHOST), addr, "probe", "probe")
            .await
            .context("cannot open a UDP socket")?;
        c.set_retransmit(Retransmit {
            rto: Duration::from_millis(50),
            transmissions: 3,
        });
        let err = match c.binding().await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() > deadline {
            bail!(
                "{addr} did not answer a STUN Binding request within {} s: {err}",
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which ends at the last ')'.
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .is_some_and(|state| state != "Z" && state != "X")
}

/// Sends SIGTERM to `child` and waits up to `limit` for it to exit (then kills it).
pub fn terminate(child: &mut std::process::Child, limit: Duration) -> Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    // SAFETY: kill(2) with the pid of a child we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let asked = Instant::now();
    while asked.elapsed() < limit {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    bail!(
        "did not stop within {} s of SIGTERM (killed)",
        limit.as_secs()
    )
}
