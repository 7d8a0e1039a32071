//! Mailboxes: the durable store-and-forward queue of every device.
//!
//! An accepted item (an envelope, a membership event or a receipt) is stored once in
//! `relay_items` under a `seq` that grows with every item, and each recipient device
//! gets a mailbox entry `(seq, device) → its sealed key`, all in the same transaction.
//! Every key a commit writes is therefore near the end of its table — items, entries
//! and expiry by seq or time, idempotency records by the (time-ordered) client message
//! id — so a commit of thousands of envelopes dirties few pages. Which entries wait for
//! one device is kept in memory by [`MailboxIndex`].
//!
//! `relay_refs` counts the entries still pointing at an item; when a device acks, its
//! entries go and the item goes with the last one. `relay_expiry` lists every item by
//! expiry so that expired items are purged even if never delivered, and keeps the
//! sender's idempotency record (`relay_sent_ids`) until then. A revoked or reset
//! device is listed in `relay_cleared`, and the purge removes its entries.
//!
//! Everything here runs inside store transactions; the relay queues the writes on
//! the group committer so that many envelopes share one fsync.

use super::frame::{Attachment, Kind, MembershipEvent, Receipt, ServerFrame};
use super::index::MailboxIndex;
use crate::error::{Error, Result};
use crate::store::{self, Key, OpenTable, RawTable, Tx, schema};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use std::ops::{Bound, ControlFlow};

const ITEMS: RawTable = RawTable::new(schema::RELAY_ITEMS);
const REFS: RawTable = RawTable::new(schema::RELAY_REFS);
const MAILBOX: RawTable = RawTable::new(schema::RELAY_MAILBOX);
const EXPIRY: RawTable = RawTable::new(schema::RELAY_EXPIRY);
const SENT: RawTable = RawTable::new(schema::RELAY_SENT_IDS);
const CLEARED: RawTable = RawTable::new(schema::RELAY_CLEARED);
const SEQ_KEY: &str = "relay_seq";
/// Counter of mailbox entries (the mailbox depth metric).
pub const DEPTH_COUNTER: &str = "relay.mailbox_entries";

/// The content of an envelope the server stores (everything but the sealed keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvelopeBody {
    pub conversation_id: String,
    pub sender_user_id: String,
    pub sender_device_id: String,
    pub client_msg_id: String,
    pub kind: Kind,
    pub bor_secs: u64,
    pub forwarded: bool,
    pub ciphertext: String,
    pub attachments: Vec<Attachment>,
    pub signature: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Body {
    Envelope(EnvelopeBody),
    Membership(MembershipEvent),
    Receipt(Receipt),
}

/// An item as stored once in `relay_items`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub server_time: u64,
    pub expires_at: u64,
    /// The devices whose mailboxes hold it (for purging).
    pub devices: Vec<String>,
    pub body: Body,
}

impl Item {
    /// The blobs this item keeps alive.
    pub fn blob_ids(&self) -> Vec<String> {
        match &self.body {
            Body::Envelope(e) => e.attachments.iter().map(|a| a.blob_id.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// The frame for one device, given its sealed key (ignored for events).
    pub fn frame(&self, seq: u64, sealed: &str) -> ServerFrame {
        match &self.body {
            Body::Envelope(e) => ServerFrame::Deliver {
                envelope: super::frame::Delivery {
                    seq,
                    server_time: self.server_time,
                    conversation_id: e.conversation_id.clone(),
                    sender_user_id: e.sender_user_id.clone(),
                    sender_device_id: e.sender_device_id.clone(),
                    client_msg_id: e.client_msg_id.clone(),
                    kind: e.kind,
                    expires_at: self.expires_at,
                    bor_secs: e.bor_secs,
                    forwarded: e.forwarded,
                    sealed_key: sealed.to_string(),
                    ciphertext: e.ciphertext.clone(),
                    attachments: e.attachments.clone(),
                    signature: e.signature.clone(),
                },
            },
            Body::Membership(ev) => ServerFrame::Membership {
                seq,
                server_time: self.server_time,
                event: ev.clone(),
            },
            Body::Receipt(r) => ServerFrame::Receipt {
                seq,
                server_time: self.server_time,
                receipt: r.clone(),
            },
        }
    }
}

/// What the sender is told: the item's seq and acceptance time.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Acceptance {
    pub seq: u64,
    pub server_time: u64,
    #[serde(skip)]
    pub duplicate: bool,
}

/// An item to store, with each recipient device's part. The item is encoded before
/// it reaches the committer, which then only copies bytes.
pub struct NewItem {
    pub item_json: Vec<u8>,
    pub server_time: u64,
    pub expires_at: u64,
    pub blob_ids: Vec<String>,
    /// Users who may download the item's blobs from now on.
    pub grant_users: Vec<String>,
    /// (device id, sealed key); the sealed key is empty for events.
    pub recipients: Vec<(String, String)>,
    /// (sending device, client message id) for envelopes: retries are idempotent.
    pub idempotency: Option<(String, String)>,
}

impl NewItem {
    pub fn new(
        item: &Item,
        recipients: Vec<(String, String)>,
        grant_users: Vec<String>,
        idempotency: Option<(String, String)>,
    ) -> Result<NewItem> {
        Ok(NewItem {
            item_json: json(item)?,
            server_time: item.server_time,
            expires_at: item.expires_at,
            blob_ids: item.blob_ids(),
            grant_users,
            recipients,
            idempotency,
        })
    }
}

/// A mailbox entry's key: seq first, so a commit's entries are appended together.
pub fn mailbox_key(seq: u64, device_id: &str) -> Vec<u8> {
    Key::new().u64(seq).s(device_id).into_bytes()
}

/// (seq, device id) of a mailbox key.
pub fn parse_mailbox_key(k: &[u8]) -> Option<(u64, String)> {
    let seq = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    let device = std::str::from_utf8(k.get(8..)?.strip_suffix(&[0])?).ok()?;
    Some((seq, device.to_string()))
}

/// An idempotency record's key: the client message id first. Clients make ids
/// time-ordered (UUIDv7, PROTOCOL.md §4.4), so new records land together at the end.
pub fn sent_key(device_id: &str, client_msg_id: &str) -> Vec<u8> {
    Key::new().s(client_msg_id).s(device_id).into_bytes()
}

fn expiry_key(expires_at: u64, seq: u64) -> Vec<u8> {
    Key::new().u64(expires_at).u64(seq).into_bytes()
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::internal(format!("encoding a relay item: {e}")))
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::internal(format!("the stored {what} is unreadable: {e}")))
}

/// Store many items in one transaction, opening each table once (the relay's
/// writer hands every envelope accepted since the last commit to one call).
pub fn store_batch(tx: &WriteTransaction, batch: &[NewItem]) -> Result<Vec<Acceptance>> {
    let mut seq = store::meta_get(tx, SEQ_KEY)?
        .and_then(|b| b.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0);
    let first_seq = seq;
    let mut out = Vec::with_capacity(batch.len());
    let mut depth = 0i64;
    let mut blob_work: Vec<&NewItem> = Vec::new();
    {
        let mut items = ITEMS.open(tx)?;
        let mut refs = REFS.open(tx)?;
        let mut mb = MAILBOX.open(tx)?;
        let mut sent = SENT.open(tx)?;
        let mut expiry = EXPIRY.open(tx)?;
        for new in batch {
            let idem = new
                .idempotency
                .as_ref()
                .map(|(d, m)| sent_key(d, m))
                .unwrap_or_default();
            if !idem.is_empty()
                && let Some(b) = sent.get(&idem)?
            {
                out.push(decode_acceptance(&b)?);
                continue;
            }
            seq += 1;
            let acceptance = Acceptance {
                seq,
                server_time: new.server_time,
                duplicate: false,
            };
            let n = new.recipients.len();
            let k = seq.to_be_bytes();
            if n > 0 {
                items.insert(&k, &new.item_json)?;
                refs.insert(&k, &encode_refs(n as u32, !new.blob_ids.is_empty()))?;
                for (device, sealed) in &new.recipients {
                    mb.insert(&mailbox_key(seq, device), sealed.as_bytes())?;
                }
                depth += n as i64;
            }
            if !new.blob_ids.is_empty() {
                blob_work.push(new);
            }
            if !idem.is_empty() {
                sent.insert(&idem, &encode_acceptance(&acceptance))?;
            }
            if n > 0 || !idem.is_empty() {
                expiry.insert(&expiry_key(new.expires_at, seq), &idem)?;
            }
            out.push(acceptance);
        }
    }
    for new in blob_work {
        if !new.recipients.is_empty() {
            super::blob::add_refs(tx, &new.blob_ids)?;
        }
        super::blob::grant(tx, &new.blob_ids, &new.grant_users)?;
    }
    if seq != first_seq {
        store::meta_put(tx, SEQ_KEY, &seq.to_be_bytes())?;
    }
    if depth != 0 {
        store::counter_add(tx, DEPTH_COUNTER, depth)?;
    }
    Ok(out)
}

/// Drop one reference to item `seq`; removes the item with its last reference.
fn release(
    refs: &mut OpenTable<'_>,
    items: &mut OpenTable<'_>,
    seq: u64,
    blobs: &mut Vec<String>,
) -> Result<()> {
    let k = seq.to_be_bytes();
    let (left, has_blobs) = refs.get(&k)?.map(|b| decode_refs(&b)).unwrap_or((1, true));
    if left <= 1 {
        refs.remove(&k)?;
        let gone = items.remove(&k)?;
        // Only an item with attachments needs reading on its way out.
        if has_blobs && let Some(b) = gone {
            let item: Item = parse(&b, "relay item")?;
            blobs.extend(item.blob_ids());
        }
    } else {
        refs.insert(&k, &encode_refs(left - 1, has_blobs))?;
    }
    Ok(())
}

/// A `relay_refs` value: the count (u32, big-endian) and whether the item names blobs.
fn encode_refs(count: u32, has_blobs: bool) -> [u8; 5] {
    let c = count.to_be_bytes();
    [c[0], c[1], c[2], c[3], has_blobs as u8]
}

fn decode_refs(b: &[u8]) -> (u32, bool) {
    let count = b
        .get(..4)
        .and_then(|c| c.try_into().ok())
        .map(u32::from_be_bytes)
        .unwrap_or(1);
    // Values without the flag (or unreadable ones) are read as naming blobs: safe.
    (count, b.get(4).is_none_or(|f| *f != 0))
}

/// A `relay_sent` value: seq and server time, big-endian.
fn encode_acceptance(a: &Acceptance) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.seq.to_be_bytes());
    out[8..].copy_from_slice(&a.server_time.to_be_bytes());
    out
}

fn decode_acceptance(b: &[u8]) -> Result<Acceptance> {
    let seq = b
        .get(..8)
        .and_then(|x| x.try_into().ok())
        .map(u64::from_be_bytes);
    let at = b
        .get(8..16)
        .and_then(|x| x.try_into().ok())
        .map(u64::from_be_bytes);
    match (seq, at) {
        (Some(seq), Some(server_time)) => Ok(Acceptance {
            seq,
            server_time,
            duplicate: true,
        }),
        _ => Err(Error::internal("a stored acceptance is unreadable")),
    }
}

/// Apply many acks `(device, up_to)` in one transaction, opening each table once:
/// removes each device's entries with seq ≤ `up_to` (as listed by `index`); returns
/// how many each removed. The caller forgets them in `index` once committed.
pub fn ack_batch(
    tx: &WriteTransaction,
    index: &MailboxIndex,
    acks: &[(String, u64)],
) -> Result<Vec<u64>> {
    let mut out = Vec::with_capacity(acks.len());
    let mut blobs = Vec::new();
    let mut total = 0u64;
    {
        let mut mb = MAILBOX.open(tx)?;
        let mut refs = REFS.open(tx)?;
        let mut items = ITEMS.open(tx)?;
        for (device_id, up_to) in acks {
            let mut removed = 0u64;
            for seq in index.up_to(device_id, *up_to) {
                // The index may still list an entry a committed purge removed.
                if mb.remove(&mailbox_key(seq, device_id))?.is_some() {
                    release(&mut refs, &mut items, seq, &mut blobs)?;
                    removed += 1;
                }
            }
            total += removed;
            out.push(removed);
        }
    }
    if total > 0 {
        store::counter_add(tx, DEPTH_COUNTER, -(total as i64))?;
    }
    if !blobs.is_empty() {
        super::blob::drop_refs(tx, &blobs)?;
    }
    Ok(out)
}

/// Empty a device's mailbox (revoked, reset or deleted devices): the device is
/// listed in `relay_cleared` with the current seq, and the next purge removes its
/// entries up to that seq ([`sweep_cleared`]).
pub fn clear_device(tx: &WriteTransaction, device_id: &str) -> Result<()> {
    let seq = store::meta_get(tx, SEQ_KEY)?
        .and_then(|b| b.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0);
    CLEARED
        .open(tx)?
        .insert(device_id.as_bytes(), &seq.to_be_bytes())
}

/// Remove the entries of up to `limit` cleared devices; returns the `(device, up to
/// seq)` ranges removed, for the index, and how many entries went.
pub fn sweep_cleared(
    tx: &WriteTransaction,
    index: &MailboxIndex,
    limit: usize,
) -> Result<(Vec<(String, u64)>, u64)> {
    let cleared = CLEARED
        .open(tx)?
        .take_range((Bound::Unbounded, Bound::Unbounded), limit)?;
    let acks: Vec<(String, u64)> = cleared
        .into_iter()
        .filter_map(|(k, v)| {
            let device = String::from_utf8(k).ok()?;
            let seq = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
            Some((device, seq))
        })
        .collect();
    let removed = ack_batch(tx, index, &acks)?;
    Ok((acks, removed.iter().sum()))
}

/// What a purge removed.
#[derive(Default)]
pub struct Purged {
    pub items: u64,
    /// The `(device, seq)` mailbox entries removed, for the index.
    pub entries: Vec<(String, u64)>,
}

/// Purge up to `limit` items that expired by `now_ms` (and their idempotency
/// records).
pub fn purge_expired(tx: &WriteTransaction, now_ms: u64, limit: usize) -> Result<Purged> {
    let hi = Key::new().u64(now_ms).u64(u64::MAX).into_bytes();
    let due = EXPIRY
        .open(tx)?
        .take_range((Bound::Unbounded, Bound::Included(&hi)), limit)?;
    let mut out = Purged::default();
    let mut blobs = Vec::new();
    {
        let mut sent = SENT.open(tx)?;
        let mut items = ITEMS.open(tx)?;
        let mut refs = REFS.open(tx)?;
        let mut mb = MAILBOX.open(tx)?;
        for (k, idem) in &due {
            if !idem.is_empty() {
                sent.remove(idem)?;
            }
            let Some(seq) = crate::store::key::trailing_u64(k) else {
                continue;
            };
            if let Some(b) = items.remove(&seq.to_be_bytes())? {
                let item: Item = parse(&b, "relay item")?;
                refs.remove(&seq.to_be_bytes())?;
                blobs.extend(item.blob_ids());
                for d in item.devices {
                    if mb.remove(&mailbox_key(seq, &d))?.is_some() {
                        out.entries.push((d, seq));
                    }
                }
                out.items += 1;
            }
        }
    }
    if !out.entries.is_empty() {
        store::counter_add(tx, DEPTH_COUNTER, -(out.entries.len() as i64))?;
    }
    super::blob::drop_refs(tx, &blobs)?;
    Ok(out)
}

/// One waiting mailbox entry with its item.
pub struct Waiting {
    pub seq: u64,
    pub sealed: String,
    pub item: Item,
}

/// Up to `limit` entries of `device_id` with seq > `after`, in order; fewer only
/// when no more wait. Entries whose item expired are skipped (the purge removes them).
pub fn page(
    store: &store::Store,
    index: &MailboxIndex,
    device_id: &str,
    mut after: u64,
    limit: usize,
    now_ms: u64,
) -> Result<Vec<Waiting>> {
    let mut out = Vec::with_capacity(limit.min(256));
    while out.len() < limit {
        // Read the index before the snapshot: whatever it lists is committed, so the
        // snapshot has it unless it has been removed since.
        let seqs = index.after(device_id, after, limit - out.len());
        let Some(last) = seqs.last().copied() else {
            break;
        };
        store.read(|tx| {
            for seq in seqs {
                let Some(sealed) = tx_get(tx, schema::RELAY_MAILBOX, &mailbox_key(seq, device_id))?
                else {
                    continue;
                };
                let Some(b) = tx_get(tx, schema::RELAY_ITEMS, &seq.to_be_bytes())? else {
                    continue;
                };
                let item: Item = parse(&b, "relay item")?;
                if item.expires_at > now_ms {
                    out.push(Waiting {
                        seq,
                        sealed: String::from_utf8_lossy(&sealed).into_owned(),
                        item,
                    });
                }
            }
            Ok(())
        })?;
        after = last;
    }
    Ok(out)
}

fn tx_get(tx: &redb::ReadTransaction, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
    Tx::from(tx).get_raw(table, key)
}

/// Read every mailbox entry's `(seq, device)` to build the index (at start-up).
pub fn load_index(store: &store::Store) -> Result<MailboxIndex> {
    let mut entries = Vec::new();
    store.read(|tx| {
        Tx::from(tx).scan_raw(
            schema::RELAY_MAILBOX,
            (Bound::Unbounded, Bound::Unbounded),
            false,
            |k, _| {
                if let Some(e) = parse_mailbox_key(k) {
                    entries.push(e);
                }
                Ok(ControlFlow::Continue(()))
            },
        )
    })?;
    MailboxIndex::load(entries.into_iter().map(Ok))
}
