//! systemd integration: readiness, watchdog pings and stop notification (sd_notify).
//!
//! Every call is a no-op when `NOTIFY_SOCKET` is not set, so the same binary runs
//! under systemd (`Type=notify`, `WatchdogSec=`) and from a terminal.

use sd_notify::NotifyState;
use std::time::Duration;

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// How often to ping the watchdog (half its timeout), if systemd asked for pings.
///
/// As sd_watchdog_enabled(3) specifies: `WATCHDOG_USEC` enables it, and
/// `WATCHDOG_PID`, when set, must name this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.trim().parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Ping the watchdog; `healthy` decides whether the ping is sent at all, so a wedged
/// store gets the service restarted.
pub fn watchdog(healthy: bool) {
    if healthy {
        send(&[NotifyState::Watchdog]);
    } else {
        tracing::error!("skipping the watchdog ping: the store does not answer");
    }
}
