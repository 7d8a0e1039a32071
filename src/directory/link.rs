//! One-time links (PRODUCT.md F4): an invitation (`/invite/{token}`, valid 7 days) lets
//! a pending user register; a password reset (`/reset/{token}`, valid 24 hours) lets a
//! user choose a new password. Only a token's SHA-256 is stored, so the store (or a
//! backup of it) holds no working link. Issuing a link revokes the user's previous link
//! of the same purpose; using it, or revoking it, ends it.

use crate::error::{Error, Result};
use crate::store::{RawTable, Table, Tx, schema};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const LINKS: Table<Link> = Table::new(schema::INVITATIONS);
const BY_USER: RawTable = RawTable::new(schema::USER_INVITATIONS);

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Register (a pending user): 7 days, `oi_…`.
    Invitation,
    /// Choose a new password: 24 hours, `or_…`.
    PasswordReset,
}

impl Purpose {
    fn prefix(self) -> &'static str {
        match self {
            Purpose::Invitation => "oi_",
            Purpose::PasswordReset => "or_",
        }
    }

    /// How long a link works.
    pub fn lifetime(self) -> Duration {
        match self {
            Purpose::Invitation => Duration::days(7),
            Purpose::PasswordReset => Duration::hours(24),
        }
    }

    fn tag(self) -> u8 {
        match self {
            Purpose::Invitation => b'i',
            Purpose::PasswordReset => b'r',
        }
    }
}

/// A link's record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Link {
    pub purpose: Purpose,
    pub user_id: String,
    pub network_id: String,
    /// Who asked for it: the inviting admin's username, or `self` for a reset the user
    /// asked for.
    pub issued_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

fn user_key(purpose: Purpose, user_id: &str) -> Vec<u8> {
    let mut k = vec![purpose.tag()];
    k.extend_from_slice(user_id.as_bytes());
    k
}

/// Why a link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// Never issued, replaced by a newer link, already used, or mistyped.
    Unknown(Purpose),
    Expired(Purpose),
}

impl LinkProblem {
    pub fn error(self) -> Error {
        match self {
            LinkProblem::Unknown(Purpose::Invitation) => Error::not_found(
                "invitation_invalid",
                "this registration link is not valid: it was used already, replaced by a newer \
                 invitation, or mistyped; ask your administrator to invite you again",
            ),
            LinkProblem::Expired(Purpose::Invitation) => Error::not_found(
                "invitation_expired",
                "this registration link expired (links work for 7 days); ask your administrator \
                 to invite you again",
            ),
            LinkProblem::Unknown(Purpose::PasswordReset) => Error::not_found(
                "reset_link_invalid",
                "this password reset link is not valid: it was used already, replaced by a newer \
                 one, or mistyped; ask for a new one",
            ),
            LinkProblem::Expired(Purpose::PasswordReset) => Error::not_found(
                "reset_link_expired",
                "this password reset link expired (links work for 24 hours); ask for a new one",
            ),
        }
    }
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Issues a `purpose` link for `user_id`, revoking the user's previous one of that
/// purpose. Returns the token (shown or mailed once, never stored) and the record.
pub fn issue(
    tx: &WriteTransaction,
    purpose: Purpose,
    user_id: &str,
    network_id: &str,
    issued_by: &str,
    now: DateTime<Utc>,
) -> Result<(String, Link)> {
    revoke(tx, purpose, user_id)?;
    let raw: [u8; 32] = rand::random();
    let token = format!("{}{}", purpose.prefix(), URL_SAFE_NO_PAD.encode(raw));
    let link = Link {
        purpose,
        user_id: user_id.to_string(),
        network_id: network_id.to_string(),
        issued_by: issued_by.to_string(),
        created_at: now,
        expires_at: now + purpose.lifetime(),
    };
    let h = hash(&token);
    LINKS.put(tx, &h, &link)?;
    BY_USER.put(tx, &user_key(purpose, user_id), &h)?;
    Ok((token, link))
}

/// Revokes the user's live `purpose` link, if any.
pub fn revoke(tx: &WriteTransaction, purpose: Purpose, user_id: &str) -> Result<()> {
    let k = user_key(purpose, user_id);
    if let Some(h) = BY_USER.get(tx, &k)? {
        LINKS.delete(tx, &h)?;
        BY_USER.delete(tx, &k)?;
    }
    Ok(())
}

/// The user's current `purpose` link, if one was issued and not used, replaced or
/// revoked since (it may have expired: compare `expires_at`).
pub fn current<'a>(tx: impl Into<Tx<'a>>, purpose: Purpose, user_id: &str) -> Result<Option<Link>> {
    let tx = tx.into();
    match BY_USER.get(tx, &user_key(purpose, user_id))? {
        Some(h) => LINKS.get(tx, &h),
        None => Ok(None),
    }
}

/// The live `purpose` link a token opens.
pub fn open<'a>(
    tx: impl Into<Tx<'a>>,
    purpose: Purpose,
    token: &str,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Link, LinkProblem>> {
    if !token.starts_with(purpose.prefix()) || token.len() > 200 {
        return Ok(Err(LinkProblem::Unknown(purpose)));
    }
    Ok(match LINKS.get(tx, &hash(token))? {
        Some(l) if l.purpose != purpose => Err(LinkProblem::Unknown(purpose)),
        None => Err(LinkProblem::Unknown(purpose)),
        Some(l) if l.expires_at <= now => Err(LinkProblem::Expired(purpose)),
        Some(l) => Ok(l),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::store::Store;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_link_opens_until_it_expires_and_a_new_one_revokes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), &StoreConfig::default()).unwrap();
        let now = Utc::now();
        let (first, inv) = store
            .write(move |tx| issue(tx, Purpose::Invitation, "u1", "12345678", "owner", now))
            .await
            .unwrap();
        assert!(first.starts_with("oi_") && first.len() == 3 + 43);
        assert_eq!(inv.expires_at, now + Duration::days(7));
        let t = first.clone();
        let opened = store
            .read(|tx| open(tx, Purpose::Invitation, &t, now))
            .unwrap();
        assert_eq!(opened, Ok(inv.clone()));
        let t = first.clone();
        let later = now + Duration::days(7);
        assert_eq!(
            store
                .read(|tx| open(tx, Purpose::Invitation, &t, later))
                .unwrap(),
            Err(LinkProblem::Expired(Purpose::Invitation))
        );
        // A forged or mistyped token opens nothing.
        let forged = format!("{}x", &first[..first.len() - 1]);
        assert_eq!(
            store
                .read(|tx| open(tx, Purpose::Invitation, &forged, now))
                .unwrap(),
            Err(LinkProblem::Unknown(Purpose::Invitation))
        );
        assert_eq!(
            store
                .read(|tx| open(tx, Purpose::Invitation, "garbage", now))
                .unwrap(),
            Err(LinkProblem::Unknown(Purpose::Invitation))
        );
        // Inviting again revokes the first link.
        let (second, _) = store
            .write(move |tx| issue(tx, Purpose::Invitation, "u1", "12345678", "owner", now))
            .await
            .unwrap();
        let t = first.clone();
        assert_eq!(
            store
                .read(|tx| open(tx, Purpose::Invitation, &t, now))
                .unwrap(),
            Err(LinkProblem::Unknown(Purpose::Invitation))
        );
        let t = second.clone();
        assert!(
            store
                .read(|tx| open(tx, Purpose::Invitation, &t, now))
                .unwrap()
                .is_ok()
        );
        store
            .write(|tx| revoke(tx, Purpose::Invitation, "u1"))
            .await
            .unwrap();
        // A reset link of the same user is another purpose: it does not open invitations.
        let (reset, _) = store
            .write(move |tx| issue(tx, Purpose::PasswordReset, "u1", "12345678", "self", now))
            .await
            .unwrap();
        assert!(reset.starts_with("or_"));
        let t = reset.clone();
        assert_eq!(
            store
                .read(|tx| open(tx, Purpose::Invitation, &t, now))
                .unwrap(),
            Err(LinkProblem::Unknown(Purpose::Invitation))
        );
        let t = reset.clone();
        assert!(
            store
                .read(|tx| open(tx, Purpose::PasswordReset, &t, now))
                .unwrap()
                .is_ok()
        );
        let t = second.clone();
        assert_eq!(
            store
                .read(|tx| open(tx, Purpose::Invitation, &t, now))
                .unwrap(),
            Err(LinkProblem::Unknown(Purpose::Invitation))
        );
    }
}
