//! What the server sends the client, sorted: a response to a transaction (matched by its
//! transaction id), peer data relayed in a Data indication or a ChannelData frame
//! ([`Incoming`]), or something to ignore (a stray or duplicate response, a malformed
//! datagram, an indication the client has no use for). Sorting never fails and never
//! panics: whatever cannot be read is ignored.

use std::net::SocketAddr;

use crate::calling::attributes::{Attribute, attr};
use crate::calling::framing::{self, Frame};
use crate::calling::message::{Class, Method, TransactionId};

/// Peer data the relay delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A Data indication: data from `peer` (for which the client has a permission).
    Data { peer: SocketAddr, data: Vec<u8> },
    /// A ChannelData frame on a bound channel.
    ChannelData { channel: u16, data: Vec<u8> },
}

/// One received frame, sorted.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A success or error response with this transaction id.
    Response(TransactionId),
    Incoming(Incoming),
    Ignored,
}

/// Sorts one frame (a datagram, or a frame cut from a stream).
pub(crate) fn sort(frame: &[u8]) -> Inbound {
    match framing::parse_datagram(frame) {
        Ok(Frame::ChannelData(cd)) => Inbound::Incoming(Incoming::ChannelData {
            channel: cd.channel,
            data: cd.data.to_vec(),
        }),
        Ok(Frame::Stun(msg)) => match msg.class() {
            Class::Success | Class::Error => Inbound::Response(*msg.transaction_id()),
            Class::Indication if msg.method() == Method::DATA => {
                let peer = match msg.get_decoded(attr::XOR_PEER_ADDRESS) {
                    Some(Ok(Attribute::XorPeerAddress(a))) => a,
                    _ => return Inbound::Ignored,
                };
                match msg.get_decoded(attr::DATA) {
                    Some(Ok(Attribute::Data(d))) => Inbound::Incoming(Incoming::Data {
                        peer,
                        data: d.to_vec(),
                    }),
                    _ => Inbound::Ignored,
                }
            }
            _ => Inbound::Ignored,
        },
        // A stream frame of ChannelData keeps its padding, which `parse_datagram` accepts;
        // anything unreadable is dropped.
        Err(_) => Inbound::Ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calling::message::MessageWriter;
    use crate::calling::turn::ChannelData;

    #[test]
    fn data_indications_and_channel_data_are_peer_data() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, Method::DATA, Class::Indication, [3; 12]);
        w.attr(&Attribute::XorPeerAddress(peer)).unwrap();
        w.attr(&Attribute::Data(b"hello")).unwrap();
        w.finish();
        assert!(matches!(
            sort(&buf),
            Inbound::Incoming(Incoming::Data { peer: p, ref data }) if p == peer && data == b"hello"
        ));

        let mut cd = Vec::new();
        ChannelData {
            channel: 0x4001,
            data: b"abc",
        }
        .encode(&mut cd, true)
        .unwrap();
        assert!(matches!(
            sort(&cd),
            Inbound::Incoming(Incoming::ChannelData { channel: 0x4001, ref data }) if data == b"abc"
        ));
    }

    #[test]
    fn responses_are_matched_by_transaction_id() {
        for class in [Class::Success, Class::Error] {
            let mut buf = Vec::new();
            MessageWriter::new(&mut buf, Method::ALLOCATE, class, [9; 12]).finish();
            assert!(matches!(sort(&buf), Inbound::Response(t) if t == [9; 12]));
        }
    }

    #[test]
    fn anything_else_is_ignored() {
        // A Data indication without DATA, a request, garbage, an empty datagram.
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, Method::DATA, Class::Indication, [3; 12]);
        w.attr(&Attribute::XorPeerAddress("127.0.0.1:1".parse().unwrap()))
            .unwrap();
        w.finish();
        assert!(matches!(sort(&buf), Inbound::Ignored));
        let mut req = Vec::new();
        MessageWriter::new(&mut req, Method::BINDING, Class::Request, [1; 12]).finish();
        assert!(matches!(sort(&req), Inbound::Ignored));
        for junk in [&[][..], &[0xFF, 1, 2], &[0x40, 0, 0, 9, 1], &[0, 1, 0, 0]] {
            assert!(matches!(sort(junk), Inbound::Ignored));
        }
    }
}
