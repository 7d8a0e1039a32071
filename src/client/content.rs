//! The plaintext inside envelopes (`docs/PROTOCOL.md` §5.2): the content JSON of each
//! kind, the `File` object of attachments, and what a received message looks like once
//! opened.

use anyhow::{Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::crypto::FileKey;
use crate::relay::frame::{Attachment, Delivery, Kind};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// An encrypted file as a message references it (§5.5). Whoever holds it can download
/// and decrypt the file: it is as secret as the message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRef {
    pub blob_id: String,
    pub name: String,
    /// Plaintext bytes.
    pub size: u64,
    pub mime: String,
    /// base64 of the file key `F`.
    pub key: String,
    /// base64 of the nonce prefix `R`.
    pub nonce_prefix: String,
    /// Hex SHA-256 of the blob (the encrypted bytes).
    pub sha256: String,
}

impl FileRef {
    /// The key and nonce prefix, decoded and checked.
    pub fn file_key(&self) -> Result<FileKey> {
        let key = B64
            .decode(&self.key)
            .context("the file key is not base64")?;
        let prefix = B64
            .decode(&self.nonce_prefix)
            .context("the file nonce prefix is not base64")?;
        Ok(FileKey::from_slices(&key, &prefix)?)
    }

    /// A name safe to create in a folder: no path separators, no leading dots.
    pub fn safe_name(&self) -> String {
        let base = self.name.rsplit(['/', '\\']).next().unwrap_or("");
        let cleaned: String = base
            .chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect();
        let cleaned = cleaned.trim_start_matches('.').trim();
        if cleaned.is_empty() {
            format!("{}.bin", self.blob_id.replace(['/', '\\', '.'], "_"))
        } else {
            cleaned.to_string()
        }
    }
}

/// `text` content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TextContent {
    pub text: String,
}

/// `file` content: the file and an optional caption.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub file: FileRef,
}

/// A delivered envelope once verified, opened and decrypted.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedMessage {
    pub seq: u64,
    pub server_time: u64,
    pub conversation_id: String,
    pub sender_user_id: String,
    pub sender_device_id: String,
    pub client_msg_id: String,
    pub kind: Kind,
    pub expires_at: u64,
    pub bor_secs: u64,
    pub forwarded: bool,
    pub attachments: Vec<Attachment>,
    /// The decrypted content JSON (`Value::String` of the raw text if it was not JSON).
    pub content: Value,
}

impl ReceivedMessage {
    /// Assemble from a delivery and its decrypted content.
    pub fn new(d: &Delivery, plaintext: &[u8]) -> Self {
        let content = serde_json::from_slice(plaintext)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(plaintext).into_owned()));
        ReceivedMessage {
            seq: d.seq,
            server_time: d.server_time,
            conversation_id: d.conversation_id.clone(),
            sender_user_id: d.sender_user_id.clone(),
            sender_device_id: d.sender_device_id.clone(),
            client_msg_id: d.client_msg_id.clone(),
            kind: d.kind,
            expires_at: d.expires_at,
            bor_secs: d.bor_secs,
            forwarded: d.forwarded,
            attachments: d.attachments.clone(),
            content,
        }
    }

    /// The text of a `text`, `file` (caption) or `edit` message.
    pub fn text(&self) -> Option<&str> {
        self.content.get("text").and_then(Value::as_str)
    }

    /// The attached file of a `file` message, if well-formed.
    pub fn file(&self) -> Option<FileRef> {
        if self.kind != Kind::File {
            return None;
        }
        serde_json::from_value(self.content.get("file")?.clone()).ok()
    }

    /// One line for a person: the text, or a description of the content.
    pub fn summary(&self) -> String {
        match (self.kind, self.text(), self.file()) {
            (Kind::File, caption, Some(f)) => {
                let mut s = format!("[file {} ({} bytes, {})]", f.name, f.size, f.mime);
                if let Some(c) = caption {
                    s = format!("{c} {s}");
                }
                s
            }
            (Kind::Text, Some(t), _) => t.to_string(),
            (kind, Some(t), _) => format!("[{}] {t}", kind.as_str()),
            (kind, None, _) => format!("[{}] {}", kind.as_str(), self.content),
        }
    }
}

/// A MIME type from a file name's extension (a short list; `application/octet-stream`
/// otherwise).
pub fn guess_mime(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> FileRef {
        FileRef {
            blob_id: "b1".into(),
            name: "../../etc/passwd".into(),
            size: 3,
            mime: "text/plain".into(),
            key: B64.encode([1u8; 32]),
            nonce_prefix: B64.encode([2u8; 7]),
            sha256: "00".into(),
        }
    }

    #[test]
    fn file_ref() {
        let mut f = file();
        assert_eq!(f.safe_name(), "passwd");
        assert_eq!(f.file_key().unwrap().nonce_prefix, [2u8; 7]);
        f.name = "..".into();
        assert_eq!(f.safe_name(), "b1.bin");
        f.name = ".bashrc".into();
        assert_eq!(f.safe_name(), "bashrc");
        f.nonce_prefix = B64.encode([2u8; 8]);
        assert!(f.file_key().is_err());
        f.key = "!!".into();
        assert!(f.file_key().is_err());
    }

    #[test]
    fn content_shapes() {
        let c = FileContent {
            text: None,
            file: file(),
        };
        let v = serde_json::to_value(&c).unwrap();
        assert!(v.get("text").is_none());
        assert_eq!(v["file"]["blob_id"], "b1");
        assert_eq!(guess_mime("A.PDF"), "application/pdf");
        assert_eq!(guess_mime("noext"), "application/octet-stream");
    }
}
