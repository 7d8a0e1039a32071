//! Group commit: many write operations, one durable transaction.
//!
//! Writers hand an operation (a closure over a redb write transaction) to the
//! committer thread and await its result. The thread drains whatever is queued (up to
//! `max_ops`), applies every operation in one transaction, commits it durably (fsync,
//! quick-repair on) and only then answers each caller — so an acknowledgement always
//! means the write is on disk, and under load one fsync covers thousands of writes.
//!
//! Operations are `FnMut` and must be pure functions of the database state: when one
//! fails, the transaction is aborted, the failing operation gets its error, and the
//! rest are applied again in a fresh transaction. A failure never takes others' writes
//! down with it and never commits half an operation.

use super::table::store_err;
use crate::error::{Error, Result};
use crate::metrics;
use redb::{Database, WriteTransaction};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;
use tokio::sync::oneshot;

/// A queued write: applied inside a transaction, then told how the commit went.
pub(crate) trait Op: Send {
    /// Apply to `tx`; false if the operation failed (its error is kept for `finish`).
    fn apply(&mut self, tx: &WriteTransaction) -> bool;
    /// Deliver the result: the operation's own error, the commit's error, or its value.
    fn finish(self: Box<Self>, commit: Result<()>);
}

/// Called on the committer thread, in commit order, once an operation's write is durable.
pub(crate) type OnCommit<R> = Box<dyn FnOnce(&R) + Send>;

struct TypedOp<F, R> {
    f: F,
    out: Option<Result<R>>,
    reply: oneshot::Sender<Result<R>>,
    on_commit: Option<OnCommit<R>>,
}

impl<F, R> Op for TypedOp<F, R>
where
    F: FnMut(&WriteTransaction) -> Result<R> + Send,
    R: Send,
{
    fn apply(&mut self, tx: &WriteTransaction) -> bool {
        let r = (self.f)(tx);
        let ok = r.is_ok();
        self.out = Some(r);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<()>) {
        let result = match (self.out, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => {
                if let Some(hook) = self.on_commit {
                    hook(&v);
                }
                Ok(v)
            }
            (Some(Ok(_)), Err(e)) => Err(e),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Err(Error::internal("a write was never applied")),
        };
        // The caller may have gone (its request was dropped); the write stands anyway.
        let _ = self.reply.send(result);
    }
}

enum Msg {
    Op(Box<dyn Op>),
    Stop(std::sync::mpsc::Sender<()>),
}

/// The handle writers use to reach the committer thread.
#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::Sender<Msg>,
    thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Committer {
    pub fn start(db: Arc<Database>, max_ops: usize) -> Committer {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("outpost-commit".into())
            .spawn(move || run(db, rx, max_ops))
            .expect("spawn the committer thread");
        Committer {
            tx,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
        }
    }

    /// Queue `f` and wait until it is durably committed.
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        F: FnMut(&WriteTransaction) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        self.queue(f, None).await
    }

    /// Queue `f` now (so operations queued one after another commit in that order) and
    /// return a future of its durable result. `on_commit` runs on the committer thread
    /// right after the commit, before the result is handed back, in commit order.
    pub fn queue<R, F>(
        &self,
        f: F,
        on_commit: Option<OnCommit<R>>,
    ) -> impl std::future::Future<Output = Result<R>> + Send + 'static
    where
        F: FnMut(&WriteTransaction) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op = TypedOp {
            f,
            out: None,
            reply,
            on_commit,
        };
        let sent = self.tx.send(Msg::Op(Box::new(op)));
        async move {
            sent.map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
        }
    }

    /// Commit everything queued so far, then stop the thread and wait for it to end
    /// (so it no longer holds the database).
    pub fn stop(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Stop(done)).is_ok() {
            let _ = wait.recv();
        }
        let handle = self.thread.lock().map(|mut h| h.take()).unwrap_or(None);
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn stopped() -> Error {
    Error::unavailable(
        "shutting_down",
        "the store is closing because the appliance is shutting down; retry in a moment",
    )
}

fn run(db: Arc<Database>, rx: mpsc::Receiver<Msg>, max_ops: usize) {
    let mut batch: Vec<Box<dyn Op>> = Vec::new();
    let mut stop: Option<std::sync::mpsc::Sender<()>> = None;
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Op(op) => batch.push(op),
            Msg::Stop(done) => stop = Some(done),
        }
        while stop.is_none() && batch.len() < max_ops {
            match rx.try_recv() {
                Ok(Msg::Op(op)) => batch.push(op),
                Ok(Msg::Stop(done)) => stop = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&db, std::mem::take(&mut batch));
        }
        if let Some(done) = stop.take() {
            // Writes queued after the stop are dropped with the receiver: their callers
            // get `shutting_down`.
            let _ = done.send(());
            return;
        }
    }
}

fn commit_batch(db: &Database, mut ops: Vec<Box<dyn Op>>) {
    let mut failures = 0usize;
    while !ops.is_empty() {
        // After repeated failures, isolate operations so one bad batch cannot go quadratic.
        let chunk = if failures >= 3 { 1 } else { ops.len() };
        let started = Instant::now();
        let mut tx = match db.begin_write() {
            Ok(tx) => tx,
            Err(e) => {
                let err = store_err("starting a transaction", e);
                for op in ops.drain(..) {
                    op.finish(Err(err.clone()));
                }
                return;
            }
        };
        tx.set_quick_repair(true);
        let failed = (0..chunk).find(|&i| !ops[i].apply(&tx));
        match failed {
            Some(i) => {
                let _ = tx.abort();
                let bad = ops.remove(i);
                bad.finish(Ok(()));
                failures += 1;
            }
            None => {
                let result = tx.commit().map_err(|e| store_err("committing", e));
                if let Err(e) = &result {
                    tracing::error!(error = %e, ops = chunk, "commit failed");
                }
                metrics::store::COMMIT_OPS.observe(chunk as f64);
                metrics::store::COMMIT_SECONDS.observe(started.elapsed().as_secs_f64());
                for op in ops.drain(..chunk) {
                    op.finish(result.clone());
                }
            }
        }
    }
}
