//! TURN (RFC 8656) specifics beyond the attribute catalogue: the protocol constants
//! (requested transports, default and maximum lifetimes, the channel-number range) and
//! ChannelData frames (§12), the 4-byte-header framing of channel traffic.
//!
//! TURN's methods are [`super::message::Method`]'s constants (Allocate, Refresh, Send, Data,
//! CreatePermission, ChannelBind); its attributes are in [`super::attributes`].

use super::error::CodecError;

/// REQUESTED-TRANSPORT's protocol number for UDP (the only one RFC 8656 allocates).
pub const TRANSPORT_UDP: u8 = 17;
/// The lifetime of an allocation when the client asks for none (RFC 8656 §3.2), seconds.
pub const DEFAULT_LIFETIME_SECS: u32 = 600;
/// The longest lifetime a server should grant (RFC 8656 §7.2), seconds.
pub const MAX_LIFETIME_SECS: u32 = 3600;
/// How long a permission lasts (RFC 8656 §9), seconds.
pub const PERMISSION_LIFETIME_SECS: u32 = 300;
/// How long a channel binding lasts (RFC 8656 §12), seconds.
pub const CHANNEL_LIFETIME_SECS: u32 = 600;
/// The channel numbers a client may bind. RFC 8656 §12 narrowed the range to
/// 0x4000–0x4FFF; RFC 5766 allowed 0x4000–0x7FFF, and clients written to it (coturn's
/// own among them) still pick numbers up to 0x7FFF. The first two bits (0b01) already
/// tell ChannelData apart, so the relay accepts RFC 5766's range.
pub const CHANNEL_MIN: u16 = 0x4000;
pub const CHANNEL_MAX: u16 = 0x7FFF;
/// Size of a ChannelData header.
pub const CHANNEL_HEADER_LEN: usize = 4;

/// Whether `n` is a bindable channel number.
pub fn valid_channel(n: u16) -> bool {
    (CHANNEL_MIN..=CHANNEL_MAX).contains(&n)
}

/// A ChannelData frame: a channel number and application data, borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    pub channel: u16,
    pub data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// The channel number and data length of the frame at the start of `buf`, after checking
    /// the number's range.
    pub fn peek(buf: &[u8]) -> Result<(u16, usize), CodecError> {
        if buf.len() < CHANNEL_HEADER_LEN {
            return Err(CodecError::Truncated {
                needed: CHANNEL_HEADER_LEN,
                have: buf.len(),
            });
        }
        let channel = u16::from_be_bytes([buf[0], buf[1]]);
        if !valid_channel(channel) {
            return Err(CodecError::BadChannelNumber(channel));
        }
        Ok((channel, usize::from(u16::from_be_bytes([buf[2], buf[3]]))))
    }

    /// Parses a ChannelData datagram (UDP). Over UDP the data need not be padded, but a
    /// sender may pad it; bytes after the data, up to the next multiple of 4, are accepted
    /// and ignored, anything more is an error.
    pub fn parse(buf: &'a [u8]) -> Result<Self, CodecError> {
        let (channel, len) = Self::peek(buf)?;
        let end = CHANNEL_HEADER_LEN + len;
        let data = buf
            .get(CHANNEL_HEADER_LEN..end)
            .ok_or(CodecError::Truncated {
                needed: end,
                have: buf.len(),
            })?;
        if buf.len() > padded_len(len) {
            return Err(CodecError::LengthMismatch {
                declared: end,
                have: buf.len(),
            });
        }
        Ok(ChannelData { channel, data })
    }

    /// Size of the frame on the wire: header + data, plus padding to 4 if `padded`
    /// (required over TCP and TLS, RFC 8656 §12.5).
    pub fn wire_len(&self, padded: bool) -> usize {
        if padded {
            padded_len(self.data.len())
        } else {
            CHANNEL_HEADER_LEN + self.data.len()
        }
    }

    /// Appends the frame to `out`, padded to a multiple of 4 if `padded`.
    pub fn encode(&self, out: &mut Vec<u8>, padded: bool) -> Result<(), CodecError> {
        if !valid_channel(self.channel) {
            return Err(CodecError::BadChannelNumber(self.channel));
        }
        let len = u16::try_from(self.data.len()).map_err(|_| CodecError::TooLong)?;
        out.reserve(self.wire_len(padded));
        out.extend_from_slice(&self.channel.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(self.data);
        if padded {
            out.extend_from_slice(&[0u8; 3][..(4 - self.data.len() % 4) % 4]);
        }
        Ok(())
    }
}

/// Header + `data_len` rounded up to a multiple of 4.
pub fn padded_len(data_len: usize) -> usize {
    (CHANNEL_HEADER_LEN + data_len + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::super::attributes::{Attribute, Family, PasswordAlgorithm, PasswordAlgorithms};
    use super::super::attributes::{UnknownList, attr};
    use super::super::message::{Class, Message, MessageWriter, Method};
    use super::*;

    fn round_trip(a: Attribute<'_>) {
        let tid = [0x5A; 12];
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, Method::ALLOCATE, Class::Request, tid);
        w.attr(&a).unwrap();
        w.finish();
        let msg = Message::parse(&buf).unwrap();
        let raw = msg.attributes().next().unwrap();
        assert_eq!(raw.attr_type, a.attr_type());
        let back = Attribute::decode(raw, &tid).unwrap();
        match (a, back) {
            (Attribute::UnknownAttributes(x), Attribute::UnknownAttributes(y)) => {
                assert_eq!(x.iter().collect::<Vec<_>>(), y.iter().collect::<Vec<_>>())
            }
            (Attribute::PasswordAlgorithms(x), Attribute::PasswordAlgorithms(y)) => {
                assert_eq!(x.iter().collect::<Vec<_>>(), y.iter().collect::<Vec<_>>())
            }
            (a, back) => assert_eq!(a, back),
        }
    }

    #[test]
    fn every_turn_attribute_round_trips() {
        let v4 = "192.0.2.7:49152".parse().unwrap();
        let v6 = "[2001:db8::42]:3478".parse().unwrap();
        for a in [v4, v6] {
            round_trip(Attribute::XorPeerAddress(a));
            round_trip(Attribute::XorRelayedAddress(a));
        }
        round_trip(Attribute::ChannelNumber(0x4001));
        round_trip(Attribute::Lifetime(600));
        round_trip(Attribute::Data(b""));
        round_trip(Attribute::Data(b"hello"));
        round_trip(Attribute::Data(&[0xFF; 1000]));
        round_trip(Attribute::RequestedAddressFamily(Family::V4));
        round_trip(Attribute::RequestedAddressFamily(Family::V6));
        round_trip(Attribute::EvenPort(true));
        round_trip(Attribute::EvenPort(false));
        round_trip(Attribute::RequestedTransport(TRANSPORT_UDP));
        round_trip(Attribute::DontFragment);
        round_trip(Attribute::ReservationToken(&[1, 2, 3, 4, 5, 6, 7, 8]));
        round_trip(Attribute::AdditionalAddressFamily(Family::V6));
        round_trip(Attribute::AddressErrorCode {
            family: Family::V6,
            code: 440,
            reason: "Address Family not Supported",
        });
        round_trip(Attribute::Icmp {
            icmp_type: 3,
            icmp_code: 4,
            error_data: 1400,
        });
    }

    #[test]
    fn every_stun_attribute_round_trips() {
        let v4 = "192.0.2.1:32853".parse().unwrap();
        let v6 = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse()
            .unwrap();
        for a in [v4, v6] {
            round_trip(Attribute::MappedAddress(a));
            round_trip(Attribute::XorMappedAddress(a));
            round_trip(Attribute::AlternateServer(a));
        }
        round_trip(Attribute::Username("1700000000:alice"));
        round_trip(Attribute::UserHash(&[9; 32]));
        round_trip(Attribute::MessageIntegrity(&[3; 20]));
        round_trip(Attribute::MessageIntegritySha256(&[4; 16]));
        round_trip(Attribute::MessageIntegritySha256(&[4; 32]));
        round_trip(Attribute::Fingerprint(0xDEADBEEF));
        round_trip(Attribute::ErrorCode {
            code: 401,
            reason: "Unauthorized",
        });
        round_trip(Attribute::ErrorCode {
            code: 438,
            reason: "Stale Nonce",
        });
        round_trip(Attribute::ErrorCode {
            code: 300,
            reason: "",
        });
        round_trip(Attribute::Realm("outpost"));
        round_trip(Attribute::Nonce(
            "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA",
        ));
        round_trip(Attribute::Software("outpost 0.1"));
        let algs = [
            PasswordAlgorithm {
                algorithm: 1,
                params: &[],
            },
            PasswordAlgorithm {
                algorithm: 2,
                params: &[],
            },
            PasswordAlgorithm {
                algorithm: 0x7777,
                params: &[1, 2, 3],
            },
        ];
        round_trip(Attribute::PasswordAlgorithms(PasswordAlgorithms::List(
            &algs,
        )));
        round_trip(Attribute::PasswordAlgorithm(algs[1]));
        round_trip(Attribute::PasswordAlgorithm(algs[2]));
        round_trip(Attribute::UnknownAttributes(UnknownList::Types(&[
            0x7F01, 0x0033,
        ])));
        round_trip(Attribute::UnknownAttributes(UnknownList::Types(&[0x7F01])));
        round_trip(Attribute::Other {
            attr_type: 0xC057,
            value: b"opaque",
        });
    }

    #[test]
    fn bad_attribute_values_are_errors() {
        let tid = [0; 12];
        let bad = |attr_type, value: &[u8]| {
            let raw = super::super::message::RawAttribute {
                attr_type,
                value,
                offset: 20,
            };
            Attribute::decode(raw, &tid).unwrap_err()
        };
        assert_eq!(
            bad(attr::XOR_PEER_ADDRESS, &[0, 3, 0, 0, 1, 2, 3, 4]),
            CodecError::BadAddressFamily(3)
        );
        assert!(matches!(
            bad(attr::XOR_PEER_ADDRESS, &[0, 1, 0, 0, 1]),
            CodecError::BadAttributeLength { .. }
        ));
        assert!(matches!(
            bad(attr::XOR_PEER_ADDRESS, &[0, 2, 0, 0, 1, 2, 3, 4]),
            CodecError::BadAttributeLength { .. }
        ));
        assert!(matches!(
            bad(attr::ERROR_CODE, &[0, 0, 7, 0]),
            CodecError::BadAttributeValue { .. }
        ));
        assert!(matches!(
            bad(attr::ERROR_CODE, &[0, 0, 4, 100]),
            CodecError::BadAttributeValue { .. }
        ));
        assert!(matches!(
            bad(attr::USERNAME, &[0xFF]),
            CodecError::NotUtf8 { .. }
        ));
        assert!(matches!(
            bad(attr::LIFETIME, &[0; 3]),
            CodecError::BadAttributeLength { .. }
        ));
        assert!(matches!(
            bad(attr::DONT_FRAGMENT, &[0]),
            CodecError::BadAttributeLength { .. }
        ));
        assert!(matches!(
            bad(attr::MESSAGE_INTEGRITY_SHA256, &[0; 18]),
            CodecError::BadAttributeLength { .. }
        ));
        assert!(matches!(
            bad(attr::PASSWORD_ALGORITHMS, &[0, 1, 0, 8]),
            CodecError::BadAttributeValue { .. }
        ));
    }

    #[test]
    fn channel_data_round_trips_padded_and_unpadded() {
        for len in [0usize, 1, 2, 3, 4, 5, 160, 1199] {
            let data = vec![0xA5; len];
            let frame = ChannelData {
                channel: 0x4ABC,
                data: &data,
            };
            for padded in [false, true] {
                let mut out = Vec::new();
                frame.encode(&mut out, padded).unwrap();
                assert_eq!(out.len(), frame.wire_len(padded));
                if padded {
                    assert_eq!(out.len() % 4, 0);
                }
                assert_eq!(ChannelData::parse(&out).unwrap(), frame);
            }
        }
    }

    #[test]
    fn channel_data_errors() {
        let mut out = Vec::new();
        assert_eq!(
            ChannelData {
                channel: 0x8000,
                data: b"x"
            }
            .encode(&mut out, true),
            Err(CodecError::BadChannelNumber(0x8000))
        );
        assert_eq!(
            ChannelData::parse(&[0x3F, 0xFF, 0, 0]),
            Err(CodecError::BadChannelNumber(0x3FFF))
        );
        assert!(matches!(
            ChannelData::parse(&[0x40, 0, 0, 8, 1]),
            Err(CodecError::Truncated { .. })
        ));
        assert!(matches!(
            ChannelData::parse(&[0x40, 0, 0, 1, 1, 0, 0, 0, 9]),
            Err(CodecError::LengthMismatch { .. })
        ));
        assert!(matches!(
            ChannelData::parse(&[0x40]),
            Err(CodecError::Truncated { .. })
        ));
    }
}
