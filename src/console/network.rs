//! Console: one network's details — name, id, tags — with renaming, tagging and deleting
//! (GetNetwork, UpdateNetwork, TagResource, UntagResource, DeleteNetwork). Deleting
//! needs the typed word `confirm` and the admin's password.

use super::form::Form;
use super::page::{Banner, PageContext, refusal, render, see_other, with_error};
use super::{Console, PREFIX, reauth};
use crate::admin::AdminState;
use crate::admin::api::networks;
use crate::admin::guard::Audit;
use crate::auth::{Action, Caller, permission};
use crate::directory::network;
use crate::error::Error;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
pub struct NetworkPath {
    network_id: String,
}

fn page(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    id: &str,
    status: StatusCode,
    error: Option<&Error>,
) -> HttpResponse {
    let n = match state.store.read(|tx| network::get(tx, id)) {
        Ok(n) => n,
        Err(e) => return refusal(req, &e),
    };
    let may = |a: Action| permission::allows(caller.admin.role, a);
    let mut p = PageContext::new(console, req, &n.name, console.appliance_banner());
    p.insert("section", "networks")
        .insert("banner_tag", &Banner::of(&n.settings.classification))
        .insert("network", &n)
        .insert("may_edit", &may(Action::UpdateNetwork))
        .insert("may_tag", &may(Action::TagResource))
        .insert("may_delete", &may(Action::DeleteNetwork))
        // Links only to the pages the role may open (a compliance officer sees policies).
        .insert("may_users", &may(Action::ListUsers))
        .insert("may_policies", &may(Action::GetNetworkSettings))
        .insert("may_groups", &may(Action::ListSecurityGroups))
        .insert("may_bots", &may(Action::ListBots))
        .insert("may_analytics", &may(Action::GetAnalytics))
        .insert("error", &error.map(|e| e.message.clone()));
    let res = render(console, req, "console/network.html", status, &p);
    match error {
        Some(e) => with_error(res, e),
        None => res,
    }
}

fn answer(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    id: &str,
    done: Result<String, Error>,
) -> HttpResponse {
    match done {
        Ok(flash) => see_other(&format!("{PREFIX}/networks/{id}"), Some(&flash)),
        Err(e) if e.kind == crate::error::Kind::NotFound => refusal(req, &e),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            page(console, state, req, caller, id, status, Some(&e))
        }
    }
}

/// `GET /console/networks/{network_id}`.
pub async fn show(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
) -> HttpResponse {
    page(
        &console,
        &state,
        &req,
        &caller,
        &path.network_id,
        StatusCode::OK,
        None,
    )
}

#[derive(Deserialize)]
pub struct Rename {
    #[serde(default)]
    name: String,
}

/// `POST /console/networks/{network_id}/rename` (UpdateNetwork).
pub async fn rename(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    form: Form<Rename>,
) -> HttpResponse {
    let id = path.into_inner().network_id;
    let name = form.0.name.trim().to_string();
    audit.param("name", name.clone());
    let done = networks::rename_network(&state, &audit, id.clone(), name)
        .await
        .map(|n| format!("Renamed to {}.", n.name));
    answer(&console, &state, &req, &caller, &id, done)
}

#[derive(Deserialize)]
pub struct Tag {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
}

/// `POST /console/networks/{network_id}/tags` (TagResource).
pub async fn tag(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    form: Form<Tag>,
) -> HttpResponse {
    let id = path.into_inner().network_id;
    let (key, value) = (
        form.0.key.trim().to_string(),
        form.0.value.trim().to_string(),
    );
    audit.param("tags", serde_json::json!({ &key: &value }));
    let tags = BTreeMap::from([(key.clone(), value)]);
    let done = networks::tag_network(&state, &audit, id.clone(), tags)
        .await
        .map(|_| format!("Tag {key} saved."));
    answer(&console, &state, &req, &caller, &id, done)
}

#[derive(Deserialize)]
pub struct Untag {
    #[serde(default)]
    key: String,
}

/// `POST /console/networks/{network_id}/tags/remove` (UntagResource).
pub async fn untag(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    form: Form<Untag>,
) -> HttpResponse {
    let id = path.into_inner().network_id;
    let key = form.0.key;
    audit.param("key", key.clone());
    let done = networks::untag_network(&state, &audit, id.clone(), key.clone())
        .await
        .map(|_| format!("Tag {key} removed."));
    answer(&console, &state, &req, &caller, &id, done)
}

#[derive(Deserialize)]
pub struct Delete {
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    password: String,
}

/// `POST /console/networks/{network_id}/delete` (DeleteNetwork): the typed word and the
/// admin's password.
pub async fn delete(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    form: Form<Delete>,
) -> HttpResponse {
    let id = path.into_inner().network_id;
    let f = form.0;
    audit.param("confirm", f.confirm.clone());
    if let Err(e) = reauth::confirm(&caller, &f.password).await {
        return answer(&console, &state, &req, &caller, &id, Err(e));
    }
    match networks::delete_network(&state, &audit, id.clone(), Some(f.confirm)).await {
        Ok(_) => see_other(
            &format!("{PREFIX}/networks"),
            Some(&format!(
                "Network {id} deleted. Its retained data, if any, is kept."
            )),
        ),
        Err(e) => answer(&console, &state, &req, &caller, &id, Err(e)),
    }
}
