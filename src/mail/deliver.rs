//! The outbox's sender: a queued mail becomes a MIME message (plain text plus HTML, the
//! `Message-ID` the outbox gave it) and leaves through the configured [`Mailer`].

use super::outbox::{Deliver, Failure, OutboxMail};
use super::{Mailer, build_message_with_id};
use std::future::Future;
use std::pin::Pin;

/// Sends outbox mails from `from` through `mailer`.
pub struct OutboxSender {
    pub mailer: Mailer,
    pub from: String,
}

impl Deliver for OutboxSender {
    fn deliver<'a>(
        &'a self,
        mail: &'a OutboxMail,
    ) -> Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>> {
        Box::pin(async move {
            let message = build_message_with_id(
                &self.from,
                &mail.to,
                &mail.subject,
                &mail.text,
                &mail.html,
                &mail.message_id,
            )
            .map_err(|e| Failure {
                permanent: true,
                message: e.to_string(),
            })?;
            self.mailer.send(&message).await.map_err(|e| Failure {
                permanent: e.permanent,
                message: e.message,
            })
        })
    }
}
