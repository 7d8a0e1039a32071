//! Outgoing mail (PRODUCT.md F4): the transports a mail leaves the appliance by — an
//! SMTP relay (plain, STARTTLS or implicit TLS, with AUTH and the site's CA), the local
//! `sendmail`, or a pickup folder of `.eml` files — behind one [`Mailer`]; the
//! [`SendError`] that says whether a failed mail may be retried; and [`build_message`],
//! which writes a mail as plain text plus HTML.

mod error;
mod message;
mod pickup;
mod sendmail;
mod smtp;
mod transport;

pub use error::SendError;
pub use lettre::Message;
pub use lettre::address::Envelope;
pub use message::{MessageError, build_message, build_message_with_id, new_message_id};
pub use smtp::SmtpSetupError;
pub use transport::{Mailer, MailerError};
