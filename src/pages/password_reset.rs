//! `/reset` and `/reset/{token}`: asking for a password reset link, and choosing the new
//! password (PRODUCT.md F4). Asking always gets the same answer, whether or not the
//! address belongs to an account (no one learns who is registered), and is rate-limited
//! per source address. The link page shows the group's password rules and the network's
//! banner; used, expired and forged links get a page that says so.

use super::Pages;
use crate::auth::password_reset::{self, Delivery};
use crate::directory::network;
use crate::directory::user::{self, UserKind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tera::Context;

#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    email: String,
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

fn base(title: &str) -> Context {
    let mut ctx = Context::new();
    ctx.insert("title", title);
    ctx.insert("banner", "");
    ctx
}

fn problem(pages: &Pages, status: StatusCode, message: &str) -> HttpResponse {
    let mut ctx = base("This link does not work");
    ctx.insert("problem", message);
    pages.render("reset.html", status, &ctx)
}

/// `GET /reset`: the form asking for a link.
pub async fn ask(pages: web::Data<Pages>) -> HttpResponse {
    if pages.mail.is_none() {
        let mut ctx = base("Reset your password");
        ctx.insert(
            "message",
            "This appliance sends no mail: ask your administrator for a password reset link.",
        );
        return pages.render("reset.html", StatusCode::OK, &ctx);
    }
    pages.render("reset.html", StatusCode::OK, &base("Reset your password"))
}

/// `POST /reset`: mails a link to every registered account with that address.
pub async fn request(
    req: HttpRequest,
    pages: web::Data<Pages>,
    form: web::Form<RequestForm>,
) -> HttpResponse {
    let Some(outbox) = pages.mail.clone() else {
        return ask(pages).await;
    };
    if let Some(ip) = req.peer_addr().map(|a| a.ip())
        && let Err(wait) = pages.limiter.check(ip)
    {
        let mut ctx = base("Reset your password");
        ctx.insert(
            "problem",
            &format!("Too many requests from your address; try again in {wait} seconds."),
        );
        return pages.render("reset.html", StatusCode::TOO_MANY_REQUESTS, &ctx);
    }
    let email = form.email.trim().to_lowercase();
    let server = pages.server();
    let domain = pages.domain.clone();
    let queued = pages
        .store
        .write(move |tx| {
            let mut n = 0;
            for net in network::list(tx)? {
                // Single sign-on networks have no passwords here (the answer is the same).
                if net.sso_enabled {
                    continue;
                }
                let Some(u) = user::by_name(tx, &net.id, UserKind::User, &email)? else {
                    continue;
                };
                if password_reset::may_reset(&u).is_err() {
                    continue;
                }
                let how = Delivery {
                    base_url: &server,
                    mail: true,
                    domain: &domain,
                };
                password_reset::issue(tx, &how, &net, &u, "You")?;
                n += 1;
            }
            Ok(n)
        })
        .await;
    match queued {
        Ok(n) => {
            if n > 0 {
                outbox.wake();
            }
            let mut ctx = base("Check your mail");
            ctx.insert(
                "message",
                "If this address belongs to an account here, a link to choose a new password \
                 is on its way to it. It works for 24 hours.",
            );
            pages.render("reset.html", StatusCode::OK, &ctx)
        }
        Err(e) => problem(&pages, StatusCode::SERVICE_UNAVAILABLE, &e.message),
    }
}

fn form_context(pages: &Pages, token: &str, o: &password_reset::Open) -> Context {
    let mut ctx = base("Choose a new password");
    ctx.insert("token", token);
    ctx.insert("email", &o.user.username);
    ctx.insert("network", &o.network.name);
    ctx.insert("rules", &o.settings.security.password);
    pages.banner(&mut ctx, &o.network.settings.classification);
    ctx
}

/// `GET /reset/{token}`.
pub async fn show(pages: web::Data<Pages>, token: web::Path<String>) -> HttpResponse {
    match password_reset::open(&pages.store, &token) {
        Ok(Ok(o)) => pages.render(
            "reset.html",
            StatusCode::OK,
            &form_context(&pages, &token, &o),
        ),
        Ok(Err(p)) => problem(&pages, StatusCode::NOT_FOUND, &p.error().message),
        Err(e) => problem(&pages, status_of(&e), &e.message),
    }
}

/// The page status of an error: its own (e.g. 403 `sso_required`, 503 store failures).
fn status_of(e: &crate::error::Error) -> StatusCode {
    StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// `POST /reset/{token}`.
pub async fn submit(
    pages: web::Data<Pages>,
    token: web::Path<String>,
    form: web::Form<ResetForm>,
) -> HttpResponse {
    let o = match password_reset::open(&pages.store, &token) {
        Ok(Ok(o)) => o,
        Ok(Err(p)) => return problem(&pages, StatusCode::NOT_FOUND, &p.error().message),
        Err(e) => return problem(&pages, status_of(&e), &e.message),
    };
    let f = form.into_inner();
    let mut ctx = form_context(&pages, &token, &o);
    match password_reset::complete(&pages.store, &token, f.password, f.confirm).await {
        Ok(Ok(u)) => {
            tracing::info!(user = %u.id, "a user chose a new password through a reset link");
            let mut done = base("Your password is changed");
            pages.banner(&mut done, &o.network.settings.classification);
            done.insert(
                "message",
                "Your new password is set and every device was signed out: sign them in again \
                 with it.",
            );
            pages.render("reset.html", StatusCode::OK, &done)
        }
        Ok(Err(refusal)) => {
            ctx.insert("form_error", &refusal.message);
            pages.render("reset.html", StatusCode::UNPROCESSABLE_ENTITY, &ctx)
        }
        // The link may have been used or replaced while the form was filled in.
        Err(e) => match password_reset::open(&pages.store, &token) {
            Ok(Err(p)) => problem(&pages, StatusCode::NOT_FOUND, &p.error().message),
            _ => problem(&pages, status_of(&e), &e.message),
        },
    }
}
