//! Stateless STUN nonces (RFC 8489 §9.2): the server keeps no table of nonces it gave out.
//!
//! A nonce is 16 base64url characters: 4 bytes of expiry (Unix seconds) and the first
//! 8 bytes of an HMAC-SHA256, under a key drawn at start-up, over the expiry and the
//! client's IP address. A nonce is therefore bound to one client address, cannot be
//! forged, and goes stale on its own; after a restart every nonce is stale and clients
//! simply take the new one from the 438 answer. Short, so the challenge to an
//! unauthenticated request stays small.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// Issues and checks nonces.
pub struct Nonces {
    key: [u8; 32],
    lifetime_secs: u64,
}

/// What a nonce a client sent is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Fresh,
    /// Ours, but expired: answer 438 with a new one.
    Stale,
    /// Not one of ours (or for another address): also answered 438, as RFC 8489 asks.
    Invalid,
}

impl Nonces {
    pub fn new(lifetime_secs: u64) -> Nonces {
        Nonces {
            key: rand::random(),
            lifetime_secs,
        }
    }

    fn mac(&self, expiry: u32, ip: IpAddr) -> [u8; 8] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        m.update(&expiry.to_be_bytes());
        match ip {
            IpAddr::V4(v4) => m.update(&v4.octets()),
            IpAddr::V6(v6) => m.update(&v6.octets()),
        }
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 8];
        out.copy_from_slice(&full[..8]);
        out
    }

    /// A fresh nonce for a client at `ip`.
    pub fn issue(&self, ip: IpAddr, now_secs: u64) -> String {
        let expiry = u32::try_from(now_secs.saturating_add(self.lifetime_secs)).unwrap_or(u32::MAX);
        let mut raw = [0u8; 12];
        raw[..4].copy_from_slice(&expiry.to_be_bytes());
        raw[4..].copy_from_slice(&self.mac(expiry, ip));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a nonce a client at `ip` sent back.
    pub fn check(&self, nonce: &str, ip: IpAddr, now_secs: u64) -> NonceCheck {
        let mut raw = [0u8; 12];
        match URL_SAFE_NO_PAD.decode_slice(nonce.as_bytes(), &mut raw) {
            Ok(12) => {}
            _ => return NonceCheck::Invalid,
        }
        let expiry = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        if !bool::from(raw[4..].ct_eq(&self.mac(expiry, ip))) {
            return NonceCheck::Invalid;
        }
        if u64::from(expiry) < now_secs {
            NonceCheck::Stale
        } else {
            NonceCheck::Fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_fresh_for_its_address_then_stale() {
        let n = Nonces::new(600);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let nonce = n.issue(a, 1_000_000);
        assert_eq!(nonce.len(), 16);
        assert_eq!(n.check(&nonce, a, 1_000_000), NonceCheck::Fresh);
        assert_eq!(n.check(&nonce, a, 1_000_600), NonceCheck::Fresh);
        assert_eq!(n.check(&nonce, a, 1_000_601), NonceCheck::Stale);
        assert_eq!(n.check(&nonce, b, 1_000_000), NonceCheck::Invalid);
        assert_eq!(n.check("not a nonce", a, 1_000_000), NonceCheck::Invalid);
        assert_eq!(n.check("", a, 1_000_000), NonceCheck::Invalid);
        // Another server's (or a previous run's) nonce is not accepted.
        let other = Nonces::new(600);
        assert_eq!(other.check(&nonce, a, 1_000_000), NonceCheck::Invalid);
        let mut forged = nonce.into_bytes();
        forged[15] = if forged[15] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(n.check(&forged, a, 1_000_000), NonceCheck::Invalid);
    }
}
