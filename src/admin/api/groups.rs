//! Admin API: security groups and their settings (F2).

use super::users::{UserPage, list_page};
use super::{GroupPageQuery, GroupPath, NetworkPath, State};
use crate::admin::AdminState;
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
    let items = list_groups(&state, &path.network_id)?;
    Ok(ok(&GroupList { items }))
}

/// A network's groups with their member counts (ListSecurityGroups, for the API and the
/// console).
pub fn list_groups(state: &AdminState, network_id: &str) -> Result<Vec<GroupView>> {
    state.store.read(|tx| {
        crate::directory::network::get(tx, network_id)?;
        group::list(tx, network_id)?
            .into_iter()
            .map(|g| group::view(tx, g))
            .collect::<Result<Vec<_>>>()
    })
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
    let g = create_group(&state, &audit, path.into_inner().network_id, b).await?;
    Ok(created(&g))
}

/// Create a group (CreateSecurityGroup, for the API and the console).
pub async fn create_group(
    state: &AdminState,
    audit: &Audit,
    network_id: String,
    b: CreateGroup,
) -> Result<GroupView> {
    audit
        .write(&state.store, 201, move |tx| {
            let g = group::create(tx, &network_id, b.name.as_deref(), b.settings.as_ref())?;
            group::view(tx, g)
        })
        .await
}

#[utoipa::path(get, path = "/networks/{network_id}/security-groups/{group_id}",
    operation_id = "GetSecurityGroup", tag = "security-groups", params(GroupPath),
    responses((status = 200, body = GroupView)))]
pub async fn get(state: State, path: web::Path<GroupPath>) -> Result<HttpResponse> {
    let g = get_group(&state, &path.network_id, &path.group_id)?;
    Ok(ok(&g))
}

/// One group with its member counts (GetSecurityGroup, for the API and the console).
pub fn get_group(state: &AdminState, network_id: &str, group_id: &str) -> Result<GroupView> {
    state.store.read(|tx| {
        let g = group::get(tx, network_id, group_id)?;
        group::view(tx, g)
    })
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
    let g = update_group(&state, &audit, p.network_id, p.group_id, body.into_inner()).await?;
    Ok(ok(&g))
}

/// Rename a group and/or change some of its settings (UpdateSecurityGroup, for the API
/// and the console): the same validation whichever front asks.
pub async fn update_group(
    state: &AdminState,
    audit: &Audit,
    network_id: String,
    group_id: String,
    b: UpdateGroup,
) -> Result<GroupView> {
    audit
        .write(&state.store, 200, move |tx| {
            let g = group::update(
                tx,
                &network_id,
                &group_id,
                b.name.as_deref(),
                b.settings.as_ref(),
            )?;
            group::view(tx, g)
        })
        .await
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
    let r = delete_group(
        &state,
        &audit,
        p.network_id,
        p.group_id,
        q.into_inner().confirm,
    )
    .await?;
    Ok(ok(&r))
}

/// Delete a group once `confirm` is the word `confirm`, moving its members to the
/// default group (DeleteSecurityGroup, for the API and the console).
pub async fn delete_group(
    state: &AdminState,
    audit: &Audit,
    network_id: String,
    group_id: String,
    confirm: Option<String>,
) -> Result<GroupDeleted> {
    let gid = group_id.clone();
    let moved = audit
        .write(&state.store, 200, move |tx| {
            group::delete(tx, &network_id, &group_id, confirm.as_deref())
        })
        .await?;
    Ok(GroupDeleted {
        group_id: gid,
        moved_members: moved,
    })
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
