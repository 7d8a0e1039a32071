//! Signing in and out of the console, the first sign-in's password change, and the
//! session timeout: the page says why it is shown (timed out, signed out). Sign-in is
//! CreateAdminSession and the password change ChangeAdminPassword, through the same
//! functions as the API, so the rate limit, the account lock and the audit are theirs.

use super::cookie::{self, CSRF_FIELD};
use super::form::Form;
use super::page::{self, PageContext, render, see_other, with_error};
use super::{Console, PREFIX};
use crate::admin::AdminState;
use crate::admin::api::sessions;
use crate::admin::guard::Audit;
use crate::auth::{Caller, session};
use crate::error::Error;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

/// `GET /console`: the networks (the guard sends whoever is not signed in to sign in).
pub async fn home() -> HttpResponse {
    see_other(&format!("{PREFIX}/networks"), None)
}

/// Unknown console paths.
pub async fn not_found(console: web::Data<Console>, req: HttpRequest) -> HttpResponse {
    let e = Error::not_found("not_found", "there is no such page in the console");
    let mut p = PageContext::new(&console, &req, "Not found", console.appliance_banner());
    p.insert("message", &e.message).insert("code", e.code);
    render(
        &console,
        &req,
        "console/error.html",
        StatusCode::NOT_FOUND,
        &p,
    )
}

#[derive(Deserialize)]
pub struct Why {
    timeout: Option<String>,
    signed_out: Option<String>,
}

fn sign_in_page(
    console: &Console,
    req: &HttpRequest,
    status: StatusCode,
    username: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> HttpResponse {
    let (value, pre) = cookie::pre_session();
    let mut p = PageContext::new(console, req, "Sign in", console.appliance_banner());
    p.insert("pre_csrf", &value)
        .insert("username", username)
        .insert("error", &error)
        .insert("notice", &notice);
    let mut res = render(console, req, "console/sign_in.html", status, &p);
    res.add_cookie(&pre).ok();
    res
}

/// `GET /console/sign-in`.
pub async fn show(
    console: web::Data<Console>,
    req: HttpRequest,
    why: web::Query<Why>,
) -> HttpResponse {
    let notice = if why.timeout.is_some() {
        Some("Your session timed out. Sign in again to go on.")
    } else if why.signed_out.is_some() {
        Some("You are signed out.")
    } else {
        None
    };
    sign_in_page(&console, &req, StatusCode::OK, "", None, notice)
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// `POST /console/sign-in` (CreateAdminSession).
pub async fn submit(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    form: web::Form<SignInForm>,
) -> HttpResponse {
    let f = form.into_inner();
    audit.param("username", f.username.clone());
    if !cookie::pre_session_ok(&req, &f.csrf) {
        let e = Error::forbidden(
            "csrf_failed",
            "this sign-in form is old or was not sent from this console; try again",
        );
        let res = sign_in_page(
            &console,
            &req,
            StatusCode::FORBIDDEN,
            &f.username,
            Some(&e.message),
            None,
        );
        return with_error(res, &e);
    }
    match sessions::open_session(&state, &audit, &req, &f.username, &f.password).await {
        Ok(s) => {
            let to = if s.must_change_password {
                format!("{PREFIX}/password")
            } else {
                format!("{PREFIX}/networks")
            };
            let mut res = see_other(&to, None);
            res.add_cookie(&cookie::session(&s.token)).ok();
            res.add_cookie(&cookie::removal(cookie::PRE_SESSION)).ok();
            res
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            let res = sign_in_page(&console, &req, status, &f.username, Some(&e.message), None);
            with_error(res, &e)
        }
    }
}

#[derive(Deserialize)]
pub struct Nothing {}

/// `POST /console/sign-out` (DeleteAdminSession).
pub async fn sign_out(
    state: web::Data<AdminState>,
    audit: Audit,
    caller: Caller,
    req: HttpRequest,
    _form: Form<Nothing>,
) -> HttpResponse {
    let key = caller.session_key.clone();
    if let Err(e) = audit
        .write(&state.store, 303, move |tx| session::delete(tx, &key))
        .await
    {
        return page::refusal(&req, &e);
    }
    let mut res = see_other(&format!("{PREFIX}/sign-in?signed_out=1"), None);
    res.add_cookie(&cookie::removal(cookie::SESSION)).ok();
    res
}

fn password_form(
    console: &Console,
    req: &HttpRequest,
    caller: &Caller,
    status: StatusCode,
    error: Option<&Error>,
) -> HttpResponse {
    let mut p = PageContext::new(
        console,
        req,
        "Change your password",
        console.appliance_banner(),
    );
    p.insert("must_change", &caller.admin.must_change_password)
        .insert("error", &error.map(|e| e.message.clone()))
        .insert(
            "problems",
            &error
                .and_then(|e| e.details.clone())
                .unwrap_or(serde_json::Value::Null),
        )
        .insert("csrf_field", CSRF_FIELD);
    let res = render(console, req, "console/password.html", status, &p);
    match error {
        Some(e) => with_error(res, e),
        None => res,
    }
}

/// `GET /console/password`.
pub async fn password_page(
    console: web::Data<Console>,
    req: HttpRequest,
    caller: Caller,
) -> HttpResponse {
    password_form(&console, &req, &caller, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /console/password` (ChangeAdminPassword).
pub async fn change_password(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    caller: Caller,
    req: HttpRequest,
    form: Form<PasswordForm>,
) -> HttpResponse {
    let f = form.0;
    if f.new_password != f.confirm {
        let e = Error::validation(vec![crate::error::FieldProblem::new(
            "confirm",
            "the two new passwords are not the same",
        )]);
        return password_form(
            &console,
            &req,
            &caller,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&e),
        );
    }
    match sessions::set_own_password(
        &state,
        &audit,
        &caller,
        &f.current_password,
        &f.new_password,
    )
    .await
    {
        Ok(_) => see_other(
            &format!("{PREFIX}/networks"),
            Some("Your password is changed."),
        ),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            password_form(&console, &req, &caller, status, Some(&e))
        }
    }
}
