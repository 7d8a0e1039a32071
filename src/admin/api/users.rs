//! Admin API: the team directory — users, their devices, and CSV bulk operations (F3).

use super::invitations::{InvitedUser, Inviting, invite, mail_queued};
use super::{NetworkPath, PageQuery, State, UserPath};
use crate::admin::AdminState;
use crate::admin::guard::Audit;
use crate::admin::response::{JsonBody, created, ok, read_body};
use crate::auth::{Caller, password};
use crate::config::Secret;
use crate::directory::bulk::{self, BulkAction, BulkResult};
use crate::directory::device::{self, Device};
use crate::directory::user::{self, ListQuery, Profile, User, UserKind, UserStatus, UserView};
use crate::directory::{group, network, validate};
use crate::error::{Error, FieldProblem, Result};
use crate::store::Tx;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page position as it travels: the hex of the last username's bytes.
pub(super) fn encode_cursor(username: &str) -> String {
    hex::encode(username)
}

pub(super) fn decode_cursor(cursor: &str) -> Result<Vec<u8>> {
    hex::decode(cursor)
        .ok()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            Error::bad_request(
                "invalid_cursor",
                "a cursor is an even number of lowercase hex digits, as next_cursor gives it",
            )
        })
}

/// One page of users or bots of a network, as an HTTP response.
pub(super) fn list_page(
    state: &State,
    network_id: &str,
    kind: UserKind,
    q: ListQuery,
) -> Result<HttpResponse> {
    let (users, next) = state.store.read(|tx| {
        network::get(tx, network_id)?;
        user::list(tx, network_id, kind, &q)
    })?;
    Ok(ok(&UserPage {
        items: users.iter().map(User::view).collect(),
        next_cursor: next.as_deref().map(encode_cursor),
    }))
}

#[utoipa::path(get, path = "/networks/{network_id}/users", operation_id = "ListUsers", tag = "users",
    params(NetworkPath, PageQuery), responses((status = 200, body = UserPage)))]
pub async fn list(
    state: State,
    path: web::Path<NetworkPath>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    list_page(
        &state,
        &path.network_id,
        UserKind::User,
        q.into_inner().into_list_query()?,
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserCounts {
    pub pending: i64,
    pub active: i64,
    pub suspended: i64,
    pub locked: i64,
    pub total: i64,
    pub bots: i64,
}

#[utoipa::path(get, path = "/networks/{network_id}/users/count", operation_id = "GetUsersCount",
    tag = "users", params(NetworkPath), responses((status = 200, body = UserCounts)))]
pub async fn count(state: State, path: web::Path<NetworkPath>) -> Result<HttpResponse> {
    let (users, bots) = state.store.read(|tx| {
        network::get(tx, &path.network_id)?;
        Ok((
            user::counts(tx, &path.network_id, UserKind::User)?,
            user::counts(tx, &path.network_id, UserKind::Bot)?,
        ))
    })?;
    let get = |s: UserStatus| {
        users
            .iter()
            .find(|(x, _)| *x == s)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    Ok(ok(&UserCounts {
        pending: get(UserStatus::Pending),
        active: get(UserStatus::Active),
        suspended: get(UserStatus::Suspended),
        locked: get(UserStatus::Locked),
        total: users.iter().map(|(_, n)| n).sum(),
        bots: bots.iter().map(|(_, n)| n).sum(),
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Calling code, e.g. `+44`.
    pub country_code: Option<String>,
    pub phone: Option<String>,
    /// Omitted = the network's default group.
    pub security_group_id: Option<String>,
    /// Set a password now (it must meet the group's requirements); without one the user
    /// registers through an invitation.
    pub password: Option<Secret>,
}

/// Check `password` against the group's rules and hash it (off the async workers).
async fn hash_for_group(
    state: &AdminState,
    network_id: &str,
    group_id: Option<&str>,
    password: &Secret,
) -> Result<String> {
    let g = state.store.read(|tx| {
        let n = network::get(tx, network_id)?;
        group::get(tx, network_id, group_id.unwrap_or(&n.default_group_id))
    })?;
    if let Some(problem) = g.settings.password_problem(password.expose()) {
        return Err(Error::validation(vec![FieldProblem::new(
            "password",
            format!("{problem} (security group {:?})", g.name),
        )]));
    }
    let p = password.expose().to_string();
    super::blocking("password hashing", move || password::hash(&p)).await?
}

fn profile_problems(u: &mut User, p: &Profile) -> Result<()> {
    let problems = p.apply(u, &|f| f.to_string());
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::validation(problems))
    }
}

#[utoipa::path(post, path = "/networks/{network_id}/users", operation_id = "CreateUser", tag = "users",
    params(NetworkPath), request_body = CreateUser, responses((status = 201, body = InvitedUser,
        description = "The user; without a password, also their invitation (a registration link \
            valid 7 days, mailed when mail is on, returned when it is off).")))]
pub async fn create(
    state: State,
    audit: Audit,
    caller: Caller,
    path: web::Path<NetworkPath>,
    body: JsonBody<CreateUser>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let u = create_user(
        &state,
        &audit,
        &caller,
        path.into_inner().network_id,
        body.into_inner(),
    )
    .await?;
    Ok(created(&u))
}

/// Create (invite) a user (CreateUser, for the API and the console).
pub async fn create_user(
    state: &AdminState,
    audit: &Audit,
    caller: &Caller,
    nid: String,
    b: CreateUser,
) -> Result<InvitedUser> {
    let how = Inviting::new(state, caller);
    let hash = match &b.password {
        Some(p) => Some(hash_for_group(state, &nid, b.security_group_id.as_deref(), p).await?),
        None => None,
    };
    let u = audit
        .write(&state.store, 201, move |tx| {
            let n = network::get(tx, &nid)?;
            let email = validate::email(&b.email)
                .map_err(|e| Error::validation(vec![FieldProblem::new("email", e)]))?;
            let gid = b
                .security_group_id
                .clone()
                .unwrap_or(n.default_group_id.clone());
            group::for_member(tx, &nid, &gid)?;
            let mut u = User::new(&nid, UserKind::User, email, gid);
            profile_problems(
                &mut u,
                &Profile {
                    first_name: b.first_name.clone(),
                    last_name: b.last_name.clone(),
                    country_code: b.country_code.clone(),
                    phone: b.phone.clone(),
                },
            )?;
            u.password_hash = hash.clone();
            user::put(tx, None, &u)?;
            // With single sign-on on, the person signs in through the identity provider:
            // there is nothing to register through a link.
            let inv = match u.password_hash {
                None if !n.sso_enabled => Some(invite(tx, &how, &n, &u)?),
                _ => None,
            };
            Ok((u, inv))
        })
        .await?;
    let (u, invitation) = u;
    mail_queued(state);
    Ok(InvitedUser {
        user: u.view(),
        invitation,
    })
}

#[utoipa::path(get, path = "/networks/{network_id}/users/{user_id}", operation_id = "GetUser", tag = "users",
    params(UserPath), responses((status = 200, body = UserView)))]
pub async fn get(state: State, path: web::Path<UserPath>) -> Result<HttpResponse> {
    let u = state
        .store
        .read(|tx| user::get(tx, &path.network_id, UserKind::User, &path.user_id))?;
    Ok(ok(&u.view()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub country_code: Option<String>,
    pub phone: Option<String>,
    pub security_group_id: Option<String>,
    /// A new password (meeting the group's requirements); ends the user's sessions.
    pub password: Option<Secret>,
}

#[utoipa::path(patch, path = "/networks/{network_id}/users/{user_id}", operation_id = "UpdateUser",
    tag = "users", params(UserPath), request_body = UpdateUser, responses((status = 200, body = UserView)))]
pub async fn update(
    state: State,
    audit: Audit,
    path: web::Path<UserPath>,
    body: JsonBody<UpdateUser>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let u = update_user(&state, &audit, path.into_inner(), body.into_inner()).await?;
    Ok(ok(&u))
}

/// Change a user's profile, group or password (UpdateUser, for the API and the console).
pub async fn update_user(
    state: &AdminState,
    audit: &Audit,
    p: UserPath,
    b: UpdateUser,
) -> Result<UserView> {
    let hash = match &b.password {
        Some(pw) => {
            let gid = match &b.security_group_id {
                Some(g) => g.clone(),
                None => {
                    state
                        .store
                        .read(|tx| user::get(tx, &p.network_id, UserKind::User, &p.user_id))?
                        .group_id
                }
            };
            Some(hash_for_group(state, &p.network_id, Some(&gid), pw).await?)
        }
        None => None,
    };
    let u = audit
        .write(&state.store, 200, move |tx| {
            let old = user::get(tx, &p.network_id, UserKind::User, &p.user_id)?;
            let mut u = old.clone();
            profile_problems(
                &mut u,
                &Profile {
                    first_name: b.first_name.clone(),
                    last_name: b.last_name.clone(),
                    country_code: b.country_code.clone(),
                    phone: b.phone.clone(),
                },
            )?;
            if let Some(gid) = &b.security_group_id {
                group::for_member(tx, &p.network_id, gid)?;
                u.group_id = gid.clone();
            }
            if let Some(h) = &hash {
                u.replace_credentials(Some(h.clone()), None);
            }
            u.updated_at = chrono::Utc::now();
            user::put(tx, Some(&old), &u)?;
            Ok(u)
        })
        .await?;
    Ok(u.view())
}

#[utoipa::path(delete, path = "/networks/{network_id}/users/{user_id}", operation_id = "DeleteUser",
    tag = "users", params(UserPath), responses((status = 204, description = "Deleted")))]
pub async fn delete(state: State, audit: Audit, path: web::Path<UserPath>) -> Result<HttpResponse> {
    delete_user(&state, &audit, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete a user (DeleteUser, for the API and the console); returns who it was.
pub async fn delete_user(state: &AdminState, audit: &Audit, p: UserPath) -> Result<UserView> {
    audit
        .write(&state.store, 204, move |tx| {
            let u = user::get(tx, &p.network_id, UserKind::User, &p.user_id)?;
            user::remove(tx, &u)?;
            Ok(u.view())
        })
        .await
}

/// What [`change_user`] does to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    /// SuspendUser.
    Suspend,
    /// UnsuspendUser.
    Unsuspend,
    /// UnlockUser.
    Unlock,
}

/// Suspend, unsuspend or unlock a user (for the API and the console).
pub async fn change_user(
    state: &AdminState,
    audit: &Audit,
    p: UserPath,
    what: UserChange,
) -> Result<UserView> {
    let u = audit
        .write(&state.store, 200, move |tx| {
            let old = user::get(tx, &p.network_id, UserKind::User, &p.user_id)?;
            match what {
                UserChange::Suspend => user::set_suspended(tx, &old, true),
                UserChange::Unsuspend => user::set_suspended(tx, &old, false),
                UserChange::Unlock => user::unlock(tx, &old),
            }
        })
        .await?;
    Ok(u.view())
}

async fn change(state: State, audit: Audit, p: UserPath, what: UserChange) -> Result<HttpResponse> {
    Ok(ok(&change_user(&state, &audit, p, what).await?))
}

#[utoipa::path(post, path = "/networks/{network_id}/users/{user_id}/suspend", operation_id = "SuspendUser",
    tag = "users", params(UserPath), responses((status = 200, body = UserView)))]
pub async fn suspend(
    state: State,
    audit: Audit,
    path: web::Path<UserPath>,
) -> Result<HttpResponse> {
    change(state, audit, path.into_inner(), UserChange::Suspend).await
}

#[utoipa::path(post, path = "/networks/{network_id}/users/{user_id}/unsuspend", operation_id = "UnsuspendUser",
    tag = "users", params(UserPath), responses((status = 200, body = UserView)))]
pub async fn unsuspend(
    state: State,
    audit: Audit,
    path: web::Path<UserPath>,
) -> Result<HttpResponse> {
    change(state, audit, path.into_inner(), UserChange::Unsuspend).await
}

#[utoipa::path(post, path = "/networks/{network_id}/users/{user_id}/unlock", operation_id = "UnlockUser",
    tag = "users", params(UserPath), responses((status = 200, body = UserView)))]
pub async fn unlock(state: State, audit: Audit, path: web::Path<UserPath>) -> Result<HttpResponse> {
    change(state, audit, path.into_inner(), UserChange::Unlock).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub items: Vec<Device>,
}

#[utoipa::path(get, path = "/networks/{network_id}/users/{user_id}/devices", operation_id = "ListDevicesForUser",
    tag = "users", params(UserPath), responses((status = 200, body = DeviceList)))]
pub async fn devices(state: State, path: web::Path<UserPath>) -> Result<HttpResponse> {
    let items = state.store.read(|tx| {
        let u = user::get(tx, &path.network_id, UserKind::User, &path.user_id)?;
        device::list(tx, &u.id)
    })?;
    Ok(ok(&DeviceList { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DevicesReset {
    /// Devices that were active and are now reset.
    pub reset: u64,
}

#[utoipa::path(post, path = "/networks/{network_id}/users/{user_id}/devices/reset",
    operation_id = "ResetDevicesForUser", tag = "users", params(UserPath),
    responses((status = 200, body = DevicesReset)))]
pub async fn reset_devices(
    state: State,
    audit: Audit,
    path: web::Path<UserPath>,
) -> Result<HttpResponse> {
    let n = reset_user_devices(&state, &audit, path.into_inner()).await?;
    Ok(ok(&DevicesReset { reset: n }))
}

/// Reset every device of a user (ResetDevicesForUser, for the API and the console);
/// returns how many were active.
pub async fn reset_user_devices(state: &AdminState, audit: &Audit, p: UserPath) -> Result<u64> {
    audit
        .write(&state.store, 200, move |tx| {
            let u = user::get(tx, &p.network_id, UserKind::User, &p.user_id)?;
            Ok(device::reset_all(tx, &u)?.1)
        })
        .await
}

/// A CSV file download.
pub fn csv_response(name: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

#[utoipa::path(get, path = "/networks/{network_id}/users/export", operation_id = "ExportUsers", tag = "users",
    params(NetworkPath),
    responses((status = 200, content_type = "text/csv", body = String,
        description = "The team directory: email, first_name, last_name, country_code, phone, security_group, status")))]
pub async fn export(state: State, path: web::Path<NetworkPath>) -> Result<HttpResponse> {
    let nid = path.into_inner().network_id;
    let csv = export_users(&state, &nid).await?;
    Ok(csv_response(&export_name(&nid), csv))
}

/// The file name of a network's directory export.
pub fn export_name(network_id: &str) -> String {
    format!("outpost-users-{network_id}.csv")
}

/// The team directory as CSV (ExportUsers, for the API and the console).
pub async fn export_users(state: &AdminState, network_id: &str) -> Result<Vec<u8>> {
    let store = state.store.clone();
    let n = network_id.to_string();
    super::blocking("the export", move || {
        store.read(|tx| {
            network::get(tx, &n)?;
            bulk::export(Tx::from(tx), &n)
        })
    })
    .await?
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TemplatePath {
    pub network_id: String,
    /// `invite`, `delete` or `suspend`.
    pub action: String,
}

#[utoipa::path(get, path = "/networks/{network_id}/users/templates/{action}", operation_id = "GetUserTemplate",
    tag = "users", params(TemplatePath),
    responses((status = 200, content_type = "text/csv", body = String, description = "The CSV header to fill in")))]
pub async fn template(state: State, path: web::Path<TemplatePath>) -> Result<HttpResponse> {
    let (name, body) = user_template(&state, &path.network_id, &path.action)?;
    Ok(csv_response(&name, body))
}

/// A bulk template's file name and contents (GetUserTemplate, for the API and the
/// console).
pub fn user_template(
    state: &AdminState,
    network_id: &str,
    action: &str,
) -> Result<(String, Vec<u8>)> {
    state.store.read(|tx| network::get(tx, network_id))?;
    let a = BulkAction::parse(action).ok_or_else(|| {
        Error::not_found(
            "template_not_found",
            format!("there is no {action:?} template; use invite, delete or suspend"),
        )
    })?;
    Ok((
        format!("outpost-{action}-users-template.csv"),
        bulk::template(a).into_bytes(),
    ))
}

/// Read, parse and apply a bulk CSV upload.
async fn run_bulk(
    state: State,
    audit: Audit,
    how: Inviting,
    network_id: String,
    payload: web::Payload,
    action: BulkAction,
) -> Result<HttpResponse> {
    let bytes = read_body(payload, state.config.http.max_upload_bytes).await?;
    let (status, result) = apply_bulk(&state, &audit, how, network_id, bytes, action).await?;
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("valid status"))
            .json(&result),
    )
}

/// Parse and apply a bulk CSV file (BatchCreateUser, BatchDeleteUser, BatchSuspendUser,
/// for the API and the console): all rows apply, or none (a `csv_invalid` error whose
/// details are the row-by-row [`bulk::CsvReport`]). Returns the success status and the
/// result.
pub async fn apply_bulk(
    state: &AdminState,
    audit: &Audit,
    how: Inviting,
    network_id: String,
    bytes: impl AsRef<[u8]> + Send + 'static,
    action: BulkAction,
) -> Result<(u16, BulkResult)> {
    audit.param("bytes", bytes.as_ref().len());
    let max_rows = state.config.admin.bulk_max_rows;
    let file = super::blocking("reading the file", move || {
        bulk::parse(bytes.as_ref(), action, max_rows)
    })
    .await??;
    audit.param("rows", file.total);
    let rows = std::sync::Arc::new(file);
    let status = if action == BulkAction::Invite {
        201
    } else {
        200
    };
    let result: BulkResult = audit
        .write(&state.store, status, move |tx| match action {
            BulkAction::Invite => {
                let mut r = bulk::apply_invite(tx, &network_id, &rows)?;
                let net = network::get(tx, &network_id)?;
                let ids = if net.sso_enabled {
                    &[][..]
                } else {
                    &r.user_ids[..]
                };
                for id in ids {
                    let u = user::get(tx, &network_id, UserKind::User, id)?;
                    let inv = invite(tx, &how, &net, &u)?;
                    r.invitations.push(bulk::BulkInvitation {
                        user_id: u.id.clone(),
                        email: u.username.clone(),
                        url: inv.url,
                        mail_id: inv.mail_id,
                        expires_at: inv.expires_at,
                    });
                }
                Ok(r)
            }
            BulkAction::Delete => bulk::apply_delete(tx, &network_id, &rows),
            BulkAction::Suspend => bulk::apply_suspend(tx, &network_id, &rows),
        })
        .await?;
    if action == BulkAction::Invite {
        mail_queued(state);
    }
    Ok((status, result))
}

#[utoipa::path(post, path = "/networks/{network_id}/users/batch-create", operation_id = "BatchCreateUser",
    tag = "users", params(NetworkPath),
    request_body(content = String, content_type = "text/csv",
        description = "The invite template filled in (columns email, first_name, last_name, country_code, \
            phone, security_group; the directory export is accepted too). All rows apply, or none."),
    responses((status = 201, body = BulkResult)))]
pub async fn batch_create(
    state: State,
    audit: Audit,
    caller: Caller,
    path: web::Path<NetworkPath>,
    body: web::Payload,
) -> Result<HttpResponse> {
    let how = Inviting::new(&state, &caller);
    run_bulk(
        state,
        audit,
        how,
        path.into_inner().network_id,
        body,
        BulkAction::Invite,
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeleteAck {
    /// Must be `true`: "I understand that deleting users is irreversible".
    pub acknowledge_irreversible: Option<bool>,
}

#[utoipa::path(post, path = "/networks/{network_id}/users/batch-delete", operation_id = "BatchDeleteUser",
    tag = "users", params(NetworkPath, DeleteAck),
    request_body(content = String, content_type = "text/csv",
        description = "A CSV with an email column (the delete template or the directory export)."),
    responses((status = 200, body = BulkResult)))]
pub async fn batch_delete(
    state: State,
    audit: Audit,
    caller: Caller,
    path: web::Path<NetworkPath>,
    q: web::Query<DeleteAck>,
    body: web::Payload,
) -> Result<HttpResponse> {
    if q.acknowledge_irreversible != Some(true) {
        return Err(Error::invalid(
            "acknowledgement_required",
            "deleting users is irreversible; repeat the request with acknowledge_irreversible=true",
        ));
    }
    let how = Inviting::new(&state, &caller);
    run_bulk(
        state,
        audit,
        how,
        path.into_inner().network_id,
        body,
        BulkAction::Delete,
    )
    .await
}

#[utoipa::path(post, path = "/networks/{network_id}/users/batch-suspend", operation_id = "BatchSuspendUser",
    tag = "users", params(NetworkPath),
    request_body(content = String, content_type = "text/csv",
        description = "A CSV with an email column (the suspend template or the directory export)."),
    responses((status = 200, body = BulkResult)))]
pub async fn batch_suspend(
    state: State,
    audit: Audit,
    caller: Caller,
    path: web::Path<NetworkPath>,
    body: web::Payload,
) -> Result<HttpResponse> {
    let how = Inviting::new(&state, &caller);
    run_bulk(
        state,
        audit,
        how,
        path.into_inner().network_id,
        body,
        BulkAction::Suspend,
    )
    .await
}
