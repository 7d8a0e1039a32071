//! The checks an envelope must pass before the relay stores it (PRODUCT.md F2, F6,
//! F8; PROTOCOL.md §4.6): well-formed fields, a member sender, exactly the right
//! recipients, timers within the sender group's maxima, forwarding, files,
//! location and receipts as the policy allows, and the compliance device present
//! while data retention is on. Pure functions over the roster's view.

use super::conversation::Conversation;
use super::frame::{Kind, MAX_ATTACHMENTS, MAX_CIPHERTEXT, MAX_CLIENT_MSG_ID, OutgoingEnvelope};
use super::roster::Account;
use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::collections::HashSet;
use std::sync::Arc;

/// Bytes of a sealed content key: HPKE `enc` (32) + AES-256-GCM of 32 bytes (48).
pub const SEALED_KEY_BYTES: usize = 80;
pub const SIGNATURE_BYTES: usize = 64;

fn invalid(field: &str, reason: &str) -> Error {
    Error::invalid(
        "invalid_envelope",
        format!("the envelope's {field} {reason}"),
    )
    .with_details(serde_json::json!({ "field": field }))
}

/// Whether a client message id is acceptable: 1–64 of `A–Z a–z 0–9 - _ .`.
pub fn valid_client_msg_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_MSG_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Decoded length of standard padded base64, or None if it is not valid base64.
fn b64_len(s: &str, max: usize) -> Option<usize> {
    // Reject before decoding anything huge.
    if s.len() / 4 * 3 > max + 3 {
        return Some(max + 1);
    }
    STANDARD.decode(s).ok().map(|b| b.len())
}

/// Field-level checks that need no directory state.
pub fn check_shape(env: &OutgoingEnvelope) -> Result<()> {
    if !valid_client_msg_id(&env.client_msg_id) {
        return Err(invalid(
            "client_msg_id",
            "must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' or '.'",
        ));
    }
    match b64_len(&env.ciphertext, MAX_CIPHERTEXT) {
        None => {
            return Err(invalid(
                "ciphertext",
                "is not valid base64 (standard, padded)",
            ));
        }
        Some(0) => return Err(invalid("ciphertext", "is empty")),
        Some(n) if n > MAX_CIPHERTEXT => {
            return Err(Error::new(
                crate::error::Kind::TooLarge,
                "ciphertext_too_large",
                format!("an envelope carries at most {MAX_CIPHERTEXT} bytes of ciphertext; send larger content as an attachment"),
            )
            .with_details(serde_json::json!({ "max_bytes": MAX_CIPHERTEXT })));
        }
        Some(_) => {}
    }
    if b64_len(&env.signature, SIGNATURE_BYTES) != Some(SIGNATURE_BYTES) {
        return Err(invalid(
            "signature",
            "must be a 64-byte Ed25519 signature in base64",
        ));
    }
    if env.attachments.len() > MAX_ATTACHMENTS {
        return Err(invalid("attachments", "may name at most 32 blobs"));
    }
    let mut seen = HashSet::with_capacity(env.keys.len());
    for k in &env.keys {
        if !seen.insert(k.device_id.as_str()) {
            return Err(invalid("keys", "name a device twice")
                .with_details(serde_json::json!({ "field": "keys", "device_id": k.device_id })));
        }
        if b64_len(&k.sealed, SEALED_KEY_BYTES) != Some(SEALED_KEY_BYTES) {
            return Err(invalid(
                "keys",
                "hold a sealed key that is not 80 bytes of base64 (HPKE enc ‖ sealed content key)",
            )
            .with_details(serde_json::json!({ "field": "keys", "device_id": k.device_id })));
        }
    }
    Ok(())
}

/// Refuse with `code`, naming the devices (sorted), if `a` holds any that `b` lacks.
fn devices_only_in(
    a: &HashSet<&str>,
    b: &HashSet<&str>,
    code: &'static str,
    message: &str,
) -> Result<()> {
    let mut extra: Vec<&str> = a.difference(b).copied().collect();
    if extra.is_empty() {
        return Ok(());
    }
    extra.sort_unstable();
    Err(Error::invalid(code, message).with_details(serde_json::json!({ "device_ids": extra })))
}

/// The verdict on an envelope: who receives it and for how long.
pub struct Verdict {
    pub ttl_secs: u64,
    /// User ids of the conversation's members (they may download its attachments).
    pub members: Vec<String>,
}

/// Check an envelope against the conversation, the members' devices and the sender's
/// policy. `members` are the accounts of the conversation's members (deleted users
/// are absent).
pub fn check(
    env: &OutgoingEnvelope,
    sender: &Account,
    sender_device: &str,
    conv: &Conversation,
    members: &[Arc<Account>],
) -> Result<Verdict> {
    let p = &sender.policy;
    let ttl = env.ttl_secs.unwrap_or(p.max_ttl_secs);
    if ttl == 0 {
        return Err(invalid("ttl_secs", "must be at least 1 second"));
    }
    if ttl > p.max_ttl_secs {
        return Err(Error::invalid(
            "ttl_too_long",
            format!(
                "your security group allows expiration timers of at most {} seconds",
                p.max_ttl_secs
            ),
        )
        .with_details(serde_json::json!({ "max_ttl_secs": p.max_ttl_secs })));
    }
    if env.bor_secs > p.max_bor_secs {
        return Err(Error::invalid(
            "bor_too_long",
            if p.max_bor_secs == 0 {
                "your security group does not allow burn-on-read timers".to_string()
            } else {
                format!(
                    "your security group allows burn-on-read timers of at most {} seconds",
                    p.max_bor_secs
                )
            },
        )
        .with_details(serde_json::json!({ "max_bor_secs": p.max_bor_secs })));
    }
    if env.forwarded && !p.forwarding {
        return Err(Error::forbidden(
            "forwarding_disabled",
            "your security group does not allow forwarding messages",
        ));
    }
    if (env.kind == Kind::File || !env.attachments.is_empty()) && !p.files {
        return Err(Error::forbidden(
            "files_disabled",
            "your security group does not allow sending files",
        ));
    }
    if env.kind == Kind::Location && !p.location {
        return Err(Error::forbidden(
            "location_disabled",
            "your security group does not allow sharing locations",
        ));
    }
    if env.kind == Kind::Receipt && !p.read_receipts {
        return Err(Error::forbidden(
            "receipts_disabled",
            "read receipts are turned off in this network",
        ));
    }

    let mut expected: HashSet<&str> = HashSet::new();
    for m in members {
        for d in &m.receiving {
            if d.id != sender_device {
                expected.insert(d.id.as_str());
            }
        }
    }
    if sender.retention {
        let Some(c) = &sender.compliance else {
            return Err(Error::unavailable(
                "retention_unavailable",
                "data retention is on in this network but its compliance member is not set up yet, so no message can be kept; ask your administrator",
            ));
        };
        if !env.keys.iter().any(|k| k.device_id == c.id) {
            return Err(Error::invalid(
                "compliance_recipient_missing",
                "data retention is on: every message must also be sealed to the network's compliance device",
            )
            .with_details(serde_json::json!({ "device_ids": [c.id] })));
        }
        expected.insert(c.id.as_str());
    }
    let given: HashSet<&str> = env.keys.iter().map(|k| k.device_id.as_str()).collect();
    devices_only_in(
        &given,
        &expected,
        "unknown_recipients",
        "some sealed keys are for devices that are not active devices of this conversation's members; refresh the device list",
    )?;
    devices_only_in(
        &expected,
        &given,
        "missing_recipients",
        "some devices of this conversation's members have no sealed key; refresh the device list and seal the key to every device",
    )?;
    Ok(Verdict {
        ttl_secs: ttl,
        members: conv.member_ids().map(str::to_string).collect(),
    })
}
