//! Devices, keys, consent and user lookup (PROTOCOL.md §2).

use super::{ClientApi, DeviceCaller};
use crate::admin::response::{self, JsonBody};
use crate::auth::device_login::{self, Login, SignedIn};
use crate::config::Secret;
use crate::directory::device::{self, Device};
use crate::directory::user::{self, User, UserKind};
use crate::error::{Error, Result};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

/// A device as clients see it.
pub fn device_view(d: &Device) -> Value {
    json!({
        "id": d.id, "user_id": d.user_id, "name": d.name, "platform": d.platform,
        "client_version": d.client_version, "status": d.status,
        "x25519": d.x25519, "ed25519": d.ed25519,
        "created_at": d.created_at, "last_seen_at": d.last_seen_at,
    })
}

/// A user as other users see them.
pub fn user_view(u: &User) -> Value {
    let display = match (u.kind, u.display_name.is_empty()) {
        (UserKind::Bot, false) => u.display_name.clone(),
        _ => format!("{} {}", u.first_name, u.last_name)
            .trim()
            .to_string(),
    };
    json!({
        "id": u.id, "network_id": u.network_id, "username": u.username,
        "display_name": if display.is_empty() { u.username.clone() } else { display },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    #[serde(default)]
    name: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    client_version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    pub(super) x25519: String,
    pub(super) ed25519: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    username: String,
    password: Secret,
    #[serde(default)]
    network_id: Option<String>,
    device: DeviceInfo,
    #[serde(default)]
    keys: Option<Keys>,
}

/// `POST /api/v1/devices`: sign in and register a device.
pub async fn register(
    req: HttpRequest,
    api: web::Data<ClientApi>,
    body: JsonBody<Register>,
) -> Result<HttpResponse> {
    rate_limit(&req, &api)?;
    let b = body.into_inner();
    if let Some(k) = &b.keys {
        device::check_public_keys(&k.x25519, &k.ed25519)?;
    }
    let relay = &api.relay;
    let base = api.mail.base_url();
    let signed = device_login::login(
        &relay.store,
        Login {
            network_id: b.network_id,
            username: b.username,
            password: b.password.expose().to_string(),
            name: b.device.name,
            platform: b.device.platform,
            client_version: b.device.client_version,
        },
        &api.mail.delivery(&base),
        &|locked: &str| relay.account_changed(locked),
    )
    .await?;
    signed_in(&api, signed, b.keys).await
}

/// The answer to a sign-in that registered a device (password or single sign-on): wakes
/// the mail worker for an approval code, publishes `keys` if given and tells the relay.
pub async fn signed_in(
    api: &ClientApi,
    signed: SignedIn,
    keys: Option<Keys>,
) -> Result<HttpResponse> {
    let relay = &api.relay;
    if signed.mail_id.is_some() {
        api.mail.wake();
    }
    let d = match keys {
        Some(k) => {
            let d = signed.device.clone();
            relay
                .store
                .write(move |tx| device::publish_keys(tx, d.clone(), &k.x25519, &k.ed25519))
                .await?
        }
        None => signed.device.clone(),
    };
    let u = &signed.user;
    relay.account_changed(&u.id);
    let consent = match &signed.approval {
        // A pending device learns the consent notice once approved.
        Some(_) => None,
        None => relay.authenticate(&signed.token)?.account.consent.clone(),
    };
    Ok(response::created(&json!({
        "token": signed.token,
        "device": device_view(&d),
        "user": user_view(u),
        "consent": consent,
        "approval": signed.approval,
    })))
}

/// Refuse a sign-in beyond `relay.login_attempts_per_minute` from the caller's address.
pub fn rate_limit(req: &HttpRequest, api: &ClientApi) -> Result<()> {
    if let Some(ip) = req.peer_addr().map(|a| a.ip())
        && let Err(wait) = api.limiter.check(ip)
    {
        return Err(Error::new(
            crate::error::Kind::RateLimited,
            "rate_limited",
            format!("too many sign-ins from {ip}; try again in {wait} seconds"),
        )
        .with_retry_after(wait));
    }
    Ok(())
}

/// `PUT /api/v1/devices/self/keys`.
pub async fn publish_keys(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    body: JsonBody<Keys>,
) -> Result<HttpResponse> {
    let k = body.into_inner();
    let relay = &api.relay;
    let d = caller.0.device.clone();
    let uid = d.user_id.clone();
    let d = relay
        .store
        .write(move |tx| {
            let cur = device::get(tx, &d.user_id, &d.id)?;
            device::publish_keys(tx, cur, &k.x25519, &k.ed25519)
        })
        .await?;
    relay.account_changed(&uid);
    Ok(response::ok(&device_view(&d)))
}

/// `GET /api/v1/devices`: the caller's devices.
pub async fn list(api: web::Data<ClientApi>, caller: DeviceCaller) -> Result<HttpResponse> {
    let uid = caller.0.user_id().to_string();
    let devices = api.relay.store.read(|tx| device::list(tx, &uid))?;
    Ok(response::ok(&json!({
        "devices": devices.iter().map(device_view).collect::<Vec<_>>()
    })))
}

/// `DELETE /api/v1/devices/{device_id}`: revoke one of the caller's devices.
pub async fn revoke(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let uid = caller.0.user_id().to_string();
    let did = path.into_inner();
    let relay = &api.relay;
    let u2 = uid.clone();
    relay
        .store
        .write(move |tx| {
            let d = device::get(tx, &u2, &did)?;
            crate::relay::mailbox::clear_device(tx, &d.id)?;
            device::revoke(tx, d)
        })
        .await?;
    relay.account_changed(&uid);
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/me`.
pub async fn me(caller: DeviceCaller) -> Result<HttpResponse> {
    let s = &caller.0;
    Ok(response::ok(&json!({
        "user": user_view(&s.account.user),
        "device": device_view(&s.device),
        "policy": s.account.policy,
        "consent": s.account.consent,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentAck {
    version: u64,
}

/// `POST /api/v1/consent`: acknowledge the current consent pop-up on this device.
pub async fn consent(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    body: JsonBody<ConsentAck>,
) -> Result<HttpResponse> {
    api.relay
        .acknowledge_consent(&caller.0, body.into_inner().version)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    username: String,
}

/// `GET /api/v1/users?username=…`: exact lookup in the caller's network.
pub async fn lookup(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    q: web::Query<Lookup>,
) -> Result<HttpResponse> {
    let name = q.username.trim().to_lowercase();
    let net = caller.0.account.user.network_id.clone();
    let found = api.relay.store.read(|tx| {
        Ok(match user::by_name(tx, &net, UserKind::User, &name)? {
            Some(u) => Some(u),
            None => user::by_name(tx, &net, UserKind::Bot, &name)?,
        })
    })?;
    Ok(response::ok(&json!({
        "users": found.iter().map(user_view).collect::<Vec<_>>()
    })))
}
