//! STUN messages (RFC 8489 §5, §14): the 20-byte header (type = method + class, length,
//! magic cookie, 96-bit transaction id), the zero-copy reader ([`Message`], iterating
//! [`RawAttribute`]s that borrow from the packet) and the writer ([`MessageWriter`],
//! appending to a `Vec<u8>`).
//!
//! [`Message::parse`] walks the attribute headers once, so a message it returns is
//! structurally sound and iterating it cannot fail; nothing here allocates when reading.

use super::attributes::{self, Attribute, attr};
use super::error::CodecError;
use super::integrity;

/// The fixed value in bytes 4..8 of every RFC 5389/8489 message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Size of the fixed STUN header.
pub const HEADER_LEN: usize = 20;

/// A 96-bit transaction id.
pub type TransactionId = [u8; 12];

/// A STUN method (the 12 method bits of the message type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    pub const BINDING: Method = Method(0x001);
    pub const ALLOCATE: Method = Method(0x003);
    pub const REFRESH: Method = Method(0x004);
    pub const SEND: Method = Method(0x006);
    pub const DATA: Method = Method(0x007);
    pub const CREATE_PERMISSION: Method = Method(0x008);
    pub const CHANNEL_BIND: Method = Method(0x009);
}

/// The class of a message (the two class bits of the type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }
}

/// Composes the 14-bit message type from a method and a class (RFC 8489 §5, figure 3):
/// the class bits C0 and C1 sit at bits 4 and 8, between the method bits.
pub fn message_type(method: Method, class: Class) -> u16 {
    let m = method.0 & 0x0FFF;
    let c = class.bits();
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

/// Splits a message type into its method and class.
pub fn split_type(t: u16) -> (Method, Class) {
    let m = (t & 0x000F) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0F80);
    let class = match ((t >> 4) & 1) | ((t >> 7) & 2) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::Success,
        _ => Class::Error,
    };
    (Method(m), class)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The total size (header + attributes) of the STUN message at the start of `buf`, from
/// its header, after checking the first bits, the cookie and the length's alignment.
pub fn peek_len(buf: &[u8]) -> Result<usize, CodecError> {
    if buf.len() < HEADER_LEN {
        return Err(CodecError::Truncated {
            needed: HEADER_LEN,
            have: buf.len(),
        });
    }
    if buf[0] & 0xC0 != 0 {
        return Err(CodecError::NotStun);
    }
    let cookie = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if cookie != MAGIC_COOKIE {
        return Err(CodecError::BadMagicCookie(cookie));
    }
    let len = be16(buf, 2);
    if !len.is_multiple_of(4) {
        return Err(CodecError::UnalignedLength(len));
    }
    Ok(HEADER_LEN + usize::from(len))
}

/// One attribute as it sits in the packet: its type, its value (without padding) and the
/// offset of its 4-byte header from the start of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    pub attr_type: u16,
    pub value: &'a [u8],
    pub offset: usize,
}

impl<'a> RawAttribute<'a> {
    /// Comprehension-required attributes are those with a type below 0x8000.
    pub fn comprehension_required(&self) -> bool {
        self.attr_type < 0x8000
    }
}

/// A parsed STUN message borrowing the packet's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
    tid: &'a TransactionId,
    /// Offset of the first MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT.
    integrity: Option<usize>,
    integrity_sha256: Option<usize>,
    fingerprint: Option<usize>,
}

/// The comprehension-required attribute types a message carries that the receiver does not
/// know, for the UNKNOWN-ATTRIBUTES of a 420 reply. Fixed-size: no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnknownAttributes {
    types: [u16; Self::MAX],
    len: usize,
}

impl UnknownAttributes {
    /// At most this many are reported (a reply need not list more).
    pub const MAX: usize = 16;

    pub fn as_slice(&self) -> &[u16] {
        &self.types[..self.len]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, t: u16) {
        if self.len < Self::MAX && !self.as_slice().contains(&t) {
            self.types[self.len] = t;
            self.len += 1;
        }
    }
}

impl<'a> Message<'a> {
    /// Parses a datagram holding exactly one STUN message.
    pub fn parse(buf: &'a [u8]) -> Result<Self, CodecError> {
        let total = peek_len(buf)?;
        if total != buf.len() {
            return Err(CodecError::LengthMismatch {
                declared: total,
                have: buf.len(),
            });
        }
        Self::parse_prefix(buf)
    }

    /// Parses the STUN message at the start of `buf` (which may hold more bytes after it,
    /// as a stream does); the message is `buf[..message.len()]`.
    pub fn parse_prefix(buf: &'a [u8]) -> Result<Self, CodecError> {
        let total = peek_len(buf)?;
        if buf.len() < total {
            return Err(CodecError::Truncated {
                needed: total,
                have: buf.len(),
            });
        }
        let buf = &buf[..total];
        let tid =
            <&TransactionId>::try_from(&buf[8..HEADER_LEN]).map_err(|_| CodecError::Truncated {
                needed: HEADER_LEN,
                have: buf.len(),
            })?;
        let mut msg = Message {
            buf,
            tid,
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
        };
        let mut at = HEADER_LEN;
        while at < total {
            if msg.fingerprint.is_some() {
                return Err(CodecError::AttributeAfterFingerprint);
            }
            if total - at < 4 {
                return Err(CodecError::Truncated {
                    needed: at + 4,
                    have: total,
                });
            }
            let attr_type = be16(buf, at);
            let len = usize::from(be16(buf, at + 2));
            let end = at + 4 + len;
            if end > total {
                return Err(CodecError::AttributeOverrun { attr_type });
            }
            // `total` and `at` are multiples of 4, so the padding after `end` always fits.
            let padded = end + (4 - len % 4) % 4;
            match attr_type {
                attr::MESSAGE_INTEGRITY if msg.integrity.is_none() => msg.integrity = Some(at),
                attr::MESSAGE_INTEGRITY_SHA256 if msg.integrity_sha256.is_none() => {
                    msg.integrity_sha256 = Some(at)
                }
                attr::FINGERPRINT => msg.fingerprint = Some(at),
                _ => {}
            }
            at = padded;
        }
        Ok(msg)
    }

    /// The message's bytes (header and attributes).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Total size in bytes, header included.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn message_type(&self) -> u16 {
        be16(self.buf, 0)
    }

    pub fn method(&self) -> Method {
        split_type(self.message_type()).0
    }

    pub fn class(&self) -> Class {
        split_type(self.message_type()).1
    }

    pub fn transaction_id(&self) -> &'a TransactionId {
        self.tid
    }

    /// Every attribute, in order, including those after MESSAGE-INTEGRITY.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            buf: self.buf,
            at: HEADER_LEN,
        }
    }

    /// The attributes the receiver must act on: per RFC 8489 §14.5, everything after
    /// MESSAGE-INTEGRITY except MESSAGE-INTEGRITY-SHA256 and FINGERPRINT is ignored, and
    /// everything after MESSAGE-INTEGRITY-SHA256 except FINGERPRINT.
    pub fn effective_attributes(&self) -> impl Iterator<Item = RawAttribute<'a>> + use<'a> {
        let mi = self.integrity;
        let cut = mi.or(self.integrity_sha256);
        self.attributes().filter(move |a| match cut {
            Some(c) if a.offset > c => match a.attr_type {
                attr::FINGERPRINT => true,
                attr::MESSAGE_INTEGRITY_SHA256 => Some(c) == mi,
                _ => false,
            },
            _ => true,
        })
    }

    /// The first effective attribute of `attr_type`.
    pub fn get(&self, attr_type: u16) -> Option<RawAttribute<'a>> {
        self.effective_attributes()
            .find(|a| a.attr_type == attr_type)
    }

    /// The first effective attribute of `attr_type`, decoded.
    pub fn get_decoded(&self, attr_type: u16) -> Option<Result<Attribute<'a>, CodecError>> {
        self.get(attr_type)
            .map(|a| Attribute::decode(a, self.transaction_id()))
    }

    /// Comprehension-required attributes that `known` does not recognise (for a 420 reply).
    /// [`attributes::is_known`] recognises every attribute this codec implements.
    pub fn unknown_comprehension_required(&self, known: impl Fn(u16) -> bool) -> UnknownAttributes {
        let mut unknown = UnknownAttributes::default();
        for a in self.effective_attributes() {
            if a.comprehension_required() && !known(a.attr_type) {
                unknown.push(a.attr_type);
            }
        }
        unknown
    }

    /// Same as [`Self::unknown_comprehension_required`] with this codec's catalogue.
    pub fn unknown_attributes(&self) -> UnknownAttributes {
        self.unknown_comprehension_required(attributes::is_known)
    }

    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }

    pub fn has_integrity_sha256(&self) -> bool {
        self.integrity_sha256.is_some()
    }

    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// Checks MESSAGE-INTEGRITY (HMAC-SHA1) with `key`, in constant time.
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), CodecError> {
        let at = self.integrity.ok_or(CodecError::IntegrityMissing)?;
        integrity::verify_sha1(self.buf, at, key)
    }

    /// Checks MESSAGE-INTEGRITY-SHA256 (possibly truncated) with `key`, in constant time.
    pub fn verify_integrity_sha256(&self, key: &[u8]) -> Result<(), CodecError> {
        let at = self.integrity_sha256.ok_or(CodecError::IntegrityMissing)?;
        integrity::verify_sha256(self.buf, at, key)
    }

    /// Checks FINGERPRINT.
    pub fn verify_fingerprint(&self) -> Result<(), CodecError> {
        let at = self.fingerprint.ok_or(CodecError::FingerprintMissing)?;
        integrity::verify_fingerprint(self.buf, at)
    }
}

/// Iterator over a parsed message's attributes (infallible: [`Message::parse`] checked them).
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = RawAttribute<'a>;

    fn next(&mut self) -> Option<RawAttribute<'a>> {
        let header = self.buf.get(self.at..self.at + 4)?;
        let attr_type = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let value = self.buf.get(self.at + 4..self.at + 4 + len)?;
        let offset = self.at;
        self.at += 4 + len + (4 - len % 4) % 4;
        Some(RawAttribute {
            attr_type,
            value,
            offset,
        })
    }
}

/// Appends one STUN message to a buffer, keeping the header's length current as
/// attributes are added. Padding bytes are zero.
#[derive(Debug)]
pub struct MessageWriter<'b> {
    buf: &'b mut Vec<u8>,
    start: usize,
    tid: TransactionId,
}

impl<'b> MessageWriter<'b> {
    /// Starts a message at the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>, method: Method, class: Class, tid: TransactionId) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&message_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&tid);
        MessageWriter { buf, start, tid }
    }

    pub fn transaction_id(&self) -> &TransactionId {
        &self.tid
    }

    /// The message's bytes so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn set_len(&mut self, len: usize) -> Result<(), CodecError> {
        let len = u16::try_from(len).map_err(|_| CodecError::TooLong)?;
        self.buf[self.start + 2..self.start + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    fn body_len(&self) -> usize {
        self.buf.len() - self.start - HEADER_LEN
    }

    /// Appends an attribute with a value written by `fill` (which must append `len` bytes).
    pub(crate) fn attr_with(
        &mut self,
        attr_type: u16,
        len: usize,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), CodecError> {
        let pad = (4 - len % 4) % 4;
        let new_body = self.body_len() + 4 + len + pad;
        let len16 = u16::try_from(len).map_err(|_| CodecError::TooLong)?;
        if new_body > usize::from(u16::MAX) {
            return Err(CodecError::TooLong);
        }
        self.buf.extend_from_slice(&attr_type.to_be_bytes());
        self.buf.extend_from_slice(&len16.to_be_bytes());
        let before = self.buf.len();
        fill(self.buf);
        debug_assert_eq!(self.buf.len() - before, len);
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
        self.set_len(new_body)
    }

    /// Appends an attribute from its raw value.
    pub fn raw(&mut self, attr_type: u16, value: &[u8]) -> Result<(), CodecError> {
        self.attr_with(attr_type, value.len(), |b| b.extend_from_slice(value))
    }

    /// Appends an attribute from its raw value, padding with `pad` instead of zeros (RFC 5389
    /// allowed any padding bytes and RFC 5769's vectors use 0x20; senders should use zeros).
    pub fn raw_padded(&mut self, attr_type: u16, value: &[u8], pad: u8) -> Result<(), CodecError> {
        self.raw(attr_type, value)?;
        let n = (4 - value.len() % 4) % 4;
        let end = self.buf.len();
        self.buf[end - n..].fill(pad);
        Ok(())
    }

    /// Appends a typed attribute.
    pub fn attr(&mut self, attribute: &Attribute<'_>) -> Result<(), CodecError> {
        let tid = self.tid;
        attribute.encode(self, &tid)
    }

    /// Appends MESSAGE-INTEGRITY (HMAC-SHA1 with `key`) over the message so far.
    pub fn message_integrity(&mut self, key: &[u8]) -> Result<(), CodecError> {
        let body = self.body_len() + 24;
        self.set_len(body)?;
        let mac = integrity::hmac_sha1(&self.buf[self.start..], key);
        self.attr_with(attr::MESSAGE_INTEGRITY, 20, |b| b.extend_from_slice(&mac))
    }

    /// Appends MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256 with `key`, full 32 bytes).
    pub fn message_integrity_sha256(&mut self, key: &[u8]) -> Result<(), CodecError> {
        let body = self.body_len() + 36;
        self.set_len(body)?;
        let mac = integrity::hmac_sha256(&self.buf[self.start..], key);
        self.attr_with(attr::MESSAGE_INTEGRITY_SHA256, 32, |b| {
            b.extend_from_slice(&mac)
        })
    }

    /// Appends FINGERPRINT; it must be the last attribute.
    pub fn fingerprint(&mut self) -> Result<(), CodecError> {
        let body = self.body_len() + 8;
        self.set_len(body)?;
        let crc = integrity::fingerprint(&self.buf[self.start..]);
        self.attr_with(attr::FINGERPRINT, 4, |b| {
            b.extend_from_slice(&crc.to_be_bytes())
        })
    }

    /// Ends the message and returns its length.
    pub fn finish(self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_composition_round_trips_every_method_and_class() {
        for m in 0..0x1000u16 {
            for c in [
                Class::Request,
                Class::Indication,
                Class::Success,
                Class::Error,
            ] {
                let t = message_type(Method(m), c);
                assert!(t < 0x4000);
                assert_eq!(split_type(t), (Method(m), c));
            }
        }
        assert_eq!(message_type(Method::BINDING, Class::Request), 0x0001);
        assert_eq!(message_type(Method::BINDING, Class::Success), 0x0101);
        assert_eq!(message_type(Method::BINDING, Class::Error), 0x0111);
        assert_eq!(message_type(Method::ALLOCATE, Class::Request), 0x0003);
        assert_eq!(message_type(Method::SEND, Class::Indication), 0x0016);
        assert_eq!(message_type(Method::DATA, Class::Indication), 0x0017);
    }

    #[test]
    fn writer_output_parses_and_verifies() {
        let mut buf = vec![0xAA]; // a prefix the writer must leave alone
        let tid = [7u8; 12];
        let mut w = MessageWriter::new(&mut buf, Method::ALLOCATE, Class::Request, tid);
        w.attr(&Attribute::Username("alice")).unwrap();
        w.attr(&Attribute::Software("outpost")).unwrap();
        w.message_integrity(b"key").unwrap();
        w.message_integrity_sha256(b"key").unwrap();
        w.fingerprint().unwrap();
        let n = w.finish();
        assert_eq!(n, buf.len() - 1);
        let msg = Message::parse(&buf[1..]).unwrap();
        assert_eq!(msg.method(), Method::ALLOCATE);
        assert_eq!(msg.class(), Class::Request);
        assert_eq!(msg.transaction_id(), &tid);
        msg.verify_integrity(b"key").unwrap();
        msg.verify_integrity_sha256(b"key").unwrap();
        msg.verify_fingerprint().unwrap();
        assert_eq!(
            msg.verify_integrity(b"other"),
            Err(CodecError::IntegrityMismatch)
        );
        assert_eq!(
            msg.verify_integrity_sha256(b"other"),
            Err(CodecError::IntegrityMismatch)
        );
        assert!(matches!(
            msg.get_decoded(attr::USERNAME),
            Some(Ok(Attribute::Username("alice")))
        ));
    }

    #[test]
    fn attributes_after_integrity_are_ignored_except_fingerprint() {
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, Method::BINDING, Class::Request, [1; 12]);
        w.message_integrity(b"k").unwrap();
        w.attr(&Attribute::Username("late")).unwrap();
        w.fingerprint().unwrap();
        w.finish();
        let msg = Message::parse(&buf).unwrap();
        assert_eq!(msg.attributes().count(), 3);
        assert!(msg.get(attr::USERNAME).is_none());
        assert!(msg.get(attr::FINGERPRINT).is_some());
        msg.verify_integrity(b"k").unwrap();
        msg.verify_fingerprint().unwrap();
    }

    #[test]
    fn unknown_comprehension_required_attributes_are_reported_once() {
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, Method::BINDING, Class::Request, [1; 12]);
        w.raw(0x7F01, b"x").unwrap();
        w.raw(0x7F01, b"y").unwrap();
        w.raw(0xC001, b"optional").unwrap();
        w.attr(&Attribute::Software("s")).unwrap();
        w.finish();
        let msg = Message::parse(&buf).unwrap();
        assert_eq!(msg.unknown_attributes().as_slice(), &[0x7F01]);
    }

    #[test]
    fn malformed_headers_and_attributes_are_typed_errors() {
        let mut buf = Vec::new();
        MessageWriter::new(&mut buf, Method::BINDING, Class::Request, [1; 12])
            .raw(attr::USERNAME, b"abcde")
            .unwrap();
        assert!(Message::parse(&buf).is_ok());
        assert!(matches!(
            Message::parse(&buf[..19]),
            Err(CodecError::Truncated { .. })
        ));
        let mut bad = buf.clone();
        bad[4] = 0;
        assert!(matches!(
            Message::parse(&bad),
            Err(CodecError::BadMagicCookie(_))
        ));
        let mut bad = buf.clone();
        bad[0] = 0x80;
        assert_eq!(Message::parse(&bad).err(), Some(CodecError::NotStun));
        let mut bad = buf.clone();
        bad[3] = 13;
        assert_eq!(
            Message::parse(&bad).err(),
            Some(CodecError::UnalignedLength(13))
        );
        let mut bad = buf.clone();
        bad[23] = 40; // attribute length beyond the message
        assert!(matches!(
            Message::parse(&bad),
            Err(CodecError::AttributeOverrun { .. })
        ));
        let mut bad = buf.clone();
        bad[23] = 9; // one byte more than the attribute and its padding
        assert!(matches!(
            Message::parse(&bad),
            Err(CodecError::AttributeOverrun { .. })
        ));
        let mut extra = buf.clone();
        extra.push(0);
        assert!(matches!(
            Message::parse(&extra),
            Err(CodecError::LengthMismatch { .. })
        ));
        assert!(Message::parse_prefix(&extra).is_ok());
    }
}
