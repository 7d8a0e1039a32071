//! outpost's TURN server under test: `outpost serve --data-dir DIR --config FILE` (the
//! binary cargo built for the bench profile), where FILE holds the `[calling]` section
//! with the benchmark's relay range, REST secret and realm, loopback peers allowed, no
//! bandwidth cap, and quotas above the capacity run's cap. The data folder is prepared once
//! per benchmark run ([`Prepared`]: first start, one active user); each phase then starts
//! a fresh server on it.
//!
//! The server is ready when it has said READY=1 and its TURN port answers a STUN Binding
//! request over UDP.

use crate::common::{Server, seed, temp_data_dir};
use crate::server::{self, Credentials, LOCALHOST, ServerConfig, TurnServer};
use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A data folder ready for the TURN server, and who allocates.
pub struct Prepared {
    data_dir: tempfile::TempDir,
    config_dir: tempfile::TempDir,
    user_id: String,
    secret: String,
}

/// ─── LEAD: wire this to the outpost server part ───────────────────────────────────────
///
/// The user id outpost's TURN server accepts in a REST username (`expiry:user-id`, an
/// existing active user) and the shared secret that signs the password.
///
/// For now: `TURN_BENCH_OUTPOST_USER` if set; otherwise the data folder is started once
/// (which creates the owner and the first network) and one active, registered user is
/// written into the first network with `common::seed`, and that user's id is used. The
/// secret is the benchmark's, which `config()` writes as `[calling] secret`. If outpost
/// needs more before it relays for a user (a security group whose calling policy allows
/// calls, credentials issued through the client API), do it here.
fn outpost_user_and_secret(data_dir: &Path, cfg: &ServerConfig) -> Result<(String, String)> {
    if let Ok(id) = std::env::var("TURN_BENCH_OUTPOST_USER")
        && !id.trim().is_empty()
    {
        return Ok((id.trim().to_string(), cfg.secret.clone()));
    }
    seed::bootstrap(data_dir).context("cannot start outpost once on a fresh data folder")?;
    let seeded = seed::seed(
        data_dir,
        &seed::Plan {
            users: 1,
            devices_per_user: 1,
            ..seed::Plan::default()
        },
    )?;
    let user = seeded
        .users
        .first()
        .context("seeding made no user")?
        .id
        .clone();
    Ok((user, cfg.secret.clone()))
}

/// The configuration file: the `[calling]` keys (`OUTPOST_CALLING_*` in the environment).
fn config(cfg: &ServerConfig, secret: &str, port: u16, tls_port: u16) -> String {
    format!(
        r#"# Written by bench/turn for one run.
[calling]
enabled = true
listen = ["127.0.0.1:{port}"]
tls_listen = ["127.0.0.1:{tls_port}"]
relay_ip = "127.0.0.1"
relay_port_min = {min}
relay_port_max = {max}
realm = "{realm}"
secret = "{secret}"
allow_loopback_peers = true
max_bandwidth_bytes_per_sec = 0
# coturn answers every unauthenticated request; so does outpost here, so the capacity
# run (64 allocations at a time from 127.0.0.1) measures capacity, not the rate limit.
unauthenticated_per_second = 1000000
user_quota = {quota}
total_quota = {quota}
"#,
        min = cfg.relay_min,
        max = cfg.relay_max,
        realm = cfg.realm,
        quota = cfg.quota,
    )
}

impl Prepared {
    pub fn new(cfg: &ServerConfig) -> Result<Prepared> {
        let data_dir = temp_data_dir("turn")?;
        let config_dir = tempfile::Builder::new()
            .prefix("outpost-bench-turn-config-")
            .tempdir()
            .context("cannot create a temporary folder")?;
        let (user_id, secret) = outpost_user_and_secret(data_dir.path(), cfg)?;
        Ok(Prepared {
            data_dir,
            config_dir,
            user_id,
            secret,
        })
    }

    /// Starts a server on the prepared folder with a fresh configuration file.
    pub fn launch(&self, cfg: &ServerConfig, rt: &tokio::runtime::Runtime) -> Result<OutpostTurn> {
        let port = server::free_port(false)?;
        let tls_port = server::free_port(false)?;
        let path: PathBuf = self.config_dir.path().join("config.toml");
        std::fs::write(&path, config(cfg, &self.secret, port, tls_port))
            .with_context(|| format!("cannot write {}", path.display()))?;
        let server = Server::start_with(self.data_dir.path(), Some(&path)).context(
            "outpost did not start with the [calling] configuration (has the TURN server landed?)",
        )?;
        let addr = SocketAddr::new(LOCALHOST, port);
        if let Err(e) = rt.block_on(server::wait_answering(addr, Duration::from_secs(10))) {
            bail!(
                "outpost's TURN port: {e:#}; its last lines on stderr:\n{}",
                server.stderr_tail()
            );
        }
        Ok(OutpostTurn {
            server: Some(server),
            addr,
            credentials: server::rest_credentials(&self.secret, &self.user_id),
        })
    }
}

pub struct OutpostTurn {
    server: Option<Server>,
    addr: SocketAddr,
    credentials: Credentials,
}

impl TurnServer for OutpostTurn {
    fn name(&self) -> &'static str {
        "outpost"
    }

    fn pid(&self) -> u32 {
        self.server.as_ref().map(Server::pid).unwrap_or(0)
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    fn alive(&mut self) -> bool {
        server::running(self.pid())
    }

    fn log_tail(&self) -> String {
        self.server
            .as_ref()
            .map(Server::stderr_tail)
            .unwrap_or_default()
    }

    fn stop(mut self: Box<Self>) -> Result<()> {
        if let Some(s) = self.server.take() {
            s.stop()?;
        }
        Ok(())
    }
}
