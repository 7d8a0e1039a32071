//! The directory: networks, security groups, users, bots and devices.
//!
//! Each submodule owns one kind of record and exposes functions over a store
//! transaction, so the admin API can combine a directory change with its audit event
//! in one atomic commit. This module adds what spans them: the consistency check
//! behind `outpost store check`, and the directory metrics.

pub mod bulk;
pub mod device;
pub mod group;
pub mod group_settings;
pub mod link;
pub mod listing;
pub mod network;
pub mod network_settings;
pub mod patch;
pub mod user;
pub mod validate;

use crate::error::Result;
use crate::store::{Tx, counters_with_prefix, schema};
use std::collections::HashMap;
use std::ops::ControlFlow;
use user::{USERS, User, UserKind};

/// Check that indexes and counters agree with the records; returns every mismatch.
pub fn check<'a>(tx: impl Into<Tx<'a>>) -> Result<Vec<String>> {
    let tx = tx.into();
    let mut problems = Vec::new();
    let networks = network::list(tx)?;
    let mut expected: HashMap<String, i64> = HashMap::new();
    let mut users: Vec<User> = Vec::new();
    USERS.scan_prefix(tx, b"", None, false, |_, u| {
        users.push(u);
        Ok(ControlFlow::Continue(()))
    })?;
    for u in &users {
        *expected
            .entry(user::status_counter(&u.network_id, u.kind, u.status()))
            .or_default() += 1;
        *expected
            .entry(group::members_counter(&u.group_id, u.kind == UserKind::Bot))
            .or_default() += 1;
        match user::by_name(tx, &u.network_id, u.kind, &u.username)? {
            Some(found) if found.id == u.id => {
                if !user::listing_is_current(tx, u)? {
                    problems.push(format!(
                        "user {}'s name-index entry is out of date (status, group or names)",
                        u.id
                    ));
                }
            }
            _ => problems.push(format!("user {} is missing from the name index", u.id)),
        }
        if !networks.iter().any(|n| n.id == u.network_id) {
            problems.push(format!("user {} belongs to a missing network", u.id));
        }
        if group::get(tx, &u.network_id, &u.group_id).is_err() {
            problems.push(format!("user {} is in a missing security group", u.id));
        }
    }
    let indexed = tx.count_raw(
        schema::USERS_BY_NAME,
        (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
    )?;
    if indexed != users.len() as u64 {
        problems.push(format!(
            "the name index has {indexed} entries for {} users",
            users.len()
        ));
    }
    for n in &networks {
        if group::get(tx, &n.id, &n.default_group_id).is_err() {
            problems.push(format!("network {} has lost its default group", n.id));
        }
    }
    let mut actual: HashMap<String, i64> = HashMap::new();
    for prefix in ["users:", "bots:", "group:"] {
        actual.extend(counters_with_prefix(tx, prefix)?);
    }
    for (name, want) in &expected {
        let have = actual.get(name).copied().unwrap_or(0);
        if have != *want {
            problems.push(format!("counter {name} is {have}, the records say {want}"));
        }
    }
    for (name, have) in &actual {
        if !expected.contains_key(name) && *have != 0 {
            problems.push(format!("counter {name} is {have}, the records say 0"));
        }
    }
    Ok(problems)
}

/// Refresh the directory gauges from the store's counters (cheap: no scans of users).
pub fn update_metrics<'a>(tx: impl Into<Tx<'a>>) -> Result<()> {
    use crate::metrics::directory::{BOTS, NETWORKS, USERS as USERS_GAUGE};
    let tx = tx.into();
    let ids = network::ids(tx)?;
    NETWORKS.set(ids.len() as i64);
    USERS_GAUGE.reset();
    BOTS.reset();
    for id in &ids {
        for (status, n) in user::counts(tx, id, UserKind::User)? {
            USERS_GAUGE
                .with_label_values(&[id.as_str(), status.as_str()])
                .set(n);
        }
        let bots: i64 = user::counts(tx, id, UserKind::Bot)?
            .into_iter()
            .map(|(_, n)| n)
            .sum();
        BOTS.with_label_values(&[id.as_str()]).set(bots);
    }
    Ok(())
}
