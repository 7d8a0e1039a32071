//! Console: the team directory of a network (ListUsers) — search, filters by status and
//! security group, and paging by cursor, which stays as fast on the last page of 100,000
//! users as on the first (the store reads one page from the cursor, never an offset).

use super::Console;
use super::page::{PageContext, refusal, render};
use crate::admin::AdminState;
use crate::admin::api::PageQuery;
use crate::auth::{Action, Caller, permission};
use crate::directory::user::{self, UserKind};
use crate::directory::{group, network};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use std::collections::HashMap;

/// Rows per page.
pub const PAGE: usize = 50;

#[derive(Deserialize)]
pub struct NetworkPath {
    network_id: String,
}

#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    search: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    cursor: String,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// `GET /console/networks/{network_id}/users`.
pub async fn list(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    q: web::Query<Filters>,
) -> HttpResponse {
    let f = q.into_inner();
    let id = path.into_inner().network_id;
    let query = PageQuery {
        status: some(&f.status),
        security_group_id: some(&f.group),
        search: some(&f.search),
        cursor: some(&f.cursor),
        limit: Some(PAGE),
    }
    .into_list_query();
    let query = match query {
        Ok(q) => q,
        Err(e) => return refusal(&req, &e),
    };
    let found = state.store.read(|tx| {
        let n = network::get(tx, &id)?;
        let groups = group::list(tx, &id)?;
        let (users, next) = user::list(tx, &id, UserKind::User, &query)?;
        Ok((n, groups, users, next))
    });
    let (n, groups, users, next) = match found {
        Ok(x) => x,
        Err(e) => return refusal(&req, &e),
    };
    let group_names: HashMap<&str, &str> = groups
        .iter()
        .map(|g| (g.id.as_str(), g.name.as_str()))
        .collect();
    let rows: Vec<serde_json::Value> = users
        .iter()
        .map(|u| {
            let v = u.view();
            serde_json::json!({
                "id": v.id, "username": v.username,
                "name": format!("{} {}", v.first_name, v.last_name).trim(),
                "status": v.status,
                "group": group_names.get(v.security_group_id.as_str()).copied().unwrap_or("?"),
                "last_login": v.last_login_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()),
            })
        })
        .collect();
    let filters = url_encode(&[
        ("search", f.search.as_str()),
        ("status", f.status.as_str()),
        ("group", f.group.as_str()),
    ]);
    let first_link = format!("/console/networks/{id}/users?{filters}");
    let next_link = next
        .as_deref()
        .map(|last| format!("{first_link}&cursor={}", hex::encode(last)));
    let filtered =
        some(&f.search).is_some() || some(&f.status).is_some() || some(&f.group).is_some();
    let mut p = PageContext::new(
        &console,
        &req,
        &format!("Team directory — {}", n.name),
        console.appliance_banner(),
    );
    p.insert("section", "networks")
        .insert("network", &n)
        .insert("users", &rows)
        .insert("groups", &groups)
        .insert("search", f.search.trim())
        .insert("status", f.status.trim())
        .insert("group", f.group.trim())
        .insert("filtered", &filtered)
        .insert("continued", &some(&f.cursor).is_some())
        .insert("next", &next_link)
        .insert("first", &first_link)
        .insert(
            "may_invite",
            &permission::allows(caller.admin.role, Action::CreateUser),
        )
        .insert(
            "may_bulk",
            &permission::allows(caller.admin.role, Action::GetUsersCount),
        )
        .insert(
            "may_export",
            &permission::allows(caller.admin.role, Action::ExportUsers),
        )
        .insert("invite", &super::users::Invite::default());
    render(&console, &req, "console/directory.html", StatusCode::OK, &p)
}

fn url_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .trim()
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}
