//! The compliance device of a network (PRODUCT.md F8): the announced member every
//! envelope must also be sealed to while data retention is on.
//!
//! This part owns the device record and the relay's check; the exporter that holds
//! the private key and journals what arrives is the retention part. An administrator
//! with the compliance (or owner) role publishes the device's public keys; while
//! retention is on and no compliance device exists, the relay refuses every envelope
//! (`retention_unavailable`) rather than let one go unjournalled.

use crate::directory::device::{Device, DeviceStatus, check_public_keys};
use crate::error::Result;
use crate::store::{Table, Tx, schema};
use chrono::Utc;
use redb::WriteTransaction;

/// The user id compliance devices carry: no person has it.
pub const USER_ID: &str = "compliance";

/// Whether `device_id` is a compliance device (their ids are made by [`publish`]).
/// Their mailbox entries outlive the envelopes' expiry: a message is retained even
/// when it expires before the exporter journals it.
pub fn is_device(device_id: &str) -> bool {
    device_id.starts_with(DEVICE_ID_PREFIX)
}

const DEVICE_ID_PREFIX: &str = "compliance-";

const COMPLIANCE: Table<Device> = Table::new(schema::COMPLIANCE_DEVICES);

/// The network's compliance device, if published.
pub fn get<'a>(tx: impl Into<Tx<'a>>, network_id: &str) -> Result<Option<Device>> {
    COMPLIANCE.get(tx, network_id.as_bytes())
}

/// Publish (or replace) the network's compliance device with these public keys.
/// Replacing creates a new device id, so senders fetch the new key.
pub fn publish(
    tx: &WriteTransaction,
    network_id: &str,
    x25519: &str,
    ed25519: &str,
) -> Result<Device> {
    if let Some(d) = get(tx, network_id)?
        && d.keys() == Some((x25519, ed25519))
    {
        return Ok(d);
    }
    check_public_keys(x25519, ed25519)?;
    let d = Device {
        id: format!("{DEVICE_ID_PREFIX}{}", uuid::Uuid::now_v7()),
        user_id: USER_ID.into(),
        name: format!("compliance member of network {network_id}"),
        platform: "outpost".into(),
        client_version: env!("CARGO_PKG_VERSION").into(),
        status: DeviceStatus::Active,
        created_at: Utc::now(),
        last_seen_at: None,
        x25519: Some(x25519.into()),
        ed25519: Some(ed25519.into()),
        auth_epoch: 0,
        consent_version: None,
        approval: None,
    };
    COMPLIANCE.put(tx, network_id.as_bytes(), &d)?;
    Ok(d)
}
