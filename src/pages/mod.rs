//! Server-rendered pages for people who are not administrators (no JavaScript needed):
//! the registration page an invitation links to ([`registration`]), the password
//! reset pages ([`password_reset`]) and the single sign-on callback ([`sso`]).

pub mod password_reset;
pub mod profile;
pub mod registration;
pub mod sso;

use crate::directory::network_settings::Classification;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use std::sync::{Arc, OnceLock};

/// What the pages need, shared by every HTTP worker.
pub struct Pages {
    pub store: crate::store::Store,
    pub tera: tera::Tera,
    /// The appliance's base URL, known once the HTTPS listeners are bound.
    pub public_url: Arc<OnceLock<String>>,
    /// SHA-256 fingerprint of the TLS trust anchor clients should pin.
    pub fingerprint: String,
    /// Signs the client profiles people download.
    pub profiles: Arc<crate::server::profile_signer::ProfileSigner>,
    /// The mail worker's handle; None when mail is off.
    pub mail: Option<crate::mail::outbox::Outbox>,
    /// The host name in `Message-ID`s.
    pub domain: String,
    /// Reset requests allowed per source address.
    pub limiter: crate::auth::LoginLimiter,
}

impl Pages {
    pub fn new(
        store: crate::store::Store,
        public_url: Arc<OnceLock<String>>,
        profiles: Arc<crate::server::profile_signer::ProfileSigner>,
        mail: Option<crate::mail::outbox::Outbox>,
        domain: String,
    ) -> Pages {
        let mut tera = tera::Tera::default();
        tera.add_raw_templates(vec![
            ("page.html", include_str!("../../templates/page.html")),
            (
                "register.html",
                include_str!("../../templates/register.html"),
            ),
            ("reset.html", include_str!("../../templates/reset.html")),
            ("sso.html", include_str!("../../templates/sso.html")),
        ])
        .expect("embedded templates parse");
        tera.set_escape_fn(crate::html::escape);
        Pages {
            store,
            tera,
            public_url,
            fingerprint: profiles.fingerprint().to_string(),
            profiles,
            mail,
            domain,
            limiter: crate::auth::LoginLimiter::new(10),
        }
    }

    /// A page, with the headers every page carries.
    pub fn render(&self, template: &str, status: StatusCode, ctx: &tera::Context) -> HttpResponse {
        match self.tera.render(template, ctx) {
            Ok(html) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .insert_header(("Cache-Control", "no-store"))
                .insert_header((
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
                ))
                .body(html),
            Err(e) => {
                tracing::error!(error = %e, template, "a page cannot be rendered");
                HttpResponse::InternalServerError().body("the page cannot be shown")
            }
        }
    }

    /// Puts the network's classification banner in a page's context.
    pub fn banner(&self, ctx: &mut tera::Context, c: &Classification) {
        crate::html::banner(ctx, c);
    }

    /// The base URL for links and commands.
    pub fn server(&self) -> String {
        self.public_url.get().cloned().unwrap_or_default()
    }
}
