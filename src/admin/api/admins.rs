//! Admin API: admin accounts and their roles (owner only).

use super::State;
use crate::admin::AdminState;
use crate::admin::guard::Audit;
use crate::admin::response::{JsonBody, created, ok};
use crate::auth::admin::{self as admins, AdminView};
use crate::auth::{Caller, Role, password, session};
use crate::config::Secret;
use crate::error::{Error, FieldProblem, Result};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct AdminPath {
    pub admin_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminList {
    pub items: Vec<AdminView>,
}

#[utoipa::path(get, path = "/admins", operation_id = "ListAdmins", tag = "admins",
    responses((status = 200, body = AdminList)))]
pub async fn list(state: State) -> Result<HttpResponse> {
    let items = state
        .store
        .read(|tx| admins::list(tx))?
        .iter()
        .map(admins::Admin::view)
        .collect();
    Ok(ok(&AdminList { items }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdmin {
    /// 3–64 of letters, digits, `.`, `_`, `-`, `@`.
    pub username: String,
    pub role: Role,
    /// Networks an `admin` or `compliance` account may act in (empty for owner/auditor).
    #[serde(default)]
    pub networks: Vec<String>,
    /// The first password; omitted = a one-time password is generated, returned once,
    /// and must be changed at first sign-in.
    pub password: Option<Secret>,
}

/// An admin account and, when one was just issued, its one-time password.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminCredentials {
    pub admin: AdminView,
    pub one_time_password: Option<String>,
}

async fn hash(username: &str, pw: &str) -> Result<String> {
    if let Some(problem) = password::admin_password_problem(username, pw) {
        return Err(Error::validation(vec![FieldProblem::new(
            "password", problem,
        )]));
    }
    let p = pw.to_string();
    super::blocking("password hashing", move || password::hash(&p)).await?
}

#[utoipa::path(post, path = "/admins", operation_id = "CreateAdmin", tag = "admins",
    request_body = CreateAdmin, responses((status = 201, body = AdminCredentials)))]
pub async fn create(
    state: State,
    audit: Audit,
    body: JsonBody<CreateAdmin>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let c = create_admin(&state, &audit, body.into_inner()).await?;
    Ok(created(&c))
}

/// Create an admin account (CreateAdmin, for the API and the console).
pub async fn create_admin(
    state: &AdminState,
    audit: &Audit,
    b: CreateAdmin,
) -> Result<AdminCredentials> {
    let (one_time, pw) = match &b.password {
        Some(p) => (None, p.expose().to_string()),
        None => {
            let p = password::random_password(20);
            (Some(p.clone()), p)
        }
    };
    let phc = hash(&b.username, &pw).await?;
    let must_change = one_time.is_some();
    let a = audit
        .write(&state.store, 201, move |tx| {
            admins::create(
                tx,
                &b.username,
                phc.clone(),
                b.role,
                &b.networks,
                must_change,
            )
        })
        .await?;
    Ok(AdminCredentials {
        admin: a.view(),
        one_time_password: one_time,
    })
}

#[utoipa::path(get, path = "/admins/{admin_id}", operation_id = "GetAdmin", tag = "admins",
    params(AdminPath), responses((status = 200, body = AdminView)))]
pub async fn get(state: State, path: web::Path<AdminPath>) -> Result<HttpResponse> {
    let a = state.store.read(|tx| admins::get(tx, &path.admin_id))?;
    Ok(ok(&a.view()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAdmin {
    pub role: Option<Role>,
    pub networks: Option<Vec<String>>,
    /// Issue a new one-time password (returned once); ends the account's sessions.
    pub reset_password: Option<bool>,
    /// Clear a lock left by failed sign-ins.
    pub unlock: Option<bool>,
}

#[utoipa::path(patch, path = "/admins/{admin_id}", operation_id = "UpdateAdmin", tag = "admins",
    params(AdminPath), request_body = UpdateAdmin, responses((status = 200, body = AdminCredentials)))]
pub async fn update(
    state: State,
    audit: Audit,
    caller: Caller,
    path: web::Path<AdminPath>,
    body: JsonBody<UpdateAdmin>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let c = update_admin(
        &state,
        &audit,
        &caller,
        path.into_inner().admin_id,
        body.into_inner(),
    )
    .await?;
    Ok(ok(&c))
}

/// Change an admin account (UpdateAdmin, for the API and the console).
pub async fn update_admin(
    state: &AdminState,
    audit: &Audit,
    caller: &Caller,
    id: String,
    b: UpdateAdmin,
) -> Result<AdminCredentials> {
    if b.reset_password == Some(true) && id == caller.admin.id {
        return Err(Error::conflict(
            "use_change_password",
            "to change your own password, use ChangeAdminPassword (POST /admin/api/v1/me/password)",
        ));
    }
    let reset = if b.reset_password == Some(true) {
        let username = state.store.read(|tx| admins::get(tx, &id))?.username;
        let p = password::random_password(20);
        Some((p.clone(), hash(&username, &p).await?))
    } else {
        None
    };
    let phc = reset.as_ref().map(|(_, h)| h.clone());
    let a = audit
        .write(&state.store, 200, move |tx| {
            let mut a = if b.role.is_some() || b.networks.is_some() {
                admins::set_role(tx, &id, b.role, b.networks.as_deref())?
            } else {
                admins::get(tx, &id)?
            };
            if let Some(h) = &phc {
                a.password_hash = h.clone();
                a.must_change_password = true;
                session::delete_all_for(tx, &a.id, None)?;
            }
            if b.unlock == Some(true) {
                a.locked_until = None;
                a.failed_logins = 0;
            }
            admins::save(tx, a)
        })
        .await?;
    Ok(AdminCredentials {
        admin: a.view(),
        one_time_password: reset.map(|(p, _)| p),
    })
}

#[utoipa::path(delete, path = "/admins/{admin_id}", operation_id = "DeleteAdmin", tag = "admins",
    params(AdminPath), responses((status = 204, description = "Deleted")))]
pub async fn delete(
    state: State,
    audit: Audit,
    caller: Caller,
    path: web::Path<AdminPath>,
) -> Result<HttpResponse> {
    delete_admin(&state, &audit, &caller, path.into_inner().admin_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete an admin account (DeleteAdmin, for the API and the console).
pub async fn delete_admin(
    state: &AdminState,
    audit: &Audit,
    caller: &Caller,
    id: String,
) -> Result<AdminView> {
    let me = caller.admin.id.clone();
    audit
        .write(&state.store, 204, move |tx| {
            admins::delete(tx, &id, &me).map(|a| a.view())
        })
        .await
}
