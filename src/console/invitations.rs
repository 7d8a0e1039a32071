//! Console: a network's pending invitations (ListUsers of pending users, with each
//! one's registration link and, for those who may read the outbox, its mail's
//! delivery), sending a new one (ReinviteUser) or revoking one (RevokeInvitation) —
//! and the appliance's mail outbox (ListMail): every mail queued, sent or failed.

use super::form::Form;
use super::outcome::{self, some};
use super::page::{PageContext, refusal, render, see_other};
use super::{Console, PREFIX};
use crate::admin::AdminState;
use crate::admin::api::invitations;
use crate::admin::api::{NetworkPath, PageQuery, UserPath};
use crate::admin::guard::Audit;
use crate::auth::{Action, Caller, permission};
use crate::directory::link::{self, Purpose};
use crate::directory::network;
use crate::directory::user::{self, UserKind};
use crate::error::Error;
use crate::mail::outbox::{self, MailStatus};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use std::collections::HashMap;

/// Rows per page.
pub const PAGE: usize = 50;
/// Mails read to find each invitation's latest mail.
const MAILS_READ: usize = 1000;

#[derive(Debug, Default, Deserialize)]
pub struct Paging {
    #[serde(default)]
    cursor: String,
}

/// `GET /console/networks/{network_id}/invitations` (ListUsers: the pending ones).
pub async fn list(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    q: web::Query<Paging>,
) -> HttpResponse {
    let nid = path.into_inner().network_id;
    let query = PageQuery {
        status: Some("pending".into()),
        cursor: some(&q.cursor),
        limit: Some(PAGE),
        ..Default::default()
    }
    .into_list_query();
    let query = match query {
        Ok(q) => q,
        Err(e) => return refusal(&req, &e),
    };
    let may_mail = permission::allows(caller.admin.role, Action::ListMail);
    let found = state.store.read(|tx| {
        let n = network::get(tx, &nid)?;
        let (users, next) = user::list(tx, &nid, UserKind::User, &query)?;
        let mut links = Vec::new();
        for u in &users {
            links.push(link::current(tx, Purpose::Invitation, &u.id)?);
        }
        let mails = if may_mail {
            outbox::list(tx, None, Some(&nid), None, MAILS_READ)?
        } else {
            Vec::new()
        };
        Ok((n, users, links, mails, next))
    });
    let (n, users, links, mails, next) = match found {
        Ok(x) => x,
        Err(e) => return refusal(&req, &e),
    };
    // Newest first: the first invitation mail of a user is their latest.
    let mut latest: HashMap<&str, &outbox::OutboxMail> = HashMap::new();
    for m in mails.iter().filter(|m| m.kind == "invitation") {
        if let Some(u) = &m.user_id {
            latest.entry(u.as_str()).or_insert(m);
        }
    }
    let now = chrono::Utc::now();
    let rows: Vec<serde_json::Value> = users
        .iter()
        .zip(&links)
        .map(|(u, l)| {
            let mail = latest.get(u.id.as_str()).map(|m| {
                serde_json::json!({
                    "status": serde_json::to_value(m.status).ok(),
                    "attempts": m.attempts,
                    "last_error": m.last_error,
                })
            });
            serde_json::json!({
                "id": u.id, "email": u.username,
                "name": format!("{} {}", u.first_name, u.last_name).trim(),
                "link": l.as_ref().map(|l| serde_json::json!({
                    "issued_by": l.issued_by,
                    "created": outcome::time(&l.created_at),
                    "expires": outcome::time(&l.expires_at),
                    "expired": l.expires_at <= now,
                })),
                "mail": mail,
            })
        })
        .collect();
    let may = |a: Action| permission::allows(caller.admin.role, a);
    let first = format!("{PREFIX}/networks/{nid}/invitations");
    let mut p = PageContext::new(
        &console,
        &req,
        &format!("Invitations — {}", n.name),
        console.appliance_banner(),
    );
    p.insert("section", "networks")
        .insert("network", &n)
        .insert("invitations", &rows)
        .insert("continued", &some(&q.cursor).is_some())
        .insert("first", &first)
        .insert(
            "next",
            &next
                .as_deref()
                .map(|last| format!("{first}?cursor={}", hex::encode(last))),
        )
        .insert("may_mail", &may_mail)
        .insert("mail_on", &state.mail.is_some())
        .insert("may_resend", &may(Action::ReinviteUser))
        .insert("may_revoke", &may(Action::RevokeInvitation));
    render(
        &console,
        &req,
        "console/invitations.html",
        StatusCode::OK,
        &p,
    )
}

#[derive(Debug, Deserialize)]
pub struct Pick {
    #[serde(default)]
    user_id: String,
}

fn back(nid: &str, done: Result<String, Error>, req: &HttpRequest) -> HttpResponse {
    match done {
        Ok(flash) => see_other(
            &format!("{PREFIX}/networks/{nid}/invitations"),
            Some(&flash),
        ),
        Err(e) => refusal(req, &e),
    }
}

/// `POST /console/networks/{network_id}/invitations/resend` (ReinviteUser).
pub async fn resend(
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    form: Form<Pick>,
) -> HttpResponse {
    let nid = path.into_inner().network_id;
    let p = UserPath {
        network_id: nid.clone(),
        user_id: form.0.user_id,
    };
    audit.param("user_id", p.user_id.clone());
    let done = invitations::reinvite_user(&state, &audit, &caller, p)
        .await
        .map(|i| super::user::invited_flash(&i));
    back(&nid, done, &req)
}

/// `POST /console/networks/{network_id}/invitations/revoke` (RevokeInvitation).
pub async fn revoke(
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    path: web::Path<NetworkPath>,
    form: Form<Pick>,
) -> HttpResponse {
    let nid = path.into_inner().network_id;
    let p = UserPath {
        network_id: nid.clone(),
        user_id: form.0.user_id,
    };
    audit.param("user_id", p.user_id.clone());
    let done = invitations::revoke_invitation(&state, &audit, p)
        .await
        .map(|u| {
            format!(
                "{}'s registration link no longer works; they stay pending until you invite \
                 them again or delete them.",
                u.username
            )
        });
    back(&nid, done, &req)
}

#[derive(Debug, Default, Deserialize)]
pub struct MailFilter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    network: String,
    #[serde(default)]
    cursor: String,
}

/// `GET /console/mail` (ListMail).
pub async fn outbox_page(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    q: web::Query<MailFilter>,
) -> HttpResponse {
    let status = match q.status.trim() {
        "" => None,
        s => match serde_json::from_value::<MailStatus>(serde_json::Value::String(s.into())) {
            Ok(s) => Some(s),
            Err(_) => {
                let e =
                    Error::bad_request("invalid_query", "status must be queued, sent or failed");
                return refusal(&req, &e);
            }
        },
    };
    let cursor = some(&q.cursor);
    if cursor
        .as_deref()
        .is_some_and(|c| uuid::Uuid::try_parse(c).is_err())
    {
        let e = Error::bad_request("invalid_cursor", "a cursor is a mail id");
        return refusal(&req, &e);
    }
    let net = some(&q.network);
    if net
        .as_deref()
        .is_some_and(|n| !crate::directory::validate::is_network_id(n))
    {
        let e = Error::bad_request("invalid_query", "network is a network's 8-digit id");
        return refusal(&req, &e);
    }
    let found = state.store.read(|tx| {
        Ok((
            outbox::list(tx, status, net.as_deref(), cursor.as_deref(), PAGE)?,
            network::list(tx)?,
        ))
    });
    let (mails, nets) = match found {
        Ok(x) => x,
        Err(e) => return refusal(&req, &e),
    };
    let names: HashMap<&str, &str> = nets
        .iter()
        .map(|n| (n.id.as_str(), n.name.as_str()))
        .collect();
    let rows: Vec<serde_json::Value> = mails
        .iter()
        .map(|m| {
            serde_json::json!({
                "kind": m.kind.replace('_', " "), "to": m.to, "subject": m.subject,
                "network": m.network_id.as_deref().map(|n| names.get(n).copied().unwrap_or(n)),
                "status": serde_json::to_value(m.status).ok(),
                "attempts": m.attempts,
                "created": outcome::time(&m.created_at),
                "sent": outcome::maybe_time(&m.sent_at),
                "next_attempt": outcome::maybe_time(&m.next_attempt_at),
                "last_error": m.last_error,
            })
        })
        .collect();
    let filter = q.status.trim().to_string();
    let net = net.unwrap_or_default();
    let first = format!("{PREFIX}/mail?status={filter}&network={net}");
    let next = (mails.len() == PAGE)
        .then(|| mails.last().map(|m| format!("{first}&cursor={}", m.id)))
        .flatten();
    let mut p = PageContext::new(&console, &req, "Mail outbox", console.appliance_banner());
    p.insert("section", "mail")
        .insert("mails", &rows)
        .insert("status", &filter)
        .insert("network", &net)
        .insert(
            "networks",
            &nets
                .iter()
                .map(|n| serde_json::json!({"id": n.id, "name": n.name}))
                .collect::<Vec<_>>(),
        )
        .insert("mail_on", &state.mail.is_some())
        .insert("continued", &cursor.is_some())
        .insert("first", &first)
        .insert("next", &next);
    render(&console, &req, "console/mail.html", StatusCode::OK, &p)
}
