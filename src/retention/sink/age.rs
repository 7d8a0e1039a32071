//! The age step of the sink pipeline: each finished file is replaced by `<file>.age`,
//! sealed to the site's recipients ([`crate::retention::seal`]).
//!
//! A journal file `messages/X.jsonl` becomes `messages/X.jsonl.age` with its own
//! manifest `messages/X.jsonl.age.sha256` (`sha256sum` format, covering the sealed file:
//! what is kept or uploaded); the plain journal is then removed. When the plain manifest
//! `messages/X.jsonl.sha256` is handed over next, it is removed too (a hash of the plain
//! text would let anyone confirm a guess of the content) and the sealed manifest goes on
//! in its place. An attachment `attachments/<guid>/<name>` becomes `<name>.age`.
//!
//! Every step is idempotent: a file already sealed passes through, so after a crash
//! [`super::finished_files`] (which lists `X.jsonl.age` through its `.age.sha256`
//! manifest) hands the sealed files on to the next step.

use super::{FileKind, Finished, Sink, StepFuture};
use crate::retention::seal::{Sealer, is_sealed, sealed_name};
use anyhow::Context;
use std::path::Path;

/// Seals every finished file before the next step.
pub struct AgeSink {
    sealer: Sealer,
}

impl AgeSink {
    pub fn new(sealer: Sealer) -> AgeSink {
        AgeSink { sealer }
    }

    fn seal(&self, file: Finished) -> anyhow::Result<Option<Finished>> {
        match file.kind {
            FileKind::Manifest => self.manifest(file),
            FileKind::Journal | FileKind::Attachment => {
                if is_sealed(&file.path) {
                    return Ok(Some(file));
                }
                if !file.path.exists() {
                    // Sealed and removed before a crash: the sealed file is listed on
                    // its own (journal files) or already delivered.
                    let sealed = sealed_name(&file.path);
                    if sealed.exists() {
                        return described(&file, &sealed, file.kind).map(Some);
                    }
                    anyhow::bail!("{} is no longer in the retention folder", file.relative);
                }
                let sealed = self.sealer.seal_file(&file.path)?;
                if file.kind == FileKind::Journal {
                    let manifest = manifest_name(&sealed.path);
                    let name = sealed
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    write_durably(&manifest, format!("{}  {name}\n", sealed.sha256).as_bytes())?;
                }
                remove_durably(&file.path)?;
                Ok(Some(Finished {
                    path: sealed.path,
                    relative: format!("{}{}", file.relative, crate::retention::seal::SEALED_SUFFIX),
                    kind: file.kind,
                    size: sealed.bytes,
                    sha256: sealed.sha256,
                }))
            }
        }
    }

    /// The manifest of a journal file: a sealed one passes; a plain one is replaced
    /// by the sealed file's manifest.
    fn manifest(&self, file: Finished) -> anyhow::Result<Option<Finished>> {
        let Some(journal) = file.relative.strip_suffix(".sha256") else {
            return Ok(Some(file));
        };
        if journal.ends_with(crate::retention::seal::SEALED_SUFFIX) {
            return Ok(Some(file));
        }
        let root_rel = format!("{journal}{}.sha256", crate::retention::seal::SEALED_SUFFIX);
        let sealed_manifest = sibling(&file.path, &root_rel);
        if !sealed_manifest.exists() {
            anyhow::bail!(
                "{} has no sealed journal file beside it ({} is missing)",
                file.relative,
                root_rel
            );
        }
        remove_durably(&file.path)?;
        described(&file, &sealed_manifest, FileKind::Manifest).map(|f| {
            Some(Finished {
                relative: root_rel,
                ..f
            })
        })
    }
}

/// `<path>.sha256`.
fn manifest_name(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".sha256");
    s.into()
}

/// The file `relative` (a path of the retention folder) beside `path`, whose own
/// relative path is a sibling of it.
fn sibling(path: &Path, relative: &str) -> std::path::PathBuf {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    path.with_file_name(name)
}

fn described(like: &Finished, path: &Path, kind: FileKind) -> anyhow::Result<Finished> {
    let (sha256, size) =
        super::sha256_file(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let relative = match like.relative.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{name}"),
        None => name,
    };
    Ok(Finished {
        path: path.to_path_buf(),
        relative,
        kind,
        size,
        sha256,
    })
}

fn write_durably(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = crate::retention::seal::part_name(path);
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn remove_durably(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot flush {}", dir.display()))?;
    }
    Ok(())
}

impl Sink for AgeSink {
    fn name(&self) -> &'static str {
        "age"
    }

    fn deliver<'a>(&'a self, file: Finished) -> StepFuture<'a> {
        Box::pin(async move {
            // Sealing is CPU and disk work: keep it off the async worker threads.
            let this = AgeSink {
                sealer: self.sealer.clone(),
            };
            tokio::task::spawn_blocking(move || this.seal(file))
                .await
                .context("the sealing task failed")?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::sink::{finished, finished_files};

    #[tokio::test]
    async fn a_journal_and_its_manifest_are_replaced_by_sealed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("messages")).unwrap();
        std::fs::write(root.join("messages/r-1.jsonl"), b"{\"message_id\":\"a\"}\n").unwrap();
        std::fs::write(root.join("messages/r-1.jsonl.sha256"), b"x  r-1.jsonl\n").unwrap();
        let id = age::x25519::Identity::generate();
        let step = AgeSink::new(Sealer::new(vec![id.to_public()]).unwrap());
        let j = finished(root, "messages/r-1.jsonl", FileKind::Journal).unwrap();
        let out = step.deliver(j).await.unwrap().unwrap();
        assert_eq!(out.relative, "messages/r-1.jsonl.age");
        assert!(!root.join("messages/r-1.jsonl").exists());
        let m = finished(root, "messages/r-1.jsonl.sha256", FileKind::Manifest).unwrap();
        let out_m = step.deliver(m).await.unwrap().unwrap();
        assert_eq!(out_m.relative, "messages/r-1.jsonl.age.sha256");
        let text = std::fs::read_to_string(&out_m.path).unwrap();
        assert_eq!(text, format!("{}  r-1.jsonl.age\n", out.sha256));
        assert!(!root.join("messages/r-1.jsonl.sha256").exists());
        // After a crash the sealed pair is listed again and passes through unchanged.
        let again = finished_files(root).unwrap();
        let names: Vec<_> = again.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(
            names,
            ["messages/r-1.jsonl.age", "messages/r-1.jsonl.age.sha256"]
        );
        for f in again {
            let rel = f.relative.clone();
            assert_eq!(step.deliver(f).await.unwrap().unwrap().relative, rel);
        }
    }
}
