//! `/sso/callback`: where an identity provider sends a person back after single
//! sign-on (PRODUCT.md F5). The sign-in is finished by [`crate::auth::sso::login`];
//! this page then sends the browser on to the client's loopback listener with the
//! one-time grant, or shows the grant for the person to paste into their client. IdP
//! errors, unknown or expired sign-ins and refused accounts get a page that says what
//! happened (or, when the client listens, go to it as `error=access_denied`), under the
//! network's classification banner when the network is known; never a server error.

use super::Pages;
use crate::auth::sso::Sso;
use crate::auth::sso::login::{self, Callback, Finished};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tera::Context;

#[derive(Deserialize, Default)]
struct Query {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", to))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// `GET /sso/callback`.
pub async fn callback(
    req: HttpRequest,
    pages: web::Data<Pages>,
    sso: web::Data<Sso>,
) -> HttpResponse {
    let q = web::Query::<Query>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let result = login::callback(
        &sso,
        Callback {
            code: q.code,
            state: q.state,
            iss: q.iss,
            error: q.error,
            error_description: q.error_description,
        },
    )
    .await;
    let mut ctx = Context::new();
    ctx.insert("banner", "");
    match result {
        Ok(Finished::Redirect(to)) => redirect(&to),
        Ok(Finished::Code {
            code,
            expires_at,
            network,
            company_id,
            username,
        }) => {
            ctx.insert("title", "Signed in");
            ctx.insert("network", &network.name);
            ctx.insert("company_id", &company_id);
            ctx.insert("username", &username);
            ctx.insert("code", &code);
            ctx.insert(
                "expires",
                &expires_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            );
            pages.banner(&mut ctx, &network.settings.classification);
            pages.render("sso.html", StatusCode::OK, &ctx)
        }
        Err(refused) => {
            if let Some(to) = refused.redirect() {
                return redirect(&to);
            }
            tracing::info!(status = refused.status, problem = %refused.message, "sso: a sign-in was refused");
            ctx.insert("title", "Single sign-on did not work");
            ctx.insert("problem", &refused.message);
            if let Some(n) = &refused.network {
                ctx.insert("network", &n.name);
                pages.banner(&mut ctx, &n.settings.classification);
            }
            let status = StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST);
            pages.render("sso.html", status, &ctx)
        }
    }
}
