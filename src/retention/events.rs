//! Retention events (`normal` | `critical`), with the reference's fields
//! (`complianceBot`, `dateTime`, `device`, `message`, `notificationType`, `severity`):
//! written to the log, kept in a small in-memory ring the console's status page reads
//! ([`Events::recent`]), and POSTed as JSON to `retention.webhook_url` when set.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;

/// Events kept for the console.
const KEEP: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Normal,
    Critical,
}

impl Severity {
    /// As serialized: `normal` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Normal => "normal",
            Severity::Critical => "critical",
        }
    }
}

/// One event, as logged, kept and POSTed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The compliance member's name (`compliance member of network <id>`), or
    /// `outpost retention exporter` for events of no particular network.
    pub compliance_bot: String,
    /// RFC 3339 UTC.
    pub date_time: String,
    /// The appliance's host name.
    pub device: String,
    pub message: String,
    /// What happened: `started`, `keys_opened`, `passphrase_wrong`, `passphrase_missing`,
    /// `write_failed`, `resumed`, `sink_failed`, `enabled`, `disabled`, …
    pub notification_type: String,
    pub severity: Severity,
}

/// The event log of the exporter.
pub struct Events {
    device: String,
    ring: Mutex<VecDeque<Event>>,
    webhook: Option<(reqwest::Client, String)>,
}

impl Events {
    pub fn new(device: &str, webhook_url: &str) -> Events {
        let webhook = (!webhook_url.trim().is_empty()).then(|| {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default();
            (client, webhook_url.trim().to_string())
        });
        Events {
            device: device.to_string(),
            ring: Mutex::new(VecDeque::new()),
            webhook,
        }
    }

    /// Record an event: log, ring, webhook (in the background; a failing webhook is
    /// logged, never retried forever).
    pub fn emit(&self, bot: &str, severity: Severity, kind: &str, message: impl Into<String>) {
        let e = Event {
            compliance_bot: bot.to_string(),
            date_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            device: self.device.clone(),
            message: message.into(),
            notification_type: kind.to_string(),
            severity,
        };
        let json = serde_json::to_string(&e).unwrap_or_default();
        match severity {
            Severity::Normal => {
                tracing::info!(target: "outpost::retention::event", event = %json, "retention: {}", e.message)
            }
            Severity::Critical => {
                tracing::error!(target: "outpost::retention::event", event = %json, "retention: {}", e.message)
            }
        }
        {
            let mut r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            if r.len() == KEEP {
                r.pop_front();
            }
            r.push_back(e.clone());
        }
        if let Some((client, url)) = &self.webhook
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let (client, url) = (client.clone(), url.clone());
            handle.spawn(async move {
                if let Err(err) = client
                    .post(&url)
                    .json(&e)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                {
                    tracing::warn!(error = %err, "retention: the event webhook failed");
                }
            });
        }
    }

    /// The most recent events, newest last.
    pub fn recent(&self) -> Vec<Event> {
        self.ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}
