//! The client's half of the long-term credential mechanism (RFC 8489 §9.2): the username
//! and password, the REALM and NONCE the server last gave (in a 401 or 438 answer), the
//! key derived from them, signing a request (USERNAME, REALM, NONCE, MESSAGE-INTEGRITY) and
//! checking the integrity of a response.
//!
//! When a 401 carries PASSWORD-ALGORITHMS (an RFC 8489 server announcing the feature in its
//! nonce), the client picks SHA-256 if offered, else MD5, echoes the list and names its
//! choice in PASSWORD-ALGORITHM, and signs with MESSAGE-INTEGRITY-SHA256 for SHA-256.
//! Otherwise (RFC 5389 servers such as coturn) it is MD5 and MESSAGE-INTEGRITY.

use crate::calling::attributes::{Attribute, PasswordAlgorithm, PasswordAlgorithms, attr};
use crate::calling::error::CodecError;
use crate::calling::integrity::{
    PASSWORD_ALGORITHM_MD5, PASSWORD_ALGORITHM_SHA256, long_term_key_md5, long_term_key_sha256,
};
use crate::calling::message::{Message, MessageWriter};

/// What the server's challenge changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Learned {
    /// The answer carried a usable nonce (and a realm, now or before).
    Challenge,
    /// The answer carried no usable nonce or realm.
    Nothing,
}

/// Credentials and the server's current challenge.
#[derive(Clone)]
pub(crate) struct Auth {
    username: String,
    password: String,
    realm: Option<String>,
    nonce: Option<String>,
    /// PASSWORD-ALGORITHMS exactly as the server sent it, when it sent one.
    algorithms: Option<Vec<u8>>,
    algorithm: u16,
    key: Vec<u8>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("nonce", &self.nonce)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Auth {
    pub(crate) fn new(username: String, password: String) -> Self {
        Auth {
            username,
            password,
            realm: None,
            nonce: None,
            algorithms: None,
            algorithm: PASSWORD_ALGORITHM_MD5,
            key: Vec::new(),
        }
    }

    pub(crate) fn username(&self) -> &str {
        &self.username
    }

    pub(crate) fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }

    pub(crate) fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// Replaces the nonce (a test replaying an old one).
    pub(crate) fn set_nonce(&mut self, nonce: String) {
        self.nonce = Some(nonce);
    }

    /// Whether requests can be signed (a realm and a nonce are known).
    pub(crate) fn ready(&self) -> bool {
        self.realm.is_some() && self.nonce.is_some()
    }

    /// Takes REALM, NONCE and PASSWORD-ALGORITHMS from a 401 or 438 answer.
    pub(crate) fn learn(&mut self, msg: &Message<'_>) -> Learned {
        let realm = match msg.get_decoded(attr::REALM) {
            Some(Ok(Attribute::Realm(r))) => Some(r),
            _ => None,
        };
        let nonce = match msg.get_decoded(attr::NONCE) {
            Some(Ok(Attribute::Nonce(n))) => n,
            _ => return Learned::Nothing,
        };
        if realm.is_none() && self.realm.is_none() {
            return Learned::Nothing;
        }
        if let Some(r) = realm {
            self.realm = Some(r.to_string());
        }
        self.nonce = Some(nonce.to_string());
        if let Some(Ok(Attribute::PasswordAlgorithms(list))) =
            msg.get_decoded(attr::PASSWORD_ALGORITHMS)
        {
            let offered: Vec<u16> = list.iter().map(|a| a.algorithm).collect();
            self.algorithm = if offered.contains(&PASSWORD_ALGORITHM_SHA256) {
                PASSWORD_ALGORITHM_SHA256
            } else {
                PASSWORD_ALGORITHM_MD5
            };
            self.algorithms = msg.get(attr::PASSWORD_ALGORITHMS).map(|a| a.value.to_vec());
        }
        self.derive_key();
        Learned::Challenge
    }

    fn derive_key(&mut self) {
        let realm = self.realm.as_deref().unwrap_or("");
        self.key = if self.algorithm == PASSWORD_ALGORITHM_SHA256 {
            long_term_key_sha256(&self.username, realm, &self.password).to_vec()
        } else {
            long_term_key_md5(&self.username, realm, &self.password).to_vec()
        };
    }

    /// Appends USERNAME, REALM, NONCE, the password algorithm attributes if the server asked
    /// for them, and MESSAGE-INTEGRITY(-SHA256). The caller adds FINGERPRINT.
    pub(crate) fn sign(&self, w: &mut MessageWriter<'_>) -> Result<(), CodecError> {
        w.attr(&Attribute::Username(&self.username))?;
        if let Some(r) = &self.realm {
            w.attr(&Attribute::Realm(r))?;
        }
        if let Some(n) = &self.nonce {
            w.attr(&Attribute::Nonce(n))?;
        }
        if let Some(list) = &self.algorithms {
            w.attr(&Attribute::PasswordAlgorithms(PasswordAlgorithms::Wire(
                list,
            )))?;
            w.attr(&Attribute::PasswordAlgorithm(PasswordAlgorithm {
                algorithm: self.algorithm,
                params: &[],
            }))?;
        }
        if self.algorithm == PASSWORD_ALGORITHM_SHA256 {
            w.message_integrity_sha256(&self.key)
        } else {
            w.message_integrity(&self.key)
        }
    }

    /// Checks the integrity of a success response to a signed request: MESSAGE-INTEGRITY-SHA256
    /// if present, else MESSAGE-INTEGRITY, which a server must include.
    pub(crate) fn verify(&self, msg: &Message<'_>) -> Result<(), CodecError> {
        if msg.has_integrity_sha256() {
            msg.verify_integrity_sha256(&self.key)
        } else {
            msg.verify_integrity(&self.key)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calling::message::{Class, Method};

    fn challenge(realm: Option<&str>, nonce: Option<&str>, algorithms: &[u16]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, Method::ALLOCATE, Class::Error, [1; 12]);
        w.attr(&Attribute::ErrorCode {
            code: 401,
            reason: "Unauthorized",
        })
        .unwrap();
        if let Some(r) = realm {
            w.attr(&Attribute::Realm(r)).unwrap();
        }
        if let Some(n) = nonce {
            w.attr(&Attribute::Nonce(n)).unwrap();
        }
        let list: Vec<PasswordAlgorithm<'_>> = algorithms
            .iter()
            .map(|&algorithm| PasswordAlgorithm {
                algorithm,
                params: &[],
            })
            .collect();
        if !list.is_empty() {
            w.attr(&Attribute::PasswordAlgorithms(PasswordAlgorithms::List(
                &list,
            )))
            .unwrap();
        }
        w.finish();
        buf
    }

    fn signed(auth: &Auth) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, Method::REFRESH, Class::Request, [2; 12]);
        auth.sign(&mut w).unwrap();
        w.fingerprint().unwrap();
        w.finish();
        buf
    }

    #[test]
    fn a_401_gives_realm_and_nonce_and_requests_sign_with_the_md5_key() {
        let mut a = Auth::new("1700000000:alice".into(), "pw".into());
        assert!(!a.ready());
        let c = challenge(Some("R"), Some("n1"), &[]);
        assert_eq!(a.learn(&Message::parse(&c).unwrap()), Learned::Challenge);
        assert!(a.ready());
        assert_eq!((a.realm(), a.nonce()), (Some("R"), Some("n1")));

        let req = signed(&a);
        let msg = Message::parse(&req).unwrap();
        let key = long_term_key_md5("1700000000:alice", "R", "pw");
        msg.verify_integrity(&key).unwrap();
        msg.verify_fingerprint().unwrap();
        assert!(!msg.has_integrity_sha256());
        assert!(msg.get(attr::PASSWORD_ALGORITHM).is_none());
        assert!(matches!(
            msg.get_decoded(attr::NONCE),
            Some(Ok(Attribute::Nonce("n1")))
        ));
        // The same key checks a response.
        a.verify(&msg).unwrap();
        let other = Auth {
            key: long_term_key_md5("1700000000:alice", "R", "wrong").to_vec(),
            ..a.clone()
        };
        assert!(other.verify(&msg).is_err());
    }

    #[test]
    fn a_438_with_only_a_nonce_keeps_the_realm() {
        let mut a = Auth::new("u".into(), "p".into());
        assert_eq!(
            a.learn(&Message::parse(&challenge(None, Some("n"), &[])).unwrap()),
            Learned::Nothing,
            "no realm known yet"
        );
        a.learn(&Message::parse(&challenge(Some("R"), Some("n1"), &[])).unwrap());
        assert_eq!(
            a.learn(&Message::parse(&challenge(None, Some("n2"), &[])).unwrap()),
            Learned::Challenge
        );
        assert_eq!((a.realm(), a.nonce()), (Some("R"), Some("n2")));
        assert_eq!(
            a.learn(&Message::parse(&challenge(Some("R"), None, &[])).unwrap()),
            Learned::Nothing
        );
        a.set_nonce("old".into());
        assert_eq!(a.nonce(), Some("old"));
    }

    #[test]
    fn offered_sha256_is_chosen_echoed_and_signed_with_sha256() {
        let mut a = Auth::new("u".into(), "p".into());
        let c = challenge(
            Some("R"),
            Some("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA"),
            &[PASSWORD_ALGORITHM_MD5, PASSWORD_ALGORITHM_SHA256],
        );
        a.learn(&Message::parse(&c).unwrap());
        let req = signed(&a);
        let msg = Message::parse(&req).unwrap();
        msg.verify_integrity_sha256(&long_term_key_sha256("u", "R", "p"))
            .unwrap();
        assert!(matches!(
            msg.get_decoded(attr::PASSWORD_ALGORITHM),
            Some(Ok(Attribute::PasswordAlgorithm(PasswordAlgorithm {
                algorithm: PASSWORD_ALGORITHM_SHA256,
                ..
            })))
        ));
        let echoed = msg.get(attr::PASSWORD_ALGORITHMS).unwrap().value;
        let offered = Message::parse(&c)
            .unwrap()
            .get(attr::PASSWORD_ALGORITHMS)
            .unwrap()
            .value;
        assert_eq!(echoed, offered);

        // MD5 alone: MD5 key, MESSAGE-INTEGRITY, and the list still echoed.
        let mut b = Auth::new("u".into(), "p".into());
        b.learn(
            &Message::parse(&challenge(Some("R"), Some("n"), &[PASSWORD_ALGORITHM_MD5])).unwrap(),
        );
        let req = signed(&b);
        let msg = Message::parse(&req).unwrap();
        msg.verify_integrity(&long_term_key_md5("u", "R", "p"))
            .unwrap();
        assert!(msg.get(attr::PASSWORD_ALGORITHMS).is_some());
    }
}
