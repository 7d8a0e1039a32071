//! Console: a network's security groups — the list with member counts, and creating a
//! group (ListSecurityGroups, CreateSecurityGroup).

use super::form::Form;
use super::page::{PageContext, refusal, render, see_other, with_error};
use super::{Console, PREFIX};
use crate::admin::AdminState;
use crate::admin::api::groups::{self, CreateGroup};
use crate::admin::guard::Audit;
use crate::auth::{Action, Caller, permission};
use crate::directory::{group, network};
use crate::error::Error;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct NetworkPath {
    network_id: String,
}

#[allow(clippy::too_many_arguments)]
fn page(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    id: &str,
    status: StatusCode,
    form_name: &str,
    error: Option<&Error>,
) -> HttpResponse {
    let found = state
        .store
        .read(|tx| network::get(tx, id))
        .and_then(|n| Ok((n, groups::list_groups(state, id)?)));
    let (n, list) = match found {
        Ok(x) => x,
        Err(e) => return refusal(req, &e),
    };
    let rows: Vec<serde_json::Value> = list
        .iter()
        .map(|g| {
            serde_json::json!({
                "id": g.group.id, "name": g.group.name, "is_default": g.group.is_default,
                "users": g.active_members, "bots": g.bot_members,
                "updated_at": g.group.updated_at.format("%Y-%m-%d %H:%M").to_string(),
            })
        })
        .collect();
    let mut p = PageContext::new(
        console,
        req,
        &format!("Security groups — {}", n.name),
        console.appliance_banner(),
    );
    p.insert("section", "networks")
        .insert("network", &n)
        .insert("groups", &rows)
        .insert(
            "may_create",
            &permission::allows(caller.admin.role, Action::CreateSecurityGroup),
        )
        .insert("name_max", &group::NAME_MAX)
        .insert("form_name", form_name)
        .insert("error", &error.map(|e| e.message.clone()));
    let res = render(console, req, "console/groups.html", status, &p);
    match error {
        Some(e) => with_error(res, e),
        None => res,
    }
}

/// `GET /console/networks/{network_id}/groups`.
pub async fn list(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
) -> HttpResponse {
    let id = path.into_inner().network_id;
    page(
        &console,
        &state,
        &req,
        &caller,
        &id,
        StatusCode::OK,
        "",
        None,
    )
}

#[derive(Deserialize)]
pub struct NewGroup {
    #[serde(default)]
    name: String,
}

/// `POST /console/networks/{network_id}/groups` (CreateSecurityGroup): a blank name gets
/// the default one ("Security group N").
pub async fn create(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    form: Form<NewGroup>,
) -> HttpResponse {
    let id = path.into_inner().network_id;
    let name = form.0.name.trim().to_string();
    let b = CreateGroup {
        name: (!name.is_empty()).then(|| name.clone()),
        settings: None,
    };
    audit.body(&b);
    match groups::create_group(&state, &audit, id.clone(), b).await {
        Ok(g) => see_other(
            &format!("{PREFIX}/networks/{id}/groups/{}", g.group.id),
            Some(&format!(
                "Security group {} created with the default settings; change them on its tabs.",
                g.group.name
            )),
        ),
        Err(e) if e.kind == crate::error::Kind::NotFound => refusal(&req, &e),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            page(
                &console,
                &state,
                &req,
                &caller,
                &id,
                status,
                &name,
                Some(&e),
            )
        }
    }
}
