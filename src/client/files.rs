//! Encrypted attachments (`docs/PROTOCOL.md` §5.5, §6): encrypt a file while uploading
//! it in chunks (resuming from the blob's offset after an interruption), and download a
//! blob while decrypting and checking it (resuming with `Range` requests). Neither side
//! ever holds more than a chunk in memory.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::api::{ApiClient, ApiError, BlobState};
use super::content::{FileRef, guess_mime};
use super::crypto::{self, BlobSummary, FileDecryptor, FileEncryptor, FileKey};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Largest chunk sent in one `PUT` (smaller if the server says so).
pub const MAX_CHUNK: usize = 8 * 1024 * 1024;
/// How many times an interrupted transfer is resumed before giving up.
const ATTEMPTS: u32 = 5;

/// Called with (bytes done, bytes in all) as a transfer progresses.
pub type Progress<'a> = &'a mut (dyn FnMut(u64, u64) + Send);

fn retryable(e: &ApiError) -> bool {
    match e {
        ApiError::Transport(_) => true,
        ApiError::Server(s) => s.code == "wrong_offset" || s.status == 429 || s.status >= 500,
        ApiError::Decode { .. } => false,
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500 * 2u64.pow(attempt.min(5)))
}

/// Start an upload: generate the file's key, create a blob of the encrypted size. The
/// returned reference has an empty `sha256` until [`upload_prepared`] completes it; save
/// it to resume the upload later.
pub async fn prepare_upload(api: &ApiClient, path: &Path) -> Result<FileRef> {
    let meta = tokio::fs::metadata(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", path.display());
    }
    let size = meta.len();
    let key = FileKey::generate(&mut rand::rng());
    let state = api
        .create_blob(crypto::encrypted_len(size))
        .await
        .context("cannot start the upload")?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    Ok(FileRef {
        blob_id: state.id,
        mime: guess_mime(&name).to_string(),
        name,
        size,
        key: B64.encode(key.key),
        nonce_prefix: B64.encode(key.nonce_prefix),
        sha256: String::new(),
    })
}

/// Encrypt and upload a file in one go.
pub async fn upload_file(api: &ApiClient, path: &Path, progress: Progress<'_>) -> Result<FileRef> {
    let mut file = prepare_upload(api, path).await?;
    upload_prepared(api, path, &mut file, progress).await?;
    Ok(file)
}

enum Pass {
    Done(BlobSummary),
    Retry(anyhow::Error),
}

/// Upload (or resume uploading) the file at `path` into the blob `file` names, then
/// fill in `file.sha256`. The file must not change in between.
pub async fn upload_prepared(
    api: &ApiClient,
    path: &Path,
    file: &mut FileRef,
    progress: Progress<'_>,
) -> Result<()> {
    let key = file.file_key()?;
    let blob_len = crypto::encrypted_len(file.size);
    let mut state = api
        .blob_state(&file.blob_id)
        .await
        .context("cannot read the upload's state")?;
    if state.size != blob_len {
        bail!(
            "blob {} is {} bytes, not the {blob_len} bytes {} encrypts to (has the file changed?)",
            file.blob_id,
            state.size,
            path.display()
        );
    }
    let chunk = state
        .chunk_max
        .and_then(|c| usize::try_from(c).ok())
        .filter(|c| *c > 0)
        .unwrap_or(MAX_CHUNK)
        .min(MAX_CHUNK);
    let mut attempt = 0;
    loop {
        match upload_pass(api, path, &key, file, &mut state, chunk, progress).await? {
            Pass::Done(summary) => {
                let ours = hex::encode(summary.sha256);
                if let Some(theirs) = &state.sha256
                    && !theirs.eq_ignore_ascii_case(&ours)
                {
                    bail!(
                        "the appliance stored a different blob than was sent (SHA-256 {theirs}, sent {ours})"
                    );
                }
                if !state.complete {
                    bail!("the appliance did not report the upload complete");
                }
                file.sha256 = ours;
                return Ok(());
            }
            Pass::Retry(e) if attempt + 1 < ATTEMPTS => {
                tracing::warn!("upload interrupted ({e:#}); resuming");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                state = api
                    .blob_state(&file.blob_id)
                    .await
                    .context("cannot read the upload's state")?;
            }
            Pass::Retry(e) => return Err(e.context("the upload failed")),
        }
    }
}

/// One pass over the file: encrypt from the start (the blob's hash needs every byte),
/// send what the server does not have yet.
async fn upload_pass(
    api: &ApiClient,
    path: &Path,
    key: &FileKey,
    file: &FileRef,
    state: &mut BlobState,
    chunk: usize,
    progress: Progress<'_>,
) -> Result<Pass> {
    let mut input = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut enc = FileEncryptor::new(key);
    let mut buf = vec![0u8; 4 * crypto::SEGMENT_SIZE];
    let mut out: Vec<u8> = Vec::with_capacity(chunk + buf.len() + 64);
    // Blob bytes produced so far; bytes before `state.offset` are already uploaded.
    let mut produced: u64 = 0;
    let mut pending: Vec<u8> = Vec::with_capacity(chunk + buf.len() + 64);
    let mut eof = false;
    let mut summary = None;
    progress(state.offset, state.size);
    loop {
        out.clear();
        if !eof {
            let n = input
                .read(&mut buf)
                .await
                .with_context(|| format!("cannot read {}", path.display()))?;
            if n == 0 {
                eof = true;
                summary = Some(enc.finish(&mut out)?);
                enc = FileEncryptor::new(key);
            } else {
                enc.push(&buf[..n], &mut out)?;
            }
        }
        // Keep only what the server still needs.
        let start = produced;
        produced += out.len() as u64;
        if produced > state.offset {
            let skip = state.offset.saturating_sub(start) as usize;
            pending.extend_from_slice(&out[skip.min(out.len())..]);
        }
        while pending.len() >= chunk || (eof && !pending.is_empty()) {
            let take = pending.len().min(chunk);
            let piece = Bytes::copy_from_slice(&pending[..take]);
            match api.put_blob_chunk(&file.blob_id, state.offset, piece).await {
                Ok(next) => {
                    if next.offset != state.offset + take as u64 {
                        return Ok(Pass::Retry(anyhow!(
                            "the appliance is at offset {} after a chunk ending at {}",
                            next.offset,
                            state.offset + take as u64
                        )));
                    }
                    *state = next;
                    pending.drain(..take);
                    progress(state.offset, state.size);
                }
                Err(e) if retryable(&e) => return Ok(Pass::Retry(e.into())),
                Err(e) => return Err(anyhow!(e).context("the appliance refused a chunk")),
            }
        }
        if eof {
            break;
        }
    }
    let summary = summary.ok_or_else(|| anyhow!("the file ended unexpectedly"))?;
    if summary.plaintext_len != file.size || summary.blob_len != state.size {
        bail!("{} changed during the upload", path.display());
    }
    Ok(Pass::Done(summary))
}

/// Download, decrypt and check a file into `out`. On error, `out` may hold a prefix of
/// the file: discard it (see [`download_file`]).
pub async fn download_to<W: AsyncWrite + Unpin>(
    api: &ApiClient,
    file: &FileRef,
    out: &mut W,
    progress: Progress<'_>,
) -> Result<BlobSummary> {
    let key = file.file_key()?;
    let blob_len = crypto::encrypted_len(file.size);
    let mut dec = FileDecryptor::new(&key);
    let mut plain = Vec::with_capacity(MAX_CHUNK);
    let mut received: u64 = 0;
    let mut attempt = 0;
    progress(0, blob_len);
    'attempts: loop {
        let from = (received > 0).then_some(received);
        let mut dl = match api.download_blob(&file.blob_id, from).await {
            Ok(dl) => dl,
            Err(e) if retryable(&e) && attempt + 1 < ATTEMPTS => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
            Err(e) => return Err(anyhow!(e).context("cannot download the file")),
        };
        if let Some(total) = dl.total
            && total != blob_len
        {
            bail!("the blob is {total} bytes, not the {blob_len} expected");
        }
        // A server that ignores the range sends everything again: skip what we have.
        let mut skip = received.saturating_sub(dl.start);
        if dl.start > received {
            bail!(
                "the appliance answered from byte {} instead of {received}",
                dl.start
            );
        }
        loop {
            let bytes = match dl.chunk().await {
                Ok(Some(b)) => b,
                Ok(None) => break 'attempts,
                Err(e) if attempt + 1 < ATTEMPTS => {
                    tracing::warn!("download interrupted ({e}); resuming");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                    continue 'attempts;
                }
                Err(e) => return Err(anyhow!(e).context("the download was interrupted")),
            };
            let mut piece: &[u8] = &bytes;
            if skip > 0 {
                let s = (skip as usize).min(piece.len());
                piece = &piece[s..];
                skip -= s as u64;
            }
            if piece.is_empty() {
                continue;
            }
            received += piece.len() as u64;
            if received > blob_len {
                bail!("the appliance sent more than the {blob_len} bytes of the blob");
            }
            plain.clear();
            dec.push(piece, &mut plain)
                .context("the file does not decrypt: it was altered or the key is wrong")?;
            out.write_all(&plain)
                .await
                .context("cannot write the file")?;
            progress(received, blob_len);
        }
    }
    plain.clear();
    let summary = dec
        .finish(&mut plain)
        .context("the file does not decrypt: it is truncated, altered, or the key is wrong")?;
    out.write_all(&plain)
        .await
        .context("cannot write the file")?;
    out.flush().await.context("cannot write the file")?;
    check_summary(file, &summary)?;
    Ok(summary)
}

fn check_summary(file: &FileRef, summary: &BlobSummary) -> Result<()> {
    let got = hex::encode(summary.sha256);
    if !got.eq_ignore_ascii_case(file.sha256.trim()) {
        bail!(
            "the file's SHA-256 is {got}, the message says {}",
            file.sha256
        );
    }
    if summary.plaintext_len != file.size {
        bail!(
            "the file has {} bytes, the message says {}",
            summary.plaintext_len,
            file.size
        );
    }
    Ok(())
}

/// Download a file to `dest` (mode 0600), atomically: it appears only once complete and
/// checked; a failed download leaves nothing behind.
pub async fn download_file(
    api: &ApiClient,
    file: &FileRef,
    dest: &Path,
    progress: Progress<'_>,
) -> Result<BlobSummary> {
    let partial = PathBuf::from(format!("{}.partial", dest.display()));
    let _ = tokio::fs::remove_file(&partial).await;
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .await
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let result = async {
        let s = download_to(api, file, &mut f, progress).await?;
        f.sync_all().await.context("cannot write the file")?;
        drop(f);
        tokio::fs::rename(&partial, dest)
            .await
            .with_context(|| format!("cannot write {}", dest.display()))?;
        Ok(s)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    result
}

/// The hex SHA-256 of a file on disk (for checks and tests).
pub async fn sha256_file(path: &Path) -> Result<String> {
    let mut f = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
