//! Console: the networks list and creating a network (ListNetworks, CreateNetwork).

use super::form::Form;
use super::page::{Banner, PageContext, refusal, render, see_other, with_error};
use super::{Console, PREFIX};
use crate::admin::AdminState;
use crate::admin::api::networks::{self, CreateNetwork};
use crate::admin::guard::Audit;
use crate::auth::Caller;
use crate::error::Error;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

fn page(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    status: StatusCode,
    form_name: &str,
    error: Option<&Error>,
) -> HttpResponse {
    let nets = match networks::visible(state, caller) {
        Ok(n) => n,
        Err(e) => return refusal(req, &e),
    };
    let mut p = PageContext::new(console, req, "Networks", console.appliance_banner());
    let rows: Vec<serde_json::Value> = nets
        .iter()
        .map(|n| {
            serde_json::json!({
                "id": n.id, "name": n.name, "tags": n.tags,
                "banner": Banner::of(&n.settings.classification),
                "created_at": n.created_at.format("%Y-%m-%d").to_string(),
            })
        })
        .collect();
    p.insert("section", "networks")
        .insert("networks", &rows)
        .insert(
            "may_create",
            &crate::auth::permission::allows(caller.admin.role, crate::auth::Action::CreateNetwork),
        )
        .insert("form_name", form_name)
        .insert("error", &error.map(|e| e.message.clone()));
    let res = render(console, req, "console/networks.html", status, &p);
    match error {
        Some(e) => with_error(res, e),
        None => res,
    }
}

/// `GET /console/networks`.
pub async fn list(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
) -> HttpResponse {
    page(&console, &state, &req, &caller, StatusCode::OK, "", None)
}

#[derive(Deserialize)]
pub struct NewNetwork {
    #[serde(default)]
    name: String,
}

/// `POST /console/networks` (CreateNetwork).
pub async fn create(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    form: Form<NewNetwork>,
) -> HttpResponse {
    let name = form.0.name.trim().to_string();
    audit.param("name", name.clone());
    let b = CreateNetwork {
        name: name.clone(),
        tags: Default::default(),
        settings: None,
    };
    match networks::create_network(&state, &audit, b).await {
        Ok(n) => see_other(
            &format!("{PREFIX}/networks"),
            Some(&format!("Network {} ({}) created.", n.name, n.id)),
        ),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            page(&console, &state, &req, &caller, status, &name, Some(&e))
        }
    }
}
