//! Passwords and bearer tokens.
//!
//! Passwords are hashed with argon2id (the argon2 crate's defaults: 19 MiB, 2 passes,
//! 1 lane — OWASP's recommendation) into PHC strings. Tokens are 256 random bits;
//! only their SHA-256 is stored, and lookups by hash make comparisons independent of
//! how much of a guess matches.

use crate::error::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use rand::Rng;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// Hash `password` with argon2id and a random salt.
pub fn hash(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::internal(format!("cannot encode a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("cannot hash a password: {e}")))
}

/// True if `password` matches the PHC string `phc`.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash("outpost-dummy-password").expect("hashing works"));

/// Spend the same time as a real verification, for accounts that do not exist,
/// so response times do not reveal which usernames are taken.
pub fn verify_dummy(password: &str) {
    let _ = verify(password, &DUMMY_HASH);
}

const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A random password of `len` characters without look-alike characters.
pub fn random_password(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new bearer token with `prefix`, and the hash to store for it.
pub fn new_token(prefix: &str) -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    let token = format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let h = token_hash(&token);
    (token, h)
}

/// The stored form of a token: SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The rule for admin passwords: 12 to 1024 characters, not the username.
pub fn admin_password_problem(username: &str, password: &str) -> Option<String> {
    let n = password.chars().count();
    if n < 12 {
        return Some("must be at least 12 characters long".into());
    }
    if n > 1024 {
        return Some("must be at most 1024 characters long".into());
    }
    if password.eq_ignore_ascii_case(username) {
        return Some("must not be the username".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterx", &h));
        assert!(!verify("x", "not a phc string"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token("oa_");
        let (b, _) = new_token("oa_");
        assert_ne!(a, b);
        assert!(a.starts_with("oa_") && a.len() == 46);
        assert_eq!(token_hash(&a), ha);
        assert_eq!(random_password(20).len(), 20);
    }
}
