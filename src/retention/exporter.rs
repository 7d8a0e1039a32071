//! The exporter worker: reads every compliance device's mailbox in order, decrypts,
//! journals, fsyncs, and only then acknowledges.
//!
//! One round takes up to `retention.batch` waiting entries of one compliance device
//! (reading the mailbox through the relay's typed interface, inside the process),
//! decrypts them on every core, saves the attachments of file messages (fetched from
//! the blob store, decrypted, fsynced under `attachments/<guid>/<name>`), appends the
//! records to the journal in one write and one fsync, and then acknowledges the entries
//! up to the batch's last seq (a durable commit of the relay). A crash between the fsync
//! and the acknowledgement leaves the batch both in the journal and in the mailbox: at
//! start-up the seqs at the journal's tail are known ([`super::journal::Journal::open`])
//! and those entries are acknowledged without being written again, so every message is
//! in the journal exactly once.
//!
//! A failed write (full disk) or a failed sink pauses the exporter: a critical event,
//! retries with doubling pauses up to `retention.retry_max_secs`, nothing acknowledged
//! meanwhile; the relay keeps accepting (entries wait in the mailbox) and the exporter
//! catches up once the write succeeds.

use super::events::Severity;
use super::journal::{Journal, Layout};
use super::record::{self, FileRecord, Record};
use super::sink::{FileKind, Finished};
use super::{Retention, metrics as m};
use crate::client::content::FileRef;
use crate::client::crypto::{DeviceKeys, FileDecryptor};
use crate::relay::conversation::ConversationKind;
use crate::relay::frame::{Delivery, Kind};
use crate::relay::mailbox::{self, Body, Waiting};
use crate::store::{Table, schema};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A compliance device whose keys are open.
pub struct Opened {
    pub network_id: String,
    pub device_id: String,
    pub keys: DeviceKeys,
}

const BLOBS: Table<crate::relay::blob::Blob> = Table::new(schema::BLOBS);

/// What a decrypted entry needs from the directory, cached for the exporter's life.
#[derive(Default)]
struct Names {
    users: HashMap<String, String>,
    ed25519: HashMap<String, Option<String>>,
}

impl Names {
    fn user(&mut self, r: &Retention, uid: &str) -> String {
        if let Some(n) = self.users.get(uid) {
            return n.clone();
        }
        let n = r
            .relay
            .roster
            .account(uid)
            .ok()
            .flatten()
            .map(|a| a.user.username.clone())
            .unwrap_or_else(|| uid.to_string());
        self.users.insert(uid.to_string(), n.clone());
        n
    }

    fn ed25519(&mut self, r: &Retention, uid: &str, did: &str) -> Option<String> {
        if let Some(k) = self.ed25519.get(did) {
            return k.clone();
        }
        let k = r
            .store
            .read(|tx| crate::directory::device::get(tx, uid, did))
            .ok()
            .and_then(|d| d.ed25519);
        self.ed25519.insert(did.to_string(), k.clone());
        k
    }
}

/// An entry ready to decrypt (the directory look-ups done).
struct Prepared {
    w: Waiting,
    sender: String,
    sender_ed25519: Option<String>,
    receiver: Option<String>,
    actor: Option<String>,
}

/// Decrypt one entry into its record (and the file to save, for file messages).
fn decrypt(keys: &DeviceKeys, p: Prepared) -> (Record, Option<FileRef>) {
    let Prepared {
        w,
        sender,
        sender_ed25519,
        receiver,
        actor,
    } = p;
    let times = (w.item.server_time, w.item.expires_at);
    match w.item.body {
        Body::Envelope(e) => {
            let kind = e.kind;
            let mut r = Record::base(
                e.client_msg_id.clone(),
                w.seq,
                record::msgtype_of_kind(kind),
                kind.as_str(),
                &sender,
                &e.conversation_id,
                times,
            );
            r.sender_device = Some(e.sender_device_id.clone());
            r.receiver = receiver;
            r.bor = (e.bor_secs > 0).then_some(e.bor_secs);
            r.forwarded = e.forwarded;
            let d = Delivery {
                seq: w.seq,
                server_time: w.item.server_time,
                conversation_id: e.conversation_id,
                sender_user_id: e.sender_user_id,
                sender_device_id: e.sender_device_id,
                client_msg_id: e.client_msg_id,
                kind,
                expires_at: w.item.expires_at,
                bor_secs: e.bor_secs,
                forwarded: e.forwarded,
                sealed_key: w.sealed,
                ciphertext: e.ciphertext,
                attachments: e.attachments,
                signature: e.signature,
            };
            let opened = match &sender_ed25519 {
                Some(k) => crate::client::envelope::open_delivery(keys, &d, k)
                    .map_err(|e| format!("cannot open the envelope: {e}")),
                None => Err("the sender device's key is unknown".to_string()),
            };
            match opened {
                Ok(plain) => {
                    let content: serde_json::Value =
                        serde_json::from_slice(&plain).unwrap_or_else(|_| {
                            serde_json::Value::String(String::from_utf8_lossy(&plain).into_owned())
                        });
                    let file = (kind == Kind::File)
                        .then(|| content.get("file").cloned())
                        .flatten()
                        .and_then(|f| serde_json::from_value::<FileRef>(f).ok());
                    r.set_content(kind, content);
                    (r, file)
                }
                Err(err) => {
                    m::MESSAGES_RX_FAILED.inc();
                    r.error = Some(err);
                    (r, None)
                }
            }
        }
        Body::Membership(ev) => {
            let mut r = Record::base(
                format!("event-{}", w.seq),
                w.seq,
                record::msgtype_of_change(ev.change),
                "membership",
                actor.as_deref().unwrap_or(&ev.actor_user_id),
                &ev.conversation_id,
                times,
            );
            r.control = serde_json::to_value(&ev).ok();
            (r, None)
        }
        Body::Receipt(rc) => {
            let mut r = Record::base(
                format!("event-{}", w.seq),
                w.seq,
                record::msgtype::MESSAGE_ATTRIBUTES,
                "receipt",
                &rc.reader_user_id,
                &rc.conversation_id,
                times,
            );
            r.content = serde_json::to_value(&rc).ok();
            (r, None)
        }
    }
}

/// Fetch, decrypt and durably save one attachment; fills `rec.file`. An I/O error on
/// the retention folder is returned (the batch is retried); a missing or undecryptable
/// blob is recorded in the record.
fn save_attachment(
    r: &Retention,
    f: &FileRef,
    rec: &mut Record,
    saved: &mut Vec<Finished>,
) -> std::io::Result<()> {
    let mut fr = FileRecord {
        guid: f.blob_id.clone(),
        filename: f.name.clone(),
        size: f.size,
        mime: f.mime.clone(),
        sha256: f.sha256.clone(),
        ..Default::default()
    };
    let fail = |fr: &mut FileRecord, why: String| {
        m::FILES_SAVED_FAILED.inc();
        fr.error = Some(why);
    };
    let blob = r
        .store
        .read(|tx| BLOBS.get(tx, f.blob_id.as_bytes()))
        .ok()
        .flatten();
    let guid = f.blob_id.replace(['/', '\\', '.'], "_");
    match (blob.and_then(|b| b.sha256), f.file_key()) {
        (None, _) => fail(
            &mut fr,
            "the attachment is no longer on the appliance".into(),
        ),
        (_, Err(e)) => fail(&mut fr, format!("the file key is unusable: {e}")),
        (Some(hash), Ok(key)) => {
            let rel = format!("attachments/{guid}/{}", f.safe_name());
            let dir = r.folder.join("attachments").join(&guid);
            std::fs::create_dir_all(&dir)?;
            let dest = r.folder.join(&rel);
            let part = dir.join(format!(".{}.part", f.safe_name()));
            match std::fs::File::open(r.relay.blobs.content_path(&hash)) {
                Err(e) => fail(&mut fr, format!("cannot read the attachment: {e}")),
                Ok(mut src) => {
                    let mut out = std::fs::File::create(&part)?;
                    let mut dec = Some(FileDecryptor::new(&key));
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut plain = Vec::with_capacity(buf.len());
                    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
                    let mut bytes = 0u64;
                    let mut bad = None;
                    loop {
                        let n = src.read(&mut buf)?;
                        plain.clear();
                        let step = match dec.take() {
                            Some(d) if n == 0 => d.finish(&mut plain).map(|_| ()),
                            Some(mut d) => {
                                let s = d.push(&buf[..n], &mut plain);
                                dec = Some(d);
                                s
                            }
                            None => Ok(()),
                        };
                        if let Err(e) = step {
                            bad = Some(format!("the attachment does not decrypt: {e}"));
                            break;
                        }
                        sha2::Digest::update(&mut hasher, &plain);
                        bytes += plain.len() as u64;
                        out.write_all(&plain)?;
                        if n == 0 {
                            break;
                        }
                    }
                    match bad {
                        Some(why) => {
                            drop(out);
                            let _ = std::fs::remove_file(&part);
                            fail(&mut fr, why);
                        }
                        None => {
                            // Made durable with the batch: one syncfs (below)
                            // covers every file and folder entry of the batch.
                            drop(out);
                            std::fs::rename(&part, &dest)?;
                            let sha = hex::encode(sha2::Digest::finalize(hasher));
                            m::FILES_SAVED.inc();
                            m::FILES_SAVED_BYTES.inc_by(bytes);
                            saved.push(Finished {
                                path: dest,
                                relative: rel.clone(),
                                kind: FileKind::Attachment,
                                size: bytes,
                                sha256: sha.clone(),
                            });
                            fr.localfilename = Some(rel);
                            fr.plaintext_sha256 = Some(sha);
                        }
                    }
                }
            }
        }
    }
    rec.file = Some(fr);
    Ok(())
}

/// Flush everything written to the filesystem holding `folder` (the batch's
/// attachments and their folder entries) in one call instead of two fsyncs a file.
fn sync_filesystem(folder: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(folder)?;
    // SAFETY: syncfs takes an open file descriptor, which `f` holds for the call.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// One batch, on a blocking thread: decrypt (in parallel), save attachments, append
/// and fsync. Returns the attachments saved.
fn journal_batch(
    r: &Retention,
    journal: &Mutex<Journal>,
    opened: &Opened,
    prepared: Vec<Prepared>,
) -> std::io::Result<Vec<Finished>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let n = prepared.len();
    let mut results: Vec<(Record, Option<FileRef>)> = Vec::with_capacity(n);
    if threads == 1 || n < 64 {
        results.extend(prepared.into_iter().map(|p| decrypt(&opened.keys, p)));
    } else {
        let per = n.div_ceil(threads);
        let mut chunks: Vec<Vec<Prepared>> = Vec::new();
        let mut it = prepared.into_iter();
        loop {
            let c: Vec<Prepared> = it.by_ref().take(per).collect();
            if c.is_empty() {
                break;
            }
            chunks.push(c);
        }
        let keys = &opened.keys;
        let outs: Vec<Vec<(Record, Option<FileRef>)>> = std::thread::scope(|s| {
            let hs: Vec<_> = chunks
                .into_iter()
                .map(|c| s.spawn(move || c.into_iter().map(|p| decrypt(keys, p)).collect()))
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("decrypting does not panic"))
                .collect()
        });
        for o in outs {
            results.extend(o);
        }
    }
    let mut saved = Vec::new();
    let mut lines = Vec::with_capacity(n * 700);
    for (mut rec, file) in results {
        if let Some(f) = file {
            save_attachment(r, &f, &mut rec, &mut saved)?;
        }
        rec.network = Some(opened.network_id.clone());
        rec.to_line(&mut lines);
    }
    if !saved.is_empty() {
        sync_filesystem(&r.folder)?;
    }
    journal
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .append_durable(&lines)?;
    Ok(saved)
}

/// The exporter's state between rounds.
struct Worker {
    r: Arc<Retention>,
    journal: Arc<Mutex<Journal>>,
    /// Seqs that may be journalled but not acknowledged (from the journal's tail).
    seen: HashSet<u64>,
    /// Finished files waiting for the sink pipeline.
    pending: VecDeque<Finished>,
    names: Names,
    backoff: Duration,
    paused: Option<String>,
}

impl Worker {
    fn pause(&mut self, kind: &str, why: String) {
        m::WATCHDOG_FAILURES.inc();
        if self.paused.is_none() {
            self.r.events.emit(
                super::EXPORTER,
                Severity::Critical,
                kind,
                format!("the exporter is paused and retries: {why}"),
            );
        }
        self.r.set_status(|s| s.paused = Some(why.clone()));
        self.paused = Some(why);
    }

    fn resumed(&mut self) {
        if let Some(why) = self.paused.take() {
            self.r.events.emit(
                super::EXPORTER,
                Severity::Normal,
                "resumed",
                format!("the exporter resumed (it had paused: {why})"),
            );
            self.r.set_status(|s| s.paused = None);
        }
        self.backoff = Duration::from_millis(500);
    }

    async fn wait_backoff(&mut self) {
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(self.r.config.retry_max_secs));
    }

    /// Hand every pending finished file to the pipeline; false if a step failed.
    async fn deliver_pending(&mut self) -> bool {
        let pipeline = self.r.pipeline();
        while let Some(f) = self.pending.front().cloned() {
            match pipeline.deliver(f).await {
                Ok(_) => {
                    self.pending.pop_front();
                }
                Err(e) => {
                    self.pause("sink_failed", format!("{e:#}"));
                    return false;
                }
            }
        }
        true
    }

    fn prepare(&mut self, page: Vec<Waiting>) -> Vec<Prepared> {
        let r = self.r.clone();
        page.into_iter()
            .map(|w| {
                let (sender, sender_ed25519, receiver, actor) = match &w.item.body {
                    Body::Envelope(e) => {
                        let sender = self.names.user(&r, &e.sender_user_id);
                        let k = self
                            .names
                            .ed25519(&r, &e.sender_user_id, &e.sender_device_id);
                        let receiver = r
                            .relay
                            .roster
                            .conversation(&e.conversation_id)
                            .ok()
                            .flatten()
                            .filter(|c| c.kind == ConversationKind::Direct)
                            .and_then(|c| {
                                c.member_ids()
                                    .find(|u| *u != e.sender_user_id)
                                    .map(str::to_string)
                            })
                            .map(|u| self.names.user(&r, &u));
                        (sender, k, receiver, None)
                    }
                    Body::Membership(ev) => {
                        let a = self.names.user(&r, &ev.actor_user_id);
                        (a.clone(), None, None, Some(a))
                    }
                    Body::Receipt(rc) => (rc.reader_user_id.clone(), None, None, None),
                };
                Prepared {
                    w,
                    sender,
                    sender_ed25519,
                    receiver,
                    actor,
                }
            })
            .collect()
    }

    /// One batch of one device: true if there was work.
    async fn round(&mut self, opened: &Arc<Opened>) -> Result<bool, ()> {
        let r = self.r.clone();
        let (r2, dev) = (r.clone(), opened.device_id.clone());
        let page = tokio::task::spawn_blocking(move || {
            mailbox::page(
                &r2.store,
                &r2.relay.index,
                &dev,
                0,
                r2.config.batch,
                crate::relay::now_ms(),
            )
        })
        .await
        .unwrap_or_else(|e| Err(crate::error::Error::internal(e.to_string())));
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "retention: reading the compliance mailbox failed");
                return Err(());
            }
        };
        if page.is_empty() {
            return Ok(false);
        }
        let up_to = page.last().map(|w| w.seq).unwrap_or(0);
        let total = page.len() as u64;
        let fresh: Vec<Waiting> = page
            .into_iter()
            .filter(|w| !self.seen.contains(&w.seq))
            .collect();
        let count = fresh.len() as u64;
        let fresh_seqs: Vec<u64> = fresh.iter().map(|w| w.seq).collect();
        if count > 0 {
            let prepared = self.prepare(fresh);
            let (rc, j, o) = (r.clone(), self.journal.clone(), opened.clone());
            let res = tokio::task::spawn_blocking(move || journal_batch(&rc, &j, &o, prepared))
                .await
                .map_err(|e| std::io::Error::other(format!("the exporter thread failed: {e}")))
                .and_then(|x| x);
            match res {
                Ok(saved) => {
                    m::MESSAGES_RX.inc_by(count);
                    m::MESSAGES_SAVED.inc_by(count);
                    self.pending.extend(saved);
                }
                Err(e) => {
                    m::MESSAGES_SAVED_FAILED.inc_by(count);
                    self.pause(
                        "write_failed",
                        format!("cannot write the journal in {}: {e}", r.folder.display()),
                    );
                    return Err(());
                }
            }
        }
        if let Err(e) = r.relay.ack(&opened.device_id, up_to).await {
            tracing::warn!(error = %e, "retention: acknowledging journalled entries failed; they are skipped when they come again");
            // They are journalled: remember them so they are not written twice.
            self.seen.extend(fresh_seqs);
            return Err(());
        }
        if count < total {
            // Entries journalled before a restart: acknowledged now, never needed again.
            self.seen.retain(|s| *s > up_to);
        }
        r.set_status(|s| {
            s.journalled += count;
            s.last_seq = up_to;
        });
        Ok(true)
    }

    fn rotate_if_due(&mut self) {
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if !j.due() {
            return;
        }
        let rotated = j.rotate();
        drop(j);
        match rotated {
            Ok(done) => {
                if let Some(f) = done.first() {
                    tracing::info!(file = %f.relative, bytes = f.size, "retention: rotated the journal file");
                }
                self.pending.extend(done);
            }
            Err(e) => {
                self.pause("write_failed", format!("cannot rotate the journal: {e}"));
            }
        }
        let name = self
            .journal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .current_name()
            .map(str::to_string);
        self.r.set_status(|s| s.current_file = name);
    }
}

/// Every attachment in the folder except partial ones (`.<name>.part`).
fn attachments_in(root: &Path) -> Vec<Finished> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(root.join("attachments")) else {
        return out;
    };
    for d in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for f in files.flatten() {
            let (Ok(g), Ok(n)) = (d.file_name().into_string(), f.file_name().into_string()) else {
                continue;
            };
            if n.starts_with('.') {
                continue;
            }
            if let Ok(fin) =
                super::sink::finished(root, &format!("attachments/{g}/{n}"), FileKind::Attachment)
            {
                out.push(fin);
            }
        }
    }
    out
}

/// Run the exporter until the process ends.
pub async fn run(r: Arc<Retention>) {
    let layout = Layout {
        root: r.folder.clone(),
        base_name: r.config.base_name.clone(),
        max_bytes: r.config.rotation_size_kib.saturating_mul(1024),
        period: r.config.rotation_period(),
    };
    let mut backoff = Duration::from_millis(500);
    let mut reported = false;
    let (journal, seen) = loop {
        let (l, tail) = (layout.clone(), r.config.batch * 2 + 64);
        match tokio::task::spawn_blocking(move || Journal::open(l, tail)).await {
            Ok(Ok(x)) => break x,
            Ok(Err(e)) => {
                if !reported {
                    r.events.emit(
                        super::EXPORTER,
                        Severity::Critical,
                        "write_failed",
                        format!(
                            "cannot open the retention folder {}: {e}",
                            r.folder.display()
                        ),
                    );
                    reported = true;
                }
            }
            Err(e) => tracing::error!(error = %e, "retention: opening the journal failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(r.config.retry_max_secs));
    };
    let root = r.folder.clone();
    let mut pending: VecDeque<Finished> = tokio::task::spawn_blocking(move || {
        let mut v = super::sink::finished_files(&root).unwrap_or_default();
        v.extend(attachments_in(&root));
        v
    })
    .await
    .unwrap_or_default()
    .into();
    // Files the local sink keeps need no second hand-over.
    if r.pipeline().names() == ["local"] {
        pending.clear();
    }
    let mut w = Worker {
        r: r.clone(),
        journal: Arc::new(Mutex::new(journal)),
        seen,
        pending,
        names: Names::default(),
        backoff: Duration::from_millis(500),
        paused: None,
    };
    let name = w
        .journal
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .current_name()
        .map(str::to_string);
    r.set_status(|s| {
        s.running = true;
        s.current_file = name;
    });
    r.events.emit(
        super::EXPORTER,
        Severity::Normal,
        "started",
        format!(
            "the exporter started, journalling to {}",
            r.folder.display()
        ),
    );
    loop {
        if !w.deliver_pending().await {
            w.wait_backoff().await;
            continue;
        }
        let devices = r.open_devices().await;
        let mut busy = false;
        let mut failed = false;
        for d in &devices {
            match w.round(d).await {
                Ok(b) => busy |= b,
                Err(()) => failed = true,
            }
        }
        if failed {
            w.wait_backoff().await;
            continue;
        }
        if w.paused.is_some() {
            w.resumed();
        }
        w.rotate_if_due();
        if !busy {
            tokio::select! {
                _ = r.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}
