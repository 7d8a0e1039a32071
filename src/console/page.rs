//! How console pages are rendered: the layout (navigation, the classification banner at
//! top and bottom, the flash confirmation), the headers every page carries (a strict
//! Content-Security-Policy: only the appliance's own stylesheet and script, no inline
//! code or styles; no caching; no framing), and the pages for refusals — no session (to
//! the sign-in page), a password to change first, not allowed, not found.

use super::Console;
use crate::admin::response::ErrorInfo;
use crate::directory::network_settings::{Classification, ClassificationLevel};
use crate::error::{Error, Kind};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Serialize;
use tera::Context;

/// The Content-Security-Policy of every console page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A classification banner as the layout shows it: text and the level's CSS class.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Banner {
    pub text: String,
    /// `level-secret`, … (colours in console.css).
    pub class: String,
}

impl Banner {
    pub fn of(c: &Classification) -> Option<Banner> {
        let (text, _, _) = c.banner()?;
        let level = serde_json::to_value(c.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Some(Banner {
            text,
            class: format!("level-{}", level.replace('_', "-")),
        })
    }

    /// The appliance's banner: the highest level among `levels` (with that network's
    /// caveats). Every console page shows it — a page about a less classified network
    /// is still on a system that holds the higher level — and so does the sign-in page.
    pub fn highest<'a>(levels: impl IntoIterator<Item = &'a Classification>) -> Option<Banner> {
        levels
            .into_iter()
            .filter(|c| c.level != ClassificationLevel::None)
            .max_by_key(|c| c.level)
            .and_then(Banner::of)
    }
}

/// What every page's context starts with.
pub struct PageContext {
    pub ctx: Context,
}

impl PageContext {
    /// `title`, the banner, the signed-in admin (if any) with the CSRF token their
    /// forms carry, and the flash message of `req`.
    pub fn new(
        console: &Console,
        req: &HttpRequest,
        title: &str,
        banner: Option<Banner>,
    ) -> PageContext {
        let mut ctx = Context::new();
        ctx.insert("title", title);
        ctx.insert("section", "");
        ctx.insert("banner", &banner);
        ctx.insert("version", env!("CARGO_PKG_VERSION"));
        ctx.insert("flash", &super::cookie::flash_of(req));
        if let Some(token) = super::cookie::session_token(req) {
            ctx.insert("csrf", &console.csrf.token(&token));
        }
        if let Some(caller) = req.extensions().get::<crate::auth::Caller>() {
            ctx.insert("me", &caller.admin.view());
            ctx.insert("is_owner", &(caller.admin.role == crate::auth::Role::Owner));
            let may = |a| crate::auth::permission::allows(caller.admin.role, a);
            ctx.insert("may_audit", &may(crate::auth::Action::ListAuditEvents));
            ctx.insert("may_status", &may(crate::auth::Action::GetSystemStatus));
        }
        PageContext { ctx }
    }

    pub fn insert<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> &mut Self {
        self.ctx.insert(key, value);
        self
    }
}

/// Render `template` with `page` and the console's headers (and clear a shown flash).
pub fn render(
    console: &Console,
    req: &HttpRequest,
    template: &str,
    status: StatusCode,
    page: &PageContext,
) -> HttpResponse {
    match console.tera.render(template, &page.ctx) {
        Ok(html) => {
            let mut res = HttpResponse::build(status);
            headers(&mut res);
            if req.cookie(super::cookie::FLASH).is_some() {
                res.cookie(super::cookie::removal(super::cookie::FLASH));
            }
            res.content_type("text/html; charset=utf-8").body(html)
        }
        Err(e) => {
            tracing::error!(error = ?e, template, "a console page cannot be rendered");
            let mut res = HttpResponse::InternalServerError();
            headers(&mut res);
            res.content_type("text/plain; charset=utf-8")
                .body("this page cannot be shown; the appliance's log says why")
        }
    }
}

/// The headers every console answer carries.
pub fn headers(res: &mut actix_web::HttpResponseBuilder) {
    res.insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
}

/// A 303 to `to` (after a form), optionally with a confirmation for the next page.
pub fn see_other(to: &str, flash: Option<&str>) -> HttpResponse {
    let mut res = HttpResponse::SeeOther();
    headers(&mut res);
    res.insert_header((header::LOCATION, to.to_string()));
    if let Some(f) = flash {
        res.cookie(super::cookie::flash(f));
    }
    res.finish()
}

/// Attach `e` to a page answering it, so the audit log records the refusal.
pub fn with_error(mut res: HttpResponse, e: &Error) -> HttpResponse {
    res.extensions_mut().insert(ErrorInfo {
        code: e.code,
        message: e.message.clone(),
    });
    res
}

/// The console's answer to a refusal by the guard or a handler.
pub fn refusal(req: &HttpRequest, e: &Error) -> HttpResponse {
    let Some(console) = req.app_data::<web::Data<Console>>() else {
        return HttpResponse::InternalServerError().body("the console's state is missing");
    };
    let res = match (e.kind, e.code) {
        (Kind::Unauthorized, code) => {
            let why = match code {
                "token_expired" => "?timeout=1",
                _ => "",
            };
            let mut res = see_other(&format!("{}/sign-in{why}", super::PREFIX), None);
            if code == "token_expired" || code == "token_invalid" {
                res.add_cookie(&super::cookie::removal(super::cookie::SESSION))
                    .ok();
            }
            res
        }
        (_, "password_change_required") => see_other(&format!("{}/password", super::PREFIX), None),
        _ => {
            let mut page =
                PageContext::new(console, req, "Not possible", console.appliance_banner());
            page.insert("message", &e.message).insert("code", e.code);
            let status =
                StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            render(console, req, "console/error.html", status, &page)
        }
    };
    with_error(res, e)
}
