//! The messaging relay (PRODUCT.md F6, F11, F2 enforcement): routes and stores
//! end-to-end-encrypted envelopes between devices without ever seeing plaintext.
//!
//! [`Relay`] is the part's typed interface: device authentication, accepting an
//! envelope (checked by [`policy`], stored by [`mailbox`] in a group commit, pushed
//! live by [`hub`]), acknowledgements, receipts, membership events, consent and the
//! periodic purge. Streams ([`session`], over [`websocket`] or [`quic`]) and the REST
//! handlers (`crate::api`) are thin layers over it.

pub mod blob;
pub mod compliance;
pub mod conversation;
pub mod frame;
pub mod hub;
pub mod index;
pub mod local;
pub mod mailbox;
pub mod policy;
pub mod quic;
pub mod roster;
pub mod session;
pub mod websocket;
pub mod writer;

use crate::config::RelayConfig;
use crate::directory::device::{self, Device};
use crate::error::{Error, Result};
use crate::metrics;
use crate::store::Store;
use conversation::Change;
use frame::{MembershipChange, MembershipEvent, OutgoingEnvelope, Receipt, ServerFrame};
use hub::{Hub, SEALED_PLACEHOLDER};
use mailbox::{Acceptance, Body, EnvelopeBody, Item, NewItem};
use roster::{Account, Roster};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A durable result the caller awaits (the commit of an envelope or an ack).
pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub struct Relay {
    pub store: Store,
    pub config: RelayConfig,
    pub roster: Roster,
    pub hub: Arc<Hub>,
    pub blobs: blob::Blobs,
    /// Which mailbox entries wait for each device.
    pub index: Arc<index::MailboxIndex>,
    writer: writer::Writer,
    /// Wakes the task that empties the mailboxes of revoked and reset devices.
    sweep: Arc<tokio::sync::Notify>,
    /// Wakes the other part that enforces the directory (the calling relay) after any
    /// change to accounts, groups or policies.
    changes: Arc<tokio::sync::Notify>,
}

/// An authenticated device and its account.
#[derive(Clone)]
pub struct DeviceSession {
    pub account: Arc<Account>,
    pub device: Device,
}

impl DeviceSession {
    pub fn user_id(&self) -> &str {
        &self.account.user.id
    }
}

fn invalid_token() -> Error {
    Error::unauthorized(
        "invalid_token",
        "this device token is unknown or no longer valid; sign in again",
    )
}

impl Relay {
    /// Set up the relay; starts its writer task, so call it inside the tokio runtime.
    pub fn new(store: Store, config: RelayConfig, data_dir: &std::path::Path) -> Result<Relay> {
        let blobs = blob::Blobs::new(data_dir, config.max_file_bytes, config.chunk_max_bytes)?;
        let hub = Arc::new(Hub::default());
        let index = Arc::new(mailbox::load_index(&store)?);
        let sweep = Arc::new(tokio::sync::Notify::new());
        let writer = writer::Writer::start(store.clone(), hub.clone(), index.clone());
        tokio::spawn(sweeper(store.clone(), writer.clone(), sweep.clone()));
        // Devices cleared before a restart are swept now.
        sweep.notify_one();
        Ok(Relay {
            roster: Roster::new(store.clone()),
            writer,
            index,
            sweep,
            changes: Arc::new(tokio::sync::Notify::new()),
            store,
            config,
            hub,
            blobs,
        })
    }

    /// The device behind a token, if its account and session are valid.
    pub fn authenticate(&self, token: &str) -> Result<DeviceSession> {
        let r = self
            .store
            .read(|tx| device::by_token(tx, token))?
            .ok_or_else(invalid_token)?;
        let account = self.roster.account(&r.user_id)?.ok_or_else(invalid_token)?;
        if let Some(e) = account.refusal() {
            return Err(e);
        }
        let device = account.live_device(&r.device_id)?.clone();
        Ok(DeviceSession { account, device })
    }

    /// The device behind a token that waits for approval (account-takeover
    /// protection): what the approval calls accept, and nothing else does.
    pub fn authenticate_pending(&self, token: &str) -> Result<DeviceSession> {
        let r = self
            .store
            .read(|tx| device::by_token(tx, token))?
            .ok_or_else(invalid_token)?;
        let account = self.roster.account(&r.user_id)?.ok_or_else(invalid_token)?;
        if let Some(e) = account.refusal() {
            return Err(e);
        }
        let device = account.pending_device(&r.device_id)?.clone();
        Ok(DeviceSession { account, device })
    }

    /// Re-validate a session (after a directory change) and return its current state.
    pub fn revalidate(&self, s: &DeviceSession) -> Result<DeviceSession> {
        let account = self
            .roster
            .account(s.user_id())?
            .ok_or_else(|| Error::unauthorized("account_deleted", "this account was deleted"))?;
        if let Some(e) = account.refusal() {
            return Err(e);
        }
        let device = account.live_device(&s.device.id)?.clone();
        Ok(DeviceSession { account, device })
    }

    /// The error a device that has not acknowledged the current consent gets.
    pub fn consent_required(&self, s: &DeviceSession, fatal_hint: bool) -> Option<Error> {
        if s.account.consent_ok(s.device.consent_version) {
            return None;
        }
        let c = s.account.consent.clone();
        Some(
            Error::forbidden(
                "consent_required",
                if fatal_hint {
                    "the network's consent notice changed: acknowledge it, then connect again"
                } else {
                    "acknowledge the network's consent notice first (send authenticate with consent_version)"
                },
            )
            .with_details(serde_json::json!({ "consent": c })),
        )
    }

    /// Record that a device acknowledged consent `version` (must be the current one).
    pub async fn acknowledge_consent(
        &self,
        s: &DeviceSession,
        version: u64,
    ) -> Result<DeviceSession> {
        match &s.account.consent {
            Some(c) if c.version == version => {}
            None => return Ok(s.clone()),
            Some(c) => {
                return Err(Error::conflict(
                    "consent_version_mismatch",
                    format!(
                        "the current consent notice is version {}; show that one and acknowledge it",
                        c.version
                    ),
                )
                .with_details(serde_json::json!({ "consent": c })));
            }
        }
        let (uid, did) = (s.user_id().to_string(), s.device.id.clone());
        self.store
            .write(move |tx| {
                let mut d = device::get(tx, &uid, &did)?;
                d.consent_version = Some(version);
                device::put(tx, &d)
            })
            .await?;
        self.roster.forget_account(s.user_id());
        self.revalidate(s)
    }

    /// Note that a device connected (its `last_seen_at`); queued, not awaited.
    pub fn touch(&self, s: &DeviceSession) {
        crate::analytics::daily::active(&s.account.user, &s.device);
        let (uid, did) = (s.user_id().to_string(), s.device.id.clone());
        // Queued now; the result is not needed, so the future is dropped unawaited.
        drop(self.store.queue_write(
            move |tx| {
                let mut d = device::get(tx, &uid, &did)?;
                d.last_seen_at = Some(chrono::Utc::now());
                device::put(tx, &d)
            },
            None,
        ));
    }

    /// Check an envelope and queue it for the next commit. The returned future
    /// resolves once it is durable for every recipient (or was accepted before).
    pub fn send(&self, s: &DeviceSession, env: OutgoingEnvelope) -> Result<Pending<Acceptance>> {
        let refused = |e: Error| {
            metrics::relay::REFUSED.with_label_values(&[e.code]).inc();
            e
        };
        policy::check_shape(&env).map_err(refused)?;
        let conv = self
            .roster
            .conversation(&env.conversation_id)
            .map_err(refused)?
            .filter(|c| c.member(s.user_id()).is_some())
            .ok_or_else(|| {
                refused(Error::not_found(
                    "conversation_not_found",
                    "there is no such conversation, or you are not a member of it",
                ))
            })?;
        let mut members = Vec::with_capacity(conv.members.len());
        for id in conv.member_ids() {
            if let Some(a) = self.roster.account(id).map_err(refused)? {
                members.push(a);
            }
        }
        // The account as it is now (an administrator may have just changed the policy
        // and the stream not yet re-checked), not as it was when the stream opened.
        let sender = self
            .roster
            .account(s.user_id())
            .map_err(refused)?
            .unwrap_or_else(|| s.account.clone());
        if let Some(e) = sender.refusal() {
            return Err(refused(e));
        }
        let verdict =
            policy::check(&env, &sender, &s.device.id, &conv, &members).map_err(refused)?;
        if !env.attachments.is_empty() {
            let uid = s.user_id().to_string();
            let ok = self.store.read(|tx| {
                for a in &env.attachments {
                    if !blob::attachable(tx, &a.blob_id, &uid)? {
                        return Ok(Some(a.blob_id.clone()));
                    }
                }
                Ok(None)
            });
            if let Some(bad) = ok.map_err(refused)? {
                return Err(refused(
                    Error::invalid(
                        "blob_not_found",
                        "an attachment does not exist, is not completely uploaded, or is not yours to send",
                    )
                    .with_details(serde_json::json!({ "blob_id": bad })),
                ));
            }
        }
        let kind = env.kind;
        let files = env.attachments.len();
        let device_ix = sender.devices.iter().position(|d| d.id == s.device.id);
        let recipients: Vec<(String, String)> = env
            .keys
            .into_iter()
            .map(|k| (k.device_id, k.sealed))
            .collect();
        let body = Body::Envelope(EnvelopeBody {
            conversation_id: env.conversation_id,
            sender_user_id: s.user_id().to_string(),
            sender_device_id: s.device.id.clone(),
            client_msg_id: env.client_msg_id.clone(),
            kind,
            bor_secs: env.bor_secs,
            forwarded: env.forwarded,
            ciphertext: env.ciphertext,
            attachments: env.attachments,
            signature: env.signature,
        });
        let idem = Some((s.device.id.clone(), env.client_msg_id));
        let fut = self.commit(
            body,
            Some(verdict.ttl_secs),
            recipients,
            verdict.members,
            idem,
        )?;
        Ok(Box::pin(async move {
            let a = fut.await?;
            if !a.duplicate {
                metrics::relay::ACCEPTED
                    .with_label_values(&[kind.as_str()])
                    .inc();
                let device = device_ix.and_then(|i| sender.devices.get(i));
                crate::analytics::daily::sent(&sender.user, device, kind, files);
            }
            Ok(a)
        }))
    }

    /// Queue an item for its recipients; once durable, push it to those connected.
    fn commit(
        &self,
        body: Body,
        ttl_secs: Option<u64>,
        recipients: Vec<(String, String)>,
        grant_users: Vec<String>,
        idempotency: Option<(String, String)>,
    ) -> Result<Pending<Acceptance>> {
        let server_time = now_ms();
        let max_age = self.config.mailbox_max_age_days * 86_400;
        let item = Item {
            server_time,
            expires_at: server_time + ttl_secs.unwrap_or(max_age).min(max_age) * 1000,
            devices: recipients.iter().map(|(d, _)| d.clone()).collect(),
            sealed: recipients
                .iter()
                .map(|(_, k)| k.clone())
                .filter(|k| !k.is_empty())
                .collect(),
            body,
        };
        let frame = item.frame(0, SEALED_PLACEHOLDER);
        let encoded = mailbox::json_sized(&frame, item.size_hint())?;
        let rendered = hub::Rendered::new(
            String::from_utf8(encoded)
                .map_err(|e| Error::internal(format!("encoding a frame: {e}")))?,
        );
        let new = NewItem::new(&item, recipients, grant_users, idempotency)?;
        Ok(self.writer.store(new, rendered))
    }

    /// Remove a device's mailbox entries up to `up_to` (durable when the future resolves).
    pub fn ack(&self, device_id: &str, up_to: u64) -> Pending<u64> {
        let fut = self.writer.ack(device_id, up_to);
        Box::pin(async move {
            let n = fut.await?;
            metrics::relay::ACKED.inc_by(n);
            Ok(n)
        })
    }

    /// Relay a read receipt to the original sender's devices.
    pub fn receipt(&self, s: &DeviceSession, mut r: Receipt) -> Result<Pending<Acceptance>> {
        if !s.account.policy.read_receipts {
            return Err(Error::forbidden(
                "receipts_disabled",
                "read receipts are turned off in this network",
            ));
        }
        if r.client_msg_ids.is_empty()
            || r.client_msg_ids.len() > 1000
            || !r
                .client_msg_ids
                .iter()
                .all(|id| policy::valid_client_msg_id(id))
        {
            return Err(Error::invalid(
                "invalid_receipt",
                "a receipt names 1 to 1000 valid client message ids",
            ));
        }
        let both_members = self
            .roster
            .conversation(&r.conversation_id)?
            .is_some_and(|c| {
                c.member(s.user_id()).is_some() && c.member(&r.sender_user_id).is_some()
            });
        if !both_members {
            return Err(Error::not_found(
                "conversation_not_found",
                "there is no such conversation, or you or the sender are not members of it",
            ));
        }
        r.reader_user_id = s.user_id().to_string();
        r.read_at = now_ms();
        // A sender deleted meanwhile has no devices: the receipt reaches nobody.
        let recipients: Vec<(String, String)> = self
            .roster
            .account(&r.sender_user_id)?
            .map(|sender| {
                sender
                    .receiving
                    .iter()
                    .map(|d| (d.id.clone(), String::new()))
                    .collect()
            })
            .unwrap_or_default();
        self.commit(Body::Receipt(r), None, recipients, Vec::new(), None)
    }

    /// Tell everyone who was or is a member about a conversation change (through
    /// their mailboxes, so offline devices learn it too), and update the cache.
    pub async fn announce(
        &self,
        change: &Change,
        kind: MembershipChange,
        actor: &str,
        user_ids: Vec<String>,
    ) -> Result<()> {
        let conv = change.after.as_ref().or(change.before.as_ref());
        let Some(conv) = conv else { return Ok(()) };
        self.roster
            .put_conversation(&conv.id, change.after.as_ref());
        let mut recipients = Vec::new();
        let mut compliance = None;
        for uid in change.audience() {
            if let Some(a) = self.roster.account(&uid)? {
                for d in &a.receiving {
                    recipients.push((d.id.clone(), String::new()));
                }
                if compliance.is_none() {
                    compliance = a.compliance.clone();
                }
            }
        }
        if let Some(c) = compliance {
            recipients.push((c.id, String::new()));
        }
        let body = Body::Membership(MembershipEvent {
            conversation_id: conv.id.clone(),
            change: kind,
            actor_user_id: actor.to_string(),
            user_ids,
            conversation: change.after.as_ref().map(|c| c.view()),
        });
        self.commit(body, None, recipients, Vec::new(), None)?
            .await?;
        Ok(())
    }

    /// An administrator changed the directory: drop the cache and have every stream
    /// re-check its account, device, consent and policy.
    pub fn directory_changed(&self) {
        self.roster.clear();
        self.hub.recheck_all();
        self.sweep.notify_one();
        self.changes.notify_one();
    }

    /// Notified after every directory or account change (one listener: the calling relay).
    pub fn directory_changes(&self) -> Arc<tokio::sync::Notify> {
        self.changes.clone()
    }

    /// A device or account of `user_id` changed (revocation, new device, keys).
    pub fn account_changed(&self, user_id: &str) {
        self.roster.forget_account(user_id);
        self.hub.recheck_user(user_id);
        self.sweep.notify_one();
        self.changes.notify_one();
    }

    /// Purge expired items, the mailboxes of revoked devices and unreferenced blobs;
    /// returns (items, entries, blobs).
    pub async fn purge(&self) -> Result<(u64, u64, u64)> {
        const CHUNK: usize = 2000;
        let (mut items, mut entries) = (0, 0);
        loop {
            let purged = self.writer.purge(now_ms(), CHUNK).await?;
            items += purged.items;
            entries += purged.entries;
            if purged.items < CHUNK as u64 {
                break;
            }
        }
        metrics::relay::EXPIRED.inc_by(entries);
        entries += sweep_cleared(&self.store, &self.writer).await?;
        let blobs = self
            .blobs
            .collect_garbage(
                &self.store,
                chrono::Duration::hours(self.config.unsent_blob_hours as i64),
            )
            .await?;
        Ok((items, entries, blobs))
    }

    /// Frames for a device's waiting mailbox entries after `after` (at most `limit`).
    pub fn backlog(
        &self,
        device_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, ServerFrame)>> {
        let page = mailbox::page(&self.store, &self.index, device_id, after, limit, now_ms())?;
        Ok(page
            .into_iter()
            .map(|w| (w.seq, w.item.frame(w.seq, &w.sealed)))
            .collect())
    }
}

/// Empty the mailboxes of devices listed as cleared (revoked, reset, deleted);
/// returns how many entries went.
async fn sweep_cleared(store: &Store, writer: &writer::Writer) -> Result<u64> {
    const CHUNK: usize = 64;
    // A read first: most directory changes clear nothing, and a sweep is a commit.
    if !mailbox::any_cleared(store)? {
        return Ok(0);
    }
    let mut entries = 0;
    loop {
        let swept = writer.sweep(CHUNK).await?;
        entries += swept.entries;
        if swept.devices < CHUNK as u64 {
            return Ok(entries);
        }
    }
}

/// Sweep cleared mailboxes whenever an account or the directory changes.
async fn sweeper(store: Store, writer: writer::Writer, wake: Arc<tokio::sync::Notify>) {
    loop {
        wake.notified().await;
        if let Err(e) = sweep_cleared(&store, &writer).await {
            tracing::warn!(error = %e, "emptying the mailboxes of revoked devices failed; the purge retries");
        }
    }
}
