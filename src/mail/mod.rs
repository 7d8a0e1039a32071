//! Outgoing mail (PRODUCT.md F4): the durable outbox and its worker ([`outbox`]), the
//! templates mails are written from ([`templates`]).

pub mod outbox;
pub mod templates;
