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
/// Index: network id, kind, username (e-mail or bot name) → the account's listing
/// entry: id, status, group and names (`directory::listing`; a bare id before version 7).
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
/// Schema version 2: relay item seq → how many mailbox entries reference it.
pub const RELAY_REFS: &str = "relay_refs";
/// Schema version 2: device id, seq → sealed key (now in the item and [`RELAY_ACKED`]).
pub const MAILBOX: &str = "mailbox";
/// Each device's acknowledgement mark: device id → the seq (u64) up to which
/// nothing waits for it any more.
pub const RELAY_ACKED: &str = "relay_acked";
/// Devices whose mailbox is being emptied (revoked, reset, deleted) → the seq up to
/// which their entries go.
pub const RELAY_CLEARED: &str = "relay_cleared";
/// Index: expiry (ms, u64), seq → sender device and client message id.
pub const RELAY_EXPIRY: &str = "relay_expiry";
/// Idempotency records of schema version 2, keyed device first (see [`RELAY_SENT_IDS`]).
pub const RELAY_SENT: &str = "relay_sent";
/// Accepted envelopes by client message id and sending device → the acceptance,
/// so retries are answered with the first one.
pub const RELAY_SENT_IDS: &str = "relay_sent_ids";
/// Attachment blobs by id.
pub const BLOBS: &str = "blobs";
/// Index: blob id, user id → (): who may download a blob.
pub const BLOB_ACCESS: &str = "blob_access";

/// Finished calls by start time (ms, big-endian) and id (`calling::calls`).
pub const CALL_RECORDS: &str = "call_records";

/// Outgoing mail by id (`mail::outbox`).
pub const MAIL_OUTBOX: &str = "mail_outbox";
/// Index: next attempt time (ms, big-endian) + mail id → (): the mails waiting to be sent.
pub const MAIL_QUEUE: &str = "mail_queue";
/// Registration links by the SHA-256 of their token (`directory::invitation`).
pub const INVITATIONS: &str = "invitations";
/// Index: user id → SHA-256 of the user's live registration token.
pub const USER_INVITATIONS: &str = "user_invitations";

/// Single sign-on configuration of each network, by network id (`auth::sso::config`).
pub const SSO_CONFIGS: &str = "sso_configs";
/// Index: company id (lowercase) → network id; company ids are unique.
pub const SSO_COMPANIES: &str = "sso_companies";
/// What keeps each single sign-on device signed in (the identity provider's refresh
/// token, the ID token's expiry, refresh failures), by device id (`auth::sso::session`).
pub const SSO_SESSIONS: &str = "sso_sessions";

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
    (
        "keep sealed keys in relay items with per-device acknowledgement marks, \
         and key idempotency records by message id",
        relay_marks,
    ),
    (
        "create the calling relay's call records",
        create_call_records,
    ),
    (
        "create the mail outbox and the invitation tables",
        create_mail_tables,
    ),
    ("create the single sign-on tables", create_sso_tables),
    (
        "keep each account's status, group and names in the directory's name index",
        crate::directory::listing::rebuild_name_index,
    ),
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

fn create_call_records(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(def(CALL_RECORDS))
        .map_err(|e| store_err("creating tables", e))?;
    Ok(())
}

fn create_mail_tables(tx: &WriteTransaction) -> Result<()> {
    for name in [MAIL_OUTBOX, MAIL_QUEUE, INVITATIONS, USER_INVITATIONS] {
        tx.open_table(def(name))
            .map_err(|e| store_err("creating tables", e))?;
    }
    Ok(())
}

fn create_sso_tables(tx: &WriteTransaction) -> Result<()> {
    for name in [SSO_CONFIGS, SSO_COMPANIES, SSO_SESSIONS] {
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

/// Version 3: a relay item carries its recipients' sealed keys and names only the
/// devices it still waits for, each device's acknowledgement mark is in
/// `relay_acked` (version 2 kept one `mailbox` row per device and item, and
/// `relay_refs` counts), and `relay_sent` (device, message id) becomes
/// `relay_sent_ids` (message id, device), whose new keys `relay_expiry` values name.
fn relay_marks(tx: &WriteTransaction) -> Result<()> {
    use super::key::Key;
    use std::collections::BTreeMap;
    fn err(e: impl std::fmt::Display) -> Error {
        store_err("moving the relay's mailboxes to acknowledgement marks", e)
    }
    // Version 2 mailbox keys: device id, NUL, seq (u64). Waiting entries per item.
    let mut waiting: BTreeMap<u64, Vec<(String, String)>> = BTreeMap::new();
    {
        let old = tx.open_table(def(MAILBOX)).map_err(err)?;
        for e in old.iter().map_err(err)? {
            let (k, v) = e.map_err(err)?;
            let k = k.value();
            let Some(split) = k.len().checked_sub(8) else {
                continue;
            };
            let seq = u64::from_be_bytes(k[split..].try_into().unwrap_or([0; 8]));
            let device = &k[..split];
            let device = String::from_utf8_lossy(device.strip_suffix(&[0]).unwrap_or(device));
            let sealed = String::from_utf8_lossy(v.value()).into_owned();
            waiting
                .entry(seq)
                .or_default()
                .push((device.into_owned(), sealed));
        }
    }
    {
        let mut items = tx.open_table(def(RELAY_ITEMS)).map_err(err)?;
        let mut rewritten = Vec::new();
        let mut orphans = Vec::new();
        for e in items.iter().map_err(err)? {
            let (k, v) = e.map_err(err)?;
            let Ok(seq) = <[u8; 8]>::try_from(k.value()).map(u64::from_be_bytes) else {
                continue;
            };
            let Some(entries) = waiting.get(&seq) else {
                orphans.push(seq);
                continue;
            };
            let mut item: serde_json::Value = serde_json::from_slice(v.value()).map_err(err)?;
            let events = item
                .get("body")
                .and_then(|b| b.get("t"))
                .and_then(|t| t.as_str())
                != Some("envelope");
            item["devices"] = entries.iter().map(|(d, _)| d.clone()).collect();
            if !events {
                item["sealed"] = entries.iter().map(|(_, s)| s.clone()).collect();
            }
            rewritten.push((seq, serde_json::to_vec(&item).map_err(err)?));
        }
        for seq in orphans {
            items.remove(seq.to_be_bytes().as_slice()).map_err(err)?;
        }
        for (seq, v) in rewritten {
            items
                .insert(seq.to_be_bytes().as_slice(), v.as_slice())
                .map_err(err)?;
        }
    }
    let swap = |k: &[u8]| -> Option<Vec<u8>> {
        let parts: Vec<String> = k
            .split(|b| *b == 0)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        match parts.as_slice() {
            [device, msg, rest] if rest.is_empty() => {
                Some(Key::new().s(msg).s(device).into_bytes())
            }
            _ => None,
        }
    };
    {
        let old = tx.open_table(def(RELAY_SENT)).map_err(err)?;
        let mut new = tx.open_table(def(RELAY_SENT_IDS)).map_err(err)?;
        for e in old.iter().map_err(err)? {
            let (k, v) = e.map_err(err)?;
            if let Some(nk) = swap(k.value()) {
                new.insert(nk.as_slice(), v.value()).map_err(err)?;
            }
        }
    }
    {
        let mut expiry = tx.open_table(def(RELAY_EXPIRY)).map_err(err)?;
        let mut updates = Vec::new();
        for e in expiry.iter().map_err(err)? {
            let (k, v) = e.map_err(err)?;
            if let Some(nv) = swap(v.value()) {
                updates.push((k.value().to_vec(), nv));
            }
        }
        for (k, v) in updates {
            expiry.insert(k.as_slice(), v.as_slice()).map_err(err)?;
        }
    }
    tx.open_table(def(RELAY_ACKED)).map_err(err)?;
    tx.open_table(def(RELAY_CLEARED)).map_err(err)?;
    for old in [MAILBOX, RELAY_SENT, RELAY_REFS] {
        tx.delete_table(def(old)).map_err(err)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::key::Key;

    #[test]
    fn version_3_moves_mailboxes_into_items_and_rekeys_idempotency_records() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        create_initial_tables(&tx).unwrap();
        create_relay_tables(&tx).unwrap();
        let old_sent = Key::new().s("dev1").s("msg-a").into_bytes();
        {
            let mut items = tx.open_table(def(RELAY_ITEMS)).unwrap();
            let item = br#"{"server_time":1,"expires_at":2,"devices":["dev1","dev2"],"body":{"t":"envelope"}}"#;
            items
                .insert(7u64.to_be_bytes().as_slice(), item.as_slice())
                .unwrap();
            items
                .insert(8u64.to_be_bytes().as_slice(), item.as_slice())
                .unwrap();
            let mut mb = tx.open_table(def(MAILBOX)).unwrap();
            // dev2 acknowledged 7; nobody waits for 8 any more.
            let k = Key::new().s("dev1").u64(7).into_bytes();
            mb.insert(k.as_slice(), b"sealed-7".as_slice()).unwrap();
            let mut sent = tx.open_table(def(RELAY_SENT)).unwrap();
            sent.insert(old_sent.as_slice(), [1u8; 16].as_slice())
                .unwrap();
            let mut exp = tx.open_table(def(RELAY_EXPIRY)).unwrap();
            let ek = Key::new().u64(99).u64(7).into_bytes();
            exp.insert(ek.as_slice(), old_sent.as_slice()).unwrap();
            let ek2 = Key::new().u64(99).u64(8).into_bytes();
            exp.insert(ek2.as_slice(), b"".as_slice()).unwrap();
        }
        relay_marks(&tx).unwrap();
        let new_sent = Key::new().s("msg-a").s("dev1").into_bytes();
        {
            let items = tx.open_table(def(RELAY_ITEMS)).unwrap();
            let v: serde_json::Value = serde_json::from_slice(
                items
                    .get(7u64.to_be_bytes().as_slice())
                    .unwrap()
                    .unwrap()
                    .value(),
            )
            .unwrap();
            assert_eq!(v["devices"], serde_json::json!(["dev1"]));
            assert_eq!(v["sealed"], serde_json::json!(["sealed-7"]));
            assert!(items.get(8u64.to_be_bytes().as_slice()).unwrap().is_none());
            let sent = tx.open_table(def(RELAY_SENT_IDS)).unwrap();
            assert_eq!(
                sent.get(new_sent.as_slice()).unwrap().unwrap().value(),
                [1u8; 16]
            );
            let exp = tx.open_table(def(RELAY_EXPIRY)).unwrap();
            let ek = Key::new().u64(99).u64(7).into_bytes();
            assert_eq!(exp.get(ek.as_slice()).unwrap().unwrap().value(), new_sent);
            let ek2 = Key::new().u64(99).u64(8).into_bytes();
            assert!(exp.get(ek2.as_slice()).unwrap().unwrap().value().is_empty());
        }
        let names: Vec<String> = tx
            .list_tables()
            .unwrap()
            .map(|h| redb::TableHandle::name(&h).to_string())
            .collect();
        for gone in [MAILBOX, RELAY_SENT, RELAY_REFS] {
            assert!(!names.iter().any(|n| n == gone), "{gone} is dropped");
        }
        assert!(names.iter().any(|n| n == RELAY_ACKED));
        assert!(names.iter().any(|n| n == RELAY_CLEARED));
    }

    #[test]
    fn version_7_puts_each_accounts_listing_in_the_name_index() {
        use crate::directory::{listing, user};
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        for (_, step) in &MIGRATIONS[..6] {
            step(&tx).unwrap();
        }
        let mut u = user::User::new(
            "12345678",
            user::UserKind::User,
            "ann@x.org".into(),
            "g1".into(),
        );
        u.first_name = "Ann".into();
        u.registered = true;
        let key = user::name_key(&u.network_id, u.kind, &u.username);
        {
            let mut users = tx.open_table(def(USERS)).unwrap();
            let json = serde_json::to_vec(&u).unwrap();
            users.insert(u.id.as_bytes(), json.as_slice()).unwrap();
            let mut by_name = tx.open_table(def(USERS_BY_NAME)).unwrap();
            by_name.insert(key.as_slice(), u.id.as_bytes()).unwrap();
            let mut meta = tx.open_table(def(META)).unwrap();
            meta.insert(VERSION_KEY, 6u32.to_be_bytes().as_slice())
                .unwrap();
        }
        assert_eq!(migrate(&tx).unwrap(), (6, VERSION));
        let by_name = tx.open_table(def(USERS_BY_NAME)).unwrap();
        let raw = by_name
            .get(key.as_slice())
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        let e = listing::decode(&raw).unwrap();
        assert_eq!((e.id, e.group_id), (u.id.as_str(), "g1"));
        assert_eq!(e.status, user::UserStatus::Active);
        assert_eq!(e.names[0], "ann");
    }
}
