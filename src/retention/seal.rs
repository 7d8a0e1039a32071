//! Sealing finished retention files to the site's own age recipients.
//!
//! When `[retention] age_recipients` (or `age_recipients_file`) is set, every rotated
//! journal file and every attachment is encrypted to those recipients before it is kept
//! or uploaded, as `<file>.age`, in the standard age format (age-encryption.org/v1), so
//! the archive opens with the `age` tool and the site's identity file and nothing else:
//! `age -d -i site.key receivedMessages-….jsonl.age`. Encryption streams through a
//! fixed-size buffer (files of any size, never held in memory), and the sealed file is
//! written beside the original as `.<file>.age.part`, flushed to disk, then renamed, so a
//! crash never leaves a half-written `.age`. [`Sealer::seal_file`] reports the SHA-256 and
//! size of what it wrote: the manifest covers the file that is actually kept or uploaded.
//!
//! [`Opener`] is the other direction, for `outpost retention export` reading `.age`
//! journals with the site's identity file.

use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The suffix of a sealed file.
pub const SEALED_SUFFIX: &str = ".age";

/// Bytes read from the plain file at a time (age itself encrypts 64 KiB chunks).
const BUFFER_BYTES: usize = 256 * 1024;

/// Why recipients could not be loaded or a file could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{origin}: {value:?} is not an age X25519 recipient (age1…): {reason}")]
    BadRecipient {
        origin: String,
        value: String,
        reason: String,
    },
    #[error("cannot read the age recipients file {path}: {source}")]
    RecipientsFile { path: PathBuf, source: io::Error },
    #[error(
        "retention.age_recipients_file {path} lists no recipient (one age1… per line, # for comments)"
    )]
    NoRecipients { path: PathBuf },
    #[error("cannot seal {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read the age identity file {path}: {reason}")]
    IdentityFile { path: PathBuf, reason: String },
    #[error("cannot open {path}: {reason}")]
    Open { path: PathBuf, reason: String },
}

/// What [`Sealer::seal_file`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The sealed file, `<file>.age`.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Hex SHA-256 of the sealed file (what is kept or uploaded).
    pub sha256: String,
    /// Size of the plain file that was sealed.
    pub plain_bytes: u64,
}

/// Encrypts files to a fixed set of age recipients.
#[derive(Clone)]
pub struct Sealer {
    recipients: Vec<age::x25519::Recipient>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("recipients", &self.recipients.len())
            .finish()
    }
}

/// `<file>.age` for `file`.
pub fn sealed_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(SEALED_SUFFIX);
    PathBuf::from(s)
}

/// The temporary name a file is written under before it is renamed into place:
/// `.<name>.part` beside it (hidden, so no listing of finished files picks it up).
pub fn part_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.part"))
}

/// Whether `path` names a sealed file.
pub fn is_sealed(path: &Path) -> bool {
    path.to_string_lossy().ends_with(SEALED_SUFFIX)
}

fn parse_recipient(origin: &str, value: &str) -> Result<age::x25519::Recipient, SealError> {
    age::x25519::Recipient::from_str(value.trim()).map_err(|reason| SealError::BadRecipient {
        origin: origin.to_string(),
        value: value.trim().to_string(),
        reason: reason.to_string(),
    })
}

impl Sealer {
    /// The recipients of `[retention] age_recipients` plus those of
    /// `age_recipients_file` (one `age1…` per line; blank lines and `#` comments are
    /// skipped, as in age's own recipients files). `None` when neither is set: files are
    /// kept in the clear.
    pub fn from_config(
        recipients: &[String],
        recipients_file: Option<&Path>,
    ) -> Result<Option<Sealer>, SealError> {
        let mut out = Vec::new();
        for r in recipients {
            out.push(parse_recipient("retention.age_recipients", r)?);
        }
        if let Some(path) = recipients_file.filter(|p| !p.as_os_str().is_empty()) {
            let text = fs::read_to_string(path).map_err(|source| SealError::RecipientsFile {
                path: path.to_path_buf(),
                source,
            })?;
            let before = out.len();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let origin = format!("{} line {}", path.display(), n + 1);
                out.push(parse_recipient(&origin, line)?);
            }
            if out.len() == before {
                return Err(SealError::NoRecipients {
                    path: path.to_path_buf(),
                });
            }
        }
        Ok((!out.is_empty()).then_some(Sealer { recipients: out }))
    }

    /// A sealer for the given recipients (at least one).
    pub fn new(recipients: Vec<age::x25519::Recipient>) -> Option<Sealer> {
        (!recipients.is_empty()).then_some(Sealer { recipients })
    }

    /// A sealer to a fresh X25519 key, and that key's identity (`AGE-SECRET-KEY-1…`):
    /// for benchmarks (bench/retention measures the pipeline with and without the age
    /// step: `Pipeline::push(Arc::new(AgeSink::new(sealer)))`, or time
    /// [`Sealer::seal_file`] on the rotated files) and tests.
    pub fn ephemeral() -> (Sealer, String) {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        let sealer = Sealer {
            recipients: vec![id.to_public()],
        };
        (sealer, id.to_string().expose_secret().to_string())
    }

    /// How many recipients each file is sealed to.
    pub fn recipient_count(&self) -> usize {
        self.recipients.len()
    }

    /// Encrypt everything `input` yields into `output` (streaming). Returns the number of
    /// plain bytes read. The benchmark calls this with an in-memory or null writer.
    pub fn seal_to<R: Read, W: Write>(&self, mut input: R, output: W) -> io::Result<u64> {
        let encryptor = age::Encryptor::with_recipients(
            self.recipients.iter().map(|r| r as &dyn age::Recipient),
        )
        .map_err(io::Error::other)?;
        let mut writer = encryptor.wrap_output(output)?;
        let mut buf = vec![0u8; BUFFER_BYTES];
        let mut total = 0u64;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            writer.write_all(&buf[..n])?;
            total += n as u64;
        }
        writer.finish()?.flush()?;
        Ok(total)
    }

    /// Seal `path` into `<path>.age` (written as `.<name>.age.part`, fsynced, renamed, folder
    /// fsynced). The plain file is left in place: the caller removes it once the sealed
    /// file and its manifest are durable.
    pub fn seal_file(&self, path: &Path) -> Result<Sealed, SealError> {
        let target = sealed_name(path);
        let part = part_name(&target);
        let err = |source: io::Error| SealError::Write {
            path: path.to_path_buf(),
            source,
        };
        let input = File::open(path).map_err(err)?;
        let out = File::create(&part).map_err(err)?;
        let mut hashing = HashingWriter::new(io::BufWriter::with_capacity(BUFFER_BYTES, out));
        let result = self.seal_to(input, &mut hashing);
        let plain_bytes = match result {
            Ok(n) => n,
            Err(e) => {
                let _ = fs::remove_file(&part);
                return Err(err(e));
            }
        };
        let (bytes, sha256, inner) = hashing.finish();
        let file = inner
            .into_inner()
            .map_err(|e| err(e.into_error()))
            .and_then(|f| f.sync_all().map(|_| f).map_err(err));
        if let Err(e) = file {
            let _ = fs::remove_file(&part);
            return Err(e);
        }
        fs::rename(&part, &target).map_err(err)?;
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
        }
        Ok(Sealed {
            path: target,
            bytes,
            sha256,
            plain_bytes,
        })
    }
}

/// Counts and hashes what passes through to the inner writer.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> (u64, String, W) {
        (self.bytes, hex::encode(self.hasher.finalize()), self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts sealed files with the site's identity file (`age-keygen` output).
pub struct Opener {
    identities: Vec<Box<dyn age::Identity>>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("identities", &self.identities.len())
            .finish()
    }
}

impl Opener {
    /// Read an age identity file (`AGE-SECRET-KEY-1…` lines).
    pub fn from_identity_file(path: &Path) -> Result<Opener, SealError> {
        let bad = |reason: String| SealError::IdentityFile {
            path: path.to_path_buf(),
            reason,
        };
        let file = age::IdentityFile::from_file(path.to_string_lossy().into_owned())
            .map_err(|e| bad(e.to_string()))?;
        let identities = file.into_identities().map_err(|e| bad(e.to_string()))?;
        if identities.is_empty() {
            return Err(bad("it holds no identity".into()));
        }
        Ok(Opener { identities })
    }

    /// A streaming reader of the plain content of the sealed file at `path`.
    pub fn open(&self, path: &Path) -> Result<Box<dyn Read>, SealError> {
        let bad = |reason: String| SealError::Open {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(|e| bad(e.to_string()))?;
        let decryptor =
            age::Decryptor::new_buffered(BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
        let reader = decryptor
            .decrypt(
                self.identities
                    .iter()
                    .map(|i| i.as_ref() as &dyn age::Identity),
            )
            .map_err(|e| bad(e.to_string()))?;
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn a_sealed_file_opens_with_the_identity_and_hashes_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let sealer = Sealer::from_config(&[id.to_public().to_string()], None)
            .unwrap()
            .unwrap();
        let plain = dir.path().join("receivedMessages-x.jsonl");
        let body: Vec<u8> = (0..700_000u32).flat_map(|i| i.to_le_bytes()).collect();
        fs::write(&plain, &body).unwrap();
        let sealed = sealer.seal_file(&plain).unwrap();
        assert_eq!(sealed.path, dir.path().join("receivedMessages-x.jsonl.age"));
        assert_eq!(sealed.plain_bytes, body.len() as u64);
        let on_disk = fs::read(&sealed.path).unwrap();
        assert_eq!(on_disk.len() as u64, sealed.bytes);
        assert_eq!(hex::encode(Sha256::digest(&on_disk)), sealed.sha256);
        let key = dir.path().join("site.key");
        fs::write(&key, format!("{}\n", id.to_string().expose_secret())).unwrap();
        let mut back = Vec::new();
        Opener::from_identity_file(&key)
            .unwrap()
            .open(&sealed.path)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn an_ephemeral_sealer_seals_to_its_identity() {
        let (sealer, identity) = Sealer::ephemeral();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        fs::write(&key, format!("{identity}\n")).unwrap();
        let f = dir.path().join("a");
        fs::write(&f, b"abc").unwrap();
        let sealed = sealer.seal_file(&f).unwrap();
        let mut back = Vec::new();
        Opener::from_identity_file(&key)
            .unwrap()
            .open(&sealed.path)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, b"abc");
    }

    #[test]
    fn bad_recipients_are_named() {
        let e = Sealer::from_config(&["age1nope".into()], None).unwrap_err();
        assert!(e.to_string().contains("retention.age_recipients"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.txt");
        fs::write(&f, "# only a comment\n\n").unwrap();
        let e = Sealer::from_config(&[], Some(&f)).unwrap_err();
        assert!(e.to_string().contains("lists no recipient"), "{e}");
        assert!(Sealer::from_config(&[], None).unwrap().is_none());
    }
}
