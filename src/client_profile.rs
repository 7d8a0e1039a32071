//! The client profile (PRODUCT.md F4; issue 5): a small signed JSON file that tells a
//! client where the appliance is and how to trust it — the server's address, the
//! SHA-256 fingerprint and PEM of the TLS trust anchor, the network, and optionally the
//! person's username. A person downloads it from the registration page (or gets it from
//! their administrator) and hands it to `outpost client login --connection FILE`.
//!
//! The appliance signs it with its Ed25519 profile key (`server::profile_signer`). A
//! client checks three things: the signature over the profile's canonical bytes (keys
//! sorted, no whitespace), that the fingerprint is the anchor's, and — once connected
//! through that anchor — that the appliance's `GET /api/v1/server` names the same key.
//! A file edited on the way (another server, another anchor) fails the first check; a
//! file signed by someone else fails the last.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `format` every profile of this version carries.
pub const FORMAT: &str = "outpost-client-profile/1";

/// What the profile says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientProfile {
    pub format: String,
    /// The appliance's base URL, e.g. `https://outpost.example.org`.
    pub server: String,
    pub network: NetworkRef,
    /// The person it was made for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub trust: TrustAnchor,
    /// RFC 3339.
    pub issued_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NetworkRef {
    pub id: String,
    pub name: String,
}

/// The certificate the appliance's TLS chain ends in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrustAnchor {
    /// SHA-256 of the anchor certificate (DER), lower-case hex.
    pub fingerprint_sha256: String,
    /// The anchor certificate, PEM.
    pub certificate_pem: String,
}

/// A profile with the appliance's signature: the file people download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedProfile {
    pub profile: ClientProfile,
    pub signature: ProfileSignature,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProfileSignature {
    /// Always `Ed25519`.
    pub alg: String,
    /// The appliance's profile key (base64, 32 bytes).
    pub key: String,
    /// The signature over [`canonical_bytes`] of `profile` (base64, 64 bytes).
    pub value: String,
}

/// Why a profile file is not trusted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("this is not an outpost client profile: {0}")]
    Unreadable(String),
    #[error("this profile is of format {0}; this outpost reads {FORMAT}")]
    Format(String),
    #[error(
        "the profile's signature does not verify: it was changed after the appliance signed it"
    )]
    BadSignature,
    #[error("the profile's certificate does not have the fingerprint it names")]
    FingerprintMismatch,
}

/// A JSON value's canonical bytes: object keys sorted, no whitespace (serde_json's
/// escaping for strings, its shortest form for numbers).
pub fn canonical_bytes(v: &Value) -> Vec<u8> {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push(b'{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(k).expect("a string encodes"));
                    out.push(b':');
                    write(&m[k], out);
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(x, out);
                }
                out.push(b']');
            }
            other => out.extend(serde_json::to_vec(other).expect("a scalar encodes")),
        }
    }
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

/// The bytes a profile's signature covers.
pub fn signed_bytes(p: &ClientProfile) -> Vec<u8> {
    canonical_bytes(&serde_json::to_value(p).expect("a profile encodes"))
}

/// SHA-256 (hex) of the first certificate in `pem`.
pub fn pem_fingerprint(pem: &str) -> Option<String> {
    let der = rustls_pemfile::certs(&mut pem.as_bytes()).next()?.ok()?;
    Some(hex::encode(Sha256::digest(der.as_ref())))
}

impl SignedProfile {
    /// Read a profile file and check its signature and fingerprint. (Whether the key
    /// is the appliance's is checked once connected: [`SignedProfile::key`].)
    pub fn verify_bytes(bytes: &[u8]) -> Result<SignedProfile, ProfileError> {
        let p: SignedProfile =
            serde_json::from_slice(bytes).map_err(|e| ProfileError::Unreadable(e.to_string()))?;
        if p.profile.format != FORMAT {
            return Err(ProfileError::Format(p.profile.format));
        }
        let key: [u8; 32] = STANDARD
            .decode(&p.signature.key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| ProfileError::Unreadable("the signing key is not 32 bytes".into()))?;
        let sig: [u8; 64] = STANDARD
            .decode(&p.signature.value)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| ProfileError::Unreadable("the signature is not 64 bytes".into()))?;
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| ProfileError::Unreadable("the signing key is not a valid key".into()))?;
        if p.signature.alg != "Ed25519"
            || key
                .verify(&signed_bytes(&p.profile), &Signature::from_bytes(&sig))
                .is_err()
        {
            return Err(ProfileError::BadSignature);
        }
        if pem_fingerprint(&p.profile.trust.certificate_pem).as_deref()
            != Some(p.profile.trust.fingerprint_sha256.as_str())
        {
            return Err(ProfileError::FingerprintMismatch);
        }
        Ok(p)
    }

    /// The key that signed it (base64), to compare with the appliance's.
    pub fn key(&self) -> &str {
        &self.signature.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_bytes_sort_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [true, null, "x\"y"], "c": 2.5}});
        assert_eq!(
            String::from_utf8(canonical_bytes(&v)).unwrap(),
            r#"{"a":{"c":2.5,"d":[true,null,"x\"y"]},"b":1}"#
        );
    }

    #[test]
    fn unreadable_files_are_named_as_such() {
        assert!(matches!(
            SignedProfile::verify_bytes(b"{}"),
            Err(ProfileError::Unreadable(_))
        ));
    }
}
