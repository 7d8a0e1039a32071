//! The sendmail transport: hands each mail to the local mail system's `sendmail`
//! program (Postfix, Exim, OpenSMTPD, nullmailer), run by lettre as
//! `COMMAND -i -f FROM -- TO…` with the message on standard input.
//!
//! Exit status 0 means the local mail system has taken the mail. Any failure — the
//! program missing, a non-zero exit, no exit within the timeout (the program is then
//! killed) — is temporary: lettre does not report the exit status, and a local mail
//! system refusing mail is a problem of the site's set-up, not of the mail. The
//! program's standard error goes into the failure's message.

use super::SendError;
use lettre::address::Envelope;
use lettre::{AsyncSendmailTransport, AsyncTransport, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) struct Sendmail {
    command: PathBuf,
    timeout: Duration,
    transport: AsyncSendmailTransport<Tokio1Executor>,
}

impl Sendmail {
    pub(super) fn new(command: &Path, timeout: Duration) -> Sendmail {
        Sendmail {
            command: command.to_path_buf(),
            timeout,
            transport: AsyncSendmailTransport::new_with_command(command),
        }
    }

    pub(super) fn command(&self) -> &Path {
        &self.command
    }

    pub(super) async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let command = self.command.display();
        match tokio::time::timeout(self.timeout, self.transport.send_raw(envelope, message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                use std::error::Error;
                let source = e.source();
                let io = source.and_then(|s| s.downcast_ref::<std::io::Error>());
                Err(SendError::temporary(match (io, source) {
                    (Some(io), _) if io.kind() == std::io::ErrorKind::BrokenPipe => {
                        format!("{command} stopped before reading the whole mail")
                    }
                    (Some(io), _) => format!("cannot run {command}: {io}"),
                    (None, Some(stderr)) if !stderr.to_string().trim().is_empty() => {
                        format!("{command} failed: {stderr}")
                    }
                    _ => format!("{command} failed without saying why ({e})"),
                }))
            }
            Err(_) => Err(SendError::temporary(format!(
                "{command} did not finish within {} s and was stopped",
                self.timeout.as_secs()
            ))),
        }
    }
}

impl std::fmt::Debug for Sendmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sendmail")
            .field("command", &self.command)
            .field("timeout", &self.timeout)
            .finish()
    }
}
