//! Sign-ins in flight, kept in memory: the logins a client started (10 minutes, keyed by
//! the `state` sent to the identity provider) and the one-time grants the callback
//! issued (5 minutes, redeemed with the client's PKCE verifier). Both are bounded in
//! number and used once; a restart forgets them (the person starts again).
//!
//! Maps are keyed by the SHA-256 of the random value, never the value itself, and the
//! client's PKCE verifier is checked in constant time.

use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;

/// How long a started login waits for the identity provider's answer.
pub const LOGIN_LIFETIME: Duration = Duration::minutes(10);
/// How long a grant waits for its client.
pub const GRANT_LIFETIME: Duration = Duration::minutes(5);
/// The most logins, and the most grants, held at once.
pub const MAX_IN_FLIGHT: usize = 10_000;
/// Grant codes start with this.
pub const GRANT_PREFIX: &str = "osg_";

/// A login between `/api/v1/sso/start` and `/sso/callback`.
#[derive(Debug, Clone)]
pub struct Login {
    pub network_id: String,
    /// The configuration it began with (a changed configuration ends it).
    pub config_updated_at: DateTime<Utc>,
    /// Outpost's own PKCE verifier for the identity provider.
    pub pkce_verifier: super::kept::Kept,
    pub nonce: String,
    /// The client's S256 challenge (its verifier redeems the grant).
    pub client_challenge: String,
    /// The client's loopback listener, if it gave one.
    pub client_redirect: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// What keeps an SSO device signed in, known once the identity provider answered.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub subject: String,
    pub nonce: String,
    pub refresh_token: Option<super::kept::Kept>,
    pub id_token_expires_at: DateTime<Utc>,
    pub id_token_issued_at: DateTime<Utc>,
}

/// A one-time grant between `/sso/callback` and `/api/v1/sso/token`.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user_id: String,
    pub network_id: String,
    pub client_challenge: String,
    pub tokens: Tokens,
    pub expires_at: DateTime<Utc>,
}

fn key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A random URL-safe value of 256 bits.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The S256 challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `challenge` looks like an S256 challenge: 43 base64url characters.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` is a well-formed PKCE verifier whose S256 is `challenge`, in
/// constant time.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let same: bool = s256(verifier).as_bytes().ct_eq(challenge.as_bytes()).into();
    well_formed & same
}

fn busy() -> Error {
    Error::unavailable(
        "sso_busy",
        "too many single sign-ons are in progress; try again in a minute",
    )
    .with_retry_after(60)
}

/// A bounded map of one-time entries that expire.
struct Slots<T>(Mutex<HashMap<[u8; 32], T>>);

impl<T: Clone> Slots<T> {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], T>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, secret: &str, v: T, expires: impl Fn(&T) -> DateTime<Utc>) -> Result<()> {
        let mut m = self.map();
        if m.len() >= MAX_IN_FLIGHT {
            let now = Utc::now();
            m.retain(|_, e| expires(e) > now);
            if m.len() >= MAX_IN_FLIGHT {
                return Err(busy());
            }
        }
        m.insert(key(secret), v);
        Ok(())
    }

    /// The entry (removed: it is used once), unless it expired.
    fn take(&self, secret: &str, expires: impl Fn(&T) -> DateTime<Utc>) -> Option<T> {
        let v = self.map().remove(&key(secret))?;
        (expires(&v) > Utc::now()).then_some(v)
    }
}

/// Logins and grants in flight.
pub struct Pending {
    logins: Slots<Login>,
    grants: Slots<Grant>,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            logins: Slots(Mutex::default()),
            grants: Slots(Mutex::default()),
        }
    }
}

impl Pending {
    /// Keep a started login under its `state`.
    pub fn add_login(&self, state: &str, l: Login) -> Result<()> {
        self.logins.add(state, l, |l| l.expires_at)
    }

    /// The login of `state`, once.
    pub fn take_login(&self, state: &str) -> Option<Login> {
        self.logins.take(state, |l| l.expires_at)
    }

    /// Issue a grant; returns its one-time code.
    pub fn add_grant(&self, g: Grant) -> Result<String> {
        let code = format!("{GRANT_PREFIX}{}", random_token());
        self.grants.add(&code, g, |g| g.expires_at)?;
        Ok(code)
    }

    /// The grant of `code`, once.
    pub fn take_grant(&self, code: &str) -> Option<Grant> {
        self.grants.take(code, |g| g.expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_verifiers_are_checked_against_their_challenge() {
        // RFC 7636 appendix B.
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256(v), c);
        assert!(is_s256_challenge(c));
        assert!(verifier_matches(v, c));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            c
        ));
        assert!(!verifier_matches("short", &s256("short")));
    }

    #[test]
    fn entries_are_used_once_and_expire() {
        let p = Pending::default();
        let l = Login {
            network_id: "12345678".into(),
            config_updated_at: Utc::now(),
            pkce_verifier: super::super::kept::Kept::new(random_token()),
            nonce: random_token(),
            client_challenge: s256("x"),
            client_redirect: None,
            expires_at: Utc::now() + LOGIN_LIFETIME,
        };
        p.add_login("state-1", l.clone()).unwrap();
        assert!(p.take_login("state-1").is_some());
        assert!(p.take_login("state-1").is_none());
        let old = Login {
            expires_at: Utc::now() - Duration::seconds(1),
            ..l
        };
        p.add_login("state-2", old).unwrap();
        assert!(p.take_login("state-2").is_none());
    }
}
