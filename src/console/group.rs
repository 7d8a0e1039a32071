//! Console: one security group's page — a tab per part of its policy (one URL each,
//! `?tab=messaging`, so they work without JavaScript), each setting with its help text
//! and limits; saving a tab sends the same partial update as the API's
//! UpdateSecurityGroup, so the same values are refused with the same messages, shown next
//! to their fields. The details tab renames the group and deletes it (the typed word
//! `confirm` and the admin's password; its members move to the default group).

use super::fields::{self, Listed};
use super::form::Form;
use super::group_tabs::{self, TABS};
use super::page::{PageContext, refusal, render, see_other, with_error};
use super::{Console, PREFIX, reauth};
use crate::admin::AdminState;
use crate::admin::api::groups::{self, UpdateGroup};
use crate::admin::guard::Audit;
use crate::auth::{Action, Caller, permission};
use crate::directory::{group, network};
use crate::error::{Error, FieldProblem, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
pub struct GroupPath {
    network_id: String,
    group_id: String,
}

#[derive(Deserialize, Default)]
pub struct TabQuery {
    #[serde(default)]
    tab: String,
}

/// What a refused form leaves on the page it answers with.
#[derive(Default)]
struct Refused<'a> {
    error: Option<&'a Error>,
    typed: Option<&'a HashMap<String, String>>,
    problems: Vec<FieldProblem>,
    /// The refusal is the delete form's.
    delete: bool,
}

#[allow(clippy::too_many_arguments)]
fn page(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    p: &GroupPath,
    tab_name: &str,
    status: StatusCode,
    refused: Refused<'_>,
) -> HttpResponse {
    let found = state
        .store
        .read(|tx| network::get(tx, &p.network_id))
        .and_then(|n| Ok((n, groups::get_group(state, &p.network_id, &p.group_id)?)));
    let (n, g) = match found {
        Ok(x) => x,
        Err(e) => return refusal(req, &e),
    };
    let tab = group_tabs::tab(tab_name);
    let settings = serde_json::to_value(&g.group.settings).unwrap_or_default();
    let shown = fields::show(
        tab.fields,
        &settings,
        refused.typed,
        &refused.problems,
        "settings",
    );
    let mut summary: Vec<Listed> = fields::listed(tab.fields, "settings", &refused.problems);
    if tab.name == "details" {
        // The only field of the details tab is the name.
        for l in &mut summary {
            if l.label == "name" {
                l.target = Some("group-name".into());
                l.label = "Name".into();
            }
        }
    }
    let tabs: Vec<serde_json::Value> = TABS
        .iter()
        .map(|t| {
            serde_json::json!({
                "name": t.name, "title": t.title, "current": t.name == tab.name,
                "href": format!("{PREFIX}/networks/{}/groups/{}?tab={}", n.id, g.group.id, t.name),
            })
        })
        .collect();
    let may = |a: Action| permission::allows(caller.admin.role, a);
    let typed_name = refused
        .typed
        .and_then(|t| t.get("name").cloned())
        .unwrap_or_else(|| g.group.name.clone());
    let mut ctx = PageContext::new(
        console,
        req,
        &format!("{} — {}", g.group.name, tab.title),
        console.appliance_banner(),
    );
    ctx.insert("section", "networks")
        .insert("network", &n)
        .insert("group", &g)
        .insert(
            "created_at",
            &g.group.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
        .insert("tabs", &tabs)
        .insert("tab", tab.name)
        .insert("tab_title", tab.title)
        .insert("tab_intro", tab.intro)
        .insert("fields", &shown)
        .insert("problems", &(!refused.delete).then_some(&summary))
        .insert(
            "delete_error",
            &refused
                .delete
                .then(|| refused.error.map(|e| e.message.clone())),
        )
        .insert("name_value", &typed_name)
        .insert("name_max", &group::NAME_MAX)
        .insert("may_edit", &may(Action::UpdateSecurityGroup))
        .insert(
            "may_delete",
            &(may(Action::DeleteSecurityGroup) && !g.group.is_default),
        );
    let res = render(console, req, "console/group.html", status, &ctx);
    match refused.error {
        Some(e) => with_error(res, e),
        None => res,
    }
}

fn status_of(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
}

/// `GET /console/networks/{network_id}/groups/{group_id}?tab=…` (GetSecurityGroup).
pub async fn show(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<GroupPath>,
    q: web::Query<TabQuery>,
) -> HttpResponse {
    page(
        &console,
        &state,
        &req,
        &caller,
        &path,
        &q.tab,
        StatusCode::OK,
        Refused::default(),
    )
}

/// `POST /console/networks/{network_id}/groups/{group_id}` (UpdateSecurityGroup): the
/// form of one tab (`_tab`), the name on the details tab.
pub async fn update(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<GroupPath>,
    form: Form<HashMap<String, String>>,
) -> HttpResponse {
    let p = path.into_inner();
    let typed = form.0;
    let tab = group_tabs::tab(typed.get("_tab").map(String::as_str).unwrap_or(""));
    let b = if tab.name == "details" {
        let name = typed.get("name").cloned().unwrap_or_default();
        UpdateGroup {
            name: Some(name.trim().to_string()),
            settings: None,
        }
    } else {
        let (patch, problems) = fields::patch_of(tab.fields, &typed, "settings");
        audit.param("settings", patch.clone());
        if !problems.is_empty() {
            let e = Error::validation(problems.clone());
            let refused = Refused {
                error: Some(&e),
                typed: Some(&typed),
                problems,
                delete: false,
            };
            let status = status_of(&e);
            return page(
                &console, &state, &req, &caller, &p, tab.name, status, refused,
            );
        }
        UpdateGroup {
            name: None,
            settings: Some(patch),
        }
    };
    if let Some(name) = &b.name {
        audit.param("name", name.clone());
    }
    let (nid, gid) = (p.network_id.clone(), p.group_id.clone());
    match groups::update_group(&state, &audit, nid, gid, b).await {
        Ok(g) => see_other(
            &format!(
                "{PREFIX}/networks/{}/groups/{}?tab={}",
                p.network_id, p.group_id, tab.name
            ),
            Some(&if tab.name == "details" {
                format!("Security group renamed to {}.", g.group.name)
            } else {
                format!("{} settings of {} saved.", tab.title, g.group.name)
            }),
        ),
        Err(e) if e.kind == Kind::NotFound => refusal(&req, &e),
        Err(e) => {
            let problems = fields::problems_of(&e);
            let refused = Refused {
                error: Some(&e),
                typed: Some(&typed),
                problems,
                delete: false,
            };
            page(
                &console,
                &state,
                &req,
                &caller,
                &p,
                tab.name,
                status_of(&e),
                refused,
            )
        }
    }
}

#[derive(Deserialize)]
pub struct Delete {
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    password: String,
}

/// `POST /console/networks/{network_id}/groups/{group_id}/delete` (DeleteSecurityGroup):
/// the typed word and the admin's password.
pub async fn delete(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<GroupPath>,
    form: Form<Delete>,
) -> HttpResponse {
    let p = path.into_inner();
    let f = form.0;
    audit.param("confirm", f.confirm.clone());
    let name = state
        .store
        .read(|tx| group::get(tx, &p.network_id, &p.group_id))
        .map(|g| g.name)
        .unwrap_or_default();
    let done = match reauth::confirm(&caller, &f.password).await {
        Ok(()) => {
            groups::delete_group(
                &state,
                &audit,
                p.network_id.clone(),
                p.group_id.clone(),
                Some(f.confirm),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match done {
        Ok(r) => see_other(
            &format!("{PREFIX}/networks/{}/groups", p.network_id),
            Some(&format!(
                "Security group {name} deleted; its {} member(s) moved to the default group.",
                r.moved_members
            )),
        ),
        Err(e) if e.kind == Kind::NotFound => refusal(&req, &e),
        Err(e) => {
            let refused = Refused {
                error: Some(&e),
                typed: None,
                problems: Vec::new(),
                delete: true,
            };
            page(
                &console,
                &state,
                &req,
                &caller,
                &p,
                "details",
                status_of(&e),
                refused,
            )
        }
    }
}
