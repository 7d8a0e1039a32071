//! Approving a new device (PROTOCOL.md §2.2; account-takeover protection): the pending
//! device reads its state, enters the mailed code or asks for a new one; an approved
//! device of the same account approves it. Thin handlers over `auth::device_approval`.

use super::devices::device_view;
use super::{ClientApi, DeviceCaller, PendingCaller};
use crate::admin::response::{self, JsonBody};
use crate::auth::device_approval;
use crate::directory::{device, network, user};
use crate::error::{Error, Result};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

/// `GET /api/v1/devices/self/approval`: how this pending device can be approved.
pub async fn status(api: web::Data<ClientApi>, caller: PendingCaller) -> Result<HttpResponse> {
    let d = &caller.0.device;
    Ok(response::ok(&json!({
        "device": device_view(d),
        "approval": device_approval::pending(d, api.mail.on()),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Code {
    code: String,
}

/// `POST /api/v1/devices/self/approval`: enter the mailed code.
pub async fn enter_code(
    api: web::Data<ClientApi>,
    caller: PendingCaller,
    body: JsonBody<Code>,
) -> Result<HttpResponse> {
    let code = body.into_inner().code;
    if code.len() > 32 {
        return Err(Error::invalid(
            "approval_code_invalid",
            "the code is the six digits from the mail",
        ));
    }
    let (uid, did) = (caller.0.user_id().to_string(), caller.0.device.id.clone());
    let relay = &api.relay;
    let outcome = relay
        .store
        .write(move |tx| {
            let d = device::get(tx, &uid, &did)?;
            device_approval::enter_code(tx, d, &code, Utc::now())
        })
        .await?;
    relay.account_changed(caller.0.user_id());
    match outcome {
        Ok(d) => {
            tracing::info!(user = %d.user_id, device = %d.id, "a new device was approved with the mailed code");
            Ok(response::ok(&json!({ "device": device_view(&d) })))
        }
        Err(p) => Err(p.error()),
    }
}

/// `POST /api/v1/devices/self/approval/code`: mail a new code.
pub async fn send_code(api: web::Data<ClientApi>, caller: PendingCaller) -> Result<HttpResponse> {
    let (uid, did) = (caller.0.user_id().to_string(), caller.0.device.id.clone());
    let mail = api.mail.clone();
    let d = api
        .relay
        .store
        .write(move |tx| {
            let u = user::by_id(tx, &uid)?.ok_or_else(|| {
                Error::unauthorized("account_deleted", "this account was deleted")
            })?;
            let net = network::get(tx, &u.network_id)?;
            let d = device::get(tx, &uid, &did)?;
            let base = mail.base_url();
            let how = mail.delivery(&base);
            Ok(device_approval::send_code(tx, &how, &net, &u, d, Utc::now())?.0)
        })
        .await?;
    api.mail.wake();
    api.relay.account_changed(caller.0.user_id());
    Ok(response::ok(&json!({
        "approval": device_approval::pending(&d, true),
    })))
}

/// `POST /api/v1/devices/{device_id}/approve`: approve one of the caller's pending devices.
pub async fn approve(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let target = path.into_inner();
    let approver = caller.0.device.clone();
    let uid = caller.0.user_id().to_string();
    let d = api
        .relay
        .store
        .write(move |tx| {
            let u = user::by_id(tx, &uid)?.ok_or_else(|| {
                Error::unauthorized("account_deleted", "this account was deleted")
            })?;
            device_approval::approve_from(tx, &u, &approver, &target)
        })
        .await?;
    api.relay.account_changed(caller.0.user_id());
    tracing::info!(user = %d.user_id, device = %d.id, by = %caller.0.device.id, "a new device was approved from another device");
    Ok(response::ok(&json!({ "device": device_view(&d) })))
}
