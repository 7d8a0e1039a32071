//! Conversations (PRODUCT.md F6): direct conversations between two users and rooms
//! of up to 500 members with names, descriptions and moderators.
//!
//! The server knows membership because it routes by it; it never knows content.
//! This file owns the records and the membership rules. Every change returns the
//! conversation before and after, so the caller can tell both sets of members
//! (PROTOCOL.md §3: members before and after a change receive its event).

use crate::directory::user::{self, User, UserStatus};
use crate::error::{Error, Result};
use crate::store::{Key, RawTable, Table, Tx, schema};
use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};

pub const MAX_MEMBERS: usize = 500;
pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 1000;

pub(crate) const CONVERSATIONS: Table<Conversation> = Table::new(schema::CONVERSATIONS);
const BY_USER: RawTable = RawTable::new(schema::CONVERSATIONS_BY_USER);
const DIRECT: RawTable = RawTable::new(schema::DIRECT_CONVERSATIONS);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Direct,
    Room,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub moderator: bool,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub kind: ConversationKind,
    pub network_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub members: Vec<Member>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Conversation {
    pub fn member(&self, user_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.user_id == user_id)
    }

    pub fn is_moderator(&self, user_id: &str) -> bool {
        self.member(user_id).is_some_and(|m| m.moderator)
    }

    pub fn member_ids(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.user_id.as_str())
    }

    /// The JSON clients see (PROTOCOL.md §3).
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "kind": self.kind,
            "network_id": self.network_id,
            "name": self.name,
            "description": self.description,
            "members": self.members.iter().map(|m| serde_json::json!({
                "user_id": m.user_id, "moderator": m.moderator,
            })).collect::<Vec<_>>(),
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// A change to a conversation: the record before (absent when created) and after
/// (absent when deleted).
#[derive(Debug, Clone)]
pub struct Change {
    pub before: Option<Conversation>,
    pub after: Option<Conversation>,
}

impl Change {
    /// Everyone who was or is a member.
    pub fn audience(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for c in [&self.before, &self.after].into_iter().flatten() {
            for m in &c.members {
                if !ids.contains(&m.user_id) {
                    ids.push(m.user_id.clone());
                }
            }
        }
        ids
    }

    pub fn current(&self) -> Option<&Conversation> {
        self.after.as_ref()
    }
}

fn not_found() -> Error {
    Error::not_found(
        "conversation_not_found",
        "there is no such conversation, or you are not a member of it",
    )
}

/// A conversation the caller is a member of.
pub fn get_for<'a>(tx: impl Into<Tx<'a>>, id: &str, user_id: &str) -> Result<Conversation> {
    let c = get(tx, id)?.ok_or_else(not_found)?;
    if c.member(user_id).is_none() {
        return Err(not_found());
    }
    Ok(c)
}

pub fn get<'a>(tx: impl Into<Tx<'a>>, id: &str) -> Result<Option<Conversation>> {
    CONVERSATIONS.get(tx, id.as_bytes())
}

/// Every conversation `user_id` is a member of, oldest first.
pub fn list_for<'a>(tx: impl Into<Tx<'a>> + Copy, user_id: &str) -> Result<Vec<Conversation>> {
    let ids = tx.into().ids_with_prefix(
        schema::CONVERSATIONS_BY_USER,
        &Key::new().s(user_id).into_bytes(),
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(c) = get(tx, &id)? {
            out.push(c);
        }
    }
    out.sort_by_key(|c| c.created_at);
    Ok(out)
}

fn put(tx: &WriteTransaction, old: Option<&Conversation>, new: &Conversation) -> Result<()> {
    if let Some(old) = old {
        for m in &old.members {
            if new.member(&m.user_id).is_none() {
                BY_USER.delete(tx, &Key::new().s(&m.user_id).s(&old.id).into_bytes())?;
            }
        }
    }
    for m in &new.members {
        if old.is_none_or(|o| o.member(&m.user_id).is_none()) {
            BY_USER.put(tx, &Key::new().s(&m.user_id).s(&new.id).into_bytes(), &[])?;
        }
    }
    CONVERSATIONS.put(tx, new.id.as_bytes(), new)
}

/// A user who may be added to a conversation in `network_id`.
fn addable(tx: &WriteTransaction, network_id: &str, user_id: &str) -> Result<User> {
    let u = user::by_id(tx, user_id)?
        .filter(|u| u.network_id == network_id)
        .ok_or_else(|| {
            Error::invalid(
                "user_not_found",
                format!("there is no user {user_id:?} in this network"),
            )
            .with_details(serde_json::json!({ "user_id": user_id }))
        })?;
    if matches!(u.status(), UserStatus::Suspended) {
        return Err(Error::invalid(
            "user_suspended",
            format!("{} is suspended and cannot join conversations", u.username),
        )
        .with_details(serde_json::json!({ "user_id": user_id })));
    }
    Ok(u)
}

fn direct_key(network_id: &str, a: &str, b: &str) -> Vec<u8> {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    Key::new().s(network_id).s(x).s(y).into_bytes()
}

/// The direct conversation between `me` and `peer`, created if needed; the bool says
/// whether it was created.
pub fn open_direct(tx: &WriteTransaction, me: &User, peer_id: &str) -> Result<(Change, bool)> {
    if peer_id == me.id {
        return Err(Error::invalid(
            "invalid_conversation",
            "a direct conversation needs another user; use a room to keep notes to yourself",
        ));
    }
    let dkey = direct_key(&me.network_id, &me.id, peer_id);
    if let Some(id) = DIRECT.get(tx, &dkey)? {
        let id = String::from_utf8_lossy(&id).to_string();
        if let Some(c) = get(tx, &id)? {
            return Ok((
                Change {
                    before: Some(c.clone()),
                    after: Some(c),
                },
                false,
            ));
        }
    }
    addable(tx, &me.network_id, peer_id)?;
    let now = Utc::now();
    let c = Conversation {
        id: uuid::Uuid::now_v7().to_string(),
        kind: ConversationKind::Direct,
        network_id: me.network_id.clone(),
        name: String::new(),
        description: String::new(),
        members: [me.id.as_str(), peer_id]
            .iter()
            .map(|id| Member {
                user_id: id.to_string(),
                moderator: false,
                joined_at: now,
            })
            .collect(),
        created_by: me.id.clone(),
        created_at: now,
        updated_at: now,
    };
    DIRECT.put(tx, &dkey, c.id.as_bytes())?;
    put(tx, None, &c)?;
    Ok((
        Change {
            before: None,
            after: Some(c),
        },
        true,
    ))
}

fn check_text(name: &str, description: &str) -> Result<()> {
    if name.trim().is_empty()
        || name.chars().count() > NAME_MAX
        || name.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "invalid_conversation",
            format!("a room name has 1 to {NAME_MAX} characters and no control characters"),
        ));
    }
    if description.chars().count() > DESCRIPTION_MAX {
        return Err(Error::invalid(
            "invalid_conversation",
            format!("a room description has at most {DESCRIPTION_MAX} characters"),
        ));
    }
    Ok(())
}

fn room_full() -> Error {
    Error::invalid(
        "room_full",
        format!("a room has at most {MAX_MEMBERS} members"),
    )
    .with_details(serde_json::json!({ "max_members": MAX_MEMBERS }))
}

/// Create a room; the creator is a member and its moderator.
pub fn create_room(
    tx: &WriteTransaction,
    me: &User,
    name: &str,
    description: &str,
    member_ids: &[String],
) -> Result<Change> {
    check_text(name, description)?;
    // A list longer than a room can hold is refused before any lookup.
    if member_ids.len() > MAX_MEMBERS {
        return Err(room_full());
    }
    let now = Utc::now();
    let mut members = vec![Member {
        user_id: me.id.clone(),
        moderator: true,
        joined_at: now,
    }];
    for id in member_ids {
        if members.iter().any(|m| &m.user_id == id) {
            continue;
        }
        addable(tx, &me.network_id, id)?;
        members.push(Member {
            user_id: id.clone(),
            moderator: false,
            joined_at: now,
        });
        if members.len() > MAX_MEMBERS {
            return Err(room_full());
        }
    }
    let c = Conversation {
        id: uuid::Uuid::now_v7().to_string(),
        kind: ConversationKind::Room,
        network_id: me.network_id.clone(),
        name: name.trim().to_string(),
        description: description.to_string(),
        members,
        created_by: me.id.clone(),
        created_at: now,
        updated_at: now,
    };
    put(tx, None, &c)?;
    Ok(Change {
        before: None,
        after: Some(c),
    })
}

fn room_for_moderator(tx: &WriteTransaction, id: &str, me: &str) -> Result<Conversation> {
    let c = get_for(tx, id, me)?;
    if c.kind != ConversationKind::Room {
        return Err(Error::invalid(
            "invalid_conversation",
            "a direct conversation has no moderators, members to change or name",
        ));
    }
    if !c.is_moderator(me) {
        return Err(Error::forbidden(
            "not_a_moderator",
            "only the room's moderators may do this",
        ));
    }
    Ok(c)
}

/// What [`update`] may change.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    pub name: Option<String>,
    pub description: Option<String>,
    pub moderator_user_ids: Option<Vec<String>>,
}

/// Rename, describe, or set the moderators of a room (moderators only).
pub fn update(tx: &WriteTransaction, id: &str, me: &str, u: &Update) -> Result<Change> {
    let before = room_for_moderator(tx, id, me)?;
    let mut c = before.clone();
    if let Some(n) = &u.name {
        c.name = n.trim().to_string();
    }
    if let Some(d) = &u.description {
        c.description = d.clone();
    }
    check_text(&c.name, &c.description)?;
    if let Some(mods) = &u.moderator_user_ids {
        if mods.is_empty() {
            return Err(Error::invalid(
                "invalid_conversation",
                "a room needs at least one moderator",
            ));
        }
        if let Some(stranger) = mods.iter().find(|m| c.member(m).is_none()) {
            return Err(Error::invalid(
                "invalid_conversation",
                format!("{stranger:?} is not a member; only members can be moderators"),
            ));
        }
        for m in &mut c.members {
            m.moderator = mods.contains(&m.user_id);
        }
    }
    c.updated_at = Utc::now();
    put(tx, Some(&before), &c)?;
    Ok(Change {
        before: Some(before),
        after: Some(c),
    })
}

/// Add members to a room (moderators only). Members already present are skipped.
pub fn add_members(tx: &WriteTransaction, id: &str, me: &User, ids: &[String]) -> Result<Change> {
    if ids.len() > MAX_MEMBERS {
        return Err(room_full());
    }
    let before = room_for_moderator(tx, id, &me.id)?;
    let mut c = before.clone();
    let now = Utc::now();
    for uid in ids {
        if c.member(uid).is_some() {
            continue;
        }
        addable(tx, &c.network_id, uid)?;
        c.members.push(Member {
            user_id: uid.clone(),
            moderator: false,
            joined_at: now,
        });
        if c.members.len() > MAX_MEMBERS {
            return Err(room_full());
        }
    }
    c.updated_at = now;
    put(tx, Some(&before), &c)?;
    Ok(Change {
        before: Some(before),
        after: Some(c),
    })
}

/// Remove a member (a moderator removes anyone; anyone removes themself = leaves).
/// When the last moderator goes, the longest-standing member becomes moderator; when
/// the last member goes, the room is deleted.
pub fn remove_member(tx: &WriteTransaction, id: &str, me: &str, target: &str) -> Result<Change> {
    let before = get_for(tx, id, me)?;
    if before.kind != ConversationKind::Room {
        return Err(Error::invalid(
            "invalid_conversation",
            "nobody can leave or be removed from a direct conversation",
        ));
    }
    if target != me && !before.is_moderator(me) {
        return Err(Error::forbidden(
            "not_a_moderator",
            "only the room's moderators may remove other members",
        ));
    }
    if before.member(target).is_none() {
        return Err(Error::not_found(
            "user_not_found",
            "that user is not a member of this room",
        ));
    }
    let mut c = before.clone();
    c.members.retain(|m| m.user_id != target);
    if c.members.is_empty() {
        return delete_record(tx, before);
    }
    if !c.members.iter().any(|m| m.moderator) {
        c.members[0].moderator = true;
    }
    c.updated_at = Utc::now();
    put(tx, Some(&before), &c)?;
    Ok(Change {
        before: Some(before),
        after: Some(c),
    })
}

/// Delete a room (moderators only).
pub fn delete(tx: &WriteTransaction, id: &str, me: &str) -> Result<Change> {
    let before = room_for_moderator(tx, id, me)?;
    delete_record(tx, before)
}

fn delete_record(tx: &WriteTransaction, before: Conversation) -> Result<Change> {
    for m in &before.members {
        BY_USER.delete(tx, &Key::new().s(&m.user_id).s(&before.id).into_bytes())?;
    }
    CONVERSATIONS.delete(tx, before.id.as_bytes())?;
    Ok(Change {
        before: Some(before),
        after: None,
    })
}
