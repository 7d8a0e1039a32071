//! The relay's read-through cache of what routing needs: each account with its
//! devices and effective policy, and each conversation's members.
//!
//! Checking an envelope touches the sender, every member and every member's devices;
//! reading and decoding those records per envelope would cost more than storing it.
//! The roster loads them once and keeps them until something changes: the relay
//! itself invalidates what it changes (devices, conversations), and any admin write
//! clears the whole cache (`Relay::directory_changed`), which is rare and cheap.

use super::compliance;
use super::conversation::{self, Conversation};
use super::frame::{Consent, Policy};
use crate::directory::device::{self, Device, DeviceStatus};
use crate::directory::network_settings::ReadReceipts;
use crate::directory::user::{self, User, UserStatus};
use crate::directory::{group, network};
use crate::error::{Error, Result};
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Beyond this many cached entries the cache starts over (bounds memory).
const MAX_ENTRIES: usize = 250_000;

/// A device that can receive envelopes: active, with published keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKeys {
    pub id: String,
    pub user_id: String,
    pub x25519: String,
    pub ed25519: String,
}

impl DeviceKeys {
    fn of(d: &Device) -> Option<DeviceKeys> {
        let (x, e) = d.keys()?;
        Some(DeviceKeys {
            id: d.id.clone(),
            user_id: d.user_id.clone(),
            x25519: x.to_string(),
            ed25519: e.to_string(),
        })
    }
}

/// An account as the relay sees it.
#[derive(Debug)]
pub struct Account {
    pub user: User,
    pub policy: Policy,
    /// The network's consent pop-up, when enabled.
    pub consent: Option<Consent>,
    /// Every device record of the account (for authentication).
    pub devices: Vec<Device>,
    /// The devices envelopes must be sealed to (empty unless the account is active).
    pub receiving: Vec<DeviceKeys>,
    /// The network's compliance device while data retention is on.
    pub compliance: Option<DeviceKeys>,
    pub retention: bool,
}

impl Account {
    /// Why this account may not use the relay right now, if it may not.
    pub fn refusal(&self) -> Option<Error> {
        match self.user.status() {
            UserStatus::Active => None,
            UserStatus::Suspended => Some(Error::forbidden(
                "account_suspended",
                "this account is suspended; ask your administrator",
            )),
            UserStatus::Locked => Some(Error::forbidden(
                "account_locked",
                "this account is locked after too many failed sign-ins; it unlocks after 24 hours or when an administrator unlocks it",
            )),
            UserStatus::Pending => Some(Error::forbidden(
                "account_pending",
                "this account has not been registered yet",
            )),
        }
    }

    /// The device `device_id` if its session is valid (active, same auth epoch).
    pub fn live_device(&self, device_id: &str) -> Result<&Device> {
        let d = self
            .devices
            .iter()
            .find(|d| d.id == device_id)
            .ok_or_else(|| {
                Error::unauthorized("device_revoked", "this device was removed; sign in again")
            })?;
        if d.status == DeviceStatus::PendingApproval && d.auth_epoch == self.user.auth_epoch {
            return Err(approval_required());
        }
        if d.status != DeviceStatus::Active || d.auth_epoch != self.user.auth_epoch {
            return Err(Error::unauthorized(
                "device_revoked",
                "this device was signed out (revoked, reset, or the account's sessions were ended); sign in again",
            ));
        }
        Ok(d)
    }

    /// The device `device_id` if it waits for approval in the current auth epoch (what
    /// the approval calls accept).
    pub fn pending_device(&self, device_id: &str) -> Result<&Device> {
        match self.live_device(device_id) {
            Err(e) if e.code == "device_approval_required" => Ok(self
                .devices
                .iter()
                .find(|d| d.id == device_id)
                .expect("found by live_device")),
            Ok(_) => Err(Error::conflict(
                "device_not_pending",
                "this device is approved already",
            )),
            Err(e) => Err(e),
        }
    }

    /// The account's devices that wait for approval (what its devices are told).
    pub fn pending_devices(&self) -> Vec<&Device> {
        self.devices
            .iter()
            .filter(|d| {
                d.status == DeviceStatus::PendingApproval && d.auth_epoch == self.user.auth_epoch
            })
            .collect()
    }

    /// Whether `device_id` has acknowledged the current consent pop-up (or none is set).
    pub fn consent_ok(&self, acknowledged: Option<u64>) -> bool {
        match &self.consent {
            None => true,
            Some(c) => acknowledged == Some(c.version),
        }
    }
}

/// What a device waiting for approval gets from everything but the approval calls.
pub fn approval_required() -> Error {
    Error::forbidden(
        "device_approval_required",
        "this device waits for approval: enter the code mailed to you, or approve it from a \
         device you already use",
    )
}

/// A bounded map from id to shared record, filled on demand.
struct Cache<T>(Mutex<HashMap<String, Arc<T>>>);

impl<T> Cache<T> {
    fn new() -> Self {
        Cache(Mutex::new(HashMap::new()))
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<T>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached record, or `load`'s (then cached); None if `load` finds none.
    fn get_or_load(
        &self,
        id: &str,
        load: impl FnOnce() -> Result<Option<T>>,
    ) -> Result<Option<Arc<T>>> {
        if let Some(v) = self.map().get(id) {
            return Ok(Some(v.clone()));
        }
        let Some(v) = load()? else {
            return Ok(None);
        };
        let v = Arc::new(v);
        self.put(id, v.clone());
        Ok(Some(v))
    }

    fn put(&self, id: &str, v: Arc<T>) {
        let mut map = self.map();
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(id.to_string(), v);
    }

    fn remove(&self, id: &str) {
        self.map().remove(id);
    }

    fn clear(&self) {
        self.map().clear();
    }
}

/// The cache.
pub struct Roster {
    store: Store,
    accounts: Cache<Account>,
    conversations: Cache<Conversation>,
}

impl Roster {
    pub fn new(store: Store) -> Roster {
        Roster {
            store,
            accounts: Cache::new(),
            conversations: Cache::new(),
        }
    }

    /// The account `user_id` (None if the user no longer exists).
    pub fn account(&self, user_id: &str) -> Result<Option<Arc<Account>>> {
        self.accounts
            .get_or_load(user_id, || self.store.read(|tx| load_account(tx, user_id)))
    }

    /// A conversation by id.
    pub fn conversation(&self, id: &str) -> Result<Option<Arc<Conversation>>> {
        self.conversations
            .get_or_load(id, || self.store.read(|tx| conversation::get(tx, id)))
    }

    pub fn forget_account(&self, user_id: &str) {
        self.accounts.remove(user_id);
    }

    /// Record a conversation's new state (or its deletion).
    pub fn put_conversation(&self, id: &str, c: Option<&Conversation>) {
        match c {
            Some(c) => self.conversations.put(id, Arc::new(c.clone())),
            None => self.conversations.remove(id),
        }
    }

    /// Forget everything (after an administrator changed the directory).
    pub fn clear(&self) {
        self.accounts.clear();
        self.conversations.clear();
    }
}

fn load_account(tx: &redb::ReadTransaction, user_id: &str) -> Result<Option<Account>> {
    let Some(u) = user::by_id(tx, user_id)? else {
        return Ok(None);
    };
    let net = network::get(tx, &u.network_id)?;
    let g = group::get(tx, &u.network_id, &u.group_id)?;
    let devices = device::list(tx, &u.id)?;
    let s = &net.settings;
    let compliance = if s.data_retention {
        compliance::get(tx, &net.id)?.and_then(|d| DeviceKeys::of(&d))
    } else {
        None
    };
    let policy = Policy {
        max_ttl_secs: g.settings.messaging.max_ttl_seconds,
        max_bor_secs: g.settings.messaging.max_bor_seconds,
        forwarding: g.settings.messaging.message_forwarding,
        files: g.settings.media.files_enabled,
        file_download: g.settings.media.file_download,
        read_receipts: s.read_receipts != ReadReceipts::Disabled,
        location: g.settings.location.sharing,
        audio_calls: g.settings.calling.audio,
        video_calls: g.settings.calling.audio && g.settings.calling.video,
        force_tcp_calls: g.settings.calling.force_tcp,
        compliance_device_id: compliance.as_ref().map(|d| d.id.clone()),
        classification: serde_json::to_value(&s.classification).unwrap_or_default(),
    };
    let consent = s.consent.enabled.then(|| Consent {
        version: s.consent.version as u64,
        title: s.consent.title.clone(),
        body: s.consent.body.clone(),
        button_label: s.consent.button_label.clone(),
    });
    let active = u.status() == UserStatus::Active;
    let receiving = if active {
        devices
            .iter()
            .filter(|d| d.status == DeviceStatus::Active && d.auth_epoch == u.auth_epoch)
            .filter_map(DeviceKeys::of)
            .collect()
    } else {
        Vec::new()
    };
    Ok(Some(Account {
        retention: s.data_retention,
        user: u,
        policy,
        consent,
        devices,
        receiving,
        compliance,
    }))
}
