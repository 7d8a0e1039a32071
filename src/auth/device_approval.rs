//! Account-takeover protection (PRODUCT.md F2; the reference's "Enable account takeover
//! protection"): where a person's security group turns it on, a device added to an
//! account that already has a working device starts `pending_approval`. It becomes
//! active when one of the account's active devices approves it, or when the person
//! enters the six-digit code mailed to them (valid [`CODE_MINUTES`]; [`MAX_ATTEMPTS`]
//! wrong codes remove the device). Until then its token reaches only the approval calls:
//! it opens no stream, receives nothing and is nobody's recipient.
//!
//! An account's first device needs no approval (there is nothing to approve it with,
//! and the person proved who they are by registering); bots are never asked.

use super::password_reset::Delivery;
use crate::directory::device::{self, Approval, Device, DeviceStatus};
use crate::directory::group_settings::GroupSettings;
use crate::directory::network::Network;
use crate::directory::user::{User, UserKind};
use crate::error::{Error, Result};
use crate::mail::{outbox, templates};
use chrono::{DateTime, Duration, Utc};
use redb::WriteTransaction;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long a mailed code works.
pub const CODE_MINUTES: i64 = 15;
/// Wrong codes after which the pending device is removed.
pub const MAX_ATTEMPTS: u32 = 5;
/// A new code is mailed at most this often.
pub const RESEND_SECS: i64 = 60;

/// Whether a device `u` registers now must be approved: the group asks for it, the
/// account is a person's, and it already has a working device.
pub fn required(u: &User, settings: &GroupSettings, devices: &[Device]) -> bool {
    settings.security.account_takeover_protection
        && u.kind == UserKind::User
        && devices.iter().any(|d| device::is_live(d, u))
}

/// What a pending device is told about its approval.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Pending {
    /// `device` (an active device of the account approves it) and, while mail is on,
    /// `email` (the person enters the mailed code).
    pub methods: Vec<&'static str>,
    /// When the mailed code stops working (None: no code was mailed).
    pub code_expires_at: Option<DateTime<Utc>>,
    /// Wrong codes still allowed before the device is removed.
    pub attempts_left: u32,
}

/// The approval state of pending device `d`.
pub fn pending(d: &Device, mail: bool) -> Pending {
    let a = d.approval.clone().unwrap_or_default();
    let mut methods = vec!["device"];
    if mail {
        methods.push("email");
    }
    Pending {
        methods,
        code_expires_at: a.code_expires_at,
        attempts_left: MAX_ATTEMPTS.saturating_sub(a.failed_attempts),
    }
}

fn code_hash(device_id: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{device_id}:{code}").as_bytes()))
}

/// Mail a fresh code for pending device `d` (replacing an earlier one) inside the
/// caller's transaction; returns the updated device and the queued mail's id. Refused
/// while mail is off (`mail_unavailable`) or within [`RESEND_SECS`] of the last code.
pub fn send_code(
    tx: &WriteTransaction,
    how: &Delivery<'_>,
    net: &Network,
    u: &User,
    mut d: Device,
    now: DateTime<Utc>,
) -> Result<(Device, String)> {
    if d.status != DeviceStatus::PendingApproval {
        return Err(not_pending());
    }
    if !how.mail {
        return Err(Error::conflict(
            "mail_unavailable",
            "this appliance sends no mail, so no code can be mailed; approve the device from \
             one you already use",
        ));
    }
    let mut a = d.approval.clone().unwrap_or_default();
    if let Some(sent) = a.code_sent_at {
        let wait = (sent + Duration::seconds(RESEND_SECS) - now).num_seconds();
        if wait > 0 {
            return Err(Error::new(
                crate::error::Kind::RateLimited,
                "code_recently_sent",
                format!("a code was mailed less than a minute ago; wait {wait} seconds"),
            )
            .with_retry_after(wait as u64));
        }
    }
    let code = format!("{:06}", rand::random_range(0..1_000_000u32));
    let expires = now + Duration::minutes(CODE_MINUTES);
    a.code_hash = Some(code_hash(&d.id, &code));
    a.code_expires_at = Some(expires);
    a.code_sent_at = Some(now);
    d.approval = Some(a);
    device::put(tx, &d)?;
    let name = format!("{} {}", u.first_name, u.last_name);
    let r = templates::device_approval(&templates::CodeMail {
        network: &net.name,
        name: name.trim(),
        email: &u.username,
        device: if d.name.is_empty() {
            "an unnamed device"
        } else {
            &d.name
        },
        platform: if d.platform.is_empty() {
            "unknown platform"
        } else {
            &d.platform
        },
        when: &d.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        code: &code,
        expires: &expires.format("%Y-%m-%d %H:%M UTC").to_string(),
        server: how.base_url,
        classification: &net.settings.classification,
    })?;
    let m = outbox::enqueue(
        tx,
        outbox::NewMail {
            kind: "device_approval",
            network_id: Some(net.id.clone()),
            user_id: Some(u.id.clone()),
            to: u.username.clone(),
            subject: r.subject,
            text: r.text,
            html: r.html,
        },
        how.domain,
    )?;
    Ok((d, m.id))
}

/// Why an entered code did not approve the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeProblem {
    /// Wrong; this many tries are left.
    Wrong(u32),
    /// The last allowed try was wrong: the device was removed.
    Exhausted,
    /// No code was mailed, or it expired.
    Expired,
}

impl CodeProblem {
    pub fn error(self) -> Error {
        match self {
            CodeProblem::Wrong(left) => Error::invalid(
                "approval_code_invalid",
                format!(
                    "that is not the code we mailed; {left} more {} before this device is removed",
                    if left == 1 { "try" } else { "tries" }
                ),
            )
            .with_details(serde_json::json!({ "attempts_left": left })),
            CodeProblem::Exhausted => Error::forbidden(
                "approval_attempts_exhausted",
                format!(
                    "{MAX_ATTEMPTS} wrong codes: this device was removed; sign in again to start over"
                ),
            ),
            CodeProblem::Expired => Error::invalid(
                "approval_code_expired",
                format!(
                    "no code is waiting for this device (codes work for {CODE_MINUTES} minutes); \
                     ask for a new one"
                ),
            ),
        }
    }
}

/// Check the code the person entered on pending device `d`, inside the caller's
/// transaction (a wrong try is recorded, so commit even when a problem is returned).
pub fn enter_code(
    tx: &WriteTransaction,
    mut d: Device,
    code: &str,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Device, CodeProblem>> {
    if d.status != DeviceStatus::PendingApproval {
        return Err(not_pending());
    }
    let mut a: Approval = d.approval.clone().unwrap_or_default();
    let live = match (&a.code_hash, a.code_expires_at) {
        (Some(h), Some(exp)) if exp > now => Some(h.clone()),
        _ => None,
    };
    let Some(expected) = live else {
        return Ok(Err(CodeProblem::Expired));
    };
    let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let given = code_hash(&d.id, &typed);
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        d.status = DeviceStatus::Active;
        d.approval = None;
        device::put(tx, &d)?;
        return Ok(Ok(d));
    }
    a.failed_attempts += 1;
    if a.failed_attempts >= MAX_ATTEMPTS {
        d.approval = None;
        device::revoke(tx, d)?;
        return Ok(Err(CodeProblem::Exhausted));
    }
    let left = MAX_ATTEMPTS - a.failed_attempts;
    d.approval = Some(a);
    device::put(tx, &d)?;
    Ok(Err(CodeProblem::Wrong(left)))
}

/// Approve pending device `target_id` of `u` from `approver`, which must be one of
/// `u`'s working devices.
pub fn approve_from(
    tx: &WriteTransaction,
    u: &User,
    approver: &Device,
    target_id: &str,
) -> Result<Device> {
    if approver.user_id != u.id || !device::is_live(approver, u) {
        return Err(Error::forbidden(
            "device_approval_required",
            "only an approved device of this account can approve another",
        ));
    }
    let mut d = device::get(tx, &u.id, target_id)?;
    if d.status != DeviceStatus::PendingApproval || d.auth_epoch != u.auth_epoch {
        return Err(not_pending());
    }
    d.status = DeviceStatus::Active;
    d.approval = None;
    device::put(tx, &d)?;
    Ok(d)
}

fn not_pending() -> Error {
    Error::conflict(
        "device_not_pending",
        "this device is not waiting for approval (it was approved, removed, or signed out)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_bound_to_their_device() {
        assert_ne!(code_hash("d1", "123456"), code_hash("d2", "123456"));
        assert_eq!(code_hash("d1", "123456"), code_hash("d1", "123456"));
    }

    #[test]
    fn problems_say_what_to_do() {
        let e = CodeProblem::Wrong(1).error();
        assert_eq!(e.code, "approval_code_invalid");
        assert!(e.message.contains("1 more try"));
        assert_eq!(
            CodeProblem::Exhausted.error().code,
            "approval_attempts_exhausted"
        );
        assert_eq!(CodeProblem::Expired.error().code, "approval_code_expired");
    }
}
