//! What an Allocate request asks for ([`AllocateOptions`]: transport, address family,
//! lifetime, DONT-FRAGMENT) and what the server granted ([`Allocation`]: the relayed
//! address, the client's address as the server saw it, the lifetime), read from the
//! success response (RFC 8656 §7.1, §7.3).

use std::net::SocketAddr;

use super::error::TurnError;
use crate::calling::attributes::{Attribute, Family, attr};
use crate::calling::message::Message;
use crate::calling::turn::TRANSPORT_UDP;

/// The attributes of an Allocate request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocateOptions {
    /// REQUESTED-ADDRESS-FAMILY; `None` lets the server choose (IPv4).
    pub family: Option<Family>,
    /// LIFETIME in seconds; `None` asks for the server's default.
    pub lifetime: Option<u32>,
    /// Adds DONT-FRAGMENT.
    pub dont_fragment: bool,
    /// REQUESTED-TRANSPORT's protocol number: UDP (17), the only one RFC 8656 relays; a
    /// test may ask for another to see 442.
    pub transport: u8,
}

impl Default for AllocateOptions {
    fn default() -> Self {
        AllocateOptions {
            family: None,
            lifetime: None,
            dont_fragment: false,
            transport: TRANSPORT_UDP,
        }
    }
}

impl AllocateOptions {
    pub(crate) fn attributes(&self) -> Vec<Attribute<'static>> {
        let mut v = vec![Attribute::RequestedTransport(self.transport)];
        if let Some(f) = self.family {
            v.push(Attribute::RequestedAddressFamily(f));
        }
        if let Some(l) = self.lifetime {
            v.push(Attribute::Lifetime(l));
        }
        if self.dont_fragment {
            v.push(Attribute::DontFragment);
        }
        v
    }
}

/// An allocation the server granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// XOR-RELAYED-ADDRESS: where peers send to reach the client.
    pub relayed: SocketAddr,
    /// XOR-MAPPED-ADDRESS: the client's address as the server saw it.
    pub mapped: SocketAddr,
    /// LIFETIME granted, in seconds.
    pub lifetime: u32,
}

impl Allocation {
    /// Reads an Allocate success response; each of the three attributes is required.
    pub(crate) fn from_response(msg: &Message<'_>) -> Result<Self, TurnError> {
        let relayed = match decoded(msg, attr::XOR_RELAYED_ADDRESS, "XOR-RELAYED-ADDRESS")? {
            Attribute::XorRelayedAddress(a) => a,
            _ => {
                return Err(TurnError::bad(
                    "Allocate",
                    "XOR-RELAYED-ADDRESS is not an address",
                ));
            }
        };
        let mapped = match decoded(msg, attr::XOR_MAPPED_ADDRESS, "XOR-MAPPED-ADDRESS")? {
            Attribute::XorMappedAddress(a) => a,
            _ => {
                return Err(TurnError::bad(
                    "Allocate",
                    "XOR-MAPPED-ADDRESS is not an address",
                ));
            }
        };
        let lifetime = lifetime(msg, "Allocate")?;
        Ok(Allocation {
            relayed,
            mapped,
            lifetime,
        })
    }
}

/// The LIFETIME of an Allocate or Refresh success response.
pub(crate) fn lifetime(msg: &Message<'_>, method: &'static str) -> Result<u32, TurnError> {
    match msg.get_decoded(attr::LIFETIME) {
        Some(Ok(Attribute::Lifetime(l))) => Ok(l),
        Some(Err(e)) => Err(TurnError::bad(method, format!("LIFETIME: {e}"))),
        _ => Err(TurnError::bad(
            method,
            "the success response has no LIFETIME",
        )),
    }
}

fn decoded<'a>(msg: &Message<'a>, attr_type: u16, name: &str) -> Result<Attribute<'a>, TurnError> {
    match msg.get_decoded(attr_type) {
        Some(Ok(a)) => Ok(a),
        Some(Err(e)) => Err(TurnError::bad("Allocate", format!("{name}: {e}"))),
        None => Err(TurnError::bad(
            "Allocate",
            format!("the success response has no {name}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calling::message::{Class, MessageWriter, Method};

    #[test]
    fn options_become_attributes() {
        assert_eq!(
            AllocateOptions::default().attributes(),
            vec![Attribute::RequestedTransport(17)]
        );
        let o = AllocateOptions {
            family: Some(Family::V6),
            lifetime: Some(60),
            dont_fragment: true,
            transport: 6,
        };
        assert_eq!(
            o.attributes(),
            vec![
                Attribute::RequestedTransport(6),
                Attribute::RequestedAddressFamily(Family::V6),
                Attribute::Lifetime(60),
                Attribute::DontFragment,
            ]
        );
    }

    #[test]
    fn a_success_response_is_read_and_missing_attributes_are_errors() {
        let relayed: SocketAddr = "127.0.0.1:16400".parse().unwrap();
        let mapped: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, Method::ALLOCATE, Class::Success, [4; 12]);
        w.attr(&Attribute::XorRelayedAddress(relayed)).unwrap();
        w.attr(&Attribute::XorMappedAddress(mapped)).unwrap();
        w.attr(&Attribute::Lifetime(600)).unwrap();
        w.finish();
        let msg = Message::parse(&buf).unwrap();
        assert_eq!(
            Allocation::from_response(&msg).unwrap(),
            Allocation {
                relayed,
                mapped,
                lifetime: 600
            }
        );

        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, Method::ALLOCATE, Class::Success, [4; 12]);
        w.attr(&Attribute::XorRelayedAddress(relayed)).unwrap();
        w.attr(&Attribute::Lifetime(600)).unwrap();
        w.finish();
        let msg = Message::parse(&buf).unwrap();
        let e = Allocation::from_response(&msg).unwrap_err();
        assert!(e.to_string().contains("XOR-MAPPED-ADDRESS"), "{e}");
    }
}
