//! Building the mails the appliance sends: one sender, one recipient, a subject, and the
//! same text as plain text and as HTML (`multipart/alternative`), with a `Message-ID`
//! and a `Date`.
//!
//! Bodies are UTF-8; lettre picks 7bit, quoted-printable or base64 for each part, so the
//! formatted message is ASCII and needs no 8BITMIME. Header values are checked for line
//! breaks, so nothing a template puts in a subject can add a header.

use super::SendError;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

/// Why a mail could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("sender {address:?} is not a mail address: {reason}")]
    From { address: String, reason: String },
    #[error("recipient {address:?} is not a mail address: {reason}")]
    To { address: String, reason: String },
    #[error("the subject must be one line (it has a line break)")]
    Subject,
    #[error("Message-ID {0:?} is not of the form <unique@domain>")]
    MessageId(String),
    #[error("cannot build the mail: {0}")]
    Build(String),
}

impl From<MessageError> for SendError {
    /// A mail that cannot be built now never can: a permanent failure.
    fn from(e: MessageError) -> SendError {
        SendError::permanent(e.to_string())
    }
}

/// A mail from `from` to `to` (each `address` or `Name <address>`) with `subject`, and
/// `text` and `html` as the two alternatives; its `Message-ID` is new
/// (`<random@sender's domain>`).
pub fn build_message(
    from: &str,
    to: &str,
    subject: &str,
    text: &str,
    html: &str,
) -> Result<Message, MessageError> {
    let sender = parse_from(from)?;
    let id = new_message_id(&sender);
    build(sender, to, subject, text, html, id)
}

/// [`build_message`] with a given `Message-ID` (`<unique@domain>`): every attempt to send
/// one outbox record carries the same id, so a mail sent twice (a crash between the
/// server's acceptance and the record's update) is recognised as a duplicate.
pub fn build_message_with_id(
    from: &str,
    to: &str,
    subject: &str,
    text: &str,
    html: &str,
    message_id: &str,
) -> Result<Message, MessageError> {
    if !is_message_id(message_id) {
        return Err(MessageError::MessageId(message_id.to_string()));
    }
    build(
        parse_from(from)?,
        to,
        subject,
        text,
        html,
        message_id.to_string(),
    )
}

/// A new `Message-ID` for mail from `sender`: `<32 hex digits@domain>`.
pub fn new_message_id(sender: &Mailbox) -> String {
    format!(
        "<{}@{}>",
        uuid::Uuid::new_v4().simple(),
        sender.email.domain()
    )
}

fn parse_from(from: &str) -> Result<Mailbox, MessageError> {
    from.parse().map_err(|e| MessageError::From {
        address: from.to_string(),
        reason: format!("{e}"),
    })
}

fn build(
    from: Mailbox,
    to: &str,
    subject: &str,
    text: &str,
    html: &str,
    message_id: String,
) -> Result<Message, MessageError> {
    let recipient: Mailbox = to.parse().map_err(|e| MessageError::To {
        address: to.to_string(),
        reason: format!("{e}"),
    })?;
    if subject.contains(['\r', '\n']) {
        return Err(MessageError::Subject);
    }
    Message::builder()
        .from(from)
        .to(recipient)
        .subject(subject)
        .message_id(Some(message_id))
        .multipart(MultiPart::alternative_plain_html(
            text.to_string(),
            html.to_string(),
        ))
        .map_err(|e| MessageError::Build(e.to_string()))
}

/// `<left@right>`: printable ASCII, no spaces, one `@`, angle brackets only at the ends.
fn is_message_id(id: &str) -> bool {
    let Some(inner) = id.strip_prefix('<').and_then(|s| s.strip_suffix('>')) else {
        return false;
    };
    let Some((left, right)) = inner.split_once('@') else {
        return false;
    };
    !left.is_empty()
        && !right.is_empty()
        && inner.len() <= 250
        && inner
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\'))
        && !right.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(m: &Message) -> String {
        String::from_utf8(m.formatted()).expect("ASCII message")
    }

    #[test]
    fn a_mail_has_both_alternatives_an_id_and_a_date() {
        let m = build_message(
            "Outpost <outpost@example.org>",
            "alice@example.test",
            "Welcome to Ops",
            "Hello Alice, register at https://outpost.example.org/invite/abc",
            "<p>Hello Alice, <a href=\"https://outpost.example.org/invite/abc\">register</a></p>",
        )
        .unwrap();
        let text = formatted(&m);
        assert!(
            text.contains("From: Outpost <outpost@example.org>\r\n"),
            "{text}"
        );
        assert!(text.contains("To: alice@example.test\r\n"), "{text}");
        assert!(text.contains("Subject: Welcome to Ops\r\n"), "{text}");
        assert!(text.contains("MIME-Version: 1.0\r\n"), "{text}");
        assert!(text.contains("Date: "), "{text}");
        assert!(
            text.contains("Content-Type: multipart/alternative;"),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: text/plain; charset=utf-8"),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: text/html; charset=utf-8"),
            "{text}"
        );
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .expect("Message-ID");
        assert!(is_message_id(id), "{id}");
        assert!(id.ends_with("@example.org>"), "{id}");
        assert_eq!(text.matches("MIME-Version").count(), 1, "{text}");
        let env = m.envelope();
        assert_eq!(env.from().unwrap().to_string(), "outpost@example.org");
        assert_eq!(env.to()[0].to_string(), "alice@example.test");
    }

    #[test]
    fn non_ascii_text_is_encoded_so_the_mail_is_ascii() {
        let m = build_message(
            "outpost@example.org",
            "Zoë <zoe@example.test>",
            "Willkommen, Zoë — CONFIDENTIAL",
            "Grüße",
            "<p>Grüße</p>",
        )
        .unwrap();
        assert!(m.formatted().is_ascii());
    }

    #[test]
    fn the_given_message_id_is_kept_and_checked() {
        let m = build_message_with_id(
            "outpost@example.org",
            "bob@example.test",
            "s",
            "t",
            "<p>t</p>",
            "<0190-abc@outpost.example.org>",
        )
        .unwrap();
        assert!(formatted(&m).contains("Message-ID: <0190-abc@outpost.example.org>\r\n"));
        for bad in [
            "0190@x",
            "<no-at>",
            "<a@b>\r\nBcc: eve@example.test",
            "<a b@c>",
            "<@c>",
            "<a@>",
            "<a@b@c>",
        ] {
            let e = build_message_with_id("o@example.org", "b@example.test", "s", "t", "h", bad)
                .unwrap_err();
            assert_eq!(e, MessageError::MessageId(bad.to_string()));
        }
    }

    #[test]
    fn bad_addresses_and_subjects_are_refused_as_permanent_failures() {
        let e = build_message("not an address", "b@example.test", "s", "t", "h").unwrap_err();
        assert!(matches!(e, MessageError::From { .. }), "{e}");
        let e = build_message("o@example.org", "bob@", "s", "t", "h").unwrap_err();
        assert!(e.to_string().contains("\"bob@\""), "{e}");
        let send: SendError = e.into();
        assert!(send.permanent);
        let e = build_message(
            "o@example.org",
            "b@example.test",
            "hi\r\nBcc: eve@example.test",
            "t",
            "h",
        )
        .unwrap_err();
        assert_eq!(e, MessageError::Subject);
    }
}
