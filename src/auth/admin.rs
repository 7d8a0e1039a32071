//! Admin accounts: separate from users (console and API only), each with a role.
//!
//! The owner created on first start may be followed by any number of admins,
//! auditors and compliance officers. Rules that protect the appliance: the last owner
//! can be neither deleted nor demoted, nobody deletes their own account, and an admin
//! or compliance officer names the networks they may act in. Failed sign-ins lock an
//! account for a while; the owner can unlock it.

use super::permission::Role;
use crate::directory::{network, validate};
use crate::error::{Error, FieldProblem, Result};
use crate::store::{RawTable, Table, Tx, schema};
use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use utoipa::ToSchema;

pub(crate) const ADMINS: Table<Admin> = Table::new(schema::ADMINS);
const BY_NAME: RawTable = RawTable::new(schema::ADMINS_BY_NAME);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Admin {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    /// Networks an `admin` or `compliance` account may act in.
    #[serde(default)]
    pub networks: Vec<String>,
    /// The password was issued (first start, reset by the owner) and must be changed.
    pub must_change_password: bool,
    #[serde(default)]
    pub failed_logins: u32,
    #[serde(default)]
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub last_login_at: Option<DateTime<Utc>>,
}

/// An admin account as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AdminView {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub networks: Vec<String>,
    pub must_change_password: bool,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl Admin {
    pub fn view(&self) -> AdminView {
        AdminView {
            id: self.id.clone(),
            username: self.username.clone(),
            role: self.role,
            networks: self.networks.clone(),
            must_change_password: self.must_change_password,
            locked_until: self.locked_until.filter(|t| *t > Utc::now()),
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_login_at: self.last_login_at,
        }
    }

    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }

    /// May this account act in `network_id`?
    pub fn reaches(&self, network_id: &str) -> bool {
        !self.role.is_network_scoped() || self.networks.iter().any(|n| n == network_id)
    }
}

/// Check an admin username: 3–64 of letters, digits, `.`, `_`, `-`, `@`.
pub fn check_username(raw: &str) -> std::result::Result<String, String> {
    let u = raw.trim().to_lowercase();
    if u.len() < 3 || u.len() > 64 {
        return Err("must be 3 to 64 characters long".into());
    }
    if !u
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err("may hold only letters, digits, '.', '_', '-' and '@'".into());
    }
    Ok(u)
}

fn with_article(role: Role) -> &'static str {
    match role {
        Role::Owner => "an owner",
        Role::Admin => "an admin",
        Role::Auditor => "an auditor",
        Role::Compliance => "a compliance",
    }
}

pub fn get<'a>(tx: impl Into<Tx<'a>>, id: &str) -> Result<Admin> {
    let missing = || {
        Error::not_found(
            "admin_not_found",
            format!("there is no admin with id {id:?}"),
        )
    };
    if !validate::is_record_id(id) {
        return Err(missing());
    }
    ADMINS.get(tx, id.as_bytes())?.ok_or_else(missing)
}

pub fn by_username<'a>(tx: impl Into<Tx<'a>>, username: &str) -> Result<Option<Admin>> {
    let tx = tx.into();
    let name = username.trim().to_lowercase();
    match BY_NAME.get(tx, name.as_bytes())? {
        Some(id) => ADMINS.get(tx, &id),
        None => Ok(None),
    }
}

pub fn list<'a>(tx: impl Into<Tx<'a>>) -> Result<Vec<Admin>> {
    let mut out = Vec::new();
    ADMINS.scan_prefix(tx, b"", None, false, |_, a| {
        out.push(a);
        Ok(ControlFlow::Continue(()))
    })?;
    out.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(out)
}

fn check_networks<'a>(
    tx: impl Into<Tx<'a>>,
    role: Role,
    networks: &[String],
) -> Result<Vec<String>> {
    let tx = tx.into();
    let mut out: Vec<String> = Vec::new();
    for n in networks {
        network::get(tx, n).map_err(|_| {
            Error::validation(vec![FieldProblem::new(
                "networks",
                format!("there is no network with id {n:?}"),
            )])
        })?;
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    if !role.is_network_scoped() && !out.is_empty() {
        return Err(Error::validation(vec![FieldProblem::new(
            "networks",
            format!(
                "{} reaches every network; leave networks empty",
                with_article(role)
            ),
        )]));
    }
    if role.is_network_scoped() && out.is_empty() {
        return Err(Error::validation(vec![FieldProblem::new(
            "networks",
            format!("{} account needs at least one network", with_article(role)),
        )]));
    }
    Ok(out)
}

/// Create an admin account with an already-hashed password.
pub fn create(
    tx: &WriteTransaction,
    username: &str,
    password_hash: String,
    role: Role,
    networks: &[String],
    must_change_password: bool,
) -> Result<Admin> {
    let username = check_username(username)
        .map_err(|e| Error::validation(vec![FieldProblem::new("username", e)]))?;
    let networks = check_networks(tx, role, networks)?;
    if by_username(tx, &username)?.is_some() {
        return Err(Error::conflict(
            "admin_username_taken",
            format!("there is already an admin named {username}"),
        ));
    }
    let now = Utc::now();
    let a = Admin {
        id: uuid::Uuid::now_v7().to_string(),
        username,
        password_hash,
        role,
        networks,
        must_change_password,
        failed_logins: 0,
        locked_until: None,
        created_at: now,
        updated_at: now,
        last_login_at: None,
    };
    BY_NAME.put(tx, a.username.as_bytes(), a.id.as_bytes())?;
    ADMINS.put(tx, a.id.as_bytes(), &a)?;
    Ok(a)
}

pub fn save(tx: &WriteTransaction, mut a: Admin) -> Result<Admin> {
    a.updated_at = Utc::now();
    ADMINS.put(tx, a.id.as_bytes(), &a)?;
    Ok(a)
}

fn owners<'a>(tx: impl Into<Tx<'a>>) -> Result<usize> {
    Ok(list(tx)?.iter().filter(|a| a.role == Role::Owner).count())
}

/// Change role and/or networks, keeping at least one owner.
pub fn set_role(
    tx: &WriteTransaction,
    id: &str,
    role: Option<Role>,
    networks: Option<&[String]>,
) -> Result<Admin> {
    let mut a = get(tx, id)?;
    let new_role = role.unwrap_or(a.role);
    if a.role == Role::Owner && new_role != Role::Owner && owners(tx)? <= 1 {
        return Err(Error::conflict(
            "last_owner",
            "this is the only owner; make another admin an owner first",
        ));
    }
    let nets = match networks {
        Some(n) => n.to_vec(),
        None if new_role.is_network_scoped() => a.networks.clone(),
        None => Vec::new(),
    };
    a.networks = check_networks(tx, new_role, &nets)?;
    a.role = new_role;
    save(tx, a)
}

/// Delete an account; never the caller's own, never the last owner.
pub fn delete(tx: &WriteTransaction, id: &str, caller_id: &str) -> Result<Admin> {
    let a = get(tx, id)?;
    if a.id == caller_id {
        return Err(Error::conflict(
            "cannot_delete_self",
            "you cannot delete your own admin account; sign in as another owner to do it",
        ));
    }
    if a.role == Role::Owner && owners(tx)? <= 1 {
        return Err(Error::conflict(
            "last_owner",
            "the last owner cannot be deleted",
        ));
    }
    super::session::delete_all_for(tx, &a.id, None)?;
    BY_NAME.delete(tx, a.username.as_bytes())?;
    ADMINS.delete(tx, a.id.as_bytes())?;
    Ok(a)
}

/// Forget a deleted network in every admin's assignment list.
pub fn forget_network(tx: &WriteTransaction, network_id: &str) -> Result<()> {
    for mut a in list(tx)? {
        if a.networks.iter().any(|n| n == network_id) {
            a.networks.retain(|n| n != network_id);
            save(tx, a)?;
        }
    }
    Ok(())
}

/// Record a failed sign-in; lock at `threshold` consecutive failures for `lock_for`.
pub fn record_failure(
    tx: &WriteTransaction,
    id: &str,
    threshold: u32,
    lock_for: chrono::Duration,
) -> Result<Admin> {
    let mut a = get(tx, id)?;
    a.failed_logins = a.failed_logins.saturating_add(1);
    if a.failed_logins >= threshold {
        a.locked_until = Some(Utc::now() + lock_for);
        a.failed_logins = 0;
    }
    save(tx, a)
}

/// Record a successful sign-in.
pub fn record_success(tx: &WriteTransaction, id: &str) -> Result<Admin> {
    let mut a = get(tx, id)?;
    a.failed_logins = 0;
    a.locked_until = None;
    a.last_login_at = Some(Utc::now());
    save(tx, a)
}
