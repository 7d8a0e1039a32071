//! Console: admin accounts and their roles (ListAdmins, GetAdmin, CreateAdmin,
//! UpdateAdmin, DeleteAdmin — the owner's, as in the API; auditors may look). A new
//! account's one-time password, and a reset one, are shown once on the page that
//! made them. Removing an account needs the typed word `confirm` and the owner's
//! password.

use super::form::Form;
use super::outcome;
use super::page::{PageContext, refusal, render, see_other, with_error};
use super::user::typed_confirm;
use super::{Console, PREFIX, reauth};
use crate::admin::AdminState;
use crate::admin::api::admins::{self, AdminCredentials, CreateAdmin, UpdateAdmin};
use crate::admin::guard::Audit;
use crate::auth::admin as accounts;
use crate::auth::{Action, Caller, Role, permission};
use crate::directory::network;
use crate::error::{Error, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use std::collections::HashMap;

const ROLES: [(&str, &str); 4] = [
    (
        "owner",
        "Owner — everything, including admin accounts and backups",
    ),
    (
        "admin",
        "Admin — everything inside the networks ticked below",
    ),
    (
        "auditor",
        "Auditor — reads every network and the audit log, changes nothing",
    ),
    (
        "compliance",
        "Compliance — data retention of the networks ticked below",
    ),
];

fn role_of(s: &str) -> Result<Role, Error> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        Error::validation(vec![crate::error::FieldProblem::new(
            "role",
            "choose owner, admin, auditor or compliance",
        )])
    })
}

/// The networks ticked in a form (`net_<id>` fields).
fn ticked(form: &HashMap<String, String>) -> Vec<String> {
    let mut n: Vec<String> = form
        .keys()
        .filter_map(|k| k.strip_prefix("net_").map(str::to_string))
        .collect();
    n.sort();
    n
}

fn networks_ctx(state: &AdminState) -> Result<Vec<serde_json::Value>, Error> {
    Ok(state
        .store
        .read(|tx| network::list(tx))?
        .iter()
        .map(|n| serde_json::json!({"id": n.id, "name": n.name}))
        .collect())
}

fn row(a: &accounts::Admin, names: &HashMap<String, String>) -> serde_json::Value {
    let v = a.view();
    let nets: Vec<String> = v
        .networks
        .iter()
        .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
        .collect();
    serde_json::json!({
        "id": v.id, "username": v.username, "role": v.role, "networks": nets,
        "network_ids": v.networks,
        "must_change_password": v.must_change_password,
        "locked_until": outcome::maybe_time(&v.locked_until),
        "created": outcome::time(&v.created_at),
        "last_login": outcome::maybe_time(&v.last_login_at),
    })
}

#[allow(clippy::too_many_arguments)]
fn list_page(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    status: StatusCode,
    issued: Option<&AdminCredentials>,
    form: &HashMap<String, String>,
    error: Option<&Error>,
) -> HttpResponse {
    let found = state.store.read(|tx| accounts::list(tx));
    let (list, nets) = match found.and_then(|l| Ok((l, networks_ctx(state)?))) {
        Ok(x) => x,
        Err(e) => return refusal(req, &e),
    };
    let names: HashMap<String, String> = nets
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap_or("").to_string(),
                n["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let rows: Vec<serde_json::Value> = list.iter().map(|a| row(a, &names)).collect();
    let mut p = PageContext::new(console, req, "Admins and roles", console.appliance_banner());
    p.insert("section", "admins")
        .insert("admins", &rows)
        .insert("networks", &nets)
        .insert("roles", &ROLES)
        .insert("issued", &issued)
        .insert("form", form)
        .insert("ticked", &ticked(form))
        .insert("error", &error.map(|e| e.message.clone()))
        .insert(
            "problems",
            &error.map(outcome::problems).unwrap_or_default(),
        )
        .insert(
            "may_create",
            &permission::allows(caller.admin.role, Action::CreateAdmin),
        );
    let res = render(console, req, "console/admins.html", status, &p);
    match error {
        Some(e) => with_error(res, e),
        None => res,
    }
}

/// `GET /console/admins` (ListAdmins).
pub async fn list(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
) -> HttpResponse {
    list_page(
        &console,
        &state,
        &req,
        &caller,
        StatusCode::OK,
        None,
        &HashMap::new(),
        None,
    )
}

/// `POST /console/admins` (CreateAdmin): a one-time password, shown once, to change
/// at first sign-in.
pub async fn create(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    form: Form<HashMap<String, String>>,
) -> HttpResponse {
    let f = form.0;
    let get = |k: &str| f.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let made = match role_of(&get("role")) {
        Ok(role) => {
            let b = CreateAdmin {
                username: get("username"),
                role,
                networks: if role.is_network_scoped() {
                    ticked(&f)
                } else {
                    Vec::new()
                },
                password: None,
            };
            audit.body(&b);
            admins::create_admin(&state, &audit, b).await
        }
        Err(e) => Err(e),
    };
    match made {
        Ok(c) => list_page(
            &console,
            &state,
            &req,
            &caller,
            StatusCode::CREATED,
            Some(&c),
            &HashMap::new(),
            None,
        ),
        Err(e) => list_page(
            &console,
            &state,
            &req,
            &caller,
            outcome::status_of(&e),
            None,
            &f,
            Some(&e),
        ),
    }
}

#[derive(Deserialize)]
pub struct AdminPath {
    admin_id: String,
}

#[allow(clippy::too_many_arguments)]
fn detail_page(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    id: &str,
    status: StatusCode,
    issued: Option<&AdminCredentials>,
    error: Option<&Error>,
) -> HttpResponse {
    let found = state.store.read(|tx| accounts::get(tx, id));
    let (a, nets) = match found.and_then(|a| Ok((a, networks_ctx(state)?))) {
        Ok(x) => x,
        Err(e) => return refusal(req, &e),
    };
    let names: HashMap<String, String> = nets
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap_or("").to_string(),
                n["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut p = PageContext::new(
        console,
        req,
        &format!("Admin {}", a.username),
        console.appliance_banner(),
    );
    p.insert("section", "admins")
        .insert("admin", &row(&a, &names))
        .insert("networks", &nets)
        .insert("roles", &ROLES)
        .insert("issued", &issued)
        .insert("myself", &(a.id == caller.admin.id))
        .insert("error", &error.map(|e| e.message.clone()))
        .insert(
            "problems",
            &error.map(outcome::problems).unwrap_or_default(),
        )
        .insert(
            "may_update",
            &permission::allows(caller.admin.role, Action::UpdateAdmin),
        )
        .insert(
            "may_delete",
            &permission::allows(caller.admin.role, Action::DeleteAdmin),
        );
    let res = render(console, req, "console/admin.html", status, &p);
    match error {
        Some(e) => with_error(res, e),
        None => res,
    }
}

/// `GET /console/admins/{admin_id}` (GetAdmin).
pub async fn show(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<AdminPath>,
) -> HttpResponse {
    detail_page(
        &console,
        &state,
        &req,
        &caller,
        &path.admin_id,
        StatusCode::OK,
        None,
        None,
    )
}

/// `POST /console/admins/{admin_id}/update` (UpdateAdmin): `change` is `role` (with
/// the role and ticked networks), `reset_password` or `unlock`.
pub async fn update(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<AdminPath>,
    form: Form<HashMap<String, String>>,
) -> HttpResponse {
    let id = path.into_inner().admin_id;
    let f = form.0;
    let mut b = UpdateAdmin {
        role: None,
        networks: None,
        reset_password: None,
        unlock: None,
    };
    let change = f.get("change").map(String::as_str).unwrap_or("");
    let prepared = match change {
        "role" => role_of(f.get("role").map(String::as_str).unwrap_or("")).map(|role| {
            b.role = Some(role);
            b.networks = Some(if role.is_network_scoped() {
                ticked(&f)
            } else {
                Vec::new()
            });
        }),
        "reset_password" => {
            b.reset_password = Some(true);
            Ok(())
        }
        "unlock" => {
            b.unlock = Some(true);
            Ok(())
        }
        other => Err(Error::bad_request(
            "invalid_form",
            format!("{other:?} is not a change this page makes"),
        )),
    };
    audit.body(&b);
    let r = match prepared {
        Ok(()) => admins::update_admin(&state, &audit, &caller, id.clone(), b).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(c) if c.one_time_password.is_some() => detail_page(
            &console,
            &state,
            &req,
            &caller,
            &id,
            StatusCode::OK,
            Some(&c),
            None,
        ),
        Ok(c) => see_other(
            &format!("{PREFIX}/admins/{id}"),
            Some(&match change {
                "unlock" => format!("{} is unlocked.", c.admin.username),
                _ => format!("{} is now {}.", c.admin.username, c.admin.role.as_str()),
            }),
        ),
        Err(e) if e.kind == Kind::NotFound => refusal(&req, &e),
        Err(e) => detail_page(
            &console,
            &state,
            &req,
            &caller,
            &id,
            outcome::status_of(&e),
            None,
            Some(&e),
        ),
    }
}

#[derive(Debug, Deserialize)]
pub struct Destroy {
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    password: String,
}

/// `POST /console/admins/{admin_id}/delete` (DeleteAdmin): the typed word and the
/// owner's password.
pub async fn delete(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<AdminPath>,
    form: Form<Destroy>,
) -> HttpResponse {
    let id = path.into_inner().admin_id;
    let f = form.0;
    audit.param("confirm", f.confirm.clone());
    let checked = match reauth::confirm(&caller, &f.password).await {
        Ok(()) => typed_confirm(&f.confirm),
        Err(e) => Err(e),
    };
    let r = match checked {
        Ok(()) => admins::delete_admin(&state, &audit, &caller, id.clone()).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(a) => see_other(
            &format!("{PREFIX}/admins"),
            Some(&format!(
                "The admin account {} was removed and signed out.",
                a.username
            )),
        ),
        Err(e) if e.kind == Kind::NotFound => refusal(&req, &e),
        Err(e) => detail_page(
            &console,
            &state,
            &req,
            &caller,
            &id,
            outcome::status_of(&e),
            None,
            Some(&e),
        ),
    }
}
