//! Outgoing mail (PRODUCT.md F4): the [`SendError`] that says whether a failed mail may
//! be retried, and [`build_message`], which writes a mail as plain text plus HTML.

mod error;
mod message;

pub use error::SendError;
pub use lettre::Message;
pub use lettre::address::Envelope;
pub use message::{MessageError, build_message, build_message_with_id, new_message_id};
