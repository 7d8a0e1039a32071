//! The mailbox index: for every device, the seqs of the items waiting for it, and
//! for every stored item, how many devices it still waits for — in memory.
//!
//! What waits for a device is durable in two small places (see [`super::mailbox`]):
//! the item itself (`relay_items`, which names its recipient devices and carries each
//! one's sealed key) and the device's acknowledgement mark (`relay_acked`: everything
//! up to that seq is done). A commit therefore writes one item row and a few
//! acknowledgement marks, instead of one row per recipient that each ack must delete
//! again. This index is what makes that layout fast to read: it is built from those
//! tables when the relay starts and then kept in step by the relay's writer, which is
//! the only part that changes it:
//!
//! - the writer computes a batch's effect against the index while applying it in a
//!   transaction (reading only), and applies that effect to the index after the commit,
//!   before anything is pushed live — so every seq listed here is durable;
//! - readers (a device's backlog and depth) may see an entry a moment after it is
//!   gone from the store, so they check the store and skip what is missing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    /// Seqs waiting per device, each list in increasing order.
    devices: HashMap<Box<str>, VecDeque<u64>>,
    /// Items still waiting for someone: seq → (devices it waits for, names blobs).
    items: HashMap<u64, (u32, bool)>,
}

/// Which items wait for which devices.
#[derive(Default)]
pub struct MailboxIndex {
    state: Mutex<State>,
}

impl MailboxIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every change below leaves the maps consistent between statements, so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record a stored item waiting for `devices`; items arrive in seq order.
    pub fn add_item<'a>(&self, seq: u64, devices: impl IntoIterator<Item = &'a str>, blobs: bool) {
        let mut st = self.lock();
        let mut n = 0u32;
        for device in devices {
            let list = match st.devices.get_mut(device) {
                Some(l) => l,
                None => st.devices.entry(device.into()).or_default(),
            };
            if list.back().is_none_or(|last| *last < seq) {
                list.push_back(seq);
                n += 1;
            }
        }
        if n > 0 {
            st.items.insert(seq, (n, blobs));
        }
    }

    /// The seqs waiting for `device` that are ≤ `up_to`, oldest first.
    pub fn up_to(&self, device: &str, up_to: u64) -> Vec<u64> {
        let st = self.lock();
        st.devices
            .get(device)
            .map(|l| l.iter().take_while(|s| **s <= up_to).copied().collect())
            .unwrap_or_default()
    }

    /// Up to `limit` seqs waiting for `device` after `after`, oldest first.
    pub fn after(&self, device: &str, after: u64, limit: usize) -> Vec<u64> {
        let st = self.lock();
        let Some(l) = st.devices.get(device) else {
            return Vec::new();
        };
        let start = l.partition_point(|s| *s <= after);
        l.range(start..).take(limit).copied().collect()
    }

    /// Whether item `seq` waits for `device`.
    pub fn waits(&self, device: &str, seq: u64) -> bool {
        let st = self.lock();
        st.devices
            .get(device)
            .is_some_and(|l| l.binary_search(&seq).is_ok())
    }

    /// How many items wait for `device`.
    pub fn len(&self, device: &str) -> u64 {
        self.lock()
            .devices
            .get(device)
            .map_or(0, |l| l.len() as u64)
    }

    /// How many devices item `seq` still waits for, and whether it names blobs.
    pub fn refs(&self, seq: u64) -> Option<(u32, bool)> {
        self.lock().items.get(&seq).copied()
    }

    /// `device` acknowledged everything up to `up_to` (after the commit that recorded
    /// it): its entries go, and items nobody else waits for are forgotten.
    pub fn ack(&self, device: &str, up_to: u64) {
        let mut st = self.lock();
        let mut done = Vec::new();
        if let Some(l) = st.devices.get_mut(device) {
            while l.front().is_some_and(|s| *s <= up_to) {
                done.extend(l.pop_front());
            }
            if l.is_empty() {
                st.devices.remove(device);
            }
        }
        for seq in done {
            if let Some((n, _)) = st.items.get_mut(&seq) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.items.remove(&seq);
                }
            }
        }
    }

    /// Forget a removed item (expired) and its entries for `devices`.
    pub fn remove_item<'a>(&self, seq: u64, devices: impl IntoIterator<Item = &'a str>) {
        let mut st = self.lock();
        for device in devices {
            if let Some(l) = st.devices.get_mut(device) {
                if let Ok(i) = l.binary_search(&seq) {
                    l.remove(i);
                }
                if l.is_empty() {
                    st.devices.remove(device);
                }
            }
        }
        st.items.remove(&seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_device_in_seq_order_and_counts_what_items_wait_for() {
        let ix = MailboxIndex::default();
        ix.add_item(1, ["a", "b"], false);
        ix.add_item(3, ["a"], true);
        ix.add_item(5, ["a", "b"], false);
        assert_eq!(ix.after("a", 0, 10), vec![1, 3, 5]);
        assert_eq!(ix.after("a", 1, 1), vec![3]);
        assert_eq!(ix.up_to("a", 4), vec![1, 3]);
        assert_eq!(ix.refs(1), Some((2, false)));
        ix.ack("a", 3);
        assert_eq!(ix.after("a", 0, 10), vec![5]);
        assert_eq!(ix.refs(1), Some((1, false)));
        assert_eq!(ix.refs(3), None, "nobody waits for 3 any more");
        ix.remove_item(5, ["a", "b"]);
        assert_eq!(ix.len("a"), 0);
        assert_eq!(ix.after("b", 0, 10), vec![1]);
        ix.ack("b", 9);
        assert_eq!(ix.refs(1), None);
        assert!(ix.after("nobody", 0, 10).is_empty());
    }
}
