//! coturn (`turnserver`, Debian's `coturn` 4.6.1) as the reference server: a child of the
//! benchmark on a free loopback port, with the benchmark's relay range, REST secret
//! (`--use-auth-secret`) and realm, loopback peers allowed, no TLS/DTLS listeners, no CLI,
//! and its pid file, database and log in a temporary folder (nothing under /var is used).
//! Its user and total quotas are left at coturn's default, unlimited.

use crate::server::{self, Credentials, LOCALHOST, ServerConfig, TurnServer};
use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The user id in coturn's REST usernames (coturn does not check it).
const USER_ID: &str = "bench";

pub struct Coturn {
    child: Child,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    credentials: Credentials,
}

impl Coturn {
    pub fn start(cfg: &ServerConfig, rt: &tokio::runtime::Runtime) -> Result<Coturn> {
        let dir = tempfile::Builder::new()
            .prefix("outpost-bench-coturn-")
            .tempdir()
            .context("cannot create a temporary folder")?;
        let port = server::free_port(false)?;
        let log = std::fs::File::create(dir.path().join("turnserver.log"))
            .context("cannot create coturn's log file")?;
        let child = Command::new("turnserver")
            .args(["-n", "--no-cli", "--log-file", "stdout", "--simple-log"])
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
            .args(["--listening-port", &port.to_string()])
            .args(["--min-port", &cfg.relay_min.to_string()])
            .args(["--max-port", &cfg.relay_max.to_string()])
            .args(["--use-auth-secret", "--static-auth-secret", &cfg.secret])
            .args(["--realm", &cfg.realm])
            .args(["--allow-loopback-peers", "--no-tls", "--no-dtls"])
            .arg("--pidfile")
            .arg(dir.path().join("turnserver.pid"))
            .arg("--db")
            .arg(dir.path().join("turndb"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context(
                "cannot run turnserver: install coturn (scripts/test-deps does), or set \
                 TURN_BENCH_SERVERS=outpost",
            )?;
        let mut c = Coturn {
            child,
            dir,
            addr: SocketAddr::new(LOCALHOST, port),
            credentials: server::rest_credentials(&cfg.secret, USER_ID),
        };
        if let Err(e) = rt.block_on(server::wait_answering(c.addr, Duration::from_secs(10))) {
            bail!(
                "coturn did not start: {e:#}; its log ends:\n{}",
                c.log_tail()
            );
        }
        if !c.alive() {
            bail!("coturn exited at start; its log ends:\n{}", c.log_tail());
        }
        Ok(c)
    }
}

impl TurnServer for Coturn {
    fn name(&self) -> &'static str {
        "coturn"
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("turnserver.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn stop(mut self: Box<Self>) -> Result<()> {
        server::terminate(&mut self.child, Duration::from_secs(10))
            .with_context(|| format!("coturn {}", self.log_tail()))
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
