//! TURN REST API credentials (draft-uberti-behave-turn-rest, as coturn's `--use-auth-secret`
//! and `turnutils_uclient -W` implement it): the username is `"{expiry_unix_secs}:{user_id}"`
//! and the password is `base64(HMAC-SHA1(secret, username))`. The appliance issues them per
//! call; the relay checks them. The shared secret rotates: after a rotation the previous
//! secret stays valid until its `valid_until`, so credentials issued just before still work.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// A shared secret (its bytes are never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The current secret and, during an overlap, the previous one with the Unix time (seconds)
/// until which it is still accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    pub current: Secret,
    pub previous: Option<(Secret, u64)>,
}

/// Credentials for one device's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    pub username: String,
    pub password: String,
    /// Unix seconds after which the username is refused.
    pub expires_at: u64,
}

/// Who a verified username belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedUser<'a> {
    pub user_id: &'a str,
    pub expires_at: u64,
}

/// Why credentials are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the TURN username is not \"expiry:user-id\"")]
    MalformedUsername,
    #[error("the TURN username expired at {expired_at}")]
    Expired { expired_at: u64 },
    #[error("the TURN password is wrong")]
    WrongPassword,
}

impl Secrets {
    pub fn new(current: Vec<u8>) -> Self {
        Secrets {
            current: Secret(current),
            previous: None,
        }
    }

    /// Makes `new` the current secret; the old one stays valid until `overlap_until`.
    pub fn rotate(&mut self, new: Vec<u8>, overlap_until: u64) {
        let old = std::mem::replace(&mut self.current, Secret(new));
        self.previous = Some((old, overlap_until));
    }

    /// The secrets accepted at `now`: the current one, then the previous during its overlap.
    pub fn valid_at(&self, now: u64) -> impl Iterator<Item = &Secret> {
        let previous = self
            .previous
            .as_ref()
            .filter(|(_, until)| now <= *until)
            .map(|(s, _)| s);
        std::iter::once(&self.current).chain(previous)
    }

    /// Issues credentials for `user_id` valid for `ttl_secs` from `now`, with the current
    /// secret.
    pub fn issue(&self, user_id: &str, now: u64, ttl_secs: u64) -> TurnCredentials {
        let expires_at = now.saturating_add(ttl_secs);
        let username = format!("{expires_at}:{user_id}");
        let password = password(&self.current, &username);
        TurnCredentials {
            username,
            password,
            expires_at,
        }
    }

    /// The passwords that `username` may carry at `now` (one per valid secret). The relay
    /// derives the long-term key from each to check MESSAGE-INTEGRITY, since a TURN client
    /// never sends its password.
    pub fn passwords<'s>(
        &'s self,
        username: &'s str,
        now: u64,
    ) -> Result<impl Iterator<Item = String> + 's, CredentialError> {
        check_expiry(username, now)?;
        Ok(self.valid_at(now).map(move |s| password(s, username)))
    }

    /// Checks a username and password pair at `now`.
    pub fn verify<'u>(
        &self,
        username: &'u str,
        password_given: &str,
        now: u64,
    ) -> Result<VerifiedUser<'u>, CredentialError> {
        let user = check_expiry(username, now)?;
        let mut ok = subtle::Choice::from(0);
        for s in self.valid_at(now) {
            ok |= password(s, username)
                .as_bytes()
                .ct_eq(password_given.as_bytes());
        }
        if bool::from(ok) {
            Ok(user)
        } else {
            Err(CredentialError::WrongPassword)
        }
    }
}

/// Splits a REST username into its expiry and user id (the id may itself contain ':').
pub fn parse_username(username: &str) -> Result<VerifiedUser<'_>, CredentialError> {
    let (expiry, user_id) = username
        .split_once(':')
        .ok_or(CredentialError::MalformedUsername)?;
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) || user_id.is_empty() {
        return Err(CredentialError::MalformedUsername);
    }
    let expires_at = expiry
        .parse()
        .map_err(|_| CredentialError::MalformedUsername)?;
    Ok(VerifiedUser {
        user_id,
        expires_at,
    })
}

fn check_expiry(username: &str, now: u64) -> Result<VerifiedUser<'_>, CredentialError> {
    let user = parse_username(username)?;
    if user.expires_at < now {
        return Err(CredentialError::Expired {
            expired_at: user.expires_at,
        });
    }
    Ok(user)
}

/// `base64(HMAC-SHA1(secret, username))`.
pub fn password(secret: &Secret, username: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&secret.0) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_base64_hmac_sha1_of_the_username() {
        // HMAC-SHA1 with key "key" over "The quick brown fox jumps over the lazy dog" is
        // de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9, the well-known HMAC-SHA1 example.
        let p = password(
            &Secret(b"key".to_vec()),
            "The quick brown fox jumps over the lazy dog",
        );
        assert_eq!(
            p,
            STANDARD.encode(hex::decode("de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9").unwrap())
        );
        assert_eq!(p.len(), 28);
    }

    #[test]
    fn issued_credentials_verify_until_they_expire() {
        let s = Secrets::new(b"north".to_vec());
        let c = s.issue("user-42", 1_000, 600);
        assert_eq!(c.username, "1600:user-42");
        assert_eq!(c.expires_at, 1_600);
        let u = s.verify(&c.username, &c.password, 1_000).unwrap();
        assert_eq!(
            u,
            VerifiedUser {
                user_id: "user-42",
                expires_at: 1_600
            }
        );
        assert!(s.verify(&c.username, &c.password, 1_600).is_ok());
        assert_eq!(
            s.verify(&c.username, &c.password, 1_601),
            Err(CredentialError::Expired { expired_at: 1_600 })
        );
        assert_eq!(
            s.verify(&c.username, "nope", 1_000),
            Err(CredentialError::WrongPassword)
        );
        // Changing the expiry invalidates the password.
        assert_eq!(
            s.verify("1700:user-42", &c.password, 1_000),
            Err(CredentialError::WrongPassword)
        );
    }

    #[test]
    fn malformed_usernames_are_refused() {
        let s = Secrets::new(b"k".to_vec());
        for u in [
            "",
            "alice",
            ":alice",
            "12a:alice",
            "-1:alice",
            "100:",
            "99999999999999999999999:a",
        ] {
            assert_eq!(
                s.verify(u, "x", 0),
                Err(CredentialError::MalformedUsername),
                "{u}"
            );
        }
        assert_eq!(parse_username("5:a:b").unwrap().user_id, "a:b");
    }

    #[test]
    fn the_previous_secret_is_valid_only_during_the_overlap() {
        let mut s = Secrets::new(b"old".to_vec());
        let before = s.issue("u", 100, 10_000);
        s.rotate(b"new".to_vec(), 500);
        let after = s.issue("u", 100, 10_000);
        assert_ne!(before.password, after.password);
        assert!(s.verify(&before.username, &before.password, 500).is_ok());
        assert_eq!(
            s.verify(&before.username, &before.password, 501),
            Err(CredentialError::WrongPassword)
        );
        assert!(s.verify(&after.username, &after.password, 501).is_ok());
        assert_eq!(s.passwords(&before.username, 200).unwrap().count(), 2);
        assert_eq!(s.passwords(&before.username, 600).unwrap().count(), 1);
        assert!(format!("{s:?}").contains("Secret(..)"));
        assert!(!format!("{s:?}").contains("110"));
    }
}
