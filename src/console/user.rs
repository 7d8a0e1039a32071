//! Console: one user's details and devices (GetUser, ListDevicesForUser), editing their
//! profile and security group (UpdateUser), suspending, unsuspending and unlocking
//! them (SuspendUser, UnsuspendUser, UnlockUser), sending a new invitation
//! (ReinviteUser) or a password reset link (SendPasswordReset), and the destructive ones — resetting every device
//! (ResetDevicesForUser) and deleting the user (DeleteUser) — which need the typed word
//! `confirm` and the admin's password.

use super::form::Form;
use super::outcome::{self, some};
use super::page::{PageContext, refusal, render, see_other, with_error};
use super::{Console, PREFIX, reauth};
use crate::admin::AdminState;
use crate::admin::api::UserPath;
use crate::admin::api::invitations;
use crate::admin::api::users::{self, UpdateUser, UserChange};
use crate::admin::guard::Audit;
use crate::auth::{Action, Caller, permission};
use crate::directory::link::{self, Purpose};
use crate::directory::user::{self, UserKind, UserStatus};
use crate::directory::{device, group, network};
use crate::error::{Error, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

fn page(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    p: &UserPath,
    status: StatusCode,
    error: Option<&Error>,
) -> HttpResponse {
    let found = state.store.read(|tx| {
        let n = network::get(tx, &p.network_id)?;
        let u = user::get(tx, &p.network_id, UserKind::User, &p.user_id)?;
        let groups = group::list(tx, &p.network_id)?;
        let devices = device::list(tx, &u.id)?;
        let inv = link::current(tx, Purpose::Invitation, &u.id)?;
        Ok((n, u, groups, devices, inv))
    });
    let (n, u, groups, devices, inv) = match found {
        Ok(x) => x,
        Err(e) => return refusal(req, &e),
    };
    let may = |a: Action| permission::allows(caller.admin.role, a);
    let v = u.view();
    let group_name = groups
        .iter()
        .find(|g| g.id == v.security_group_id)
        .map(|g| g.name.clone())
        .unwrap_or_else(|| "?".into());
    let name = format!("{} {}", v.first_name, v.last_name)
        .trim()
        .to_string();
    let devices: Vec<serde_json::Value> = devices
        .iter()
        .map(|d| {
            serde_json::json!({
                "name": d.name, "platform": d.platform, "version": d.client_version,
                "status": serde_json::to_value(d.status).ok(),
                "live": device::is_live(d, &u),
                "created": outcome::time(&d.created_at),
                "last_seen": outcome::maybe_time(&d.last_seen_at),
            })
        })
        .collect();
    let now = chrono::Utc::now();
    let invitation = inv.map(|l| {
        serde_json::json!({
            "issued_by": l.issued_by,
            "created": outcome::time(&l.created_at),
            "expires": outcome::time(&l.expires_at),
            "expired": l.expires_at <= now,
        })
    });
    let title = if name.is_empty() {
        v.username.clone()
    } else {
        format!("{name} ({})", v.username)
    };
    let mut ctx = PageContext::new(console, req, &title, console.appliance_banner());
    ctx.insert("section", "networks")
        .insert("network", &n)
        .insert("user", &v)
        .insert("name", &name)
        .insert("group_name", &group_name)
        .insert("groups", &groups)
        .insert("devices", &devices)
        .insert("invitation", &invitation)
        .insert("pending", &(v.status == UserStatus::Pending))
        .insert("created", &outcome::time(&v.created_at))
        .insert("registered", &outcome::maybe_time(&v.registered_at))
        .insert("last_login", &outcome::maybe_time(&v.last_login_at))
        .insert("locked_until", &outcome::maybe_time(&v.locked_until))
        .insert("may_edit", &may(Action::UpdateUser))
        .insert("may_suspend", &may(Action::SuspendUser))
        .insert("may_unsuspend", &may(Action::UnsuspendUser))
        .insert("may_unlock", &may(Action::UnlockUser))
        .insert("may_reinvite", &may(Action::ReinviteUser))
        .insert("may_password_reset", &may(Action::SendPasswordReset))
        .insert("may_reset", &may(Action::ResetDevicesForUser))
        .insert("may_delete", &may(Action::DeleteUser))
        .insert("may_devices", &may(Action::ListDevicesForUser))
        .insert("error", &error.map(|e| e.message.clone()))
        .insert(
            "problems",
            &error.map(outcome::problems).unwrap_or_default(),
        );
    let res = render(console, req, "console/user.html", status, &ctx);
    match error {
        Some(e) => with_error(res, e),
        None => res,
    }
}

fn here(p: &UserPath) -> String {
    format!("{PREFIX}/networks/{}/users/{}", p.network_id, p.user_id)
}

/// After a change: back to the user with a confirmation, or their page with the refusal.
fn answer(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    p: &UserPath,
    done: Result<String, Error>,
) -> HttpResponse {
    match done {
        Ok(flash) => see_other(&here(p), Some(&flash)),
        Err(e) if e.kind == Kind::NotFound => refusal(req, &e),
        Err(e) => page(
            console,
            state,
            req,
            caller,
            p,
            outcome::status_of(&e),
            Some(&e),
        ),
    }
}

/// `GET /console/networks/{network_id}/users/{user_id}` (GetUser).
pub async fn show(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<UserPath>,
) -> HttpResponse {
    page(&console, &state, &req, &caller, &path, StatusCode::OK, None)
}

#[derive(Debug, Deserialize)]
pub struct Edit {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    country_code: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    group: String,
}

/// `POST /console/networks/{network_id}/users/{user_id}/edit` (UpdateUser).
pub async fn edit(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<UserPath>,
    form: Form<Edit>,
) -> HttpResponse {
    let p = path.into_inner();
    let f = form.0;
    let b = UpdateUser {
        first_name: Some(f.first_name),
        last_name: Some(f.last_name),
        country_code: Some(f.country_code),
        phone: Some(f.phone),
        security_group_id: some(&f.group),
        password: None,
    };
    audit.body(&b);
    let target = UserPath {
        network_id: p.network_id.clone(),
        user_id: p.user_id.clone(),
    };
    let done = users::update_user(&state, &audit, target, b)
        .await
        .map(|u| format!("Saved {}.", u.username));
    answer(&console, &state, &req, &caller, &p, done)
}

/// A form with nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct Plain {}

fn copy(p: &UserPath) -> UserPath {
    UserPath {
        network_id: p.network_id.clone(),
        user_id: p.user_id.clone(),
    }
}

async fn change(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    p: UserPath,
    what: UserChange,
) -> HttpResponse {
    let done = users::change_user(&state, &audit, copy(&p), what)
        .await
        .map(|u| match what {
            UserChange::Suspend => format!(
                "{} is suspended: every device is signed out and refused.",
                u.username
            ),
            UserChange::Unsuspend => format!("{} is no longer suspended.", u.username),
            UserChange::Unlock => format!("{} is unlocked.", u.username),
        });
    answer(&console, &state, &req, &caller, &p, done)
}

/// `POST /console/networks/{network_id}/users/{user_id}/suspend` (SuspendUser).
pub async fn suspend(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<UserPath>,
    _form: Form<Plain>,
) -> HttpResponse {
    let p = path.into_inner();
    change(console, state, audit, req, caller, p, UserChange::Suspend).await
}

/// `POST /console/networks/{network_id}/users/{user_id}/unsuspend` (UnsuspendUser).
pub async fn unsuspend(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<UserPath>,
    _form: Form<Plain>,
) -> HttpResponse {
    let p = path.into_inner();
    change(console, state, audit, req, caller, p, UserChange::Unsuspend).await
}

/// `POST /console/networks/{network_id}/users/{user_id}/unlock` (UnlockUser).
pub async fn unlock(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<UserPath>,
    _form: Form<Plain>,
) -> HttpResponse {
    let p = path.into_inner();
    change(console, state, audit, req, caller, p, UserChange::Unlock).await
}

/// What a new invitation's confirmation says.
pub fn invited_flash(inv: &invitations::InvitedUser) -> String {
    let email = &inv.user.username;
    match &inv.invitation {
        Some(i) => match &i.url {
            Some(url) => outcome::with_link(
                &format!("New invitation for {email}; the previous link no longer works."),
                &format!(
                    "Mail is off: give them this link (it works once, until {}): {url}",
                    outcome::time(&i.expires_at)
                ),
            ),
            None => {
                format!("New invitation for {email} queued; the previous link no longer works.")
            }
        },
        None => format!("{email} has no invitation."),
    }
}

/// `POST /console/networks/{network_id}/users/{user_id}/invitation` (ReinviteUser).
pub async fn reinvite(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<UserPath>,
    _form: Form<Plain>,
) -> HttpResponse {
    let p = path.into_inner();
    let done = invitations::reinvite_user(&state, &audit, &caller, copy(&p))
        .await
        .map(|i| invited_flash(&i));
    answer(&console, &state, &req, &caller, &p, done)
}

/// `POST /console/networks/{network_id}/users/{user_id}/password-reset`
/// (SendPasswordReset).
pub async fn password_reset(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<UserPath>,
    _form: Form<Plain>,
) -> HttpResponse {
    let p = path.into_inner();
    let done = invitations::send_password_reset(&state, &audit, &caller, copy(&p))
        .await
        .map(|s| match &s.reset.url {
            Some(url) => outcome::with_link(
                &format!("Password reset for {}.", s.user.username),
                &format!(
                    "Mail is off: give them this link (it works once, until {}): {url}",
                    outcome::time(&s.reset.expires_at)
                ),
            ),
            None => format!(
                "A password reset mail for {} is queued (the link works until {}).",
                s.user.username,
                outcome::time(&s.reset.expires_at)
            ),
        });
    answer(&console, &state, &req, &caller, &p, done)
}

#[derive(Debug, Deserialize)]
pub struct Destroy {
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    password: String,
}

/// The typed word destructive actions need.
pub fn typed_confirm(given: &str) -> Result<(), Error> {
    if given.trim() == "confirm" {
        Ok(())
    } else {
        Err(Error::invalid(
            "confirmation_required",
            "type the word confirm to do this; nothing was changed",
        ))
    }
}

/// `POST /console/networks/{network_id}/users/{user_id}/devices/reset`
/// (ResetDevicesForUser): the typed word and the admin's password.
pub async fn reset_devices(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<UserPath>,
    form: Form<Destroy>,
) -> HttpResponse {
    let p = path.into_inner();
    let f = form.0;
    audit.param("confirm", f.confirm.clone());
    let checked = match reauth::confirm(&caller, &f.password).await {
        Ok(()) => typed_confirm(&f.confirm),
        Err(e) => Err(e),
    };
    let done = match checked {
        Ok(()) => users::reset_user_devices(&state, &audit, copy(&p))
            .await
            .map(|n| match n {
                1 => "1 device was reset: it must sign in and register again.".to_string(),
                n => format!("{n} devices were reset: they must sign in and register again."),
            }),
        Err(e) => Err(e),
    };
    answer(&console, &state, &req, &caller, &p, done)
}

/// `POST /console/networks/{network_id}/users/{user_id}/delete` (DeleteUser): the typed
/// word and the admin's password.
pub async fn delete(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<UserPath>,
    form: Form<Destroy>,
) -> HttpResponse {
    let p = path.into_inner();
    let f = form.0;
    audit.param("confirm", f.confirm.clone());
    let checked = match reauth::confirm(&caller, &f.password).await {
        Ok(()) => typed_confirm(&f.confirm),
        Err(e) => Err(e),
    };
    if let Err(e) = checked {
        return answer(&console, &state, &req, &caller, &p, Err(e));
    }
    match users::delete_user(&state, &audit, copy(&p)).await {
        Ok(u) => see_other(
            &format!("{PREFIX}/networks/{}/users", p.network_id),
            Some(&format!("{} was deleted.", u.username)),
        ),
        Err(e) => answer(&console, &state, &req, &caller, &p, Err(e)),
    }
}
