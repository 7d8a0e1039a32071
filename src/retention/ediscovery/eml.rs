//! The `eml` export: RFC 5322 messages (built with lettre's message builder), one per
//! message or one per conversation and UTC day, with saved attachments as MIME parts.
//!
//! Users are not e-mail users: a username that is an e-mail address is used as it is,
//! any other becomes `<username>@outpost.invalid` (the reserved `.invalid` domain) with
//! the username as display name. Each message carries `X-Outpost-Message-Id`,
//! `X-Outpost-Msgtype` and `X-Outpost-Conversation` so a review platform can map it back
//! to the journal.

use super::reader::Entry;
use super::{ExportError, Journal, Progress, Selected, describe, rfc3339};
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::EmlGrouping;

/// A participant as a mailbox.
pub fn mailbox(user: &str) -> Mailbox {
    if let Ok(m) = user.parse::<Mailbox>() {
        return m;
    }
    let local: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let local = local.trim_matches('.');
    let local = if local.is_empty() { "unknown" } else { local };
    let addr = format!("{local}@outpost.invalid")
        .parse()
        .unwrap_or_else(|_| "unknown@outpost.invalid".parse().expect("static address"));
    Mailbox::new(Some(user.to_string()), addr)
}

/// A string safe as a file name part and in a Message-ID.
pub fn safe(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if out.is_empty() { "_".into() } else { out }
}

fn system_time(e: &Entry) -> SystemTime {
    let ms = e.time.timestamp_millis().max(0) as u64;
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
}

fn subject_of(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut s: String = one_line.chars().take(70).collect();
    if one_line.chars().count() > 70 {
        s.push('…');
    }
    s
}

/// The attachment parts of a record that are in the folder.
fn attachment_parts(journal: &Journal, e: &Entry) -> Result<Vec<SinglePart>, ExportError> {
    let Some(f) = &e.record.file else {
        return Ok(Vec::new());
    };
    let Some(rel) = &f.localfilename else {
        return Ok(Vec::new());
    };
    let Some(bytes) = journal.attachment(rel)? else {
        return Ok(Vec::new());
    };
    let ct = ContentType::parse(&f.mime)
        .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("static"));
    let name = if f.filename.is_empty() {
        f.guid.clone()
    } else {
        f.filename.clone()
    };
    Ok(vec![Attachment::new(name).body(bytes, ct)])
}

fn conversation_members(selected: &Selected) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut out: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in &selected.records {
        let set = out.entry(e.record.vgroupid.as_str()).or_default();
        set.insert(e.record.sender.as_str());
        if let Some(r) = &e.record.receiver {
            set.insert(r.as_str());
        }
    }
    out
}

fn finish(
    builder: lettre::message::MessageBuilder,
    body: String,
    parts: Vec<SinglePart>,
) -> Result<Message, String> {
    let text = SinglePart::plain(body);
    let m = if parts.is_empty() {
        builder.singlepart(text)
    } else {
        let mut mp = MultiPart::mixed().singlepart(text);
        for p in parts {
            mp = mp.singlepart(p);
        }
        builder.multipart(mp)
    };
    m.map_err(|e| e.to_string())
}

/// Write `eml/*.eml` into `out`; returns the files and the attachment count.
pub fn write(
    journal: &Journal,
    selected: &Selected,
    out: &Path,
    grouping: EmlGrouping,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<String>, usize), ExportError> {
    let dir = out.join("eml");
    std::fs::create_dir_all(&dir).map_err(|e| ExportError::write(&dir, e))?;
    let members = conversation_members(selected);
    let recipients = |e: &Entry| -> Vec<Mailbox> {
        let r = &e.record;
        if let Some(to) = &r.receiver {
            return vec![mailbox(to)];
        }
        let others: Vec<Mailbox> = members
            .get(r.vgroupid.as_str())
            .map(|s| {
                s.iter()
                    .filter(|u| **u != r.sender)
                    .map(|u| mailbox(u))
                    .collect()
            })
            .unwrap_or_default();
        if others.is_empty() {
            vec![mailbox(&r.sender)]
        } else {
            others
        }
    };
    let mut outputs = Vec::new();
    let mut attachments = 0usize;
    let total = selected.records.len();
    let mut save = |name: String, m: Message| -> Result<(), ExportError> {
        let p = dir.join(&name);
        std::fs::write(&p, m.formatted()).map_err(|e| ExportError::write(&p, e))?;
        outputs.push(format!("eml/{name}"));
        Ok(())
    };
    match grouping {
        EmlGrouping::Message => {
            for (i, e) in selected.records.iter().enumerate() {
                let r = &e.record;
                let text = describe(r);
                let mut b = Message::builder()
                    .from(mailbox(&r.sender))
                    .subject(subject_of(&text))
                    .date(system_time(e))
                    .message_id(Some(format!(
                        "<{}@retention.outpost.invalid>",
                        safe(&r.message_id)
                    )))
                    .raw_header(raw("X-Outpost-Message-Id", &r.message_id))
                    .raw_header(raw("X-Outpost-Msgtype", &r.msgtype.to_string()))
                    .raw_header(raw("X-Outpost-Conversation", &r.vgroupid));
                for to in recipients(e) {
                    b = b.to(to);
                }
                let parts = attachment_parts(journal, e)?;
                attachments += parts.len();
                let body = format!(
                    "{text}\r\n\r\n--\r\nmessage_id: {}\r\nconversation: {}\r\nsent: {}\r\nmsgtype: {} ({})\r\n",
                    r.message_id,
                    r.vgroupid,
                    rfc3339(e.time),
                    r.msgtype,
                    r.kind
                );
                let m = finish(b, body, parts).map_err(|err| {
                    ExportError::Write(format!("cannot build the message {}: {err}", r.message_id))
                })?;
                save(
                    format!(
                        "{}-{}.eml",
                        e.time.format("%Y%m%dT%H%M%S%3fZ"),
                        safe(&r.message_id)
                    ),
                    m,
                )?;
                if (i + 1) % 10_000 == 0 {
                    progress(Progress::Written { done: i + 1, total });
                }
            }
        }
        EmlGrouping::ConversationDay => {
            let mut groups: BTreeMap<(String, String), Vec<&Entry>> = BTreeMap::new();
            for e in &selected.records {
                let day = e.time.format("%Y-%m-%d").to_string();
                groups
                    .entry((e.record.vgroupid.clone(), day))
                    .or_default()
                    .push(e);
            }
            let mut done = 0usize;
            for ((conv, day), entries) in groups {
                let first = entries[0];
                let mut body = String::new();
                let mut parts = Vec::new();
                let mut ids = Vec::new();
                for e in &entries {
                    let r = &e.record;
                    body.push_str(&format!(
                        "[{}] {}: {}\r\n",
                        e.time.format("%H:%M:%S"),
                        r.sender,
                        describe(r)
                    ));
                    ids.push(r.message_id.as_str());
                    parts.extend(attachment_parts(journal, e)?);
                }
                attachments += parts.len();
                let everyone: Vec<Mailbox> = members
                    .get(conv.as_str())
                    .map(|s| s.iter().map(|u| mailbox(u)).collect())
                    .unwrap_or_default();
                let mut b = Message::builder()
                    .from(mailbox(&first.record.sender))
                    .subject(format!(
                        "Conversation {conv} on {day} ({} messages)",
                        entries.len()
                    ))
                    .date(system_time(first))
                    .message_id(Some(format!(
                        "<{}-{day}@retention.outpost.invalid>",
                        safe(&conv)
                    )))
                    .raw_header(raw("X-Outpost-Conversation", &conv))
                    .raw_header(raw("X-Outpost-Message-Id", &ids.join(", ")));
                for to in everyone {
                    b = b.to(to);
                }
                let m = finish(b, body, parts).map_err(|err| {
                    ExportError::Write(format!(
                        "cannot build the transcript of {conv} on {day}: {err}"
                    ))
                })?;
                save(format!("{}-{day}.eml", safe(&conv)), m)?;
                done += entries.len();
                progress(Progress::Written { done, total });
            }
        }
    }
    progress(Progress::Written { done: total, total });
    Ok((outputs, attachments))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_become_mailboxes() {
        assert_eq!(
            mailbox("alice@example.test").email.to_string(),
            "alice@example.test"
        );
        let m = mailbox("Bob Smith");
        assert_eq!(m.email.to_string(), "Bob_Smith@outpost.invalid");
        assert_eq!(m.name.as_deref(), Some("Bob Smith"));
        assert_eq!(safe("a/b c"), "a_b_c");
    }
}
