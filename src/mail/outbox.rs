//! The durable outbox (PRODUCT.md F4): every mail the appliance sends is first a record
//! in the store, written in the same transaction as the change that caused it (an
//! invitation, a password reset), so a mail is never lost and never sent for a change
//! that did not happen. A background worker ([`run`]) sends what is due, records each
//! attempt's outcome (`sent`, or the server's answer) and retries temporary failures with
//! exponential back-off; the admin API lists the records.
//!
//! Delivery is at least once: a crash between the server's acceptance and the record's
//! update sends that one mail again after the restart, with the same `Message-ID`, which
//! mail systems use to drop the duplicate.

use crate::error::Result;
use crate::store::{RawTable, Store, Table, Tx, schema};
use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::ops::{Bound, ControlFlow};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use utoipa::ToSchema;

const OUTBOX: Table<OutboxMail> = Table::new(schema::MAIL_OUTBOX);
const QUEUE: RawTable = RawTable::new(schema::MAIL_QUEUE);

/// Where a mail is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MailStatus {
    /// Waiting for its first or next attempt.
    Queued,
    /// The mail server accepted it.
    Sent,
    /// Given up: the server refused it for good, or every attempt failed.
    Failed,
}

/// One mail and its delivery record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutboxMail {
    pub id: String,
    /// What caused it: `invitation`, `password_reset`, `device_approval`, …
    pub kind: String,
    /// The network it concerns, if any.
    pub network_id: Option<String>,
    /// The user it concerns, if any.
    pub user_id: Option<String>,
    pub to: String,
    pub subject: String,
    /// The plain-text body.
    #[schema(value_type = String)]
    pub text: String,
    /// The HTML body.
    #[schema(value_type = String)]
    pub html: String,
    /// The `Message-ID` every attempt carries (so a resend after a crash is a duplicate
    /// mail systems recognise).
    pub message_id: String,
    pub status: MailStatus,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (queued mails).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The last failure: the mail server's answer, or what went wrong reaching it.
    pub last_error: Option<String>,
}

/// A mail to queue.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub kind: &'static str,
    pub network_id: Option<String>,
    pub user_id: Option<String>,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn queue_key(at: DateTime<Utc>, id: &str) -> Vec<u8> {
    let mut k = (at.timestamp_millis().max(0) as u64).to_be_bytes().to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// Queues `mail` inside the caller's transaction; it is sent once that commits (call
/// [`Outbox::wake`] after the commit to send it at once).
pub fn enqueue(tx: &WriteTransaction, mail: NewMail, domain: &str) -> Result<OutboxMail> {
    let id = uuid::Uuid::now_v7().to_string();
    let now = Utc::now();
    let m = OutboxMail {
        message_id: format!("<{id}@{domain}>"),
        id,
        kind: mail.kind.to_string(),
        network_id: mail.network_id,
        user_id: mail.user_id,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        status: MailStatus::Queued,
        attempts: 0,
        created_at: now,
        next_attempt_at: Some(now),
        sent_at: None,
        last_error: None,
    };
    OUTBOX.put(tx, m.id.as_bytes(), &m)?;
    QUEUE.put(tx, &queue_key(now, &m.id), &[])?;
    Ok(m)
}

/// One mail by id.
pub fn get<'a>(tx: impl Into<Tx<'a>>, id: &str) -> Result<Option<OutboxMail>> {
    OUTBOX.get(tx, id.as_bytes())
}

/// Mails newest first, optionally of one status and network, after the cursor `before`
/// (an id), at most `limit`.
pub fn list<'a>(
    tx: impl Into<Tx<'a>>,
    status: Option<MailStatus>,
    network_id: Option<&str>,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<OutboxMail>> {
    let mut out = Vec::new();
    OUTBOX.scan_prefix(tx, b"", before.map(str::as_bytes), true, |_, m| {
        if status.is_none_or(|s| s == m.status)
            && network_id.is_none_or(|n| m.network_id.as_deref() == Some(n))
        {
            out.push(m);
        }
        Ok(if out.len() >= limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    })?;
    Ok(out)
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The server refused this mail for good (5xx for the message or the address): it is
    /// not retried.
    pub permanent: bool,
    /// The server's answer, or what went wrong reaching it.
    pub message: String,
}

/// Sends one mail; implemented by the configured transport.
pub trait Deliver: Send + Sync + 'static {
    fn deliver<'a>(
        &'a self,
        mail: &'a OutboxMail,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<(), Failure>> + Send + 'a>>;
}

/// Retry policy.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// After this many attempts a mail is `failed`.
    pub max_attempts: u32,
}

impl Backoff {
    /// The wait after `attempts` failed attempts: initial × 2^(attempts − 1), capped.
    pub fn wait(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// The worker's handle: wake it after queueing.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    /// Sends what was just queued without waiting for the next scheduled look.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Mails one look sends at most (then it looks again).
const BATCH: usize = 50;

/// The mails due at `now`, oldest due first.
fn due(store: &Store, now: DateTime<Utc>) -> Result<Vec<OutboxMail>> {
    let until = queue_key(now, "\u{10FFFF}");
    let mut ids = Vec::new();
    store.read(|tx| {
        Tx::from(tx).scan_raw(
            schema::MAIL_QUEUE,
            (Bound::Unbounded, Bound::Excluded(until.as_slice())),
            false,
            |k, _| {
                if let Some(id) = k.get(8..).and_then(|b| std::str::from_utf8(b).ok()) {
                    ids.push(id.to_string());
                }
                Ok(if ids.len() >= BATCH {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        )?;
        let mut out = Vec::new();
        for id in &ids {
            if let Some(m) = OUTBOX.get(tx, id.as_bytes())? {
                out.push(m);
            }
        }
        Ok(out)
    })
}

/// When the next queued mail is due, if any.
fn next_due(store: &Store) -> Result<Option<DateTime<Utc>>> {
    let mut at = None;
    store.read(|tx| {
        Tx::from(tx).scan_raw(
            schema::MAIL_QUEUE,
            (Bound::Unbounded, Bound::Unbounded),
            false,
            |k, _| {
                at = k
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .and_then(|ms| DateTime::from_timestamp_millis(ms as i64));
                Ok(ControlFlow::Break(()))
            },
        )
    })?;
    Ok(at)
}

/// Records an attempt's outcome.
async fn record(
    store: &Store,
    mail: OutboxMail,
    outcome: std::result::Result<(), Failure>,
    backoff: Backoff,
) -> Result<OutboxMail> {
    store
        .write(move |tx| {
            let Some(mut m) = OUTBOX.get(tx, mail.id.as_bytes())? else {
                return Ok(mail.clone());
            };
            if let Some(at) = m.next_attempt_at {
                QUEUE.delete(tx, &queue_key(at, &m.id))?;
            }
            let now = Utc::now();
            m.attempts += 1;
            match outcome.clone() {
                Ok(()) => {
                    m.status = MailStatus::Sent;
                    m.sent_at = Some(now);
                    m.next_attempt_at = None;
                    m.last_error = None;
                }
                Err(f) if f.permanent || m.attempts >= backoff.max_attempts => {
                    m.status = MailStatus::Failed;
                    m.next_attempt_at = None;
                    m.last_error = Some(f.message);
                }
                Err(f) => {
                    let wait = chrono::Duration::from_std(backoff.wait(m.attempts))
                        .unwrap_or(chrono::Duration::hours(1));
                    let at = now + wait;
                    m.next_attempt_at = Some(at);
                    m.last_error = Some(f.message);
                    QUEUE.put(tx, &queue_key(at, &m.id), &[])?;
                }
            }
            OUTBOX.put(tx, m.id.as_bytes(), &m)?;
            Ok(m)
        })
        .await
}

/// The worker: sends due mails one at a time, in the order they became due, until the
/// process stops. Sleeps until the next mail is due or [`Outbox::wake`] is called.
pub async fn run(store: Store, outbox: Outbox, sender: Arc<dyn Deliver>, backoff: Backoff) {
    loop {
        let batch = match due(&store, Utc::now()) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the mail outbox; trying again in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        for mail in &batch {
            let outcome = sender.deliver(mail).await;
            let failed = outcome.as_ref().err().cloned();
            match record(&store, mail.clone(), outcome, backoff).await {
                Ok(m) => match (m.status, failed) {
                    (MailStatus::Sent, _) => {
                        tracing::info!(id = %m.id, kind = %m.kind, attempts = m.attempts, "mail sent")
                    }
                    (MailStatus::Failed, Some(f)) => {
                        tracing::error!(id = %m.id, kind = %m.kind, attempts = m.attempts, error = %f.message, "mail failed for good")
                    }
                    (_, f) => {
                        tracing::warn!(id = %m.id, kind = %m.kind, attempts = m.attempts,
                            error = %f.map(|f| f.message).unwrap_or_default(),
                            next = ?m.next_attempt_at, "mail not sent; will retry")
                    }
                },
                Err(e) => tracing::warn!(error = %e, "cannot record a mail attempt"),
            }
        }
        if batch.len() >= BATCH {
            continue;
        }
        let wait = match next_due(&store) {
            Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or(Duration::ZERO),
            Ok(None) => Duration::from_secs(3600),
            Err(_) => Duration::from_secs(5),
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = outbox.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use std::sync::Mutex;

    /// Answers each attempt with the next scripted outcome (then success), and records
    /// what it was given.
    struct Script {
        outcomes: Mutex<Vec<std::result::Result<(), Failure>>>,
        seen: Mutex<Vec<String>>,
    }

    impl Deliver for Script {
        fn deliver<'a>(
            &'a self,
            mail: &'a OutboxMail,
        ) -> Pin<Box<dyn Future<Output = std::result::Result<(), Failure>> + Send + 'a>> {
            self.seen.lock().unwrap().push(mail.to.clone());
            let next = {
                let mut o = self.outcomes.lock().unwrap();
                if o.is_empty() { Ok(()) } else { o.remove(0) }
            };
            Box::pin(async move { next })
        }
    }

    fn mail(to: &str) -> NewMail {
        NewMail {
            kind: "invitation",
            network_id: Some("12345678".into()),
            user_id: None,
            to: to.into(),
            subject: "s".into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_worker_retries_temporary_failures_and_gives_up_on_permanent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), &StoreConfig::default()).unwrap();
        let (a, b) = store
            .write(|tx| {
                Ok((
                    enqueue(tx, mail("a@example.org"), "outpost.test")?,
                    enqueue(tx, mail("b@example.org"), "outpost.test")?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(a.message_id, format!("<{}@outpost.test>", a.id));
        let script = Arc::new(Script {
            outcomes: Mutex::new(vec![
                Err(Failure {
                    permanent: false,
                    message: "451 try later".into(),
                }),
                Err(Failure {
                    permanent: true,
                    message: "550 no such user".into(),
                }),
            ]),
            seen: Mutex::new(Vec::new()),
        });
        let outbox = Outbox::default();
        let backoff = Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(1),
            max_attempts: 5,
        };
        let worker = tokio::spawn(run(store.clone(), outbox.clone(), script.clone(), backoff));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let (ma, mb) = loop {
            let (ma, mb) = store
                .read(|tx| Ok((get(tx, &a.id)?.unwrap(), get(tx, &b.id)?.unwrap())))
                .unwrap();
            if ma.status != MailStatus::Queued || std::time::Instant::now() > deadline {
                break (ma, mb);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        worker.abort();
        // a: 451 first, then sent on the retry after the back-off.
        assert_eq!(ma.status, MailStatus::Sent, "{ma:?}");
        assert_eq!(ma.attempts, 2);
        assert!(ma.sent_at.is_some() && ma.last_error.is_none());
        // b: 550, failed for good after one attempt, with the server's answer.
        assert_eq!(mb.status, MailStatus::Failed);
        assert_eq!(mb.attempts, 1);
        assert_eq!(mb.last_error.as_deref(), Some("550 no such user"));
        assert_eq!(
            *script.seen.lock().unwrap(),
            vec!["a@example.org", "b@example.org", "a@example.org"]
        );
        // Nothing is left in the queue; the list shows both, newest first.
        assert!(
            due(&store, Utc::now() + chrono::Duration::days(1))
                .unwrap()
                .is_empty()
        );
        let all = store.read(|tx| list(tx, None, None, None, 10)).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].id, b.id);
        let failed = store
            .read(|tx| list(tx, Some(MailStatus::Failed), Some("12345678"), None, 10))
            .unwrap();
        assert_eq!(failed.len(), 1);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            max_attempts: 20,
        };
        assert_eq!(b.wait(1), Duration::from_secs(30));
        assert_eq!(b.wait(2), Duration::from_secs(60));
        assert_eq!(b.wait(5), Duration::from_secs(480));
        assert_eq!(b.wait(8), Duration::from_secs(3600));
        assert_eq!(b.wait(40), Duration::from_secs(3600));
    }
}
