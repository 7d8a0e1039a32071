//! What keeps a single sign-on device signed in, one record per device: the identity
//! provider's refresh token (a secret: stored, never logged or shown), the subject and
//! nonce of the sign-in, when the current ID token expires, when to refresh it next,
//! and since when refreshes fail. The refresher ([`super::refresh`]) reads and updates
//! these; a device without a record (signed in with a password, or an identity provider
//! that gave no refresh token) is not refreshed.

use super::kept::Kept;
use crate::error::Result;
use crate::store::{Table, Tx, schema};
use chrono::{DateTime, Duration, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;

const SESSIONS: Table<SsoSession> = Table::new(schema::SSO_SESSIONS);

/// Refresh at most this long before the ID token expires.
const REFRESH_LEAD: Duration = Duration::minutes(5);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SsoSession {
    pub device_id: String,
    pub user_id: String,
    pub network_id: String,
    /// The identity provider's `sub` for this person.
    pub subject: String,
    /// The nonce of the sign-in (a refreshed ID token may repeat it, nothing else).
    pub nonce: String,
    pub refresh_token: Kept,
    pub id_token_expires_at: DateTime<Utc>,
    /// Seconds the last ID token was valid for.
    pub lifetime_secs: i64,
    pub next_refresh_at: DateTime<Utc>,
    /// When refreshes started to fail because the identity provider could not be reached.
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub refreshed_at: Option<DateTime<Utc>>,
}

/// When to refresh an ID token valid from `issued` to `expires`: a quarter of its
/// lifetime before it expires, at most five minutes before.
pub fn refresh_time(issued: DateTime<Utc>, expires: DateTime<Utc>) -> DateTime<Utc> {
    let lifetime = (expires - issued).max(Duration::zero());
    expires - (lifetime / 4).min(REFRESH_LEAD)
}

pub fn put(tx: &WriteTransaction, s: &SsoSession) -> Result<()> {
    SESSIONS.put(tx, s.device_id.as_bytes(), s)
}

pub fn get<'a>(tx: impl Into<Tx<'a>>, device_id: &str) -> Result<Option<SsoSession>> {
    SESSIONS.get(tx, device_id.as_bytes())
}

pub fn delete(tx: &WriteTransaction, device_id: &str) -> Result<bool> {
    SESSIONS.delete(tx, device_id.as_bytes())
}

/// Every record whose refresh is due by `now`.
pub fn due<'a>(tx: impl Into<Tx<'a>>, now: DateTime<Utc>) -> Result<Vec<SsoSession>> {
    let mut out = Vec::new();
    SESSIONS.scan_prefix(tx, b"", None, false, |_, s| {
        if s.next_refresh_at <= now {
            out.push(s);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_come_before_expiry() {
        let t = Utc::now();
        assert_eq!(
            refresh_time(t, t + Duration::hours(1)),
            t + Duration::minutes(55)
        );
        assert_eq!(
            refresh_time(t, t + Duration::seconds(8)),
            t + Duration::seconds(6)
        );
    }
}
