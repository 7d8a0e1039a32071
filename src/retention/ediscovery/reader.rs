//! Reading the retention folder for an export: the journal files (plain and sealed),
//! the records of a time range, and the saved attachments.

use super::{ExportError, Progress, record_time};
use crate::retention::record::Record;
use crate::retention::seal::{Opener, SEALED_SUFFIX};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The journal files of a retention folder, and the means to read them.
pub struct Journal {
    folder: PathBuf,
    files: Vec<PathBuf>,
    opener: Option<Opener>,
}

/// One selected record and its line as the journal holds it.
pub struct Entry {
    pub record: Record,
    pub line: String,
    pub time: DateTime<Utc>,
}

/// The records of a range, in time order.
pub struct Selected {
    pub records: Vec<Entry>,
    /// Journal files read.
    pub files: usize,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

fn is_journal(name: &str) -> bool {
    name.ends_with(".jsonl") || name.ends_with(&format!(".jsonl{SEALED_SUFFIX}"))
}

impl Journal {
    /// The journal files under `folder/messages`, oldest first (their names carry the
    /// UTC time they were started). Sealed files need `identity`.
    pub fn open(folder: &Path, identity: Option<&Path>) -> Result<Journal, ExportError> {
        let dir = folder.join("messages");
        let rd = std::fs::read_dir(&dir).map_err(|e| {
            ExportError::NoJournal(format!(
                "no journal in {}: cannot read {} ({e}); give the retention folder with --dir",
                folder.display(),
                dir.display()
            ))
        })?;
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_str().is_some_and(is_journal))
            .map(|e| e.path())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ExportError::NoJournal(format!(
                "{} holds no journal file (*.jsonl or *.jsonl.age)",
                dir.display()
            )));
        }
        let opener = match identity {
            Some(p) => Some(
                Opener::from_identity_file(p).map_err(|e| ExportError::Identity(e.to_string()))?,
            ),
            None => None,
        };
        if opener.is_none()
            && let Some(sealed) = files
                .iter()
                .find(|f| f.to_string_lossy().ends_with(SEALED_SUFFIX))
        {
            return Err(ExportError::Identity(format!(
                "{} is sealed with age: give the site's identity file with --identity FILE",
                sealed.display()
            )));
        }
        Ok(Journal {
            folder: folder.to_path_buf(),
            files,
            opener,
        })
    }

    /// The journal files, oldest first.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn open_file(&self, path: &Path) -> Result<Box<dyn Read>, ExportError> {
        if path.to_string_lossy().ends_with(SEALED_SUFFIX) {
            let opener = self.opener.as_ref().ok_or_else(|| {
                ExportError::Identity(format!(
                    "{} is sealed with age: give --identity FILE",
                    path.display()
                ))
            })?;
            opener
                .open(path)
                .map_err(|e| ExportError::Identity(e.to_string()))
        } else {
            let f = std::fs::File::open(path)
                .map_err(|e| ExportError::Read(format!("cannot read {}: {e}", path.display())))?;
            Ok(Box::new(f))
        }
    }

    /// The records whose server time is in `[from, to)`, each once (by `message_id`), in
    /// time order (journal order for equal times).
    pub fn select(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Selected, ExportError> {
        let mut records = Vec::new();
        let mut seen = HashSet::new();
        let total = self.files.len();
        for (i, path) in self.files.iter().enumerate() {
            let reader = BufReader::with_capacity(1 << 20, self.open_file(path)?);
            let mut lines = reader.split(b'\n').peekable();
            let mut n = 0usize;
            let mut kept = 0usize;
            while let Some(line) = lines.next() {
                n += 1;
                let line = line.map_err(|e| {
                    ExportError::Read(format!("cannot read {} (line {n}): {e}", path.display()))
                })?;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let record: Record = match serde_json::from_slice(&line) {
                    Ok(r) => r,
                    // The file being written may end in a line cut short by a crash.
                    Err(_) if lines.peek().is_none() => continue,
                    Err(e) => {
                        return Err(ExportError::Read(format!(
                            "{} line {n} is not a journal record: {e}",
                            path.display()
                        )));
                    }
                };
                let time = record_time(&record);
                if time < from || time >= to || !seen.insert(record.message_id.clone()) {
                    continue;
                }
                kept += 1;
                records.push(Entry {
                    record,
                    line: String::from_utf8_lossy(&line).into_owned(),
                    time,
                });
            }
            progress(Progress::File {
                index: i + 1,
                total,
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                kept,
            });
        }
        records.sort_by(|a, b| a.time.cmp(&b.time).then(a.record.seq.cmp(&b.record.seq)));
        Ok(Selected {
            records,
            files: total,
            from,
            to,
        })
    }

    /// The saved copy of an attachment (`attachments/<guid>/<name>`, or its `.age`),
    /// with its size; `None` when it is not in the folder (uploaded, or never saved).
    pub fn attachment(&self, relative: &str) -> Result<Option<Vec<u8>>, ExportError> {
        let rel = relative.trim_start_matches('/');
        if rel.split('/').any(|p| p == "..") {
            return Ok(None);
        }
        let plain = self.folder.join(rel);
        let mut out = Vec::new();
        if plain.is_file() {
            std::fs::File::open(&plain)
                .and_then(|mut f| f.read_to_end(&mut out))
                .map_err(|e| ExportError::Read(format!("cannot read {}: {e}", plain.display())))?;
            return Ok(Some(out));
        }
        let sealed = self.folder.join(format!("{rel}{SEALED_SUFFIX}"));
        if sealed.is_file() {
            let mut r = self.open_file(&sealed)?;
            r.read_to_end(&mut out)
                .map_err(|e| ExportError::Read(format!("cannot open {}: {e}", sealed.display())))?;
            return Ok(Some(out));
        }
        Ok(None)
    }
}
