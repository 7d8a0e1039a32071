//! Console: a network's bots (ListBots) — creating one (CreateBot, with an API token
//! shown once, or a password), suspending, unsuspending and issuing a new token
//! (UpdateBot), and deleting one (DeleteBot: the typed word `confirm` and the admin's
//! password).

use super::form::Form;
use super::outcome::{self, some};
use super::page::{PageContext, refusal, render, see_other, with_error};
use super::user::typed_confirm;
use super::{Console, PREFIX, reauth};
use crate::admin::AdminState;
use crate::admin::api::bots::{self, BotCredentials, CreateBot, UpdateBot};
use crate::admin::api::{BotPath, NetworkPath, PageQuery};
use crate::admin::guard::Audit;
use crate::auth::{Action, Caller, permission};
use crate::config::Secret;
use crate::directory::user::{self, UserKind};
use crate::directory::{group, network};
use crate::error::{Error, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Bots per page.
pub const PAGE: usize = 50;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct NewBot {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    group: String,
    #[serde(default, skip_serializing)]
    password: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct Paging {
    #[serde(default)]
    cursor: String,
}

struct Shown<'a> {
    cursor: &'a str,
    form: &'a NewBot,
    issued: Option<&'a BotCredentials>,
    error: Option<&'a Error>,
}

fn page(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    nid: &str,
    status: StatusCode,
    s: Shown,
) -> HttpResponse {
    let query = PageQuery {
        cursor: some(s.cursor),
        limit: Some(PAGE),
        ..Default::default()
    }
    .into_list_query();
    let query = match query {
        Ok(q) => q,
        Err(e) => return refusal(req, &e),
    };
    let found = state.store.read(|tx| {
        let n = network::get(tx, nid)?;
        let groups = group::list(tx, nid)?;
        let (bots, next) = user::list(tx, nid, UserKind::Bot, &query)?;
        Ok((n, groups, bots, next))
    });
    let (n, groups, bots, next) = match found {
        Ok(x) => x,
        Err(e) => return refusal(req, &e),
    };
    let names: HashMap<&str, &str> = groups
        .iter()
        .map(|g| (g.id.as_str(), g.name.as_str()))
        .collect();
    let rows: Vec<serde_json::Value> = bots
        .iter()
        .map(|b| {
            let v = b.view();
            serde_json::json!({
                "id": v.id, "username": v.username, "display_name": v.display_name,
                "status": v.status,
                "group": names.get(v.security_group_id.as_str()).copied().unwrap_or("?"),
                "credential": if v.has_token { "API token" } else if v.has_password { "password" } else { "none" },
                "created": outcome::time(&v.created_at),
            })
        })
        .collect();
    let may = |a: Action| permission::allows(caller.admin.role, a);
    let first = format!("{PREFIX}/networks/{nid}/bots");
    let mut p = PageContext::new(
        console,
        req,
        &format!("Bots — {}", n.name),
        console.appliance_banner(),
    );
    p.insert("section", "networks")
        .insert("network", &n)
        .insert("groups", &groups)
        .insert("bots", &rows)
        .insert("continued", &some(s.cursor).is_some())
        .insert("first", &first)
        .insert(
            "next",
            &next
                .as_deref()
                .map(|last| format!("{first}?cursor={}", hex::encode(last))),
        )
        .insert("form", s.form)
        .insert("issued", &s.issued)
        .insert("error", &s.error.map(|e| e.message.clone()))
        .insert(
            "problems",
            &s.error.map(outcome::problems).unwrap_or_default(),
        )
        .insert("may_create", &may(Action::CreateBot))
        .insert("may_update", &may(Action::UpdateBot))
        .insert("may_delete", &may(Action::DeleteBot));
    let res = render(console, req, "console/bots.html", status, &p);
    match s.error {
        Some(e) => with_error(res, e),
        None => res,
    }
}

/// `GET /console/networks/{network_id}/bots` (ListBots).
pub async fn list(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    q: web::Query<Paging>,
) -> HttpResponse {
    let shown = Shown {
        cursor: &q.cursor,
        form: &NewBot::default(),
        issued: None,
        error: None,
    };
    page(
        &console,
        &state,
        &req,
        &caller,
        &path.network_id,
        StatusCode::OK,
        shown,
    )
}

#[allow(clippy::too_many_arguments)]
fn done(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    nid: &str,
    form: &NewBot,
    r: Result<BotCredentials, Error>,
    status: StatusCode,
) -> HttpResponse {
    match r {
        // A new token is shown on the page itself, once: never in a cookie or a URL.
        Ok(c) if c.token.is_some() => {
            let shown = Shown {
                cursor: "",
                form: &NewBot::default(),
                issued: Some(&c),
                error: None,
            };
            page(console, state, req, caller, nid, status, shown)
        }
        Ok(c) => see_other(
            &format!("{PREFIX}/networks/{nid}/bots"),
            Some(&format!("Saved {}.", c.bot.username)),
        ),
        Err(e) if e.kind == Kind::NotFound => refusal(req, &e),
        Err(e) => {
            let shown = Shown {
                cursor: "",
                form,
                issued: None,
                error: Some(&e),
            };
            page(
                console,
                state,
                req,
                caller,
                nid,
                outcome::status_of(&e),
                shown,
            )
        }
    }
}

/// `POST /console/networks/{network_id}/bots` (CreateBot).
pub async fn create(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    form: Form<NewBot>,
) -> HttpResponse {
    let nid = path.into_inner().network_id;
    let f = form.0;
    let b = CreateBot {
        username: f.username.trim().to_string(),
        display_name: some(&f.display_name),
        security_group_id: some(&f.group),
        password: (!f.password.is_empty()).then(|| Secret::new(f.password.clone())),
    };
    audit.body(&b);
    let r = bots::create_bot(&state, &audit, nid.clone(), b).await;
    done(
        &console,
        &state,
        &req,
        &caller,
        &nid,
        &f,
        r,
        StatusCode::CREATED,
    )
}

#[derive(Debug, Deserialize)]
pub struct Change {
    /// `suspend`, `unsuspend` or `token`.
    #[serde(default)]
    change: String,
}

/// `POST /console/networks/{network_id}/bots/{bot_id}/update` (UpdateBot): suspend,
/// unsuspend, or a new API token (which ends the bot's sessions).
pub async fn update(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<BotPath>,
    form: Form<Change>,
) -> HttpResponse {
    let p = path.into_inner();
    let nid = p.network_id.clone();
    let mut b = UpdateBot {
        display_name: None,
        security_group_id: None,
        password: None,
        regenerate_token: None,
        suspended: None,
    };
    match form.0.change.as_str() {
        "suspend" => b.suspended = Some(true),
        "unsuspend" => b.suspended = Some(false),
        "token" => b.regenerate_token = Some(true),
        other => {
            let e = Error::bad_request(
                "invalid_form",
                format!("{other:?} is not a change this page makes"),
            );
            return refusal(&req, &e);
        }
    }
    audit.body(&b);
    let r = bots::update_bot(&state, &audit, p, b).await;
    done(
        &console,
        &state,
        &req,
        &caller,
        &nid,
        &NewBot::default(),
        r,
        StatusCode::OK,
    )
}

#[derive(Debug, Deserialize)]
pub struct Destroy {
    #[serde(default)]
    bot_id: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    password: String,
}

/// `POST /console/networks/{network_id}/bots/delete` (DeleteBot; the bot is chosen in
/// the form).
pub async fn delete(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    form: Form<Destroy>,
) -> HttpResponse {
    let nid = path.into_inner().network_id;
    let f = form.0;
    let p = BotPath {
        network_id: nid.clone(),
        bot_id: f.bot_id.clone(),
    };
    audit.param("bot_id", f.bot_id.clone());
    audit.param("confirm", f.confirm.clone());
    let checked = match reauth::confirm(&caller, &f.password).await {
        Ok(()) => typed_confirm(&f.confirm),
        Err(e) => Err(e),
    };
    let r = match checked {
        Ok(()) => bots::delete_bot(&state, &audit, p).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(b) => see_other(
            &format!("{PREFIX}/networks/{nid}/bots"),
            Some(&format!("Bot {} was deleted.", b.username)),
        ),
        Err(e) if e.kind == Kind::NotFound => refusal(&req, &e),
        Err(e) => {
            let shown = Shown {
                cursor: "",
                form: &NewBot::default(),
                issued: None,
                error: Some(&e),
            };
            page(
                &console,
                &state,
                &req,
                &caller,
                &nid,
                outcome::status_of(&e),
                shown,
            )
        }
    }
}
