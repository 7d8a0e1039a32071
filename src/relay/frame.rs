//! The frames of a device's stream (`docs/PROTOCOL.md` §4): the serde types both the
//! server and the reference client encode and decode.
//!
//! A frame is one JSON object with a `type` field. On WebSocket every text message is
//! one frame; on QUIC every frame is a 4-byte big-endian length followed by that many
//! bytes of JSON on the connection's first bidirectional stream. Unknown fields are
//! ignored so that later protocol versions can add them; unknown `type`s are refused.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The ALPN protocol name of the QUIC transport.
pub const QUIC_ALPN: &[u8] = b"outpost/1";
/// Most bytes a decoded envelope ciphertext may have.
pub const MAX_CIPHERTEXT: usize = 64 * 1024;
/// Most attachments one envelope may reference.
pub const MAX_ATTACHMENTS: usize = 32;
/// Longest client message id.
pub const MAX_CLIENT_MSG_ID: usize = 64;

/// What an envelope carries. The server sees only this label, never the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Text,
    File,
    Location,
    Edit,
    Delete,
    Reaction,
    Call,
    Receipt,
    Control,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::File => "file",
            Kind::Location => "location",
            Kind::Edit => "edit",
            Kind::Delete => "delete",
            Kind::Reaction => "reaction",
            Kind::Call => "call",
            Kind::Receipt => "receipt",
            Kind::Control => "control",
        }
    }
}

/// One recipient device's copy of the content key, sealed with HPKE to its X25519 key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealedKey {
    pub device_id: String,
    /// base64 (standard, padded) of HPKE `enc` (32 bytes) ‖ sealed content key (48 bytes).
    pub sealed: String,
}

/// A reference from an envelope to an uploaded (client-encrypted) blob.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attachment {
    pub blob_id: String,
}

/// An envelope as a sender submits it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutgoingEnvelope {
    pub conversation_id: String,
    /// Chosen by the sending device, unique per device: a retry with the same id is
    /// answered with the first acceptance and stored once.
    pub client_msg_id: String,
    pub kind: Kind,
    /// Expiration timer in seconds; absent means the sender group's maximum.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// Burn-on-read timer in seconds, 0 = off.
    #[serde(default)]
    pub bor_secs: u64,
    /// The content was forwarded from another conversation.
    #[serde(default)]
    pub forwarded: bool,
    /// One sealed content key per recipient device.
    pub keys: Vec<SealedKey>,
    /// base64 of nonce (12 bytes) ‖ AES-256-GCM ciphertext and tag; at most 64 KiB decoded.
    pub ciphertext: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// base64 of the sending device's Ed25519 signature (PROTOCOL.md §5.4).
    pub signature: String,
}

/// An envelope as one recipient device receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub seq: u64,
    /// Milliseconds since the Unix epoch when the server accepted the envelope.
    pub server_time: u64,
    pub conversation_id: String,
    pub sender_user_id: String,
    pub sender_device_id: String,
    pub client_msg_id: String,
    pub kind: Kind,
    /// Milliseconds since the Unix epoch after which the envelope no longer exists.
    pub expires_at: u64,
    pub bor_secs: u64,
    pub forwarded: bool,
    /// This device's sealed content key.
    pub sealed_key: String,
    pub ciphertext: String,
    pub attachments: Vec<Attachment>,
    pub signature: String,
}

/// What happened to a conversation's membership (delivered as a `membership` frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipChange {
    Created,
    Added,
    Removed,
    Left,
    Updated,
    Deleted,
}

/// A membership event (also stored in mailboxes, so offline devices receive it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MembershipEvent {
    pub conversation_id: String,
    pub change: MembershipChange,
    /// The user who made the change.
    pub actor_user_id: String,
    /// The users the change is about (added, removed, left).
    #[serde(default)]
    pub user_ids: Vec<String>,
    /// The conversation as it is after the change (absent once deleted).
    #[serde(default)]
    pub conversation: Option<Value>,
}

/// A read receipt the server relays between members (when the network allows receipts).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipt {
    pub conversation_id: String,
    /// The user whose messages were read (the original sender).
    pub sender_user_id: String,
    /// The client message ids that were read.
    pub client_msg_ids: Vec<String>,
    /// Filled in by the server: who read them, and when (ms since the epoch).
    #[serde(default)]
    pub reader_user_id: String,
    #[serde(default)]
    pub read_at: u64,
}

/// A device waiting for approval, as the account's other devices see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingDevice {
    pub id: String,
    pub name: String,
    pub platform: String,
    pub client_version: String,
    /// When it registered (RFC 3339).
    pub created_at: String,
    /// Its public keys, when it sent them at sign-in (compare them before approving).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub x25519: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ed25519: Option<String>,
}

impl PendingDevice {
    pub fn of(d: &crate::directory::device::Device) -> PendingDevice {
        PendingDevice {
            id: d.id.clone(),
            name: d.name.clone(),
            platform: d.platform.clone(),
            client_version: d.client_version.clone(),
            created_at: d.created_at.to_rfc3339(),
            x25519: d.x25519.clone(),
            ed25519: d.ed25519.clone(),
        }
    }
}

/// The policy that applies to a device, sent on `ready` and whenever it changes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Policy {
    pub max_ttl_secs: u64,
    pub max_bor_secs: u64,
    pub forwarding: bool,
    pub files: bool,
    pub file_download: bool,
    pub read_receipts: bool,
    pub location: bool,
    /// The security group allows audio calls (the client API issues TURN credentials).
    #[serde(default)]
    pub audio_calls: bool,
    /// The security group allows video calls and screen sharing.
    #[serde(default)]
    pub video_calls: bool,
    /// Calls must use TCP or TLS: the client API offers no UDP TURN server and the relay
    /// refuses UDP allocations.
    #[serde(default)]
    pub force_tcp_calls: bool,
    /// Set when data retention is on: every envelope must also be sealed to this device.
    pub compliance_device_id: Option<String>,
    pub classification: Value,
}

/// The consent pop-up a device must acknowledge before its stream opens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Consent {
    pub version: u64,
    pub title: String,
    pub body: String,
    pub button_label: String,
}

/// Frames a device sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame on every stream.
    Authenticate {
        token: String,
        /// The consent version the person accepted on this device, if any.
        #[serde(default)]
        consent_version: Option<u64>,
    },
    Send {
        envelope: OutgoingEnvelope,
    },
    /// Remove every envelope and event up to and including `seq` from this device's mailbox.
    Ack {
        up_to: u64,
    },
    Receipt {
        receipt: Receipt,
    },
    Ping {
        #[serde(default)]
        nonce: Option<String>,
    },
}

/// A `send` frame, read directly: serde reads an internally tagged enum by first
/// buffering the whole frame, and `send` is the stream's largest and most frequent frame.
#[derive(Deserialize)]
struct SendFrame {
    #[serde(rename = "type")]
    _type: SendTag,
    envelope: OutgoingEnvelope,
}

#[derive(Deserialize)]
enum SendTag {
    #[serde(rename = "send")]
    Send,
}

impl ClientFrame {
    /// Read a frame from its JSON text (a `send` on the direct path, anything else — and
    /// any `send` that does not read cleanly, for the same error as before — through
    /// the enum).
    pub fn from_json(text: &str) -> serde_json::Result<ClientFrame> {
        if let Ok(SendFrame {
            _type: SendTag::Send,
            envelope,
        }) = serde_json::from_str::<SendFrame>(text)
        {
            return Ok(ClientFrame::Send { envelope });
        }
        serde_json::from_str(text)
    }
}

/// Frames the server sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Authentication succeeded; the mailbox follows.
    Ready {
        user_id: String,
        device_id: String,
        network_id: String,
        policy: Policy,
        /// Envelopes and events waiting in the mailbox right now.
        pending: u64,
    },
    /// The envelope `client_msg_id` is durably stored for every recipient.
    Accepted {
        client_msg_id: String,
        seq: u64,
        server_time: u64,
        /// True when this answers a retry of an envelope accepted before.
        duplicate: bool,
    },
    Deliver {
        envelope: Delivery,
    },
    Membership {
        seq: u64,
        server_time: u64,
        event: MembershipEvent,
    },
    Receipt {
        seq: u64,
        server_time: u64,
        receipt: Receipt,
    },
    Policy {
        policy: Policy,
    },
    /// The account's devices that wait for approval (account-takeover protection):
    /// sent after `ready` when there are any, and whenever the list changes (empty once
    /// all were approved or removed). Approve one with `POST /devices/{id}/approve`.
    DevicesPending {
        devices: Vec<PendingDevice>,
    },
    /// A refusal. `client_msg_id` names the envelope it is about, if any. When
    /// `fatal` is true the server closes the stream after this frame.
    Error {
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        client_msg_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        details: Option<Value>,
        #[serde(default)]
        fatal: bool,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none", default)]
        nonce: Option<String>,
    },
}

impl ServerFrame {
    /// An error frame from an [`crate::error::Error`].
    pub fn error(e: &crate::error::Error, client_msg_id: Option<&str>, fatal: bool) -> Self {
        ServerFrame::Error {
            code: e.code.to_string(),
            message: e.message.clone(),
            client_msg_id: client_msg_id.map(str::to_string),
            details: e.details.clone(),
            fatal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_direct_send_path_reads_what_the_enum_reads() {
        let send = r#"{"envelope":{"conversation_id":"c","client_msg_id":"m","kind":"text",
            "keys":[{"device_id":"d","sealed":"AA=="}],"ciphertext":"AA==","signature":"AA==",
            "extra":1},"type":"send","also":true}"#;
        let fast = ClientFrame::from_json(send).unwrap();
        let slow: ClientFrame = serde_json::from_str(send).unwrap();
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
        for other in [
            r#"{"type":"ack","up_to":7}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"authenticate","token":"t"}"#,
        ] {
            let a = ClientFrame::from_json(other).unwrap();
            let b: ClientFrame = serde_json::from_str(other).unwrap();
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        // A broken send is refused with the enum's own error.
        let broken = r#"{"type":"send","envelope":{"conversation_id":5}}"#;
        assert_eq!(
            ClientFrame::from_json(broken).unwrap_err().to_string(),
            serde_json::from_str::<ClientFrame>(broken)
                .unwrap_err()
                .to_string()
        );
        assert!(ClientFrame::from_json(r#"{"type":"nope"}"#).is_err());
    }
}
