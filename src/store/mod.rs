//! The embedded store: one crash-safe redb database file in the data folder.
//!
//! [`Store`] owns the database. Reads run on the caller's thread in a snapshot read
//! transaction; writes go through the group committer ([`Store::write`]) and return
//! only once durably committed. The store applies schema migrations on open, refuses
//! a store written by a newer release, and can copy a consistent snapshot of itself
//! while writes continue ([`Store::snapshot_to`]), which `outpost backup` builds on.
//! No other module touches redb directly.

mod backup;
mod commit;
pub mod key;
mod lock;
pub mod schema;
mod table;

pub use backup::{BackupManifest, RestoreReport, create_archive, restore_archive};
pub use key::Key;
pub use lock::{DataDirLock, LockError, create_private_dir};
pub use table::{OpenTable, RawTable, Table, Tx};

use crate::config::StoreConfig;
use crate::error::{Error, Result};
use commit::Committer;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use table::{def, store_err};

/// File name of the database inside the data folder.
pub const DB_FILE: &str = "outpost.redb";

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    path: PathBuf,
    committer: Committer,
}

impl Store {
    /// Open (or create) the database at `path` and migrate it to the current schema.
    pub fn open(path: &Path, cfg: &StoreConfig) -> Result<Store> {
        let db = open_database(path, cfg.cache_mib)?;
        let tx = db
            .begin_write()
            .map_err(|e| store_err("starting the migration", e))?;
        let (from, to) = schema::migrate(&tx)?;
        tx.commit()
            .map_err(|e| store_err("committing the migration", e))?;
        if from != to {
            tracing::info!(from, to, "store schema is now version {to}");
        }
        Ok(Store::from_db(db, path, cfg))
    }

    /// Open an existing store for inspection, without migrating it: a store of another
    /// schema version is refused rather than changed.
    pub fn open_unmigrated(path: &Path, cfg: &StoreConfig) -> Result<Store> {
        if !path.is_file() {
            return Err(Error::not_found(
                "store_missing",
                format!("there is no store at {}", path.display()),
            ));
        }
        let db = open_database(path, cfg.cache_mib)?;
        let version = {
            let tx = db
                .begin_read()
                .map_err(|e| store_err("reading the schema version", e))?;
            meta_get(&tx, "schema_version")?
                .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
                .map(u32::from_be_bytes)
                .unwrap_or(0)
        };
        if version != schema::VERSION {
            return Err(Error::unavailable(
                "store_version",
                format!(
                    "the store has schema version {version} and this outpost writes version {}; \
                     check it with the release that wrote it (starting the server migrates it)",
                    schema::VERSION
                ),
            ));
        }
        Ok(Store::from_db(db, path, cfg))
    }

    fn from_db(db: Database, path: &Path, cfg: &StoreConfig) -> Store {
        let db = Arc::new(db);
        let committer = Committer::start(db.clone(), cfg.group_commit_max_ops);
        Store {
            inner: Arc::new(Inner {
                db,
                path: path.to_path_buf(),
                committer,
            }),
        }
    }

    /// Run `f` in a snapshot read transaction.
    pub fn read<R>(&self, f: impl FnOnce(&ReadTransaction) -> Result<R>) -> Result<R> {
        let tx = self
            .inner
            .db
            .begin_read()
            .map_err(|e| store_err("starting a read", e))?;
        f(&tx)
    }

    /// Apply `f` in the next group commit and wait until it is durable.
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        F: FnMut(&WriteTransaction) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        self.inner.committer.write(f).await
    }

    /// Queue `f` for the next group commit now and return a future of its durable
    /// result; `on_commit` runs on the committer thread once it is durable, in commit
    /// order (the relay pushes deliveries from there, so they leave in `seq` order).
    pub fn queue_write<R, F>(
        &self,
        f: F,
        on_commit: Option<commit::OnCommit<R>>,
    ) -> impl std::future::Future<Output = Result<R>> + Send + 'static
    where
        F: FnMut(&WriteTransaction) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        self.inner.committer.queue(f, on_commit)
    }

    /// Apply `f` in a transaction of its own, on this thread (start-up, maintenance).
    pub fn write_now<R>(&self, f: impl FnOnce(&WriteTransaction) -> Result<R>) -> Result<R> {
        let mut tx = self
            .inner
            .db
            .begin_write()
            .map_err(|e| store_err("starting a write", e))?;
        tx.set_quick_repair(true);
        match f(&tx) {
            Ok(v) => {
                tx.commit().map_err(|e| store_err("committing", e))?;
                Ok(v)
            }
            Err(e) => {
                let _ = tx.abort();
                Err(e)
            }
        }
    }

    /// Size of the database file in bytes.
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.inner.path)
            .map(|m| m.len())
            .unwrap_or(0)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Commit everything queued and stop accepting writes (before the process exits).
    pub fn close(&self) {
        self.inner.committer.stop();
    }

    /// Copy a consistent snapshot of every table into a new database at `dest`.
    /// Writers keep going while this runs; the copy is the state at its start.
    pub fn snapshot_to(&self, dest: &Path) -> Result<u64> {
        let src = self
            .inner
            .db
            .begin_read()
            .map_err(|e| store_err("starting the snapshot", e))?;
        let out = Database::create(dest).map_err(|e| store_err("creating the snapshot file", e))?;
        let wtx = out
            .begin_write()
            .map_err(|e| store_err("writing the snapshot", e))?;
        let mut entries = 0u64;
        {
            let tables: Vec<String> = src
                .list_tables()
                .map_err(|e| store_err("listing tables", e))?
                .map(|h| redb::TableHandle::name(&h).to_string())
                .collect();
            for name in tables {
                let d: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new(&name);
                let from = src
                    .open_table(d)
                    .map_err(|e| store_err("opening a table to copy", e))?;
                let mut to = wtx
                    .open_table(d)
                    .map_err(|e| store_err("creating a table in the snapshot", e))?;
                for item in from.iter().map_err(|e| store_err("copying", e))? {
                    let (k, v) = item.map_err(|e| store_err("copying", e))?;
                    to.insert(k.value(), v.value())
                        .map_err(|e| store_err("copying", e))?;
                    entries += 1;
                }
            }
        }
        wtx.commit()
            .map_err(|e| store_err("committing the snapshot", e))?;
        Ok(entries)
    }

    /// Run redb's own integrity check on a database that no process has open.
    pub fn check_file(path: &Path) -> Result<bool> {
        let mut db = Database::open(path).map_err(|e| open_err(path, e))?;
        db.check_integrity()
            .map_err(|e| store_err("checking integrity", e))
    }
}

fn open_database(path: &Path, cache_mib: usize) -> Result<Database> {
    let existed = path.exists();
    let mut builder = Database::builder();
    builder.set_cache_size(cache_mib * 1024 * 1024);
    builder.set_repair_callback(move |session| {
        // A brand-new file goes through the same path; only an existing one is news.
        if existed {
            tracing::warn!(
                progress = session.progress(),
                "repairing the store after an unclean shutdown"
            );
        }
    });
    builder.create(path).map_err(|e| open_err(path, e))
}

fn open_err(path: &Path, e: redb::DatabaseError) -> Error {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::unavailable(
            "store_in_use",
            format!(
                "the store {} is already open in another process",
                path.display()
            ),
        ),
        redb::DatabaseError::UpgradeRequired(v) => Error::unavailable(
            "store_format",
            format!(
                "the store {} uses redb file format {v}, which this release cannot read",
                path.display()
            ),
        ),
        other => Error::unavailable(
            "store_open_failed",
            format!("cannot open the store {}: {other}", path.display()),
        ),
    }
}

/// Add `delta` to the named counter (in the caller's transaction).
pub fn counter_add(tx: &WriteTransaction, name: &str, delta: i64) -> Result<()> {
    let mut t = tx
        .open_table(def(schema::COUNTERS))
        .map_err(|e| store_err("opening counters", e))?;
    let cur = t
        .get(name.as_bytes())
        .map_err(|e| store_err("reading a counter", e))?
        .map(|v| decode_i64(v.value()))
        .unwrap_or(0);
    let next = cur + delta;
    if next == 0 {
        t.remove(name.as_bytes())
            .map_err(|e| store_err("writing a counter", e))?;
    } else {
        t.insert(name.as_bytes(), next.to_be_bytes().as_slice())
            .map_err(|e| store_err("writing a counter", e))?;
    }
    Ok(())
}

/// The value of the named counter (0 if never written).
pub fn counter_get<'a>(tx: impl Into<Tx<'a>>, name: &str) -> Result<i64> {
    Ok(tx
        .into()
        .get_raw(schema::COUNTERS, name.as_bytes())?
        .map(|v| decode_i64(&v))
        .unwrap_or(0))
}

/// Every counter whose name starts with `prefix`, with its value.
pub fn counters_with_prefix<'a>(tx: impl Into<Tx<'a>>, prefix: &str) -> Result<Vec<(String, i64)>> {
    let (lo, hi) = key::prefix_bounds(prefix.as_bytes());
    let mut out = Vec::new();
    tx.into().scan_raw(
        schema::COUNTERS,
        (
            lo.as_ref().map(|v| v.as_slice()),
            hi.as_ref().map(|v| v.as_slice()),
        ),
        false,
        |k, v| {
            out.push((String::from_utf8_lossy(k).into_owned(), decode_i64(v)));
            Ok(std::ops::ControlFlow::Continue(()))
        },
    )?;
    Ok(out)
}

fn decode_i64(b: &[u8]) -> i64 {
    b.try_into().map(i64::from_be_bytes).unwrap_or(0)
}

/// Read a single value from the `meta` table.
pub fn meta_get<'a>(tx: impl Into<Tx<'a>>, name: &str) -> Result<Option<Vec<u8>>> {
    tx.into().get_raw(schema::META, name.as_bytes())
}

/// Write a single value to the `meta` table.
pub fn meta_put(tx: &WriteTransaction, name: &str, value: &[u8]) -> Result<()> {
    RawTable::new(schema::META).put(tx, name.as_bytes(), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> StoreConfig {
        StoreConfig::default()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn group_commit_isolates_a_failing_operation() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), &cfg()).unwrap();
        let t = RawTable::new(schema::META);
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.write(move |tx| {
                    if i % 7 == 3 {
                        t.put(tx, format!("bad{i}").as_bytes(), b"x")?;
                        return Err(Error::invalid("test", "refused"));
                    }
                    t.put(tx, format!("k{i}").as_bytes(), b"v")
                })
                .await
            }));
        }
        let mut ok = 0;
        for (i, task) in tasks.into_iter().enumerate() {
            let r = task.await.unwrap();
            assert_eq!(r.is_ok(), i % 7 != 3);
            ok += r.is_ok() as u32;
        }
        store
            .read(|tx| {
                let tx = Tx::from(tx);
                for i in 0..200u32 {
                    let good = tx.get_raw(schema::META, format!("k{i}").as_bytes())?;
                    let bad = tx.get_raw(schema::META, format!("bad{i}").as_bytes())?;
                    assert_eq!(good.is_some(), i % 7 != 3, "k{i}");
                    assert!(bad.is_none(), "a failed operation left a write behind");
                }
                Ok(())
            })
            .unwrap();
        assert!(ok > 150);
        store.close();
    }

    #[test]
    fn reopening_keeps_the_schema_and_refuses_a_newer_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        {
            let store = Store::open(&path, &cfg()).unwrap();
            store
                .write_now(|tx| {
                    assert_eq!(schema::read_version(tx)?, schema::VERSION);
                    meta_put(tx, "schema_version", &(schema::VERSION + 1).to_be_bytes())
                })
                .unwrap();
            store.close();
        }
        let err = Store::open(&path, &cfg()).err().unwrap();
        assert_eq!(err.code, "store_too_new");
        assert!(err.message.contains("understands only up to"));
    }

    #[test]
    fn counters_add_and_vanish_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), &cfg()).unwrap();
        store
            .write_now(|tx| {
                counter_add(tx, "a:x", 3)?;
                counter_add(tx, "a:y", 1)?;
                counter_add(tx, "a:x", -3)?;
                Ok(())
            })
            .unwrap();
        let all = store.read(|tx| counters_with_prefix(tx, "a:")).unwrap();
        assert_eq!(all, vec![("a:y".to_string(), 1)]);
        store.close();
    }
}
