//! The calling codec's error type: every way a packet, a stream or a credential can be
//! malformed. Parsing returns one of these for any bad input; it never panics.

/// A malformed or unauthenticated STUN/TURN packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("truncated input: {needed} bytes needed, {have} present")]
    Truncated { needed: usize, have: usize },
    #[error("not a STUN message: the first two bits of the type are not zero")]
    NotStun,
    #[error("bad magic cookie {0:#010x} (expected 0x2112a442)")]
    BadMagicCookie(u32),
    /// Every attribute is padded to 4 bytes, so a length that is not a multiple of 4 is
    /// bad padding.
    #[error("message length {0} is not a multiple of 4 (attributes are padded to 4 bytes)")]
    UnalignedLength(u16),
    #[error("datagram is {have} bytes but the STUN header says {declared}")]
    LengthMismatch { declared: usize, have: usize },
    #[error("attribute {attr_type:#06x} overruns the message")]
    AttributeOverrun { attr_type: u16 },
    #[error("attribute {attr_type:#06x} has an invalid length {len}")]
    BadAttributeLength { attr_type: u16, len: usize },
    #[error("attribute {attr_type:#06x} has an invalid value")]
    BadAttributeValue { attr_type: u16 },
    #[error("attribute {attr_type:#06x} is not valid UTF-8")]
    NotUtf8 { attr_type: u16 },
    #[error("unknown address family {0:#04x}")]
    BadAddressFamily(u8),
    #[error("attribute follows FINGERPRINT, which must be last")]
    AttributeAfterFingerprint,
    #[error("MESSAGE-INTEGRITY is missing")]
    IntegrityMissing,
    #[error("MESSAGE-INTEGRITY does not match")]
    IntegrityMismatch,
    #[error("FINGERPRINT is missing")]
    FingerprintMissing,
    #[error("FINGERPRINT does not match")]
    FingerprintMismatch,
    #[error("channel number {0:#06x} is outside 0x4000-0x7fff")]
    BadChannelNumber(u16),
    #[error("byte {0:#04x} starts neither a STUN message nor a ChannelData frame")]
    UnknownFrame(u8),
    #[error("message does not fit in 65535 bytes")]
    TooLong,
}
