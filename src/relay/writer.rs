//! The relay's writer: every item, ack, purge and mailbox clearing queued since the
//! last commit goes to the store as one operation, so a commit of thousands of
//! envelopes opens each table once instead of once per envelope. It is the only part
//! that changes the mailbox index.
//!
//! While one batch is being committed the next accumulates; under load a batch is
//! everything that arrived during one fsync, when idle a single envelope commits at
//! once. After the commit — on the committer thread, in seq order — the mailbox index
//! learns the batch's new items and forgets what was acknowledged or purged, the
//! batch's items are pushed to the connected recipients, then every waiting caller is
//! answered. A failed commit fails every job of the batch (nothing of it was stored),
//! and senders may retry with the same client message ids.

use super::Pending;
use super::hub::{Hub, Prepared, Rendered};
use super::index::MailboxIndex;
use super::local::{Groups, Local};
use super::mailbox::{self, Acceptance, NewItem};
use crate::error::{Error, Result};
use crate::store::Store;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most jobs in one batch.
const MAX_BATCH: usize = 8192;

enum Job {
    Store {
        item: NewItem,
        frame: Rendered,
        reply: Reply<Acceptance>,
    },
    Ack {
        device_id: String,
        up_to: u64,
        reply: Reply<u64>,
    },
    /// Purge up to `limit` items expired by `now_ms`.
    Purge {
        now_ms: u64,
        limit: usize,
        reply: Reply<Purged>,
    },
    /// Empty the mailboxes of up to `limit` cleared devices.
    Sweep { limit: usize, reply: Reply<Swept> },
}

/// Where a job's result goes: the caller's channel, answered on the caller's thread
/// when it has a dispatcher ([`Local`]).
struct Reply<T> {
    tx: oneshot::Sender<Result<T>>,
    local: Option<Local>,
}

/// Answer every caller, each thread's callers in one hand-over.
fn answer_all<T: Send + 'static>(answers: impl IntoIterator<Item = (Reply<T>, Result<T>)>) {
    let mut groups = Groups::default();
    for (reply, result) in answers {
        if let Some((tx, result)) = groups.add(reply.local.as_ref(), (reply.tx, result)) {
            let _ = tx.send(result);
        }
    }
    groups.dispatch(|(tx, result)| {
        // The caller may have gone (its stream closed); the write stands anyway.
        let _ = tx.send(result);
    });
}

/// What a purge removed: items and the mailbox entries that waited for them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Purged {
    pub items: u64,
    pub entries: u64,
}

/// What a sweep did: devices whose mailboxes were emptied and the entries removed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Swept {
    pub devices: u64,
    pub entries: u64,
}

/// What a batch commit yields, for the index and the callers.
#[derive(Default)]
struct Outcome {
    accepted: Vec<Acceptance>,
    /// Entries each ack removed (session acks first, then the swept devices').
    removed: Vec<u64>,
    /// The acks to apply to the index: the session's, then the swept devices'.
    acks: Vec<(String, u64)>,
    purged: Vec<mailbox::PurgedItem>,
}

/// The handle the relay queues work on.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Job>,
}

fn stopped() -> Error {
    Error::unavailable(
        "shutting_down",
        "the appliance is shutting down; send again once it is back",
    )
}

impl Writer {
    /// Start the writer task (on the current tokio runtime).
    pub fn start(store: Store, hub: Arc<Hub>, index: Arc<MailboxIndex>) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, hub, index, rx));
        Writer { tx }
    }

    /// Queue the job `make` builds around its reply channel; resolves with the
    /// job's result once its batch is durable.
    fn submit<T: Send + 'static>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Pending<T> {
        let (tx, rx) = oneshot::channel();
        let sent = self.tx.send(make(Reply {
            tx,
            local: Local::current(),
        }));
        Box::pin(async move {
            sent.map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
        })
    }

    /// Store `item` for its recipients; resolves once durable.
    pub fn store(&self, item: NewItem, frame: Rendered) -> Pending<Acceptance> {
        self.submit(|reply| Job::Store { item, frame, reply })
    }

    /// Purge up to `limit` items expired by `now_ms`; resolves once durable.
    pub fn purge(&self, now_ms: u64, limit: usize) -> Pending<Purged> {
        self.submit(|reply| Job::Purge {
            now_ms,
            limit,
            reply,
        })
    }

    /// Empty the mailboxes of up to `limit` cleared devices; resolves once durable.
    pub fn sweep(&self, limit: usize) -> Pending<Swept> {
        self.submit(|reply| Job::Sweep { limit, reply })
    }

    /// Remove `device_id`'s mailbox entries up to `up_to`; resolves once durable.
    pub fn ack(&self, device_id: &str, up_to: u64) -> Pending<u64> {
        let device_id = device_id.to_string();
        self.submit(|reply| Job::Ack {
            device_id,
            up_to,
            reply,
        })
    }
}

async fn run(
    store: Store,
    hub: Arc<Hub>,
    index: Arc<MailboxIndex>,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    let mut jobs = Vec::new();
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let mut items = Vec::new();
        let mut frames = Vec::new();
        let mut item_replies = Vec::new();
        let mut acks = Vec::new();
        let mut ack_replies = Vec::new();
        let mut purges = Vec::new();
        let mut sweeps = Vec::new();
        for job in jobs.drain(..) {
            match job {
                Job::Store { item, frame, reply } => {
                    items.push(item);
                    frames.push(frame);
                    item_replies.push(reply);
                }
                Job::Ack {
                    device_id,
                    up_to,
                    reply,
                } => {
                    acks.push((device_id, up_to));
                    ack_replies.push(reply);
                }
                Job::Purge {
                    now_ms,
                    limit,
                    reply,
                } => purges.push((now_ms, limit, reply)),
                Job::Sweep { limit, reply } => sweeps.push((limit, reply)),
            }
        }
        let items = Arc::new(items);
        let (for_op, for_push) = (items.clone(), items);
        let purge_at: Option<(u64, usize)> = purges
            .iter()
            .map(|(now, limit, _)| (*now, *limit))
            .reduce(|a, b| (a.0.max(b.0), a.1.max(b.1)));
        let sweep_limit: usize = sweeps.iter().map(|(l, _)| *l).max().unwrap_or(0);
        let push_hub = hub.clone();
        let (ix_op, ix_done) = (index.clone(), index.clone());
        let on_commit: Box<dyn FnOnce(&Outcome) + Send> = Box::new(move |out: &Outcome| {
            for (a, item) in out.accepted.iter().zip(for_push.iter()) {
                if !a.duplicate {
                    ix_done.add_item(
                        a.seq,
                        item.recipients.iter().map(|(d, _)| d.as_str()),
                        !item.blob_ids.is_empty(),
                    );
                }
            }
            for (device, up_to) in &out.acks {
                ix_done.ack(device, *up_to);
            }
            for p in &out.purged {
                ix_done.remove_item(p.seq, p.waiting.iter().map(|d| d.as_str()));
            }
            let live = out
                .accepted
                .iter()
                .zip(frames)
                .zip(for_push.iter())
                .filter(|((a, _), item)| !a.duplicate && !item.recipients.is_empty())
                .map(|((a, frame), item)| {
                    Arc::new(Prepared::new(
                        a.seq,
                        a.server_time,
                        frame,
                        item.recipients.clone(),
                    ))
                });
            push_hub.push_all(live);
        });
        let result = store
            .queue_write(
                move |tx| {
                    let accepted = mailbox::store_batch(tx, &for_op)?;
                    let mut all_acks = acks.clone();
                    if sweep_limit > 0 {
                        all_acks.extend(mailbox::take_cleared(tx, sweep_limit)?);
                    }
                    let removed = mailbox::ack_batch(tx, &ix_op, &all_acks)?;
                    let purged = match purge_at {
                        Some((now, limit)) => mailbox::purge_expired(tx, &ix_op, now, limit)?,
                        None => Vec::new(),
                    };
                    Ok(Outcome {
                        accepted,
                        removed,
                        acks: all_acks,
                        purged,
                    })
                },
                Some(on_commit),
            )
            .await;
        match result {
            Ok(out) => {
                let stored = out.accepted.iter().filter(|a| !a.duplicate).count();
                if stored > 0 {
                    crate::metrics::relay::COMMIT_ENVELOPES.observe(stored as f64);
                }
                answer_all(
                    item_replies
                        .into_iter()
                        .zip(out.accepted.iter().map(|a| Ok(*a))),
                );
                let n_session = ack_replies.len();
                answer_all(
                    ack_replies
                        .into_iter()
                        .zip(out.removed.iter().map(|n| Ok(*n))),
                );
                let swept = Swept {
                    devices: (out.acks.len() - n_session) as u64,
                    entries: out.removed[n_session..].iter().sum(),
                };
                let purged = Purged {
                    items: out.purged.len() as u64,
                    entries: out.purged.iter().map(|p| p.waiting.len() as u64).sum(),
                };
                answer_all(sweeps.into_iter().map(|(_, r)| (r, Ok(swept))));
                answer_all(purges.into_iter().map(|(_, _, r)| (r, Ok(purged))));
            }
            Err(e) => {
                tracing::error!(error = %e, "a relay batch could not be stored");
                answer_all(item_replies.into_iter().map(|r| (r, Err(e.clone()))));
                answer_all(ack_replies.into_iter().map(|r| (r, Err(e.clone()))));
                answer_all(sweeps.into_iter().map(|(_, r)| (r, Err(e.clone()))));
                answer_all(purges.into_iter().map(|(_, _, r)| (r, Err(e.clone()))));
            }
        }
    }
}
