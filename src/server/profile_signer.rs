//! The appliance's profile key: an Ed25519 key, made on first start and kept in the
//! store (`meta` key `profile_signing_key`, so backups carry it), that signs client
//! profiles (`crate::client_profile`); and the short-lived download links the
//! registration page gives (an HMAC under a key derived from the same seed, so they
//! need no state and stop working after an hour).

use crate::client_profile::{
    ClientProfile, FORMAT, NetworkRef, ProfileSignature, SignedProfile, TrustAnchor, signed_bytes,
};
use crate::error::{Error, Result};
use crate::store::{self, Store};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const META_KEY: &str = "profile_signing_key";

/// How long a profile download link works.
pub const LINK_SECS: i64 = 3600;

pub struct ProfileSigner {
    key: SigningKey,
    link_key: [u8; 32],
    /// The TLS trust anchor clients should pin.
    anchor: TrustAnchor,
}

impl std::fmt::Debug for ProfileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileSigner")
            .field("key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl ProfileSigner {
    /// Load the key (making it on first start); `anchor_pem` is the TLS trust anchor.
    pub async fn load(store: &Store, anchor_pem: String) -> Result<ProfileSigner> {
        let stored = store.read(|tx| store::meta_get(tx, META_KEY))?;
        let seed: [u8; 32] = match stored {
            Some(b) => STANDARD
                .decode(&b)
                .ok()
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| Error::internal("the stored profile signing key is corrupt"))?,
            None => {
                let seed: [u8; 32] = rand::random();
                let enc = STANDARD.encode(seed).into_bytes();
                store
                    .write(move |tx| store::meta_put(tx, META_KEY, &enc))
                    .await?;
                seed
            }
        };
        let fingerprint = crate::client_profile::pem_fingerprint(&anchor_pem)
            .ok_or_else(|| Error::internal("the TLS trust anchor is not a PEM certificate"))?;
        let mut h = Sha256::new();
        h.update(b"outpost profile download link\0");
        h.update(seed);
        Ok(ProfileSigner {
            key: SigningKey::from_bytes(&seed),
            link_key: h.finalize().into(),
            anchor: TrustAnchor {
                fingerprint_sha256: fingerprint,
                certificate_pem: anchor_pem,
            },
        })
    }

    /// The public profile key (base64), as `GET /api/v1/server` shows it.
    pub fn public_key(&self) -> String {
        STANDARD.encode(self.key.verifying_key().as_bytes())
    }

    /// The fingerprint clients pin.
    pub fn fingerprint(&self) -> &str {
        &self.anchor.fingerprint_sha256
    }

    /// A signed profile for `network` (and `username`, if given) at `server`.
    pub fn sign(
        &self,
        server: &str,
        network_id: &str,
        network_name: &str,
        username: Option<&str>,
    ) -> SignedProfile {
        let profile = ClientProfile {
            format: FORMAT.to_string(),
            server: server.trim_end_matches('/').to_string(),
            network: NetworkRef {
                id: network_id.to_string(),
                name: network_name.to_string(),
            },
            username: username.map(str::to_string),
            trust: self.anchor.clone(),
            issued_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let sig = self.key.sign(&signed_bytes(&profile));
        SignedProfile {
            profile,
            signature: ProfileSignature {
                alg: "Ed25519".into(),
                key: self.public_key(),
                value: STANDARD.encode(sig.to_bytes()),
            },
        }
    }

    fn mac(&self, payload: &[u8]) -> [u8; 16] {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.link_key).expect("any key length");
        m.update(payload);
        let full = m.finalize().into_bytes();
        full[..16].try_into().expect("16 of 32 bytes")
    }

    /// A download token for `user_id`'s profile, valid [`LINK_SECS`] from `now`.
    pub fn link_token(&self, user_id: &str, now: DateTime<Utc>) -> String {
        let payload = format!("{}.{}", user_id, now.timestamp() + LINK_SECS);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()))
        )
    }

    /// The user a download token names, if it is genuine and not expired.
    pub fn open_link(&self, token: &str, now: DateTime<Utc>) -> Option<String> {
        if token.len() > 300 {
            return None;
        }
        let (p, m) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(p).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(m).ok()?;
        if !bool::from(mac.as_slice().ct_eq(&self.mac(&payload))) {
            return None;
        }
        let text = String::from_utf8(payload).ok()?;
        let (user, exp) = text.rsplit_once('.')?;
        (exp.parse::<i64>().ok()? > now.timestamp()).then(|| user.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;

    fn anchor() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn profiles_verify_and_the_key_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), &StoreConfig::default()).unwrap();
        let a = ProfileSigner::load(&store, anchor()).await.unwrap();
        let b = ProfileSigner::load(&store, anchor()).await.unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let p = a.sign(
            "https://x:8443/",
            "12345678",
            "Ops",
            Some("ann@example.org"),
        );
        assert_eq!(p.profile.server, "https://x:8443");
        let bytes = serde_json::to_vec_pretty(&p).unwrap();
        let back = SignedProfile::verify_bytes(&bytes).unwrap();
        assert_eq!(back, p);
        // Another server in the same file: the signature no longer verifies.
        let forged = String::from_utf8(bytes)
            .unwrap()
            .replace("https://x:8443", "https://evil:8443");
        assert_eq!(
            SignedProfile::verify_bytes(forged.as_bytes()),
            Err(crate::client_profile::ProfileError::BadSignature)
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn download_links_expire_and_cannot_be_forged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), &StoreConfig::default()).unwrap();
        let s = ProfileSigner::load(&store, anchor()).await.unwrap();
        let now = Utc::now();
        let t = s.link_token("user-1", now);
        assert_eq!(s.open_link(&t, now).as_deref(), Some("user-1"));
        let later = now + chrono::Duration::seconds(LINK_SECS);
        assert_eq!(s.open_link(&t, later), None);
        let (_, mac) = t.split_once('.').unwrap();
        let other = format!(
            "{}.{mac}",
            URL_SAFE_NO_PAD.encode(format!("user-2.{}", now.timestamp() + 60))
        );
        assert_eq!(s.open_link(&other, now), None);
        assert_eq!(s.open_link("garbage", now), None);
    }
}
