//! Admin sessions: bearer tokens for the API and CLI (and, later, the console's
//! cookie, which carries the same kind of token).
//!
//! A session is stored under the SHA-256 of its token, with an absolute expiry.
//! Looking one up tells apart a token that never existed (forged or revoked) from
//! one that expired, so clients get `token_invalid` or `token_expired`.

use super::admin::{self, Admin};
use super::password;
use crate::error::{Error, Result};
use crate::store::{Table, Tx, schema};
use chrono::{DateTime, Duration, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;

pub(crate) const SESSIONS: Table<Session> = Table::new(schema::ADMIN_SESSIONS);
/// Prefix of admin tokens, so secret scanners can recognize them.
pub const TOKEN_PREFIX: &str = "oa_";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub admin_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub source: String,
    pub user_agent: String,
}

/// Start a session for `admin`; returns the token (shown once) and the session.
pub fn create(
    tx: &WriteTransaction,
    admin: &Admin,
    ttl: Duration,
    source: &str,
    user_agent: &str,
) -> Result<(String, Session)> {
    let (token, hash) = password::new_token(TOKEN_PREFIX);
    let now = Utc::now();
    let s = Session {
        admin_id: admin.id.clone(),
        created_at: now,
        expires_at: now + ttl,
        source: source.chars().take(64).collect(),
        user_agent: user_agent.chars().take(256).collect(),
    };
    SESSIONS.put(tx, hash.as_bytes(), &s)?;
    Ok((token, s))
}

/// The session and admin behind `token`, or why there is none.
pub fn lookup<'a>(tx: impl Into<Tx<'a>>, token: &str) -> Result<(String, Session, Admin)> {
    let tx = tx.into();
    let invalid = || {
        Error::unauthorized(
            "token_invalid",
            "the token is not valid (it was never issued, or it was revoked); sign in again",
        )
    };
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Err(invalid());
    }
    let key = password::token_hash(token);
    let s = SESSIONS.get(tx, key.as_bytes())?.ok_or_else(invalid)?;
    if s.expires_at <= Utc::now() {
        return Err(Error::unauthorized(
            "token_expired",
            format!(
                "the session expired at {}; sign in again",
                s.expires_at.to_rfc3339()
            ),
        ));
    }
    let a = admin::get(tx, &s.admin_id).map_err(|_| invalid())?;
    Ok((key, s, a))
}

/// End the session stored under `key` (the token's hash).
pub fn delete(tx: &WriteTransaction, key: &str) -> Result<bool> {
    SESSIONS.delete(tx, key.as_bytes())
}

/// End every session of an admin except `keep` (a token hash).
pub fn delete_all_for(tx: &WriteTransaction, admin_id: &str, keep: Option<&str>) -> Result<u64> {
    let mut doomed = Vec::new();
    SESSIONS.scan_prefix(tx, b"", None, false, |k, s| {
        if s.admin_id == admin_id && Some(k) != keep.map(str::as_bytes) {
            doomed.push(k.to_vec());
        }
        Ok(ControlFlow::Continue(()))
    })?;
    for k in &doomed {
        SESSIONS.delete(tx, k)?;
    }
    Ok(doomed.len() as u64)
}

/// How long an expired session is kept, so its token is reported as expired
/// (rather than unknown) when someone comes back with it.
pub const KEEP_EXPIRED: Duration = Duration::days(7);

/// Remove sessions that expired more than [`KEEP_EXPIRED`] ago; returns how many.
pub fn purge_expired(tx: &WriteTransaction, now: DateTime<Utc>) -> Result<u64> {
    let mut doomed = Vec::new();
    SESSIONS.scan_prefix(tx, b"", None, false, |k, s| {
        if s.expires_at + KEEP_EXPIRED <= now {
            doomed.push(k.to_vec());
        }
        Ok(ControlFlow::Continue(()))
    })?;
    for k in &doomed {
        SESSIONS.delete(tx, k)?;
    }
    Ok(doomed.len() as u64)
}
