//! The S3 sink: every finished retention file is uploaded to an S3-compatible bucket,
//! and the local copy is removed only once the bucket confirms it holds the object.
//!
//! Configuration is `[retention.s3]` ([`S3Config`]): endpoint, region, bucket, folder
//! prefix, access key id and secret (from the file, `OUTPOST_RETENTION_S3_SECRET_ACCESS_KEY`,
//! or the systemd credential `retention-s3-secret`), path-style addressing. Messages and
//! attachments share the bucket and prefix: `<prefix>/messages/…`, `<prefix>/attachments/…`
//! (the file's path in the retention folder). As in the reference product, rotation by
//! time is required when a bucket is configured, or journal files would never be
//! finished and so never uploaded (checked by [`S3Config::validate`]).
//!
//! One [`Sink::deliver`] is one attempt: put the file (a single PUT up to 8 MiB, a
//! multipart upload in 8 MiB parts above, streamed from disk), then HEAD the object and
//! compare its size (and, for a single PUT, its ETag) with what was sent; only then remove
//! the local file. Any failure is returned as
//! "Failed to put file <name> on S3 bucket. Error: …" (the reference's event text) and
//! counted in [`S3Sink::post_errors`]; the exporter pauses, raises the critical event and
//! retries with backoff, so nothing is lost while the bucket is down. Uploading is
//! idempotent (same key, same bytes), and a file already gone locally whose object is in
//! the bucket counts as delivered, so a crash between upload and removal does no harm.

use super::{Finished, Sink, StepFuture};
use crate::config::Secret;
use anyhow::{Context, anyhow};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig, WriteMultipart};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Files up to this size go up in one PUT; larger ones in parts of this size.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// The name of the systemd credential holding the secret access key.
pub const SECRET_CREDENTIAL: &str = "retention-s3-secret";

/// `[retention.s3]`: the bucket every finished retention file is uploaded to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Bucket name; empty = no upload (files stay in the local folder).
    pub bucket: String,
    /// Endpoint URL of the S3-compatible service (`https://s3.example.net:9000`);
    /// empty = AWS's endpoint for `region`.
    pub endpoint: String,
    /// Region of the bucket (SigV4 signs with it).
    pub region: String,
    /// Folder (key prefix) in the bucket; files go to `<prefix>/messages/…` and
    /// `<prefix>/attachments/…`. Empty = the bucket's top level.
    pub prefix: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key; empty = the systemd credential `retention-s3-secret`
    /// (`$CREDENTIALS_DIRECTORY/retention-s3-secret`), if present.
    pub secret_access_key: Secret,
    /// Path-style requests (`<endpoint>/<bucket>/<key>`), as most self-hosted
    /// S3-compatible servers need; `false` = virtual-hosted style (`<bucket>.<endpoint>`).
    pub path_style: bool,
    /// Seconds one request may take before it counts as failed.
    pub timeout_secs: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            prefix: String::new(),
            access_key_id: String::new(),
            secret_access_key: Secret::default(),
            path_style: true,
            timeout_secs: 60,
        }
    }
}

impl S3Config {
    /// Whether a bucket is configured.
    pub fn enabled(&self) -> bool {
        !self.bucket.trim().is_empty()
    }

    /// Rules serde cannot express; `rotation_minutes` is `[retention] rotation_minutes`.
    /// Returns the offending key and the sentence for the person.
    pub fn validate(&self, rotation_minutes: f64) -> Result<(), (&'static str, &'static str)> {
        if !self.enabled() {
            return Ok(());
        }
        if rotation_minutes <= 0.0 {
            return Err((
                "retention.rotation_minutes",
                "must be set (greater than 0) when retention.s3.bucket is set: journal \
                 files are uploaded when they rotate, so without rotation by time they \
                 would never reach the bucket",
            ));
        }
        let b = self.bucket.trim();
        if !(3..=63).contains(&b.len())
            || !b
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
        {
            return Err((
                "retention.s3.bucket",
                "must be 3 to 63 characters: lower-case letters, digits, '.' and '-'",
            ));
        }
        let e = self.endpoint.trim();
        if !(e.is_empty() || e.starts_with("https://") || e.starts_with("http://")) {
            return Err((
                "retention.s3.endpoint",
                "must be a URL starting with https:// (or http:// on a trusted network)",
            ));
        }
        if self.region.trim().is_empty() {
            return Err((
                "retention.s3.region",
                "must not be empty (e.g. \"us-east-1\")",
            ));
        }
        if self.access_key_id.trim().is_empty() {
            return Err((
                "retention.s3.access_key_id",
                "must be set when retention.s3.bucket is set",
            ));
        }
        if self.timeout_secs == 0 || self.timeout_secs > 3600 {
            return Err(("retention.s3.timeout_secs", "must be between 1 and 3600"));
        }
        Ok(())
    }

    /// The secret access key: the configured one (file or environment), else the
    /// systemd credential. Never logged.
    pub fn resolve_secret(&self) -> anyhow::Result<Secret> {
        if !self.secret_access_key.is_empty() {
            return Ok(self.secret_access_key.clone());
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let p = PathBuf::from(dir).join(SECRET_CREDENTIAL);
            if p.exists() {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read the credential {}", p.display()))?;
                return Ok(Secret::new(text.trim_end_matches(['\r', '\n'])));
            }
        }
        Err(anyhow!(
            "retention.s3.secret_access_key is not set: set it in the configuration, in \
             OUTPOST_RETENTION_S3_SECRET_ACCESS_KEY, or as the systemd credential {SECRET_CREDENTIAL}"
        ))
    }
}

/// Uploads finished files to the configured bucket.
pub struct S3Sink {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
    post_errors: AtomicU64,
    on_error: Option<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for S3Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Sink")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl S3Sink {
    /// A sink for `config` (which must be [`S3Config::enabled`] and valid).
    pub fn new(config: &S3Config) -> anyhow::Result<S3Sink> {
        let secret = config.resolve_secret()?;
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let endpoint = config.endpoint.trim();
        let client = ClientOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(Duration::from_secs(5).min(timeout))
            .with_allow_http(endpoint.starts_with("http://"));
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(config.bucket.trim())
            .with_region(config.region.trim())
            .with_access_key_id(config.access_key_id.trim())
            .with_secret_access_key(secret.expose())
            .with_virtual_hosted_style_request(!config.path_style)
            .with_client_options(client)
            // One delivery is one attempt (with one quick retry inside); the exporter
            // retries with its own backoff and raises the event.
            .with_retry(RetryConfig {
                max_retries: 1,
                retry_timeout: timeout,
                ..RetryConfig::default()
            });
        if !endpoint.is_empty() {
            b = b.with_endpoint(endpoint.trim_end_matches('/'));
        }
        let store = b
            .build()
            .with_context(|| format!("cannot set up the S3 bucket {:?}", config.bucket.trim()))?;
        Ok(S3Sink {
            store: Arc::new(store),
            bucket: config.bucket.trim().to_string(),
            prefix: config.prefix.trim().trim_matches('/').to_string(),
            post_errors: AtomicU64::new(0),
            on_error: None,
        })
    }

    /// Call `f` on every failed upload (the exporter counts `S3_Post_Errors` with it).
    pub fn on_error(mut self, f: impl Fn() + Send + Sync + 'static) -> S3Sink {
        self.on_error = Some(Box::new(f));
        self
    }

    /// Failed uploads so far.
    pub fn post_errors(&self) -> u64 {
        self.post_errors.load(Ordering::Relaxed)
    }

    /// The object key of a file of the retention folder (`relative` is `/`-separated).
    pub fn key(&self, relative: &str) -> ObjectPath {
        let rel = relative.trim_start_matches('/');
        if self.prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// Upload `file`, confirm, remove the local copy. One attempt.
    pub async fn upload(&self, file: &Finished) -> anyhow::Result<()> {
        let name = file.relative.as_str();
        match self.try_upload(file).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.post_errors.fetch_add(1, Ordering::Relaxed);
                if let Some(f) = &self.on_error {
                    f();
                }
                Err(anyhow!(
                    "Failed to put file {name} on S3 bucket. Error: {}",
                    flatten(&e)
                ))
            }
        }
    }

    async fn try_upload(&self, file: &Finished) -> anyhow::Result<()> {
        let key = self.key(&file.relative);
        let size = match tokio::fs::metadata(&file.path).await {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Already uploaded and removed (a delivery repeated after a crash)?
                return match self.store.head(&key).await {
                    Ok(_) => Ok(()),
                    Err(h) => Err(anyhow!(
                        "{} is no longer in the retention folder and not in the bucket ({h})",
                        file.path.display()
                    )),
                };
            }
            Err(e) => return Err(e).context(format!("cannot read {}", file.path.display())),
        };
        let sent_etag = if size as usize <= PART_BYTES {
            let data = tokio::fs::read(&file.path)
                .await
                .with_context(|| format!("cannot read {}", file.path.display()))?;
            let r = self.store.put(&key, PutPayload::from(data)).await?;
            r.e_tag
        } else {
            self.put_multipart(&file.path, &key).await?;
            None
        };
        let head = self.store.head(&key).await?;
        if head.size != size {
            return Err(anyhow!(
                "the bucket holds {} bytes for {key}, {size} were sent",
                head.size
            ));
        }
        if let (Some(sent), Some(held)) = (&sent_etag, &head.e_tag)
            && sent.trim_matches('"') != held.trim_matches('"')
        {
            return Err(anyhow!(
                "the bucket's ETag for {key} ({held}) is not the one the upload returned ({sent})"
            ));
        }
        remove_durably(&file.path)
            .with_context(|| format!("uploaded, but cannot remove {}", file.path.display()))?;
        Ok(())
    }

    async fn put_multipart(&self, path: &Path, key: &ObjectPath) -> anyhow::Result<()> {
        let mut f = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        let upload = self.store.put_multipart(key).await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = match f.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(e).context(format!("cannot read {}", path.display()));
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = w.wait_for_capacity(2).await {
                let _ = w.abort().await;
                return Err(e.into());
            }
            w.write(&buf[..n]);
        }
        w.finish().await?;
        Ok(())
    }
}

/// An error and its causes on one line.
fn flatten(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for (i, c) in e.chain().enumerate() {
        if i > 0 {
            s.push_str(": ");
        }
        s.push_str(&c.to_string());
    }
    s
}

/// Remove a file and flush its folder, so the removal survives a crash.
fn remove_durably(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Sink for S3Sink {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn deliver<'a>(&'a self, file: Finished) -> StepFuture<'a> {
        Box::pin(async move {
            self.upload(&file).await?;
            Ok(None)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_needs_rotation_by_time_and_valid_names() {
        let mut c = S3Config {
            bucket: "outpost-export".into(),
            access_key_id: "AKID".into(),
            ..S3Config::default()
        };
        let (k, m) = c.validate(0.0).unwrap_err();
        assert_eq!(k, "retention.rotation_minutes");
        assert!(m.contains("retention.s3.bucket"), "{m}");
        assert!(c.validate(10.0).is_ok());
        c.bucket = "B2".into();
        assert_eq!(c.validate(10.0).unwrap_err().0, "retention.s3.bucket");
        c.bucket = "outpost-export".into();
        c.endpoint = "s3.example.net".into();
        assert_eq!(c.validate(10.0).unwrap_err().0, "retention.s3.endpoint");
        assert!(S3Config::default().validate(0.0).is_ok());
    }

    #[test]
    fn keys_are_the_folder_prefix_and_the_path_in_the_retention_folder() {
        let c = S3Config {
            bucket: "outpost-export".into(),
            endpoint: "http://127.0.0.1:9".into(),
            access_key_id: "AKID".into(),
            secret_access_key: Secret::new("hunter2-secret"),
            prefix: "/net1/".into(),
            ..S3Config::default()
        };
        let s = S3Sink::new(&c).unwrap();
        assert_eq!(
            s.key("messages/receivedMessages-1.jsonl").as_ref(),
            "net1/messages/receivedMessages-1.jsonl"
        );
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
