//! Mailboxes: the durable store-and-forward queue of every device.
//!
//! An accepted item (an envelope, a membership event or a receipt) is stored once in
//! `relay_items` under a `seq` that grows with every item; the row names the recipient
//! devices and carries each one's sealed key. A device acknowledges cumulatively
//! (PROTOCOL.md §4.4), so what it has done is one number, its mark in `relay_acked`:
//! an item waits for a device while its seq is above the device's mark. The item goes
//! when the last device it waits for acknowledges it, or when it expires.
//!
//! Every key a commit writes is near the end of its table — items by seq, expiry by
//! time, idempotency records by the (time-ordered) client message id — or is one of the
//! few marks, so a commit of thousands of envelopes dirties few pages, and an ack
//! deletes at most the item it finishes. Which items wait for one device, and how many
//! devices each item still waits for, is kept in memory by [`MailboxIndex`], built from
//! these tables at start-up ([`load_index`]).
//!
//! `relay_expiry` lists every item by expiry so that expired items are purged even if
//! never delivered, and keeps the sender's idempotency record (`relay_sent_ids`) until
//! then. A revoked or reset device is listed in `relay_cleared`, and the relay's writer
//! then acknowledges everything for it.
//!
//! Everything here runs inside store transactions queued by the relay's writer (the
//! one part that changes the index), so that many envelopes share one fsync.

use super::frame::{Attachment, Kind, MembershipEvent, Receipt, ServerFrame};
use super::index::MailboxIndex;
use crate::error::{Error, Result};
use crate::store::{self, Key, RawTable, Tx, schema};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::{Bound, ControlFlow};

const ITEMS: RawTable = RawTable::new(schema::RELAY_ITEMS);
const ACKED: RawTable = RawTable::new(schema::RELAY_ACKED);
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
    /// The recipient devices.
    pub devices: Vec<String>,
    /// Each recipient device's sealed key, in the order of `devices` (empty for
    /// events, which have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed: Vec<String>,
    pub body: Body,
}

impl Item {
    /// About how many bytes the item (or its frame) takes as JSON.
    pub fn size_hint(&self) -> usize {
        let keys: usize = self
            .devices
            .iter()
            .zip(self.sealed.iter().chain(std::iter::repeat(&String::new())))
            .map(|(d, k)| d.len() + k.len() + 8)
            .sum();
        let body = match &self.body {
            Body::Envelope(e) => {
                e.ciphertext.len() + e.signature.len() + e.attachments.len() * 160 + 320
            }
            _ => 512,
        };
        keys + body + 128
    }

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
            item_json: json_sized(item, item.size_hint())?,
            server_time: item.server_time,
            expires_at: item.expires_at,
            blob_ids: item.blob_ids(),
            grant_users,
            recipients,
            idempotency,
        })
    }
}

/// An idempotency record's key: the client message id first. Clients make ids
/// time-ordered (UUIDv7, PROTOCOL.md §4.4), so new records land together at the end.
pub fn sent_key(device_id: &str, client_msg_id: &str) -> Vec<u8> {
    Key::new().s(client_msg_id).s(device_id).into_bytes()
}

fn expiry_key(expires_at: u64, seq: u64) -> Vec<u8> {
    Key::new().u64(expires_at).u64(seq).into_bytes()
}

/// Encode `v` into a buffer of `capacity` bytes (grown if needed): envelopes are
/// large and growing a buffer from empty copies them several times.
pub fn json_sized<T: Serialize>(v: &T, capacity: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, v)
        .map_err(|e| Error::internal(format!("encoding a relay item: {e}")))?;
    Ok(out)
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::internal(format!("the stored {what} is unreadable: {e}")))
}

/// Store many items in one transaction, opening each table once (the relay's
/// writer hands every envelope accepted since the last commit to one call).
pub fn store_batch(tx: &WriteTransaction, batch: &[NewItem]) -> Result<Vec<Acceptance>> {
    let mut seq = last_seq(tx)?;
    let first_seq = seq;
    let mut out = Vec::with_capacity(batch.len());
    let mut depth = 0i64;
    let mut blob_work: Vec<&NewItem> = Vec::new();
    // Two sends with the same id in one batch: the second is the first's retry.
    let mut in_batch: HashMap<Vec<u8>, Acceptance> = HashMap::new();
    {
        let mut items = ITEMS.open(tx)?;
        let mut sent = SENT.open(tx)?;
        let mut expiry = EXPIRY.open(tx)?;
        for new in batch {
            let idem = new
                .idempotency
                .as_ref()
                .map(|(d, m)| sent_key(d, m))
                .unwrap_or_default();
            if !idem.is_empty() {
                if let Some(a) = in_batch.get(&idem) {
                    out.push(Acceptance {
                        duplicate: true,
                        ..*a
                    });
                    continue;
                }
                if let Some(b) = sent.get(&idem)? {
                    out.push(decode_acceptance(&b)?);
                    continue;
                }
            }
            seq += 1;
            let acceptance = Acceptance {
                seq,
                server_time: new.server_time,
                duplicate: false,
            };
            let n = new.recipients.len();
            if n > 0 {
                items.insert(&seq.to_be_bytes(), &new.item_json)?;
                depth += n as i64;
            }
            if !new.blob_ids.is_empty() {
                blob_work.push(new);
            }
            if !idem.is_empty() {
                sent.insert(&idem, &encode_acceptance(&acceptance))?;
                in_batch.insert(idem.clone(), acceptance);
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

/// A `relay_sent_ids` value: seq and server time, big-endian.
fn encode_acceptance(a: &Acceptance) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.seq.to_be_bytes());
    out[8..].copy_from_slice(&a.server_time.to_be_bytes());
    out
}

fn decode_acceptance(b: &[u8]) -> Result<Acceptance> {
    match (decode_u64(b), b.get(8..).and_then(decode_u64)) {
        (Some(seq), Some(server_time)) => Ok(Acceptance {
            seq,
            server_time,
            duplicate: true,
        }),
        _ => Err(Error::internal("a stored acceptance is unreadable")),
    }
}

/// The big-endian u64 at the start of `b`.
fn decode_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

/// The seq of the last item stored (0 before the first).
fn last_seq(tx: &WriteTransaction) -> Result<u64> {
    Ok(store::meta_get(tx, SEQ_KEY)?
        .as_deref()
        .and_then(decode_u64)
        .unwrap_or(0))
}

/// Apply many acks `(device, up_to)` in one transaction: each device's mark moves to
/// `up_to`, and every item that no device waits for any more is deleted. Reads the
/// index (which the caller updates with [`MailboxIndex::ack`] once this commits);
/// returns how many entries each ack finished.
pub fn ack_batch(
    tx: &WriteTransaction,
    index: &MailboxIndex,
    acks: &[(String, u64)],
) -> Result<Vec<u64>> {
    let mut out = Vec::with_capacity(acks.len());
    // Devices each item lost in this batch (the index changes only after the commit).
    let mut lost: HashMap<u64, u32> = HashMap::new();
    // What each device has already acknowledged in this batch.
    let mut done: HashMap<&str, u64> = HashMap::new();
    let mut blobs = Vec::new();
    let mut total = 0u64;
    {
        let mut acked = ACKED.open(tx)?;
        let mut items = ITEMS.open(tx)?;
        for (device_id, up_to) in acks {
            let before = done.get(device_id.as_str()).copied().unwrap_or(0);
            let mut seqs = index.up_to(device_id, *up_to);
            seqs.retain(|s| *s > before);
            let d = done.entry(device_id.as_str()).or_default();
            *d = (*d).max(*up_to);
            let mark = acked
                .get(device_id.as_bytes())?
                .as_deref()
                .and_then(decode_u64);
            if mark.is_none_or(|m| m < *up_to) {
                acked.insert(device_id.as_bytes(), &up_to.to_be_bytes())?;
            }
            for seq in &seqs {
                let Some((waiting, has_blobs)) = index.refs(*seq) else {
                    continue;
                };
                let gone = lost.entry(*seq).or_default();
                *gone += 1;
                if *gone >= waiting
                    && let Some(b) = items.remove(&seq.to_be_bytes())?
                    && has_blobs
                {
                    let item: Item = parse(&b, "relay item")?;
                    blobs.extend(item.blob_ids());
                }
            }
            total += seqs.len() as u64;
            out.push(seqs.len() as u64);
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
/// listed in `relay_cleared` with the current seq, and the relay's writer then
/// acknowledges everything up to that seq for it ([`take_cleared`]).
pub fn clear_device(tx: &WriteTransaction, device_id: &str) -> Result<()> {
    let seq = last_seq(tx)?;
    CLEARED
        .open(tx)?
        .insert(device_id.as_bytes(), &seq.to_be_bytes())
}

/// Take up to `limit` cleared devices as `(device, up to seq)` acks.
pub fn take_cleared(tx: &WriteTransaction, limit: usize) -> Result<Vec<(String, u64)>> {
    let cleared = CLEARED
        .open(tx)?
        .take_range((Bound::Unbounded, Bound::Unbounded), limit)?;
    Ok(cleared
        .into_iter()
        .filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, decode_u64(&v)?)))
        .collect())
}

/// Whether any device waits to have its mailbox emptied.
pub fn any_cleared(store: &store::Store) -> Result<bool> {
    store.read(|tx| {
        Ok(
            Tx::from(tx).count_raw(schema::RELAY_CLEARED, (Bound::Unbounded, Bound::Unbounded))?
                > 0,
        )
    })
}

/// An item the purge removed, with the devices it was still waiting for.
pub struct PurgedItem {
    pub seq: u64,
    pub waiting: Vec<String>,
}

/// Purge up to `limit` items that expired by `now_ms` (and their idempotency
/// records). Reads the index; the caller forgets the items in it once committed.
pub fn purge_expired(
    tx: &WriteTransaction,
    index: &MailboxIndex,
    now_ms: u64,
    limit: usize,
) -> Result<Vec<PurgedItem>> {
    let hi = Key::new().u64(now_ms).u64(u64::MAX).into_bytes();
    let due = EXPIRY
        .open(tx)?
        .take_range((Bound::Unbounded, Bound::Included(&hi)), limit)?;
    let mut out = Vec::new();
    let mut blobs = Vec::new();
    let mut entries = 0u64;
    // Items a compliance device has not journalled yet are kept (retention loses
    // nothing) and looked at again later; no other device is given them (see `page`).
    let mut kept = Vec::new();
    {
        let mut sent = SENT.open(tx)?;
        let mut items = ITEMS.open(tx)?;
        for (k, idem) in &due {
            let seq = crate::store::key::trailing_u64(k);
            if let Some(seq) = seq
                && let Some(b) = items.get(&seq.to_be_bytes())?
            {
                let item: Item = parse(&b, "relay item")?;
                if item
                    .devices
                    .iter()
                    .any(|d| super::compliance::is_device(d) && index.waits(d, seq))
                {
                    kept.push((seq, idem.clone()));
                    continue;
                }
            }
            if !idem.is_empty() {
                sent.remove(idem)?;
            }
            let Some(seq) = seq else {
                continue;
            };
            if let Some(b) = items.remove(&seq.to_be_bytes())? {
                let item: Item = parse(&b, "relay item")?;
                blobs.extend(item.blob_ids());
                let waiting: Vec<String> = item
                    .devices
                    .into_iter()
                    .filter(|d| index.waits(d, seq))
                    .collect();
                entries += waiting.len() as u64;
                out.push(PurgedItem { seq, waiting });
            }
        }
    }
    if !kept.is_empty() {
        let mut expiry = EXPIRY.open(tx)?;
        let again = now_ms.saturating_add(COMPLIANCE_RECHECK_MS);
        for (seq, idem) in &kept {
            expiry.insert(&Key::new().u64(again).u64(*seq).into_bytes(), idem)?;
        }
    }
    if entries > 0 {
        store::counter_add(tx, DEPTH_COUNTER, -(entries as i64))?;
    }
    super::blob::drop_refs(tx, &blobs)?;
    Ok(out)
}

/// How long an expired item still waiting for a compliance device is kept before the
/// purge looks at it again.
const COMPLIANCE_RECHECK_MS: u64 = 10 * 60 * 1000;

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
                let Some(b) = Tx::from(tx).get_raw(schema::RELAY_ITEMS, &seq.to_be_bytes())? else {
                    continue;
                };
                let mut item: Item = parse(&b, "relay item")?;
                if item.expires_at <= now_ms && !super::compliance::is_device(device_id) {
                    continue;
                }
                let Some(i) = item.devices.iter().position(|d| d == device_id) else {
                    continue;
                };
                let sealed = if item.sealed.len() > i {
                    std::mem::take(&mut item.sealed[i])
                } else {
                    String::new()
                };
                item.sealed.clear();
                out.push(Waiting { seq, sealed, item });
            }
            Ok(())
        })?;
        after = last;
    }
    Ok(out)
}

/// Build the index from the stored items and the devices' marks (at start-up).
pub fn load_index(store: &store::Store) -> Result<MailboxIndex> {
    let index = MailboxIndex::default();
    store.read(|tx| {
        let tx = Tx::from(tx);
        let mut marks: HashMap<String, u64> = HashMap::new();
        tx.scan_raw(
            schema::RELAY_ACKED,
            (Bound::Unbounded, Bound::Unbounded),
            false,
            |k, v| {
                if let (Ok(d), Some(m)) = (std::str::from_utf8(k), decode_u64(v)) {
                    marks.insert(d.to_string(), m);
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        tx.scan_raw(
            schema::RELAY_ITEMS,
            (Bound::Unbounded, Bound::Unbounded),
            false,
            |k, v| {
                let (Some(seq), Ok(item)) = (decode_u64(k), parse::<Item>(v, "relay item")) else {
                    return Ok(ControlFlow::Continue(()));
                };
                let waiting = item
                    .devices
                    .iter()
                    .filter(|d| marks.get(d.as_str()).is_none_or(|m| *m < seq))
                    .map(|d| d.as_str());
                index.add_item(seq, waiting, !item.blob_ids().is_empty());
                Ok(ControlFlow::Continue(()))
            },
        )
    })?;
    Ok(index)
}
