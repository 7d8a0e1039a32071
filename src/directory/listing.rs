//! The directory's listing entries: what the name index holds for each account.
//!
//! The name index (`users_by_name`: network, kind, username → entry) is the order the
//! team directory pages in. Its entry carries, besides the account's id, everything
//! the directory filters on — status, security group and the lowercased first, last
//! and display names — so a page, a status or group filter, or a search reads small
//! index entries in one pass and decodes only the accounts it shows. (Before schema
//! version 7 the entry was the bare id, and a search decoded every account.)
//!
//! Layout: one status byte, then NUL-terminated parts: id, group id, first, last and
//! display name in lowercase. Every part is validated to hold no control character.

use super::user::{USERS, User, UserStatus, name_key};
use crate::error::{Error, Result};
use crate::store::{RawTable, schema};
use redb::WriteTransaction;
use std::ops::ControlFlow;

/// What the directory needs to know of an account without reading its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub id: &'a str,
    pub status: UserStatus,
    pub group_id: &'a str,
    /// Lowercased first, last and display names.
    pub names: [&'a str; 3],
}

fn status_byte(s: UserStatus) -> u8 {
    match s {
        UserStatus::Pending => 0,
        UserStatus::Active => 1,
        UserStatus::Suspended => 2,
        UserStatus::Locked => 3,
    }
}

fn byte_status(b: u8) -> Option<UserStatus> {
    Some(match b {
        0 => UserStatus::Pending,
        1 => UserStatus::Active,
        2 => UserStatus::Suspended,
        3 => UserStatus::Locked,
        _ => return None,
    })
}

/// The name-index entry of `u`.
pub fn encode(u: &User) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        1 + u.id.len() + u.group_id.len() + u.first_name.len() + u.last_name.len() + 8,
    );
    out.push(status_byte(u.status()));
    for part in [u.id.as_str(), u.group_id.as_str()] {
        out.extend_from_slice(part.as_bytes());
        out.push(0);
    }
    for name in [&u.first_name, &u.last_name, &u.display_name] {
        out.extend_from_slice(name.to_lowercase().as_bytes());
        out.push(0);
    }
    out
}

fn corrupt() -> Error {
    Error::internal("a directory name-index entry is corrupt; run `outpost store check`")
}

/// Read a name-index entry.
pub fn decode(raw: &[u8]) -> Result<Entry<'_>> {
    let (&status, rest) = raw.split_first().ok_or_else(corrupt)?;
    let status = byte_status(status).ok_or_else(corrupt)?;
    let mut parts = rest
        .strip_suffix(&[0])
        .ok_or_else(corrupt)?
        .split(|b| *b == 0)
        .map(std::str::from_utf8);
    let mut next = || -> Result<&str> { parts.next().and_then(|p| p.ok()).ok_or_else(corrupt) };
    Ok(Entry {
        id: next()?,
        group_id: next()?,
        names: [next()?, next()?, next()?],
        status,
    })
}

impl Entry<'_> {
    /// Whether `needle` (already lowercased) is in the username or one of the names.
    pub fn mentions(&self, username: &str, needle: &str) -> bool {
        username.contains(needle) || self.names.iter().any(|n| n.contains(needle))
    }
}

/// Schema migration 7: write every account's entry into the name index (which held
/// bare ids before). Runs inside the migration's transaction.
pub(crate) fn rebuild_name_index(tx: &WriteTransaction) -> Result<()> {
    let mut entries = Vec::new();
    USERS.scan_prefix(tx, b"", None, false, |_, u| {
        entries.push((name_key(&u.network_id, u.kind, &u.username), encode(&u)));
        Ok(ControlFlow::Continue(()))
    })?;
    let mut index = RawTable::new(schema::USERS_BY_NAME).open(tx)?;
    for (k, v) in entries {
        index.insert(&k, &v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::user::UserKind;

    #[test]
    fn an_entry_reads_back_what_the_directory_filters_on() {
        let mut u = User::new("12345678", UserKind::User, "ann@x.org".into(), "g1".into());
        u.first_name = "Ann-Sophie".into();
        u.last_name = "MÜLLER".into();
        u.suspended = true;
        let raw = encode(&u);
        let e = decode(&raw).unwrap();
        assert_eq!(e.id, u.id);
        assert_eq!(e.group_id, "g1");
        assert_eq!(e.status, UserStatus::Suspended);
        assert_eq!(e.names, ["ann-sophie", "müller", ""]);
        assert!(e.mentions("ann@x.org", "müll"));
        assert!(e.mentions("ann@x.org", "@x.o"));
        assert!(!e.mentions("ann@x.org", "bob"));
    }

    #[test]
    fn a_bare_id_or_garbage_is_refused_not_misread() {
        for raw in [&b""[..], b"0196a-id", b"\x09a\0b\0c\0d\0e\0", b"\x01a\0b\0"] {
            assert!(decode(raw).is_err(), "{raw:?}");
        }
    }
}
