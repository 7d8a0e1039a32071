//! The relay's writer: every item and ack accepted since the last commit goes to
//! the store as one operation, so a commit of thousands of envelopes opens each
//! mailbox table once instead of once per envelope.
//!
//! While one batch is being committed the next accumulates; under load a batch is
//! everything that arrived during one fsync, when idle a single envelope commits at
//! once. After the commit — on the committer thread, in seq order — the mailbox index
//! learns the batch's new entries and forgets the acked ones, the batch's items are
//! pushed to the connected recipients, then every waiting sender is answered. A failed commit fails every job of the batch (nothing of it was stored),
//! and senders may retry with the same client message ids.

use super::Pending;
use super::hub::{Hub, Prepared, Rendered};
use super::index::MailboxIndex;
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
        reply: oneshot::Sender<Result<Acceptance>>,
    },
    Ack {
        device_id: String,
        up_to: u64,
        reply: oneshot::Sender<Result<u64>>,
    },
}

/// What a batch commit yields: each item's acceptance and each ack's removal count.
type Outcome = (Vec<Acceptance>, Vec<u64>);

/// The handle the relay queues work on.
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

    /// Store `item` for its recipients; resolves once durable.
    pub fn store(&self, item: NewItem, frame: Rendered) -> Pending<Acceptance> {
        let (reply, rx) = oneshot::channel();
        let sent = self.tx.send(Job::Store { item, frame, reply });
        Box::pin(async move {
            sent.map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
        })
    }

    /// Remove `device_id`'s mailbox entries up to `up_to`; resolves once durable.
    pub fn ack(&self, device_id: &str, up_to: u64) -> Pending<u64> {
        let (reply, rx) = oneshot::channel();
        let sent = self.tx.send(Job::Ack {
            device_id: device_id.to_string(),
            up_to,
            reply,
        });
        Box::pin(async move {
            sent.map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
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
            }
        }
        let items = Arc::new(items);
        let acks = Arc::new(acks);
        let (for_op, for_push) = (items.clone(), items);
        let (acks_op, acks_done) = (acks.clone(), acks);
        let push_hub = hub.clone();
        let (ix_op, ix_done) = (index.clone(), index.clone());
        let on_commit: Box<dyn FnOnce(&Outcome) + Send> =
            Box::new(move |(accepted, _): &Outcome| {
                ix_done.add(
                    accepted
                        .iter()
                        .zip(for_push.iter())
                        .filter(|(a, _)| !a.duplicate)
                        .flat_map(|(a, item)| {
                            item.recipients
                                .iter()
                                .map(move |(d, _)| (d.as_str(), a.seq))
                        }),
                );
                for (device, up_to) in acks_done.iter() {
                    ix_done.remove_up_to(device, *up_to);
                }
                for ((a, frame), item) in accepted.iter().zip(frames).zip(for_push.iter()) {
                    if !a.duplicate && !item.recipients.is_empty() {
                        let p = Prepared::new(a.seq, a.server_time, frame, item.recipients.clone());
                        push_hub.push(&Arc::new(p));
                    }
                }
            });
        let result = store
            .queue_write(
                move |tx| {
                    Ok((
                        mailbox::store_batch(tx, &for_op)?,
                        mailbox::ack_batch(tx, &ix_op, &acks_op)?,
                    ))
                },
                Some(on_commit),
            )
            .await;
        match result {
            Ok((accepted, removed)) => {
                for (reply, a) in item_replies.into_iter().zip(accepted) {
                    let _ = reply.send(Ok(a));
                }
                for (reply, n) in ack_replies.into_iter().zip(removed) {
                    let _ = reply.send(Ok(n));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "a relay batch could not be stored");
                for reply in item_replies {
                    let _ = reply.send(Err(e.clone()));
                }
                for reply in ack_replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
