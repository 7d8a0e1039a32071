//! Opening the sealed content keys of one device, many times: HPKE base mode of
//! RFC 9180 with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and AES-256-GCM, single-shot
//! (`docs/PROTOCOL.md` §5.3).
//!
//! Sealing stays with the `hpke` crate ([`super::crypto::seal_content_key`]). Opening is
//! here because that crate derives the recipient's public key from its private key on
//! every open — a fixed-base scalar multiplication, about a fifth of an open's work — and
//! the compliance member's exporter opens millions of keys with one private key. An
//! [`Opener`] keeps the public key and the parts of the key schedule that depend only on
//! the `info` string, computed once; each open is then one X25519 and the RFC's HKDF and
//! AEAD steps. The tests check it against the `hpke` crate and the protocol's vectors.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// RFC 9180 §7: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
const KEM_ID: u16 = 0x0020;
const KDF_ID: u16 = 0x0001;
const AEAD_ID: u16 = 0x0002;
const VERSION_LABEL: &[u8] = b"HPKE-v1";
/// `suite_id` of the KEM (§4.1) and of the whole suite (§5.1).
const KEM_SUITE: [u8; 5] = [b'K', b'E', b'M', (KEM_ID >> 8) as u8, KEM_ID as u8];
const SUITE: [u8; 10] = [
    b'H',
    b'P',
    b'K',
    b'E',
    (KEM_ID >> 8) as u8,
    KEM_ID as u8,
    (KDF_ID >> 8) as u8,
    KDF_ID as u8,
    (AEAD_ID >> 8) as u8,
    AEAD_ID as u8,
];
/// `mode_base` (§5).
const MODE_BASE: u8 = 0x00;

/// `LabeledExtract(salt, label, ikm)`: the PRK and the HKDF state that expands it.
fn labeled_extract(
    suite: &[u8],
    salt: &[u8],
    label: &[u8],
    ikm: &[u8],
) -> ([u8; 32], Hkdf<Sha256>) {
    let mut labeled = Zeroizing::new(Vec::with_capacity(
        VERSION_LABEL.len() + suite.len() + label.len() + ikm.len(),
    ));
    for part in [VERSION_LABEL, suite, label, ikm] {
        labeled.extend_from_slice(part);
    }
    let (prk, hk) = Hkdf::<Sha256>::extract(Some(salt), &labeled);
    (prk.into(), hk)
}

/// `LabeledExpand(prk, label, info, L)`.
fn labeled_expand<const L: usize>(
    prk: &Hkdf<Sha256>,
    suite: &[u8],
    label: &[u8],
    info: &[u8],
) -> Zeroizing<[u8; L]> {
    let mut labeled =
        Vec::with_capacity(2 + VERSION_LABEL.len() + suite.len() + label.len() + info.len());
    labeled.extend_from_slice(&(L as u16).to_be_bytes());
    for part in [VERSION_LABEL, suite, label, info] {
        labeled.extend_from_slice(part);
    }
    let mut out = Zeroizing::new([0u8; L]);
    prk.expand(&labeled, out.as_mut())
        .expect("L is at most 32 bytes, far below HKDF's limit");
    out
}

/// Opens ciphertexts sealed to one X25519 key pair under one `info` string.
pub struct Opener {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
    /// `key_schedule_context = mode ‖ psk_id_hash ‖ info_hash` (§5.1), fixed by `info`.
    key_schedule_context: [u8; 65],
}

impl Opener {
    /// An opener for the key pair (`public` is `secret`'s public key) and `info`.
    pub fn new(secret: [u8; 32], public: [u8; 32], info: &[u8]) -> Opener {
        let (psk_id_hash, _) = labeled_extract(&SUITE, b"", b"psk_id_hash", b"");
        let (info_hash, _) = labeled_extract(&SUITE, b"", b"info_hash", info);
        let mut key_schedule_context = [0u8; 65];
        key_schedule_context[0] = MODE_BASE;
        key_schedule_context[1..33].copy_from_slice(&psk_id_hash);
        key_schedule_context[33..].copy_from_slice(&info_hash);
        Opener {
            secret: Zeroizing::new(secret),
            public,
            key_schedule_context,
        }
    }

    /// Open `ct` (the AEAD ciphertext, tag included) sealed with encapsulated key `enc`
    /// and associated data `aad`. `None` when anything does not match (wrong key,
    /// wrong associated data, tampered data, or an `enc` of small order).
    pub fn open(&self, enc: &[u8; 32], ct: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        // Decap (§4.1): dh = DH(skR, pkE), refusing the all-zero output (§7.1.4).
        let dh = Zeroizing::new(x25519_dalek::x25519(*self.secret, *enc));
        if bool::from(dh.ct_eq(&[0u8; 32])) {
            return None;
        }
        let mut kem_context = [0u8; 64];
        kem_context[..32].copy_from_slice(enc);
        kem_context[32..].copy_from_slice(&self.public);
        let (_, eae_prk) = labeled_extract(&KEM_SUITE, b"", b"eae_prk", dh.as_ref());
        let shared: Zeroizing<[u8; 32]> =
            labeled_expand(&eae_prk, &KEM_SUITE, b"shared_secret", &kem_context);
        // KeySchedule (§5.1) with an empty PSK.
        let (_, secret) = labeled_extract(&SUITE, shared.as_ref(), b"secret", b"");
        let key: Zeroizing<[u8; 32]> =
            labeled_expand(&secret, &SUITE, b"key", &self.key_schedule_context);
        let nonce: Zeroizing<[u8; 12]> =
            labeled_expand(&secret, &SUITE, b"base_nonce", &self.key_schedule_context);
        // Single-shot: the first (and only) message uses the base nonce as it is.
        Aes256Gcm::new(key.as_ref().into())
            .decrypt(Nonce::from_slice(nonce.as_ref()), Payload { msg: ct, aad })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpke::{Deserializable, Kem as _, Serializable};

    type Kem = hpke::kem::X25519HkdfSha256;

    fn seal(pk: &[u8], info: &[u8], aad: &[u8], plain: &[u8]) -> ([u8; 32], Vec<u8>) {
        let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(pk).unwrap();
        let (enc, ct) =
            hpke::single_shot_seal::<hpke::aead::AesGcm256, hpke::kdf::HkdfSha256, Kem, _>(
                &hpke::OpModeS::Base,
                &pk,
                info,
                plain,
                aad,
                &mut rand::rng(),
            )
            .unwrap();
        (enc.to_bytes().into(), ct)
    }

    #[test]
    fn opens_what_the_hpke_crate_seals_and_nothing_else() {
        for i in 0..20u8 {
            let (sk, pk) = Kem::gen_keypair(&mut rand::rng());
            let (sk, pk): ([u8; 32], [u8; 32]) = (sk.to_bytes().into(), pk.to_bytes().into());
            let info = format!("info {i}");
            let aad = [i; 7];
            let plain = vec![i; 32 + i as usize];
            let (enc, ct) = seal(&pk, info.as_bytes(), &aad, &plain);
            let o = Opener::new(sk, pk, info.as_bytes());
            assert_eq!(o.open(&enc, &ct, &aad).as_deref(), Some(plain.as_slice()));
            assert_eq!(o.open(&enc, &ct, b"other aad"), None);
            let mut bad = ct.clone();
            bad[0] ^= 1;
            assert_eq!(o.open(&enc, &bad, &aad), None);
            let mut bad_enc = enc;
            bad_enc[3] ^= 1;
            assert_eq!(o.open(&bad_enc, &ct, &aad), None);
            let other = Opener::new(sk, pk, b"another info");
            assert_eq!(other.open(&enc, &ct, &aad), None);
        }
    }

    #[test]
    fn a_small_order_encapsulated_key_is_refused() {
        let (sk, pk) = Kem::gen_keypair(&mut rand::rng());
        let o = Opener::new(sk.to_bytes().into(), pk.to_bytes().into(), b"i");
        // u = 0 and u = 1 are of small order: X25519 gives all zeros.
        for u in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            assert_eq!(o.open(&u, &[0u8; 48], b""), None);
        }
    }
}
