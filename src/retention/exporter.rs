//! The exporter worker: reads every compliance device's mailbox in order, decrypts,
//! journals, fsyncs, and only then acknowledges.
//!
//! One round takes up to `retention.batch` waiting entries of one compliance device
//! (reading the mailbox through the relay's typed interface, inside the process),
//! decrypts them on every core (the envelopes' signatures checked in one Ed25519 batch,
//! the content keys opened by [`crate::client::hpke_open`]), saves the attachments of
//! file messages (fetched from the blob store, decrypted, fsynced under
//! `attachments/<guid>/<name>`), appends the records to the journal in one write and one
//! fsync, and then acknowledges the entries up to the batch's last seq (a durable commit
//! of the relay). While a batch is journalled and acknowledged, the device's next batch
//! is already being read and decrypted, so the cores stay on the decryption, which is
//! most of the work (one X25519 per message). A crash between the fsync
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

/// What a decrypted entry needs from the directory, cached for the exporter's life
/// (usernames, device keys and direct conversations' members never change); each map
/// starts again empty when it reaches [`NAMES_MAX`] entries.
#[derive(Default)]
struct Names {
    users: HashMap<String, String>,
    ed25519: HashMap<String, Option<String>>,
    /// Direct conversations' two members; `None` for rooms, groups and unknown ids.
    direct: HashMap<String, Option<[String; 2]>>,
}

const NAMES_MAX: usize = 100_000;

fn bounded<V>(map: &mut HashMap<String, V>) -> &mut HashMap<String, V> {
    if map.len() >= NAMES_MAX {
        map.clear();
    }
    map
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
        bounded(&mut self.users).insert(uid.to_string(), n.clone());
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
        bounded(&mut self.ed25519).insert(did.to_string(), k.clone());
        k
    }

    /// The member of direct conversation `conv` who is not `sender` (None for rooms).
    fn direct_peer(&mut self, r: &Retention, conv: &str, sender: &str) -> Option<String> {
        if !self.direct.contains_key(conv) {
            let members = r
                .relay
                .roster
                .conversation(conv)
                .ok()
                .flatten()
                .filter(|c| c.kind == ConversationKind::Direct)
                .and_then(|c| {
                    let mut ids = c.member_ids().map(str::to_string);
                    Some([ids.next()?, ids.next().unwrap_or_default()])
                });
            bounded(&mut self.direct).insert(conv.to_string(), members);
        }
        self.direct
            .get(conv)?
            .as_ref()?
            .iter()
            .find(|u| *u != sender && !u.is_empty())
            .cloned()
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

/// What is left to do for a record after [`start`]: open its envelope, or nothing.
enum Sealed {
    Envelope {
        d: Box<Delivery>,
        sender_ed25519: Option<String>,
    },
    Ready,
}

/// The record of one entry as far as it goes without opening the envelope.
fn start(p: Prepared) -> (Record, Sealed) {
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
            let d = Box::new(d);
            (r, Sealed::Envelope { d, sender_ed25519 })
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
            (r, Sealed::Ready)
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
            (r, Sealed::Ready)
        }
    }
}

/// Put an opened envelope's content in its record; the file to save, for file messages.
fn finish(r: &mut Record, kind: Kind, opened: Result<Vec<u8>, String>) -> Option<FileRef> {
    match opened {
        Ok(plain) => {
            let content: serde_json::Value = serde_json::from_slice(&plain).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&plain).into_owned())
            });
            let file = (kind == Kind::File)
                .then(|| content.get("file").cloned())
                .flatten()
                .and_then(|f| serde_json::from_value::<FileRef>(f).ok());
            r.set_content(kind, content);
            file
        }
        Err(err) => {
            m::MESSAGES_RX_FAILED.inc();
            r.error = Some(err);
            None
        }
    }
}

/// Decrypt entries into their records (and the files to save), checking the envelopes'
/// signatures in one batch.
fn decrypt(keys: &DeviceKeys, chunk: Vec<Prepared>) -> Vec<(Record, Option<FileRef>)> {
    let started: Vec<(Record, Sealed)> = chunk.into_iter().map(start).collect();
    let batch: Vec<(&Delivery, &str)> = started
        .iter()
        .filter_map(|(_, s)| match s {
            Sealed::Envelope {
                d,
                sender_ed25519: Some(k),
            } => Some((d.as_ref(), k.as_str())),
            _ => None,
        })
        .collect();
    let mut opened = crate::client::envelope::open_deliveries(keys, &batch).into_iter();
    started
        .into_iter()
        .map(|(mut r, s)| match s {
            Sealed::Ready => (r, None),
            Sealed::Envelope { d, sender_ed25519 } => {
                let res = match sender_ed25519 {
                    Some(_) => opened
                        .next()
                        .unwrap_or(Err(crate::client::crypto::CryptoError::Decrypt))
                        .map_err(|e| format!("cannot open the envelope: {e}")),
                    None => Err("the sender device's key is unknown".to_string()),
                };
                let file = finish(&mut r, d.kind, res);
                (r, file)
            }
        })
        .collect()
}

/// Decrypt on every core (up to 8), keeping the entries' order.
fn decrypt_all(keys: &DeviceKeys, prepared: Vec<Prepared>) -> Vec<(Record, Option<FileRef>)> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let n = prepared.len();
    if threads == 1 || n < 64 {
        return decrypt(keys, prepared);
    }
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
    std::thread::scope(|s| {
        let hs: Vec<_> = chunks
            .into_iter()
            .map(|c| s.spawn(move || decrypt(keys, c)))
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("decrypting does not panic"))
            .collect()
    })
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

/// Write one decrypted batch, on a blocking thread: save its attachments, append its
/// records and fsync. Returns the attachments saved.
fn journal_batch(
    r: &Retention,
    journal: &Mutex<Journal>,
    opened: &Opened,
    results: Vec<(Record, Option<FileRef>)>,
) -> std::io::Result<Vec<Finished>> {
    let mut saved = Vec::new();
    let mut lines = Vec::with_capacity(results.len() * 700);
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

/// A batch read from a compliance mailbox and decrypted, not yet journalled.
struct Decoded {
    /// The last seq read: acknowledged once the batch is journalled.
    up_to: u64,
    /// Entries read, including those already journalled before a restart.
    total: u64,
    /// The entries to journal, in seq order.
    results: Vec<(Record, Option<FileRef>)>,
}

/// Read up to `retention.batch` entries after `after` (0: from the first waiting),
/// look up their senders, and decrypt those not in `seen`. Blocking.
fn read_and_decrypt(
    r: &Retention,
    opened: &Opened,
    names: &Mutex<Names>,
    seen: &HashSet<u64>,
    after: u64,
) -> crate::error::Result<Decoded> {
    let page = mailbox::page(
        &r.store,
        &r.relay.index,
        &opened.device_id,
        after,
        r.config.batch,
        crate::relay::now_ms(),
    )?;
    let up_to = page.last().map(|w| w.seq).unwrap_or(after);
    let total = page.len() as u64;
    let fresh: Vec<Waiting> = page
        .into_iter()
        .filter(|w| !seen.contains(&w.seq))
        .collect();
    let prepared = prepare(
        r,
        &mut names.lock().unwrap_or_else(|p| p.into_inner()),
        fresh,
    );
    Ok(Decoded {
        up_to,
        total,
        results: decrypt_all(&opened.keys, prepared),
    })
}

/// Look up what each entry's record names (sender, receiver, keys), through the cache.
fn prepare(r: &Retention, names: &mut Names, page: Vec<Waiting>) -> Vec<Prepared> {
    page.into_iter()
        .map(|w| {
            let (sender, sender_ed25519, receiver, actor) = match &w.item.body {
                Body::Envelope(e) => {
                    let sender = names.user(r, &e.sender_user_id);
                    let k = names.ed25519(r, &e.sender_user_id, &e.sender_device_id);
                    let receiver = names
                        .direct_peer(r, &e.conversation_id, &e.sender_user_id)
                        .map(|u| names.user(r, &u));
                    (sender, k, receiver, None)
                }
                Body::Membership(ev) => {
                    let a = names.user(r, &ev.actor_user_id);
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

/// The read-and-decrypt of a device's next batch, running while the batch before it is
/// journalled and acknowledged.
type Prefetch = tokio::task::JoinHandle<crate::error::Result<Decoded>>;

/// Attachments handed to the sink pipeline together.
const DELIVER_AT_ONCE: usize = 8;

/// The exporter's state between rounds.
struct Worker {
    r: Arc<Retention>,
    journal: Arc<Mutex<Journal>>,
    /// Seqs that may be journalled but not acknowledged (from the journal's tail).
    seen: Arc<HashSet<u64>>,
    /// Finished files waiting for the sink pipeline.
    pending: VecDeque<Finished>,
    names: Arc<Mutex<Names>>,
    /// Each device's next batch, being read and decrypted.
    prefetch: HashMap<String, Prefetch>,
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
    /// Attachments go [`DELIVER_AT_ONCE`] at a time (each is sealed and made durable
    /// on its own); journal files and their manifests one by one, in order (a sealed
    /// journal's manifest replaces the plain one).
    async fn deliver_pending(&mut self) -> bool {
        let pipeline = self.r.pipeline();
        while !self.pending.is_empty() {
            let together = self
                .pending
                .iter()
                .take(DELIVER_AT_ONCE)
                .take_while(|f| f.kind == FileKind::Attachment)
                .count()
                .max(1);
            let group: Vec<Finished> = self.pending.drain(..together).collect();
            let results =
                futures_util::future::join_all(group.iter().cloned().map(|f| pipeline.deliver(f)))
                    .await;
            let mut failed = None;
            for (f, res) in group.into_iter().zip(results).rev() {
                if let Err(e) = res {
                    self.pending.push_front(f);
                    failed = Some(e);
                }
            }
            if let Some(e) = failed {
                self.pause("sink_failed", format!("{e:#}"));
                return false;
            }
        }
        true
    }

    /// Start reading and decrypting `opened`'s batch after `after`.
    fn spawn_read(&self, opened: &Arc<Opened>, after: u64) -> Prefetch {
        let (r, o, names, seen) = (
            self.r.clone(),
            opened.clone(),
            self.names.clone(),
            self.seen.clone(),
        );
        tokio::task::spawn_blocking(move || read_and_decrypt(&r, &o, &names, &seen, after))
    }

    /// One batch of one device: true if there was work. The device's next batch is read
    /// and decrypted while this one is journalled and acknowledged.
    async fn round(&mut self, opened: &Arc<Opened>) -> Result<bool, ()> {
        let r = self.r.clone();
        let handle = match self.prefetch.remove(&opened.device_id) {
            Some(h) => h,
            None => self.spawn_read(opened, 0),
        };
        let decoded = handle
            .await
            .unwrap_or_else(|e| Err(crate::error::Error::internal(e.to_string())));
        let Decoded {
            up_to,
            total,
            results,
        } = match decoded {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "retention: reading the compliance mailbox failed");
                return Err(());
            }
        };
        if total == 0 {
            return Ok(false);
        }
        let next = self.spawn_read(opened, up_to);
        self.prefetch.insert(opened.device_id.clone(), next);
        let count = results.len() as u64;
        let fresh_seqs: Vec<u64> = results.iter().map(|(rec, _)| rec.seq).collect();
        if count > 0 {
            let (rc, j, o) = (r.clone(), self.journal.clone(), opened.clone());
            let res = tokio::task::spawn_blocking(move || journal_batch(&rc, &j, &o, results))
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
                    // Read again from the first unacknowledged entry after the pause.
                    self.prefetch.remove(&opened.device_id);
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
            // They are journalled: remember them so they are not written twice, and
            // read again from the first unacknowledged entry.
            self.prefetch.remove(&opened.device_id);
            let mut seen = (*self.seen).clone();
            seen.extend(fresh_seqs);
            self.seen = Arc::new(seen);
            return Err(());
        }
        if count < total && !self.seen.is_empty() {
            // Entries journalled before a restart: acknowledged now, never needed again.
            // (The batch being read meanwhile holds only later seqs.)
            let mut seen = (*self.seen).clone();
            seen.retain(|s| *s > up_to);
            self.seen = Arc::new(seen);
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
        seen: Arc::new(seen),
        pending,
        names: Arc::default(),
        prefetch: HashMap::new(),
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
        // A batch read for a device that is no longer open is not journalled later.
        w.prefetch
            .retain(|id, _| devices.iter().any(|d| d.device_id == *id));
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
