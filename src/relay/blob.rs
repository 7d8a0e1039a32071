//! Attachments (PRODUCT.md F6): client-encrypted files uploaded in chunks,
//! stored content-addressed on disk, downloaded with range requests, and removed
//! when no live envelope references them.
//!
//! The record (`blobs` table) tracks the declared size, the bytes received so far
//! (uploads resume at that offset), the SHA-256 once complete, and how many live
//! envelopes reference it. Bytes live under `<data_dir>/blobs/`: `partial/<id>`
//! while uploading, then `sha256/<first two hex>/<hash>` (identical blobs share one
//! file; a counter per hash says when the file may go). Who may download is kept in
//! `blob_access`: the uploader and every recipient of an envelope naming the blob.

use crate::error::{Error, Result};
use crate::store::{self, Key, RawTable, Store, Table, Tx, schema};
use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const BLOBS: Table<Blob> = Table::new(schema::BLOBS);
const ACCESS: RawTable = RawTable::new(schema::BLOB_ACCESS);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Blob {
    pub id: String,
    pub owner_user_id: String,
    pub size: u64,
    pub received: u64,
    pub sha256: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Live envelopes referencing the blob.
    pub refs: u64,
    /// Some envelope referenced it once (so it goes as soon as `refs` is 0 again).
    pub referenced: bool,
}

impl Blob {
    pub fn complete(&self) -> bool {
        self.sha256.is_some()
    }

    /// The state a client sees (PROTOCOL.md §6).
    pub fn view(&self, chunk_max: usize) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "size": self.size,
            "offset": self.received,
            "complete": self.complete(),
            "sha256": self.sha256,
            "chunk_max": chunk_max,
        })
    }
}

fn not_found() -> Error {
    Error::not_found(
        "blob_not_found",
        "there is no such attachment, or you may not see it",
    )
}

fn file_counter(hash: &str) -> String {
    format!("blobfile.{hash}")
}

/// The blob store: the folder and the uploads in progress.
pub struct Blobs {
    root: PathBuf,
    busy: Mutex<HashSet<String>>,
    pub max_size: u64,
    pub chunk_max: usize,
}

impl Blobs {
    pub fn new(data_dir: &Path, max_size: u64, chunk_max: usize) -> Result<Blobs> {
        let root = data_dir.join("blobs");
        for sub in ["partial", "sha256"] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| {
                Error::unavailable(
                    "blob_store_error",
                    format!("cannot create {}: {e}", root.join(sub).display()),
                )
            })?;
        }
        Ok(Blobs {
            root,
            busy: Mutex::new(HashSet::new()),
            max_size,
            chunk_max,
        })
    }

    fn partial(&self, id: &str) -> PathBuf {
        self.root.join("partial").join(id)
    }

    /// Where the bytes of a complete blob with this hash live.
    pub fn content_path(&self, hash: &str) -> PathBuf {
        self.root.join("sha256").join(&hash[..2]).join(hash)
    }

    /// Start an upload of `size` bytes.
    pub async fn create(&self, store: &Store, owner: &str, size: u64) -> Result<Blob> {
        if size > self.max_size {
            return Err(Error::new(
                crate::error::Kind::TooLarge,
                "file_too_large",
                format!("attachments are at most {} bytes here", self.max_size),
            )
            .with_details(serde_json::json!({ "max_bytes": self.max_size })));
        }
        let b = Blob {
            id: uuid::Uuid::new_v4().simple().to_string(),
            owner_user_id: owner.to_string(),
            size,
            received: 0,
            sha256: None,
            created_at: Utc::now(),
            refs: 0,
            referenced: false,
        };
        std::fs::File::create(self.partial(&b.id)).map_err(io_err)?;
        let rec = b.clone();
        store
            .write(move |tx| {
                BLOBS.put(tx, rec.id.as_bytes(), &rec)?;
                ACCESS.put(tx, &access_key(&rec.id, &rec.owner_user_id), &[])
            })
            .await?;
        if size == 0 {
            return self.finish(store, b).await;
        }
        Ok(b)
    }

    /// A blob `user_id` may see.
    pub fn get_for(&self, store: &Store, id: &str, user_id: &str) -> Result<Blob> {
        store.read(|tx| {
            if !may_access(tx, id, user_id)? {
                return Err(not_found());
            }
            BLOBS.get(tx, id.as_bytes())?.ok_or_else(not_found)
        })
    }

    /// Append `bytes` at `offset` (which must be the bytes received so far).
    pub async fn append(
        &self,
        store: &Store,
        id: &str,
        user_id: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<Blob> {
        let _guard = self.claim(id)?;
        let b = store.read(|tx| BLOBS.get(tx, id.as_bytes()))?;
        let b = b
            .filter(|b| b.owner_user_id == user_id)
            .ok_or_else(not_found)?;
        if b.complete() {
            if offset == b.size && bytes.is_empty() {
                return Ok(b);
            }
            return Err(Error::conflict(
                "upload_complete",
                "this attachment is already complete; nothing more can be added",
            ));
        }
        if offset != b.received {
            return Err(Error::conflict(
                "wrong_offset",
                format!(
                    "this upload continues at byte {}, not {offset}; send the chunk that starts there",
                    b.received
                ),
            )
            .with_details(serde_json::json!({ "expected_offset": b.received })));
        }
        if bytes.len() > self.chunk_max {
            return Err(Error::new(
                crate::error::Kind::TooLarge,
                "chunk_too_large",
                format!("a chunk is at most {} bytes", self.chunk_max),
            ));
        }
        if offset + bytes.len() as u64 > b.size {
            return Err(Error::invalid(
                "beyond_size",
                format!(
                    "this chunk would end at byte {} but the attachment was declared as {} bytes",
                    offset + bytes.len() as u64,
                    b.size
                ),
            ));
        }
        let path = self.partial(id);
        let data = bytes.to_vec();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().write(true).open(&path)?;
            f.seek(SeekFrom::Start(offset))?;
            f.write_all(&data)?;
            f.sync_data()
        })
        .await
        .map_err(|e| Error::internal(format!("writing a chunk: {e}")))?
        .map_err(io_err)?;
        let len = bytes.len() as u64;
        let id2 = id.to_string();
        let b = store
            .write(move |tx| {
                let mut b = BLOBS.get(tx, id2.as_bytes())?.ok_or_else(not_found)?;
                b.received = offset + len;
                BLOBS.put(tx, id2.as_bytes(), &b)?;
                Ok(b)
            })
            .await?;
        if b.received == b.size {
            return self.finish(store, b).await;
        }
        Ok(b)
    }

    fn claim(&self, id: &str) -> Result<BusyGuard<'_>> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if !busy.insert(id.to_string()) {
            return Err(Error::conflict(
                "upload_in_progress",
                "another chunk of this attachment is being written; wait for it and resume",
            ));
        }
        Ok(BusyGuard {
            blobs: self,
            id: id.to_string(),
        })
    }

    /// Hash a fully received upload and move it to its content address.
    async fn finish(&self, store: &Store, b: Blob) -> Result<Blob> {
        let partial = self.partial(&b.id);
        let root = self.root.clone();
        let hash = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            use sha2::{Digest, Sha256};
            let mut f = std::fs::File::open(&partial)?;
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            let hash = hex::encode(h.finalize());
            let dir = root.join("sha256").join(&hash[..2]);
            std::fs::create_dir_all(&dir)?;
            let dest = dir.join(&hash);
            if dest.exists() {
                std::fs::remove_file(&partial)?;
            } else {
                std::fs::rename(&partial, &dest)?;
            }
            Ok(hash)
        })
        .await
        .map_err(|e| Error::internal(format!("finishing an upload: {e}")))?
        .map_err(io_err)?;
        let id = b.id.clone();
        store
            .write(move |tx| {
                let mut b = BLOBS.get(tx, id.as_bytes())?.ok_or_else(not_found)?;
                if b.sha256.is_none() {
                    b.sha256 = Some(hash.clone());
                    store::counter_add(tx, &file_counter(&hash), 1)?;
                    BLOBS.put(tx, id.as_bytes(), &b)?;
                }
                Ok(b)
            })
            .await
    }

    /// Remove blobs nobody needs any more: referenced once and no longer, or never
    /// sent and older than `unsent_after`, or incomplete and older than that. Returns
    /// how many records went.
    pub async fn collect_garbage(
        &self,
        store: &Store,
        unsent_after: chrono::Duration,
    ) -> Result<u64> {
        let cutoff = Utc::now() - unsent_after;
        let dead: Vec<Blob> = store.read(|tx| {
            let mut out = Vec::new();
            BLOBS.scan_prefix(tx, &[], None, false, |_, b: Blob| {
                if b.refs == 0 && (b.referenced || b.created_at < cutoff) {
                    out.push(b);
                }
                Ok(ControlFlow::Continue(()))
            })?;
            Ok(out)
        })?;
        if dead.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = dead.iter().map(|b| b.id.clone()).collect();
        let gone: Vec<(String, Option<String>, bool)> = store
            .write(move |tx| {
                let mut gone = Vec::new();
                for id in &ids {
                    let Some(b) = BLOBS.get(tx, id.as_bytes())? else {
                        continue;
                    };
                    if b.refs > 0 {
                        continue;
                    }
                    BLOBS.delete(tx, id.as_bytes())?;
                    ACCESS.delete_prefix(tx, &Key::new().s(id).into_bytes())?;
                    let mut last = false;
                    if let Some(h) = &b.sha256 {
                        store::counter_add(tx, &file_counter(h), -1)?;
                        last = store::counter_get(tx, file_counter(h).as_str())? <= 0;
                    }
                    gone.push((b.id.clone(), b.sha256.clone(), last));
                }
                Ok(gone)
            })
            .await?;
        for (id, hash, last) in &gone {
            match hash {
                Some(h) if *last => {
                    let _ = std::fs::remove_file(self.content_path(h));
                }
                Some(_) => {}
                None => {
                    let _ = std::fs::remove_file(self.partial(id));
                }
            }
        }
        Ok(gone.len() as u64)
    }
}

struct BusyGuard<'a> {
    blobs: &'a Blobs,
    id: String,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let mut busy = self.blobs.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.remove(&self.id);
    }
}

fn io_err(e: std::io::Error) -> Error {
    Error::unavailable(
        "blob_store_error",
        format!("the attachment store failed: {e}"),
    )
}

fn access_key(blob_id: &str, user_id: &str) -> Vec<u8> {
    Key::new().s(blob_id).s(user_id).into_bytes()
}

/// Whether `user_id` may read blob `id`.
pub fn may_access<'a>(tx: impl Into<Tx<'a>>, id: &str, user_id: &str) -> Result<bool> {
    if id.is_empty() || id.contains('\0') {
        return Ok(false);
    }
    Ok(ACCESS.get(tx, &access_key(id, user_id))?.is_some())
}

/// A complete blob `user_id` may attach (its uploader or a recipient of it).
pub fn attachable<'a>(tx: impl Into<Tx<'a>> + Copy, id: &str, user_id: &str) -> Result<bool> {
    if !may_access(tx, id, user_id)? {
        return Ok(false);
    }
    Ok(BLOBS.get(tx, id.as_bytes())?.is_some_and(|b| b.complete()))
}

/// Grant `users` access to `blob_ids` (the recipients of an envelope).
pub fn grant(tx: &WriteTransaction, blob_ids: &[String], users: &[String]) -> Result<()> {
    for b in blob_ids {
        for u in users {
            ACCESS.put(tx, &access_key(b, u), &[])?;
        }
    }
    Ok(())
}

/// One more live envelope references each of `blob_ids`.
pub fn add_refs(tx: &WriteTransaction, blob_ids: &[String]) -> Result<()> {
    for id in blob_ids {
        if let Some(mut b) = BLOBS.get(tx, id.as_bytes())? {
            b.refs += 1;
            b.referenced = true;
            BLOBS.put(tx, id.as_bytes(), &b)?;
        }
    }
    Ok(())
}

/// A second blob with the content of the complete blob `source_id` (the content file is
/// shared, and counted, as for two uploads of the same bytes): `new_id`, owned by the
/// same user, not yet referenced. The retention benchmark gives each of its file
/// messages its own attachment this way.
pub fn duplicate(tx: &WriteTransaction, source_id: &str, new_id: &str) -> Result<Blob> {
    let src = BLOBS
        .get(tx, source_id.as_bytes())?
        .filter(Blob::complete)
        .ok_or_else(|| {
            Error::not_found("blob_not_found", format!("no complete blob {source_id}"))
        })?;
    let b = Blob {
        id: new_id.to_string(),
        refs: 0,
        referenced: false,
        created_at: Utc::now(),
        ..src
    };
    if let Some(h) = &b.sha256 {
        store::counter_add(tx, &file_counter(h), 1)?;
    }
    BLOBS.put(tx, new_id.as_bytes(), &b)?;
    Ok(b)
}

/// A live envelope referencing each of `blob_ids` is gone.
pub fn drop_refs(tx: &WriteTransaction, blob_ids: &[String]) -> Result<()> {
    for id in blob_ids {
        if let Some(mut b) = BLOBS.get(tx, id.as_bytes())? {
            b.refs = b.refs.saturating_sub(1);
            BLOBS.put(tx, id.as_bytes(), &b)?;
        }
    }
    Ok(())
}
