//! The store's schema: every table's name, the schema version, and the migrations
//! that bring an older store up to date when it is opened.
//!
//! Parts declare typed handles on these names (`Table::new(schema::USERS)`); this file
//! is the one place that lists what the database holds. Adding a table or changing
//! how one is keyed means adding a migration at the end of [`MIGRATIONS`].

use super::table::{def, store_err};
use crate::error::{Error, Result};
use redb::{ReadableTable, WriteTransaction};

/// `schema_version`, `audit_head`, and other single values.
pub const META: &str = "meta";
/// Named signed counters maintained in the same transaction as the records they count.
pub const COUNTERS: &str = "counters";
/// Networks by 8-digit id.
pub const NETWORKS: &str = "networks";
/// Security groups by id.
pub const GROUPS: &str = "groups";
/// Index: network id, group id → ().
pub const GROUPS_BY_NETWORK: &str = "groups_by_network";
/// Users and bots by id.
pub const USERS: &str = "users";
/// Index: network id, kind, username (e-mail or bot name) → user id.
pub const USERS_BY_NAME: &str = "users_by_name";
/// Index: group id, user id → ().
pub const USERS_BY_GROUP: &str = "users_by_group";
/// Index: lock expiry (u64 seconds), user id → () for automatic unlocking.
pub const USER_LOCKS: &str = "user_locks";
/// Devices by user id, device id.
pub const DEVICES: &str = "devices";
/// Admin accounts by id.
pub const ADMINS: &str = "admins";
/// Index: admin username → admin id.
pub const ADMINS_BY_NAME: &str = "admins_by_name";
/// Admin sessions by SHA-256 of their token.
pub const ADMIN_SESSIONS: &str = "admin_sessions";
/// Audit events by sequence number (u64).
pub const AUDIT: &str = "audit";

/// Device tokens: SHA-256 of the token → user id, device id.
pub const DEVICE_TOKENS: &str = "device_tokens";
/// The compliance (data-retention) device of each network, by network id.
pub const COMPLIANCE_DEVICES: &str = "compliance_devices";
/// Conversations (direct and rooms) by id.
pub const CONVERSATIONS: &str = "conversations";
/// Index: user id, conversation id → ().
pub const CONVERSATIONS_BY_USER: &str = "conversations_by_user";
/// Index: network id, user id, user id (sorted) → the direct conversation's id.
pub const DIRECT_CONVERSATIONS: &str = "direct_conversations";
/// Relay items (envelopes and events) by seq (u64): stored once, referenced by mailboxes.
pub const RELAY_ITEMS: &str = "relay_items";
/// Relay item seq → how many mailbox entries still reference it (u32).
pub const RELAY_REFS: &str = "relay_refs";
/// Mailboxes: device id, seq → this device's part of the item (its sealed key).
pub const MAILBOX: &str = "mailbox";
/// Index: expiry (ms, u64), seq → sender device and client message id.
pub const RELAY_EXPIRY: &str = "relay_expiry";
/// Accepted envelopes by sending device and client message id → the acceptance,
/// so retries are answered with the first one.
pub const RELAY_SENT: &str = "relay_sent";
/// Attachment blobs by id.
pub const BLOBS: &str = "blobs";
/// Index: blob id, user id → (): who may download a blob.
pub const BLOB_ACCESS: &str = "blob_access";

/// Every table of the first schema version, in creation order.
pub const ALL: &[&str] = &[
    META,
    COUNTERS,
    NETWORKS,
    GROUPS,
    GROUPS_BY_NETWORK,
    USERS,
    USERS_BY_NAME,
    USERS_BY_GROUP,
    USER_LOCKS,
    DEVICES,
    ADMINS,
    ADMINS_BY_NAME,
    ADMIN_SESSIONS,
    AUDIT,
];

const VERSION_KEY: &[u8] = b"schema_version";

type Migration = fn(&WriteTransaction) -> Result<()>;

/// Migrations in order; entry `i` brings a store from version `i` to `i + 1`.
const MIGRATIONS: &[(&str, Migration)] = &[
    ("create the initial tables", create_initial_tables),
    ("create the messaging relay's tables", create_relay_tables),
];

/// Tables added by version 2.
pub const RELAY_TABLES: &[&str] = &[
    DEVICE_TOKENS,
    COMPLIANCE_DEVICES,
    CONVERSATIONS,
    CONVERSATIONS_BY_USER,
    DIRECT_CONVERSATIONS,
    RELAY_ITEMS,
    RELAY_REFS,
    MAILBOX,
    RELAY_EXPIRY,
    RELAY_SENT,
    BLOBS,
    BLOB_ACCESS,
];

/// The schema version this binary writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

fn create_initial_tables(tx: &WriteTransaction) -> Result<()> {
    for name in ALL {
        tx.open_table(def(name))
            .map_err(|e| store_err("creating tables", e))?;
    }
    Ok(())
}

fn create_relay_tables(tx: &WriteTransaction) -> Result<()> {
    for name in RELAY_TABLES {
        tx.open_table(def(name))
            .map_err(|e| store_err("creating tables", e))?;
    }
    Ok(())
}

/// The schema version recorded in the store (0 for a new, empty store).
pub fn read_version(tx: &WriteTransaction) -> Result<u32> {
    let t = tx
        .open_table(def(META))
        .map_err(|e| store_err("reading the schema version", e))?;
    let v = t
        .get(VERSION_KEY)
        .map_err(|e| store_err("reading the schema version", e))?;
    Ok(match v {
        Some(bytes) => {
            let b: [u8; 4] = bytes
                .value()
                .try_into()
                .map_err(|_| Error::internal("the schema version record is corrupt"))?;
            u32::from_be_bytes(b)
        }
        None => 0,
    })
}

/// Bring the store to [`VERSION`], in one transaction. Refuses a newer store.
pub fn migrate(tx: &WriteTransaction) -> Result<(u32, u32)> {
    let from = read_version(tx)?;
    if from > VERSION {
        return Err(Error::unavailable(
            "store_too_new",
            format!(
                "the store has schema version {from} but this outpost understands only up to \
                 {VERSION}; run the newer outpost release that wrote it, or restore a backup"
            ),
        ));
    }
    for (i, (what, step)) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tracing::info!(to = i + 1, "migrating the store: {what}");
        step(tx)?;
    }
    let mut t = tx
        .open_table(def(META))
        .map_err(|e| store_err("writing the schema version", e))?;
    t.insert(VERSION_KEY, VERSION.to_be_bytes().as_slice())
        .map_err(|e| store_err("writing the schema version", e))?;
    Ok((from, VERSION))
}
