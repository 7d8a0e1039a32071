//! Admin API: security groups and their settings (F2).

use super::users::{UserPage, list_page};
use super::{GroupPageQuery, GroupPath, NetworkPath, State};
use crate::admin::api::networks::ConfirmQuery;
use crate::admin::guard::Audit;
use crate::admin::response::{JsonBody, created, ok};
use crate::directory::group::{self, GroupView};
use crate::directory::user::UserKind;
use crate::error::Result;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupList {
    pub items: Vec<GroupView>,
}

#[utoipa::path(get, path = "/networks/{network_id}/security-groups", operation_id = "ListSecurityGroups",
    tag = "security-groups", params(NetworkPath), responses((status = 200, body = GroupList)))]
pub async fn list(state: State, path: web::Path<NetworkPath>) -> Result<HttpResponse> {
    let items = state.store.read(|tx| {
        crate::directory::network::get(tx, &path.network_id)?;
        group::list(tx, &path.network_id)?
            .into_iter()
            .map(|g| group::view(tx, g))
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(ok(&GroupList { items }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// A name unique in the network; omitted = "Security group N".
    #[schema(max_length = 64)]
    pub name: Option<String>,
    /// Settings to change from their defaults (any subset, nested by tab).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
}

#[utoipa::path(post, path = "/networks/{network_id}/security-groups", operation_id = "CreateSecurityGroup",
    tag = "security-groups", params(NetworkPath),
    request_body(content = CreateGroup, description = "`{}` creates a group with a default name and default settings"),
    responses((status = 201, body = GroupView)))]
pub async fn create(
    state: State,
    audit: Audit,
    path: web::Path<NetworkPath>,
    body: JsonBody<CreateGroup>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    audit.body(&b);
    let nid = path.into_inner().network_id;
    let g = audit
        .write(&state.store, 201, move |tx| {
            let g = group::create(tx, &nid, b.name.as_deref(), b.settings.as_ref())?;
            group::view(tx, g)
        })
        .await?;
    Ok(created(&g))
}

#[utoipa::path(get, path = "/networks/{network_id}/security-groups/{group_id}",
    operation_id = "GetSecurityGroup", tag = "security-groups", params(GroupPath),
    responses((status = 200, body = GroupView)))]
pub async fn get(state: State, path: web::Path<GroupPath>) -> Result<HttpResponse> {
    let g = state.store.read(|tx| {
        let g = group::get(tx, &path.network_id, &path.group_id)?;
        group::view(tx, g)
    })?;
    Ok(ok(&g))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    /// The settings to change (any subset, nested by tab); the rest keep their values.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
}

#[utoipa::path(patch, path = "/networks/{network_id}/security-groups/{group_id}",
    operation_id = "UpdateSecurityGroup", tag = "security-groups", params(GroupPath),
    request_body = UpdateGroup, responses((status = 200, body = GroupView)))]
pub async fn update(
    state: State,
    audit: Audit,
    path: web::Path<GroupPath>,
    body: JsonBody<UpdateGroup>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let p = path.into_inner();
    let b = body.into_inner();
    let g = audit
        .write(&state.store, 200, move |tx| {
            let g = group::update(
                tx,
                &p.network_id,
                &p.group_id,
                b.name.as_deref(),
                b.settings.as_ref(),
            )?;
            group::view(tx, g)
        })
        .await?;
    Ok(ok(&g))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDeleted {
    pub group_id: String,
    /// Users and bots moved to the default group.
    pub moved_members: u64,
}

#[utoipa::path(delete, path = "/networks/{network_id}/security-groups/{group_id}",
    operation_id = "DeleteSecurityGroup", tag = "security-groups", params(GroupPath, ConfirmQuery),
    responses((status = 200, body = GroupDeleted)))]
pub async fn delete(
    state: State,
    audit: Audit,
    path: web::Path<GroupPath>,
    q: web::Query<ConfirmQuery>,
) -> Result<HttpResponse> {
    let p = path.into_inner();
    let confirm = q.into_inner().confirm;
    let gid = p.group_id.clone();
    let moved = audit
        .write(&state.store, 200, move |tx| {
            group::delete(tx, &p.network_id, &p.group_id, confirm.as_deref())
        })
        .await?;
    Ok(ok(&GroupDeleted {
        group_id: gid,
        moved_members: moved,
    }))
}

#[utoipa::path(get, path = "/networks/{network_id}/security-groups/{group_id}/users",
    operation_id = "ListSecurityGroupUsers", tag = "security-groups", params(GroupPath, GroupPageQuery),
    responses((status = 200, body = UserPage)))]
pub async fn users(
    state: State,
    path: web::Path<GroupPath>,
    q: web::Query<GroupPageQuery>,
) -> Result<HttpResponse> {
    state
        .store
        .read(|tx| group::get(tx, &path.network_id, &path.group_id))?;
    let query = q.into_inner().into_list_query(&path.group_id)?;
    list_page(&state, &path.network_id, UserKind::User, query)
}
