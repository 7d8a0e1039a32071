//! Password reset by e-mailed link (PRODUCT.md F4): a link valid 24 hours, asked for by an
//! administrator (SendPasswordReset) or by the person on `/reset`. Choosing the new
//! password (which must meet the group's rules) ends every session of the user — all
//! devices sign in again — clears a lock from failed sign-ins, and uses the link up.
//! While the network has single sign-on on there are no passwords to reset
//! (`sso_required`): the identity provider owns them.

use super::password;
use super::registration::Refusal;
use crate::directory::group;
use crate::directory::group_settings::GroupSettings;
use crate::directory::link::{self, Link, LinkProblem, Purpose};
use crate::directory::network::{self, Network};
use crate::directory::user::{self, User, UserStatus};
use crate::error::{Error, Result};
use crate::mail::{outbox, templates};
use crate::store::Store;
use chrono::{DateTime, Utc};
use redb::WriteTransaction;

/// A reset link as issued: the link itself while mail is off, else the queued mail.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Issued {
    /// The one-time link, given only while mail is off (for the administrator to pass on).
    pub url: Option<String>,
    /// The queued reset mail, while mail is on.
    pub mail_id: Option<String>,
    /// The link works until then (24 hours).
    pub expires_at: DateTime<Utc>,
}

/// Where links point and how they travel.
pub struct Delivery<'a> {
    pub base_url: &'a str,
    /// Mail is on: queue the reset mail.
    pub mail: bool,
    /// The host name in `Message-ID`s.
    pub domain: &'a str,
}

/// Issues `u`'s reset link (revoking an earlier one) and, with mail on, queues the mail —
/// inside the caller's transaction. `requester` is an admin's username, or "You".
pub fn issue(
    tx: &WriteTransaction,
    how: &Delivery<'_>,
    net: &Network,
    u: &User,
    requester: &str,
) -> Result<Issued> {
    let (token, l) = link::issue(
        tx,
        Purpose::PasswordReset,
        &u.id,
        &net.id,
        requester,
        Utc::now(),
    )?;
    let url = format!("{}/reset/{token}", how.base_url.trim_end_matches('/'));
    if !how.mail {
        return Ok(Issued {
            url: Some(url),
            mail_id: None,
            expires_at: l.expires_at,
        });
    }
    let name = format!("{} {}", u.first_name, u.last_name);
    let expires = l.expires_at.format("%Y-%m-%d %H:%M UTC").to_string();
    let r = templates::password_reset(&templates::LinkMail {
        network: &net.name,
        by: requester,
        name: name.trim(),
        email: &u.username,
        link: &url,
        server: how.base_url,
        expires: &expires,
        classification: &net.settings.classification,
    })?;
    let m = outbox::enqueue(
        tx,
        outbox::NewMail {
            kind: "password_reset",
            network_id: Some(net.id.clone()),
            user_id: Some(u.id.clone()),
            to: u.username.clone(),
            subject: r.subject,
            text: r.text,
            html: r.html,
        },
        how.domain,
    )?;
    Ok(Issued {
        url: None,
        mail_id: Some(m.id),
        expires_at: l.expires_at,
    })
}

/// Whether `u` may reset a password at all: not suspended, and with a password already
/// (a pending user without one registers through an invitation instead).
pub fn may_reset(u: &User) -> Result<()> {
    match u.status() {
        UserStatus::Pending if u.password_hash.is_some() => Ok(()),
        UserStatus::Pending => Err(Error::conflict(
            "not_registered",
            "this user has not registered yet; invite them again instead (ReinviteUser)",
        )),
        UserStatus::Suspended => Err(Error::conflict(
            "user_suspended",
            "this user is suspended; unsuspend them first",
        )),
        UserStatus::Active | UserStatus::Locked => Ok(()),
    }
}

/// What the reset page shows.
pub struct Open {
    pub link: Link,
    pub user: User,
    pub network: Network,
    pub settings: GroupSettings,
}

/// The reset behind `token`, or why the link does not open.
pub fn open(store: &Store, token: &str) -> Result<std::result::Result<Open, LinkProblem>> {
    store.read(|tx| {
        let l = match link::open(tx, Purpose::PasswordReset, token, Utc::now())? {
            Ok(l) => l,
            Err(p) => return Ok(Err(p)),
        };
        let Some(u) = user::by_id(tx, &l.user_id)? else {
            return Ok(Err(LinkProblem::Unknown(Purpose::PasswordReset)));
        };
        if may_reset(&u).is_err() {
            return Ok(Err(LinkProblem::Unknown(Purpose::PasswordReset)));
        }
        let n = network::get(tx, &u.network_id)?;
        super::sso::refuse_passwords(tx, &n)?;
        let g = group::get(tx, &u.network_id, &u.group_id)?;
        Ok(Ok(Open {
            link: l,
            user: u,
            network: n,
            settings: g.settings,
        }))
    })
}

/// Sets the new password. `Ok(Err(..))` is a refusal the page shows.
pub async fn complete(
    store: &Store,
    token: &str,
    new_password: String,
    confirm: String,
) -> Result<std::result::Result<User, Refusal>> {
    let o = open(store, token)?.map_err(LinkProblem::error)?;
    if let Some(problem) = o.settings.password_problem(&new_password) {
        return Ok(Err(Refusal {
            field: "password",
            message: format!("the password {problem}"),
        }));
    }
    if new_password != confirm {
        return Ok(Err(Refusal {
            field: "confirm",
            message: "the two passwords are not the same".into(),
        }));
    }
    let hash = tokio::task::spawn_blocking(move || password::hash(&new_password))
        .await
        .map_err(|e| Error::internal(format!("password hashing was interrupted: {e}")))??;
    let token = token.to_string();
    let u = store
        .write(move |tx| {
            let l = link::open(tx, Purpose::PasswordReset, &token, Utc::now())?
                .map_err(LinkProblem::error)?;
            let old = user::by_id(tx, &l.user_id)?
                .ok_or_else(|| LinkProblem::Unknown(Purpose::PasswordReset).error())?;
            may_reset(&old)?;
            let mut u = old.clone();
            let token_hash = u.token_hash.clone();
            u.replace_credentials(Some(hash.clone()), token_hash);
            u.locked = false;
            u.locked_until = None;
            u.failed_logins = 0;
            u.updated_at = Utc::now();
            user::put(tx, Some(&old), &u)?;
            link::revoke(tx, Purpose::PasswordReset, &u.id)?;
            Ok(u)
        })
        .await?;
    Ok(Ok(u))
}
