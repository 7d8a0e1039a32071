//! Calls (PROTOCOL.md §7): TURN credentials and ICE servers for the calling device.

use super::{ClientApi, DeviceCaller};
use crate::admin::response::{self, JsonBody};
use crate::error::{Error, Result};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsRequest {
    /// The conversation the call is placed in (recorded with the call).
    #[serde(default)]
    conversation_id: Option<String>,
    /// The call will send video or share the screen.
    #[serde(default)]
    video: bool,
}

/// `POST /api/v1/calls/turn-credentials`: short-lived TURN REST credentials and the ICE
/// servers to use them with.
pub async fn turn_credentials(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    body: JsonBody<CredentialsRequest>,
) -> Result<HttpResponse> {
    let req = body.into_inner();
    let Some(turn) = api.turn.get() else {
        return Err(Error::unavailable(
            "calling_unavailable",
            "the calling relay is not running on this appliance (calling.enabled = false)",
        ));
    };
    let account = &caller.0.account;
    if let Some(e) = account.refusal() {
        return Err(e);
    }
    let policy = &account.policy;
    if !policy.audio_calls {
        return Err(Error::forbidden(
            "calling_disabled",
            "calls are turned off for your security group; ask your administrator",
        ));
    }
    if req.video && !policy.video_calls {
        return Err(Error::forbidden(
            "video_disabled",
            "video calls and screen sharing are turned off for your security group; place an audio call",
        ));
    }
    let user_id = caller.0.user_id().to_string();
    if let Some(c) = &req.conversation_id {
        let conversation = api.relay.roster.conversation(c)?;
        if conversation.is_none_or(|c| c.member(&user_id).is_none()) {
            return Err(Error::not_found(
                "conversation_not_found",
                "no such conversation, or you are not a member of it",
            ));
        }
    }
    let now = crate::relay::now_ms() / 1000;
    let ttl = turn.config.credential_ttl_secs;
    let creds = turn.secrets.current().issue(&user_id, now, ttl);
    if let Some(c) = &req.conversation_id {
        turn.calls.issued(&creds.username, c, creds.expires_at);
    }
    let urls = ice_urls(turn, policy.force_tcp_calls);
    Ok(response::ok(&json!({
        "username": creds.username,
        "credential": creds.password,
        "ttl_secs": ttl,
        "expires_at": chrono::DateTime::from_timestamp(creds.expires_at as i64, 0),
        "force_tcp": policy.force_tcp_calls,
        "video": policy.video_calls,
        "ice_servers": [{
            "urls": urls,
            "username": creds.username,
            "credential": creds.password,
        }],
    })))
}

/// The ICE server URLs (RFC 7065) of this appliance's TURN listeners.
fn ice_urls(turn: &crate::calling::Turn, force_tcp: bool) -> Vec<String> {
    let c = &turn.config;
    let host = |a: &SocketAddr| -> String {
        if !c.public_host.trim().is_empty() {
            return c.public_host.trim().to_string();
        }
        match a.ip() {
            ip if ip.is_unspecified() => turn.realm_host().to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            ip => ip.to_string(),
        }
    };
    let b = &turn.bound;
    let mut urls = Vec::new();
    if !force_tcp {
        for a in &b.udp {
            urls.push(format!("turn:{}:{}?transport=udp", host(a), a.port()));
        }
    }
    for a in &b.tcp {
        urls.push(format!("turn:{}:{}?transport=tcp", host(a), a.port()));
    }
    for a in b.tls.iter().chain(&b.https) {
        urls.push(format!("turns:{}:{}?transport=tcp", host(a), a.port()));
    }
    urls
}
