//! Property-style robustness tests: random bytes, every truncation of valid messages and
//! randomly mutated valid messages go through every reader; none may panic.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::attributes::{Attribute, Family};
use super::framing::{next_frame, parse_datagram};
use super::message::{Class, Message, MessageWriter, Method};
use super::turn::ChannelData;

/// Exercises everything a server would do with an untrusted packet.
fn poke(bytes: &[u8]) {
    if let Ok(msg) = Message::parse_prefix(bytes) {
        for a in msg.attributes() {
            if let Ok(Attribute::UnknownAttributes(l)) = Attribute::decode(a, msg.transaction_id())
            {
                l.iter().count();
            }
            if let Ok(Attribute::PasswordAlgorithms(l)) = Attribute::decode(a, msg.transaction_id())
            {
                l.iter().count();
            }
        }
        let _ = msg.unknown_attributes();
        let _ = msg.verify_integrity(b"key");
        let _ = msg.verify_integrity_sha256(b"key");
        let _ = msg.verify_fingerprint();
        let _ = msg.method();
        let _ = msg.class();
    }
    let _ = Message::parse(bytes);
    let _ = parse_datagram(bytes);
    let _ = ChannelData::parse(bytes);
    let mut rest = bytes;
    while let Ok(Some((_, used))) = next_frame(rest) {
        rest = &rest[used..];
    }
}

fn valid_messages() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let tid = [0x11; 12];
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, Method::ALLOCATE, Class::Request, tid);
    w.attr(&Attribute::RequestedTransport(17)).unwrap();
    w.attr(&Attribute::RequestedAddressFamily(Family::V6))
        .unwrap();
    w.attr(&Attribute::Username("1:u")).unwrap();
    w.attr(&Attribute::XorPeerAddress("[::1]:9".parse().unwrap()))
        .unwrap();
    w.attr(&Attribute::ErrorCode {
        code: 420,
        reason: "Unknown",
    })
    .unwrap();
    w.raw(0x8002, &[0, 1, 0, 0, 0, 2, 0, 1, 9, 0, 0, 0])
        .unwrap();
    w.raw(0x000A, &[0, 1, 0, 2]).unwrap();
    w.attr(&Attribute::Icmp {
        icmp_type: 1,
        icmp_code: 2,
        error_data: 3,
    })
    .unwrap();
    w.message_integrity(b"key").unwrap();
    w.message_integrity_sha256(b"key").unwrap();
    w.fingerprint().unwrap();
    w.finish();
    out.push(buf);
    let mut cd = Vec::new();
    ChannelData {
        channel: 0x4001,
        data: b"media",
    }
    .encode(&mut cd, true)
    .unwrap();
    out.push(cd);
    out
}

#[test]
fn no_input_panics_the_readers() {
    let mut rng = StdRng::seed_from_u64(0x5354_554E);
    // Random bytes, biased towards plausible headers.
    for _ in 0..20_000 {
        let len = rng.random_range(0..200);
        let mut b: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if b.len() >= 8 && rng.random_bool(0.5) {
            b[0] &= 0x3F;
            b[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
            if rng.random_bool(0.5) {
                let body = ((b.len() - 4) & !3).saturating_sub(16) as u16;
                b[2..4].copy_from_slice(&body.to_be_bytes());
            }
        }
        poke(&b);
    }
    for valid in valid_messages() {
        // Every truncation.
        for n in 0..=valid.len() {
            poke(&valid[..n]);
        }
        // Random mutations.
        for _ in 0..20_000 {
            let mut b = valid.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            poke(&b);
        }
    }
}
