//! The messaging relay (PRODUCT.md F6): routes and stores end-to-end-encrypted
//! envelopes between devices without ever seeing plaintext.
pub mod frame;
