//! Security groups (PRODUCT.md F2): named policy sets; every user is in exactly one.
//!
//! Each network has one default group that cannot be deleted. Deleting another group
//! needs the typed word `confirm` and moves its members to the default group, in the
//! same transaction. Group names are unique within a network (case-insensitively),
//! so a CSV file can name groups unambiguously.

use super::group_settings::GroupSettings;
use super::network::{self, check_confirm, prefixed};
use super::{patch, user, validate};
use crate::error::{Error, FieldProblem, Problems, Result};
use crate::store::{Key, RawTable, Table, Tx, counter_get, schema};
use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub(crate) const GROUPS: Table<SecurityGroup> = Table::new(schema::GROUPS);
const BY_NETWORK: RawTable = RawTable::new(schema::GROUPS_BY_NETWORK);
pub const NAME_MAX: usize = 64;
pub const MAX_GROUPS_PER_NETWORK: usize = 1000;
pub const DEFAULT_GROUP_NAME: &str = "Default";

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecurityGroup {
    pub id: String,
    pub network_id: String,
    pub name: String,
    /// The network's default group: cannot be deleted; members of deleted groups move here.
    pub is_default: bool,
    pub settings: GroupSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A group with its member counts, as the admin API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupView {
    #[serde(flatten)]
    pub group: SecurityGroup,
    /// Users (not bots) in the group.
    pub active_members: i64,
    pub bot_members: i64,
}

fn index_key(network_id: &str, group_id: &str) -> Vec<u8> {
    Key::new().s(network_id).s(group_id).into_bytes()
}

pub fn members_counter(group_id: &str, bots: bool) -> String {
    format!("group:{group_id}:{}", if bots { "bots" } else { "users" })
}

pub fn view<'a>(tx: impl Into<Tx<'a>>, group: SecurityGroup) -> Result<GroupView> {
    let tx = tx.into();
    Ok(GroupView {
        active_members: counter_get(tx, &members_counter(&group.id, false))?,
        bot_members: counter_get(tx, &members_counter(&group.id, true))?,
        group,
    })
}

fn not_found(network_id: &str, id: &str) -> Error {
    Error::not_found(
        "security_group_not_found",
        format!("network {network_id} has no security group with id {id:?}"),
    )
}

/// The group `id`, which must belong to `network_id`.
pub fn get<'a>(tx: impl Into<Tx<'a>>, network_id: &str, id: &str) -> Result<SecurityGroup> {
    if !validate::is_record_id(id) {
        return Err(not_found(network_id, id));
    }
    match GROUPS.get(tx, id.as_bytes())? {
        Some(g) if g.network_id == network_id => Ok(g),
        _ => Err(not_found(network_id, id)),
    }
}

/// The group a user or bot is being placed in, named by the request field
/// `security_group_id`: a missing group is a problem with that field (422), not a
/// missing resource (404).
pub fn for_member<'a>(tx: impl Into<Tx<'a>>, network_id: &str, id: &str) -> Result<SecurityGroup> {
    get(tx, network_id, id).map_err(|_| {
        Error::validation(vec![FieldProblem::new(
            "security_group_id",
            format!("network {network_id} has no security group with id {id:?}"),
        )])
    })
}

pub fn list<'a>(tx: impl Into<Tx<'a>>, network_id: &str) -> Result<Vec<SecurityGroup>> {
    let tx = tx.into();
    let ids = tx.ids_with_prefix(
        schema::GROUPS_BY_NETWORK,
        &Key::new().s(network_id).into_bytes(),
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(g) = GROUPS.get(tx, id.as_bytes())? {
            out.push(g);
        }
    }
    out.sort_by(|a, b| {
        b.is_default
            .cmp(&a.is_default)
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    Ok(out)
}

/// Find a group of `network_id` by id or by (case-insensitive) name.
pub fn find(groups: &[SecurityGroup], id_or_name: &str) -> Option<SecurityGroup> {
    let wanted = id_or_name.trim();
    groups
        .iter()
        .find(|g| g.id == wanted)
        .or_else(|| groups.iter().find(|g| g.name.eq_ignore_ascii_case(wanted)))
        .cloned()
}

fn name_taken(groups: &[SecurityGroup], name: &str, except: Option<&str>) -> bool {
    groups
        .iter()
        .any(|g| Some(g.id.as_str()) != except && g.name.eq_ignore_ascii_case(name))
}

fn insert(tx: &WriteTransaction, g: &SecurityGroup) -> Result<()> {
    GROUPS.put(tx, g.id.as_bytes(), g)?;
    BY_NETWORK.put(tx, &index_key(&g.network_id, &g.id), b"")
}

/// The default group of a new network.
pub(crate) fn create_default(
    tx: &WriteTransaction,
    network_id: &str,
    file_download: bool,
) -> Result<SecurityGroup> {
    let now = Utc::now();
    let mut settings = GroupSettings::default();
    settings.media.file_download = file_download;
    let g = SecurityGroup {
        id: uuid::Uuid::now_v7().to_string(),
        network_id: network_id.to_string(),
        name: DEFAULT_GROUP_NAME.into(),
        is_default: true,
        settings,
        created_at: now,
        updated_at: now,
    };
    insert(tx, &g)?;
    Ok(g)
}

/// Create a group; with no name it gets a default one ("Security group N").
pub fn create(
    tx: &WriteTransaction,
    network_id: &str,
    name: Option<&str>,
    settings: Option<&Value>,
) -> Result<SecurityGroup> {
    let net = network::get(tx, network_id)?;
    let existing = list(tx, network_id)?;
    if existing.len() >= MAX_GROUPS_PER_NETWORK {
        return Err(Error::invalid(
            "too_many_groups",
            format!("a network has at most {MAX_GROUPS_PER_NETWORK} security groups"),
        ));
    }
    let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => validate::required_name(n, NAME_MAX)
            .map_err(|e| Error::validation(vec![FieldProblem::new("name", e)]))?,
        None => (existing.len()..)
            .map(|i| format!("Security group {i}"))
            .find(|n| !name_taken(&existing, n, None))
            .expect("an unused name exists"),
    };
    if name_taken(&existing, &name, None) {
        return Err(name_conflict(&name));
    }
    let mut base = GroupSettings::default();
    base.media.file_download = net.settings.file_download;
    let settings = match settings {
        Some(p) => patch::apply(&base, p, "settings")?,
        None => base,
    };
    Problems(prefixed(settings.validate(network_id), "settings")).into_result()?;
    let now = Utc::now();
    let g = SecurityGroup {
        id: uuid::Uuid::now_v7().to_string(),
        network_id: network_id.to_string(),
        name,
        is_default: false,
        settings,
        created_at: now,
        updated_at: now,
    };
    insert(tx, &g)?;
    Ok(g)
}

fn name_conflict(name: &str) -> Error {
    Error::conflict(
        "security_group_name_taken",
        format!("the network already has a security group named {name:?}"),
    )
}

/// Rename a group and/or apply a partial settings update.
pub fn update(
    tx: &WriteTransaction,
    network_id: &str,
    id: &str,
    name: Option<&str>,
    settings: Option<&Value>,
) -> Result<SecurityGroup> {
    let mut g = get(tx, network_id, id)?;
    if let Some(name) = name {
        let name = validate::required_name(name, NAME_MAX)
            .map_err(|e| Error::validation(vec![FieldProblem::new("name", e)]))?;
        if name_taken(&list(tx, network_id)?, &name, Some(id)) {
            return Err(name_conflict(&name));
        }
        g.name = name;
    }
    if let Some(p) = settings {
        let next: GroupSettings = patch::apply(&g.settings, p, "settings")?;
        Problems(prefixed(next.validate(network_id), "settings")).into_result()?;
        g.settings = next;
    }
    g.updated_at = Utc::now();
    GROUPS.put(tx, g.id.as_bytes(), &g)?;
    Ok(g)
}

/// Delete a group, moving its members to the network's default group.
/// Returns how many users and bots moved.
pub fn delete(
    tx: &WriteTransaction,
    network_id: &str,
    id: &str,
    confirm: Option<&str>,
) -> Result<u64> {
    let g = get(tx, network_id, id)?;
    if g.is_default {
        return Err(Error::invalid(
            "default_group_undeletable",
            "the default security group cannot be deleted; members of deleted groups move to it",
        ));
    }
    check_confirm(confirm, &format!("security group {:?}", g.name))?;
    let net = network::get(tx, network_id)?;
    let moved = user::move_group_members(tx, &g.id, &net.default_group_id)?;
    GROUPS.delete(tx, g.id.as_bytes())?;
    BY_NETWORK.delete(tx, &index_key(network_id, id))?;
    Ok(moved)
}

/// Remove every group of a network (the users must already be gone).
pub(crate) fn delete_all_in_network(tx: &WriteTransaction, network_id: &str) -> Result<u64> {
    let groups = list(tx, network_id)?;
    for g in &groups {
        GROUPS.delete(tx, g.id.as_bytes())?;
        BY_NETWORK.delete(tx, &index_key(network_id, &g.id))?;
    }
    Ok(groups.len() as u64)
}
