//! Call records (PRODUCT.md F7, reference "call records"): which allocations made up a
//! call, who took part, when it started and ended, and how much it relayed.
//!
//! A device asks the client API for TURN credentials for a conversation; the username
//! it receives is remembered with that conversation. Allocations made with it join the
//! conversation's live call (one is opened if none is live). Allocations whose username
//! was not issued for a conversation (another TURN client, credentials from the shared
//! secret) make a call of their own. A call ends when its last allocation does; its
//! record is then written to the store (`call_records`, keyed by start time), where
//! analytics and the retention journal read it.

use crate::error::Result;
use crate::relay::now_ms;
use crate::store::Store;
use crate::store::Table;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The store table of finished calls: key = started_at (ms, big-endian) + id.
pub const CALL_RECORDS: Table<CallRecord> = Table::new(crate::store::schema::CALL_RECORDS);

/// A finished call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CallRecord {
    pub id: String,
    /// The network of the user who started the call.
    pub network_id: String,
    /// The conversation the call was placed in, when the credentials named one.
    pub conversation_id: Option<String>,
    /// Milliseconds since the epoch.
    pub started_at: u64,
    pub ended_at: u64,
    pub duration_secs: u64,
    /// User ids of everyone who held an allocation in the call.
    pub participants: Vec<String>,
    /// Allocations the call used.
    pub allocations: u32,
    /// Application bytes relayed, both directions.
    pub bytes_relayed: u64,
}

struct Live {
    id: String,
    network_id: String,
    conversation_id: Option<String>,
    started_at: u64,
    participants: BTreeSet<String>,
    allocations: u32,
    live: u32,
    bytes: u64,
}

struct Issued {
    conversation_id: String,
    expires_at: u64,
}

/// Live calls and the conversations credentials were issued for.
pub struct Calls {
    store: Store,
    issued: Mutex<HashMap<String, Issued>>,
    live: Mutex<HashMap<Arc<str>, Live>>,
}

impl Calls {
    pub fn new(store: Store) -> Calls {
        Calls {
            store,
            issued: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers that `username` was issued for a call in `conversation_id`.
    pub fn issued(&self, username: &str, conversation_id: &str, expires_at: u64) {
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms() / 1000;
        issued.retain(|_, i| i.expires_at >= now);
        issued.insert(
            username.to_string(),
            Issued {
                conversation_id: conversation_id.to_string(),
                expires_at,
            },
        );
    }

    /// The call a new allocation of `user` (of `network_id`) made with `username` joins
    /// (its key).
    pub fn attach(&self, username: &str, user: &str, network_id: &str) -> Arc<str> {
        let conversation = self
            .issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(username)
            .map(|i| i.conversation_id.clone());
        let key: Arc<str> = match &conversation {
            Some(c) => Arc::from(format!("conversation:{c}")),
            None => Arc::from(format!("allocation:{}", uuid::Uuid::now_v7())),
        };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let call = live.entry(key.clone()).or_insert_with(|| Live {
            id: uuid::Uuid::now_v7().to_string(),
            network_id: network_id.to_string(),
            conversation_id: conversation,
            started_at: now_ms(),
            participants: BTreeSet::new(),
            allocations: 0,
            live: 0,
            bytes: 0,
        });
        call.participants.insert(user.to_string());
        call.allocations += 1;
        call.live += 1;
        key
    }

    /// An allocation of the call `key` ended after relaying `bytes`. When it was the last
    /// one, the call's record is returned (and written by [`Calls::save`]).
    pub fn detach(&self, key: &Arc<str>, _user: &str, bytes: u64) -> Option<CallRecord> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let call = live.get_mut(key)?;
        call.live = call.live.saturating_sub(1);
        call.bytes += bytes;
        if call.live > 0 {
            return None;
        }
        let call = live.remove(key)?;
        let ended_at = now_ms().max(call.started_at);
        Some(CallRecord {
            id: call.id,
            network_id: call.network_id,
            conversation_id: call.conversation_id,
            started_at: call.started_at,
            ended_at,
            duration_secs: (ended_at - call.started_at) / 1000,
            participants: call.participants.into_iter().collect(),
            allocations: call.allocations,
            bytes_relayed: call.bytes,
        })
    }

    /// The store the records go to.
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// Writes a finished call's record.
    pub async fn save(store: Store, record: CallRecord) -> Result<()> {
        let mut key = record.started_at.to_be_bytes().to_vec();
        key.extend_from_slice(record.id.as_bytes());
        crate::metrics::calling::CALLS.inc();
        store
            .write(move |tx| CALL_RECORDS.put(tx, &key, &record))
            .await
    }
}

/// Finished calls of `network_id` that started in [from_ms, to_ms), oldest first, at
/// most `limit`.
pub fn list(
    store: &Store,
    network_id: &str,
    from_ms: u64,
    to_ms: u64,
    limit: usize,
) -> Result<Vec<CallRecord>> {
    let mut out = Vec::new();
    let from = from_ms.to_be_bytes();
    store.read(|tx| {
        // Keys are the start time then the id, so every key of a call that started at
        // `from_ms` or later sorts after the bare 8-byte `from`.
        CALL_RECORDS.scan_prefix(tx, b"", Some(&from), false, |k, r| {
            let started = k
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if started >= to_ms || out.len() >= limit {
                return Ok(std::ops::ControlFlow::Break(()));
            }
            if r.network_id == network_id {
                out.push(r);
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })
    })?;
    Ok(out)
}
