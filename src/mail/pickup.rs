//! The pickup transport: each mail becomes one complete `.eml` file (RFC 5322) in a
//! folder that another process collects — a mail gateway, a cross-domain transfer.
//!
//! A collector must never see half a mail, and an acknowledged mail must survive a
//! power cut, so each file is written under a hidden temporary name
//! (`.<id>.eml.tmp`), flushed to disk, renamed to `<id>.eml`, and the folder flushed.
//! (lettre's file transport writes the final name directly, so it is not used.) The id
//! is a UUIDv7: names sort in the order the mails were written. Files are mode 0640 and
//! the folder 0750: the mails carry one-time registration links.

use super::SendError;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Writes mails into one folder.
#[derive(Debug, Clone)]
pub(super) struct Pickup {
    dir: PathBuf,
}

impl Pickup {
    /// A writer for `dir`, which is created (with its parents) if missing.
    pub(super) fn new(dir: PathBuf) -> io::Result<Pickup> {
        create_dir(&dir)?;
        Ok(Pickup { dir })
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `message` as a new `.eml` file; returns its path.
    pub(super) async fn write(&self, message: &[u8]) -> Result<PathBuf, SendError> {
        let dir = self.dir.clone();
        let message = message.to_vec();
        let written = tokio::task::spawn_blocking(move || write_atomically(&dir, &message))
            .await
            .map_err(|e| SendError::temporary(format!("the pickup writer stopped: {e}")))?;
        written.map_err(|e| {
            SendError::temporary(format!(
                "cannot write the mail into the pickup folder {}: {e}",
                self.dir.display()
            ))
        })
    }
}

fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o750).create(dir)
}

/// Writes `message` to `<dir>/<uuid>.eml` so that the file appears complete or not at all.
fn write_atomically(dir: &Path, message: &[u8]) -> io::Result<PathBuf> {
    create_dir(dir)?;
    let id = uuid::Uuid::now_v7();
    let tmp = dir.join(format!(".{id}.eml.tmp"));
    let path = dir.join(format!("{id}.eml"));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&tmp)?;
        file.write_all(message)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn each_mail_is_one_complete_file_and_nothing_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let pickup = Pickup::new(dir.path().join("mail/pickup")).unwrap();
        let a = pickup
            .write(b"Subject: one\r\n\r\nfirst\r\n")
            .await
            .unwrap();
        let b = pickup
            .write(b"Subject: two\r\n\r\nsecond\r\n")
            .await
            .unwrap();
        let mut names: Vec<String> = fs::read_dir(pickup.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| n.ends_with(".eml") && !n.starts_with('.'))
        );
        // UUIDv7 names sort in the order the mails were written.
        assert_eq!(
            names,
            vec![
                a.file_name().unwrap().to_str().unwrap().to_string(),
                b.file_name().unwrap().to_str().unwrap().to_string()
            ]
        );
        assert_eq!(fs::read(&a).unwrap(), b"Subject: one\r\n\r\nfirst\r\n");
        let mode = fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o007, 0, "not readable by others: {mode:o}");
    }

    #[tokio::test]
    async fn a_folder_that_cannot_be_written_is_a_temporary_failure() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-folder");
        fs::write(&file, b"x").unwrap();
        let pickup = Pickup { dir: file.clone() };
        let e = pickup.write(b"Subject: x\r\n\r\nx\r\n").await.unwrap_err();
        assert!(!e.permanent);
        assert!(e.message.contains(&file.display().to_string()), "{e}");
    }
}
