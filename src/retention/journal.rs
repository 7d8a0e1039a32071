//! The journal files: `messages/<base>-<UTC timestamp>.jsonl`, appended in batches,
//! fsynced, rotated by size and by time with a SHA-256 manifest per rotated file.
//!
//! A file without a manifest is the one being written. At start-up [`Journal::open`]
//! finds it, cuts off a torn last line (a batch that was being written when the process
//! died: it was never acknowledged, so it comes again from the mailbox) and reads the
//! last record's `seq`: mailbox entries up to that seq are already journalled and are
//! acknowledged without being written again. A failed write (a full disk) is undone by
//! cutting the file back to its last synced length, so a retry never duplicates.
//!
//! The manifest `<file>.sha256` has the format of `sha256sum` (`<hex>  <name>`), so
//! `sha256sum -c` checks a rotated file.

use super::sink::{FileKind, Finished};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How the journal is laid out and rotated.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    pub base_name: String,
    pub max_bytes: u64,
    pub period: Option<Duration>,
}

struct Current {
    name: String,
    file: File,
    /// Bytes synced (the length a failed write is cut back to).
    synced: u64,
    /// Bytes written.
    size: u64,
    opened: Instant,
    /// The hash of everything written, when the file was started by this process.
    hasher: Option<Sha256>,
    /// The directory entry is not yet synced.
    new: bool,
}

/// The journal of the retention folder.
pub struct Journal {
    layout: Layout,
    current: Option<Current>,
}

/// The UTC timestamp part of a new journal file name.
fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ").to_string()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The last `want` complete lines of `f` (of length `len`), and where the complete
/// data ends (after the last `\n`; anything after it is a torn write).
fn tail_lines(f: &mut File, len: u64, want: usize) -> std::io::Result<(Vec<Vec<u8>>, u64)> {
    const PIECE: u64 = 256 * 1024;
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let start = pos.saturating_sub(PIECE);
        let mut piece = vec![0u8; (pos - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut piece)?;
        piece.extend_from_slice(&buf);
        buf = piece;
        pos = start;
        if pos == 0 || buf.iter().filter(|b| **b == b'\n').count() > want {
            break;
        }
    }
    let Some(last_nl) = buf.iter().rposition(|b| *b == b'\n') else {
        return Ok((Vec::new(), pos));
    };
    let end = pos + last_nl as u64 + 1;
    let mut lines: Vec<Vec<u8>> = buf[..last_nl]
        .split(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    // The first piece may start mid-line (unless it is the file's start).
    if pos > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(want);
    Ok((lines.split_off(skip), end))
}

/// The `seq` of a journal line.
fn seq_of(line: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct S {
        seq: u64,
    }
    serde_json::from_slice::<S>(line).ok().map(|s| s.seq)
}

impl Journal {
    /// Open the journal in `layout.root` (creating `messages/` and `attachments/`).
    /// Returns it and the seqs of the last `tail` records of the newest journal file:
    /// the entries that may have been journalled but not yet acknowledged.
    pub fn open(layout: Layout, tail: usize) -> std::io::Result<(Journal, HashSet<u64>)> {
        let dir = layout.root.join("messages");
        std::fs::create_dir_all(&dir)?;
        std::fs::create_dir_all(layout.root.join("attachments"))?;
        let mut names: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&format!("{}-", layout.base_name)))
            .collect();
        names.sort();
        let journals: Vec<&String> = names.iter().filter(|n| n.ends_with(".jsonl")).collect();
        let mut seen = HashSet::new();
        let mut current = None;
        // The newest journal file says where the journal stopped; if it has no manifest
        // it is the one to go on writing.
        if let Some(newest) = journals.last() {
            let path = dir.join(newest);
            let mut f = OpenOptions::new().read(true).write(true).open(&path)?;
            let len = f.metadata()?.len();
            let (lines, end) = tail_lines(&mut f, len, tail)?;
            seen.extend(lines.iter().filter_map(|l| seq_of(l)));
            let has_manifest = names.iter().any(|n| *n == format!("{newest}.sha256"));
            if !has_manifest {
                if end < len {
                    f.set_len(end)?;
                    f.sync_data()?;
                    tracing::warn!(file = %path.display(), cut = len - end, "retention: cut a torn last line off the journal (it was never acknowledged and comes again)");
                }
                f.seek(SeekFrom::Start(end))?;
                // Rotation by time counts from the file's creation, as its name says.
                let age = chrono::NaiveDateTime::parse_from_str(
                    newest
                        .trim_start_matches(&format!("{}-", layout.base_name))
                        .trim_end_matches(".jsonl"),
                    "%Y%m%dT%H%M%S%3fZ",
                )
                .ok()
                .and_then(|t| (chrono::Utc::now().naive_utc() - t).to_std().ok())
                .unwrap_or_default();
                current = Some(Current {
                    name: newest.to_string(),
                    file: f,
                    synced: end,
                    size: end,
                    opened: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
                    hasher: None,
                    new: false,
                });
            }
        }
        Ok((Journal { layout, current }, seen))
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The name of the file being written, if any.
    pub fn current_name(&self) -> Option<&str> {
        self.current.as_ref().map(|c| c.name.as_str())
    }

    fn start_file(&mut self) -> std::io::Result<&mut Current> {
        if self.current.is_none() {
            let dir = self.layout.root.join("messages");
            let mut name = format!("{}-{}.jsonl", self.layout.base_name, stamp());
            while dir.join(&name).exists() {
                std::thread::sleep(Duration::from_millis(1));
                name = format!("{}-{}.jsonl", self.layout.base_name, stamp());
            }
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(dir.join(&name))?;
            self.current = Some(Current {
                name,
                file,
                synced: 0,
                size: 0,
                opened: Instant::now(),
                hasher: Some(Sha256::new()),
                new: true,
            });
        }
        Ok(self.current.as_mut().expect("just set"))
    }

    /// Append `bytes` (whole lines) and make them durable. On error the file is cut
    /// back to what was durable before, so the same batch can be written again.
    pub fn append_durable(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.layout.root.join("messages");
        let c = self.start_file()?;
        if c.size != c.synced {
            // An earlier attempt failed part-way.
            c.file.set_len(c.synced)?;
            c.size = c.synced;
            c.hasher = None;
        }
        let r = (|| {
            c.file.write_all(bytes)?;
            c.size += bytes.len() as u64;
            c.file.sync_data()?;
            if c.new {
                sync_dir(&dir)?;
                c.new = false;
            }
            Ok(())
        })();
        match r {
            Ok(()) => {
                c.synced = c.size;
                if let Some(h) = c.hasher.as_mut() {
                    h.update(bytes);
                }
                Ok(())
            }
            Err(e) => {
                // Best effort now; the next attempt cuts again if this fails.
                if c.file.set_len(c.synced).is_ok() {
                    c.size = c.synced;
                }
                c.hasher = None;
                Err(e)
            }
        }
    }

    /// Whether the file being written is due for rotation (by size or by time).
    pub fn due(&self) -> bool {
        let Some(c) = &self.current else { return false };
        if c.size == 0 {
            return false;
        }
        c.size >= self.layout.max_bytes
            || self.layout.period.is_some_and(|p| c.opened.elapsed() >= p)
    }

    /// Close the file being written and write its manifest; returns both as finished
    /// files (journal first). The next append starts a new file.
    pub fn rotate(&mut self) -> std::io::Result<Vec<Finished>> {
        let Some(c) = self.current.take() else {
            return Ok(Vec::new());
        };
        let dir = self.layout.root.join("messages");
        let path = dir.join(&c.name);
        let r = (|| {
            c.file.sync_all()?;
            let (sha, size) = match c.hasher.clone() {
                Some(h) if c.size == c.synced => (hex::encode(h.finalize()), c.size),
                _ => super::sink::sha256_file(&path)?,
            };
            let manifest = format!("{sha}  {}\n", c.name);
            let mname = format!("{}.sha256", c.name);
            let tmp = dir.join(format!(".{mname}.tmp"));
            {
                let mut f = File::create(&tmp)?;
                f.write_all(manifest.as_bytes())?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, dir.join(&mname))?;
            sync_dir(&dir)?;
            let msha = hex::encode(Sha256::digest(manifest.as_bytes()));
            Ok(vec![
                Finished {
                    path: path.clone(),
                    relative: format!("messages/{}", c.name),
                    kind: FileKind::Journal,
                    size,
                    sha256: sha,
                },
                Finished {
                    path: dir.join(&mname),
                    relative: format!("messages/{mname}"),
                    kind: FileKind::Manifest,
                    size: manifest.len() as u64,
                    sha256: msha,
                },
            ])
        })();
        if r.is_err() {
            self.current = Some(c);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(root: &Path, max: u64) -> Layout {
        Layout {
            root: root.to_path_buf(),
            base_name: "receivedMessages".into(),
            max_bytes: max,
            period: None,
        }
    }

    #[test]
    fn resume_cuts_torn_tail_and_rotates_with_manifest() {
        let d = tempfile::tempdir().unwrap();
        let (mut j, seen) = Journal::open(layout(d.path(), 1 << 20), 10).unwrap();
        assert!(seen.is_empty());
        j.append_durable(b"{\"seq\":1}\n{\"seq\":2}\n").unwrap();
        let name = j.current_name().unwrap().to_string();
        drop(j);
        // A torn write after the last durable batch.
        let p = d.path().join("messages").join(&name);
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"seq\":3,\"mess").unwrap();
        drop(f);
        let (mut j, seen) = Journal::open(layout(d.path(), 30), 1).unwrap();
        assert_eq!(seen, HashSet::from([2]));
        assert_eq!(std::fs::read(&p).unwrap(), b"{\"seq\":1}\n{\"seq\":2}\n");
        j.append_durable(b"{\"seq\":3}\n").unwrap();
        assert!(j.due());
        let done = j.rotate().unwrap();
        assert_eq!(done.len(), 2);
        let m = std::fs::read_to_string(&done[1].path).unwrap();
        assert_eq!(m, format!("{}  {name}\n", done[0].sha256));
        assert_eq!(
            done[0].sha256,
            super::super::sink::sha256_file(&p).unwrap().0
        );
        let (j, seen) = Journal::open(layout(d.path(), 30), 10).unwrap();
        assert_eq!(seen, HashSet::from([1, 2, 3]));
        assert!(j.current_name().is_none());
    }
}
