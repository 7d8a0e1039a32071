//! The published test vectors: RFC 5769 §2.1–2.4 and RFC 8489 Appendix B.1, typed in from the
//! RFCs' hex dumps. Each is parsed, its integrity and fingerprint verified, and (where the RFC
//! gives the full bytes and the inputs) re-encoded byte for byte.

use super::CodecError;
use super::attributes::{Attribute, PasswordAlgorithm, attr};
use super::integrity::{self, PASSWORD_ALGORITHM_SHA256};
use super::message::{Class, Message, MessageWriter, Method};

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    hex::decode(s).unwrap()
}

const SHORT_TERM_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";
const TID_5769: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];
const TID_LONG_TERM: [u8; 12] = [
    0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e,
];
/// "マトリックス" (U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9).
const USERNAME_LONG_TERM: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
/// "The\u{00AD}M\u{00AA}tr\u{2168}" after SASLprep / OpaqueString.
const PASSWORD_LONG_TERM: &str = "TheMatrIX";
const REALM: &str = "example.org";

/// RFC 5769 §2.1 Sample Request.
fn sample_request() -> Vec<u8> {
    unhex(
        "00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
         00 24 00 04 6e 00 01 ff
         80 29 00 08 93 2f f9 b1 51 26 3b 36
         00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
         00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
         80 28 00 04 e5 7a 3b cf",
    )
}

/// RFC 5769 §2.2 Sample IPv4 Response.
fn sample_ipv4_response() -> Vec<u8> {
    unhex(
        "01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 08 00 01 a1 47 e1 12 a6 43
         00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
         80 28 00 04 c0 7d 4c 96",
    )
}

/// RFC 5769 §2.3 Sample IPv6 Response.
fn sample_ipv6_response() -> Vec<u8> {
    unhex(
        "01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
         00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
         80 28 00 04 c8 fb 0b 4c",
    )
}

/// RFC 5769 §2.4 Sample Request with Long-Term Authentication.
fn sample_long_term_request() -> Vec<u8> {
    unhex(
        "00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
         00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
         00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
         00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
         00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66",
    )
}

/// RFC 8489 Appendix B.1 Sample Request with Long-Term Authentication with
/// MESSAGE-INTEGRITY-SHA256 and USERHASH.
fn sample_sha256_request() -> Vec<u8> {
    unhex(
        "00 01 00 90 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
         00 1e 00 20 4a 3c f3 8f ef 69 92 bd a9 52 c6 78 04 17 da 0f
                     24 81 94 15 56 9e 60 b2 05 c4 6e 41 40 7f 17 04
         00 15 00 29 6f 62 4d 61 74 4a 6f 73 32 41 41 41 43 66 2f 2f
                     34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39
                     46 53 54 76 79 36 34 73 41 00 00 00
         00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
         00 1d 00 04 00 02 00 00
         00 1c 00 20 b5 c7 bf 00 5b 6c 52 a2 1c 51 c5 e8 92 f8 19 24
                     13 62 96 cb 92 7c 43 14 93 09 27 8c c6 51 8e 65",
    )
}

#[test]
fn rfc5769_sample_request_parses_verifies_and_re_encodes() {
    let bytes = sample_request();
    assert_eq!(bytes.len(), 108);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(
        (msg.method(), msg.class()),
        (Method::BINDING, Class::Request)
    );
    assert_eq!(msg.transaction_id(), &TID_5769);
    msg.verify_integrity(SHORT_TERM_PASSWORD.as_bytes())
        .unwrap();
    msg.verify_fingerprint().unwrap();
    assert_eq!(
        msg.verify_integrity(b"wrong"),
        Err(CodecError::IntegrityMismatch)
    );
    let tid = msg.transaction_id();
    let get = |t| Attribute::decode(msg.get(t).unwrap(), tid).unwrap();
    assert_eq!(get(attr::SOFTWARE), Attribute::Software("STUN test client"));
    assert_eq!(get(attr::USERNAME), Attribute::Username("evtj:h6vY"));
    // PRIORITY (0x0024) is an ICE attribute, comprehension-required and unknown to a TURN
    // server; ICE-CONTROLLED (0x8029) is optional.
    assert_eq!(msg.unknown_attributes().as_slice(), &[0x0024]);

    let mut out = Vec::new();
    let mut w = MessageWriter::new(&mut out, Method::BINDING, Class::Request, TID_5769);
    w.attr(&Attribute::Software("STUN test client")).unwrap();
    w.raw(0x0024, &[0x6e, 0x00, 0x01, 0xff]).unwrap();
    w.raw(0x8029, &[0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36])
        .unwrap();
    w.raw_padded(attr::USERNAME, b"evtj:h6vY", b' ').unwrap();
    w.message_integrity(SHORT_TERM_PASSWORD.as_bytes()).unwrap();
    w.fingerprint().unwrap();
    w.finish();
    assert_eq!(hex::encode(&out), hex::encode(&bytes));
}

fn check_response(bytes: &[u8], mapped: &str) {
    let msg = Message::parse(bytes).unwrap();
    assert_eq!(
        (msg.method(), msg.class()),
        (Method::BINDING, Class::Success)
    );
    msg.verify_integrity(SHORT_TERM_PASSWORD.as_bytes())
        .unwrap();
    msg.verify_fingerprint().unwrap();
    let addr = mapped.parse().unwrap();
    assert_eq!(
        msg.get_decoded(attr::XOR_MAPPED_ADDRESS).unwrap().unwrap(),
        Attribute::XorMappedAddress(addr)
    );
    assert_eq!(
        msg.get_decoded(attr::SOFTWARE).unwrap().unwrap(),
        Attribute::Software("test vector")
    );
    assert!(msg.unknown_attributes().is_empty());

    let mut out = Vec::new();
    let mut w = MessageWriter::new(&mut out, Method::BINDING, Class::Success, TID_5769);
    w.raw_padded(attr::SOFTWARE, b"test vector", b' ').unwrap();
    w.attr(&Attribute::XorMappedAddress(addr)).unwrap();
    w.message_integrity(SHORT_TERM_PASSWORD.as_bytes()).unwrap();
    w.fingerprint().unwrap();
    w.finish();
    assert_eq!(hex::encode(&out), hex::encode(bytes));
}

#[test]
fn rfc5769_ipv4_response_parses_verifies_and_re_encodes() {
    check_response(&sample_ipv4_response(), "192.0.2.1:32853");
}

#[test]
fn rfc5769_ipv6_response_parses_verifies_and_re_encodes() {
    check_response(
        &sample_ipv6_response(),
        "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
    );
}

#[test]
fn rfc5769_long_term_request_parses_verifies_and_re_encodes() {
    let bytes = sample_long_term_request();
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.transaction_id(), &TID_LONG_TERM);
    let key = integrity::long_term_key_md5(USERNAME_LONG_TERM, REALM, PASSWORD_LONG_TERM);
    msg.verify_integrity(&key).unwrap();
    assert_eq!(
        msg.verify_fingerprint(),
        Err(CodecError::FingerprintMissing)
    );
    let nonce = "f//499k954d6OL34oL9FSTvy64sA";
    assert_eq!(
        msg.get_decoded(attr::USERNAME).unwrap().unwrap(),
        Attribute::Username(USERNAME_LONG_TERM)
    );
    assert_eq!(
        msg.get_decoded(attr::NONCE).unwrap().unwrap(),
        Attribute::Nonce(nonce)
    );
    assert_eq!(
        msg.get_decoded(attr::REALM).unwrap().unwrap(),
        Attribute::Realm(REALM)
    );

    let mut out = Vec::new();
    let mut w = MessageWriter::new(&mut out, Method::BINDING, Class::Request, TID_LONG_TERM);
    w.attr(&Attribute::Username(USERNAME_LONG_TERM)).unwrap();
    w.attr(&Attribute::Nonce(nonce)).unwrap();
    w.attr(&Attribute::Realm(REALM)).unwrap();
    w.message_integrity(&key).unwrap();
    w.finish();
    assert_eq!(hex::encode(&out), hex::encode(&bytes));
}

#[test]
fn rfc8489_b1_sha256_request_parses_and_carries_the_userhash() {
    let bytes = sample_sha256_request();
    assert_eq!(bytes.len(), 164);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.transaction_id(), &TID_LONG_TERM);
    let hash = integrity::userhash(USERNAME_LONG_TERM, REALM);
    assert_eq!(
        msg.get_decoded(attr::USERHASH).unwrap().unwrap(),
        Attribute::UserHash(&hash)
    );
    assert_eq!(
        msg.get_decoded(attr::NONCE).unwrap().unwrap(),
        Attribute::Nonce("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA")
    );
    assert_eq!(
        msg.get_decoded(attr::REALM).unwrap().unwrap(),
        Attribute::Realm(REALM)
    );
    assert_eq!(
        msg.get_decoded(attr::PASSWORD_ALGORITHM).unwrap().unwrap(),
        Attribute::PasswordAlgorithm(PasswordAlgorithm {
            algorithm: PASSWORD_ALGORITHM_SHA256,
            params: &[]
        })
    );
    assert!(msg.has_integrity_sha256());
    assert!(msg.unknown_attributes().is_empty());
}

#[test]
fn rfc8489_b1_sha256_integrity_verifies_and_re_encodes() {
    let bytes = sample_sha256_request();
    let msg = Message::parse(&bytes).unwrap();
    // PASSWORD-ALGORITHM is SHA-256, so the key is SHA-256(username:realm:password).
    let key = integrity::long_term_key_sha256(USERNAME_LONG_TERM, REALM, PASSWORD_LONG_TERM);
    msg.verify_integrity_sha256(&key).unwrap();
    let md5 = integrity::long_term_key_md5(USERNAME_LONG_TERM, REALM, PASSWORD_LONG_TERM);
    assert_eq!(
        msg.verify_integrity_sha256(&md5),
        Err(CodecError::IntegrityMismatch)
    );
    assert_eq!(
        msg.verify_integrity(&key),
        Err(CodecError::IntegrityMissing)
    );

    let hash = integrity::userhash(USERNAME_LONG_TERM, REALM);
    let mut out = Vec::new();
    let mut w = MessageWriter::new(&mut out, Method::BINDING, Class::Request, TID_LONG_TERM);
    w.attr(&Attribute::UserHash(&hash)).unwrap();
    w.attr(&Attribute::Nonce(
        "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA",
    ))
    .unwrap();
    w.attr(&Attribute::Realm(REALM)).unwrap();
    w.attr(&Attribute::PasswordAlgorithm(PasswordAlgorithm {
        algorithm: PASSWORD_ALGORITHM_SHA256,
        params: &[],
    }))
    .unwrap();
    w.message_integrity_sha256(&key).unwrap();
    w.finish();
    assert_eq!(hex::encode(&out), hex::encode(&bytes));
}

#[test]
fn truncated_message_integrity_sha256_verifies_on_its_leading_bytes() {
    for keep in [16usize, 20, 24, 28] {
        let mut out = Vec::new();
        let mut w = MessageWriter::new(&mut out, Method::REFRESH, Class::Request, [4; 12]);
        w.attr(&Attribute::Lifetime(0)).unwrap();
        w.finish();
        // Length as if a `keep`-byte MESSAGE-INTEGRITY-SHA256 were appended, then the MAC.
        let body = (out.len() - 20 + 4 + keep) as u16;
        out[2..4].copy_from_slice(&body.to_be_bytes());
        let mac = integrity::hmac_sha256(&out, b"k");
        out.extend_from_slice(&attr::MESSAGE_INTEGRITY_SHA256.to_be_bytes());
        out.extend_from_slice(&(keep as u16).to_be_bytes());
        out.extend_from_slice(&mac[..keep]);
        let msg = Message::parse(&out).unwrap();
        msg.verify_integrity_sha256(b"k").unwrap();
        assert_eq!(
            msg.verify_integrity_sha256(b"x"),
            Err(CodecError::IntegrityMismatch)
        );
        let last = out.len() - 1;
        out[last] ^= 1;
        let msg = Message::parse(&out).unwrap();
        assert_eq!(
            msg.verify_integrity_sha256(b"k"),
            Err(CodecError::IntegrityMismatch)
        );
    }
}

#[test]
fn a_corrupted_vector_fails_its_fingerprint() {
    let mut bytes = sample_request();
    bytes[30] ^= 0x01; // inside SOFTWARE
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(
        msg.verify_fingerprint(),
        Err(CodecError::FingerprintMismatch)
    );
    assert_eq!(
        msg.verify_integrity(SHORT_TERM_PASSWORD.as_bytes()),
        Err(CodecError::IntegrityMismatch)
    );
}
