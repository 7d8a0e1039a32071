//! Where finished retention files go: the [`Sink`] interface and the local folder sink.
//!
//! The exporter writes into the retention folder (`messages/`, `attachments/`). When a
//! file is finished — a journal file rotated and its checksum manifest written, or an
//! attachment saved — the exporter hands it to the configured [`Pipeline`]: a list of
//! steps run in order, each taking the file and returning what is left of it locally
//! (the local sink keeps it as it is; an encryption step returns the `.age` file it made
//! in its place; an upload step returns `None` once the upload is confirmed and the
//! local copy removed). A step that fails is retried with backoff by the exporter, so
//! every step must be idempotent: running it again on the same file (after a crash or a
//! failed attempt) must do no harm.
//!
//! Nothing of the hand-over is kept in the store: what still waits is what is still in
//! the folder. At start-up the exporter hands every finished file found in the folder
//! ([`finished_files`]) to the pipeline again, so a crash between rotation and delivery
//! loses nothing.

pub mod age;
pub mod local;
pub mod s3;
pub mod setup;

use anyhow::Result;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

pub use local::LocalSink;

/// What a finished file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A rotated journal file (`messages/<base>-<timestamp>.jsonl`).
    Journal,
    /// The checksum manifest of a rotated journal file (`<file>.sha256`, the format of
    /// `sha256sum`), handed over after its journal file.
    Manifest,
    /// A decrypted attachment (`attachments/<guid>/<name>`).
    Attachment,
}

/// A finished file in the retention folder.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Where the file is now.
    pub path: PathBuf,
    /// Its path relative to the retention folder, `/`-separated (`messages/…`,
    /// `attachments/…`): the object key under a bucket's folder prefix.
    pub relative: String,
    pub kind: FileKind,
    /// Bytes.
    pub size: u64,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// A future a sink step returns.
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<Finished>>> + Send + 'a>>;

/// One step of the hand-over of finished files.
pub trait Sink: Send + Sync {
    /// A short name for logs and events (`local`, `age`, `s3`).
    fn name(&self) -> &'static str;

    /// Take a finished file. Resolve to what remains locally for the next step (the same
    /// file, a replacement, or `None` when nothing is left), or fail: the exporter then
    /// pauses, raises a critical event and calls again with the same file later.
    fn deliver<'a>(&'a self, file: Finished) -> StepFuture<'a>;
}

/// The configured steps, run in order.
#[derive(Clone)]
pub struct Pipeline {
    steps: Vec<Arc<dyn Sink>>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline::new(vec![Arc::new(LocalSink)])
    }
}

impl Pipeline {
    pub fn new(steps: Vec<Arc<dyn Sink>>) -> Pipeline {
        Pipeline { steps }
    }

    /// Add a step at the end (encryption before upload: push in that order).
    pub fn push(&mut self, step: Arc<dyn Sink>) {
        self.steps.push(step);
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.steps.iter().map(|s| s.name()).collect()
    }

    /// Run every step on `file`; the error names the step that failed.
    pub async fn deliver(&self, file: Finished) -> Result<Option<Finished>> {
        let mut current = Some(file);
        for step in &self.steps {
            let Some(f) = current.take() else { break };
            let what = f.relative.clone();
            current = step.deliver(f).await.map_err(|e| {
                e.context(format!("the {} sink could not take {what}", step.name()))
            })?;
        }
        Ok(current)
    }
}

/// Hex SHA-256 of a file, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// Describe an existing file of the retention folder as finished.
pub fn finished(root: &Path, relative: &str, kind: FileKind) -> std::io::Result<Finished> {
    let path = root.join(relative);
    let (sha256, size) = sha256_file(&path)?;
    Ok(Finished {
        path,
        relative: relative.to_string(),
        kind,
        size,
        sha256,
    })
}

/// The finished journal files and their manifests in `root/messages` (rotated: they
/// have a manifest), oldest first, each journal file before its manifest. The journal
/// file being written has no manifest and is not listed. Files a step replaced (such
/// as `.age` files) are the steps' business and not listed.
pub fn finished_files(root: &Path) -> std::io::Result<Vec<Finished>> {
    let dir = root.join("messages");
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    names.sort();
    let mut out = Vec::new();
    for n in &names {
        let Some(journal) = n.strip_suffix(".sha256") else {
            continue;
        };
        if names.iter().any(|m| m == journal) {
            out.push(finished(
                root,
                &format!("messages/{journal}"),
                FileKind::Journal,
            )?);
        }
        out.push(finished(
            root,
            &format!("messages/{n}"),
            FileKind::Manifest,
        )?);
    }
    Ok(out)
}
