//! The calling relay (PRODUCT.md F7, issue 4): a standards TURN server (RFC 8656 over
//! STUN, RFC 8489) inside the appliance.
//!
//! The wire:
//! - [`error`]: the one error type for malformed input ([`CodecError`]);
//! - [`message`]: STUN message header, the zero-copy reader and the writer;
//! - [`attributes`]: the attribute catalogue (STUN and TURN), typed values, decoding and encoding;
//! - [`integrity`]: key derivation, MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT;
//! - [`turn`]: TURN methods, ChannelData frames and the transport/family constants;
//! - [`framing`]: demultiplexing a datagram and splitting a TCP/TLS stream into whole frames;
//! - [`credentials`]: TURN REST API credentials (`expiry:user-id`, base64 HMAC-SHA1);
//! - [`client`]: a TURN client on tokio (UDP, TCP, TLS) for the integration tests and the
//!   benchmark, checked against coturn.
//!
//! The server:
//! - [`server`]: binding the relay range and listeners, the shared state ([`Turn`]),
//!   expiry and policy sweeps;
//! - [`handler`]: Binding, Allocate, Refresh, CreatePermission, ChannelBind and the
//!   long-term-credential check;
//! - [`datapath`]: relayed packets in both directions, received in batches ([`batch`]);
//! - [`stream`]: TURN over TCP and TLS connections;
//! - [`allocation`], [`registry`]: one allocation's state, and the table of them with the
//!   shared relay ports;
//! - [`nonce`], [`peers`], [`secrets`], [`calls`]: stateless nonces, the peer address
//!   policy, the shared secret and its rotation, call records.
//!
//! The codec is written by hand, without a STUN crate: it sits on the relay's per-packet hot
//! path, where the relay must spend fewer CPU cycles per packet than coturn. Reading never
//! allocates (attributes borrow from the packet) and never panics on any input.

pub mod allocation;
pub mod attributes;
pub mod batch;
pub mod calls;
pub mod client;
pub mod credentials;
pub mod datapath;
pub mod error;
pub mod framing;
pub mod handler;
pub mod integrity;
pub mod message;
pub mod nonce;
pub mod peers;
pub mod registry;
pub mod secrets;
pub mod server;
pub mod stream;
pub mod turn;

pub use error::CodecError;
pub use server::Turn;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod rfc_vectors;
