//! Admin API: networks, their settings, data-retention switch and tags (F1).

use super::{NetworkPath, State};
use crate::admin::AdminState;
use crate::admin::guard::Audit;
use crate::admin::response::{JsonBody, created, ok};
use crate::auth::{Caller, admin as admins};
use crate::directory::network::{self, Network, NetworkDeleted};
use crate::directory::network_settings::NetworkSettings;
use crate::error::{Error, Result};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkList {
    pub items: Vec<Network>,
}

#[utoipa::path(get, path = "/networks", operation_id = "ListNetworks", tag = "networks",
    responses((status = 200, body = NetworkList)))]
pub async fn list(state: State, caller: Caller) -> Result<HttpResponse> {
    let items = visible(&state, &caller)?;
    Ok(ok(&NetworkList { items }))
}

/// The networks `caller` may see (ListNetworks, for the API and the console).
pub fn visible(state: &AdminState, caller: &Caller) -> Result<Vec<Network>> {
    Ok(state
        .store
        .read(|tx| network::list(tx))?
        .into_iter()
        .filter(|n| caller.admin.reaches(&n.id))
        .collect())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNetwork {
    /// 1–64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Network settings to change from their defaults (any subset).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
}

#[utoipa::path(post, path = "/networks", operation_id = "CreateNetwork", tag = "networks",
    request_body = CreateNetwork,
    responses((status = 201, body = Network)))]
pub async fn create(
    state: State,
    audit: Audit,
    body: JsonBody<CreateNetwork>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let n = create_network(&state, &audit, body.into_inner()).await?;
    Ok(created(&n))
}

/// Create a network (CreateNetwork, for the API and the console).
pub async fn create_network(
    state: &AdminState,
    audit: &Audit,
    b: CreateNetwork,
) -> Result<Network> {
    let (n, _) = audit
        .write(&state.store, 201, move |tx| {
            network::create(tx, &b.name, &b.tags, b.settings.as_ref())
        })
        .await?;
    Ok(n)
}

#[utoipa::path(get, path = "/networks/{network_id}", operation_id = "GetNetwork", tag = "networks",
    params(NetworkPath), responses((status = 200, body = Network)))]
pub async fn get(state: State, path: web::Path<NetworkPath>) -> Result<HttpResponse> {
    let n = state.store.read(|tx| network::get(tx, &path.network_id))?;
    Ok(ok(&n))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNetwork {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
}

#[utoipa::path(patch, path = "/networks/{network_id}", operation_id = "UpdateNetwork", tag = "networks",
    params(NetworkPath), request_body = UpdateNetwork, responses((status = 200, body = Network)))]
pub async fn update(
    state: State,
    audit: Audit,
    path: web::Path<NetworkPath>,
    body: JsonBody<UpdateNetwork>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let n = rename_network(
        &state,
        &audit,
        path.into_inner().network_id,
        body.into_inner().name,
    )
    .await?;
    Ok(ok(&n))
}

/// Rename a network (UpdateNetwork, for the API and the console).
pub async fn rename_network(
    state: &AdminState,
    audit: &Audit,
    id: String,
    name: String,
) -> Result<Network> {
    audit
        .write(&state.store, 200, move |tx| network::rename(tx, &id, &name))
        .await
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ConfirmQuery {
    /// Type the word `confirm`.
    pub confirm: Option<String>,
}

#[utoipa::path(delete, path = "/networks/{network_id}", operation_id = "DeleteNetwork", tag = "networks",
    params(NetworkPath, ConfirmQuery), responses((status = 200, body = NetworkDeleted)))]
pub async fn delete(
    state: State,
    audit: Audit,
    path: web::Path<NetworkPath>,
    q: web::Query<ConfirmQuery>,
) -> Result<HttpResponse> {
    let r = delete_network(
        &state,
        &audit,
        path.into_inner().network_id,
        q.into_inner().confirm,
    )
    .await?;
    Ok(ok(&r))
}

/// Delete a network once `confirm` is the word `confirm` (DeleteNetwork, for the API and
/// the console).
pub async fn delete_network(
    state: &AdminState,
    audit: &Audit,
    id: String,
    confirm: Option<String>,
) -> Result<NetworkDeleted> {
    audit
        .write(&state.store, 200, move |tx| {
            let r = network::delete(tx, &id, confirm.as_deref())?;
            admins::forget_network(tx, &id)?;
            crate::auth::sso::config::forget_network(tx, &id)?;
            Ok(r)
        })
        .await
}

#[utoipa::path(get, path = "/networks/{network_id}/settings", operation_id = "GetNetworkSettings",
    tag = "networks", params(NetworkPath), responses((status = 200, body = NetworkSettings)))]
pub async fn get_settings(state: State, path: web::Path<NetworkPath>) -> Result<HttpResponse> {
    let n = state.store.read(|tx| network::get(tx, &path.network_id))?;
    Ok(ok(&n.settings))
}

#[utoipa::path(patch, path = "/networks/{network_id}/settings", operation_id = "UpdateNetworkSettings",
    tag = "networks", params(NetworkPath),
    request_body(content = Object, description = "Any subset of NetworkSettings, nested by section. \
        `data_retention` changes only through UpdateDataRetention; `consent.version` is set by the server."),
    responses((status = 200, body = NetworkSettings)))]
pub async fn update_settings(
    state: State,
    audit: Audit,
    path: web::Path<NetworkPath>,
    body: JsonBody<Value>,
) -> Result<HttpResponse> {
    audit.param("settings", body.0.clone());
    let id = path.into_inner().network_id;
    let patch = body.into_inner();
    let n = audit
        .write(&state.store, 200, move |tx| {
            let current = network::get(tx, &id)?;
            if let Some(v) = patch.get("data_retention")
                && v != &Value::Bool(current.settings.data_retention)
            {
                return Err(Error::invalid(
                    "use_update_data_retention",
                    "data retention is switched with UpdateDataRetention \
                     (PUT /admin/api/v1/networks/{network_id}/data-retention), which needs the \
                     compliance or owner role",
                ));
            }
            network::update_settings(tx, &id, &patch)
        })
        .await?;
    Ok(ok(&n.settings))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataRetention {
    /// Every message must then be sent to the network's compliance member as well.
    pub enabled: bool,
}

/// Whether data retention is on, and the compliance device senders must include.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DataRetentionState {
    /// Every message must then be sent to the network's compliance member as well.
    pub enabled: bool,
    /// The compliance device every envelope must be sealed to while retention is on
    /// (set with PutComplianceDevice); null until published.
    pub compliance_device: Option<ComplianceDevice>,
    /// The appliance's retention exporter (GetDataRetention only): its state and
    /// recent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub exporter: Option<Value>,
}

/// The public keys of a network's compliance device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplianceDeviceKeys {
    /// X25519 public key (32 bytes, base64) the relay's senders seal content keys to.
    pub x25519: String,
    /// Ed25519 public key (32 bytes, base64).
    pub ed25519: String,
}

/// A network's compliance device as the admin API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ComplianceDevice {
    pub device_id: String,
    pub x25519: String,
    pub ed25519: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn compliance_view(d: Option<crate::directory::device::Device>) -> Option<ComplianceDevice> {
    let d = d?;
    let (x, e) = d.keys()?;
    Some(ComplianceDevice {
        device_id: d.id.clone(),
        x25519: x.to_string(),
        ed25519: e.to_string(),
        created_at: d.created_at,
    })
}

#[utoipa::path(get, path = "/networks/{network_id}/data-retention", operation_id = "GetDataRetention",
    tag = "networks", params(NetworkPath), responses((status = 200, body = DataRetentionState)))]
pub async fn get_retention(
    state: State,
    retention: web::Data<std::sync::Arc<crate::retention::Retention>>,
    path: web::Path<NetworkPath>,
) -> Result<HttpResponse> {
    let (n, d) = state.store.read(|tx| {
        Ok((
            network::get(tx, &path.network_id)?,
            crate::relay::compliance::get(tx, &path.network_id)?,
        ))
    })?;
    let (status, events) = retention.status();
    Ok(ok(&DataRetentionState {
        enabled: n.settings.data_retention,
        compliance_device: compliance_view(d),
        exporter: Some(serde_json::json!({
            "status": status,
            "key": status.networks.get(&n.id),
            "events": events,
        })),
    }))
}

#[utoipa::path(put, path = "/networks/{network_id}/data-retention", operation_id = "UpdateDataRetention",
    tag = "networks", params(NetworkPath), request_body = DataRetention,
    responses((status = 200, body = DataRetentionState)))]
pub async fn update_retention(
    state: State,
    audit: Audit,
    retention: web::Data<std::sync::Arc<crate::retention::Retention>>,
    path: web::Path<NetworkPath>,
    body: JsonBody<DataRetention>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let id = path.into_inner().network_id;
    let enabled = body.enabled;
    // Enabling creates (or reuses) the compliance key pair sealed with the retention
    // passphrase and publishes the compliance device; disabling keeps everything.
    let sealed = if enabled {
        Some(retention.prepare_enable(&id).await?)
    } else {
        None
    };
    let net = id.clone();
    let (on, d) = audit
        .write(&state.store, 200, move |tx| match &sealed {
            Some(s) => crate::retention::Retention::apply_enable(tx, &net, s.as_ref()),
            None => crate::retention::Retention::apply_disable(tx, &net),
        })
        .await?;
    retention.changed(&id, on);
    Ok(ok(&DataRetentionState {
        enabled: on,
        compliance_device: compliance_view(d),
        exporter: None,
    }))
}

#[utoipa::path(put, path = "/networks/{network_id}/data-retention/compliance-device",
    operation_id = "PutComplianceDevice", tag = "networks", params(NetworkPath),
    request_body = ComplianceDeviceKeys,
    responses((status = 200, body = ComplianceDevice, description = "The compliance device \
        every envelope must be sealed to while data retention is on. New keys make a new \
        device id, so senders fetch the new key.")))]
pub async fn put_compliance_device(
    state: State,
    audit: Audit,
    path: web::Path<NetworkPath>,
    body: JsonBody<ComplianceDeviceKeys>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let id = path.into_inner().network_id;
    let k = body.into_inner();
    let d = audit
        .write(&state.store, 200, move |tx| {
            network::get(tx, &id)?;
            crate::relay::compliance::publish(tx, &id, &k.x25519, &k.ed25519)
        })
        .await?;
    Ok(ok(&compliance_view(Some(d))))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tags {
    /// Case-sensitive key → non-empty value.
    pub tags: BTreeMap<String, String>,
}

#[utoipa::path(get, path = "/networks/{network_id}/tags", operation_id = "ListTagsForResource",
    tag = "networks", params(NetworkPath), responses((status = 200, body = Tags)))]
pub async fn list_tags(state: State, path: web::Path<NetworkPath>) -> Result<HttpResponse> {
    let n = state.store.read(|tx| network::get(tx, &path.network_id))?;
    Ok(ok(&Tags { tags: n.tags }))
}

#[utoipa::path(post, path = "/networks/{network_id}/tags", operation_id = "TagResource",
    tag = "networks", params(NetworkPath), request_body = Tags,
    responses((status = 200, body = Tags, description = "All of the network's tags after the change")))]
pub async fn tag(
    state: State,
    audit: Audit,
    path: web::Path<NetworkPath>,
    body: JsonBody<Tags>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let tags = tag_network(
        &state,
        &audit,
        path.into_inner().network_id,
        body.into_inner().tags,
    )
    .await?;
    Ok(ok(&Tags { tags }))
}

/// Add or change tags (TagResource, for the API and the console); returns all tags.
pub async fn tag_network(
    state: &AdminState,
    audit: &Audit,
    id: String,
    tags: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let n = audit
        .write(&state.store, 200, move |tx| network::tag(tx, &id, &tags))
        .await?;
    Ok(n.tags)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TagPath {
    pub network_id: String,
    /// The tag key (case-sensitive, URL-encoded).
    pub key: String,
}

#[utoipa::path(delete, path = "/networks/{network_id}/tags/{key}", operation_id = "UntagResource",
    tag = "networks", params(TagPath),
    responses((status = 200, body = Tags, description = "All of the network's tags after the change")))]
pub async fn untag(state: State, audit: Audit, path: web::Path<TagPath>) -> Result<HttpResponse> {
    let p = path.into_inner();
    let tags = untag_network(&state, &audit, p.network_id, p.key).await?;
    Ok(ok(&Tags { tags }))
}

/// Remove a tag (UntagResource, for the API and the console); returns all tags.
pub async fn untag_network(
    state: &AdminState,
    audit: &Audit,
    id: String,
    key: String,
) -> Result<BTreeMap<String, String>> {
    let n = audit
        .write(&state.store, 200, move |tx| {
            network::untag(tx, &id, std::slice::from_ref(&key))
        })
        .await?;
    Ok(n.tags)
}
