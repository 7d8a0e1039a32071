//! The end-to-end encryption primitives of `docs/PROTOCOL.md` §5: device keys, content
//! encryption with its associated data, HPKE sealing of the content key, the Ed25519
//! envelope signature, and the segmented encryption of files (streamed, so a file of any
//! size never sits in memory).
//!
//! Every function that needs randomness takes the RNG explicitly (rand 0.9's
//! `CryptoRng + RngCore`), so tests can make the output deterministic.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ed25519_dalek::{Signer, Verifier};
use hpke::{Deserializable, Kem as _, Serializable};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

use crate::relay::frame::Kind;

type HpkeKem = hpke::kem::X25519HkdfSha256;
type HpkeKdf = hpke::kdf::HkdfSha256;
type HpkeAead = hpke::aead::AesGcm256;

/// HPKE `info` for sealing a content key (§5.3).
pub const CONTENT_KEY_INFO: &[u8] = b"outpost/1 content key";
/// Prefix of a content's associated data (§5.2).
pub const AAD_PREFIX: &[u8] = b"outpost/1 msg";
/// Prefix of the signed message (§5.4).
pub const SIGNATURE_PREFIX: &[u8] = b"outpost/1 envelope";
/// Bytes of a content key and of a file key.
pub const KEY_LEN: usize = 32;
/// Bytes of a content nonce.
pub const NONCE_LEN: usize = 12;
/// Bytes of an AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Bytes of a decoded sealed key: HPKE `enc` (32) ‖ sealed content key (32 + 16).
pub const SEALED_LEN: usize = 32 + KEY_LEN + TAG_LEN;
/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Plaintext bytes of every file segment but the last (§5.5).
pub const SEGMENT_SIZE: usize = 65_536;
/// Encrypted bytes of a full file segment.
pub const SEGMENT_CIPHERTEXT_SIZE: usize = SEGMENT_SIZE + TAG_LEN;
/// Bytes of a file's nonce prefix.
pub const NONCE_PREFIX_LEN: usize = 7;

/// Why a cryptographic operation failed. Deliberately vague about decryption failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// An input has the wrong shape (length, a NUL byte in an id, …).
    #[error("{0}")]
    Invalid(String),
    /// Authenticated decryption failed: wrong key, wrong associated data, or tampered data.
    #[error("decryption failed (wrong key, wrong associated data, or tampered data)")]
    Decrypt,
    /// The Ed25519 signature does not verify.
    #[error("the signature does not verify")]
    Signature,
    /// Reading or writing a file stream failed.
    #[error("{0}")]
    Io(String),
}

pub type Result<T, E = CryptoError> = std::result::Result<T, E>;

fn fixed<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N]> {
    bytes
        .try_into()
        .map_err(|_| CryptoError::Invalid(format!("{what} must be {N} bytes, not {}", bytes.len())))
}

/// A device's two key pairs (§5.1): X25519 for HPKE, Ed25519 for signatures.
#[derive(Clone)]
pub struct DeviceKeys {
    x25519_secret: [u8; 32],
    x25519_public: [u8; 32],
    ed25519: ed25519_dalek::SigningKey,
    /// Opens content keys sealed to this device (its public key and key schedule kept).
    opener: std::sync::Arc<super::hpke_open::Opener>,
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("x25519_public", &hex::encode(self.x25519_public))
            .field("ed25519_public", &hex::encode(self.ed25519_public()))
            .finish_non_exhaustive()
    }
}

impl DeviceKeys {
    /// Fresh key pairs. The X25519 pair is HPKE's `DeriveKeyPair` of 32 random bytes, the
    /// Ed25519 key the next 32 random bytes used as its seed.
    pub fn generate<R: CryptoRng + RngCore>(rng: &mut R) -> Self {
        let (sk, _) = HpkeKem::gen_keypair(rng);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut x = [0u8; 32];
        x.copy_from_slice(&sk.to_bytes());
        Self::from_secrets(x, seed)
    }

    /// Key pairs from their secret halves: the X25519 private key and the Ed25519 seed.
    pub fn from_secrets(x25519_secret: [u8; 32], ed25519_seed: [u8; 32]) -> Self {
        let x25519_public = x25519_public_of(&x25519_secret);
        let opener = super::hpke_open::Opener::new(x25519_secret, x25519_public, CONTENT_KEY_INFO);
        DeviceKeys {
            x25519_secret,
            x25519_public,
            ed25519: ed25519_dalek::SigningKey::from_bytes(&ed25519_seed),
            opener: std::sync::Arc::new(opener),
        }
    }

    pub fn x25519_secret(&self) -> [u8; 32] {
        self.x25519_secret
    }
    pub fn ed25519_seed(&self) -> [u8; 32] {
        self.ed25519.to_bytes()
    }
    pub fn x25519_public(&self) -> [u8; 32] {
        self.x25519_public
    }
    pub fn ed25519_public(&self) -> [u8; 32] {
        self.ed25519.verifying_key().to_bytes()
    }

    /// Sign an envelope (§5.4).
    pub fn sign_envelope(
        &self,
        fields: &EnvelopeFields<'_>,
        ciphertext: &[u8],
    ) -> Result<[u8; 64]> {
        let message = signed_message(fields, ciphertext)?;
        Ok(self.ed25519.sign(&message).to_bytes())
    }

    /// Open a content key sealed to this device (§5.3) with HPKE base mode; the public
    /// key and key schedule are kept, not derived again each time ([`super::hpke_open`]).
    pub fn open_content_key(&self, aad: &[u8], sealed: &[u8]) -> Result<[u8; KEY_LEN]> {
        if sealed.len() != SEALED_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (enc, ct) = sealed.split_at(32);
        let enc: [u8; 32] = fixed(enc, "an encapsulated key")?;
        let key = self
            .opener
            .open(&enc, ct, aad)
            .ok_or(CryptoError::Decrypt)?;
        fixed(&key, "a content key").map_err(|_| CryptoError::Decrypt)
    }
}

/// The X25519 public key of a private key.
pub fn x25519_public_of(secret: &[u8; 32]) -> [u8; 32] {
    // 32 bytes are always a valid X25519 private key (they are clamped).
    let mut out = [0u8; 32];
    if let Ok(sk) = <HpkeKem as hpke::Kem>::PrivateKey::from_bytes(secret) {
        out.copy_from_slice(&HpkeKem::sk_to_pk(&sk).to_bytes());
    }
    out
}

/// The envelope fields that the associated data and the signature bind.
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeFields<'a> {
    pub conversation_id: &'a str,
    pub client_msg_id: &'a str,
    pub kind: Kind,
    pub sender_device_id: &'a str,
}

fn no_nul(value: &str, what: &str) -> Result<()> {
    if value.as_bytes().contains(&0) {
        return Err(CryptoError::Invalid(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

/// `AAD = "outpost/1 msg" 0x00 conversation_id 0x00 client_msg_id 0x00 kind` (§5.2).
pub fn content_aad(conversation_id: &str, client_msg_id: &str, kind: Kind) -> Result<Vec<u8>> {
    no_nul(conversation_id, "the conversation id")?;
    no_nul(client_msg_id, "the client message id")?;
    let mut aad =
        Vec::with_capacity(AAD_PREFIX.len() + conversation_id.len() + client_msg_id.len() + 16);
    aad.extend_from_slice(AAD_PREFIX);
    aad.push(0);
    aad.extend_from_slice(conversation_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(client_msg_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(kind.as_str().as_bytes());
    Ok(aad)
}

/// The bytes an envelope signature covers (§5.4):
/// `"outpost/1 envelope" 0x00 conversation_id 0x00 client_msg_id 0x00 kind 0x00
/// sender_device_id 0x00 SHA-256(decoded ciphertext)`.
pub fn signed_message(fields: &EnvelopeFields<'_>, ciphertext: &[u8]) -> Result<Vec<u8>> {
    no_nul(fields.conversation_id, "the conversation id")?;
    no_nul(fields.client_msg_id, "the client message id")?;
    no_nul(fields.sender_device_id, "the sender device id")?;
    let mut m = Vec::with_capacity(160);
    m.extend_from_slice(SIGNATURE_PREFIX);
    for part in [
        fields.conversation_id,
        fields.client_msg_id,
        fields.kind.as_str(),
        fields.sender_device_id,
    ] {
        m.push(0);
        m.extend_from_slice(part.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&Sha256::digest(ciphertext));
    Ok(m)
}

/// Verify an envelope signature with the sender device's Ed25519 public key.
pub fn verify_envelope(
    ed25519_public: &[u8],
    fields: &EnvelopeFields<'_>,
    ciphertext: &[u8],
    signature: &[u8],
) -> Result<()> {
    let public: [u8; 32] = fixed(ed25519_public, "an Ed25519 public key")?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
        .map_err(|_| CryptoError::Invalid("the Ed25519 public key is not a curve point".into()))?;
    let sig: [u8; SIGNATURE_LEN] = fixed(signature, "a signature")?;
    let message = signed_message(fields, ciphertext)?;
    key.verify(&message, &ed25519_dalek::Signature::from_bytes(&sig))
        .map_err(|_| CryptoError::Signature)
}

/// One envelope signature to check, for [`verify_envelopes`].
#[derive(Debug, Clone, Copy)]
pub struct SignedEnvelope<'a> {
    pub ed25519_public: &'a [u8],
    pub fields: EnvelopeFields<'a>,
    pub ciphertext: &'a [u8],
    pub signature: &'a [u8],
}

/// Verify many envelope signatures at once: Ed25519 batch verification, about half the
/// work per signature of checking them one by one (what a compliance member opening
/// thousands of deliveries needs). If the batch fails, each signature is checked alone,
/// so a bad one fails only its own envelope. The answers are in `items`' order.
pub fn verify_envelopes(items: &[SignedEnvelope<'_>]) -> Vec<Result<()>> {
    type Parsed = (
        ed25519_dalek::VerifyingKey,
        ed25519_dalek::Signature,
        Vec<u8>,
    );
    let parse = |e: &SignedEnvelope<'_>| -> Result<Parsed> {
        let public: [u8; 32] = fixed(e.ed25519_public, "an Ed25519 public key")?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public).map_err(|_| {
            CryptoError::Invalid("the Ed25519 public key is not a curve point".into())
        })?;
        let sig: [u8; SIGNATURE_LEN] = fixed(e.signature, "a signature")?;
        let message = signed_message(&e.fields, e.ciphertext)?;
        Ok((key, ed25519_dalek::Signature::from_bytes(&sig), message))
    };
    let parsed: Vec<Result<Parsed>> = items.iter().map(parse).collect();
    let good: Vec<&Parsed> = parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
    let messages: Vec<&[u8]> = good.iter().map(|(_, _, m)| m.as_slice()).collect();
    let signatures: Vec<ed25519_dalek::Signature> = good.iter().map(|(_, s, _)| *s).collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = good.iter().map(|(k, _, _)| *k).collect();
    // One signature is checked alone: a batch of one costs more.
    let all_good =
        good.len() > 1 && ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok();
    parsed
        .into_iter()
        .map(|p| {
            let (key, sig, message) = p?;
            if all_good {
                return Ok(());
            }
            key.verify(&message, &sig)
                .map_err(|_| CryptoError::Signature)
        })
        .collect()
}

/// A fresh random content key.
pub fn content_key<R: CryptoRng + RngCore>(rng: &mut R) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    rng.fill_bytes(&mut k);
    k
}

/// Encrypt content `P` under `key` with a fresh random nonce: returns `N ‖ AES-256-GCM(K, N, P, AAD)`
/// (the decoded `ciphertext` field, §5.2).
pub fn encrypt_content<R: CryptoRng + RngCore>(
    rng: &mut R,
    key: &[u8; KEY_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new(key.into());
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Invalid("the content is too large to encrypt".into()))?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypt a decoded `ciphertext` field (`N ‖ ct`).
pub fn decrypt_content(key: &[u8; KEY_LEN], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
    if ciphertext.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Decrypt);
    }
    let (nonce, ct) = ciphertext.split_at(NONCE_LEN);
    Aes256Gcm::new(key.into())
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| CryptoError::Decrypt)
}

/// Seal a content key to one recipient device's X25519 public key with HPKE base mode
/// (§5.3): returns `enc ‖ ct`, 80 bytes.
pub fn seal_content_key<R: CryptoRng + RngCore>(
    rng: &mut R,
    recipient_x25519: &[u8],
    aad: &[u8],
    key: &[u8; KEY_LEN],
) -> Result<[u8; SEALED_LEN]> {
    let pk = <HpkeKem as hpke::Kem>::PublicKey::from_bytes(recipient_x25519)
        .map_err(|_| CryptoError::Invalid("a recipient X25519 key is not 32 bytes".into()))?;
    let (enc, ct) = hpke::single_shot_seal::<HpkeAead, HpkeKdf, HpkeKem, R>(
        &hpke::OpModeS::Base,
        &pk,
        CONTENT_KEY_INFO,
        key,
        aad,
        rng,
    )
    .map_err(|e| CryptoError::Invalid(format!("cannot seal the content key: {e}")))?;
    let enc = enc.to_bytes();
    let mut out = [0u8; SEALED_LEN];
    if enc.len() + ct.len() != SEALED_LEN {
        return Err(CryptoError::Invalid(
            "HPKE produced an unexpected length".into(),
        ));
    }
    out[..enc.len()].copy_from_slice(&enc);
    out[enc.len()..].copy_from_slice(&ct);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Files (§5.5)
// ---------------------------------------------------------------------------------------

/// A file's key `F` and nonce prefix `R`.
#[derive(Clone, PartialEq, Eq)]
pub struct FileKey {
    pub key: [u8; KEY_LEN],
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(…)")
    }
}

impl FileKey {
    pub fn generate<R: CryptoRng + RngCore>(rng: &mut R) -> Self {
        let mut key = [0u8; KEY_LEN];
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut nonce_prefix);
        FileKey { key, nonce_prefix }
    }

    pub fn from_slices(key: &[u8], nonce_prefix: &[u8]) -> Result<Self> {
        Ok(FileKey {
            key: fixed(key, "a file key")?,
            nonce_prefix: fixed(nonce_prefix, "a file nonce prefix")?,
        })
    }

    fn nonce(&self, index: u32, last: bool) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        n[..NONCE_PREFIX_LEN].copy_from_slice(&self.nonce_prefix);
        n[NONCE_PREFIX_LEN..NONCE_PREFIX_LEN + 4].copy_from_slice(&index.to_be_bytes());
        n[NONCE_LEN - 1] = u8::from(last);
        n
    }
}

/// Segments of a file of `plaintext_len` bytes (an empty file is one empty segment).
pub fn segment_count(plaintext_len: u64) -> u64 {
    plaintext_len.div_ceil(SEGMENT_SIZE as u64).max(1)
}

/// Bytes of the blob of a file of `plaintext_len` bytes.
pub fn encrypted_len(plaintext_len: u64) -> u64 {
    // Saturating: a size claimed by someone else must not overflow.
    plaintext_len.saturating_add(segment_count(plaintext_len).saturating_mul(TAG_LEN as u64))
}

/// Plaintext bytes of a blob of `blob_len` bytes, if that is a possible blob length.
pub fn plaintext_len(blob_len: u64) -> Option<u64> {
    let full = SEGMENT_CIPHERTEXT_SIZE as u64;
    let segments = blob_len.div_ceil(full).max(1);
    let last = blob_len.checked_sub((segments - 1) * full)?;
    if last < TAG_LEN as u64 {
        return None;
    }
    Some(blob_len - segments * TAG_LEN as u64)
}

/// Cuts a byte stream into segments of `size` bytes, holding the latest full segment
/// back until more data (or the end) shows whether it is the last one.
struct Segmenter {
    pending: Vec<u8>,
    size: usize,
}

impl Segmenter {
    fn new(size: usize) -> Self {
        Segmenter {
            pending: Vec::with_capacity(size),
            size,
        }
    }

    /// Add `data`; `full` gets every segment now known not to be the last.
    fn push(&mut self, mut data: &[u8], mut full: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        while !data.is_empty() {
            if self.pending.len() == self.size {
                full(&self.pending)?;
                self.pending.clear();
            }
            let take = (self.size - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// The last segment (possibly empty).
    fn last(self) -> Vec<u8> {
        self.pending
    }
}

/// AES-256-GCM over numbered segments with the §5.5 nonces.
struct SegmentCipher {
    cipher: Aes256Gcm,
    key: FileKey,
    index: u32,
}

impl SegmentCipher {
    fn new(key: &FileKey) -> Self {
        SegmentCipher {
            cipher: Aes256Gcm::new((&key.key).into()),
            key: key.clone(),
            index: 0,
        }
    }

    /// The nonce of the next segment; numbers it.
    fn next_nonce(&mut self, last: bool, too_many: CryptoError) -> Result<[u8; NONCE_LEN]> {
        let nonce = self.key.nonce(self.index, last);
        self.index = self.index.checked_add(1).ok_or(too_many)?;
        Ok(nonce)
    }

    fn seal(&mut self, plaintext: &[u8], last: bool) -> Result<Vec<u8>> {
        let nonce = self.next_nonce(
            last,
            CryptoError::Invalid("the file has too many segments".into()),
        )?;
        self.cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .map_err(|_| CryptoError::Invalid("cannot encrypt a file segment".into()))
    }

    fn open(&mut self, ciphertext: &[u8], last: bool) -> Result<Vec<u8>> {
        let nonce = self.next_nonce(last, CryptoError::Decrypt)?;
        self.cipher
            .decrypt(Nonce::from_slice(&nonce), ciphertext)
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// Encrypts a file incrementally: [`push`](Self::push) plaintext in pieces of any size,
/// then [`finish`](Self::finish). Holds at most one segment plus the current piece.
pub struct FileEncryptor {
    segments: Segmenter,
    cipher: SegmentCipher,
    hasher: Sha256,
    plaintext_len: u64,
    blob_len: u64,
}

impl FileEncryptor {
    pub fn new(key: &FileKey) -> Self {
        FileEncryptor {
            segments: Segmenter::new(SEGMENT_SIZE),
            cipher: SegmentCipher::new(key),
            hasher: Sha256::new(),
            plaintext_len: 0,
            blob_len: 0,
        }
    }

    /// Encrypt what can be encrypted of `plaintext`, appending blob bytes to `out`. A full
    /// segment is held back until more data (or `finish`) shows whether it is the last.
    pub fn push(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.plaintext_len += plaintext.len() as u64;
        let FileEncryptor {
            segments,
            cipher,
            hasher,
            blob_len,
            ..
        } = self;
        segments.push(plaintext, |seg| {
            sealed_into(cipher, hasher, blob_len, seg, false, out)
        })
    }

    /// Encrypt the last segment; returns the blob's summary.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<BlobSummary> {
        let last = self.segments.last();
        sealed_into(
            &mut self.cipher,
            &mut self.hasher,
            &mut self.blob_len,
            &last,
            true,
            out,
        )?;
        Ok(BlobSummary {
            plaintext_len: self.plaintext_len,
            blob_len: self.blob_len,
            sha256: self.hasher.finalize().into(),
        })
    }
}

fn sealed_into(
    cipher: &mut SegmentCipher,
    hasher: &mut Sha256,
    blob_len: &mut u64,
    plaintext: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) -> Result<()> {
    let ct = cipher.seal(plaintext, last)?;
    hasher.update(&ct);
    *blob_len += ct.len() as u64;
    out.extend_from_slice(&ct);
    Ok(())
}

/// What encrypting or decrypting a whole file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobSummary {
    pub plaintext_len: u64,
    pub blob_len: u64,
    /// SHA-256 of the blob (the encrypted bytes).
    pub sha256: [u8; 32],
}

/// Decrypts a blob incrementally: [`push`](Self::push) blob bytes in pieces of any size,
/// then [`finish`](Self::finish). Detects truncation, reordering and a missing last segment.
pub struct FileDecryptor {
    segments: Segmenter,
    cipher: SegmentCipher,
    hasher: Sha256,
    plaintext_len: u64,
    blob_len: u64,
}

impl FileDecryptor {
    pub fn new(key: &FileKey) -> Self {
        FileDecryptor {
            segments: Segmenter::new(SEGMENT_CIPHERTEXT_SIZE),
            cipher: SegmentCipher::new(key),
            hasher: Sha256::new(),
            plaintext_len: 0,
            blob_len: 0,
        }
    }

    /// Decrypt what can be decrypted of `blob`, appending plaintext to `out`.
    pub fn push(&mut self, blob: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.hasher.update(blob);
        self.blob_len += blob.len() as u64;
        let FileDecryptor {
            segments,
            cipher,
            plaintext_len,
            ..
        } = self;
        segments.push(blob, |seg| {
            opened_into(cipher, plaintext_len, seg, false, out)
        })
    }

    /// Decrypt the last segment; returns the blob's summary.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<BlobSummary> {
        let last = self.segments.last();
        if last.len() < TAG_LEN {
            return Err(CryptoError::Decrypt);
        }
        opened_into(&mut self.cipher, &mut self.plaintext_len, &last, true, out)?;
        Ok(BlobSummary {
            plaintext_len: self.plaintext_len,
            blob_len: self.blob_len,
            sha256: self.hasher.finalize().into(),
        })
    }
}

fn opened_into(
    cipher: &mut SegmentCipher,
    plaintext_len: &mut u64,
    ciphertext: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) -> Result<()> {
    let pt = cipher.open(ciphertext, last)?;
    *plaintext_len += pt.len() as u64;
    out.extend_from_slice(&pt);
    Ok(())
}

const IO_CHUNK: usize = 4 * SEGMENT_SIZE;

fn io_err(e: std::io::Error) -> CryptoError {
    CryptoError::Io(e.to_string())
}

/// A file encryptor or decryptor: pieces in, then the end.
trait Segmented {
    fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()>;
    fn finish(self, out: &mut Vec<u8>) -> Result<BlobSummary>;
}

impl Segmented for FileEncryptor {
    fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        FileEncryptor::push(self, data, out)
    }
    fn finish(self, out: &mut Vec<u8>) -> Result<BlobSummary> {
        FileEncryptor::finish(self, out)
    }
}

impl Segmented for FileDecryptor {
    fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        FileDecryptor::push(self, data, out)
    }
    fn finish(self, out: &mut Vec<u8>) -> Result<BlobSummary> {
        FileDecryptor::finish(self, out)
    }
}

/// Feed everything `input` yields through `s` into `output` (streaming).
fn pump<S: Segmented, R: Read, W: Write>(
    mut s: S,
    mut input: R,
    mut output: W,
) -> Result<BlobSummary> {
    let mut buf = vec![0u8; IO_CHUNK];
    let mut out = Vec::with_capacity(IO_CHUNK + 4 * TAG_LEN);
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        out.clear();
        s.push(&buf[..n], &mut out)?;
        output.write_all(&out).map_err(io_err)?;
    }
    out.clear();
    let summary = s.finish(&mut out)?;
    output.write_all(&out).map_err(io_err)?;
    output.flush().map_err(io_err)?;
    Ok(summary)
}

/// Encrypt everything `input` yields into `output` (streaming).
pub fn encrypt_file<R: Read, W: Write>(key: &FileKey, input: R, output: W) -> Result<BlobSummary> {
    pump(FileEncryptor::new(key), input, output)
}

/// Decrypt a blob from `input` into `output` (streaming). On error, `output` holds a prefix
/// of unauthenticated-as-a-whole plaintext: write to a temporary file and discard it then.
pub fn decrypt_file<R: Read, W: Write>(key: &FileKey, input: R, output: W) -> Result<BlobSummary> {
    pump(FileDecryptor::new(key), input, output)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An "RNG" that hands out fixed bytes in order, so that outputs are reproducible by
    /// any implementation from the listed inputs. Panics when exhausted (tests only).
    pub(crate) struct FixedRng(pub std::collections::VecDeque<u8>);

    impl FixedRng {
        pub(crate) fn new(parts: &[&[u8]]) -> Self {
            FixedRng(parts.iter().flat_map(|p| p.iter().copied()).collect())
        }
    }

    impl RngCore for FixedRng {
        fn next_u32(&mut self) -> u32 {
            let mut b = [0u8; 4];
            self.fill_bytes(&mut b);
            u32::from_le_bytes(b)
        }
        fn next_u64(&mut self) -> u64 {
            let mut b = [0u8; 8];
            self.fill_bytes(&mut b);
            u64::from_le_bytes(b)
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            for d in dst {
                *d = self.0.pop_front().expect("FixedRng exhausted");
            }
        }
    }
    impl CryptoRng for FixedRng {}

    fn seq(start: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| start.wrapping_add(i as u8)).collect()
    }

    fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
        v.try_into().unwrap()
    }

    fn fields() -> EnvelopeFields<'static> {
        EnvelopeFields {
            conversation_id: "c1",
            client_msg_id: "m1",
            kind: Kind::Text,
            sender_device_id: "d1",
        }
    }

    #[test]
    fn content_round_trip_and_tampering() {
        let mut rng = rand::rng();
        let alice = DeviceKeys::generate(&mut rng);
        let bob = DeviceKeys::generate(&mut rng);
        let f = fields();
        let aad = content_aad(f.conversation_id, f.client_msg_id, f.kind).unwrap();
        let k = content_key(&mut rng);
        let ct = encrypt_content(&mut rng, &k, &aad, b"{\"text\":\"hi\"}").unwrap();
        let sealed = seal_content_key(&mut rng, &bob.x25519_public(), &aad, &k).unwrap();
        let sig = alice.sign_envelope(&f, &ct).unwrap();

        // Round trip.
        let k2 = bob.open_content_key(&aad, &sealed).unwrap();
        assert_eq!(k2, k);
        assert_eq!(
            decrypt_content(&k2, &aad, &ct).unwrap(),
            b"{\"text\":\"hi\"}"
        );
        verify_envelope(&alice.ed25519_public(), &f, &ct, &sig).unwrap();

        // Wrong AAD (another kind, conversation or message id).
        let other = content_aad("c1", "m1", Kind::Edit).unwrap();
        assert_eq!(
            bob.open_content_key(&other, &sealed),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(decrypt_content(&k, &other, &ct), Err(CryptoError::Decrypt));
        let other = content_aad("c2", "m1", Kind::Text).unwrap();
        assert_eq!(decrypt_content(&k, &other, &ct), Err(CryptoError::Decrypt));
        // Wrong key.
        assert_eq!(
            alice.open_content_key(&aad, &sealed),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(
            decrypt_content(&[7; 32], &aad, &ct),
            Err(CryptoError::Decrypt)
        );
        // Tampered bytes.
        let mut bad = ct.clone();
        bad[NONCE_LEN] ^= 1;
        assert_eq!(decrypt_content(&k, &aad, &bad), Err(CryptoError::Decrypt));
        let mut bad_sealed = sealed;
        bad_sealed[40] ^= 1;
        assert_eq!(
            bob.open_content_key(&aad, &bad_sealed),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(
            bob.open_content_key(&aad, &sealed[..79]),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(
            decrypt_content(&k, &aad, &ct[..20]),
            Err(CryptoError::Decrypt)
        );
        // Signature: other ciphertext, other sender device, other key, truncated.
        assert_eq!(
            verify_envelope(&alice.ed25519_public(), &f, &bad, &sig),
            Err(CryptoError::Signature)
        );
        let mut f2 = f;
        f2.sender_device_id = "d2";
        assert_eq!(
            verify_envelope(&alice.ed25519_public(), &f2, &ct, &sig),
            Err(CryptoError::Signature)
        );
        assert_eq!(
            verify_envelope(&bob.ed25519_public(), &f, &ct, &sig),
            Err(CryptoError::Signature)
        );
        assert!(verify_envelope(&alice.ed25519_public(), &f, &ct, &sig[..63]).is_err());
        // NUL bytes in ids are refused rather than made ambiguous.
        assert!(content_aad("c\0", "m", Kind::Text).is_err());
    }

    #[test]
    fn device_keys_rebuild_from_secrets() {
        let k = DeviceKeys::generate(&mut rand::rng());
        let k2 = DeviceKeys::from_secrets(k.x25519_secret(), k.ed25519_seed());
        assert_eq!(k.x25519_public(), k2.x25519_public());
        assert_eq!(k.ed25519_public(), k2.ed25519_public());
        assert!(!format!("{k:?}").contains(&hex::encode(k.x25519_secret())));
    }

    fn encrypt_all(key: &FileKey, data: &[u8]) -> (Vec<u8>, BlobSummary) {
        let mut blob = Vec::new();
        let s = encrypt_file(key, data, &mut blob).unwrap();
        (blob, s)
    }

    #[test]
    fn file_sizes() {
        for n in [
            0u64,
            1,
            65_535,
            65_536,
            65_537,
            131_072,
            131_073,
            5_000_000_000,
        ] {
            let e = encrypted_len(n);
            assert_eq!(plaintext_len(e), Some(n), "{n}");
        }
        assert_eq!(encrypted_len(0), 16);
        assert_eq!(encrypted_len(65_536), 65_552);
        assert_eq!(encrypted_len(65_537), 65_569);
        assert_eq!(plaintext_len(0), None);
        assert_eq!(plaintext_len(15), None);
        assert_eq!(plaintext_len(65_552 + 3), None);
    }

    #[test]
    fn file_round_trips() {
        let key = FileKey::generate(&mut rand::rng());
        for n in [0usize, 1, 100, 65_535, 65_536, 65_537, 131_072, 200_000] {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let (blob, s) = encrypt_all(&key, &data);
            assert_eq!(blob.len() as u64, encrypted_len(n as u64));
            assert_eq!(s.blob_len, blob.len() as u64);
            assert_eq!(s.plaintext_len, n as u64);
            assert_eq!(s.sha256, <[u8; 32]>::from(Sha256::digest(&blob)));
            let mut back = Vec::new();
            let d = decrypt_file(&key, &blob[..], &mut back).unwrap();
            assert_eq!(back, data);
            assert_eq!(d, s);
            // Pushing in odd pieces gives the same result.
            let mut enc = FileEncryptor::new(&key);
            let mut blob2 = Vec::new();
            for piece in data.chunks(7_777) {
                enc.push(piece, &mut blob2).unwrap();
            }
            enc.finish(&mut blob2).unwrap();
            assert_eq!(blob2, blob);
            let mut dec = FileDecryptor::new(&key);
            let mut back2 = Vec::new();
            for piece in blob.chunks(12_345) {
                dec.push(piece, &mut back2).unwrap();
            }
            dec.finish(&mut back2).unwrap();
            assert_eq!(back2, data);
        }
    }

    #[test]
    fn file_tampering_detected() {
        let key = FileKey::generate(&mut rand::rng());
        let data: Vec<u8> = (0..200_000).map(|i| (i % 251) as u8).collect();
        let (blob, _) = encrypt_all(&key, &data);
        let s = SEGMENT_CIPHERTEXT_SIZE;
        let fails = |b: &[u8], k: &FileKey| decrypt_file(k, b, &mut Vec::new()).is_err();
        // Wrong key / prefix.
        let mut k2 = key.clone();
        k2.key[0] ^= 1;
        assert!(fails(&blob, &k2));
        let mut k3 = key.clone();
        k3.nonce_prefix[0] ^= 1;
        assert!(fails(&blob, &k3));
        // Truncated last segment, truncated to less than a tag, one byte missing.
        assert!(fails(&blob[..blob.len() - 1], &key));
        assert!(fails(&blob[..3 * s + 5], &key));
        // Missing last segment (cut at a segment boundary).
        assert!(fails(&blob[..3 * s], &key));
        assert!(fails(&blob[..s], &key));
        // Reordered segments.
        let mut swapped = Vec::new();
        swapped.extend_from_slice(&blob[s..2 * s]);
        swapped.extend_from_slice(&blob[..s]);
        swapped.extend_from_slice(&blob[2 * s..]);
        assert!(fails(&swapped, &key));
        // Flipped bit, extra byte, empty blob.
        let mut flipped = blob.clone();
        flipped[2 * s + 10] ^= 0x80;
        assert!(fails(&flipped, &key));
        let mut longer = blob.clone();
        longer.push(0);
        assert!(fails(&longer, &key));
        assert!(fails(&[], &key));
        // An extra segment after the last one.
        let (one, _) = encrypt_all(&key, b"abc");
        let mut two = one.clone();
        two.extend_from_slice(&one);
        assert!(fails(&two, &key));
    }

    // ---------------------------------------------------------------- test vectors

    pub(crate) struct MessageVector {
        pub sender_ed25519_seed: Vec<u8>,
        pub sender_ed25519_public: [u8; 32],
        pub recipient_x25519_secret: Vec<u8>,
        pub recipient_x25519_public: [u8; 32],
        pub conversation_id: &'static str,
        pub client_msg_id: &'static str,
        pub kind: Kind,
        pub sender_device_id: &'static str,
        pub plaintext: &'static str,
        pub content_key: Vec<u8>,
        pub nonce: Vec<u8>,
        pub ikm_e: Vec<u8>,
        pub aad: Vec<u8>,
        pub ciphertext: Vec<u8>,
        pub sealed: [u8; SEALED_LEN],
        pub signed_message: Vec<u8>,
        pub signature: [u8; 64],
    }

    pub(crate) fn message_vector() -> MessageVector {
        let sender_seed = seq(0x00, 32);
        let recipient_secret = seq(0x20, 32);
        let content_key_bytes = seq(0x40, 32);
        let nonce = seq(0x60, 12);
        let ikm_e = seq(0x80, 32);
        let sender = DeviceKeys::from_secrets([0; 32], arr(&sender_seed));
        let recipient = DeviceKeys::from_secrets(arr(&recipient_secret), [0; 32]);
        let f = EnvelopeFields {
            conversation_id: "0195f0a2-7c3e-7000-8000-00000000c0de",
            client_msg_id: "0195f0a2-7c3e-7abc-8def-000000000001",
            kind: Kind::Text,
            sender_device_id: "0195f0a2-7c3e-7000-8000-0000000de71c",
        };
        let plaintext = r#"{"text":"Hello, outpost!"}"#;
        let aad = content_aad(f.conversation_id, f.client_msg_id, f.kind).unwrap();
        let mut rng = FixedRng::new(&[&nonce, &ikm_e]);
        let k: [u8; 32] = arr(&content_key_bytes);
        let ciphertext = encrypt_content(&mut rng, &k, &aad, plaintext.as_bytes()).unwrap();
        let sealed = seal_content_key(&mut rng, &recipient.x25519_public(), &aad, &k).unwrap();
        assert!(rng.0.is_empty());
        let signature = sender.sign_envelope(&f, &ciphertext).unwrap();
        MessageVector {
            sender_ed25519_public: sender.ed25519_public(),
            recipient_x25519_public: recipient.x25519_public(),
            sender_ed25519_seed: sender_seed,
            recipient_x25519_secret: recipient_secret,
            conversation_id: f.conversation_id,
            client_msg_id: f.client_msg_id,
            kind: f.kind,
            sender_device_id: f.sender_device_id,
            plaintext,
            content_key: content_key_bytes,
            nonce,
            ikm_e,
            signed_message: signed_message(&f, &ciphertext).unwrap(),
            aad,
            ciphertext,
            sealed,
            signature,
        }
    }

    pub(crate) struct FileVector {
        pub key: Vec<u8>,
        pub nonce_prefix: Vec<u8>,
        pub plaintext_len: usize,
        pub plaintext_sha256: [u8; 32],
        pub blob: Vec<u8>,
        pub summary: BlobSummary,
    }

    /// Plaintext byte `i` of the file vector.
    pub(crate) fn file_vector_byte(i: usize) -> u8 {
        (i % 251) as u8
    }

    pub(crate) fn file_vector() -> FileVector {
        let key = seq(0xa0, 32);
        let nonce_prefix = seq(0xc0, 7);
        let plaintext: Vec<u8> = (0..65_540).map(file_vector_byte).collect();
        let fk = FileKey::from_slices(&key, &nonce_prefix).unwrap();
        let (blob, summary) = encrypt_all(&fk, &plaintext);
        FileVector {
            key,
            nonce_prefix,
            plaintext_len: plaintext.len(),
            plaintext_sha256: Sha256::digest(&plaintext).into(),
            blob,
            summary,
        }
    }

    const V_SENDER_ED25519_PUBLIC: &str =
        "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
    const V_RECIPIENT_X25519_PUBLIC: &str =
        "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254";
    const V_AAD: &str = "6f7574706f73742f31206d73670030313935663061322d376333652d373030302d383030302d3030303030303030633064650030313935663061322d376333652d376162632d386465662d3030303030303030303030310074657874";
    const V_CIPHERTEXT: &str = "606162636465666768696a6bd70a7d607fe0b29c2bc91c5a69e9702b60599a61784de52f2c07aa496ecf4831dab1884deee757f2501a";
    const V_SEALED: &str = "7af03df159e2d75751c1a88eb5a9e87988f138dce7596ebda3ad7f0bb04a8734cd384a8f37e7b6050e4b9bc1c0597378decbff4b191179ce47b3aac38b1eaf327643dcc6fac865e5a129ffa171bac6e6";
    const V_SIGNED_MESSAGE: &str = "6f7574706f73742f3120656e76656c6f70650030313935663061322d376333652d373030302d383030302d3030303030303030633064650030313935663061322d376333652d376162632d386465662d30303030303030303030303100746578740030313935663061322d376333652d373030302d383030302d30303030303030646537316300d39079e58bd55ba86a05aebb122d4aac43ed8e701777c344b1be06ea3f2e65dc";
    const V_SIGNATURE: &str = "1648c6a09da643777d789c947d7295ec569373a84994eec648fcb608199ab644b9ae845e6cbe9d5501ba126f79c0b3a65a320bd6f28e937efcb679b8cbdb730c";
    const V_FILE_BLOB_SHA256: &str =
        "194e35e6fb3ca457b167f397a7d2a4ca162b63c488390040f07af468ed5717c1";
    const V_FILE_BLOB_FIRST32: &str =
        "91ed93c71429d4e6b39089715b536babe5887174c6fe413cc9349a8512c4a63b";
    const V_FILE_BLOB_LAST32: &str =
        "1492cdf0875110a0cfbd2607a451cccf55cde208a3f757639692ec2b814481a2";

    #[test]
    fn message_test_vector() {
        let v = message_vector();
        assert_eq!(
            hex::encode(v.sender_ed25519_public),
            V_SENDER_ED25519_PUBLIC
        );
        assert_eq!(
            hex::encode(v.recipient_x25519_public),
            V_RECIPIENT_X25519_PUBLIC
        );
        assert_eq!(hex::encode(&v.aad), V_AAD);
        assert_eq!(hex::encode(&v.ciphertext), V_CIPHERTEXT);
        assert_eq!(hex::encode(v.sealed), V_SEALED);
        assert_eq!(hex::encode(&v.signed_message), V_SIGNED_MESSAGE);
        assert_eq!(hex::encode(v.signature), V_SIGNATURE);
        // And the vector opens with the recipient's key.
        let recipient = DeviceKeys::from_secrets(arr(&v.recipient_x25519_secret), [0; 32]);
        let k = recipient.open_content_key(&v.aad, &v.sealed).unwrap();
        assert_eq!(k.to_vec(), v.content_key);
        assert_eq!(
            decrypt_content(&k, &v.aad, &v.ciphertext).unwrap(),
            v.plaintext.as_bytes()
        );
        let f = EnvelopeFields {
            conversation_id: v.conversation_id,
            client_msg_id: v.client_msg_id,
            kind: v.kind,
            sender_device_id: v.sender_device_id,
        };
        verify_envelope(&v.sender_ed25519_public, &f, &v.ciphertext, &v.signature).unwrap();
    }

    #[test]
    fn file_test_vector() {
        let v = file_vector();
        assert_eq!(v.blob.len(), 65_540 + 2 * TAG_LEN);
        assert_eq!(hex::encode(v.summary.sha256), V_FILE_BLOB_SHA256);
        assert_eq!(hex::encode(&v.blob[..32]), V_FILE_BLOB_FIRST32);
        assert_eq!(
            hex::encode(&v.blob[v.blob.len() - 32..]),
            V_FILE_BLOB_LAST32
        );
        let fk = FileKey::from_slices(&v.key, &v.nonce_prefix).unwrap();
        let mut back = Vec::new();
        decrypt_file(&fk, &v.blob[..], &mut back).unwrap();
        assert_eq!(back.len(), v.plaintext_len);
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&back)), v.plaintext_sha256);
    }

    fn thousands(n: u64) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }

    fn b64(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    /// §8 of `docs/PROTOCOL.md`, generated from the vectors above.
    pub(crate) fn vectors_markdown() -> String {
        let m = message_vector();
        let f = file_vector();
        let blob = &f.blob;
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line("## 8. Test vectors".into());
        line(String::new());
        line("Generated by `cargo test --lib client::crypto -- --ignored --nocapture print_test_vectors`".into());
        line("and checked by `cargo test --lib client::crypto`. Hex is lowercase; base64 is standard".into());
        line("and padded, as on the wire. \"Random\" inputs are given explicitly.".into());
        line(String::new());
        line("### 8.1 A text message to one recipient device".into());
        line(String::new());
        line("Inputs:".into());
        line(String::new());
        line("| name | value |".into());
        line("|---|---|".into());
        line(format!(
            "| sender Ed25519 seed (private key) | `{}` |",
            hex::encode(&m.sender_ed25519_seed)
        ));
        line(format!(
            "| recipient X25519 private key `skR` | `{}` |",
            hex::encode(&m.recipient_x25519_secret)
        ));
        line(format!("| `conversation_id` | `{}` |", m.conversation_id));
        line(format!("| `client_msg_id` | `{}` |", m.client_msg_id));
        line(format!("| `kind` | `{}` |", m.kind.as_str()));
        line(format!("| `sender_device_id` | `{}` |", m.sender_device_id));
        line(format!("| content `P` (UTF-8) | `{}` |", m.plaintext));
        line(format!(
            "| content key `K` | `{}` |",
            hex::encode(&m.content_key)
        ));
        line(format!("| nonce `N` | `{}` |", hex::encode(&m.nonce)));
        line(format!(
            "| HPKE ephemeral `ikmE` (`skE, pkE = DeriveKeyPair(ikmE)`, RFC 9180 §7.1.3) | `{}` |",
            hex::encode(&m.ikm_e)
        ));
        line(String::new());
        line("Outputs:".into());
        line(String::new());
        line("| name | value |".into());
        line("|---|---|".into());
        line(format!(
            "| sender Ed25519 public key | `{}` |",
            hex::encode(m.sender_ed25519_public)
        ));
        line(format!(
            "| sender Ed25519 public key (base64) | `{}` |",
            b64(&m.sender_ed25519_public)
        ));
        line(format!(
            "| recipient X25519 public key `pkR` | `{}` |",
            hex::encode(m.recipient_x25519_public)
        ));
        line(format!(
            "| recipient X25519 public key (base64) | `{}` |",
            b64(&m.recipient_x25519_public)
        ));
        line(format!("| `AAD` | `{}` |", hex::encode(&m.aad)));
        line(format!(
            "| decoded `ciphertext` (`N ‖ ct ‖ tag`) | `{}` |",
            hex::encode(&m.ciphertext)
        ));
        line(format!("| `ciphertext` field | `{}` |", b64(&m.ciphertext)));
        line(format!(
            "| SHA-256(decoded ciphertext) | `{}` |",
            hex::encode(Sha256::digest(&m.ciphertext))
        ));
        line(format!(
            "| decoded `sealed` (`enc ‖ ct`) | `{}` |",
            hex::encode(m.sealed)
        ));
        line(format!("| `sealed` field | `{}` |", b64(&m.sealed)));
        line(format!(
            "| signed message | `{}` |",
            hex::encode(&m.signed_message)
        ));
        line(format!(
            "| decoded `signature` | `{}` |",
            hex::encode(m.signature)
        ));
        line(format!("| `signature` field | `{}` |", b64(&m.signature)));
        line(String::new());
        line("### 8.2 A two-segment file".into());
        line(String::new());
        line("Inputs:".into());
        line(String::new());
        line("| name | value |".into());
        line("|---|---|".into());
        line(format!("| file key `F` | `{}` |", hex::encode(&f.key)));
        line(format!(
            "| nonce prefix `R` | `{}` |",
            hex::encode(&f.nonce_prefix)
        ));
        line(format!(
            "| plaintext | {} bytes; byte `i` is `i mod 251` (SHA-256 `{}`) |",
            thousands(f.plaintext_len as u64),
            hex::encode(f.plaintext_sha256)
        ));
        line(String::new());
        line("Outputs:".into());
        line(String::new());
        line("| name | value |".into());
        line("|---|---|".into());
        line(format!(
            "| blob length | {} bytes (segment 0: {}; segment 1: {}) |",
            thousands(blob.len() as u64),
            thousands(SEGMENT_CIPHERTEXT_SIZE as u64),
            blob.len() - SEGMENT_CIPHERTEXT_SIZE
        ));
        line(format!(
            "| SHA-256 of the blob (`sha256` of the `File` object) | `{}` |",
            hex::encode(f.summary.sha256)
        ));
        line(format!(
            "| first 32 bytes of the blob | `{}` |",
            hex::encode(&blob[..32])
        ));
        line(format!(
            "| last 32 bytes of the blob | `{}` |",
            hex::encode(&blob[blob.len() - 32..])
        ));
        line(format!("| `key` field | `{}` |", b64(&f.key)));
        line(format!(
            "| `nonce_prefix` field | `{}` |",
            b64(&f.nonce_prefix)
        ));
        s
    }

    #[test]
    #[ignore = "prints the Markdown of PROTOCOL.md §8"]
    fn print_test_vectors() {
        println!("{}", vectors_markdown());
    }

    #[test]
    fn protocol_md_lists_these_vectors() {
        let doc = include_str!("../../docs/PROTOCOL.md");
        assert!(
            doc.contains(&vectors_markdown()),
            "docs/PROTOCOL.md §8 is out of date: regenerate it with the print_test_vectors test"
        );
    }
}
