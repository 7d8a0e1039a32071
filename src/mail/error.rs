//! [`SendError`]: why one mail was not sent, and whether trying again can help.
//!
//! The outbox retries a temporary failure with back-off and marks a permanent one
//! `failed` at once, so the line between the two decides whether a mail can be lost:
//!
//! * **permanent** — the mail server gave its final verdict on *this* mail: a 5xx answer
//!   to `MAIL FROM`, `RCPT TO` or the message (e.g. `550 5.1.1 no such user`), or a mail
//!   that can never be sent as it is (an invalid address, non-ASCII addresses to a server
//!   without SMTPUTF8).
//! * **temporary** — everything else: the relay down or unreachable, a timeout, a 4xx
//!   answer, a TLS failure, and every problem of the site's own configuration — AUTH
//!   refused (`535`), authentication required (`530`), a 5xx answer to the greeting or
//!   EHLO, no STARTTLS, a sendmail command that fails, a pickup folder that cannot be
//!   written. Those are fixed by the administrator, after which the queued mail goes out;
//!   marking them permanent would throw away every mail queued meanwhile.

use std::fmt;

/// Longest server answer kept in a [`SendError`] (the rest is cut, marked with `…`).
const MAX_MESSAGE_CHARS: usize = 1000;

/// Why a mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Trying again cannot help: the server refused this mail for good.
    pub permanent: bool,
    /// The server's answer (`550 5.1.1 no such user`), or what went wrong reaching it
    /// (`connection refused to 127.0.0.1:2525`). One line, no secrets.
    pub message: String,
}

impl SendError {
    /// A failure that a later attempt may not have.
    pub fn temporary(message: impl Into<String>) -> SendError {
        SendError {
            permanent: false,
            message: one_line(&message.into()),
        }
    }

    /// A final refusal of this mail.
    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            permanent: true,
            message: one_line(&message.into()),
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.permanent {
            write!(f, "the mail was refused for good: {}", self.message)
        } else {
            write!(
                f,
                "the mail could not be sent for now (temporary failure): {}",
                self.message
            )
        }
    }
}

impl std::error::Error for SendError {}

/// `text` on one line (control characters become spaces, runs of spaces one), at most
/// [`MAX_MESSAGE_CHARS`] characters: server answers and program output go into records
/// and logs as they are.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS + 4));
    let mut count = 0;
    let mut space = false;
    for c in text.trim().chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' {
            if space {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if count == MAX_MESSAGE_CHARS {
            out.push('…');
            break;
        }
        out.push(c);
        count += 1;
    }
    let end = out.trim_end().len();
    out.truncate(end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_says_which_kind_and_keeps_the_answer() {
        let p = SendError::permanent("550 5.1.1 no such user");
        assert!(p.permanent);
        assert_eq!(
            p.to_string(),
            "the mail was refused for good: 550 5.1.1 no such user"
        );
        let t = SendError::temporary("connection refused to 127.0.0.1:2525");
        assert!(!t.permanent);
        assert!(t.to_string().contains("temporary"));
        assert!(
            t.to_string()
                .ends_with("connection refused to 127.0.0.1:2525")
        );
    }

    #[test]
    fn answers_are_kept_on_one_bounded_line() {
        let e = SendError::temporary("  451 4.3.0 try\r\n  again\tlater \u{7}");
        assert_eq!(e.message, "451 4.3.0 try again later");
        let long = "x".repeat(5000);
        let e = SendError::permanent(long);
        assert_eq!(e.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(e.message.ends_with('…'));
    }
}
