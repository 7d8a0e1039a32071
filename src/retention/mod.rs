//! Data retention export (PRODUCT.md F8): the network's announced compliance member
//! that journals every message, decrypted, and loses nothing.
//!
//! While retention is on, the relay refuses envelopes not sealed to the network's
//! compliance device (`crate::relay::compliance`). This part holds that device's
//! private keys (sealed at rest with the retention passphrase, [`keys`]) and runs the
//! [`exporter`]: it reads the compliance device's mailbox in order, decrypts every
//! envelope, appends one JSON line per message ([`record::Record`]) to
//! `<folder>/messages/<base>-<UTC timestamp>.jsonl` ([`journal`]), saves decrypted
//! attachments under `<folder>/attachments/`, fsyncs, and only then acknowledges the
//! mailbox entries. Journal files rotate by size and by time, each with a SHA-256
//! manifest, and every finished file goes to the configured [`sink::Pipeline`] (local
//! folder by default; age encryption and an S3 bucket plug in there).
//!
//! [`Retention`] is the typed interface the admin API, the CLI and the console use:
//! [`Retention::enable`], [`Retention::disable`], [`Retention::status`]. Events
//! ([`events`]) and counters ([`metrics`]) follow the reference's names.

pub mod config;
pub mod ediscovery;
pub mod events;
pub mod exporter;
pub mod journal;
pub mod keys;
pub mod metrics;
pub mod record;
pub mod seal;
pub mod sink;

use crate::config::Secret;
use crate::directory::network;
use crate::error::{Error, Result};
use crate::relay::{Relay, compliance};
use crate::store::Store;
use base64::Engine;
use config::RetentionConfig;
use events::{Events, Severity};
use exporter::Opened;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The bot name of events that concern no one network.
pub const EXPORTER: &str = "outpost retention exporter";

/// The bot name of a network's events.
pub fn bot_name(network_id: &str) -> String {
    format!("compliance member of network {network_id}")
}

/// How the exporter is doing, for the console and `outpost retention status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub running: bool,
    /// Why it is paused (it retries), if it is.
    pub paused: Option<String>,
    /// Records journalled since start-up.
    pub journalled: u64,
    /// The last seq acknowledged.
    pub last_seq: u64,
    /// The journal file being written.
    pub current_file: Option<String>,
    pub folder: String,
    /// Per network with a compliance key: `open`, `passphrase_wrong`,
    /// `passphrase_missing` or `unreadable`.
    pub networks: HashMap<String, String>,
}

/// Whether retention is on in a network, and its compliance device.
pub type Enabled = (bool, Option<crate::directory::device::Device>);

/// Keys of a network as the exporter last saw them.
enum KeyState {
    Open(Arc<Opened>),
    /// Could not be opened (the reason); not tried again until the keys change.
    Failed(String, String),
}

/// The retention part: configuration, the compliance keys, the exporter's state.
pub struct Retention {
    pub store: Store,
    pub relay: Arc<Relay>,
    pub config: RetentionConfig,
    pub folder: PathBuf,
    passphrase: std::result::Result<Option<Secret>, String>,
    pub events: Events,
    pub(crate) wake: tokio::sync::Notify,
    status: Mutex<Status>,
    pipeline: Mutex<sink::Pipeline>,
    /// By network id; keyed together with the sealed public key.
    keys: Mutex<HashMap<String, (String, KeyState)>>,
}

impl Retention {
    /// Set up (no task started: see [`Retention::start`]).
    pub fn new(
        store: Store,
        relay: Arc<Relay>,
        config: RetentionConfig,
        data_dir: &std::path::Path,
        device: &str,
    ) -> Arc<Retention> {
        metrics::init();
        let folder = config.folder(data_dir);
        Arc::new(Retention {
            events: Events::new(device, &config.webhook_url),
            passphrase: config.passphrase(),
            status: Mutex::new(Status {
                folder: folder.display().to_string(),
                ..Default::default()
            }),
            folder,
            store,
            relay,
            config,
            wake: tokio::sync::Notify::new(),
            pipeline: Mutex::new(sink::Pipeline::default()),
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// Replace the sink pipeline (before [`Retention::start`]).
    pub fn set_pipeline(&self, p: sink::Pipeline) {
        *self.pipeline.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    pub fn pipeline(&self) -> sink::Pipeline {
        self.pipeline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Start the exporter task.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(exporter::run(self.clone()))
    }

    pub(crate) fn set_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The exporter's state and recent events (newest last).
    pub fn status(&self) -> (Status, Vec<events::Event>) {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (net, (_, k)) in self.keys.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let v = match k {
                KeyState::Open(_) => "open".to_string(),
                KeyState::Failed(code, _) => code.clone(),
            };
            s.networks.insert(net.clone(), v);
        }
        (s, self.events.recent())
    }

    fn passphrase(&self) -> Result<Secret> {
        match &self.passphrase {
            Ok(Some(p)) => Ok(p.clone()),
            Ok(None) => Err(Error::conflict(
                "retention_passphrase_missing",
                "no retention passphrase is configured: set retention.passphrase, \
                 OUTPOST_RETENTION_PASSPHRASE or the systemd credential retention-passphrase, \
                 then restart outpost",
            )),
            Err(e) => Err(Error::unavailable(
                "retention_passphrase_unreadable",
                e.clone(),
            )),
        }
    }

    /// The compliance devices whose keys are open, opening new ones with the
    /// passphrase (a wrong one: a critical event, once; the relay keeps accepting and
    /// the entries wait in the mailbox).
    pub(crate) async fn open_devices(&self) -> Vec<Arc<Opened>> {
        let found = self.store.read(|tx| {
            let mut out = Vec::new();
            for n in network::list(tx)? {
                let (Some(s), Some(d)) = (keys::get(tx, &n.id)?, compliance::get(tx, &n.id)?)
                else {
                    continue;
                };
                if d.keys() == Some((s.x25519.as_str(), s.ed25519.as_str())) {
                    out.push((s, d.id));
                }
            }
            Ok(out)
        });
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "retention: cannot list the compliance devices");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (sealed, device_id) in found {
            let known = {
                let k = self.keys.lock().unwrap_or_else(|e| e.into_inner());
                match k.get(&sealed.network_id) {
                    Some((pubkey, state)) if *pubkey == sealed.x25519 => Some(match state {
                        KeyState::Open(o) => Some(o.clone()),
                        KeyState::Failed(..) => None,
                    }),
                    _ => None,
                }
            };
            match known {
                Some(Some(o)) => {
                    out.push(o);
                    continue;
                }
                Some(None) => continue,
                None => {}
            }
            let net = sealed.network_id.clone();
            let pass = self.passphrase();
            let s2 = sealed.clone();
            let state = match pass {
                Err(e) => KeyState::Failed(e.code.to_string(), e.message.clone()),
                Ok(p) => match tokio::task::spawn_blocking(move || keys::open(&s2, &p)).await {
                    Ok(Ok(k)) => KeyState::Open(Arc::new(Opened {
                        network_id: net.clone(),
                        device_id: device_id.clone(),
                        keys: k,
                    })),
                    Ok(Err(e)) => KeyState::Failed(e.code.to_string(), e.message.clone()),
                    Err(e) => KeyState::Failed("unreadable".into(), e.to_string()),
                },
            };
            match &state {
                KeyState::Open(o) => {
                    metrics::LOGINS.inc();
                    self.events.emit(
                        &bot_name(&net),
                        Severity::Normal,
                        "keys_opened",
                        format!(
                            "the compliance key of network {net} is open; journalling its messages"
                        ),
                    );
                    out.push(o.clone());
                }
                KeyState::Failed(code, msg) => {
                    metrics::LOGIN_FAILURES.inc();
                    self.events.emit(
                        &bot_name(&net),
                        Severity::Critical,
                        code.trim_start_matches("retention_"),
                        format!("{msg}; messages wait in the compliance mailbox until then"),
                    );
                }
            }
            self.keys
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(net, (sealed.x25519.clone(), state));
        }
        out
    }

    /// The first half of turning retention on: the network's compliance key pair,
    /// created sealed with the passphrase, or the existing one (which the passphrase
    /// must open). Argon2id runs on a blocking thread.
    ///
    /// Without a configured passphrase there is no pair to create: `None`, and
    /// retention is switched on all the same — safe, since the relay then refuses every
    /// envelope until a compliance device is published (PutComplianceDevice, for an
    /// external compliance client) — with a critical event saying why.
    pub async fn prepare_enable(&self, network_id: &str) -> Result<Option<keys::SealedKeys>> {
        if matches!(self.passphrase, Ok(None)) {
            self.store.read(|tx| network::get(tx, network_id))?;
            self.events.emit(
                &bot_name(network_id),
                Severity::Critical,
                "passphrase_missing",
                format!(
                    "retention is being turned on in network {network_id} but no retention \
                     passphrase is configured, so outpost holds no compliance key: messages \
                     are refused until one is set (then enable again) or an external \
                     compliance device is published"
                ),
            );
            return Ok(None);
        }
        let pass = self.passphrase()?;
        let existing = self.store.read(|tx| {
            network::get(tx, network_id)?;
            keys::get(tx, network_id)
        })?;
        let net = network_id.to_string();
        tokio::task::spawn_blocking(move || match existing {
            Some(s) => keys::open(&s, &pass).map(|_| s),
            None => {
                let k = crate::client::crypto::DeviceKeys::generate(&mut rand::rng());
                keys::seal(&k, &net, &pass)
            }
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?
        .map(Some)
    }

    /// The second half, inside the caller's write transaction: keep the sealed keys,
    /// publish the compliance device, switch retention on (the relay's check with it).
    pub fn apply_enable(
        tx: &redb::WriteTransaction,
        network_id: &str,
        sealed: Option<&keys::SealedKeys>,
    ) -> Result<Enabled> {
        let s = match (keys::get(tx, network_id)?, sealed) {
            (Some(s), _) => Some(s),
            (None, Some(s)) => {
                keys::put(tx, s)?;
                Some(s.clone())
            }
            (None, None) => None,
        };
        let d = match s {
            Some(s) => Some(compliance::publish(tx, network_id, &s.x25519, &s.ed25519)?),
            None => compliance::get(tx, network_id)?,
        };
        let n = network::update_settings(
            tx,
            network_id,
            &serde_json::json!({ "data_retention": true }),
        )?;
        Ok((n.settings.data_retention, d))
    }

    /// Switch retention off inside the caller's write transaction: the relay stops
    /// requiring the compliance device; the keys, what is journalled and what still
    /// waits in the compliance mailbox (it is journalled too) stay.
    pub fn apply_disable(tx: &redb::WriteTransaction, network_id: &str) -> Result<Enabled> {
        let n = network::update_settings(
            tx,
            network_id,
            &serde_json::json!({ "data_retention": false }),
        )?;
        Ok((n.settings.data_retention, compliance::get(tx, network_id)?))
    }

    /// After a committed switch: every stream re-checks its policy (clients show the
    /// notice), the exporter looks for the new device, an event is recorded.
    pub fn changed(&self, network_id: &str, enabled: bool) {
        self.relay.directory_changed();
        self.wake.notify_one();
        let (kind, msg) = if enabled {
            (
                "enabled",
                format!("data retention is on in network {network_id}"),
            )
        } else {
            (
                "disabled",
                format!(
                    "data retention is off in network {network_id}; everything journalled is kept"
                ),
            )
        };
        self.events
            .emit(&bot_name(network_id), Severity::Normal, kind, msg);
    }

    /// Turn retention on or off (both halves; for callers without an audit scope).
    pub async fn set_enabled(&self, network_id: &str, enabled: bool) -> Result<Enabled> {
        let sealed = if enabled {
            Some(self.prepare_enable(network_id).await?)
        } else {
            None
        };
        let net = network_id.to_string();
        let r = self
            .store
            .write(move |tx| match &sealed {
                Some(s) => Retention::apply_enable(tx, &net, s.as_ref()),
                None => Retention::apply_disable(tx, &net),
            })
            .await?;
        self.changed(network_id, r.0);
        Ok(r)
    }
}

/// Base64 (standard) of bytes; used by tests and tools that show keys.
pub fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}
