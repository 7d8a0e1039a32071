//! Single sign-on for devices (PROTOCOL.md §2.9): start a sign-in through the network's
//! identity provider, and redeem the one-time grant the callback issued for a device
//! token. The work is in [`crate::auth::sso::login`].

use super::ClientApi;
use super::devices::{Keys, rate_limit, signed_in};
use crate::admin::response::{self, JsonBody};
use crate::auth::sso::Sso;
use crate::auth::sso::login::{self, Redeem, Start};
use crate::directory::device;
use crate::error::Result;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    company_id: String,
    #[serde(default)]
    login_hint: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    code_challenge: String,
}

/// `POST /api/v1/sso/start`.
pub async fn start(
    req: HttpRequest,
    api: web::Data<ClientApi>,
    sso: web::Data<Sso>,
    body: JsonBody<StartBody>,
) -> Result<HttpResponse> {
    rate_limit(&req, &api)?;
    let b = body.into_inner();
    let started = login::start(
        &sso,
        Start {
            company_id: b.company_id,
            login_hint: b.login_hint,
            redirect_uri: b.redirect_uri,
            code_challenge: b.code_challenge,
        },
    )
    .await?;
    Ok(response::ok(&started))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    code: String,
    code_verifier: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    client_version: String,
    #[serde(default)]
    keys: Option<Keys>,
}

/// `POST /api/v1/sso/token`: the same answer as a password sign-in.
pub async fn token(
    req: HttpRequest,
    api: web::Data<ClientApi>,
    sso: web::Data<Sso>,
    body: JsonBody<TokenBody>,
) -> Result<HttpResponse> {
    rate_limit(&req, &api)?;
    let b = body.into_inner();
    if let Some(k) = &b.keys {
        device::check_public_keys(&k.x25519, &k.ed25519)?;
    }
    let base = api.mail.base_url();
    let signed = login::redeem(
        &sso,
        Redeem {
            code: b.code,
            code_verifier: b.code_verifier,
            name: b.name,
            platform: b.platform,
            client_version: b.client_version,
        },
        &api.mail.delivery(&base),
    )
    .await?;
    signed_in(&api, signed, b.keys).await
}
