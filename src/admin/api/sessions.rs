//! Admin API: signing in and out, and changing one's own password.

use super::State;
use crate::admin::AdminState;
use crate::admin::guard::{Audit, source_ip, user_agent};
use crate::admin::response::{JsonBody, created, ok};
use crate::auth::admin::{self as admins, AdminView};
use crate::auth::{Caller, password, session};
use crate::config::Secret;
use crate::error::{Error, FieldProblem, Result};
use crate::metrics;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionCreated {
    /// Bearer token for `Authorization: Bearer …`; shown only here.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// If true, the only thing this session may do is ChangeAdminPassword.
    pub must_change_password: bool,
    pub admin: AdminView,
}

fn bad_credentials() -> Error {
    Error::unauthorized(
        "invalid_credentials",
        "the username or password is incorrect",
    )
}

#[utoipa::path(post, path = "/sessions", operation_id = "CreateAdminSession", tag = "sessions",
    request_body = SignIn, security(()),
    responses((status = 201, body = SessionCreated)))]
pub async fn create(
    state: State,
    audit: Audit,
    req: HttpRequest,
    body: JsonBody<SignIn>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let b = body.into_inner();
    let s = open_session(&state, &audit, &req, &b.username, b.password.expose()).await?;
    Ok(created(&s))
}

/// Sign an admin in (CreateAdminSession, for the API and the console): the per-address
/// rate limit, the password check with the account lock, and the new session.
pub async fn open_session(
    state: &AdminState,
    audit: &Audit,
    req: &HttpRequest,
    username: &str,
    password: &str,
) -> Result<SessionCreated> {
    if let Some(ip) = req.peer_addr().map(|a| a.ip())
        && let Err(wait) = state.limiter.check(ip)
    {
        metrics::admin::LOGINS
            .with_label_values(&["rate_limited"])
            .inc();
        return Err(Error::new(
            crate::error::Kind::RateLimited,
            "rate_limited",
            format!(
                "too many sign-in attempts from {ip}; try again in {wait} second{}",
                if wait == 1 { "" } else { "s" }
            ),
        )
        .with_retry_after(wait));
    }
    let found = state.store.read(|tx| admins::by_username(tx, username))?;
    let Some(admin) = found else {
        let pw = password.to_string();
        let _ = web::block(move || password::verify_dummy(&pw)).await;
        metrics::admin::LOGINS.with_label_values(&["failure"]).inc();
        return Err(bad_credentials());
    };
    audit.caller(&Caller {
        admin: admin.clone(),
        session_key: String::new(),
    });
    let (pw, phc) = (password.to_string(), admin.password_hash.clone());
    let good = super::blocking("password check", move || password::verify(&pw, &phc)).await?;
    // A lock is revealed only to someone who knows the password, so that answers
    // never tell which usernames exist; wrong guesses while locked count for nothing.
    if admin.is_locked(Utc::now()) {
        if !good {
            metrics::admin::LOGINS.with_label_values(&["failure"]).inc();
            return Err(bad_credentials());
        }
        metrics::admin::LOGINS.with_label_values(&["locked"]).inc();
        let until = admin.locked_until.expect("locked means a time");
        let wait = (until - Utc::now()).num_seconds().max(1) as u64;
        return Err(Error::forbidden(
            "account_locked",
            format!(
                "this account is locked after too many failed sign-ins until {}; wait, or ask an owner to unlock it",
                until.to_rfc3339()
            ),
        )
        .with_retry_after(wait));
    }
    let cfg = state.config.admin.clone();
    if !good {
        metrics::admin::LOGINS.with_label_values(&["failure"]).inc();
        let id = admin.id.clone();
        state
            .store
            .write(move |tx| {
                admins::record_failure(
                    tx,
                    &id,
                    cfg.lockout_threshold,
                    chrono::Duration::minutes(cfg.lockout_minutes as i64),
                )
            })
            .await?;
        return Err(bad_credentials());
    }
    let source = source_ip(req);
    let ua = user_agent(req.headers());
    let id = admin.id.clone();
    let (token, s, admin) = audit
        .write(&state.store, 201, move |tx| {
            let a = admins::record_success(tx, &id)?;
            let (token, s) = session::create(
                tx,
                &a,
                chrono::Duration::hours(cfg.session_hours as i64),
                &source,
                &ua,
            )?;
            Ok((token, s, a))
        })
        .await?;
    metrics::admin::LOGINS.with_label_values(&["success"]).inc();
    Ok(SessionCreated {
        token,
        expires_at: s.expires_at,
        must_change_password: admin.must_change_password,
        admin: admin.view(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentSession {
    pub admin: AdminView,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[utoipa::path(get, path = "/sessions/current", operation_id = "GetAdminSession", tag = "sessions",
    responses((status = 200, body = CurrentSession)))]
pub async fn current(state: State, caller: Caller) -> Result<HttpResponse> {
    let s = state
        .store
        .read(|tx| session::SESSIONS.get(tx, caller.session_key.as_bytes()))?
        .ok_or_else(|| {
            Error::unauthorized("token_invalid", "the session has ended; sign in again")
        })?;
    Ok(ok(&CurrentSession {
        admin: caller.admin.view(),
        expires_at: s.expires_at,
        created_at: s.created_at,
    }))
}

#[utoipa::path(delete, path = "/sessions/current", operation_id = "DeleteAdminSession", tag = "sessions",
    responses((status = 204, description = "Signed out")))]
pub async fn delete(state: State, audit: Audit, caller: Caller) -> Result<HttpResponse> {
    let key = caller.session_key.clone();
    audit
        .write(&state.store, 204, move |tx| session::delete(tx, &key))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: Secret,
    /// At least 12 characters, not the username.
    pub new_password: Secret,
}

#[utoipa::path(post, path = "/me/password", operation_id = "ChangeAdminPassword", tag = "sessions",
    request_body = ChangePassword,
    responses((status = 200, body = AdminView, description = "Changed; other sessions of this account ended")))]
pub async fn change_password(
    state: State,
    audit: Audit,
    caller: Caller,
    body: JsonBody<ChangePassword>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let b = body.into_inner();
    let a = set_own_password(
        &state,
        &audit,
        &caller,
        b.current_password.expose(),
        b.new_password.expose(),
    )
    .await?;
    Ok(ok(&a.view()))
}

/// Change the caller's own password (ChangeAdminPassword, for the API and the
/// console): the rules, the current password, and the end of the account's other
/// sessions.
pub async fn set_own_password(
    state: &AdminState,
    audit: &Audit,
    caller: &Caller,
    current: &str,
    new: &str,
) -> Result<admins::Admin> {
    if let Some(problem) = password::admin_password_problem(&caller.admin.username, new) {
        return Err(Error::validation(vec![FieldProblem::new(
            "new_password",
            problem,
        )]));
    }
    if new == current {
        return Err(Error::validation(vec![FieldProblem::new(
            "new_password",
            "must differ from the current password",
        )]));
    }
    let (cur, phc) = (current.to_string(), caller.admin.password_hash.clone());
    let new = new.to_string();
    let (good, new_hash) = super::blocking("password hashing", move || {
        (password::verify(&cur, &phc), password::hash(&new))
    })
    .await?;
    if !good {
        return Err(Error::forbidden(
            "current_password_incorrect",
            "the current password is incorrect",
        ));
    }
    let new_hash = new_hash?;
    let (id, keep) = (caller.admin.id.clone(), caller.session_key.clone());
    audit
        .write(&state.store, 200, move |tx| {
            let mut a = admins::get(tx, &id)?;
            a.password_hash = new_hash.clone();
            a.must_change_password = false;
            let a = admins::save(tx, a)?;
            session::delete_all_for(tx, &id, Some(&keep))?;
            Ok(a)
        })
        .await
}
