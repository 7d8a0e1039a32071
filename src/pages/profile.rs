//! `/profile/{token}`: the client profile download the registration page links to — a
//! signed JSON file naming this server, its certificate and the person's network
//! (`crate::client_profile`). The link works for an hour and names one person; an
//! expired or forged link gets a page that says so.

use super::Pages;
use crate::directory::{network, user};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use tera::Context;

fn problem(pages: &Pages, status: StatusCode, text: &str) -> HttpResponse {
    let mut ctx = Context::new();
    ctx.insert("title", "This download does not work");
    ctx.insert("network", "outpost");
    ctx.insert("banner", "");
    ctx.insert("problem", text);
    pages.render("register.html", status, &ctx)
}

/// `GET /profile/{token}`.
pub async fn download(pages: web::Data<Pages>, token: web::Path<String>) -> HttpResponse {
    let Some(uid) = pages.profiles.open_link(&token, Utc::now()) else {
        return problem(
            &pages,
            StatusCode::NOT_FOUND,
            "this download link is not valid or has expired (links work for an hour); ask your \
             administrator for your client profile",
        );
    };
    let found = pages.store.read(|tx| {
        let Some(u) = user::by_id(tx, &uid)? else {
            return Ok(None);
        };
        let n = network::get(tx, &u.network_id)?;
        Ok(Some((u, n)))
    });
    let (u, n) = match found {
        Ok(Some(x)) => x,
        Ok(None) => {
            return problem(
                &pages,
                StatusCode::NOT_FOUND,
                "the account this link was made for no longer exists",
            );
        }
        Err(e) => return problem(&pages, StatusCode::SERVICE_UNAVAILABLE, &e.message),
    };
    let p = pages
        .profiles
        .sign(&pages.server(), &n.id, &n.name, Some(&u.username));
    let body = serde_json::to_string_pretty(&p).expect("a profile encodes");
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"outpost-{}.json\"", n.id),
        ))
        .body(body)
}
