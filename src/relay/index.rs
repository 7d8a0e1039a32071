//! The mailbox index: for every device, the seqs of the entries waiting in its
//! mailbox, in memory.
//!
//! The durable mailbox (`relay_mailbox`, see [`super::mailbox`]) is keyed by
//! `(seq, device)`, so the entries a commit adds are appended at the end of the table
//! instead of being scattered over every device's range — the difference between a
//! few dirty pages per commit and one per entry. Finding one device's entries (its
//! backlog, its acks, its depth) is this index's job. It is read from the table when
//! the relay starts and then kept in step with the commits:
//!
//! - entries are added only after the commit that stored them (from the writer's
//!   commit hook, before anything is pushed live), so every seq listed here is durable;
//! - entries are removed after the commit that removed them, so for a moment the index
//!   may still list an entry that is gone. Readers therefore always check the table
//!   (a listed entry that is missing is skipped), and removals are idempotent.

use crate::error::Result;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Seqs waiting per device, each list in increasing order.
#[derive(Default)]
pub struct MailboxIndex {
    devices: Mutex<HashMap<Box<str>, VecDeque<u64>>>,
}

impl MailboxIndex {
    /// Build the index from every `(seq, device)` entry in the table, read in key
    /// (seq) order.
    pub fn load(entries: impl IntoIterator<Item = Result<(u64, String)>>) -> Result<MailboxIndex> {
        let mut map: HashMap<Box<str>, VecDeque<u64>> = HashMap::new();
        for e in entries {
            let (seq, device) = e?;
            map.entry(device.into_boxed_str())
                .or_default()
                .push_back(seq);
        }
        Ok(MailboxIndex {
            devices: Mutex::new(map),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, VecDeque<u64>>> {
        // A panic while holding the lock leaves consistent data (every change is one
        // push or pop), so a poisoned lock is still usable.
        self.devices.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record committed entries, in commit order (seqs grow with every call).
    pub fn add<'a>(&self, entries: impl IntoIterator<Item = (&'a str, u64)>) {
        let mut map = self.lock();
        for (device, seq) in entries {
            let list = match map.get_mut(device) {
                Some(l) => l,
                None => map.entry(device.into()).or_default(),
            };
            // Seqs arrive in increasing order; anything else is a duplicate.
            if list.back().is_none_or(|last| *last < seq) {
                list.push_back(seq);
            }
        }
    }

    /// The listed seqs of `device` that are ≤ `up_to`, oldest first.
    pub fn up_to(&self, device: &str, up_to: u64) -> Vec<u64> {
        let map = self.lock();
        map.get(device)
            .map(|l| l.iter().take_while(|s| **s <= up_to).copied().collect())
            .unwrap_or_default()
    }

    /// Up to `limit` listed seqs of `device` after `after`, oldest first.
    pub fn after(&self, device: &str, after: u64, limit: usize) -> Vec<u64> {
        let map = self.lock();
        let Some(l) = map.get(device) else {
            return Vec::new();
        };
        let start = l.partition_point(|s| *s <= after);
        l.range(start..).take(limit).copied().collect()
    }

    /// How many entries are listed for `device`.
    pub fn len(&self, device: &str) -> u64 {
        self.lock().get(device).map_or(0, |l| l.len() as u64)
    }

    /// Forget `device`'s entries with seq ≤ `up_to` (after the commit that removed them).
    pub fn remove_up_to(&self, device: &str, up_to: u64) {
        let mut map = self.lock();
        if let Some(l) = map.get_mut(device) {
            while l.front().is_some_and(|s| *s <= up_to) {
                l.pop_front();
            }
            if l.is_empty() {
                map.remove(device);
            }
        }
    }

    /// Forget single entries (purged ones), after the commit that removed them.
    pub fn remove<'a>(&self, entries: impl IntoIterator<Item = (&'a str, u64)>) {
        let mut map = self.lock();
        for (device, seq) in entries {
            if let Some(l) = map.get_mut(device) {
                if let Ok(i) = l.binary_search(&seq) {
                    l.remove(i);
                }
                if l.is_empty() {
                    map.remove(device);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_device_in_seq_order() {
        let ix = MailboxIndex::load([Ok((1, "a".to_string())), Ok((2, "b".to_string()))]).unwrap();
        ix.add([("a", 3), ("b", 3), ("a", 5), ("a", 5)]);
        assert_eq!(ix.after("a", 0, 10), vec![1, 3, 5]);
        assert_eq!(ix.after("a", 1, 1), vec![3]);
        assert_eq!(ix.up_to("a", 4), vec![1, 3]);
        assert_eq!(ix.len("b"), 2);
        ix.remove_up_to("a", 3);
        assert_eq!(ix.after("a", 0, 10), vec![5]);
        ix.remove([("b", 2), ("b", 9)]);
        assert_eq!(ix.after("b", 0, 10), vec![3]);
        ix.remove([("b", 3)]);
        assert_eq!(ix.len("b"), 0);
        assert!(ix.after("nobody", 0, 10).is_empty());
    }
}
