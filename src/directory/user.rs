//! Users and bots (PRODUCT.md F3): the team directory of a network.
//!
//! A user is identified by e-mail (unique per network), a bot by a username ending in
//! `bot`; both are [`User`] records with a [`UserKind`], so the relay treats them the
//! same. Status is derived from stored flags: `pending` until the person registers,
//! then `active`; `suspended` and `locked` override it. Every write goes through
//! [`put`] / [`remove`], which keep the name and group indexes and the status
//! counters exactly in step with the records, in the caller's transaction.

use super::{group, listing, validate};
use crate::error::{Error, FieldProblem, Result};
use crate::store::{Key, RawTable, Table, Tx, counter_add, schema};
use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use utoipa::ToSchema;

pub(crate) const USERS: Table<User> = Table::new(schema::USERS);
const BY_NAME: RawTable = RawTable::new(schema::USERS_BY_NAME);
const BY_GROUP: RawTable = RawTable::new(schema::USERS_BY_GROUP);
const LOCKS: RawTable = RawTable::new(schema::USER_LOCKS);
pub const NAME_MAX: usize = 100;
pub const PAGE_MAX: usize = 1000;
pub const PAGE_DEFAULT: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    User,
    Bot,
}

impl UserKind {
    fn as_str(self) -> &'static str {
        match self {
            UserKind::User => "user",
            UserKind::Bot => "bot",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Invited, not yet registered.
    Pending,
    Active,
    /// Refused everywhere; every device is signed out.
    Suspended,
    /// Too many failed sign-ins; unlocks after 24 hours or by an admin.
    Locked,
}

impl UserStatus {
    pub const ALL: [UserStatus; 4] = [
        UserStatus::Pending,
        UserStatus::Active,
        UserStatus::Suspended,
        UserStatus::Locked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Pending => "pending",
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
            UserStatus::Locked => "locked",
        }
    }

    pub fn parse(s: &str) -> Option<UserStatus> {
        UserStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The stored record of a user or bot. Never sent to clients as is: see [`UserView`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub network_id: String,
    pub kind: UserKind,
    /// Lowercase e-mail for users; the bot name for bots. Permanent.
    pub username: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// Bots' display name.
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub country_code: String,
    #[serde(default)]
    pub phone: String,
    pub group_id: String,
    /// Set when the person registers (or a bot is created): pending → active.
    pub registered: bool,
    pub suspended: bool,
    pub locked: bool,
    #[serde(default)]
    pub locked_until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub failed_logins: u32,
    /// argon2id PHC string.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// SHA-256 (hex) of a bot's API token.
    #[serde(default)]
    pub token_hash: Option<String>,
    /// Raised whenever every existing session of this account must end (suspension,
    /// device reset, password change); device sessions carry the epoch they began in.
    #[serde(default)]
    pub auth_epoch: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub registered_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A user or bot as the admin API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub network_id: String,
    pub kind: UserKind,
    /// E-mail address (users) or bot name (bots).
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub country_code: String,
    pub phone: String,
    pub security_group_id: String,
    pub status: UserStatus,
    pub locked_until: Option<DateTime<Utc>>,
    /// The account has a password (bots: or an API token).
    pub has_password: bool,
    pub has_token: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub registered_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl User {
    pub fn status(&self) -> UserStatus {
        if self.suspended {
            UserStatus::Suspended
        } else if self.locked {
            UserStatus::Locked
        } else if self.registered {
            UserStatus::Active
        } else {
            UserStatus::Pending
        }
    }

    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            network_id: self.network_id.clone(),
            kind: self.kind,
            username: self.username.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            display_name: self.display_name.clone(),
            country_code: self.country_code.clone(),
            phone: self.phone.clone(),
            security_group_id: self.group_id.clone(),
            status: self.status(),
            locked_until: if self.locked { self.locked_until } else { None },
            has_password: self.password_hash.is_some(),
            has_token: self.token_hash.is_some(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            registered_at: self.registered_at,
            last_login_at: self.last_login_at,
        }
    }

    /// End every existing session of the account (devices and API sessions carry the
    /// epoch they began in).
    pub fn end_sessions(&mut self) {
        self.auth_epoch += 1;
    }

    /// Suspend or unsuspend; suspending ends every session.
    pub fn mark_suspended(&mut self, suspended: bool) {
        if self.suspended != suspended {
            self.suspended = suspended;
            if suspended {
                self.end_sessions();
            }
        }
    }

    /// Replace how the account signs in (a password hash, a token hash, or both
    /// absent); the old credentials' sessions end.
    pub fn replace_credentials(
        &mut self,
        password_hash: Option<String>,
        token_hash: Option<String>,
    ) {
        self.password_hash = password_hash;
        self.token_hash = token_hash;
        self.end_sessions();
    }

    /// A new record with every optional field empty.
    pub fn new(network_id: &str, kind: UserKind, username: String, group_id: String) -> User {
        let now = Utc::now();
        User {
            id: uuid::Uuid::now_v7().to_string(),
            network_id: network_id.to_string(),
            kind,
            username,
            first_name: String::new(),
            last_name: String::new(),
            display_name: String::new(),
            country_code: String::new(),
            phone: String::new(),
            group_id,
            registered: false,
            suspended: false,
            locked: false,
            locked_until: None,
            failed_logins: 0,
            password_hash: None,
            token_hash: None,
            auth_epoch: 0,
            created_at: now,
            updated_at: now,
            registered_at: None,
            last_login_at: None,
        }
    }
}

pub(crate) fn name_key(network_id: &str, kind: UserKind, username: &str) -> Vec<u8> {
    Key::new()
        .s(network_id)
        .s(kind.as_str())
        .s(username)
        .into_bytes()
}

fn group_key(group_id: &str, user_id: &str) -> Vec<u8> {
    Key::new().s(group_id).s(user_id).into_bytes()
}

fn lock_key(until: DateTime<Utc>, user_id: &str) -> Vec<u8> {
    Key::new()
        .u64(until.timestamp().max(0) as u64)
        .s(user_id)
        .into_bytes()
}

/// Counter of `kind` accounts in `status` in a network.
pub fn status_counter(network_id: &str, kind: UserKind, status: UserStatus) -> String {
    let family = match kind {
        UserKind::User => "users",
        UserKind::Bot => "bots",
    };
    format!("{family}:{network_id}:{}", status.as_str())
}

fn count(tx: &WriteTransaction, u: &User, delta: i64) -> Result<()> {
    counter_add(
        tx,
        &status_counter(&u.network_id, u.kind, u.status()),
        delta,
    )?;
    counter_add(
        tx,
        &group::members_counter(&u.group_id, u.kind == UserKind::Bot),
        delta,
    )
}

/// Write `new`, replacing `old` (the record as it was read in this transaction),
/// keeping every index and counter in step.
pub fn put(tx: &WriteTransaction, old: Option<&User>, new: &User) -> Result<()> {
    // Counters change only when what they count changes (most updates touch neither).
    let recount = old.is_none_or(|o| o.status() != new.status() || o.group_id != new.group_id);
    if let Some(o) = old {
        debug_assert_eq!(o.id, new.id);
        if recount {
            count(tx, o, -1)?;
        }
        if o.group_id != new.group_id {
            BY_GROUP.delete(tx, &group_key(&o.group_id, &o.id))?;
        }
        if let (true, Some(until)) = (o.locked, o.locked_until) {
            LOCKS.delete(tx, &lock_key(until, &o.id))?;
        }
    }
    let entry = listing::encode(new);
    match old {
        // The entry changes only with status, group or names (most updates: neither).
        Some(o) if listing::encode(o) == entry => {}
        Some(_) => BY_NAME.put(
            tx,
            &name_key(&new.network_id, new.kind, &new.username),
            &entry,
        )?,
        None => {
            let nk = name_key(&new.network_id, new.kind, &new.username);
            if BY_NAME.get(tx, &nk)?.is_some() {
                return Err(taken(new));
            }
            BY_NAME.put(tx, &nk, &entry)?;
        }
    }
    BY_GROUP.put(tx, &group_key(&new.group_id, &new.id), b"")?;
    if let (true, Some(until)) = (new.locked, new.locked_until) {
        LOCKS.put(tx, &lock_key(until, &new.id), b"")?;
    }
    if recount {
        count(tx, new, 1)?;
    }
    USERS.put(tx, new.id.as_bytes(), new)
}

fn taken(u: &User) -> Error {
    match u.kind {
        UserKind::User => Error::conflict(
            "email_taken",
            format!("{} is already in this network's directory", u.username),
        ),
        UserKind::Bot => Error::conflict(
            "bot_name_taken",
            format!("the network already has a bot named {}", u.username),
        ),
    }
}

/// Remove a user or bot with its indexes, counters and devices.
pub fn remove(tx: &WriteTransaction, u: &User) -> Result<()> {
    count(tx, u, -1)?;
    BY_NAME.delete(tx, &name_key(&u.network_id, u.kind, &u.username))?;
    BY_GROUP.delete(tx, &group_key(&u.group_id, &u.id))?;
    if let (true, Some(until)) = (u.locked, u.locked_until) {
        LOCKS.delete(tx, &lock_key(until, &u.id))?;
    }
    super::device::delete_all(tx, &u.id)?;
    USERS.delete(tx, u.id.as_bytes())?;
    Ok(())
}

fn not_found(network_id: &str, kind: UserKind, id: &str) -> Error {
    match kind {
        UserKind::User => Error::not_found(
            "user_not_found",
            format!("network {network_id} has no user with id {id:?}"),
        ),
        UserKind::Bot => Error::not_found(
            "bot_not_found",
            format!("network {network_id} has no bot with id {id:?}"),
        ),
    }
}

/// The account `id` of `kind` in `network_id`.
pub fn get<'a>(tx: impl Into<Tx<'a>>, network_id: &str, kind: UserKind, id: &str) -> Result<User> {
    if !validate::is_record_id(id) {
        return Err(not_found(network_id, kind, id));
    }
    match USERS.get(tx, id.as_bytes())? {
        Some(u) if u.network_id == network_id && u.kind == kind => Ok(u),
        _ => Err(not_found(network_id, kind, id)),
    }
}

/// Any account by id, whatever its network (for the relay and sessions).
pub fn by_id<'a>(tx: impl Into<Tx<'a>>, id: &str) -> Result<Option<User>> {
    USERS.get(tx, id.as_bytes())
}

/// The account named `username` (normalized) in `network_id`.
pub fn by_name<'a>(
    tx: impl Into<Tx<'a>>,
    network_id: &str,
    kind: UserKind,
    username: &str,
) -> Result<Option<User>> {
    let tx = tx.into();
    match BY_NAME.get(tx, &name_key(network_id, kind, username))? {
        Some(entry) => USERS.get(tx, listing::decode(&entry)?.id.as_bytes()),
        None => Ok(None),
    }
}

/// Filters and paging for listing the directory.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<UserStatus>,
    pub group_id: Option<String>,
    /// Case-insensitive substring of username, names or display name.
    pub search: Option<String>,
    /// Continue after this position: the bytes of the last username of the previous
    /// page (any bytes are a valid position, so a cursor can never be "wrong").
    pub after: Option<Vec<u8>>,
    pub limit: usize,
}

/// One page of accounts, in username order. Filters and search read the name index's
/// [`listing`] entries; only the accounts on the page are decoded.
pub fn list<'a>(
    tx: impl Into<Tx<'a>>,
    network_id: &str,
    kind: UserKind,
    q: &ListQuery,
) -> Result<(Vec<User>, Option<String>)> {
    let tx = tx.into();
    let limit = q.limit.clamp(1, PAGE_MAX);
    let prefix = Key::new().s(network_id).s(kind.as_str()).into_bytes();
    let after = q.after.as_ref().map(|a| {
        let mut k = prefix.clone();
        k.extend_from_slice(a);
        k.push(0);
        k
    });
    let needle = q.search.as_ref().map(|s| s.to_lowercase());
    let mut ids = Vec::with_capacity(limit.min(256));
    let mut more = false;
    let (lo, hi) = crate::store::key::prefix_bounds(&prefix);
    let lo_b = match &after {
        Some(a) => std::ops::Bound::Excluded(a.as_slice()),
        None => lo.as_ref().map(|v| v.as_slice()),
    };
    tx.scan_raw(
        schema::USERS_BY_NAME,
        (lo_b, hi.as_ref().map(|v| v.as_slice())),
        false,
        |key, raw| {
            let e = listing::decode(raw)?;
            let username = std::str::from_utf8(&key[prefix.len()..key.len() - 1]).unwrap_or("");
            if q.status.is_some_and(|s| s != e.status)
                || q.group_id.as_ref().is_some_and(|g| g != e.group_id)
                || needle.as_ref().is_some_and(|n| !e.mentions(username, n))
            {
                return Ok(ControlFlow::Continue(()));
            }
            if ids.len() == limit {
                more = true;
                return Ok(ControlFlow::Break(()));
            }
            ids.push(e.id.to_string());
            Ok(ControlFlow::Continue(()))
        },
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        // Written in the same transaction as its entry: absent only if the store is damaged.
        if let Some(u) = USERS.get(tx, id.as_bytes())? {
            out.push(u);
        }
    }
    let next = if more {
        out.last().map(|u| u.username.clone())
    } else {
        None
    };
    Ok((out, next))
}

/// Whether the name index holds `u`'s current [`listing`] entry (`outpost store check`).
pub(crate) fn listing_is_current<'a>(tx: impl Into<Tx<'a>>, u: &User) -> Result<bool> {
    let raw = BY_NAME.get(tx, &name_key(&u.network_id, u.kind, &u.username))?;
    Ok(raw.is_some_and(|r| r == listing::encode(u)))
}

/// Counts of accounts by status (from counters; no scan).
pub fn counts<'a>(
    tx: impl Into<Tx<'a>>,
    network_id: &str,
    kind: UserKind,
) -> Result<Vec<(UserStatus, i64)>> {
    let tx = tx.into();
    UserStatus::ALL
        .iter()
        .map(|s| {
            Ok((
                *s,
                crate::store::counter_get(tx, &status_counter(network_id, kind, *s))?,
            ))
        })
        .collect()
}

/// Ids of every account in a group.
pub fn ids_in_group<'a>(tx: impl Into<Tx<'a>>, group_id: &str) -> Result<Vec<String>> {
    tx.into()
        .ids_with_prefix(schema::USERS_BY_GROUP, &Key::new().s(group_id).into_bytes())
}

/// Move every member of `from` to `to`; returns how many moved.
pub(crate) fn move_group_members(tx: &WriteTransaction, from: &str, to: &str) -> Result<u64> {
    let ids = ids_in_group(tx, from)?;
    for id in &ids {
        if let Some(old) = USERS.get(tx, id.as_bytes())? {
            let mut new = old.clone();
            new.group_id = to.to_string();
            new.updated_at = Utc::now();
            put(tx, Some(&old), &new)?;
        }
    }
    Ok(ids.len() as u64)
}

/// Remove every user and bot of a network; returns (users, bots) removed.
pub(crate) fn delete_all_in_network(tx: &WriteTransaction, network_id: &str) -> Result<(u64, u64)> {
    let mut removed = (0, 0);
    for kind in [UserKind::User, UserKind::Bot] {
        let prefix = Key::new().s(network_id).s(kind.as_str()).into_bytes();
        let mut ids = Vec::new();
        let (lo, hi) = crate::store::key::prefix_bounds(&prefix);
        Tx::from(tx).scan_raw(
            schema::USERS_BY_NAME,
            (
                lo.as_ref().map(|v| v.as_slice()),
                hi.as_ref().map(|v| v.as_slice()),
            ),
            false,
            |_, entry| {
                ids.push(listing::decode(entry)?.id.to_string());
                Ok(ControlFlow::Continue(()))
            },
        )?;
        for id in ids {
            if let Some(u) = USERS.get(tx, id.as_bytes())? {
                remove(tx, &u)?;
                match kind {
                    UserKind::User => removed.0 += 1,
                    UserKind::Bot => removed.1 += 1,
                }
            }
        }
    }
    Ok(removed)
}

/// Fields a person can give when inviting or editing a user.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub country_code: Option<String>,
    pub phone: Option<String>,
}

impl Profile {
    /// Validate and apply to `u`; problems are reported under `column(field)`.
    pub fn apply(&self, u: &mut User, column: &dyn Fn(&str) -> String) -> Vec<FieldProblem> {
        let mut problems = Vec::new();
        let mut set = |field: &str,
                       value: &Option<String>,
                       check: &dyn Fn(&str) -> Result<String, String>,
                       slot: &mut String| {
            if let Some(v) = value {
                match check(v) {
                    Ok(v) => *slot = v,
                    Err(e) => problems.push(FieldProblem::new(column(field), e)),
                }
            }
        };
        set(
            "first_name",
            &self.first_name,
            &|v| validate::name(v, NAME_MAX),
            &mut u.first_name,
        );
        set(
            "last_name",
            &self.last_name,
            &|v| validate::name(v, NAME_MAX),
            &mut u.last_name,
        );
        set(
            "country_code",
            &self.country_code,
            &validate::country_code,
            &mut u.country_code,
        );
        set("phone", &self.phone, &validate::phone, &mut u.phone);
        problems
    }
}

/// Suspend or unsuspend; suspending ends every session of the account.
pub fn set_suspended(tx: &WriteTransaction, old: &User, suspended: bool) -> Result<User> {
    let mut u = old.clone();
    if u.suspended != suspended {
        u.mark_suspended(suspended);
        u.updated_at = Utc::now();
        put(tx, Some(old), &u)?;
    }
    Ok(u)
}

/// Clear a lock and the failed-login count.
pub fn unlock(tx: &WriteTransaction, old: &User) -> Result<User> {
    let mut u = old.clone();
    u.locked = false;
    u.locked_until = None;
    u.failed_logins = 0;
    u.updated_at = Utc::now();
    put(tx, Some(old), &u)?;
    Ok(u)
}

/// Record a failed sign-in; locks the account at `threshold` failures for `lock_for`.
pub fn record_failed_login(
    tx: &WriteTransaction,
    old: &User,
    threshold: u32,
    lock_for: chrono::Duration,
) -> Result<User> {
    let mut u = old.clone();
    u.failed_logins = u.failed_logins.saturating_add(1);
    if u.failed_logins >= threshold && !u.locked {
        u.locked = true;
        u.locked_until = Some(Utc::now() + lock_for);
    }
    u.updated_at = Utc::now();
    put(tx, Some(old), &u)?;
    Ok(u)
}

/// Unlock every account whose lock expired by `now`; returns how many.
pub fn unlock_expired(tx: &WriteTransaction, now: DateTime<Utc>) -> Result<u64> {
    let mut due = Vec::new();
    let end = Key::new()
        .u64(now.timestamp().max(0) as u64 + 1)
        .into_bytes();
    Tx::from(tx).scan_raw(
        schema::USER_LOCKS,
        (
            std::ops::Bound::Unbounded,
            std::ops::Bound::Excluded(end.as_slice()),
        ),
        false,
        |k, _| {
            due.push(
                crate::store::key::split(&k[8..])
                    .first()
                    .map(|s| s.to_string()),
            );
            Ok(ControlFlow::Continue(()))
        },
    )?;
    let mut n = 0;
    for id in due.into_iter().flatten() {
        if let Some(u) = USERS.get(tx, id.as_bytes())?
            && u.locked
            && u.locked_until.is_some_and(|t| t <= now)
        {
            unlock(tx, &u)?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::directory::{group, network};
    use crate::store::{Store, counter_get};

    fn setup() -> (tempfile::TempDir, Store, network::Network) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), &StoreConfig::default()).unwrap();
        let (net, _) = store
            .write_now(|tx| network::create(tx, "n", &Default::default(), None))
            .unwrap();
        (dir, store, net)
    }

    #[test]
    fn counters_and_indexes_follow_every_change() {
        let (_d, store, net) = setup();
        let nid = net.id.clone();
        let u = User::new(
            &nid,
            UserKind::User,
            "a@x.test".into(),
            net.default_group_id.clone(),
        );
        store.write_now(|tx| put(tx, None, &u)).unwrap();
        let dup = User::new(
            &nid,
            UserKind::User,
            "a@x.test".into(),
            net.default_group_id.clone(),
        );
        let err = store.write_now(|tx| put(tx, None, &dup)).unwrap_err();
        assert_eq!(err.code, "email_taken");

        let c = |s| {
            store
                .read(|tx| counter_get(tx, &status_counter(&nid, UserKind::User, s)))
                .unwrap()
        };
        assert_eq!(c(UserStatus::Pending), 1);
        store
            .write_now(|tx| {
                let old = get(tx, &nid, UserKind::User, &u.id)?;
                set_suspended(tx, &old, true)
            })
            .unwrap();
        assert_eq!((c(UserStatus::Pending), c(UserStatus::Suspended)), (0, 1));

        let g = store
            .write_now(|tx| group::create(tx, &nid, Some("Field"), None))
            .unwrap();
        store
            .write_now(|tx| {
                let old = get(tx, &nid, UserKind::User, &u.id)?;
                let mut new = old.clone();
                new.group_id = g.id.clone();
                put(tx, Some(&old), &new)
            })
            .unwrap();
        let moved = store
            .write_now(|tx| group::delete(tx, &nid, &g.id, Some("confirm")))
            .unwrap();
        assert_eq!(moved, 1);
        let back = store
            .read(|tx| get(tx, &nid, UserKind::User, &u.id))
            .unwrap();
        assert_eq!(back.group_id, net.default_group_id);
        store.close();
    }

    #[test]
    fn locks_expire_through_the_sweeper() {
        let (_d, store, net) = setup();
        let nid = net.id.clone();
        let mut u = User::new(
            &nid,
            UserKind::User,
            "b@x.test".into(),
            net.default_group_id.clone(),
        );
        u.registered = true;
        store.write_now(|tx| put(tx, None, &u)).unwrap();
        for _ in 0..3 {
            store
                .write_now(|tx| {
                    let old = get(tx, &nid, UserKind::User, &u.id)?;
                    record_failed_login(tx, &old, 3, chrono::Duration::seconds(-1))
                })
                .unwrap();
        }
        let locked = store
            .read(|tx| get(tx, &nid, UserKind::User, &u.id))
            .unwrap();
        assert_eq!(locked.status(), UserStatus::Locked);
        let n = store
            .write_now(|tx| unlock_expired(tx, Utc::now()))
            .unwrap();
        assert_eq!(n, 1);
        let back = store
            .read(|tx| get(tx, &nid, UserKind::User, &u.id))
            .unwrap();
        assert_eq!(back.status(), UserStatus::Active);
        assert_eq!(back.failed_logins, 0);
        store.close();
    }
}
