//! Console: bulk changes by CSV file — invite, suspend or delete many users at once
//! (BatchCreateUser, BatchSuspendUser, BatchDeleteUser) with the same parsing and the
//! same all-or-nothing rule as the API: a file with any bad row changes nothing, and
//! the answer is the row-by-row report of every problem. Deleting needs the
//! irreversibility checkbox and the admin's password. The page (GetUsersCount) shows
//! how many users the directory holds and links the templates.

use super::cookie::{self, CSRF_FIELD};
use super::multipart;
use super::outcome;
use super::page::{PageContext, refusal, render, with_error};
use super::{Console, reauth};
use crate::admin::AdminState;
use crate::admin::api::NetworkPath;
use crate::admin::api::invitations::Inviting;
use crate::admin::api::users;
use crate::admin::guard::Audit;
use crate::admin::response::read_body;
use crate::auth::{Action, Caller, permission};
use crate::directory::bulk::{BulkAction, BulkResult, CsvReport};
use crate::directory::network::{self, Network};
use crate::directory::user::{self, UserKind};
use crate::error::{Error, Kind};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

fn action_name(a: BulkAction) -> &'static str {
    match a {
        BulkAction::Invite => "invite",
        BulkAction::Delete => "delete",
        BulkAction::Suspend => "suspend",
    }
}

struct Outcome<'a> {
    action: Option<BulkAction>,
    file: &'a str,
    result: Option<&'a BulkResult>,
    error: Option<&'a Error>,
}

fn page(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    n: &Network,
    status: StatusCode,
    o: Outcome,
) -> HttpResponse {
    let counts = match state
        .store
        .read(|tx| user::counts(tx, &n.id, UserKind::User))
    {
        Ok(c) => c,
        Err(e) => return refusal(req, &e),
    };
    let total: i64 = counts.iter().map(|(_, c)| c).sum();
    let may = |a: Action| permission::allows(caller.admin.role, a);
    let report = o.error.and_then(|e| {
        (e.code == "csv_invalid")
            .then(|| {
                e.details
                    .clone()
                    .and_then(|d| serde_json::from_value::<CsvReport>(d).ok())
            })
            .flatten()
    });
    let invitations: Vec<serde_json::Value> = o
        .result
        .map(|r| {
            r.invitations
                .iter()
                .map(|i| {
                    serde_json::json!({
                        "email": i.email, "url": i.url, "mail_id": i.mail_id,
                        "expires": outcome::time(&i.expires_at),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut p = PageContext::new(
        console,
        req,
        &format!("Bulk changes — {}", n.name),
        console.appliance_banner(),
    );
    p.insert("section", "networks")
        .insert("network", n)
        .insert("total", &total)
        .insert("action", &o.action.map(action_name))
        .insert("file", o.file)
        .insert("result", &o.result)
        .insert("invitations", &invitations)
        .insert("error", &o.error.map(|e| e.message.clone()))
        .insert("report", &report)
        .insert("may_invite", &may(Action::BatchCreateUser))
        .insert("may_suspend", &may(Action::BatchSuspendUser))
        .insert("may_delete", &may(Action::BatchDeleteUser))
        .insert("may_template", &may(Action::GetUserTemplate))
        .insert("may_export", &may(Action::ExportUsers));
    let res = render(console, req, "console/bulk.html", status, &p);
    match o.error {
        Some(e) => with_error(res, e),
        None => res,
    }
}

fn network_of(state: &AdminState, id: &str) -> Result<Network, Error> {
    state.store.read(|tx| network::get(tx, id))
}

/// `GET /console/networks/{network_id}/users/bulk` (GetUsersCount).
pub async fn show(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
) -> HttpResponse {
    let n = match network_of(&state, &path.network_id) {
        Ok(n) => n,
        Err(e) => return refusal(&req, &e),
    };
    let none = Outcome {
        action: None,
        file: "",
        result: None,
        error: None,
    };
    page(&console, &state, &req, &caller, &n, StatusCode::OK, none)
}

/// Read the upload, check its CSRF token (and, to delete, the checkbox and password),
/// apply the file, and answer with the result or the report.
#[allow(clippy::too_many_arguments)]
async fn upload(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    nid: String,
    payload: web::Payload,
    action: BulkAction,
) -> HttpResponse {
    let n = match network_of(&state, &nid) {
        Ok(n) => n,
        Err(e) => return refusal(&req, &e),
    };
    // The form around the file is small; the limit is the API's upload limit.
    let limit = state.config.http.max_upload_bytes.saturating_add(64 * 1024);
    let body = match read_body(payload, limit).await {
        Ok(b) => b,
        Err(e) => return refusal(&req, &e),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let form = match multipart::parse(&content_type, &body) {
        Ok(f) => f,
        Err(e) => return refusal(&req, &e),
    };
    let session = cookie::session_token(&req).unwrap_or_default();
    if session.is_empty() || !console.csrf.check(&session, form.field(CSRF_FIELD)) {
        let e = Error::forbidden(
            "csrf_failed",
            "this form is not from your current console session (it is old, or another site \
             sent it); go back, reload the page and try again",
        );
        return refusal(&req, &e);
    }
    let (file_name, bytes) = form.files.get("file").cloned().unwrap_or_default();
    audit.param("file", file_name.clone());
    let answer = |status: StatusCode, result: Option<&BulkResult>, error: Option<&Error>| {
        let o = Outcome {
            action: Some(action),
            file: &file_name,
            result,
            error,
        };
        page(&console, &state, &req, &caller, &n, status, o)
    };
    if file_name.is_empty() && bytes.is_empty() {
        let e = Error::invalid("file_required", "choose a CSV file to upload");
        return answer(StatusCode::UNPROCESSABLE_ENTITY, None, Some(&e));
    }
    if action == BulkAction::Delete {
        let checked = if form.field("acknowledge_irreversible") != "true" {
            Err(Error::invalid(
                "acknowledgement_required",
                "deleting users is irreversible: tick the box to say you understand; nothing \
                 was changed",
            ))
        } else {
            reauth::confirm(&caller, form.field("password")).await
        };
        if let Err(e) = checked {
            return answer(outcome::status_of(&e), None, Some(&e));
        }
    }
    let how = Inviting::new(&state, &caller);
    match users::apply_bulk(&state, &audit, how, nid.clone(), bytes, action).await {
        Ok((status, result)) => answer(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            Some(&result),
            None,
        ),
        Err(e) if e.kind == Kind::NotFound && e.code == "network_not_found" => refusal(&req, &e),
        Err(e) => answer(outcome::status_of(&e), None, Some(&e)),
    }
}

/// `POST /console/networks/{network_id}/users/bulk/invite` (BatchCreateUser).
pub async fn invite(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    payload: web::Payload,
) -> HttpResponse {
    let nid = path.into_inner().network_id;
    upload(
        console,
        state,
        audit,
        req,
        caller,
        nid,
        payload,
        BulkAction::Invite,
    )
    .await
}

/// `POST /console/networks/{network_id}/users/bulk/suspend` (BatchSuspendUser).
pub async fn suspend(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    payload: web::Payload,
) -> HttpResponse {
    let nid = path.into_inner().network_id;
    upload(
        console,
        state,
        audit,
        req,
        caller,
        nid,
        payload,
        BulkAction::Suspend,
    )
    .await
}

/// `POST /console/networks/{network_id}/users/bulk/delete` (BatchDeleteUser).
pub async fn delete(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    payload: web::Payload,
) -> HttpResponse {
    let nid = path.into_inner().network_id;
    upload(
        console,
        state,
        audit,
        req,
        caller,
        nid,
        payload,
        BulkAction::Delete,
    )
    .await
}
