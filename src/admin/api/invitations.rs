//! Admin API: invitations (PRODUCT.md F4). Inviting a user — CreateUser without a
//! password, and ReinviteUser — issues a one-time registration link in the same
//! transaction as the change, and queues the invitation mail there too when mail is on.
//! When mail is off (`mail.transport = "none"`) the answer carries the link instead, for
//! the administrator to pass on.

use super::{State, UserPath};
use crate::admin::AdminState;
use crate::admin::guard::Audit;
use crate::admin::response::ok;
use crate::auth::Caller;
use crate::directory::link::{self, Purpose};
use crate::directory::network;
use crate::directory::network::Network;
use crate::directory::user::{self, User, UserKind, UserStatus, UserView};
use crate::error::{Error, Result};
use crate::mail::{outbox, templates};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::Serialize;
use utoipa::ToSchema;

/// An invitation as the admin API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvitationView {
    /// The one-time registration link, given only when mail is off
    /// (`mail.transport = "none"`) so the administrator can pass it on; otherwise it is
    /// only in the mail.
    pub url: Option<String>,
    /// The link works until then (7 days).
    pub expires_at: DateTime<Utc>,
    /// The queued invitation mail (see the mail outbox), when mail is on.
    pub mail_id: Option<String>,
}

/// A user just created or re-invited, with their invitation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitedUser {
    #[serde(flatten)]
    pub user: UserView,
    /// Present when the user has no password yet and must register through the link
    /// (never while the network has single sign-on on: the person signs in through the
    /// identity provider).
    pub invitation: Option<InvitationView>,
}

/// What inviting needs to know about the appliance.
#[derive(Clone)]
pub struct Inviting {
    /// The appliance's base URL.
    pub base_url: String,
    /// Mail is on: queue the invitation mail.
    pub mail: bool,
    /// The host name in `Message-ID`s.
    pub domain: String,
    /// Who invites (an admin's username).
    pub inviter: String,
}

impl Inviting {
    pub fn new(state: &AdminState, caller: &Caller) -> Inviting {
        Inviting {
            base_url: state.public_url.get().cloned().unwrap_or_default(),
            mail: state.mail.is_some(),
            domain: state.config.hostnames[0].clone(),
            inviter: caller.admin.username.clone(),
        }
    }
}

/// Issues `u`'s registration link and, with mail on, queues the invitation mail — inside
/// the caller's transaction.
pub fn invite(
    tx: &WriteTransaction,
    how: &Inviting,
    net: &Network,
    u: &User,
) -> Result<InvitationView> {
    let (token, inv) = link::issue(
        tx,
        Purpose::Invitation,
        &u.id,
        &net.id,
        &how.inviter,
        Utc::now(),
    )?;
    let url = format!("{}/invite/{token}", how.base_url.trim_end_matches('/'));
    if !how.mail {
        return Ok(InvitationView {
            url: Some(url),
            expires_at: inv.expires_at,
            mail_id: None,
        });
    }
    let name = format!("{} {}", u.first_name, u.last_name);
    let expires = inv.expires_at.format("%Y-%m-%d %H:%M UTC").to_string();
    let rendered = templates::invitation(&templates::LinkMail {
        network: &net.name,
        by: &how.inviter,
        name: name.trim(),
        email: &u.username,
        link: &url,
        server: &how.base_url,
        expires: &expires,
        classification: &net.settings.classification,
    })?;
    let mail = outbox::enqueue(
        tx,
        outbox::NewMail {
            kind: "invitation",
            network_id: Some(net.id.clone()),
            user_id: Some(u.id.clone()),
            to: u.username.clone(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        },
        &how.domain,
    )?;
    Ok(InvitationView {
        url: None,
        expires_at: inv.expires_at,
        mail_id: Some(mail.id),
    })
}

/// Wakes the mail worker after a commit that queued mail.
pub fn mail_queued(state: &AdminState) {
    if let Some(o) = &state.mail {
        o.wake();
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResetSent {
    pub user: UserView,
    pub reset: crate::auth::password_reset::Issued,
}

#[utoipa::path(post, path = "/networks/{network_id}/users/{user_id}/password-reset",
    operation_id = "SendPasswordReset", tag = "users", params(UserPath),
    responses((status = 200, body = ResetSent, description = "A one-time link (24 hours) to choose \
        a new password, mailed when mail is on and returned when it is off; choosing it ends every \
        session of the user. 409 `not_registered` for a pending user, `user_suspended` for a \
        suspended one; 403 `sso_required` while the network has single sign-on on.")))]
pub async fn password_reset(
    state: State,
    audit: Audit,
    caller: Caller,
    path: web::Path<UserPath>,
) -> Result<HttpResponse> {
    let sent = send_password_reset(&state, &audit, &caller, path.into_inner()).await?;
    Ok(ok(&sent))
}

/// Send a user a password reset link (SendPasswordReset, for the API and the console).
pub async fn send_password_reset(
    state: &AdminState,
    audit: &Audit,
    caller: &Caller,
    p: UserPath,
) -> Result<ResetSent> {
    use crate::auth::password_reset;
    let how = Inviting::new(state, caller);
    let (u, issued) = audit
        .write(&state.store, 200, move |tx| {
            let u = user::get(tx, &p.network_id, UserKind::User, &p.user_id)?;
            let net = network::get(tx, &p.network_id)?;
            crate::auth::sso::refuse_passwords(tx, &net)?;
            password_reset::may_reset(&u)?;
            let issued = password_reset::issue(
                tx,
                &password_reset::Delivery {
                    base_url: &how.base_url,
                    mail: how.mail,
                    domain: &how.domain,
                },
                &net,
                &u,
                &how.inviter,
            )?;
            Ok((u, issued))
        })
        .await?;
    mail_queued(state);
    Ok(ResetSent {
        user: u.view(),
        reset: issued,
    })
}

#[utoipa::path(post, path = "/networks/{network_id}/users/{user_id}/invitation", operation_id = "ReinviteUser",
    tag = "users", params(UserPath), responses((status = 200, body = InvitedUser,
        description = "A new registration link (7 days); the previous one stops working. \\
            409 `already_registered` for a user who has registered; 403 `sso_required` while \
            the network has single sign-on on.")))]
pub async fn reinvite(
    state: State,
    audit: Audit,
    caller: Caller,
    path: web::Path<UserPath>,
) -> Result<HttpResponse> {
    let invited = reinvite_user(&state, &audit, &caller, path.into_inner()).await?;
    Ok(ok(&invited))
}

/// Send a pending user a new invitation (ReinviteUser, for the API and the console).
pub async fn reinvite_user(
    state: &AdminState,
    audit: &Audit,
    caller: &Caller,
    p: UserPath,
) -> Result<InvitedUser> {
    let how = Inviting::new(state, caller);
    let (u, inv) = audit
        .write(&state.store, 200, move |tx| {
            let u = user::get(tx, &p.network_id, UserKind::User, &p.user_id)?;
            if u.status() != UserStatus::Pending {
                return Err(Error::conflict(
                    "already_registered",
                    "this user has registered already; reset their password instead",
                ));
            }
            let net = network::get(tx, &p.network_id)?;
            crate::auth::sso::refuse_passwords(tx, &net)?;
            let inv = invite(tx, &how, &net, &u)?;
            Ok((u, inv))
        })
        .await?;
    mail_queued(state);
    Ok(InvitedUser {
        user: u.view(),
        invitation: Some(inv),
    })
}

#[utoipa::path(delete, path = "/networks/{network_id}/users/{user_id}/invitation", operation_id = "RevokeInvitation",
    tag = "users", params(UserPath), responses((status = 200, body = UserView,
        description = "The user's registration link stops working; the user stays pending (invite \
            them again with ReinviteUser, or delete them). 409 `already_registered` for a user \
            who has registered.")))]
pub async fn revoke(state: State, audit: Audit, path: web::Path<UserPath>) -> Result<HttpResponse> {
    let u = revoke_invitation(&state, &audit, path.into_inner()).await?;
    Ok(ok(&u))
}

/// End a pending user's registration link (RevokeInvitation, for the API and the
/// console).
pub async fn revoke_invitation(state: &AdminState, audit: &Audit, p: UserPath) -> Result<UserView> {
    audit
        .write(&state.store, 200, move |tx| {
            let u = user::get(tx, &p.network_id, UserKind::User, &p.user_id)?;
            if u.status() != UserStatus::Pending {
                return Err(Error::conflict(
                    "already_registered",
                    "this user has registered already; there is no invitation to revoke",
                ));
            }
            link::revoke(tx, Purpose::Invitation, &u.id)?;
            Ok(u.view())
        })
        .await
}
