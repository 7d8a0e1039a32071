//! Console: inviting one user (CreateUser) from the team directory, and the directory's
//! CSV files — the export of everyone (ExportUsers) and the bulk templates
//! (GetUserTemplate). The invitation's link is shown once when mail is off, as the API
//! returns it; with mail on, the invitation mail is queued in the same commit.

use super::form::Form;
use super::outcome::{self, some};
use super::page::{self, PageContext, refusal, render, see_other, with_error};
use super::{Console, PREFIX};
use crate::admin::AdminState;
use crate::admin::api::NetworkPath;
use crate::admin::api::users::{self, CreateUser, TemplatePath};
use crate::admin::guard::Audit;
use crate::auth::Caller;
use crate::directory::{group, network};
use crate::error::{Error, Kind};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

/// The invite form's fields (also what the page shows again after a refusal).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Invite {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub country_code: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub group: String,
}

/// The refused invitation, shown again with what was wrong.
fn refused(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    nid: &str,
    form: &Invite,
    e: &Error,
) -> HttpResponse {
    let found = state
        .store
        .read(|tx| Ok((network::get(tx, nid)?, group::list(tx, nid)?)));
    let (n, groups) = match found {
        Ok(x) => x,
        Err(e) => return refusal(req, &e),
    };
    let mut p = PageContext::new(
        console,
        req,
        &format!("Invite a user — {}", n.name),
        console.appliance_banner(),
    );
    p.insert("section", "networks")
        .insert("network", &n)
        .insert("groups", &groups)
        .insert("invite", form)
        .insert("error", &e.message)
        .insert("problems", &outcome::problems(e));
    let res = render(
        console,
        req,
        "console/invite.html",
        outcome::status_of(e),
        &p,
    );
    with_error(res, e)
}

/// `POST /console/networks/{network_id}/users/invite` (CreateUser, without a password:
/// the person registers through the invitation).
pub async fn invite(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    form: Form<Invite>,
) -> HttpResponse {
    let nid = path.into_inner().network_id;
    let f = form.0;
    let b = CreateUser {
        email: f.email.trim().to_string(),
        first_name: some(&f.first_name),
        last_name: some(&f.last_name),
        country_code: some(&f.country_code),
        phone: some(&f.phone),
        security_group_id: some(&f.group),
        password: None,
    };
    audit.body(&b);
    match users::create_user(&state, &audit, &caller, nid.clone(), b).await {
        Ok(u) => {
            let email = &u.user.username;
            let flash = match &u.invitation {
                Some(inv) => match &inv.url {
                    Some(url) => outcome::with_link(
                        &format!("Invited {email}."),
                        &format!(
                            "Mail is off: give them this registration link (it works once, \
                             until {}): {url}",
                            outcome::time(&inv.expires_at)
                        ),
                    ),
                    None => format!(
                        "Invited {email}: the invitation mail is queued (the link works \
                         until {}).",
                        outcome::time(&inv.expires_at)
                    ),
                },
                None => format!("Added {email}: they sign in through single sign-on."),
            };
            see_other(
                &format!("{PREFIX}/networks/{nid}/users/{}", u.user.id),
                Some(&flash),
            )
        }
        Err(e) if e.kind == Kind::NotFound && e.code == "network_not_found" => refusal(&req, &e),
        Err(e) => refused(&console, &state, &req, &nid, &f, &e),
    }
}

/// A CSV download with the console's headers.
fn csv(name: &str, body: Vec<u8>) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    page::headers(&mut res);
    res.content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

/// `GET /console/networks/{network_id}/users/export` (ExportUsers).
pub async fn export(
    state: web::Data<AdminState>,
    req: HttpRequest,
    path: web::Path<NetworkPath>,
) -> HttpResponse {
    let nid = path.into_inner().network_id;
    match users::export_users(&state, &nid).await {
        Ok(body) => csv(&users::export_name(&nid), body),
        Err(e) => refusal(&req, &e),
    }
}

/// `GET /console/networks/{network_id}/users/templates/{action}` (GetUserTemplate).
pub async fn template(
    state: web::Data<AdminState>,
    req: HttpRequest,
    path: web::Path<TemplatePath>,
) -> HttpResponse {
    match users::user_template(&state, &path.network_id, &path.action) {
        Ok((name, body)) => csv(&name, body),
        Err(e) => refusal(&req, &e),
    }
}
