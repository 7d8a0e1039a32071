//! The attribute catalogue (RFC 8489 §14, §18.3; RFC 8656 §18): attribute type numbers, the
//! typed, borrowed value of each ([`Attribute`]), decoding one from a [`RawAttribute`] and
//! encoding one into a [`MessageWriter`]. Address attributes (MAPPED-ADDRESS and the XOR
//! forms, IPv4 and IPv6) are handled here too.
//!
//! MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT decode here as plain values;
//! computing and checking them is [`super::integrity`]'s, through the writer and
//! [`super::message::Message`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::error::CodecError;
use super::message::{MAGIC_COOKIE, MessageWriter, RawAttribute, TransactionId};

/// Attribute type numbers.
pub mod attr {
    // RFC 8489, comprehension-required.
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    pub const USERHASH: u16 = 0x001E;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    // RFC 8489, comprehension-optional.
    pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
    pub const ALTERNATE_DOMAIN: u16 = 0x8003;
    pub const SOFTWARE: u16 = 0x8022;
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    pub const FINGERPRINT: u16 = 0x8028;
    // RFC 8656 (TURN), comprehension-required.
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    pub const EVEN_PORT: u16 = 0x0018;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const DONT_FRAGMENT: u16 = 0x001A;
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    // RFC 8656 (TURN), comprehension-optional.
    pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
    pub const ADDRESS_ERROR_CODE: u16 = 0x8001;
    pub const ICMP: u16 = 0x8004;
}

/// Whether this codec knows `attr_type` (for the 420 Unknown Attribute check).
pub fn is_known(attr_type: u16) -> bool {
    use attr::*;
    matches!(
        attr_type,
        MAPPED_ADDRESS
            | USERNAME
            | MESSAGE_INTEGRITY
            | ERROR_CODE
            | UNKNOWN_ATTRIBUTES
            | REALM
            | NONCE
            | MESSAGE_INTEGRITY_SHA256
            | PASSWORD_ALGORITHM
            | USERHASH
            | XOR_MAPPED_ADDRESS
            | PASSWORD_ALGORITHMS
            | SOFTWARE
            | ALTERNATE_SERVER
            | FINGERPRINT
            | CHANNEL_NUMBER
            | LIFETIME
            | XOR_PEER_ADDRESS
            | DATA
            | XOR_RELAYED_ADDRESS
            | REQUESTED_ADDRESS_FAMILY
            | EVEN_PORT
            | REQUESTED_TRANSPORT
            | DONT_FRAGMENT
            | RESERVATION_TOKEN
            | ADDITIONAL_ADDRESS_FAMILY
            | ADDRESS_ERROR_CODE
            | ICMP
    )
}

/// An address family as STUN encodes it (0x01 IPv4, 0x02 IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn code(self) -> u8 {
        match self {
            Family::V4 => 0x01,
            Family::V6 => 0x02,
        }
    }

    pub fn from_code(code: u8) -> Result<Self, CodecError> {
        match code {
            0x01 => Ok(Family::V4),
            0x02 => Ok(Family::V6),
            other => Err(CodecError::BadAddressFamily(other)),
        }
    }

    pub fn of(addr: &SocketAddr) -> Self {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// A list of 16-bit values borrowed from an attribute (UNKNOWN-ATTRIBUTES).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct U16List<'a>(&'a [u8]);

impl<'a> U16List<'a> {
    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        self.0
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
    }
}

/// Either a list borrowed from a packet or one to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownList<'a> {
    Wire(U16List<'a>),
    Types(&'a [u16]),
}

impl<'a> UnknownList<'a> {
    pub fn iter(&self) -> Box<dyn Iterator<Item = u16> + 'a> {
        match *self {
            UnknownList::Wire(l) => Box::new(l.iter()),
            UnknownList::Types(t) => Box::new(t.iter().copied()),
        }
    }
}

/// One password algorithm with its parameters (RFC 8489 §14.11/14.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordAlgorithm<'a> {
    pub algorithm: u16,
    pub params: &'a [u8],
}

/// The algorithms of PASSWORD-ALGORITHMS, borrowed from the packet (checked when decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAlgorithms<'a> {
    Wire(&'a [u8]),
    List(&'a [PasswordAlgorithm<'a>]),
}

impl<'a> PasswordAlgorithms<'a> {
    pub fn iter(&self) -> Box<dyn Iterator<Item = PasswordAlgorithm<'a>> + 'a> {
        match *self {
            PasswordAlgorithms::List(l) => Box::new(l.iter().copied()),
            PasswordAlgorithms::Wire(mut rest) => Box::new(std::iter::from_fn(move || {
                let (alg, tail) = parse_password_algorithm(rest).ok()?;
                rest = tail;
                Some(alg)
            })),
        }
    }
}

fn parse_password_algorithm(b: &[u8]) -> Result<(PasswordAlgorithm<'_>, &[u8]), CodecError> {
    let bad = CodecError::BadAttributeValue {
        attr_type: attr::PASSWORD_ALGORITHMS,
    };
    let head = b.get(..4).ok_or(bad)?;
    let algorithm = u16::from_be_bytes([head[0], head[1]]);
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let params = b.get(4..4 + len).ok_or(bad)?;
    let next = (4 + len + 3) & !3;
    let rest = b.get(next..).ok_or(bad)?;
    Ok((PasswordAlgorithm { algorithm, params }, rest))
}

fn password_algorithm_len(a: &PasswordAlgorithm<'_>) -> usize {
    4 + ((a.params.len() + 3) & !3)
}

fn put_password_algorithm(b: &mut Vec<u8>, a: &PasswordAlgorithm<'_>) {
    b.extend_from_slice(&a.algorithm.to_be_bytes());
    b.extend_from_slice(&(a.params.len() as u16).to_be_bytes());
    b.extend_from_slice(a.params);
    b.extend_from_slice(&[0u8; 3][..(4 - a.params.len() % 4) % 4]);
}

/// One attribute's typed value, borrowing from the packet when decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute<'a> {
    MappedAddress(SocketAddr),
    XorMappedAddress(SocketAddr),
    Username(&'a str),
    UserHash(&'a [u8; 32]),
    /// The 20-byte HMAC-SHA1 as found in a packet (write it with
    /// [`MessageWriter::message_integrity`]).
    MessageIntegrity(&'a [u8; 20]),
    /// 16 to 32 bytes, a multiple of 4.
    MessageIntegritySha256(&'a [u8]),
    Fingerprint(u32),
    /// Error code 300..=699 and its reason phrase.
    ErrorCode {
        code: u16,
        reason: &'a str,
    },
    Realm(&'a str),
    Nonce(&'a str),
    PasswordAlgorithms(PasswordAlgorithms<'a>),
    PasswordAlgorithm(PasswordAlgorithm<'a>),
    UnknownAttributes(UnknownList<'a>),
    Software(&'a str),
    AlternateServer(SocketAddr),
    ChannelNumber(u16),
    /// Seconds.
    Lifetime(u32),
    XorPeerAddress(SocketAddr),
    Data(&'a [u8]),
    XorRelayedAddress(SocketAddr),
    RequestedAddressFamily(Family),
    /// The R bit: reserve the next-higher port too.
    EvenPort(bool),
    /// An IP protocol number (17 = UDP).
    RequestedTransport(u8),
    DontFragment,
    ReservationToken(&'a [u8; 8]),
    AdditionalAddressFamily(Family),
    AddressErrorCode {
        family: Family,
        code: u16,
        reason: &'a str,
    },
    Icmp {
        icmp_type: u8,
        icmp_code: u8,
        error_data: u32,
    },
    /// An attribute this catalogue does not know.
    Other {
        attr_type: u16,
        value: &'a [u8],
    },
}

fn exact<const N: usize>(v: &[u8], attr_type: u16) -> Result<&[u8; N], CodecError> {
    <&[u8; N]>::try_from(v).map_err(|_| CodecError::BadAttributeLength {
        attr_type,
        len: v.len(),
    })
}

fn utf8(v: &[u8], attr_type: u16, max: usize) -> Result<&str, CodecError> {
    if v.len() > max {
        return Err(CodecError::BadAttributeLength {
            attr_type,
            len: v.len(),
        });
    }
    std::str::from_utf8(v).map_err(|_| CodecError::NotUtf8 { attr_type })
}

/// Decodes (XOR-)MAPPED-ADDRESS-style values; `xor` is the transaction id for the XOR forms.
fn decode_address(
    v: &[u8],
    attr_type: u16,
    xor: Option<&TransactionId>,
) -> Result<SocketAddr, CodecError> {
    let bad_len = CodecError::BadAttributeLength {
        attr_type,
        len: v.len(),
    };
    if v.len() < 4 {
        return Err(bad_len);
    }
    let family = Family::from_code(v[1])?;
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut port = u16::from_be_bytes([v[2], v[3]]);
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match family {
        Family::V4 => {
            let mut a = *exact::<4>(&v[4..], attr_type).map_err(|_| bad_len)?;
            if xor.is_some() {
                for (b, k) in a.iter_mut().zip(cookie) {
                    *b ^= k;
                }
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        Family::V6 => {
            let mut a = *exact::<16>(&v[4..], attr_type).map_err(|_| bad_len)?;
            if let Some(tid) = xor {
                let key = cookie.iter().chain(tid.iter());
                for (b, k) in a.iter_mut().zip(key) {
                    *b ^= k;
                }
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

fn address_len(addr: &SocketAddr) -> usize {
    if addr.is_ipv4() { 8 } else { 20 }
}

fn put_address(b: &mut Vec<u8>, addr: &SocketAddr, xor: Option<&TransactionId>) {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut port = addr.port();
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    b.push(0);
    b.push(Family::of(addr).code());
    b.extend_from_slice(&port.to_be_bytes());
    match (addr.ip(), xor) {
        (IpAddr::V4(ip), None) => b.extend_from_slice(&ip.octets()),
        (IpAddr::V4(ip), Some(_)) => b.extend(ip.octets().iter().zip(cookie).map(|(a, k)| a ^ k)),
        (IpAddr::V6(ip), None) => b.extend_from_slice(&ip.octets()),
        (IpAddr::V6(ip), Some(tid)) => {
            let key = cookie.iter().chain(tid.iter());
            b.extend(ip.octets().iter().zip(key).map(|(a, k)| a ^ k))
        }
    }
}

/// ERROR-CODE's value: 21 reserved bits, a 3-bit class (hundreds), an 8-bit number
/// (0..=99), then the reason phrase (at most 763 bytes, RFC 8489 §14.8).
fn decode_error_code(v: &[u8], attr_type: u16) -> Result<(u16, &str), CodecError> {
    if v.len() < 4 {
        return Err(CodecError::BadAttributeLength {
            attr_type,
            len: v.len(),
        });
    }
    let class = u16::from(v[2] & 0x07);
    let number = u16::from(v[3]);
    if !(3..=6).contains(&class) || number > 99 {
        return Err(CodecError::BadAttributeValue { attr_type });
    }
    Ok((class * 100 + number, utf8(&v[4..], attr_type, 763)?))
}

fn put_error_code(b: &mut Vec<u8>, first: u8, code: u16, reason: &str) {
    b.extend_from_slice(&[first, 0, (code / 100) as u8, (code % 100) as u8]);
    b.extend_from_slice(reason.as_bytes());
}

impl<'a> Attribute<'a> {
    /// Decodes `raw`; `tid` is the message's transaction id (for XOR-ed IPv6 addresses).
    pub fn decode(raw: RawAttribute<'a>, tid: &TransactionId) -> Result<Self, CodecError> {
        let t = raw.attr_type;
        let v = raw.value;
        let bad_len = CodecError::BadAttributeLength {
            attr_type: t,
            len: v.len(),
        };
        Ok(match t {
            attr::MAPPED_ADDRESS => Attribute::MappedAddress(decode_address(v, t, None)?),
            attr::XOR_MAPPED_ADDRESS => {
                Attribute::XorMappedAddress(decode_address(v, t, Some(tid))?)
            }
            attr::ALTERNATE_SERVER => Attribute::AlternateServer(decode_address(v, t, None)?),
            attr::XOR_PEER_ADDRESS => Attribute::XorPeerAddress(decode_address(v, t, Some(tid))?),
            attr::XOR_RELAYED_ADDRESS => {
                Attribute::XorRelayedAddress(decode_address(v, t, Some(tid))?)
            }
            attr::USERNAME => Attribute::Username(utf8(v, t, 509)?),
            attr::USERHASH => Attribute::UserHash(exact::<32>(v, t)?),
            attr::MESSAGE_INTEGRITY => Attribute::MessageIntegrity(exact::<20>(v, t)?),
            attr::MESSAGE_INTEGRITY_SHA256 => {
                if !(16..=32).contains(&v.len()) || !v.len().is_multiple_of(4) {
                    return Err(bad_len);
                }
                Attribute::MessageIntegritySha256(v)
            }
            attr::FINGERPRINT => Attribute::Fingerprint(u32::from_be_bytes(*exact::<4>(v, t)?)),
            attr::ERROR_CODE => {
                let (code, reason) = decode_error_code(v, t)?;
                Attribute::ErrorCode { code, reason }
            }
            attr::REALM => Attribute::Realm(utf8(v, t, 763)?),
            attr::NONCE => Attribute::Nonce(utf8(v, t, 763)?),
            attr::SOFTWARE => Attribute::Software(utf8(v, t, 763)?),
            attr::PASSWORD_ALGORITHMS => {
                let mut rest = v;
                while !rest.is_empty() {
                    rest = parse_password_algorithm(rest)?.1;
                }
                Attribute::PasswordAlgorithms(PasswordAlgorithms::Wire(v))
            }
            attr::PASSWORD_ALGORITHM => {
                let (alg, rest) = parse_password_algorithm(v)
                    .map_err(|_| CodecError::BadAttributeValue { attr_type: t })?;
                if !rest.is_empty() {
                    return Err(bad_len);
                }
                Attribute::PasswordAlgorithm(alg)
            }
            attr::UNKNOWN_ATTRIBUTES => {
                if !v.len().is_multiple_of(2) {
                    return Err(bad_len);
                }
                Attribute::UnknownAttributes(UnknownList::Wire(U16List(v)))
            }
            attr::CHANNEL_NUMBER => {
                let b = exact::<4>(v, t)?;
                Attribute::ChannelNumber(u16::from_be_bytes([b[0], b[1]]))
            }
            attr::LIFETIME => Attribute::Lifetime(u32::from_be_bytes(*exact::<4>(v, t)?)),
            attr::DATA => Attribute::Data(v),
            attr::REQUESTED_ADDRESS_FAMILY => {
                Attribute::RequestedAddressFamily(Family::from_code(exact::<4>(v, t)?[0])?)
            }
            attr::ADDITIONAL_ADDRESS_FAMILY => {
                Attribute::AdditionalAddressFamily(Family::from_code(exact::<4>(v, t)?[0])?)
            }
            attr::EVEN_PORT => Attribute::EvenPort(exact::<1>(v, t)?[0] & 0x80 != 0),
            attr::REQUESTED_TRANSPORT => Attribute::RequestedTransport(exact::<4>(v, t)?[0]),
            attr::DONT_FRAGMENT => {
                if !v.is_empty() {
                    return Err(bad_len);
                }
                Attribute::DontFragment
            }
            attr::RESERVATION_TOKEN => Attribute::ReservationToken(exact::<8>(v, t)?),
            attr::ADDRESS_ERROR_CODE => {
                let family = Family::from_code(*v.first().ok_or(bad_len)?)?;
                let (code, reason) = decode_error_code(v, t)?;
                Attribute::AddressErrorCode {
                    family,
                    code,
                    reason,
                }
            }
            attr::ICMP => {
                let b = exact::<8>(v, t)?;
                Attribute::Icmp {
                    icmp_type: b[2] & 0x7F,
                    icmp_code: b[3],
                    error_data: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                }
            }
            _ => Attribute::Other {
                attr_type: t,
                value: v,
            },
        })
    }

    /// The attribute's type number.
    pub fn attr_type(&self) -> u16 {
        match self {
            Attribute::MappedAddress(_) => attr::MAPPED_ADDRESS,
            Attribute::XorMappedAddress(_) => attr::XOR_MAPPED_ADDRESS,
            Attribute::Username(_) => attr::USERNAME,
            Attribute::UserHash(_) => attr::USERHASH,
            Attribute::MessageIntegrity(_) => attr::MESSAGE_INTEGRITY,
            Attribute::MessageIntegritySha256(_) => attr::MESSAGE_INTEGRITY_SHA256,
            Attribute::Fingerprint(_) => attr::FINGERPRINT,
            Attribute::ErrorCode { .. } => attr::ERROR_CODE,
            Attribute::Realm(_) => attr::REALM,
            Attribute::Nonce(_) => attr::NONCE,
            Attribute::PasswordAlgorithms(_) => attr::PASSWORD_ALGORITHMS,
            Attribute::PasswordAlgorithm(_) => attr::PASSWORD_ALGORITHM,
            Attribute::UnknownAttributes(_) => attr::UNKNOWN_ATTRIBUTES,
            Attribute::Software(_) => attr::SOFTWARE,
            Attribute::AlternateServer(_) => attr::ALTERNATE_SERVER,
            Attribute::ChannelNumber(_) => attr::CHANNEL_NUMBER,
            Attribute::Lifetime(_) => attr::LIFETIME,
            Attribute::XorPeerAddress(_) => attr::XOR_PEER_ADDRESS,
            Attribute::Data(_) => attr::DATA,
            Attribute::XorRelayedAddress(_) => attr::XOR_RELAYED_ADDRESS,
            Attribute::RequestedAddressFamily(_) => attr::REQUESTED_ADDRESS_FAMILY,
            Attribute::EvenPort(_) => attr::EVEN_PORT,
            Attribute::RequestedTransport(_) => attr::REQUESTED_TRANSPORT,
            Attribute::DontFragment => attr::DONT_FRAGMENT,
            Attribute::ReservationToken(_) => attr::RESERVATION_TOKEN,
            Attribute::AdditionalAddressFamily(_) => attr::ADDITIONAL_ADDRESS_FAMILY,
            Attribute::AddressErrorCode { .. } => attr::ADDRESS_ERROR_CODE,
            Attribute::Icmp { .. } => attr::ICMP,
            Attribute::Other { attr_type, .. } => *attr_type,
        }
    }

    /// Appends this attribute to `w` (`tid` XORs the IPv6 address attributes).
    pub(crate) fn encode(
        &self,
        w: &mut MessageWriter<'_>,
        tid: &TransactionId,
    ) -> Result<(), CodecError> {
        let t = self.attr_type();
        match *self {
            Attribute::MappedAddress(a) | Attribute::AlternateServer(a) => {
                w.attr_with(t, address_len(&a), |b| put_address(b, &a, None))
            }
            Attribute::XorMappedAddress(a)
            | Attribute::XorPeerAddress(a)
            | Attribute::XorRelayedAddress(a) => {
                w.attr_with(t, address_len(&a), |b| put_address(b, &a, Some(tid)))
            }
            Attribute::Username(s)
            | Attribute::Realm(s)
            | Attribute::Nonce(s)
            | Attribute::Software(s) => w.raw(t, s.as_bytes()),
            Attribute::UserHash(h) => w.raw(t, h),
            Attribute::MessageIntegrity(h) => w.raw(t, h),
            Attribute::MessageIntegritySha256(h) => w.raw(t, h),
            Attribute::Fingerprint(v) | Attribute::Lifetime(v) => w.raw(t, &v.to_be_bytes()),
            Attribute::ErrorCode { code, reason } => {
                w.attr_with(t, 4 + reason.len(), |b| put_error_code(b, 0, code, reason))
            }
            Attribute::AddressErrorCode {
                family,
                code,
                reason,
            } => w.attr_with(t, 4 + reason.len(), |b| {
                put_error_code(b, family.code(), code, reason)
            }),
            Attribute::PasswordAlgorithms(list) => {
                let len = list.iter().map(|a| password_algorithm_len(&a)).sum();
                w.attr_with(t, len, |b| {
                    list.iter().for_each(|a| put_password_algorithm(b, &a))
                })
            }
            Attribute::PasswordAlgorithm(a) => w.attr_with(t, password_algorithm_len(&a), |b| {
                put_password_algorithm(b, &a)
            }),
            Attribute::UnknownAttributes(list) => {
                let len = 2 * list.iter().count();
                w.attr_with(t, len, |b| {
                    list.iter()
                        .for_each(|u| b.extend_from_slice(&u.to_be_bytes()))
                })
            }
            Attribute::ChannelNumber(n) => {
                let [hi, lo] = n.to_be_bytes();
                w.raw(t, &[hi, lo, 0, 0])
            }
            Attribute::Data(d) => w.raw(t, d),
            Attribute::RequestedAddressFamily(f) | Attribute::AdditionalAddressFamily(f) => {
                w.raw(t, &[f.code(), 0, 0, 0])
            }
            Attribute::EvenPort(r) => w.raw(t, &[if r { 0x80 } else { 0 }]),
            Attribute::RequestedTransport(p) => w.raw(t, &[p, 0, 0, 0]),
            Attribute::DontFragment => w.raw(t, &[]),
            Attribute::ReservationToken(tok) => w.raw(t, tok),
            Attribute::Icmp {
                icmp_type,
                icmp_code,
                error_data,
            } => {
                let d = error_data.to_be_bytes();
                w.raw(
                    t,
                    &[0, 0, icmp_type & 0x7F, icmp_code, d[0], d[1], d[2], d[3]],
                )
            }
            Attribute::Other { value, .. } => w.raw(t, value),
        }
    }
}
