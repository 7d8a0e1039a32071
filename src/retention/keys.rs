//! The compliance key pair of a network, sealed at rest with the retention passphrase.
//!
//! The pair is the same kind a device has (X25519 for HPKE, Ed25519), generated when
//! retention is first enabled. Its secrets never touch the disk in clear: they are
//! encrypted with AES-256-GCM under a key derived from the passphrase with argon2id
//! (64 MiB, 3 passes, random 16-byte salt), the network id and public keys bound in as
//! associated data, and kept in the store's meta table under `retention.keys.<network>`.
//! Deleting a network leaves them (and the journal) in place.

use crate::client::crypto::DeviceKeys;
use crate::config::Secret;
use crate::error::{Error, Result};
use crate::store::{self, Tx};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const M_KIB: u32 = 64 * 1024;
const T: u32 = 3;
const P: u32 = 1;

/// The sealed pair as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedKeys {
    pub network_id: String,
    /// Public keys, base64.
    pub x25519: String,
    pub ed25519: String,
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
    pub salt: String,
    pub nonce: String,
    /// AES-256-GCM of the X25519 secret ‖ the Ed25519 seed (64 bytes) and its tag.
    pub sealed: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn meta_key(network_id: &str) -> String {
    format!("retention.keys.{network_id}")
}

fn aad(network_id: &str, x: &str, e: &str) -> Vec<u8> {
    format!("outpost/1 retention key\0{network_id}\0{x}\0{e}").into_bytes()
}

fn derive(passphrase: &Secret, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(m, t, p, Some(32))
        .map_err(|e| Error::internal(format!("argon2 parameters: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase.expose().as_bytes(), salt, &mut *out)
        .map_err(|e| Error::internal(format!("argon2: {e}")))?;
    Ok(out)
}

/// Seal `keys` for `network_id` with `passphrase`.
pub fn seal(keys: &DeviceKeys, network_id: &str, passphrase: &Secret) -> Result<SealedKeys> {
    let mut rng = rand::rng();
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut nonce);
    let x = B64.encode(keys.x25519_public());
    let e = B64.encode(keys.ed25519_public());
    let k = derive(passphrase, &salt, M_KIB, T, P)?;
    let mut secret = Zeroizing::new([0u8; 64]);
    secret[..32].copy_from_slice(&keys.x25519_secret());
    secret[32..].copy_from_slice(&keys.ed25519_seed());
    let cipher = Aes256Gcm::new_from_slice(&*k).map_err(|_| Error::internal("aes key"))?;
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &*secret,
                aad: &aad(network_id, &x, &e),
            },
        )
        .map_err(|_| Error::internal("sealing the compliance key failed"))?;
    Ok(SealedKeys {
        network_id: network_id.to_string(),
        x25519: x,
        ed25519: e,
        m_kib: M_KIB,
        t: T,
        p: P,
        salt: B64.encode(salt),
        nonce: B64.encode(nonce),
        sealed: B64.encode(sealed),
        created_at: chrono::Utc::now(),
    })
}

/// The error a passphrase that does not open the keys gives.
pub fn wrong_passphrase(network_id: &str) -> Error {
    Error::conflict(
        "retention_passphrase_wrong",
        format!(
            "the retention passphrase does not open the compliance key of network {network_id}: \
             set the passphrase the key was sealed with (retention.passphrase, \
             OUTPOST_RETENTION_PASSPHRASE or the retention-passphrase credential)"
        ),
    )
}

/// Open sealed keys with `passphrase`.
pub fn open(s: &SealedKeys, passphrase: &Secret) -> Result<DeviceKeys> {
    let bad = || {
        Error::internal(format!(
            "the sealed compliance key of network {} is unreadable",
            s.network_id
        ))
    };
    let salt = B64.decode(&s.salt).map_err(|_| bad())?;
    let nonce = B64.decode(&s.nonce).map_err(|_| bad())?;
    let sealed = B64.decode(&s.sealed).map_err(|_| bad())?;
    if nonce.len() != 12 {
        return Err(bad());
    }
    let k = derive(passphrase, &salt, s.m_kib, s.t, s.p)?;
    let cipher = Aes256Gcm::new_from_slice(&*k).map_err(|_| bad())?;
    let secret = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: &aad(&s.network_id, &s.x25519, &s.ed25519),
                },
            )
            .map_err(|_| wrong_passphrase(&s.network_id))?,
    );
    if secret.len() != 64 {
        return Err(bad());
    }
    let mut x = [0u8; 32];
    let mut e = [0u8; 32];
    x.copy_from_slice(&secret[..32]);
    e.copy_from_slice(&secret[32..]);
    let keys = DeviceKeys::from_secrets(x, e);
    if B64.encode(keys.x25519_public()) != s.x25519 {
        return Err(bad());
    }
    Ok(keys)
}

/// The network's sealed keys, if retention was ever enabled there.
pub fn get<'a>(tx: impl Into<Tx<'a>>, network_id: &str) -> Result<Option<SealedKeys>> {
    match store::meta_get(tx, &meta_key(network_id))? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::internal(format!("the sealed compliance key is unreadable: {e}"))),
    }
}

/// Keep the network's sealed keys.
pub fn put(tx: &WriteTransaction, s: &SealedKeys) -> Result<()> {
    let b = serde_json::to_vec(s).map_err(|e| Error::internal(format!("encoding keys: {e}")))?;
    store::meta_put(tx, &meta_key(&s.network_id), &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let keys = DeviceKeys::generate(&mut rand::rng());
        let s = seal(&keys, "n1", &Secret::new("correct horse")).unwrap();
        assert!(!s.sealed.contains(&B64.encode(keys.x25519_secret())));
        let back = open(&s, &Secret::new("correct horse")).unwrap();
        assert_eq!(back.ed25519_public(), keys.ed25519_public());
        let e = open(&s, &Secret::new("wrong")).err().unwrap();
        assert_eq!(e.code, "retention_passphrase_wrong");
        let mut other = s.clone();
        other.network_id = "n2".into();
        assert!(open(&other, &Secret::new("correct horse")).is_err());
    }
}
