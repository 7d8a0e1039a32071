//! What the appliance reports about itself (the console's system status page and the
//! admin API's `GetSystemStatus`): its version and uptime, the listeners it bound, the
//! TLS certificate and when it expires, the store's size, the mail outbox, each
//! network's data-retention switch and compliance device, the retention exporter (its
//! state and latest events), and the calling relay.
//!
//! The server records the facts only it knows (bound addresses, the certificate) with
//! [`started`] and [`certificate_loaded`]; [`collect`] adds what the store holds.

use crate::admin::AdminState;
use crate::error::Result;
use crate::mail::outbox::{self, MailStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::{LazyLock, RwLock};
use utoipa::ToSchema;

/// A certificate this close to expiry is flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// One listening socket.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Listener {
    /// `https` (console, admin and client API, device streams), `quic`, `turn-udp`,
    /// `turn-tcp`, `turn-tls`, `turn-https`.
    pub service: String,
    pub address: String,
}

/// The certificate the HTTPS listeners present.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Certificate {
    /// `generated` (outpost's own CA) or `site` (configured files).
    pub source: String,
    pub not_after: Option<DateTime<Utc>>,
    /// Whole days until it expires (negative once expired).
    pub days_left: Option<i64>,
    /// `ok`, `expiring` (under 30 days) or `expired`.
    pub state: String,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct StoreStatus {
    pub path: String,
    /// The database file's size.
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Mail is sent (`mail.transport` is not `none`).
    pub enabled: bool,
    pub queued: u64,
    pub sent: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct RetentionStatus {
    pub network_id: String,
    pub network_name: String,
    /// Data retention is switched on.
    pub enabled: bool,
    /// The compliance device has published its key (senders can seal to it).
    pub compliance_device: bool,
}

/// One of the retention exporter's events (`retention::events`), newest first.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct ExporterEvent {
    /// RFC 3339 UTC.
    pub date_time: String,
    /// `normal` or `critical`.
    pub severity: String,
    /// `started`, `keys_opened`, `passphrase_wrong`, `write_failed`, `resumed`, …
    pub notification_type: String,
    pub message: String,
}

/// The retention exporter: whether it runs, why it is paused, what it has journalled.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct ExporterStatus {
    pub running: bool,
    /// Why it is paused and retrying (a full disk, an unreachable bucket), if it is.
    pub paused: Option<String>,
    /// Records journalled since the appliance started.
    pub journalled: u64,
    /// The journal file being written, relative to the retention folder.
    pub current_file: Option<String>,
    pub folder: String,
    /// The latest events, newest first (at most [`EXPORTER_EVENTS`]).
    pub events: Vec<ExporterEvent>,
}

/// Exporter events the status shows.
pub const EXPORTER_EVENTS: usize = 10;

/// The appliance's status.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct SystemStatus {
    pub version: String,
    pub started_at: Option<DateTime<Utc>>,
    pub uptime_secs: Option<u64>,
    pub public_url: Option<String>,
    pub listeners: Vec<Listener>,
    pub certificate: Option<Certificate>,
    pub store: StoreStatus,
    pub outbox: OutboxStatus,
    pub retention: Vec<RetentionStatus>,
    pub exporter: ExporterStatus,
    /// The calling relay runs.
    pub calling: bool,
}

#[derive(Default)]
struct Facts {
    started_at: Option<DateTime<Utc>>,
    listeners: Vec<Listener>,
    cert_source: Option<String>,
    not_after: Option<DateTime<Utc>>,
}

static FACTS: LazyLock<RwLock<Facts>> = LazyLock::new(Default::default);

/// The server bound `listeners` (service, address).
pub fn started(listeners: Vec<(String, String)>) {
    let mut f = FACTS.write().unwrap_or_else(|p| p.into_inner());
    f.started_at = Some(Utc::now());
    f.listeners = listeners
        .into_iter()
        .map(|(service, address)| Listener { service, address })
        .collect();
}

/// The HTTPS listeners present a certificate from `source`, valid until `not_after`.
pub fn certificate_loaded(source: &str, not_after: Option<DateTime<Utc>>) {
    let mut f = FACTS.write().unwrap_or_else(|p| p.into_inner());
    f.cert_source = Some(source.to_string());
    f.not_after = not_after;
}

/// The state of a certificate expiring at `not_after`, seen at `now`.
pub fn certificate_state(not_after: DateTime<Utc>, now: DateTime<Utc>) -> (i64, &'static str) {
    let days = (not_after - now).num_days();
    let state = if not_after <= now {
        "expired"
    } else if days < EXPIRY_WARNING_DAYS {
        "expiring"
    } else {
        "ok"
    };
    (days, state)
}

fn count(tx: &redb::ReadTransaction, s: MailStatus) -> Result<u64> {
    Ok(outbox::list(tx, Some(s), None, None, usize::MAX)?.len() as u64)
}

fn exporter(retention: &crate::retention::Retention) -> ExporterStatus {
    let (s, events) = retention.status();
    ExporterStatus {
        running: s.running,
        paused: s.paused,
        journalled: s.journalled,
        current_file: s.current_file,
        folder: s.folder,
        events: events
            .into_iter()
            .rev()
            .take(EXPORTER_EVENTS)
            .map(|e| ExporterEvent {
                date_time: e.date_time,
                severity: e.severity.as_str().to_string(),
                notification_type: e.notification_type,
                message: e.message,
            })
            .collect(),
    }
}

/// The status now.
pub fn collect(
    state: &AdminState,
    exporter_of: &crate::retention::Retention,
) -> Result<SystemStatus> {
    let now = Utc::now();
    let (started_at, mut listeners, certificate) = {
        let f = FACTS.read().unwrap_or_else(|p| p.into_inner());
        let certificate = f.cert_source.as_ref().map(|source| {
            let (days_left, st) = match f.not_after {
                Some(na) => {
                    let (d, s) = certificate_state(na, now);
                    (Some(d), s)
                }
                None => (None, "ok"),
            };
            Certificate {
                source: source.clone(),
                not_after: f.not_after,
                days_left,
                state: st.to_string(),
            }
        });
        (f.started_at, f.listeners.clone(), certificate)
    };
    if let Some(t) = state.turn.get() {
        for (service, addrs) in [
            ("turn-udp", &t.bound.udp),
            ("turn-tcp", &t.bound.tcp),
            ("turn-tls", &t.bound.tls),
            ("turn-https", &t.bound.https),
        ] {
            for a in addrs {
                listeners.push(Listener {
                    service: service.into(),
                    address: a.to_string(),
                });
            }
        }
    }
    let (outbox, retention) = state.store.read(|tx| {
        let outbox = OutboxStatus {
            enabled: state.mail.is_some(),
            queued: count(tx, MailStatus::Queued)?,
            sent: count(tx, MailStatus::Sent)?,
            failed: count(tx, MailStatus::Failed)?,
        };
        let mut retention = Vec::new();
        for n in crate::directory::network::list(tx)? {
            let device = crate::relay::compliance::get(tx, &n.id)?;
            retention.push(RetentionStatus {
                compliance_device: device.is_some_and(|d| d.x25519.is_some()),
                enabled: n.settings.data_retention,
                network_id: n.id,
                network_name: n.name,
            });
        }
        Ok((outbox, retention))
    })?;
    Ok(SystemStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at,
        uptime_secs: started_at.map(|s| (now - s).num_seconds().max(0) as u64),
        public_url: state.public_url.get().cloned(),
        listeners,
        certificate,
        store: StoreStatus {
            path: state.store.path().display().to_string(),
            bytes: state.store.file_size(),
        },
        outbox,
        retention,
        exporter: exporter(exporter_of),
        calling: state.turn.get().is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_flagged_before_it_expires() {
        let now = Utc::now();
        assert_eq!(
            certificate_state(now + chrono::Duration::days(90), now).1,
            "ok"
        );
        assert_eq!(
            certificate_state(now + chrono::Duration::days(10), now).1,
            "expiring"
        );
        assert_eq!(
            certificate_state(now - chrono::Duration::days(1), now).1,
            "expired"
        );
    }
}
