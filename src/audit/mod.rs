//! The audit log (PRODUCT.md F13): one event per admin API call, hash-chained.
//!
//! Each event records who did what, from where, with which parameters (secrets
//! redacted), and how it ended. Event `n` stores the SHA-256 of event `n-1`
//! (`prev_hash`) and its own hash over its content and that link, and the store keeps
//! the chain's head; so [`verify`] finds the first event that was altered, removed,
//! reordered, or cut off the end. Successful changes append their event in the same
//! transaction as the change itself, so one never commits without the other.

mod redact;

pub use redact::redact;

use crate::error::{Error, Result};
use crate::store::{Key, RawTable, Tx, meta_get, meta_put, schema};
use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::ops::{Bound, ControlFlow};
use utoipa::ToSchema;

const AUDIT: RawTable = RawTable::new(schema::AUDIT);
const HEAD_KEY: &str = "audit_head";
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who performed an action.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Actor {
    pub id: String,
    pub username: String,
    pub role: String,
}

/// How an action ended.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Outcome {
    /// `success` or `error`.
    pub status: String,
    pub http_status: u16,
    /// The stable error code, on failure.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl Outcome {
    pub fn success(http_status: u16) -> Outcome {
        Outcome {
            status: "success".into(),
            http_status,
            error_code: None,
            error_message: None,
        }
    }

    pub fn error(http_status: u16, code: &str, message: &str) -> Outcome {
        Outcome {
            status: "error".into(),
            http_status,
            error_code: Some(code.into()),
            error_message: Some(message.chars().take(500).collect()),
        }
    }
}

/// One audit event. Field order is part of the hash; do not reorder.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AuditEvent {
    /// Position in the chain, from 1.
    pub seq: u64,
    pub id: String,
    /// The action's name (CreateNetwork, ListUsers, …).
    pub name: String,
    pub time: DateTime<Utc>,
    /// The admin, when the caller was authenticated.
    pub admin: Option<Actor>,
    pub source_ip: String,
    pub user_agent: String,
    pub network_id: Option<String>,
    /// Path, query and body parameters, secrets redacted.
    pub parameters: Value,
    pub result: Outcome,
    pub read_only: bool,
    pub prev_hash: String,
    pub hash: String,
}

/// An event before it joins the chain.
#[derive(Debug, Clone)]
pub struct Draft {
    pub id: String,
    pub name: String,
    pub time: DateTime<Utc>,
    pub admin: Option<Actor>,
    pub source_ip: String,
    pub user_agent: String,
    pub network_id: Option<String>,
    pub parameters: Value,
    pub result: Outcome,
    pub read_only: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

/// The hash of `e` (its `hash` field excluded), chained to `e.prev_hash`.
pub fn compute_hash(e: &AuditEvent) -> String {
    let mut body = e.clone();
    body.hash = String::new();
    let bytes = serde_json::to_vec(&body).expect("events serialize");
    let mut h = Sha256::new();
    h.update(e.prev_hash.as_bytes());
    h.update(b"\n");
    h.update(&bytes);
    hex::encode(h.finalize())
}

fn seq_key(seq: u64) -> Vec<u8> {
    Key::new().u64(seq).into_bytes()
}

fn head<'a>(tx: impl Into<Tx<'a>>) -> Result<Head> {
    match meta_get(tx, HEAD_KEY)? {
        Some(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::internal(format!("the audit head record is damaged: {e}"))),
        None => Ok(Head {
            seq: 0,
            hash: GENESIS.into(),
        }),
    }
}

/// Append `d` to the chain in the caller's transaction.
pub fn append(tx: &WriteTransaction, d: &Draft) -> Result<AuditEvent> {
    let h = head(tx)?;
    let mut e = AuditEvent {
        seq: h.seq + 1,
        id: d.id.clone(),
        name: d.name.clone(),
        time: d.time,
        admin: d.admin.clone(),
        source_ip: d.source_ip.clone(),
        user_agent: d.user_agent.clone(),
        network_id: d.network_id.clone(),
        parameters: redact(d.parameters.clone()),
        result: d.result.clone(),
        read_only: d.read_only,
        prev_hash: h.hash,
        hash: String::new(),
    };
    e.hash = compute_hash(&e);
    let bytes = serde_json::to_vec(&e).expect("events serialize");
    AUDIT.put(tx, &seq_key(e.seq), &bytes)?;
    let new_head = serde_json::to_vec(&Head {
        seq: e.seq,
        hash: e.hash.clone(),
    })
    .expect("head serializes");
    meta_put(tx, HEAD_KEY, &new_head)?;
    crate::metrics::admin::AUDIT_EVENTS
        .with_label_values(&[e.result.status.as_str()])
        .inc();
    Ok(e)
}

/// Filters for searching and exporting the log.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Admin username or id.
    pub admin: Option<String>,
    /// Event (action) name.
    pub name: Option<String>,
    /// `success` or `error`.
    pub result: Option<String>,
    pub network_id: Option<String>,
}

impl Filter {
    fn matches(&self, e: &AuditEvent) -> bool {
        self.from.is_none_or(|t| e.time >= t)
            && self.to.is_none_or(|t| e.time < t)
            && self.admin.as_ref().is_none_or(|a| {
                e.admin
                    .as_ref()
                    .is_some_and(|x| x.username == *a || x.id == *a)
            })
            && self.name.as_ref().is_none_or(|n| e.name == *n)
            && self.result.as_ref().is_none_or(|r| e.result.status == *r)
            && self
                .network_id
                .as_ref()
                .is_none_or(|n| e.network_id.as_deref() == Some(n))
    }
}

fn decode(bytes: &[u8]) -> Result<AuditEvent> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::internal(format!("an audit event cannot be decoded: {e}")))
}

/// Events matching `f`, newest first, before sequence `before` if given.
pub fn search<'a>(
    tx: impl Into<Tx<'a>>,
    f: &Filter,
    before: Option<u64>,
    limit: usize,
) -> Result<(Vec<AuditEvent>, Option<u64>)> {
    let hi = before.map(seq_key);
    let mut out = Vec::new();
    let mut more = false;
    tx.into().scan_raw(
        schema::AUDIT,
        (
            Bound::Unbounded,
            hi.as_ref()
                .map(|k| Bound::Excluded(k.as_slice()))
                .unwrap_or(Bound::Unbounded),
        ),
        true,
        |_, v| {
            let e = decode(v)?;
            if f.from.is_some_and(|t| e.time < t) {
                return Ok(ControlFlow::Break(()));
            }
            if f.matches(&e) {
                if out.len() == limit {
                    more = true;
                    return Ok(ControlFlow::Break(()));
                }
                out.push(e);
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    let next = if more {
        out.last().map(|e| e.seq)
    } else {
        None
    };
    Ok((out, next))
}

/// Visit events matching `f` oldest first (for export).
pub fn for_each<'a>(
    tx: impl Into<Tx<'a>>,
    f: &Filter,
    mut visit: impl FnMut(&AuditEvent) -> Result<()>,
) -> Result<()> {
    tx.into().scan_raw(
        schema::AUDIT,
        (Bound::Unbounded, Bound::Unbounded),
        false,
        |_, v| {
            let e = decode(v)?;
            if f.to.is_some_and(|t| e.time >= t) {
                return Ok(ControlFlow::Break(()));
            }
            if f.matches(&e) {
                visit(&e)?;
            }
            Ok(ControlFlow::Continue(()))
        },
    )
}

/// The result of checking the chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct VerifyReport {
    pub ok: bool,
    /// Events checked.
    pub events: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Hash of the last event checked.
    pub head_hash: String,
    /// The first problem found.
    pub problem: Option<Problem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Problem {
    /// The event where the chain breaks.
    pub seq: u64,
    /// `tampered`, `missing`, `unreadable` or `truncated`.
    pub kind: String,
    pub message: String,
}

/// Check a sequence of events. `anchor` is the expected `prev_hash` of the first one
/// (the genesis hash for a whole log; `None` to trust the first event's link, for an
/// excerpt). Stops at the first problem.
pub fn verify_events(
    events: impl IntoIterator<Item = std::result::Result<AuditEvent, (u64, String)>>,
    anchor: Option<&str>,
) -> VerifyReport {
    let mut r = VerifyReport {
        ok: true,
        events: 0,
        first_seq: None,
        last_seq: None,
        head_hash: anchor.unwrap_or(GENESIS).to_string(),
        problem: None,
    };
    let mut prev: Option<(u64, String)> = anchor.map(|a| (0, a.to_string()));
    for item in events {
        let e = match item {
            Ok(e) => e,
            Err((seq, msg)) => {
                r.fail(seq, "unreadable", msg);
                return r;
            }
        };
        if let Some((pseq, phash)) = &prev {
            let expect_seq = if r.events == 0 && anchor.is_some() {
                1
            } else {
                pseq + 1
            };
            if e.seq != expect_seq {
                r.fail(
                    expect_seq,
                    "missing",
                    format!(
                        "event {expect_seq} is missing (the next event found is {})",
                        e.seq
                    ),
                );
                return r;
            }
            if e.prev_hash != *phash {
                r.fail(
                    e.seq,
                    "tampered",
                    format!(
                        "event {} does not link to event {pseq}: it was altered, or the one before it was",
                        e.seq
                    ),
                );
                return r;
            }
        }
        if compute_hash(&e) != e.hash {
            r.fail(
                e.seq,
                "tampered",
                format!(
                    "event {} ({}) was altered after it was recorded",
                    e.seq, e.name
                ),
            );
            return r;
        }
        r.events += 1;
        r.first_seq.get_or_insert(e.seq);
        r.last_seq = Some(e.seq);
        r.head_hash = e.hash.clone();
        prev = Some((e.seq, e.hash));
    }
    r
}

impl VerifyReport {
    fn fail(&mut self, seq: u64, kind: &str, message: String) {
        self.ok = false;
        self.problem = Some(Problem {
            seq,
            kind: kind.into(),
            message,
        });
    }
}

/// Verify the whole log in the store, including that nothing was cut off the end.
pub fn verify<'a>(tx: impl Into<Tx<'a>>) -> Result<VerifyReport> {
    let tx = tx.into();
    let head = head(tx)?;
    let mut events = Vec::new();
    tx.scan_raw(
        schema::AUDIT,
        (Bound::Unbounded, Bound::Unbounded),
        false,
        |k, v| {
            let seq = crate::store::key::trailing_u64(k).unwrap_or(0);
            events.push(decode(v).map_err(|e| (seq, e.message)));
            Ok(ControlFlow::Continue(()))
        },
    )?;
    let mut r = verify_events(events, Some(GENESIS));
    if r.ok && (r.last_seq.unwrap_or(0) != head.seq || r.head_hash != head.hash) {
        let at = r.last_seq.unwrap_or(0) + 1;
        r.fail(
            at,
            "truncated",
            format!(
                "the log ends at event {} but its head records event {}: events were removed from the end",
                r.last_seq.unwrap_or(0),
                head.seq
            ),
        );
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::store::Store;

    fn draft(name: &str) -> Draft {
        Draft {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.into(),
            time: Utc::now(),
            admin: None,
            source_ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            network_id: None,
            parameters: serde_json::json!({"password": "hunter2", "name": "x"}),
            result: Outcome::success(200),
            read_only: false,
        }
    }

    #[test]
    fn the_chain_detects_edits_gaps_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.redb"), &StoreConfig::default()).unwrap();
        for i in 0..5 {
            store
                .write_now(|tx| append(tx, &draft(&format!("E{i}"))))
                .unwrap();
        }
        let r = store.read(|tx| verify(tx)).unwrap();
        assert!(r.ok, "{r:?}");
        assert_eq!(r.events, 5);
        let all = store
            .read(|tx| search(tx, &Filter::default(), None, 100))
            .unwrap()
            .0;
        assert_eq!(all[0].seq, 5);
        assert_eq!(all[0].parameters["password"], "********");

        // Edit event 3's parameters in place.
        let mut e3 = all.iter().find(|e| e.seq == 3).unwrap().clone();
        e3.parameters = serde_json::json!({"name": "y"});
        store
            .write_now(|tx| AUDIT.put(tx, &seq_key(3), &serde_json::to_vec(&e3).unwrap()))
            .unwrap();
        let r = store.read(|tx| verify(tx)).unwrap();
        assert_eq!(r.problem.as_ref().unwrap().seq, 3);
        assert_eq!(r.problem.as_ref().unwrap().kind, "tampered");

        // Remove event 3 instead.
        store
            .write_now(|tx| AUDIT.delete(tx, &seq_key(3)).map(|_| ()))
            .unwrap();
        let r = store.read(|tx| verify(tx)).unwrap();
        assert_eq!(r.problem.as_ref().unwrap().kind, "missing");

        // Cut the tail: only the head record notices.
        let dir2 = tempfile::tempdir().unwrap();
        let s2 = Store::open(&dir2.path().join("b.redb"), &StoreConfig::default()).unwrap();
        for i in 0..3 {
            s2.write_now(|tx| append(tx, &draft(&format!("E{i}"))))
                .unwrap();
        }
        s2.write_now(|tx| AUDIT.delete(tx, &seq_key(3)).map(|_| ()))
            .unwrap();
        let r = s2.read(|tx| verify(tx)).unwrap();
        assert_eq!(r.problem.as_ref().unwrap().kind, "truncated");
        store.close();
        s2.close();
    }
}
