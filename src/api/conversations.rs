//! Conversations (PROTOCOL.md §3): direct conversations and rooms, membership, and
//! the devices a sender must seal each message to. Every change is announced to
//! the members through their mailboxes.

use super::{ClientApi, DeviceCaller};
use crate::admin::response::{self, JsonBody};
use crate::error::{Error, Result};
use crate::relay::conversation::{self, Change, Update};
use crate::relay::frame::MembershipChange;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Create {
    Direct {
        peer_user_id: String,
    },
    Room {
        name: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        member_user_ids: Vec<String>,
    },
}

/// `POST /api/v1/conversations`.
pub async fn create(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    body: JsonBody<Create>,
) -> Result<HttpResponse> {
    let me = caller.0.account.user.clone();
    let relay = &api.relay;
    let (change, created) = match body.into_inner() {
        Create::Direct { peer_user_id } => {
            relay
                .store
                .write(move |tx| conversation::open_direct(tx, &me, &peer_user_id))
                .await?
        }
        Create::Room {
            name,
            description,
            member_user_ids,
        } => {
            let c = relay
                .store
                .write(move |tx| {
                    conversation::create_room(tx, &me, &name, &description, &member_user_ids)
                })
                .await?;
            (c, true)
        }
    };
    let view = change.current().map(|c| c.view()).unwrap_or_default();
    if created {
        let members = change.audience();
        relay
            .announce(
                &change,
                MembershipChange::Created,
                caller.0.user_id(),
                members,
            )
            .await?;
        Ok(response::created(&view))
    } else {
        Ok(response::ok(&view))
    }
}

/// `GET /api/v1/conversations`.
pub async fn list(api: web::Data<ClientApi>, caller: DeviceCaller) -> Result<HttpResponse> {
    let uid = caller.0.user_id().to_string();
    let all = api
        .relay
        .store
        .read(|tx| conversation::list_for(tx, &uid))?;
    Ok(response::ok(&json!({
        "conversations": all.iter().map(|c| c.view()).collect::<Vec<_>>()
    })))
}

/// `GET /api/v1/conversations/{id}`.
pub async fn get(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let c = api
        .relay
        .store
        .read(|tx| conversation::get_for(tx, &path, caller.0.user_id()))?;
    Ok(response::ok(&c.view()))
}

async fn changed(
    api: &ClientApi,
    change: Change,
    kind: MembershipChange,
    actor: &str,
    users: Vec<String>,
) -> Result<HttpResponse> {
    api.relay.announce(&change, kind, actor, users).await?;
    Ok(match change.current() {
        Some(c) => response::ok(&c.view()),
        None => HttpResponse::NoContent().finish(),
    })
}

/// `PATCH /api/v1/conversations/{id}`: name, description, moderators.
pub async fn update(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    path: web::Path<String>,
    body: JsonBody<Update>,
) -> Result<HttpResponse> {
    let me = caller.0.user_id().to_string();
    let (id, u) = (path.into_inner(), body.into_inner());
    let m = me.clone();
    let change = api
        .relay
        .store
        .write(move |tx| conversation::update(tx, &id, &m, &u))
        .await?;
    changed(&api, change, MembershipChange::Updated, &me, Vec::new()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMembers {
    user_ids: Vec<String>,
}

/// `POST /api/v1/conversations/{id}/members`.
pub async fn add_members(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    path: web::Path<String>,
    body: JsonBody<AddMembers>,
) -> Result<HttpResponse> {
    let me = caller.0.account.user.clone();
    let actor = me.id.clone();
    let (id, ids) = (path.into_inner(), body.into_inner().user_ids);
    let ids2 = ids.clone();
    let change = api
        .relay
        .store
        .write(move |tx| conversation::add_members(tx, &id, &me, &ids2))
        .await?;
    changed(&api, change, MembershipChange::Added, &actor, ids).await
}

/// `DELETE /api/v1/conversations/{id}/members/{user_id}`: remove a member, or leave.
pub async fn remove_member(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let me = caller.0.user_id().to_string();
    let (id, target) = path.into_inner();
    let (m, t) = (me.clone(), target.clone());
    let change = api
        .relay
        .store
        .write(move |tx| conversation::remove_member(tx, &id, &m, &t))
        .await?;
    let kind = match (target == me, change.after.is_some()) {
        (_, false) => MembershipChange::Deleted,
        (true, true) => MembershipChange::Left,
        (false, true) => MembershipChange::Removed,
    };
    changed(&api, change, kind, &me, vec![target]).await
}

/// `DELETE /api/v1/conversations/{id}`: delete a room.
pub async fn delete(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let me = caller.0.user_id().to_string();
    let id = path.into_inner();
    let m = me.clone();
    let change = api
        .relay
        .store
        .write(move |tx| conversation::delete(tx, &id, &m))
        .await?;
    changed(&api, change, MembershipChange::Deleted, &me, Vec::new()).await
}

/// `GET /api/v1/conversations/{id}/devices`: every device to seal a message to.
pub async fn devices(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let relay = &api.relay;
    let c = relay
        .roster
        .conversation(&path)?
        .filter(|c| c.member(caller.0.user_id()).is_some())
        .ok_or_else(|| {
            Error::not_found(
                "conversation_not_found",
                "there is no such conversation, or you are not a member of it",
            )
        })?;
    let mut out = Vec::new();
    for uid in c.member_ids() {
        if let Some(a) = relay.roster.account(uid)? {
            for d in &a.receiving {
                out.push(json!({
                    "user_id": d.user_id, "device_id": d.id,
                    "x25519": d.x25519, "ed25519": d.ed25519, "compliance": false,
                }));
            }
        }
    }
    if let Some(cd) = &caller.0.account.compliance {
        out.push(json!({
            "user_id": cd.user_id, "device_id": cd.id,
            "x25519": cd.x25519, "ed25519": cd.ed25519, "compliance": true,
        }));
    }
    Ok(response::ok(&json!({ "devices": out })))
}
