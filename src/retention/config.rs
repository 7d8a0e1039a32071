//! The `[retention]` section of the configuration: the passphrase that seals the
//! compliance keys, the retention folder, journal file names and rotation, the
//! exporter's batching and retries, and the optional event webhook.

use crate::config::Secret;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Default rotation size in KiB (the reference's default).
pub const DEFAULT_ROTATION_KIB: u64 = 1_000_000_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Passphrase sealing the compliance private keys at rest. Empty = take it from the
    /// systemd credential `$CREDENTIALS_DIRECTORY/retention-passphrase`, or from
    /// `passphrase_file`. Also `OUTPOST_RETENTION_PASSPHRASE`.
    pub passphrase: Secret,
    /// A file holding the passphrase (its first line), when neither `passphrase` nor a
    /// systemd credential is set. Empty = none.
    pub passphrase_file: PathBuf,
    /// Where the journal (`messages/`) and attachments (`attachments/`) go. Empty =
    /// `<data_dir>/retention`.
    pub folder: PathBuf,
    /// Journal file names: `messages/<base_name>-<UTC timestamp>.jsonl`.
    pub base_name: String,
    /// Rotate the journal file once it holds this many KiB.
    pub rotation_size_kib: u64,
    /// Rotate the journal file after this many minutes (fractions allowed, e.g. 0.05 =
    /// 3 s); 0 = never by time.
    pub rotation_minutes: f64,
    /// Most mailbox entries journalled per fsync (and acknowledged together).
    pub batch: usize,
    /// Longest pause, in seconds, between retries while the folder or a sink fails.
    pub retry_max_secs: u64,
    /// POST every retention event as JSON to this URL; empty = no webhook.
    pub webhook_url: String,
    /// Seal every finished file to these age recipients (`age1…`) before it is kept or
    /// uploaded (`crate::retention::seal`); empty (and no file) = kept in the clear.
    pub age_recipients: Vec<String>,
    /// A file of further age recipients (one per line, `#` comments); empty = none.
    pub age_recipients_file: PathBuf,
    /// `[retention.s3]`: the bucket finished files are uploaded to.
    pub s3: crate::retention::sink::s3::S3Config,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            passphrase: Secret::default(),
            passphrase_file: PathBuf::new(),
            folder: PathBuf::new(),
            base_name: "receivedMessages".into(),
            rotation_size_kib: DEFAULT_ROTATION_KIB,
            rotation_minutes: 0.0,
            batch: 4096,
            retry_max_secs: 60,
            webhook_url: String::new(),
            age_recipients: Vec::new(),
            age_recipients_file: PathBuf::new(),
            s3: Default::default(),
        }
    }
}

/// A bad `[retention]` value: the key and why.
pub type Invalid = (&'static str, &'static str);

impl RetentionConfig {
    /// Rules serde cannot express.
    pub fn validate(&self) -> Result<(), Invalid> {
        let b = self.base_name.trim();
        if b.is_empty()
            || b.len() > 100
            || !b
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            || b.starts_with('.')
        {
            return Err((
                "retention.base_name",
                "must be 1 to 100 letters, digits, '_', '-' or '.', not starting with '.'",
            ));
        }
        if self.rotation_size_kib == 0 {
            return Err(("retention.rotation_size_kib", "must be at least 1"));
        }
        if !self.rotation_minutes.is_finite() || self.rotation_minutes < 0.0 {
            return Err((
                "retention.rotation_minutes",
                "must be 0 (never) or a positive number of minutes",
            ));
        }
        if !(1..=65_536).contains(&self.batch) {
            return Err(("retention.batch", "must be between 1 and 65536"));
        }
        if !(1..=3600).contains(&self.retry_max_secs) {
            return Err(("retention.retry_max_secs", "must be between 1 and 3600"));
        }
        let w = self.webhook_url.trim();
        if !(w.is_empty() || w.starts_with("https://") || w.starts_with("http://")) {
            return Err((
                "retention.webhook_url",
                "must be an http:// or https:// URL, or empty",
            ));
        }
        if self
            .age_recipients
            .iter()
            .any(|r| r.trim().parse::<age::x25519::Recipient>().is_err())
        {
            return Err((
                "retention.age_recipients",
                "each entry must be an age X25519 recipient (age1…), as `age-keygen -y` prints",
            ));
        }
        self.s3.validate(self.rotation_minutes)?;
        Ok(())
    }

    /// The retention folder.
    pub fn folder(&self, data_dir: &Path) -> PathBuf {
        if self.folder.as_os_str().is_empty() {
            data_dir.join("retention")
        } else {
            self.folder.clone()
        }
    }

    /// The passphrase, from the first source that has one: `passphrase` (or its
    /// environment variable), the systemd credential, `passphrase_file`. `None` when
    /// none is set; an error when a named file cannot be read.
    pub fn passphrase(&self) -> Result<Option<Secret>, String> {
        if !self.passphrase.is_empty() {
            return Ok(Some(self.passphrase.clone()));
        }
        let read = |p: &Path| -> Result<Option<Secret>, String> {
            let text = std::fs::read_to_string(p).map_err(|e| {
                format!(
                    "cannot read the retention passphrase from {}: {e}",
                    p.display()
                )
            })?;
            let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
            Ok((!line.is_empty()).then(|| Secret::new(line)))
        };
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let p = Path::new(&dir).join("retention-passphrase");
            if p.exists() {
                return read(&p);
            }
        }
        if !self.passphrase_file.as_os_str().is_empty() {
            return read(&self.passphrase_file);
        }
        Ok(None)
    }

    /// Rotation by time, if on.
    pub fn rotation_period(&self) -> Option<std::time::Duration> {
        (self.rotation_minutes > 0.0)
            .then(|| std::time::Duration::from_secs_f64(self.rotation_minutes * 60.0))
    }
}
