//! The client API under `/api/v1` (PROTOCOL.md §2, §3, §6): what devices call over
//! REST — sign-in (password or single sign-on) and device keys, consent, user lookup,
//! conversations and attachments — plus the WebSocket stream's upgrade. Handlers are thin: parse,
//! call the relay or the directory, map the error.

pub mod approval;
pub mod blobs;
pub mod calls;
pub mod conversations;
pub mod devices;
pub mod server_info;
pub mod sso;

use crate::admin::response;
use crate::auth::LoginLimiter;
use crate::error::{Error, Result};
use crate::relay::{DeviceSession, Relay};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use std::sync::Arc;

/// The path prefix of the client API.
pub const PREFIX: &str = "/api/v1";

/// Shared state of the client API.
pub struct ClientApi {
    pub relay: Arc<Relay>,
    pub limiter: LoginLimiter,
    /// The calling relay, when it runs (set once it has started).
    pub turn: Arc<std::sync::OnceLock<Arc<crate::calling::Turn>>>,
    /// Mail, for the codes that approve new devices.
    pub mail: crate::mail::MailContext,
    /// The appliance's profile key (`GET /server`).
    pub profiles: Arc<crate::server::profile_signer::ProfileSigner>,
}

/// The authenticated device behind a request (`Authorization: Bearer od_…`).
pub struct DeviceCaller(pub DeviceSession);

/// The bearer token a request carries, if any.
fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
}

/// Authenticate a request's device with `check` (live or pending devices).
fn caller(
    req: &HttpRequest,
    check: impl FnOnce(&Relay, &str) -> Result<DeviceSession>,
) -> Result<DeviceSession> {
    match (req.app_data::<web::Data<ClientApi>>(), bearer(req)) {
        (None, _) => Err(Error::internal("the client API state is missing")),
        (Some(_), None) => Err(Error::unauthorized(
            "authentication_required",
            "send the device token: Authorization: Bearer od_…",
        )),
        (Some(api), Some(token)) => check(&api.relay, token),
    }
}

impl FromRequest for DeviceCaller {
    type Error = Error;
    type Future = std::future::Ready<Result<DeviceCaller>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(caller(req, |r, t| r.authenticate(t)).map(DeviceCaller))
    }
}

/// A device that waits for approval (account-takeover protection), for the calls that
/// approve it; approved devices are refused (`device_not_pending`).
pub struct PendingCaller(pub DeviceSession);

impl FromRequest for PendingCaller {
    type Error = Error;
    type Future = std::future::Ready<Result<PendingCaller>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(caller(req, |r, t| r.authenticate_pending(t)).map(PendingCaller))
    }
}

/// Register every client API route.
pub fn configure(cfg: &mut web::ServiceConfig, json_limit: usize) {
    cfg.service(
        web::scope(PREFIX)
            .app_data(response::json_config(json_limit))
            .app_data(response::query_config())
            .app_data(response::path_config())
            .route("/stream", web::get().to(crate::relay::websocket::upgrade))
            .route("/server", web::get().to(server_info::get))
            .route("/devices", web::post().to(devices::register))
            .route("/sso/start", web::post().to(sso::start))
            .route("/sso/token", web::post().to(sso::token))
            .route("/devices", web::get().to(devices::list))
            .route("/devices/self/keys", web::put().to(devices::publish_keys))
            .route("/devices/self/approval", web::get().to(approval::status))
            .route(
                "/devices/self/approval",
                web::post().to(approval::enter_code),
            )
            .route(
                "/devices/self/approval/code",
                web::post().to(approval::send_code),
            )
            .route(
                "/devices/{device_id}/approve",
                web::post().to(approval::approve),
            )
            .route("/devices/{device_id}", web::delete().to(devices::revoke))
            .route("/me", web::get().to(devices::me))
            .route("/consent", web::post().to(devices::consent))
            .route("/users", web::get().to(devices::lookup))
            .route("/conversations", web::post().to(conversations::create))
            .route("/conversations", web::get().to(conversations::list))
            .route("/conversations/{id}", web::get().to(conversations::get))
            .route(
                "/conversations/{id}",
                web::patch().to(conversations::update),
            )
            .route(
                "/conversations/{id}",
                web::delete().to(conversations::delete),
            )
            .route(
                "/conversations/{id}/members",
                web::post().to(conversations::add_members),
            )
            .route(
                "/conversations/{id}/members/{user_id}",
                web::delete().to(conversations::remove_member),
            )
            .route(
                "/conversations/{id}/devices",
                web::get().to(conversations::devices),
            )
            .route(
                "/calls/turn-credentials",
                web::post().to(calls::turn_credentials),
            )
            .route("/blobs", web::post().to(blobs::create))
            .route("/blobs/{id}", web::put().to(blobs::append))
            .route("/blobs/{id}", web::get().to(blobs::state))
            .route("/blobs/{id}/content", web::get().to(blobs::content))
            .default_service(web::to(response::not_found)),
    );
}
