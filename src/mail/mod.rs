//! Outgoing mail (PRODUCT.md F4): the transports a mail leaves the appliance by — an
//! SMTP relay (plain, STARTTLS or implicit TLS, with AUTH and the site's CA), the local
//! `sendmail`, or a pickup folder of `.eml` files — behind one [`Mailer`]; the
//! [`SendError`] that says whether a failed mail may be retried; [`build_message`],
//! which writes a mail as plain text plus HTML; the durable outbox and its worker
//! ([`outbox`]); and the templates mails are written from ([`templates`]).

mod context;
mod deliver;
mod error;
mod message;
pub mod outbox;
mod pickup;
mod sendmail;
mod smtp;
pub mod templates;
mod transport;

pub use context::MailContext;
pub use deliver::OutboxSender;
pub use error::SendError;
pub use lettre::Message;
pub use lettre::address::Envelope;
pub use message::{MessageError, build_message, build_message_with_id, new_message_id};
pub use smtp::SmtpSetupError;
pub use transport::{Mailer, MailerError};
