//! Devices of a user (PRODUCT.md F3): the clients a person has registered.
//!
//! Admins list them and reset them; resetting marks every device `reset` (its keys
//! and sessions stop working) and raises the user's auth epoch, so the relay signs
//! the devices out. Devices are keyed by user, so a user's list is one range read.

use super::user::{self, User};
use crate::error::{Error, Result};
use crate::store::{Key, RawTable, Table, Tx, schema};
use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use utoipa::ToSchema;

pub(crate) const DEVICES: Table<Device> = Table::new(schema::DEVICES);
pub const MAX_DEVICES_PER_USER: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Active,
    /// Reset by an admin: its keys and sessions no longer work.
    Reset,
    /// Revoked by its owner.
    Revoked,
    /// Registered while the security group asks new devices to be approved
    /// (account-takeover protection): it may only ask for approval until an existing
    /// device approves it or the person enters the code mailed to them.
    PendingApproval,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Device {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// e.g. `linux`, `windows`, `macos`, `ios`, `android`, `web`, `cli`.
    pub platform: String,
    pub client_version: String,
    pub status: DeviceStatus,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// base64 X25519 public key (HPKE), once published.
    #[serde(default)]
    pub x25519: Option<String>,
    /// base64 Ed25519 public key (signatures), once published.
    #[serde(default)]
    pub ed25519: Option<String>,
    /// The account's auth epoch when the device registered; a raised epoch ends it.
    #[serde(default)]
    #[schema(ignore)]
    pub auth_epoch: u64,
    /// The consent pop-up version this device acknowledged.
    #[serde(default)]
    pub consent_version: Option<u64>,
    /// While pending approval: the mailed code's hash, its expiry and the failed tries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub approval: Option<Approval>,
}

/// The approval a pending device waits for (see `auth::device_approval`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// SHA-256 (hex) of the device id and the mailed code; None while no code was mailed.
    pub code_hash: Option<String>,
    /// When the mailed code stops working.
    pub code_expires_at: Option<DateTime<Utc>>,
    /// When the last code was mailed (a new one is mailed at most once a minute).
    pub code_sent_at: Option<DateTime<Utc>>,
    /// Wrong codes entered so far.
    pub failed_attempts: u32,
}

impl Device {
    /// Both public keys, once published.
    pub fn keys(&self) -> Option<(&str, &str)> {
        Some((self.x25519.as_deref()?, self.ed25519.as_deref()?))
    }
}

/// Where a device token points.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRef {
    pub user_id: String,
    pub device_id: String,
}

pub(crate) const TOKENS: Table<TokenRef> = Table::new(schema::DEVICE_TOKENS);

pub fn key(user_id: &str, device_id: &str) -> Vec<u8> {
    Key::new().s(user_id).s(device_id).into_bytes()
}

/// Every device of a user, oldest first.
pub fn list<'a>(tx: impl Into<Tx<'a>>, user_id: &str) -> Result<Vec<Device>> {
    let mut out = Vec::new();
    DEVICES.scan_prefix(
        tx,
        &Key::new().s(user_id).into_bytes(),
        None,
        false,
        |_, d| {
            out.push(d);
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(out)
}

/// Devices waiting for approval an account may have at once.
pub const MAX_PENDING_PER_USER: usize = 5;

/// Whether `d` is a working device of `u` (active, registered in the current auth epoch).
pub fn is_live(d: &Device, u: &User) -> bool {
    d.status == DeviceStatus::Active && d.auth_epoch == u.auth_epoch
}

/// Register a new device for `u`, `Active` or `PendingApproval`.
pub fn register(
    tx: &WriteTransaction,
    u: &User,
    name: &str,
    platform: &str,
    client_version: &str,
    status: DeviceStatus,
) -> Result<Device> {
    let devices = list(tx, &u.id)?;
    let active = devices
        .iter()
        .filter(|d| d.status == DeviceStatus::Active)
        .count();
    let pending = devices
        .iter()
        .filter(|d| d.status == DeviceStatus::PendingApproval && d.auth_epoch == u.auth_epoch)
        .count();
    if status == DeviceStatus::PendingApproval && pending >= MAX_PENDING_PER_USER {
        return Err(Error::conflict(
            "too_many_pending_devices",
            format!(
                "{MAX_PENDING_PER_USER} new devices already wait for approval on this account; \
                 approve or remove them from an existing device first"
            ),
        ));
    }
    if active >= MAX_DEVICES_PER_USER {
        return Err(Error::invalid(
            "too_many_devices",
            format!(
                "an account has at most {MAX_DEVICES_PER_USER} active devices; remove one first"
            ),
        ));
    }
    let clean = |s: &str, max: usize| -> String {
        s.chars().filter(|c| !c.is_control()).take(max).collect()
    };
    let d = Device {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: u.id.clone(),
        name: clean(name, 100),
        platform: clean(platform, 32),
        client_version: clean(client_version, 32),
        status,
        created_at: Utc::now(),
        last_seen_at: None,
        x25519: None,
        ed25519: None,
        auth_epoch: u.auth_epoch,
        consent_version: None,
        approval: (status == DeviceStatus::PendingApproval).then(Approval::default),
    };
    DEVICES.put(tx, &key(&u.id, &d.id), &d)?;
    Ok(d)
}

/// Register a device and issue its token (`od_…`); returns the device and the token,
/// which is shown once and stored only as a hash.
pub fn register_with_token(
    tx: &WriteTransaction,
    u: &User,
    name: &str,
    platform: &str,
    client_version: &str,
    status: DeviceStatus,
) -> Result<(Device, String)> {
    let d = register(tx, u, name, platform, client_version, status)?;
    let (token, hash) = crate::auth::password::new_token("od_");
    TOKENS.put(
        tx,
        hash.as_bytes(),
        &TokenRef {
            user_id: u.id.clone(),
            device_id: d.id.clone(),
        },
    )?;
    Ok((d, token))
}

/// The device a token belongs to, if any.
pub fn by_token<'a>(tx: impl Into<Tx<'a>>, token: &str) -> Result<Option<TokenRef>> {
    if !token.starts_with("od_") {
        return Ok(None);
    }
    let hash = crate::auth::password::token_hash(token);
    TOKENS.get(tx, hash.as_bytes())
}

/// One device of a user.
pub fn get<'a>(tx: impl Into<Tx<'a>>, user_id: &str, device_id: &str) -> Result<Device> {
    DEVICES
        .get(tx, &key(user_id, device_id))?
        .ok_or_else(|| Error::not_found("device_not_found", "there is no such device"))
}

/// Replace a device record.
pub fn put(tx: &WriteTransaction, d: &Device) -> Result<()> {
    DEVICES.put(tx, &key(&d.user_id, &d.id), d)
}

/// Publish a device's public keys (base64, 32 bytes each). Write-once: the same keys
/// again are accepted, different ones refused.
pub fn publish_keys(
    tx: &WriteTransaction,
    mut d: Device,
    x25519: &str,
    ed25519: &str,
) -> Result<Device> {
    check_public_keys(x25519, ed25519)?;
    if let Some((x, e)) = d.keys() {
        if x == x25519 && e == ed25519 {
            return Ok(d);
        }
        return Err(Error::conflict(
            "keys_already_published",
            "this device already published different keys; keys cannot change — register a new device instead",
        ));
    }
    d.x25519 = Some(x25519.to_string());
    d.ed25519 = Some(ed25519.to_string());
    put(tx, &d)?;
    Ok(d)
}

/// Both keys must be 32 bytes in standard padded base64.
pub fn check_public_keys(x25519: &str, ed25519: &str) -> Result<()> {
    use base64::Engine;
    for (field, v) in [("x25519", x25519), ("ed25519", ed25519)] {
        let ok = base64::engine::general_purpose::STANDARD
            .decode(v)
            .map(|b| b.len() == 32)
            .unwrap_or(false);
        if !ok {
            return Err(Error::invalid(
                "invalid_key",
                format!("{field} must be a 32-byte public key in base64 (standard, padded)"),
            )
            .with_details(serde_json::json!({ "field": field })));
        }
    }
    Ok(())
}

/// Revoke a device: its token stops working at once.
pub fn revoke(tx: &WriteTransaction, mut d: Device) -> Result<Device> {
    d.status = DeviceStatus::Revoked;
    put(tx, &d)?;
    Ok(d)
}

/// Reset one device: its token and keys stop working, and what waited for it is
/// deleted (nobody else can open it).
pub fn reset(tx: &WriteTransaction, mut d: Device) -> Result<Device> {
    d.status = DeviceStatus::Reset;
    d.approval = None;
    put(tx, &d)?;
    crate::relay::mailbox::clear_device(tx, &d.id)?;
    Ok(d)
}

/// Reset every device of `old` and end its sessions; returns the updated user and
/// how many devices were reset.
pub fn reset_all(tx: &WriteTransaction, old: &User) -> Result<(User, u64)> {
    let mut n = 0;
    for d in list(tx, &old.id)? {
        if matches!(
            d.status,
            DeviceStatus::Active | DeviceStatus::PendingApproval
        ) {
            reset(tx, d)?;
            n += 1;
        }
    }
    let mut u = old.clone();
    u.end_sessions();
    u.updated_at = Utc::now();
    user::put(tx, Some(old), &u)?;
    Ok((u, n))
}

/// Remove every device record of a user (when the user is deleted).
pub(crate) fn delete_all(tx: &WriteTransaction, user_id: &str) -> Result<u64> {
    for d in list(tx, user_id)? {
        crate::relay::mailbox::clear_device(tx, &d.id)?;
    }
    RawTable::new(schema::DEVICES).delete_prefix(tx, &Key::new().s(user_id).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::directory::network;
    use crate::directory::user::{User, UserKind};
    use crate::store::Store;

    #[test]
    fn reset_marks_every_device_and_raises_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), &StoreConfig::default()).unwrap();
        let (net, _) = store
            .write_now(|tx| network::create(tx, "n", &Default::default(), None))
            .unwrap();
        let u = User::new(
            &net.id,
            UserKind::User,
            "d@x.test".into(),
            net.default_group_id.clone(),
        );
        store.write_now(|tx| user::put(tx, None, &u)).unwrap();
        store
            .write_now(|tx| {
                register(tx, &u, "laptop", "linux", "0.1.0", DeviceStatus::Active)?;
                register(
                    tx,
                    &u,
                    "phone\u{7}",
                    "android",
                    "0.1.0",
                    DeviceStatus::Active,
                )
            })
            .unwrap();
        let devices = store.read(|tx| list(tx, &u.id)).unwrap();
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[1].name, "phone");
        let (after, n) = store
            .write_now(|tx| {
                let old = user::get(tx, &net.id, UserKind::User, &u.id)?;
                reset_all(tx, &old)
            })
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(after.auth_epoch, u.auth_epoch + 1);
        let devices = store.read(|tx| list(tx, &u.id)).unwrap();
        assert!(devices.iter().all(|d| d.status == DeviceStatus::Reset));
        store
            .write_now(|tx| {
                let old = user::get(tx, &net.id, UserKind::User, &u.id)?;
                user::remove(tx, &old)
            })
            .unwrap();
        assert!(store.read(|tx| list(tx, &u.id)).unwrap().is_empty());
        store.close();
    }
}
