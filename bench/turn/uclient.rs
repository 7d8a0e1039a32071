//! The offered load: coturn's `turnutils_uclient` sending through a TURN server to a
//! loopback echo peer (`turnutils_peer`), and reading its summary.
//!
//! `turnutils_uclient -m M -n N -l L -z 0 -c -X -e 127.0.0.1 -r PEERPORT -u USER -w PASS
//! -p PORT [-t] 127.0.0.1` runs M clients, each allocating (IPv4, no RTCP allocation),
//! permitting and channel-binding the peer, then sending N messages of L bytes with no
//! pause between them; the peer echoes each back through the relay. The summary lines it
//! ends with (each prefixed by the run's seconds and ": : ") are:
//!
//! ```text
//! 6: : start_mclient: tot_send_msgs=80000, tot_recv_msgs=80000
//! 6: : start_mclient: tot_send_bytes ~ 9600000, tot_recv_bytes ~ 9600000
//! 6: : Total transmit time is 6
//! 6: : Total lost packets 0 (0.000000%), total send dropped 0 (0.000000%)
//! 6: : Average round trip delay 0.247350 ms; min = 0 ms, max = 8 ms
//! 6: : Average jitter 0.078988 ms; min = 0 ms, max = 12 ms
//! ```
//!
//! Every message sent is relayed once to the peer and every echo once back, so the server
//! relayed `tot_send_msgs + tot_recv_msgs` packets (less any lost before the server).

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What uclient is asked to do.
#[derive(Debug, Clone)]
pub struct Load {
    pub clients: u32,
    pub messages: u32,
    pub length: u32,
}

/// The figures of one uclient run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub lost_pct: f64,
    pub send_dropped: u64,
    pub transmit_seconds: f64,
    pub rtt_ms: f64,
    /// Wall time of the whole uclient run (allocations and all).
    pub wall_seconds: f64,
}

impl Summary {
    /// Packets the server relayed: each message to the peer and each echo back.
    pub fn relayed(&self) -> u64 {
        self.sent + self.received
    }
}

/// Runs uclient against `server` (UDP, or TCP with `tcp`), waiting for it to finish.
pub fn run(
    server: SocketAddr,
    tcp: bool,
    peer_port: u16,
    username: &str,
    password: &str,
    load: &Load,
    log: &Path,
) -> Result<Summary> {
    let mut cmd = Command::new("turnutils_uclient");
    cmd.args(["-m", &load.clients.to_string()])
        .args(["-n", &load.messages.to_string()])
        .args(["-l", &load.length.to_string()])
        .args(["-z", "0", "-c", "-X", "-e", "127.0.0.1"])
        .args(["-r", &peer_port.to_string()])
        .args(["-u", username, "-w", password])
        .args(["-p", &server.port().to_string()]);
    if tcp {
        cmd.arg("-t");
    }
    cmd.arg(server.ip().to_string());
    let started = Instant::now();
    let out = cmd.stdin(Stdio::null()).output().context(
        "cannot run turnutils_uclient (coturn's tools: scripts/test-deps installs them)",
    )?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(log, &text).with_context(|| format!("cannot write {}", log.display()))?;
    if !out.status.success() {
        bail!(
            "turnutils_uclient failed ({}); its last lines:\n{}",
            out.status,
            tail(&text, 15)
        );
    }
    let mut s = parse(&text).with_context(|| {
        format!(
            "cannot read turnutils_uclient's summary; its last lines:\n{}",
            tail(&text, 15)
        )
    })?;
    s.wall_seconds = wall_seconds;
    Ok(s)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The number after `key` in `line` (digits, '.', up to the next other character).
fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let rest = rest.trim_start_matches([' ', '=', '~', '(']);
    let num: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse().ok()
}

/// Reads the summary lines (see the module's documentation).
pub fn parse(text: &str) -> Result<Summary> {
    let mut s = Summary::default();
    // The final totals are the last "tot_send_msgs" line (progress lines come before it).
    let totals = text
        .lines()
        .rev()
        .find(|l| l.contains("tot_send_msgs="))
        .context("no \"tot_send_msgs=\" line")?;
    s.sent = number_after(totals, "tot_send_msgs=").context("tot_send_msgs")? as u64;
    s.received = number_after(totals, "tot_recv_msgs=").context("tot_recv_msgs")? as u64;
    let lost = text
        .lines()
        .find(|l| l.contains("Total lost packets"))
        .context("no \"Total lost packets\" line")?;
    s.lost = number_after(lost, "Total lost packets").context("lost packets")? as u64;
    let pct = &lost[lost.find("Total lost packets").unwrap_or(0)..];
    s.lost_pct = number_after(pct, "(").context("lost percentage")?;
    s.send_dropped = number_after(lost, "total send dropped").context("send dropped")? as u64;
    s.transmit_seconds = text
        .lines()
        .find_map(|l| number_after(l, "Total transmit time is"))
        .context("no \"Total transmit time is\" line")?;
    s.rtt_ms = text
        .lines()
        .find_map(|l| number_after(l, "Average round trip delay"))
        .unwrap_or(0.0);
    Ok(s)
}

/// `turnutils_peer`: a UDP echo on 127.0.0.1 (it takes the port after too), killed when
/// dropped.
pub struct Peer {
    child: Child,
    pub port: u16,
}

impl Peer {
    pub fn start(port: u16, log: &Path) -> Result<Peer> {
        let file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new("turnutils_peer")
            .args(["-L", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .spawn()
            .context(
                "cannot run turnutils_peer (coturn's tools: scripts/test-deps installs them)",
            )?;
        let mut peer = Peer { child, port };
        // It binds at once; make sure it did not exit (port taken).
        std::thread::sleep(Duration::from_millis(200));
        if let Some(status) = peer.child.try_wait()? {
            bail!(
                "turnutils_peer exited at start ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        Ok(peer)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
