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
}

fn key(user_id: &str, device_id: &str) -> Vec<u8> {
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

/// Register a new device for `u`.
pub fn register(
    tx: &WriteTransaction,
    u: &User,
    name: &str,
    platform: &str,
    client_version: &str,
) -> Result<Device> {
    let active = list(tx, &u.id)?
        .into_iter()
        .filter(|d| d.status == DeviceStatus::Active)
        .count();
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
        status: DeviceStatus::Active,
        created_at: Utc::now(),
        last_seen_at: None,
    };
    DEVICES.put(tx, &key(&u.id, &d.id), &d)?;
    Ok(d)
}

/// Reset every device of `old` and end its sessions; returns the updated user and
/// how many devices were reset.
pub fn reset_all(tx: &WriteTransaction, old: &User) -> Result<(User, u64)> {
    let mut n = 0;
    for mut d in list(tx, &old.id)? {
        if d.status == DeviceStatus::Active {
            d.status = DeviceStatus::Reset;
            DEVICES.put(tx, &key(&old.id, &d.id), &d)?;
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
                register(tx, &u, "laptop", "linux", "0.1.0")?;
                register(tx, &u, "phone\u{7}", "android", "0.1.0")
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
