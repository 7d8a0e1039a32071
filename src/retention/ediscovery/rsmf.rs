//! The `rsmf` export: Relativity Short Message Format 2.0, the short-message container
//! review platforms import.
//!
//! `export.rsmf` is an RFC 5322 message with the `X-RSMF-*` headers (`X-RSMF-Version:
//! 2.0.0`, generator, begin and end dates, event, attachment and participant counts)
//! and one attachment, `rsmf.zip`, whose root holds `rsmf_manifest.json` and every
//! attachment the events name. The manifest lists `participants` (each user: `id`,
//! `display`, `email`, `account_id`), `conversations` (each `vgroupid`: `id`, `platform`
//! `outpost`, `type` `direct` for one-to-one or `channel`, `participants`) and `events`
//! in time order: messages, files, locations and calls as `message` events (with
//! `attachments`), edits as the target event's `edits`, deletions as its `deleted`,
//! reactions as its `reactions`, members leaving as `leave`, other room events as
//! `unknown`; each event's `custom` keeps the journal's `msgtype` and `message_id`.

use super::reader::Entry;
use super::{ExportError, ExportRequest, Journal, Progress, Selected, describe, rfc3339};
use crate::retention::record::msgtype;
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, MultiPart, SinglePart};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

/// The RSMF version written.
pub const VERSION: &str = "2.0.0";

/// The files of `rsmf.zip` besides the manifest: (name in the zip, bytes).
pub type ZipFiles = Vec<(String, Vec<u8>)>;

fn custom(pairs: &[(&str, String)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(n, v)| json!({ "name": n, "value": v }))
            .collect(),
    )
}

/// The manifest and the files of the zip (name, bytes) for `selected`.
pub fn manifest(journal: &Journal, selected: &Selected) -> Result<(Value, ZipFiles), ExportError> {
    let mut users: BTreeSet<&str> = BTreeSet::new();
    let mut convs: BTreeMap<&str, (BTreeSet<&str>, bool)> = BTreeMap::new();
    for e in &selected.records {
        let r = &e.record;
        users.insert(&r.sender);
        let c = convs.entry(&r.vgroupid).or_default();
        c.0.insert(&r.sender);
        if let Some(to) = &r.receiver {
            users.insert(to);
            c.0.insert(to);
            c.1 = true;
        }
    }
    let participants: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({
                "id": u,
                "display": u,
                "email": super::eml::mailbox(u).email.to_string(),
                "account_id": u,
            })
        })
        .collect();
    let conversations: Vec<Value> = convs
        .iter()
        .map(|(id, (members, direct))| {
            let names: Vec<&str> = members.iter().copied().collect();
            json!({
                "id": id,
                "display": if *direct { names.join(", ") } else { format!("Conversation {id}") },
                "platform": "outpost",
                "type": if *direct { "direct" } else { "channel" },
                "participants": names,
            })
        })
        .collect();

    let mut events: Vec<Value> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut files: ZipFiles = Vec::new();
    for e in &selected.records {
        let r = &e.record;
        let target = r.target.as_ref().and_then(|t| by_id.get(t).copied());
        match (r.msgtype, target) {
            (msgtype::EDIT, Some(i)) => {
                let ev = &mut events[i];
                let previous = ev["body"].as_str().unwrap_or_default().to_string();
                let new = r.message.clone().unwrap_or_default();
                push(
                    ev,
                    "edits",
                    json!({
                        "participant": r.sender,
                        "timestamp": rfc3339(e.time),
                        "previous": previous,
                        "new": new,
                    }),
                );
                ev["body"] = Value::String(new);
                continue;
            }
            (msgtype::DELETE_MESSAGE, Some(i)) => {
                events[i]["deleted"] = Value::Bool(true);
                continue;
            }
            (msgtype::EDIT_REACTION, Some(i)) => {
                let value = reaction_value(e);
                let ev = &mut events[i];
                let list = ev
                    .as_object_mut()
                    .expect("events are objects")
                    .entry("reactions")
                    .or_insert_with(|| Value::Array(Vec::new()));
                let arr = list.as_array_mut().expect("reactions is an array");
                match arr.iter_mut().find(|x| x["value"] == value) {
                    Some(x) => {
                        let n = x["count"].as_u64().unwrap_or(0) + 1;
                        x["count"] = json!(n);
                        push(x, "participants", json!(r.sender));
                    }
                    None => {
                        arr.push(json!({ "value": value, "count": 1, "participants": [r.sender] }))
                    }
                }
                continue;
            }
            _ => {}
        }
        let kind = match r.msgtype {
            msgtype::TEXT | msgtype::FILE | msgtype::LOCATION | msgtype::CALL | msgtype::EDIT => {
                "message"
            }
            msgtype::LEAVE_ROOM => "leave",
            _ => "unknown",
        };
        let mut ev = json!({
            "id": r.message_id,
            "type": kind,
            "participant": r.sender,
            "conversation": r.vgroupid,
            "timestamp": rfc3339(e.time),
            "body": describe(r),
            "importance": "normal",
            "custom": custom(&[
                ("msgtype", r.msgtype.to_string()),
                ("message_id", r.message_id.clone()),
                ("kind", r.kind.clone()),
            ]),
        });
        if let Some(name) = attachment(journal, e, &mut files)? {
            let f = r.file.as_ref().expect("an attachment has a file record");
            ev["attachments"] = json!([{ "id": name, "display": f.filename, "size": f.size }]);
        }
        by_id.insert(r.message_id.clone(), events.len());
        events.push(ev);
    }
    let manifest = json!({
        "version": VERSION,
        "participants": participants,
        "conversations": conversations,
        "events": events,
    });
    Ok((manifest, files))
}

fn push(v: &mut Value, key: &str, item: Value) {
    let obj = v.as_object_mut().expect("an object");
    match obj.get_mut(key).and_then(Value::as_array_mut) {
        Some(a) => a.push(item),
        None => {
            obj.insert(key.to_string(), Value::Array(vec![item]));
        }
    }
}

fn reaction_value(e: &Entry) -> String {
    let c = e.record.content.as_ref();
    let v = ["emoji", "reaction", "value", "text"]
        .iter()
        .find_map(|k| c.and_then(|c| c.get(*k)).and_then(Value::as_str))
        .unwrap_or("reaction");
    v.chars().take(30).collect()
}

/// Put a record's saved attachment into the zip's files; its name in the zip.
fn attachment(
    journal: &Journal,
    e: &Entry,
    files: &mut ZipFiles,
) -> Result<Option<String>, ExportError> {
    let Some(f) = &e.record.file else {
        return Ok(None);
    };
    let Some(rel) = &f.localfilename else {
        return Ok(None);
    };
    let Some(bytes) = journal.attachment(rel)? else {
        return Ok(None);
    };
    let name = format!(
        "{}-{}",
        super::eml::safe(&f.guid),
        super::eml::safe(&f.filename)
    );
    files.push((name.clone(), bytes));
    Ok(Some(name))
}

/// Zip the manifest and files (all at the root, as RSMF requires).
pub fn zip(manifest: &Value, files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("rsmf_manifest.json", deflated)
        .map_err(|e| e.to_string())?;
    let text = serde_json::to_vec_pretty(manifest).map_err(|e| e.to_string())?;
    w.write_all(&text).map_err(|e| e.to_string())?;
    for (name, bytes) in files {
        let opts = if bytes.len() as u64 >= u32::MAX as u64 {
            stored.large_file(true)
        } else {
            stored
        };
        w.start_file(name.as_str(), opts)
            .map_err(|e| e.to_string())?;
        w.write_all(bytes).map_err(|e| e.to_string())?;
    }
    Ok(w.finish().map_err(|e| e.to_string())?.into_inner())
}

fn raw(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// Write `export.rsmf` into the request's output folder.
pub fn write(
    journal: &Journal,
    selected: &Selected,
    req: &ExportRequest,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<String>, usize), ExportError> {
    let (manifest, files) = manifest(journal, selected)?;
    let total = selected.records.len();
    progress(Progress::Written { done: total, total });
    let event_count = manifest["events"].as_array().map_or(0, Vec::len);
    let participants: Vec<String> = manifest["participants"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["display"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let zipped = zip(&manifest, &files)
        .map_err(|e| ExportError::Write(format!("cannot build rsmf.zip: {e}")))?;
    let begin = selected
        .records
        .first()
        .map(|e| e.time)
        .unwrap_or(selected.from);
    let end = selected
        .records
        .last()
        .map(|e| e.time)
        .unwrap_or(selected.to);
    let mut b = Message::builder()
        .from(super::eml::mailbox("outpost retention export"))
        .subject(format!(
            "outpost retention export {} to {}",
            rfc3339(selected.from),
            rfc3339(selected.to)
        ))
        .date(std::time::SystemTime::now())
        .raw_header(raw("X-RSMF-Version", VERSION.into()))
        .raw_header(raw(
            "X-RSMF-Generator",
            format!("outpost {}", env!("CARGO_PKG_VERSION")),
        ))
        .raw_header(raw("X-RSMF-Application", "outpost".into()))
        .raw_header(raw("X-RSMF-BeginDate", rfc3339(begin)))
        .raw_header(raw("X-RSMF-EndDate", rfc3339(end)))
        .raw_header(raw("X-RSMF-EventCount", event_count.to_string()))
        .raw_header(raw("X-RSMF-AttachmentCount", files.len().to_string()));
    if participants.is_empty() {
        b = b.to(super::eml::mailbox("outpost retention export"));
    } else {
        b = b.raw_header(raw("X-RSMF-Participants", participants.join(", ")));
        for p in &participants {
            b = b.to(super::eml::mailbox(p));
        }
    }
    let body = format!(
        "outpost retention export: {event_count} events, {} attachments, {} participants.\r\n\
         The conversation data is in the attached rsmf.zip (RSMF {VERSION}).\r\n",
        files.len(),
        participants.len()
    );
    let m = b
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(body))
                .singlepart(Attachment::new("rsmf.zip".into()).body(
                    zipped,
                    ContentType::parse("application/zip").expect("static content type"),
                )),
        )
        .map_err(|e| ExportError::Write(format!("cannot build export.rsmf: {e}")))?;
    let path = req.out.join("export.rsmf");
    std::fs::write(&path, m.formatted()).map_err(|e| ExportError::write(&path, e))?;
    Ok((vec!["export.rsmf".into()], files.len()))
}
