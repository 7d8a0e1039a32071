//! Typed tables over redb and the transaction handle that reads them.
//!
//! Every redb table outpost creates maps bytes to bytes; the type lives here, in
//! [`Table<V>`] (values are JSON records, so fields can be added with a serde default
//! and no migration) and [`RawTable`] (values the owner encodes itself, for hot paths).
//! Keeping every table `&[u8] → &[u8]` lets backup and integrity checks copy any
//! table without knowing what it holds.

use crate::error::{Error, Result};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::ops::{Bound, ControlFlow};

pub(crate) type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

pub(crate) fn def(name: &'static str) -> Def {
    TableDefinition::new(name)
}

pub(crate) fn store_err(context: &str, e: impl std::fmt::Display) -> Error {
    Error::unavailable(
        "store_error",
        format!("the store failed while {context}: {e}"),
    )
}

/// A callback over raw entries; breaking stops the scan.
type Visitor<'f> = dyn FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>> + 'f;
/// One entry as a redb range yields it.
type RangeItem<'a> = std::result::Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

/// A read view: a read transaction, or a write transaction reading its own writes.
#[derive(Clone, Copy)]
pub enum Tx<'a> {
    Read(&'a ReadTransaction),
    Write(&'a WriteTransaction),
}

impl<'a> From<&'a ReadTransaction> for Tx<'a> {
    fn from(t: &'a ReadTransaction) -> Self {
        Tx::Read(t)
    }
}
impl<'a> From<&'a WriteTransaction> for Tx<'a> {
    fn from(t: &'a WriteTransaction) -> Self {
        Tx::Write(t)
    }
}

impl Tx<'_> {
    /// The raw value under `key` in table `name`.
    pub fn get_raw(&self, name: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            Tx::Read(t) => match t.open_table(def(name)) {
                Ok(table) => Ok(table
                    .get(key)
                    .map_err(|e| store_err("reading", e))?
                    .map(|v| v.value().to_vec())),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
                Err(e) => Err(store_err("opening a table", e)),
            },
            Tx::Write(t) => {
                let table = t
                    .open_table(def(name))
                    .map_err(|e| store_err("opening a table", e))?;
                Ok(table
                    .get(key)
                    .map_err(|e| store_err("reading", e))?
                    .map(|v| v.value().to_vec()))
            }
        }
    }

    /// Visit the entries of `name` in `range` (ascending, or descending if `reverse`),
    /// until `f` breaks.
    pub fn scan_raw(
        &self,
        name: &'static str,
        range: (Bound<&[u8]>, Bound<&[u8]>),
        reverse: bool,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        fn run<T: ReadableTable<&'static [u8], &'static [u8]>>(
            table: &T,
            range: (Bound<&[u8]>, Bound<&[u8]>),
            reverse: bool,
            f: &mut Visitor<'_>,
        ) -> Result<()> {
            let iter = table
                .range::<&[u8]>(range)
                .map_err(|e| store_err("scanning", e))?;
            let mut visit = |item: RangeItem<'_>| {
                let (k, v) = item.map_err(|e| store_err("scanning", e))?;
                f(k.value(), v.value())
            };
            if reverse {
                for item in iter.rev() {
                    if visit(item)?.is_break() {
                        break;
                    }
                }
            } else {
                for item in iter {
                    if visit(item)?.is_break() {
                        break;
                    }
                }
            }
            Ok(())
        }
        match self {
            Tx::Read(t) => match t.open_table(def(name)) {
                Ok(table) => run(&table, range, reverse, &mut f),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(()),
                Err(e) => Err(store_err("opening a table", e)),
            },
            Tx::Write(t) => {
                let table = t
                    .open_table(def(name))
                    .map_err(|e| store_err("opening a table", e))?;
                run(&table, range, reverse, &mut f)
            }
        }
    }

    /// The last string part of every key of index `name` that starts with `prefix`
    /// (an index keyed `owner, id → ()` lists an owner's ids this way), in key order.
    pub fn ids_with_prefix(&self, name: &'static str, prefix: &[u8]) -> Result<Vec<String>> {
        let (lo, hi) = super::key::prefix_bounds(prefix);
        let mut ids = Vec::new();
        self.scan_raw(
            name,
            (
                lo.as_ref().map(|v| v.as_slice()),
                hi.as_ref().map(|v| v.as_slice()),
            ),
            false,
            |k, _| {
                ids.push(super::key::last_part(k).to_string());
                Ok(ControlFlow::Continue(()))
            },
        )?;
        Ok(ids)
    }

    /// Number of entries in `range` of table `name`.
    pub fn count_raw(
        &self,
        name: &'static str,
        range: (Bound<&[u8]>, Bound<&[u8]>),
    ) -> Result<u64> {
        let mut n = 0u64;
        self.scan_raw(name, range, false, |_, _| {
            n += 1;
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(n)
    }
}

/// A table whose values are raw bytes encoded by the owner.
#[derive(Clone, Copy)]
pub struct RawTable {
    pub name: &'static str,
}

impl RawTable {
    pub const fn new(name: &'static str) -> Self {
        RawTable { name }
    }

    pub fn get<'a>(&self, tx: impl Into<Tx<'a>>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        tx.into().get_raw(self.name, key)
    }

    pub fn put(&self, tx: &WriteTransaction, key: &[u8], value: &[u8]) -> Result<()> {
        let mut t = tx
            .open_table(def(self.name))
            .map_err(|e| store_err("opening a table", e))?;
        t.insert(key, value).map_err(|e| store_err("writing", e))?;
        Ok(())
    }

    pub fn delete(&self, tx: &WriteTransaction, key: &[u8]) -> Result<bool> {
        let mut t = tx
            .open_table(def(self.name))
            .map_err(|e| store_err("opening a table", e))?;
        let existed = t
            .remove(key)
            .map_err(|e| store_err("deleting", e))?
            .is_some();
        Ok(existed)
    }

    /// Delete every key that starts with `prefix`; returns how many were removed.
    pub fn delete_prefix(&self, tx: &WriteTransaction, prefix: &[u8]) -> Result<u64> {
        let mut t = tx
            .open_table(def(self.name))
            .map_err(|e| store_err("opening a table", e))?;
        let (lo, hi) = super::key::prefix_bounds(prefix);
        let range = (
            lo.as_ref().map(|v| v.as_slice()),
            hi.as_ref().map(|v| v.as_slice()),
        );
        let removed = t
            .extract_from_if::<&[u8], _>(range, |_, _| true)
            .map_err(|e| store_err("deleting", e))?
            .count() as u64;
        Ok(removed)
    }
}

/// A table of JSON-encoded records of type `V`.
pub struct Table<V> {
    raw: RawTable,
    _v: PhantomData<fn() -> V>,
}

impl<V> Clone for Table<V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V> Copy for Table<V> {}

impl<V: Serialize + DeserializeOwned> Table<V> {
    pub const fn new(name: &'static str) -> Self {
        Table {
            raw: RawTable::new(name),
            _v: PhantomData,
        }
    }

    pub fn name(&self) -> &'static str {
        self.raw.name
    }

    fn decode(&self, bytes: &[u8]) -> Result<V> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::internal(format!(
                "a record in table {} cannot be decoded: {e}",
                self.raw.name
            ))
        })
    }

    pub fn get<'a>(&self, tx: impl Into<Tx<'a>>, key: &[u8]) -> Result<Option<V>> {
        match self.raw.get(tx, key)? {
            Some(bytes) => Ok(Some(self.decode(&bytes)?)),
            None => Ok(None),
        }
    }

    pub fn put(&self, tx: &WriteTransaction, key: &[u8], value: &V) -> Result<()> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::internal(format!("cannot encode a record: {e}")))?;
        self.raw.put(tx, key, &bytes)
    }

    pub fn delete(&self, tx: &WriteTransaction, key: &[u8]) -> Result<bool> {
        self.raw.delete(tx, key)
    }

    /// Visit records whose keys start with `prefix`, starting after `after` if given.
    pub fn scan_prefix<'a>(
        &self,
        tx: impl Into<Tx<'a>>,
        prefix: &[u8],
        after: Option<&[u8]>,
        reverse: bool,
        mut f: impl FnMut(&[u8], V) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let (lo, hi) = super::key::prefix_bounds(prefix);
        let lo_b: Bound<&[u8]> = lo.as_ref().map(|v| v.as_slice());
        let hi_b: Bound<&[u8]> = hi.as_ref().map(|v| v.as_slice());
        let range = match (after, reverse) {
            (Some(a), false) => (Bound::Excluded(a), hi_b),
            (Some(a), true) => (lo_b, Bound::Excluded(a)),
            (None, _) => (lo_b, hi_b),
        };
        tx.into()
            .scan_raw(self.raw.name, range, reverse, |k, v| f(k, self.decode(v)?))
    }
}

/// A raw table opened once inside a write transaction, for operations that touch
/// it many times (the relay's mailbox writes): no per-call table lookup.
pub struct OpenTable<'tx> {
    table: redb::Table<'tx, &'static [u8], &'static [u8]>,
}

impl RawTable {
    /// Open this table in `tx` for repeated use.
    pub fn open<'tx>(&self, tx: &'tx WriteTransaction) -> Result<OpenTable<'tx>> {
        Ok(OpenTable {
            table: tx
                .open_table(def(self.name))
                .map_err(|e| store_err("opening a table", e))?,
        })
    }
}

impl OpenTable<'_> {
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .table
            .get(key)
            .map_err(|e| store_err("reading", e))?
            .map(|v| v.value().to_vec()))
    }

    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.table
            .insert(key, value)
            .map_err(|e| store_err("writing", e))?;
        Ok(())
    }

    /// Remove `key`; returns its value if it existed.
    pub fn remove(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .table
            .remove(key)
            .map_err(|e| store_err("deleting", e))?
            .map(|v| v.value().to_vec()))
    }

    /// Remove and return every entry in `range`, in key order, at most `limit`.
    pub fn take_range(
        &mut self,
        range: (Bound<&[u8]>, Bound<&[u8]>),
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut keys = Vec::new();
        {
            let iter = self
                .table
                .range::<&[u8]>(range)
                .map_err(|e| store_err("scanning", e))?;
            for item in iter.take(limit) {
                let (k, v) = item.map_err(|e| store_err("scanning", e))?;
                keys.push((k.value().to_vec(), v.value().to_vec()));
            }
        }
        for (k, _) in &keys {
            self.table
                .remove(k.as_slice())
                .map_err(|e| store_err("deleting", e))?;
        }
        Ok(keys)
    }
}
