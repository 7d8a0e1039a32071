//! [`Mailer`]: the one way the appliance sends a mail, whichever transport `[mail]`
//! chose — an SMTP relay, the local sendmail, a pickup folder, or none.
//!
//! Built once from the configuration at start-up (which is when a bad CA file or an
//! unwritable pickup folder is reported); then [`Mailer::send`] delivers one mail and
//! says, on failure, whether trying again can help ([`SendError`]).

use super::SendError;
use super::pickup::Pickup;
use super::sendmail::Sendmail;
use super::smtp::{Smtp, SmtpSetupError};
use crate::config::{MailConfig, MailTransport};
use lettre::Message;
use lettre::address::Envelope;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the configured transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error(transparent)]
    Smtp(#[from] SmtpSetupError),
    #[error("mail.pickup_dir: cannot create {path}: {source}")]
    PickupDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Sends mail the configured way.
#[derive(Debug)]
pub struct Mailer {
    transport: Transport,
}

#[derive(Debug)]
enum Transport {
    Off,
    Smtp(Smtp),
    Sendmail(Sendmail),
    Pickup(Pickup),
}

impl Mailer {
    /// The transport `config` names; `data_dir` holds the default pickup folder.
    pub fn new(config: &MailConfig, data_dir: &Path) -> Result<Mailer, MailerError> {
        let transport = match config.transport {
            MailTransport::None => Transport::Off,
            MailTransport::Smtp => Transport::Smtp(Smtp::new(config)?),
            MailTransport::Sendmail => Transport::Sendmail(Sendmail::new(
                &config.sendmail_command,
                Duration::from_secs(config.smtp_timeout_secs),
            )),
            MailTransport::Pickup => {
                let dir = config.pickup_dir(data_dir);
                Transport::Pickup(
                    Pickup::new(dir.clone())
                        .map_err(|source| MailerError::PickupDir { path: dir, source })?,
                )
            }
        };
        Ok(Mailer { transport })
    }

    /// Whether mail is sent at all (`transport` is not `none`).
    pub fn is_enabled(&self) -> bool {
        !matches!(self.transport, Transport::Off)
    }

    /// Where mail goes, for the start-up log: `SMTP relay smtp.example.org:587
    /// (starttls)`, `sendmail (/usr/sbin/sendmail)`, `pickup folder /var/…`, `off`.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Off => "off (mail.transport = \"none\")".into(),
            Transport::Smtp(s) => format!(
                "SMTP relay {} ({})",
                s.address(),
                match s.security() {
                    crate::config::SmtpSecurity::None => "no encryption",
                    crate::config::SmtpSecurity::Starttls => "STARTTLS",
                    crate::config::SmtpSecurity::Tls => "implicit TLS",
                }
            ),
            Transport::Sendmail(s) => format!("sendmail ({})", s.command().display()),
            Transport::Pickup(p) => format!("pickup folder {}", p.dir().display()),
        }
    }

    /// Sends `message` to the recipients of its envelope.
    pub async fn send(&self, message: &Message) -> Result<(), SendError> {
        self.send_raw(message.envelope(), &message.formatted())
            .await
    }

    /// Sends an already formatted message (RFC 5322, CRLF line ends) to `envelope`'s
    /// recipients, for callers that keep mails as bytes.
    pub async fn send_raw(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        match &self.transport {
            Transport::Off => Err(SendError::temporary(
                "mail is off (mail.transport = \"none\"): set [mail] transport to send it",
            )),
            Transport::Smtp(smtp) => smtp.send(envelope, message).await,
            Transport::Sendmail(sendmail) => sendmail.send(envelope, message).await,
            Transport::Pickup(pickup) => pickup.write(message).await.map(|_| ()),
        }
    }

    /// Closes the SMTP sessions kept for reuse (politely, with `QUIT`); call on shutdown.
    pub async fn close(&self) {
        if let Transport::Smtp(smtp) = &self.transport {
            smtp.close_idle().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mailer_can_be_shared_between_tasks() {
        fn shared<T: Send + Sync + 'static>() {}
        fn spawnable<F: std::future::Future + Send>(_: F) {}
        shared::<Mailer>();
        let mailer = Mailer::new(&MailConfig::default(), Path::new("/nonexistent")).unwrap();
        let message = super::super::build_message(
            "outpost@example.org",
            "alice@example.test",
            "s",
            "t",
            "<p>t</p>",
        )
        .unwrap();
        spawnable(mailer.send(&message));
        spawnable(mailer.close());
    }
}
