//! One-time registration links (PRODUCT.md F4): an invited (pending) user gets a token,
//! valid 7 days, that opens `/invite/{token}` once. Only the token's SHA-256 is stored,
//! so the store (or a backup of it) holds no working link. Inviting the user again
//! revokes the previous link; registering uses it up.

use crate::error::{Error, Result};
use crate::store::{RawTable, Table, Tx, schema};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const INVITATIONS: Table<Invitation> = Table::new(schema::INVITATIONS);
const BY_USER: RawTable = RawTable::new(schema::USER_INVITATIONS);

/// How long a registration link works.
pub const VALID_DAYS: i64 = 7;
/// Registration tokens start with this.
pub const TOKEN_PREFIX: &str = "oi_";

/// A registration link's record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Invitation {
    pub user_id: String,
    pub network_id: String,
    /// The admin who invited (username).
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Why a link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// Never issued, revoked by a re-invitation, already used, or mistyped.
    Unknown,
    Expired,
}

impl LinkProblem {
    pub fn error(self) -> Error {
        match self {
            LinkProblem::Unknown => Error::not_found(
                "invitation_invalid",
                "this registration link is not valid: it was used already, replaced by a newer \
                 invitation, or mistyped; ask your administrator to invite you again",
            ),
            LinkProblem::Expired => Error::not_found(
                "invitation_expired",
                "this registration link expired (links work for 7 days); ask your administrator \
                 to invite you again",
            ),
        }
    }
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Issues a link for `user_id`, revoking the previous one. Returns the token (shown or
/// mailed once, never stored) and the record.
pub fn issue(
    tx: &WriteTransaction,
    user_id: &str,
    network_id: &str,
    invited_by: &str,
    now: DateTime<Utc>,
) -> Result<(String, Invitation)> {
    revoke(tx, user_id)?;
    let raw: [u8; 32] = rand::random();
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
    let inv = Invitation {
        user_id: user_id.to_string(),
        network_id: network_id.to_string(),
        invited_by: invited_by.to_string(),
        created_at: now,
        expires_at: now + Duration::days(VALID_DAYS),
    };
    let h = hash(&token);
    INVITATIONS.put(tx, &h, &inv)?;
    BY_USER.put(tx, user_id.as_bytes(), &h)?;
    Ok((token, inv))
}

/// Revokes the user's live link, if any (re-invitation, registration, deletion).
pub fn revoke(tx: &WriteTransaction, user_id: &str) -> Result<()> {
    if let Some(h) = BY_USER.get(tx, user_id.as_bytes())? {
        INVITATIONS.delete(tx, &h)?;
        BY_USER.delete(tx, user_id.as_bytes())?;
    }
    Ok(())
}

/// The live invitation a token opens.
pub fn open<'a>(
    tx: impl Into<Tx<'a>>,
    token: &str,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Invitation, LinkProblem>> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
        return Ok(Err(LinkProblem::Unknown));
    }
    Ok(match INVITATIONS.get(tx, &hash(token))? {
        None => Err(LinkProblem::Unknown),
        Some(inv) if inv.expires_at <= now => Err(LinkProblem::Expired),
        Some(inv) => Ok(inv),
    })
}

/// The expiry of the user's live link, if any.
pub fn of_user<'a>(tx: impl Into<Tx<'a>> + Copy, user_id: &str) -> Result<Option<Invitation>> {
    match BY_USER.get(tx, user_id.as_bytes())? {
        Some(h) => INVITATIONS.get(tx, &h),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::store::Store;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_link_opens_until_it_expires_and_a_reinvitation_revokes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), &StoreConfig::default()).unwrap();
        let now = Utc::now();
        let (first, inv) = store
            .write(move |tx| issue(tx, "u1", "12345678", "owner", now))
            .await
            .unwrap();
        assert!(first.starts_with("oi_") && first.len() == 3 + 43);
        assert_eq!(inv.expires_at, now + Duration::days(7));
        let t = first.clone();
        let opened = store.read(|tx| open(tx, &t, now)).unwrap();
        assert_eq!(opened, Ok(inv.clone()));
        let t = first.clone();
        let later = now + Duration::days(7);
        assert_eq!(
            store.read(|tx| open(tx, &t, later)).unwrap(),
            Err(LinkProblem::Expired)
        );
        // A forged or mistyped token opens nothing.
        let forged = format!("{}x", &first[..first.len() - 1]);
        assert_eq!(
            store.read(|tx| open(tx, &forged, now)).unwrap(),
            Err(LinkProblem::Unknown)
        );
        assert_eq!(
            store.read(|tx| open(tx, "garbage", now)).unwrap(),
            Err(LinkProblem::Unknown)
        );
        // Inviting again revokes the first link.
        let (second, _) = store
            .write(move |tx| issue(tx, "u1", "12345678", "owner", now))
            .await
            .unwrap();
        let t = first.clone();
        assert_eq!(
            store.read(|tx| open(tx, &t, now)).unwrap(),
            Err(LinkProblem::Unknown)
        );
        let t = second.clone();
        assert!(store.read(|tx| open(tx, &t, now)).unwrap().is_ok());
        store.write(|tx| revoke(tx, "u1")).await.unwrap();
        let t = second.clone();
        assert_eq!(
            store.read(|tx| open(tx, &t, now)).unwrap(),
            Err(LinkProblem::Unknown)
        );
    }
}
