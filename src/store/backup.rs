//! Backup archives: a consistent copy of the store (taken while the server runs)
//! plus the generated TLS identity and the attachments, in one tar file with a
//! checksummed manifest.
//!
//! Layout of an archive: `MANIFEST.json` first (format, versions, creation time, and
//! the size and SHA-256 of every other member), then `outpost.redb`, `tls/*.pem` and
//! `blobs/sha256/<xx>/<hash>`.
//! Restoring verifies every checksum and the store's integrity and schema version
//! before it touches the data folder, and keeps what it replaces beside it.

use super::{DB_FILE, Store, schema};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

pub const MANIFEST: &str = "MANIFEST.json";
const FORMAT: &str = "outpost-backup";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupManifest {
    pub format: String,
    pub format_version: u32,
    pub created_at: DateTime<Utc>,
    pub outpost_version: String,
    pub schema_version: u32,
    /// Records copied from the store.
    pub records: u64,
    pub files: Vec<BackupFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupFile {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub manifest: BackupManifest,
    /// Where the store that was replaced now lives, if there was one.
    pub previous_store: Option<PathBuf>,
}

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::unavailable(
        "backup_io",
        format!("cannot {what} {}: {e}", path.display()),
    )
}

fn sha256_file(path: &Path) -> Result<(u64, String)> {
    let mut f = BufReader::new(File::open(path).map_err(|e| io_err("read", path, e))?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let r = f.read(&mut buf).map_err(|e| io_err("read", path, e))?;
        if r == 0 {
            break;
        }
        h.update(&buf[..r]);
        n += r as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

/// Write a backup archive of `store` (and `data_dir/tls`) to `out`.
pub fn create_archive(store: &Store, data_dir: &Path, out: &Path) -> Result<BackupManifest> {
    let work = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(data_dir)
        .map_err(|e| io_err("create a work folder in", data_dir, e))?;
    let snap = work.path().join(DB_FILE);
    let records = store.snapshot_to(&snap)?;
    let mut members: Vec<(String, PathBuf)> = vec![(DB_FILE.to_string(), snap)];
    let tls = data_dir.join("tls");
    if let Ok(rd) = std::fs::read_dir(&tls) {
        let mut names: Vec<_> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "pem"))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            members.push((format!("tls/{n}"), tls.join(&n)));
        }
    }
    // Attachments are content-addressed and never change once complete; hard links
    // taken after the store snapshot keep every one the snapshot references, even if
    // the garbage collector removes it meanwhile.
    let blobs = data_dir.join("blobs").join("sha256");
    if let Ok(prefixes) = std::fs::read_dir(&blobs) {
        let mut found: Vec<(String, PathBuf)> = Vec::new();
        for p in prefixes.filter_map(|e| e.ok()) {
            let prefix = p.file_name().to_string_lossy().into_owned();
            let Ok(rd) = std::fs::read_dir(p.path()) else {
                continue;
            };
            for f in rd.filter_map(|e| e.ok()) {
                let name = format!("blobs/sha256/{prefix}/{}", f.file_name().to_string_lossy());
                if !member_allowed(&name) {
                    continue;
                }
                let link = work.path().join(&name);
                if let Some(parent) = link.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io_err("create", parent, e))?;
                }
                match std::fs::hard_link(f.path(), &link) {
                    Ok(()) => found.push((name, link)),
                    // Collected meanwhile: no snapshot record references it any more.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("link for the backup", &f.path(), e)),
                }
            }
        }
        found.sort();
        members.extend(found);
    }
    let mut files = Vec::new();
    for (name, path) in &members {
        let (bytes, sha256) = sha256_file(path)?;
        files.push(BackupFile {
            path: name.clone(),
            bytes,
            sha256,
        });
    }
    let manifest = BackupManifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created_at: Utc::now(),
        outpost_version: env!("CARGO_PKG_VERSION").into(),
        schema_version: schema::VERSION,
        records,
        files,
    };
    let file = private_file(out)?;
    // The store file has holes (redb grows it in regions); GNU sparse members keep them
    // out of the archive. GNU tar, bsdtar and Python's tarfile all read them.
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    tar.sparse(true);
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest_bytes.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(manifest.created_at.timestamp().max(0) as u64);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, manifest_bytes.as_slice())
        .map_err(|e| io_err("write", out, e))?;
    for (name, path) in &members {
        let mut f = File::open(path).map_err(|e| io_err("read", path, e))?;
        tar.append_file(name, &mut f)
            .map_err(|e| io_err("write", out, e))?;
    }
    let mut w = tar.into_inner().map_err(|e| io_err("finish", out, e))?;
    w.flush().map_err(|e| io_err("finish", out, e))?;
    w.into_inner()
        .map_err(|e| io_err("finish", out, e.error()))?
        .sync_all()
        .map_err(|e| io_err("sync", out, e))?;
    Ok(manifest)
}

/// Create a file only its owner can read: archives hold keys and password hashes.
fn private_file(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err("create", path, e))
}

fn bad_archive(msg: impl Into<String>) -> Error {
    Error::bad_request("backup_invalid", msg)
}

/// Only `MANIFEST.json`, `outpost.redb` and `tls/<name>.pem` may appear in an archive.
fn member_allowed(name: &str) -> bool {
    let p = Path::new(name);
    if p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return false;
    }
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let blob = name.strip_prefix("blobs/sha256/").is_some_and(|rest| {
        let mut parts = rest.split('/');
        matches!((parts.next(), parts.next(), parts.next()),
            (Some(a), Some(b), None) if hex(a, 2) && hex(b, 64) && b.starts_with(a))
    });
    name == MANIFEST
        || name == DB_FILE
        || blob
        || (name.starts_with("tls/")
            && name.ends_with(".pem")
            && name.matches('/').count() == 1
            && name.len() > 8)
}

/// Verify `archive` and install it into `data_dir` (whose lock the caller holds).
pub fn restore_archive(archive: &Path, data_dir: &Path) -> Result<RestoreReport> {
    let file = File::open(archive).map_err(|e| io_err("open", archive, e))?;
    super::create_private_dir(data_dir).map_err(|e| io_err("create", data_dir, e))?;
    let work = tempfile::Builder::new()
        .prefix(".restore-")
        .tempdir_in(data_dir)
        .map_err(|e| io_err("create a work folder in", data_dir, e))?;
    let mut tar = tar::Archive::new(BufReader::new(file));
    let mut seen = Vec::new();
    for entry in tar
        .entries()
        .map_err(|e| bad_archive(format!("{} is not a tar archive: {e}", archive.display())))?
    {
        let mut entry = entry.map_err(|e| bad_archive(format!("the archive is damaged: {e}")))?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_gnu_sparse()) {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| bad_archive(format!("a member has an unreadable name: {e}")))?
            .to_string_lossy()
            .into_owned();
        if !member_allowed(&name) {
            return Err(bad_archive(format!(
                "the archive holds {name:?}, which is not part of an outpost backup"
            )));
        }
        let dest = work.path().join(&name);
        if let Some(parent) = dest.parent() {
            super::create_private_dir(parent).map_err(|e| io_err("create", parent, e))?;
        }
        let mut out = private_file(&dest)?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| bad_archive(format!("the archive is truncated at {name}: {e}")))?;
        out.sync_all().map_err(|e| io_err("sync", &dest, e))?;
        seen.push(name);
    }
    let manifest_path = work.path().join(MANIFEST);
    let manifest: BackupManifest =
        serde_json::from_slice(&std::fs::read(&manifest_path).map_err(|_| {
            bad_archive("the archive has no MANIFEST.json; it is not an outpost backup")
        })?)
        .map_err(|e| bad_archive(format!("MANIFEST.json cannot be read: {e}")))?;
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return Err(bad_archive(format!(
            "the archive is format {} v{}, this release restores {FORMAT} v{FORMAT_VERSION}",
            manifest.format, manifest.format_version
        )));
    }
    if manifest.schema_version > schema::VERSION {
        return Err(bad_archive(format!(
            "the backup was made by outpost {} with schema version {}; this release understands \
             up to {}",
            manifest.outpost_version,
            manifest.schema_version,
            schema::VERSION
        )));
    }
    for f in &manifest.files {
        if !member_allowed(&f.path) || f.path == MANIFEST {
            return Err(bad_archive(format!("the manifest lists {:?}", f.path)));
        }
        let path = work.path().join(&f.path);
        if !path.is_file() {
            return Err(bad_archive(format!(
                "the manifest lists {} but the archive does not contain it",
                f.path
            )));
        }
        let (bytes, sha) = sha256_file(&path)?;
        if bytes != f.bytes || sha != f.sha256 {
            return Err(bad_archive(format!(
                "{} does not match its checksum in the manifest; the archive is damaged",
                f.path
            )));
        }
    }
    for name in &seen {
        if name != MANIFEST && !manifest.files.iter().any(|f| &f.path == name) {
            return Err(bad_archive(format!(
                "{name} is in the archive but not in its manifest"
            )));
        }
    }
    let restored_db = work.path().join(DB_FILE);
    if !restored_db.is_file() {
        return Err(bad_archive("the archive holds no store (outpost.redb)"));
    }
    if !Store::check_file(&restored_db)? {
        return Err(bad_archive(
            "the store in the archive fails its integrity check",
        ));
    }

    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let live_db = data_dir.join(DB_FILE);
    let mut previous_store = None;
    if live_db.exists() {
        let aside = data_dir.join(format!("{DB_FILE}.before-restore-{stamp}"));
        std::fs::rename(&live_db, &aside).map_err(|e| io_err("move aside", &live_db, e))?;
        previous_store = Some(aside);
    }
    std::fs::rename(&restored_db, &live_db).map_err(|e| io_err("install", &live_db, e))?;
    let restored_tls = work.path().join("tls");
    if restored_tls.is_dir() {
        let live_tls = data_dir.join("tls");
        if live_tls.exists() {
            let aside = data_dir.join(format!("tls.before-restore-{stamp}"));
            std::fs::rename(&live_tls, &aside).map_err(|e| io_err("move aside", &live_tls, e))?;
        }
        std::fs::rename(&restored_tls, &live_tls).map_err(|e| io_err("install", &live_tls, e))?;
    }
    let restored_blobs = work.path().join("blobs");
    if restored_blobs.is_dir() {
        let live_blobs = data_dir.join("blobs");
        if live_blobs.exists() {
            let aside = data_dir.join(format!("blobs.before-restore-{stamp}"));
            std::fs::rename(&live_blobs, &aside)
                .map_err(|e| io_err("move aside", &live_blobs, e))?;
        }
        std::fs::rename(&restored_blobs, &live_blobs)
            .map_err(|e| io_err("install", &live_blobs, e))?;
    }
    if let Ok(d) = File::open(data_dir) {
        let _ = d.sync_all();
    }
    Ok(RestoreReport {
        manifest,
        previous_store,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::store::{RawTable, Tx};

    #[test]
    fn an_archive_round_trips_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("tls")).unwrap();
        std::fs::write(data.join("tls/cert.pem"), "CERT").unwrap();
        let store = Store::open(&data.join(DB_FILE), &StoreConfig::default()).unwrap();
        let t = RawTable::new(schema::META);
        store.write_now(|tx| t.put(tx, b"hello", b"world")).unwrap();
        let archive = dir.path().join("b.tar");
        let m = create_archive(&store, &data, &archive).unwrap();
        assert_eq!(m.files.len(), 2);
        store.close();
        drop(store);

        let target = dir.path().join("restored");
        let report = restore_archive(&archive, &target).unwrap();
        assert!(report.previous_store.is_none());
        let back = Store::open(&target.join(DB_FILE), &StoreConfig::default()).unwrap();
        let v = back
            .read(|tx| Tx::from(tx).get_raw(schema::META, b"hello"))
            .unwrap();
        assert_eq!(v.as_deref(), Some(&b"world"[..]));
        assert_eq!(
            std::fs::read_to_string(target.join("tls/cert.pem")).unwrap(),
            "CERT"
        );
        back.close();
        drop(back);

        // Flip one byte inside the store member: the checksum must catch it.
        let mut bytes = std::fs::read(&archive).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
        let bad = dir.path().join("bad.tar");
        std::fs::write(&bad, bytes).unwrap();
        let err = restore_archive(&bad, &dir.path().join("other")).unwrap_err();
        assert_eq!(err.code, "backup_invalid", "{err}");

        let garbage = dir.path().join("garbage.tar");
        std::fs::write(&garbage, b"\x00\x01not a tar at all").unwrap();
        assert!(restore_archive(&garbage, &dir.path().join("other2")).is_err());
    }
}
