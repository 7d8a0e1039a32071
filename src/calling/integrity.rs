//! Message authentication and checksums (RFC 8489 §9, §14.5–14.7): long-term and short-term
//! key derivation, USERHASH, MESSAGE-INTEGRITY (HMAC-SHA1), MESSAGE-INTEGRITY-SHA256
//! (HMAC-SHA256, possibly truncated) and FINGERPRINT (CRC-32 XOR 0x5354554e).
//!
//! Each MAC covers the message up to its attribute with the header's length field set as if
//! that attribute were the last one; verification patches a 20-byte copy of the header on the
//! stack and feeds the MAC in two pieces, so it never copies the packet. MACs are compared in
//! constant time (`hmac`'s `verify_slice` / `verify_truncated_left`).

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;

use super::error::CodecError;
use super::message::HEADER_LEN;

/// XORed into the CRC-32 of FINGERPRINT (the ASCII of "STUN").
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Password algorithms of PASSWORD-ALGORITHM(S) (RFC 8489 §18.5).
pub const PASSWORD_ALGORITHM_MD5: u16 = 0x0001;
pub const PASSWORD_ALGORITHM_SHA256: u16 = 0x0002;

/// Long-term credential key for MESSAGE-INTEGRITY and the MD5 password algorithm:
/// MD5(username ":" realm ":" password). Inputs are taken as already processed by the
/// OpaqueString profile (the TURN REST usernames and passwords are ASCII).
pub fn long_term_key_md5(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

/// Long-term credential key for the SHA-256 password algorithm (RFC 8489 §9.2.2):
/// SHA-256(username ":" realm ":" password).
pub fn long_term_key_sha256(username: &str, realm: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

/// USERHASH (RFC 8489 §14.4): SHA-256(username ":" realm).
pub fn userhash(username: &str, realm: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.finalize().into()
}

/// The header of `msg` with its length field replaced by `len`.
fn patched_header(msg: &[u8], len: usize) -> Result<[u8; HEADER_LEN], CodecError> {
    let mut header = [0u8; HEADER_LEN];
    let src = msg.get(..HEADER_LEN).ok_or(CodecError::Truncated {
        needed: HEADER_LEN,
        have: msg.len(),
    })?;
    header.copy_from_slice(src);
    let len = u16::try_from(len).map_err(|_| CodecError::TooLong)?;
    header[2..4].copy_from_slice(&len.to_be_bytes());
    Ok(header)
}

/// HMAC-SHA1 over `msg` as it stands (the writer has already set the length).
pub(crate) fn hmac_sha1(msg: &[u8], key: &[u8]) -> [u8; 20] {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 over `msg` as it stands.
pub(crate) fn hmac_sha256(msg: &[u8], key: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The MESSAGE-INTEGRITY-style attribute at offset `at` of `msg`: (its value, the length
/// field the MAC is computed with, the MAC input after the header).
type MacParts<'a> = (&'a [u8], [u8; HEADER_LEN], &'a [u8]);

fn mac_input(msg: &[u8], at: usize) -> Result<MacParts<'_>, CodecError> {
    let attr_header = msg.get(at..at + 4).ok_or(CodecError::IntegrityMissing)?;
    let len = usize::from(u16::from_be_bytes([attr_header[2], attr_header[3]]));
    let value = msg
        .get(at + 4..at + 4 + len)
        .ok_or(CodecError::IntegrityMissing)?;
    let header = patched_header(msg, at + 4 + len - HEADER_LEN)?;
    let body = msg
        .get(HEADER_LEN..at)
        .ok_or(CodecError::IntegrityMissing)?;
    Ok((value, header, body))
}

/// Verifies the MESSAGE-INTEGRITY attribute at offset `at`.
pub(crate) fn verify_sha1(msg: &[u8], at: usize, key: &[u8]) -> Result<(), CodecError> {
    let (value, header, body) = mac_input(msg, at)?;
    if value.len() != 20 {
        return Err(CodecError::BadAttributeLength {
            attr_type: super::attributes::attr::MESSAGE_INTEGRITY,
            len: value.len(),
        });
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(&header);
    mac.update(body);
    mac.verify_slice(value)
        .map_err(|_| CodecError::IntegrityMismatch)
}

/// Verifies the MESSAGE-INTEGRITY-SHA256 attribute at offset `at`. The value may be
/// truncated to 16..=32 bytes in steps of 4 (RFC 8489 §14.6); it is compared with that
/// many leading bytes of the HMAC.
pub(crate) fn verify_sha256(msg: &[u8], at: usize, key: &[u8]) -> Result<(), CodecError> {
    let (value, header, body) = mac_input(msg, at)?;
    if !(16..=32).contains(&value.len()) || !value.len().is_multiple_of(4) {
        return Err(CodecError::BadAttributeLength {
            attr_type: super::attributes::attr::MESSAGE_INTEGRITY_SHA256,
            len: value.len(),
        });
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(&header);
    mac.update(body);
    mac.verify_truncated_left(value)
        .map_err(|_| CodecError::IntegrityMismatch)
}

/// FINGERPRINT value over `msg` as it stands (the writer has set the length).
pub(crate) fn fingerprint(msg: &[u8]) -> u32 {
    crc32fast::hash(msg) ^ FINGERPRINT_XOR
}

/// Verifies the FINGERPRINT attribute at offset `at` (the parser made sure it is last).
pub(crate) fn verify_fingerprint(msg: &[u8], at: usize) -> Result<(), CodecError> {
    let value = msg.get(at + 4..).ok_or(CodecError::FingerprintMissing)?;
    let got = <[u8; 4]>::try_from(value).map_err(|_| CodecError::BadAttributeLength {
        attr_type: super::attributes::attr::FINGERPRINT,
        len: value.len(),
    })?;
    let header = patched_header(msg, at + 8 - HEADER_LEN)?;
    let body = msg
        .get(HEADER_LEN..at)
        .ok_or(CodecError::FingerprintMissing)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header);
    crc.update(body);
    if crc.finalize() ^ FINGERPRINT_XOR == u32::from_be_bytes(got) {
        Ok(())
    } else {
        Err(CodecError::FingerprintMismatch)
    }
}
