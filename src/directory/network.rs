//! Networks (PRODUCT.md F1): 8-digit ids, names, tags and network settings.
//!
//! Creating a network also creates its undeletable default security group. Deleting
//! one needs the typed word `confirm` and removes its groups, users, bots and devices
//! — never retained (exported) data, which lives outside the directory.

use super::group::{self, SecurityGroup};
use super::network_settings::NetworkSettings;
use super::{patch, user, validate};
use crate::error::{Error, Problems, Result};
use crate::store::{Table, Tx, counters_with_prefix, schema};
use chrono::{DateTime, Utc};
use rand::Rng;
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use utoipa::ToSchema;

pub(crate) const NETWORKS: Table<Network> = Table::new(schema::NETWORKS);
pub const MAX_TAGS: usize = 50;
pub const NAME_MAX: usize = 64;
/// The word a person types to confirm a deletion.
pub const CONFIRM_WORD: &str = "confirm";

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Network {
    /// 8-digit id, `[0-9]{8}`.
    #[schema(pattern = "^[0-9]{8}$", example = "56019692")]
    pub id: String,
    pub name: String,
    /// Case-sensitive key → non-empty value; at most 50.
    pub tags: BTreeMap<String, String>,
    pub settings: NetworkSettings,
    pub default_group_id: String,
    /// Single sign-on is configured and on (bulk delete and suspend are then refused).
    #[serde(default)]
    pub sso_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What deleting a network removed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NetworkDeleted {
    pub network_id: String,
    pub users: u64,
    pub bots: u64,
    pub security_groups: u64,
}

pub fn key(id: &str) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// Check the typed confirmation word of a destructive action.
pub fn check_confirm(confirm: Option<&str>, what: &str) -> Result<()> {
    match confirm {
        Some(CONFIRM_WORD) => Ok(()),
        Some(other) => Err(Error::invalid(
            "confirmation_mismatch",
            format!(
                "to delete {what}, type the word \"{CONFIRM_WORD}\" exactly; {other:?} does not match"
            ),
        )),
        None => Err(Error::invalid(
            "confirmation_required",
            format!(
                "deleting {what} cannot be undone; repeat the request with confirm={CONFIRM_WORD}"
            ),
        )),
    }
}

fn check_tags(tags: &BTreeMap<String, String>, p: &mut Problems) {
    for (k, v) in tags {
        if let Err(e) = validate::tag_key(k) {
            p.push(format!("tags.{k}"), e);
        }
        if let Err(e) = validate::tag_value(v) {
            p.push(format!("tags.{k}"), e);
        }
    }
    if tags.len() > MAX_TAGS {
        p.push("tags", format!("a network has at most {MAX_TAGS} tags"));
    }
}

pub fn get<'a>(tx: impl Into<Tx<'a>>, id: &str) -> Result<Network> {
    if !validate::is_network_id(id) {
        return Err(not_found(id));
    }
    NETWORKS.get(tx, &key(id))?.ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> Error {
    Error::not_found(
        "network_not_found",
        format!("there is no network with id {id:?}"),
    )
}

pub fn list<'a>(tx: impl Into<Tx<'a>>) -> Result<Vec<Network>> {
    let mut out = Vec::new();
    NETWORKS.scan_prefix(tx, b"", None, false, |_, n| {
        out.push(n);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(out)
}

/// Create a network and its default security group.
pub fn create(
    tx: &WriteTransaction,
    name: &str,
    tags: &BTreeMap<String, String>,
    settings: Option<&Value>,
) -> Result<(Network, SecurityGroup)> {
    let mut p = Problems::default();
    let name = validate::required_name(name, NAME_MAX).unwrap_or_else(|e| {
        p.push("name", e);
        String::new()
    });
    check_tags(tags, &mut p);
    let mut settings = match settings {
        Some(patch) => patch::apply(&NetworkSettings::default(), patch, "settings")?,
        None => NetworkSettings::default(),
    };
    p.0.extend(prefixed(settings.validate(), "settings"));
    p.into_result()?;

    let id = loop {
        let candidate = rand::rng()
            .random_range(10_000_000u32..=99_999_999)
            .to_string();
        if NETWORKS.get(tx, &key(&candidate))?.is_none() {
            break candidate;
        }
    };
    settings.bump_consent_version(&NetworkSettings::default());
    let now = Utc::now();
    let default_group = group::create_default(tx, &id, settings.file_download)?;
    let network = Network {
        id: id.clone(),
        name,
        tags: tags.clone(),
        settings,
        default_group_id: default_group.id.clone(),
        sso_enabled: false,
        created_at: now,
        updated_at: now,
    };
    NETWORKS.put(tx, &key(&id), &network)?;
    Ok((network, default_group))
}

pub(crate) fn prefixed(p: Problems, prefix: &str) -> Vec<crate::error::FieldProblem> {
    p.0.into_iter()
        .map(|mut fp| {
            fp.field = format!("{prefix}.{}", fp.field);
            fp
        })
        .collect()
}

fn save(tx: &WriteTransaction, mut n: Network) -> Result<Network> {
    n.updated_at = Utc::now();
    NETWORKS.put(tx, &key(&n.id), &n)?;
    Ok(n)
}

pub fn rename(tx: &WriteTransaction, id: &str, name: &str) -> Result<Network> {
    let mut n = get(tx, id)?;
    n.name = validate::required_name(name, NAME_MAX)
        .map_err(|e| Error::validation(vec![crate::error::FieldProblem::new("name", e)]))?;
    save(tx, n)
}

/// Record whether single sign-on is on (kept in step by `auth::sso::config`).
pub fn set_sso_enabled(tx: &WriteTransaction, id: &str, on: bool) -> Result<Network> {
    let mut n = get(tx, id)?;
    n.sso_enabled = on;
    save(tx, n)
}

/// Apply a partial update to the network's settings.
pub fn update_settings(tx: &WriteTransaction, id: &str, patch: &Value) -> Result<Network> {
    let mut n = get(tx, id)?;
    let mut next: NetworkSettings = patch::apply(&n.settings, patch, "settings")?;
    Problems(prefixed(next.validate(), "settings")).into_result()?;
    next.bump_consent_version(&n.settings);
    n.settings = next;
    save(tx, n)
}

/// Add tags or change their values (a key is never renamed: remove it and add another).
pub fn tag(tx: &WriteTransaction, id: &str, tags: &BTreeMap<String, String>) -> Result<Network> {
    let mut n = get(tx, id)?;
    let mut p = Problems::default();
    check_tags(tags, &mut p);
    p.into_result()?;
    let mut merged = n.tags.clone();
    merged.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    if merged.len() > MAX_TAGS {
        return Err(Error::invalid(
            "too_many_tags",
            format!(
                "a network has at most {MAX_TAGS} tags; it has {} and this adds {}",
                n.tags.len(),
                merged.len() - n.tags.len()
            ),
        ));
    }
    n.tags = merged;
    save(tx, n)
}

/// Remove tags by key (keys are case-sensitive).
pub fn untag(tx: &WriteTransaction, id: &str, keys: &[String]) -> Result<Network> {
    let mut n = get(tx, id)?;
    if keys.is_empty() {
        return Err(Error::bad_request(
            "missing_parameter",
            "name at least one tag key to remove",
        ));
    }
    for k in keys {
        if n.tags.remove(k).is_none() {
            return Err(Error::not_found(
                "tag_not_found",
                format!("the network has no tag with key {k:?} (tag keys are case-sensitive)"),
            ));
        }
    }
    save(tx, n)
}

/// Delete a network with everything in its directory.
pub fn delete(tx: &WriteTransaction, id: &str, confirm: Option<&str>) -> Result<NetworkDeleted> {
    let n = get(tx, id)?;
    check_confirm(confirm, &format!("network {} ({})", n.id, n.name))?;
    let (users, bots) = user::delete_all_in_network(tx, id)?;
    let groups = group::delete_all_in_network(tx, id)?;
    for (name, value) in counters_with_prefix(tx, &format!("users:{id}:"))?
        .into_iter()
        .chain(counters_with_prefix(tx, &format!("bots:{id}:"))?)
    {
        crate::store::counter_add(tx, &name, -value)?;
    }
    NETWORKS.delete(tx, &key(id))?;
    Ok(NetworkDeleted {
        network_id: id.to_string(),
        users,
        bots,
        security_groups: groups,
    })
}

/// Every network id (for metrics and checks).
pub fn ids<'a>(tx: impl Into<Tx<'a>>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    tx.into().scan_raw(
        schema::NETWORKS,
        (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
        false,
        |k, _| {
            out.push(String::from_utf8_lossy(k).into_owned());
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(out)
}
