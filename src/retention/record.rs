//! The journal record: one JSON line per retained message, with the reference's
//! fields (PRODUCT.md F8) and its `msgtype` codes.
//!
//! Field names and codes follow the reference's compliance output (`message_id`,
//! `msg_ts`, `msgtype`, `sender`, `receiver`, `vgroupid`, `time`, `time_iso`, `ttl`,
//! `bor`, `message`, `file`, `call`, …). outpost adds a few fields the reference has no
//! equivalent for (`seq`, `sender_device`, `kind`, `forwarded`, `target`, `content`);
//! readers ignore fields they do not know. Absent optional fields are left out of the
//! line, as the reference does.

use crate::relay::frame::{Kind, MembershipChange};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The reference's message type codes.
pub mod msgtype {
    pub const TEXT: u32 = 1000;
    pub const VERIFICATION: u32 = 3000;
    pub const CREATE_ROOM: u32 = 4001;
    pub const MODIFY_ROOM_MEMBERS: u32 = 4002;
    pub const LEAVE_ROOM: u32 = 4003;
    pub const MODIFY_ROOM_PARAMETERS: u32 = 4004;
    pub const DELETE_ROOM: u32 = 4005;
    pub const DELETE_MESSAGE: u32 = 4011;
    pub const MESSAGE_ATTRIBUTES: u32 = 4012;
    pub const MESSAGE_ATTRIBUTES_SYNC: u32 = 4013;
    pub const MODIFY_PRIVATE_PROPERTY: u32 = 4014;
    pub const FILE: u32 = 6000;
    pub const CALL: u32 = 7000;
    pub const LOCATION: u32 = 8000;
    pub const EDIT: u32 = 9000;
    pub const EDIT_REACTION: u32 = 9100;
}

/// The `msgtype` of an envelope kind. Control envelopes (application-defined room
/// settings and attributes) are "modify room parameters".
pub fn msgtype_of_kind(kind: Kind) -> u32 {
    match kind {
        Kind::Text => msgtype::TEXT,
        Kind::File => msgtype::FILE,
        Kind::Location => msgtype::LOCATION,
        Kind::Edit => msgtype::EDIT,
        Kind::Delete => msgtype::DELETE_MESSAGE,
        Kind::Reaction => msgtype::EDIT_REACTION,
        Kind::Call => msgtype::CALL,
        Kind::Receipt => msgtype::MESSAGE_ATTRIBUTES,
        Kind::Control => msgtype::MODIFY_ROOM_PARAMETERS,
    }
}

/// The `msgtype` of a conversation membership event.
pub fn msgtype_of_change(change: MembershipChange) -> u32 {
    match change {
        MembershipChange::Created => msgtype::CREATE_ROOM,
        MembershipChange::Added | MembershipChange::Removed => msgtype::MODIFY_ROOM_MEMBERS,
        MembershipChange::Left => msgtype::LEAVE_ROOM,
        MembershipChange::Updated => msgtype::MODIFY_ROOM_PARAMETERS,
        MembershipChange::Deleted => msgtype::DELETE_ROOM,
    }
}

/// A file transfer's metadata (`msgtype` 6000), and where the decrypted copy is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct FileRecord {
    /// The attachment's blob id (the reference's `guid`).
    pub guid: String,
    /// The name the sender gave the file.
    pub filename: String,
    /// Plaintext bytes.
    pub size: u64,
    pub mime: String,
    /// Hex SHA-256 of the encrypted blob, as the sender declared it.
    pub sha256: String,
    /// Path of the decrypted copy relative to the retention folder
    /// (`attachments/<guid>/<name>`); absent when the file could not be saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localfilename: Option<String>,
    /// Hex SHA-256 of the decrypted copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext_sha256: Option<String>,
    /// Why the file is not saved (absent when it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A location (`msgtype` 8000).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LocationRecord {
    pub latitude: f64,
    pub longitude: f64,
}

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// The message's id: the sender's client message id for envelopes, `event-<seq>`
    /// for membership events. Unique per retained message: the exactly-once key.
    pub message_id: String,
    /// The relay's sequence number (outpost): journal order, the exporter's resume point.
    pub seq: u64,
    /// Server time in seconds with microseconds, as text (`"1691176258.901000"`).
    pub msg_ts: String,
    pub msgtype: u32,
    /// The sending user (for events, the user who made the change).
    pub sender: String,
    /// The network of the compliance member that received it (outpost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The sending device (outpost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_device: Option<String>,
    /// `normal` (outpost has no guest senders in the journal yet).
    pub sender_type: String,
    /// The other member of a one-to-one conversation; absent for groups and rooms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// The conversation.
    pub vgroupid: String,
    /// Human-readable UTC time (`8/4/23 7:10 PM`).
    pub time: String,
    /// UTC time as `YYYY-MM-DD hh:mm:ss.xxx`.
    pub time_iso: String,
    /// When the message expires, human-readable UTC time.
    pub ttl: String,
    /// Burn-on-read timer in seconds; absent when off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bor: Option<u64>,
    /// The envelope kind (`text`, `file`, …; `membership` for events) (outpost).
    pub kind: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forwarded: bool,
    /// The text of a text message, a file's caption or an edit's new text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The message an edit, delete or reaction refers to (its client message id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileRecord>,
    /// The call record (start, end, participants… as the calling client wrote it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationRecord>,
    /// Room events and control messages: what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<Value>,
    /// The whole decrypted content JSON, for kinds whose fields are not lifted above
    /// (reactions, receipts, unknown shapes) (outpost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    /// Why the envelope could not be decrypted (the record still says who sent what
    /// when, so nothing disappears silently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Milliseconds since the epoch as a UTC time.
pub fn utc_of_ms(ms: u64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms as i64)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The reference's human time: `8/4/23 7:10 PM`.
pub fn human_time(t: DateTime<Utc>) -> String {
    t.format("%-m/%-d/%y %-I:%M %p").to_string()
}

/// The reference's ISO time: `2023-08-04 19:10:58.901`.
pub fn iso_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// The reference's `msg_ts`: seconds with six decimals.
pub fn msg_ts(ms: u64) -> String {
    format!("{}.{:06}", ms / 1000, (ms % 1000) * 1000)
}

impl Record {
    /// A record with the common fields filled in (times in ms since the epoch: when the
    /// server accepted the message, when it expires); the content fields empty.
    pub fn base(
        message_id: String,
        seq: u64,
        msgtype: u32,
        kind: &str,
        sender: &str,
        conversation_id: &str,
        (server_time_ms, expires_at_ms): (u64, u64),
    ) -> Record {
        let t = utc_of_ms(server_time_ms);
        Record {
            message_id,
            seq,
            msg_ts: msg_ts(server_time_ms),
            msgtype,
            sender: sender.to_string(),
            network: None,
            sender_device: None,
            sender_type: "normal".into(),
            receiver: None,
            vgroupid: conversation_id.to_string(),
            time: human_time(t),
            time_iso: iso_time(t),
            ttl: human_time(utc_of_ms(expires_at_ms)),
            bor: None,
            kind: kind.to_string(),
            forwarded: false,
            message: None,
            target: None,
            file: None,
            call: None,
            location: None,
            control: None,
            content: None,
            error: None,
        }
    }

    /// Fill the content fields from an envelope's decrypted content JSON.
    pub fn set_content(&mut self, kind: Kind, content: Value) {
        let text = |v: &Value| v.get("text").and_then(Value::as_str).map(str::to_string);
        let target = |v: &Value| v.get("target").and_then(Value::as_str).map(str::to_string);
        match kind {
            Kind::Text | Kind::Edit => {
                self.message = text(&content);
                self.target = target(&content);
                if self.message.is_none() {
                    self.content = Some(content);
                }
            }
            Kind::File => {
                self.message = text(&content);
                // `file` is filled in by the exporter once the attachment is saved.
                self.content = None;
            }
            Kind::Location => {
                let lat = content.get("lat").and_then(Value::as_f64);
                let lon = content.get("lon").and_then(Value::as_f64);
                match (lat, lon) {
                    (Some(latitude), Some(longitude)) => {
                        self.location = Some(LocationRecord {
                            latitude,
                            longitude,
                        })
                    }
                    _ => self.content = Some(content),
                }
            }
            Kind::Delete => self.target = target(&content),
            Kind::Reaction => {
                self.target = target(&content);
                self.content = Some(content);
            }
            Kind::Call => self.call = Some(content),
            Kind::Control => self.control = Some(content),
            Kind::Receipt => self.content = Some(content),
        }
    }

    /// The line (JSON and a newline) appended to the journal.
    pub fn to_line(&self, out: &mut Vec<u8>) {
        // A struct of strings, numbers and `Value`s always encodes.
        serde_json::to_writer(&mut *out, self).expect("a record encodes as JSON");
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_codes() {
        // 2023-08-04 19:10:58.901 UTC
        let ms = 1_691_176_258_901;
        assert_eq!(msg_ts(ms), "1691176258.901000");
        assert_eq!(iso_time(utc_of_ms(ms)), "2023-08-04 19:10:58.901");
        assert_eq!(human_time(utc_of_ms(ms)), "8/4/23 7:10 PM");
        assert_eq!(msgtype_of_kind(Kind::Text), 1000);
        assert_eq!(msgtype_of_kind(Kind::File), 6000);
        assert_eq!(msgtype_of_kind(Kind::Call), 7000);
        assert_eq!(msgtype_of_kind(Kind::Location), 8000);
        assert_eq!(msgtype_of_kind(Kind::Edit), 9000);
        assert_eq!(msgtype_of_change(MembershipChange::Created), 4001);
        assert_eq!(msgtype_of_change(MembershipChange::Deleted), 4005);
    }

    #[test]
    fn round_trip_and_shape() {
        let mut r = Record::base("m1".into(), 7, 1000, "text", "alice", "c1", (1000, 2000));
        r.set_content(Kind::Text, serde_json::json!({"text": "hi"}));
        let mut line = Vec::new();
        r.to_line(&mut line);
        assert_eq!(line.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["message"], "hi");
        assert_eq!(v["msgtype"], 1000);
        assert!(v.get("file").is_none() && v.get("receiver").is_none());
        let back: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, r);
        let mut l = Record::base("m2".into(), 8, 8000, "location", "a", "c", (0, 0));
        l.set_content(Kind::Location, serde_json::json!({"lat": 1.5, "lon": -2.0}));
        assert_eq!(l.location.unwrap().longitude, -2.0);
    }
}
