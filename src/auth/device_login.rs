//! Signing a person in on a new device (PROTOCOL.md §2.1): check the password,
//! count failures against the security group's lockout threshold, and register the
//! device with its token. The first successful sign-in of an invited user with a
//! password makes the account `active`. Where the group protects accounts from
//! takeover, a device added to an account that already has one waits for approval
//! (`auth::device_approval`); the approval code is mailed in the same transaction.
//!
//! Answers never tell which usernames exist: an unknown user, a user without a
//! password and a wrong password all get `invalid_credentials` after the same
//! argon2id work. A lock or suspension is revealed only with the right password. A
//! person of a network with single sign-on on gets `sso_required` (naming the company
//! id, which people are given anyway) whatever the password.

use super::device_approval::{self, Pending};
use super::password_reset::Delivery;
use crate::directory::device::{self, Device, DeviceStatus};
use crate::directory::user::{self, User, UserKind, UserStatus};
use crate::directory::{group, network};
use crate::error::{Error, Result};
use crate::store::Store;
use chrono::Utc;

/// Automatic unlock after a lockout (PRODUCT.md F2: 24 hours).
pub const LOCK_HOURS: i64 = 24;

/// What a device sign-in asks for.
#[derive(Debug, Clone)]
pub struct Login {
    pub network_id: Option<String>,
    pub username: String,
    pub password: String,
    pub name: String,
    pub platform: String,
    pub client_version: String,
}

fn bad_credentials() -> Error {
    Error::unauthorized("invalid_credentials", "the username or password is wrong")
}

/// Find the account a sign-in names.
fn find(store: &Store, l: &Login) -> Result<Option<User>> {
    let name = l.username.trim().to_lowercase();
    let kind = if name.contains('@') {
        UserKind::User
    } else {
        UserKind::Bot
    };
    store.read(|tx| match &l.network_id {
        Some(n) => user::by_name(tx, n, kind, &name),
        None => {
            let mut found = None;
            for n in network::ids(tx)? {
                if let Some(u) = user::by_name(tx, &n, kind, &name)? {
                    if found.is_some() {
                        return Err(Error::invalid(
                            "network_required",
                            "this username exists in several networks; name the network (network_id)",
                        ));
                    }
                    found = Some(u);
                }
            }
            Ok(found)
        }
    })
}

/// A device signed in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub device: Device,
    /// Shown once; only its hash is stored.
    pub token: String,
    /// Set when the device waits for approval (account-takeover protection).
    pub approval: Option<Pending>,
    /// The approval mail queued for it, if any (wake the outbox after the commit).
    pub mail_id: Option<String>,
}

/// Check the password and register the device; returns the account, the device and
/// its token. `on_lock` is told the id of an account this attempt locked, so the
/// account's open streams can be closed at once. `how` says whether an approval code
/// can be mailed, should the device need approval.
pub async fn login(
    store: &Store,
    l: Login,
    how: &Delivery<'_>,
    on_lock: &(dyn Fn(&str) + Sync),
) -> Result<SignedIn> {
    let found = find(store, &l)?;
    let phc = found.as_ref().and_then(|u| u.password_hash.clone());
    let pw = l.password.clone();
    let good = tokio::task::spawn_blocking(move || match &phc {
        Some(phc) => super::password::verify(&pw, phc),
        None => {
            super::password::verify_dummy(&pw);
            false
        }
    })
    .await
    .map_err(|e| Error::internal(format!("checking a password: {e}")))?;
    // A network with single sign-on takes no passwords from people (bots still sign in).
    if l.username.contains('@')
        && let Some(n) = found
            .as_ref()
            .map(|u| &u.network_id)
            .or(l.network_id.as_ref())
    {
        store.read(|tx| super::sso::refuse_passwords_in(tx, n))?;
    }
    let Some(u) = found else {
        return Err(bad_credentials());
    };
    if u.locked {
        if !good {
            return Err(bad_credentials());
        }
        let wait = u
            .locked_until
            .map(|t| (t - Utc::now()).num_seconds().max(1) as u64)
            .unwrap_or(3600);
        return Err(Error::forbidden(
            "account_locked",
            "this account is locked after too many failed sign-ins; it unlocks after 24 hours or when an administrator unlocks it",
        )
        .with_retry_after(wait));
    }
    if !good {
        let uid = u.id.clone();
        let (net, gid) = (u.network_id.clone(), u.group_id.clone());
        let after = store
            .write(move |tx| {
                let g = group::get(tx, &net, &gid)?;
                let old = user::by_id(tx, &uid)?.ok_or_else(bad_credentials)?;
                user::record_failed_login(
                    tx,
                    &old,
                    g.settings.security.lockout_threshold,
                    chrono::Duration::hours(LOCK_HOURS),
                )
            })
            .await?;
        if after.locked {
            on_lock(&after.id);
        }
        return Err(bad_credentials());
    }
    if u.status() == UserStatus::Suspended {
        return Err(Error::forbidden(
            "account_suspended",
            "this account is suspended; ask your administrator",
        ));
    }
    let uid = u.id.clone();
    let l2 = l.clone();
    let (base_url, domain, mail) = (how.base_url.to_string(), how.domain.to_string(), how.mail);
    store
        .write(move |tx| {
            let old = user::by_id(tx, &uid)?.ok_or_else(bad_credentials)?;
            let how = Delivery {
                base_url: &base_url,
                mail,
                domain: &domain,
            };
            register_device(tx, &old, &l2.name, &l2.platform, &l2.client_version, &how)
        })
        .await
}

/// Record a successful sign-in of `old` (read in this transaction) and register its new
/// device with a token — waiting for approval where the security group protects the
/// account, the code mailed when `how` has mail on. Shared by password and single
/// sign-on.
pub fn register_device(
    tx: &redb::WriteTransaction,
    old: &User,
    name: &str,
    platform: &str,
    client_version: &str,
    how: &Delivery<'_>,
) -> Result<SignedIn> {
    let mut u = old.clone();
    let now = Utc::now();
    if !u.registered {
        u.registered = true;
        u.registered_at = Some(now);
    }
    u.failed_logins = 0;
    u.last_login_at = Some(now);
    u.updated_at = now;
    user::put(tx, Some(old), &u)?;
    let g = group::get(tx, &u.network_id, &u.group_id)?;
    let pending = device_approval::required(&u, &g.settings, &device::list(tx, &u.id)?);
    let status = if pending {
        DeviceStatus::PendingApproval
    } else {
        DeviceStatus::Active
    };
    let (mut d, token) =
        device::register_with_token(tx, &u, name, platform, client_version, status)?;
    let mut mail_id = None;
    if pending && how.mail {
        let net = network::get(tx, &u.network_id)?;
        let (sent, id) = device_approval::send_code(tx, how, &net, &u, d, now)?;
        d = sent;
        mail_id = Some(id);
    }
    let approval = pending.then(|| device_approval::pending(&d, how.mail));
    Ok(SignedIn {
        user: u,
        device: d,
        token,
        approval,
        mail_id,
    })
}
