//! `/invite/{token}`: the registration page of an invitation (PRODUCT.md F4). GET shows
//! the form with the group's password rules before anyone types; POST registers, or shows
//! the form again with the rule that failed; success shows how to connect a device. Used,
//! expired and forged links get a page that says so (404, no form). The classification
//! banner of the network is at the top and bottom of every page.

use super::Pages;
use crate::auth::registration::{self, Form, Pending};
use crate::directory::link::LinkProblem;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use tera::Context;

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

fn render(pages: &Pages, status: StatusCode, ctx: &Context) -> HttpResponse {
    pages.render("register.html", status, ctx)
}

/// The page's context for an open invitation.
fn context(pages: &Pages, token: &str, p: &Pending) -> Context {
    let mut ctx = Context::new();
    ctx.insert("title", "Register");
    ctx.insert("token", token);
    ctx.insert("network", &p.network.name);
    ctx.insert("network_id", &p.network.id);
    ctx.insert("email", &p.user.username);
    ctx.insert("inviter", &p.invitation.issued_by);
    ctx.insert(
        "expires",
        &p.invitation
            .expires_at
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
    );
    ctx.insert("first_name", &p.user.first_name);
    ctx.insert("last_name", &p.user.last_name);
    ctx.insert("rules", &p.settings.security.password);
    ctx.insert("server", &pages.server());
    ctx.insert("fingerprint", &pages.fingerprint);
    pages.banner(&mut ctx, &p.network.settings.classification);
    ctx
}

fn link_problem(pages: &Pages, problem: LinkProblem) -> HttpResponse {
    let mut ctx = Context::new();
    ctx.insert("title", "This link does not work");
    ctx.insert("network", "outpost");
    ctx.insert("banner", "");
    ctx.insert("problem", &problem.error().message);
    render(pages, StatusCode::NOT_FOUND, &ctx)
}

/// A refusal (`sso_required`) or a failure (the store): its message under its status.
fn unavailable(pages: &Pages, e: crate::error::Error) -> HttpResponse {
    let status = StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut ctx = Context::new();
    ctx.insert(
        "title",
        if status.is_server_error() {
            "Try again later"
        } else {
            "This link does not work"
        },
    );
    ctx.insert("network", "outpost");
    ctx.insert("banner", "");
    ctx.insert("problem", &e.message);
    render(pages, status, &ctx)
}

/// `GET /invite/{token}`.
pub async fn show(pages: web::Data<Pages>, token: web::Path<String>) -> HttpResponse {
    match registration::open(&pages.store, &token) {
        Ok(Ok(p)) => render(&pages, StatusCode::OK, &context(&pages, &token, &p)),
        Ok(Err(problem)) => link_problem(&pages, problem),
        Err(e) => unavailable(&pages, e),
    }
}

/// `POST /invite/{token}` (an HTML form).
pub async fn submit(
    pages: web::Data<Pages>,
    token: web::Path<String>,
    form: web::Form<RegisterForm>,
) -> HttpResponse {
    let pending = match registration::open(&pages.store, &token) {
        Ok(Ok(p)) => p,
        Ok(Err(problem)) => return link_problem(&pages, problem),
        Err(e) => return unavailable(&pages, e),
    };
    let f = form.into_inner();
    let mut ctx = context(&pages, &token, &pending);
    ctx.insert("first_name", f.first_name.trim());
    ctx.insert("last_name", f.last_name.trim());
    let result = registration::register(
        &pages.store,
        &token,
        Form {
            first_name: f.first_name,
            last_name: f.last_name,
            password: f.password,
            confirm: f.confirm,
        },
    )
    .await;
    match result {
        Ok(Ok(user)) => {
            tracing::info!(user = %user.id, network = %user.network_id, "a user registered through an invitation");
            ctx.insert("title", "You are registered");
            ctx.insert("registered", &true);
            ctx.insert("first_name", &user.first_name);
            ctx.insert(
                "profile_token",
                &pages.profiles.link_token(&user.id, chrono::Utc::now()),
            );
            render(&pages, StatusCode::OK, &ctx)
        }
        Ok(Err(refusal)) => {
            ctx.insert("form_error", &refusal.message);
            render(&pages, StatusCode::UNPROCESSABLE_ENTITY, &ctx)
        }
        // The link may have been used or replaced while the form was filled in.
        Err(e) => match registration::open(&pages.store, &token) {
            Ok(Err(problem)) => link_problem(&pages, problem),
            _ => unavailable(&pages, e),
        },
    }
}
