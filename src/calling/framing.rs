//! Telling packets apart and cutting streams into them. A TURN server's socket carries STUN
//! messages and ChannelData frames side by side; the first two bits decide (RFC 8656 §12.5,
//! RFC 7983): 0b00 is STUN, 0b01 is ChannelData, anything else is not for the server.
//! [`parse_datagram`] handles one UDP datagram, [`next_frame`] the front of a TCP/TLS byte
//! stream (where frames follow each other with no delimiter but their own lengths).

use super::error::CodecError;
use super::message::{self, Message};
use super::turn::ChannelData;

/// What the first byte of a packet says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stun,
    ChannelData,
    /// First bits 0b10 or 0b11 (RTP, DTLS, …): not a TURN packet.
    Other,
}

/// Classifies a packet by its first byte.
pub fn classify(first_byte: u8) -> Kind {
    match first_byte >> 6 {
        0b00 => Kind::Stun,
        0b01 => Kind::ChannelData,
        _ => Kind::Other,
    }
}

/// One TURN frame, borrowing from the datagram or stream buffer.
#[derive(Debug, Clone, Copy)]
pub enum Frame<'a> {
    Stun(Message<'a>),
    ChannelData(ChannelData<'a>),
}

/// Parses one UDP datagram.
pub fn parse_datagram(buf: &[u8]) -> Result<Frame<'_>, CodecError> {
    let first = *buf
        .first()
        .ok_or(CodecError::Truncated { needed: 1, have: 0 })?;
    match classify(first) {
        Kind::Stun => Message::parse(buf).map(Frame::Stun),
        Kind::ChannelData => ChannelData::parse(buf).map(Frame::ChannelData),
        Kind::Other => Err(CodecError::UnknownFrame(first)),
    }
}

/// Size of the frame at the front of a stream buffer, once enough of its header is there:
/// `Ok(None)` means "read more". ChannelData over a stream is padded to 4 bytes
/// (RFC 8656 §12.5). Garbage (bad first bits, a bad cookie, an unaligned STUN length, a
/// channel number outside 0x4000-0x7FFF) is an error: the connection cannot resynchronise.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, CodecError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    match classify(first) {
        Kind::Stun => match message::peek_len(buf) {
            Ok(n) => Ok(Some(n)),
            Err(CodecError::Truncated { .. }) => Ok(None),
            Err(e) => Err(e),
        },
        Kind::ChannelData => match ChannelData::peek(buf) {
            Ok((_, len)) => Ok(Some(super::turn::padded_len(len))),
            Err(CodecError::Truncated { .. }) => {
                // Check the channel number as soon as both of its bytes are in.
                if buf.len() >= 2 {
                    let n = u16::from_be_bytes([buf[0], buf[1]]);
                    if !super::turn::valid_channel(n) {
                        return Err(CodecError::BadChannelNumber(n));
                    }
                }
                Ok(None)
            }
            Err(e) => Err(e),
        },
        Kind::Other => Err(CodecError::UnknownFrame(first)),
    }
}

/// Takes the whole frame at the front of a stream buffer: `Ok(Some((frame, consumed)))`, or
/// `Ok(None)` if the buffer does not hold a whole frame yet.
pub fn next_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, CodecError> {
    let Some(len) = frame_len(buf)? else {
        return Ok(None);
    };
    let Some(whole) = buf.get(..len) else {
        return Ok(None);
    };
    let frame = match classify(whole[0]) {
        Kind::Stun => Frame::Stun(Message::parse(whole)?),
        _ => Frame::ChannelData(ChannelData::parse(whole)?),
    };
    Ok(Some((frame, len)))
}

#[cfg(test)]
mod tests {
    use super::super::attributes::Attribute;
    use super::super::message::{Class, MessageWriter, Method};
    use super::*;

    fn stream() -> (Vec<u8>, usize) {
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, Method::BINDING, Class::Request, [2; 12]);
        w.attr(&Attribute::Software("x")).unwrap();
        w.fingerprint().unwrap();
        let n = w.finish();
        ChannelData {
            channel: 0x4000,
            data: b"abcde",
        }
        .encode(&mut buf, true)
        .unwrap();
        ChannelData {
            channel: 0x4FFF,
            data: b"",
        }
        .encode(&mut buf, true)
        .unwrap();
        (buf, n)
    }

    #[test]
    fn classify_follows_the_first_two_bits() {
        assert_eq!(classify(0x00), Kind::Stun);
        assert_eq!(classify(0x3F), Kind::Stun);
        assert_eq!(classify(0x40), Kind::ChannelData);
        assert_eq!(classify(0x7F), Kind::ChannelData);
        assert_eq!(classify(0x80), Kind::Other);
        assert_eq!(classify(0xC0), Kind::Other);
    }

    #[test]
    fn a_stream_splits_into_whole_frames_at_any_read_boundary() {
        let (buf, stun_len) = stream();
        // Feed the stream one more byte at a time; frames appear exactly when complete.
        let mut start = 0;
        let mut seen = Vec::new();
        for end in 0..=buf.len() {
            while let Some((frame, used)) = next_frame(&buf[start..end]).unwrap() {
                seen.push((start, used, matches!(frame, Frame::Stun(_))));
                start += used;
            }
        }
        assert_eq!(start, buf.len());
        assert_eq!(
            seen,
            vec![
                (0, stun_len, true),
                (stun_len, 12, false),
                (stun_len + 12, 4, false)
            ]
        );
    }

    #[test]
    fn stream_garbage_is_rejected() {
        assert_eq!(
            next_frame(&[0x80, 0, 0, 0]).err(),
            Some(CodecError::UnknownFrame(0x80))
        );
        // RFC 5766's channel numbers (up to 0x7FFF) are frames too: read on.
        assert!(matches!(next_frame(&[0x50, 0]), Ok(None)));
        let (mut buf, _) = stream();
        buf[5] = 0;
        assert!(matches!(
            next_frame(&buf),
            Err(CodecError::BadMagicCookie(_))
        ));
        assert_eq!(next_frame(&[]).unwrap().map(|f| f.1), None);
        assert_eq!(next_frame(&[0x00, 0x01]).unwrap().map(|f| f.1), None);
    }

    #[test]
    fn datagrams_demultiplex() {
        let (buf, stun_len) = stream();
        assert!(matches!(
            parse_datagram(&buf[..stun_len]),
            Ok(Frame::Stun(_))
        ));
        assert!(matches!(
            parse_datagram(&buf[stun_len..stun_len + 9]),
            Ok(Frame::ChannelData(ChannelData {
                channel: 0x4000,
                data: b"abcde"
            }))
        ));
        assert_eq!(
            parse_datagram(&[0xC0, 1]).err(),
            Some(CodecError::UnknownFrame(0xC0))
        );
        assert!(parse_datagram(&[]).is_err());
    }
}
