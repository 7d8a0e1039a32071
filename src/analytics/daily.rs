//! The daily aggregates analytics needs, recorded by the relay at its accept point:
//! per network and UTC day, the messages and files sent and who was active (with the
//! platform, client version and security group of the device they used).
//!
//! Recording is an in-memory increment (a thread's own shard, so the relay's worker
//! threads do not contend) — the relay hot path never writes to the store for it.
//! [`run`] flushes the counts to the store every [`FLUSH_EVERY`], and the server
//! flushes once more on shutdown. The counts go to the store's `counters` table
//! (`analytics:{network}:{day}:messages`, `…:files`) and each day's active users to
//! `meta` (`analytics:{network}:{day}:u:{user}` → their device's platform, version
//! and group), so a week's or month's active users are counted once each. Readers
//! ([`stored`]) add what is not flushed yet ([`unflushed`]), so the report is current.

use crate::directory::device::Device;
use crate::directory::user::User;
use crate::error::Result;
use crate::store::{self, Store, schema};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::ops::{Bound, ControlFlow};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How often the counts are written to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(30);

const SHARDS: usize = 16;
const PREFIX: &str = "analytics:";

/// A day: days since 1970-01-01 (UTC).
pub type Day = u32;

/// The UTC day of a Unix time in milliseconds.
pub fn day_of_ms(ms: u64) -> Day {
    (ms / 86_400_000) as Day
}

/// What an active user used that day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Activity {
    pub platform: String,
    pub client_version: String,
    pub group_id: String,
}

/// One network's counts for one day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayCounts {
    pub messages: u64,
    pub files: u64,
    /// User id → what they used (the first device seen that day).
    pub active: HashMap<String, Activity>,
}

impl DayCounts {
    fn merge(&mut self, other: DayCounts) {
        self.messages += other.messages;
        self.files += other.files;
        for (u, a) in other.active {
            self.active.entry(u).or_insert(a);
        }
    }
}

/// Day → network → counts.
type Pending = HashMap<Day, HashMap<String, DayCounts>>;

struct Shards([Mutex<Pending>; SHARDS]);

static SHARD_STATE: std::sync::LazyLock<Shards> =
    std::sync::LazyLock::new(|| Shards(std::array::from_fn(|_| Mutex::new(Pending::new()))));
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

fn lock(i: usize) -> std::sync::MutexGuard<'static, Pending> {
    SHARD_STATE.0[i]
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Does an envelope of this kind count as a message sent (text, file, location)?
pub fn counts_as_message(kind: crate::relay::frame::Kind) -> bool {
    use crate::relay::frame::Kind as K;
    matches!(kind, K::Text | K::File | K::Location)
}

/// The relay accepted a new envelope of `kind` with `files` attachments from `user`
/// on `device` (None if not known): one in-memory increment, no store access.
pub fn sent(user: &User, device: Option<&Device>, kind: crate::relay::frame::Kind, files: usize) {
    record(
        crate::relay::now_ms(),
        user,
        device,
        u64::from(counts_as_message(kind)),
        files as u64,
    );
}

/// `user` was active on `device` (connected): marks them active today.
pub fn active(user: &User, device: &Device) {
    record(crate::relay::now_ms(), user, Some(device), 0, 0);
}

fn record(now_ms: u64, user: &User, device: Option<&Device>, messages: u64, files: u64) {
    let day = day_of_ms(now_ms);
    let shard = MY_SHARD.with(|s| *s);
    let mut p = lock(shard);
    let nets = p.entry(day).or_default();
    let counts = match nets.get_mut(user.network_id.as_str()) {
        Some(c) => c,
        None => nets.entry(user.network_id.clone()).or_default(),
    };
    counts.messages += messages;
    counts.files += files;
    if !counts.active.contains_key(user.id.as_str()) {
        let (platform, client_version) = device
            .map(|d| (d.platform.clone(), d.client_version.clone()))
            .unwrap_or_default();
        counts.active.insert(
            user.id.clone(),
            Activity {
                platform,
                client_version,
                group_id: user.group_id.clone(),
            },
        );
    }
}

fn take_all() -> Pending {
    let mut all = Pending::new();
    for i in 0..SHARDS {
        let p = std::mem::take(&mut *lock(i));
        merge_into(&mut all, p);
    }
    all
}

fn merge_into(all: &mut Pending, p: Pending) {
    for (day, nets) in p {
        let d = all.entry(day).or_default();
        for (net, c) in nets {
            d.entry(net).or_default().merge(c);
        }
    }
}

fn day_key(network_id: &str, day: Day) -> String {
    format!("{PREFIX}{network_id}:{day:06}:")
}

fn counter_name(network_id: &str, day: Day, what: &str) -> String {
    format!("{}{what}", day_key(network_id, day))
}

/// Write what was recorded since the last flush to the store. On failure the counts
/// are kept for the next flush.
pub async fn flush(store: &Store) -> Result<()> {
    let all = take_all();
    if all.is_empty() {
        return Ok(());
    }
    let keep = all.clone();
    let written = store
        .write(move |tx| {
            for (day, nets) in &all {
                for (net, c) in nets {
                    if c.messages > 0 {
                        store::counter_add(
                            tx,
                            &counter_name(net, *day, "messages"),
                            c.messages as i64,
                        )?;
                    }
                    if c.files > 0 {
                        store::counter_add(tx, &counter_name(net, *day, "files"), c.files as i64)?;
                    }
                    for (user, a) in &c.active {
                        let name = format!("{}u:{user}", day_key(net, *day));
                        if store::meta_get(tx, &name)?.is_none() {
                            let v = serde_json::to_vec(a).expect("activity serializes");
                            store::meta_put(tx, &name, &v)?;
                        }
                    }
                }
            }
            Ok(())
        })
        .await;
    if written.is_err() {
        let mut p = lock(0);
        merge_into(&mut p, keep);
    }
    written
}

/// Flush every [`FLUSH_EVERY`] until the task is stopped.
pub async fn run(store: Store) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = flush(&store).await {
            tracing::warn!(error = %e, "analytics: cannot write the daily counts; kept for the next try");
        }
    }
}

/// What is recorded for `network_id` but not flushed yet, by day in `[from, to]`.
pub fn unflushed(network_id: &str, from: Day, to: Day) -> BTreeMap<Day, DayCounts> {
    let mut out: BTreeMap<Day, DayCounts> = BTreeMap::new();
    for i in 0..SHARDS {
        let p = lock(i);
        for (day, nets) in p.iter() {
            if (from..=to).contains(day)
                && let Some(c) = nets.get(network_id)
            {
                out.entry(*day).or_default().merge(c.clone());
            }
        }
    }
    out
}

/// The flushed counts of `network_id` by day in `[from, to]`.
pub fn stored<'a>(
    tx: impl Into<store::Tx<'a>>,
    network_id: &str,
    from: Day,
    to: Day,
) -> Result<BTreeMap<Day, DayCounts>> {
    let tx = tx.into();
    let mut out: BTreeMap<Day, DayCounts> = BTreeMap::new();
    let prefix = format!("{PREFIX}{network_id}:");
    for (name, v) in store::counters_with_prefix(tx, &prefix)? {
        let rest = &name[prefix.len()..];
        let Some((day, what)) = rest.split_once(':') else {
            continue;
        };
        let Ok(day) = day.parse::<Day>() else {
            continue;
        };
        if !(from..=to).contains(&day) {
            continue;
        }
        let c = out.entry(day).or_default();
        match what {
            "messages" => c.messages += v.max(0) as u64,
            "files" => c.files += v.max(0) as u64,
            _ => {}
        }
    }
    let lo = day_key(network_id, from);
    let hi = day_key(network_id, to.saturating_add(1));
    tx.scan_raw(
        schema::META,
        (
            Bound::Included(lo.as_bytes()),
            Bound::Excluded(hi.as_bytes()),
        ),
        false,
        |k, v| {
            let k = String::from_utf8_lossy(k);
            let rest = &k[prefix.len()..];
            if let Some((day, user)) = rest
                .split_once(":u:")
                .and_then(|(d, u)| Some((d.parse::<Day>().ok()?, u)))
                && let Ok(a) = serde_json::from_slice::<Activity>(v)
            {
                out.entry(day)
                    .or_default()
                    .active
                    .entry(user.to_string())
                    .or_insert(a);
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(out)
}

/// Stored and unflushed counts together.
pub fn counts<'a>(
    tx: impl Into<store::Tx<'a>>,
    network_id: &str,
    from: Day,
    to: Day,
) -> Result<BTreeMap<Day, DayCounts>> {
    let mut all = stored(tx, network_id, from, to)?;
    for (day, c) in unflushed(network_id, from, to) {
        all.entry(day).or_default().merge(c);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::directory::user::UserKind;

    fn device(platform: &str) -> Device {
        serde_json::from_value(serde_json::json!({
            "id": "d1", "user_id": "u", "name": "n", "platform": platform,
            "client_version": "1.2.3", "status": "active",
            "created_at": "2026-01-01T00:00:00Z", "last_seen_at": null
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn counts_survive_a_flush_and_users_count_once_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.redb"), &StoreConfig::default()).unwrap();
        // A network id no other test uses (the counters are process-wide).
        let mut u = User::new(
            "99000001",
            UserKind::User,
            "a@example.test".into(),
            "g1".into(),
        );
        u.id = "user-a".into();
        let d = device("linux");
        let now = crate::relay::now_ms();
        let today = day_of_ms(now);
        record(now, &u, Some(&d), 1, 2);
        record(now, &u, Some(&d), 1, 0);
        let before = store
            .read(|tx| counts(tx, "99000001", today, today))
            .unwrap();
        assert_eq!(before[&today].messages, 2);
        assert_eq!(before[&today].files, 2);
        flush(&store).await.unwrap();
        record(now, &u, Some(&d), 1, 0);
        let after = store
            .read(|tx| counts(tx, "99000001", today, today))
            .unwrap();
        assert_eq!(after[&today].messages, 3);
        assert_eq!(after[&today].active.len(), 1);
        assert_eq!(after[&today].active["user-a"].platform, "linux");
        flush(&store).await.unwrap();
        let stored_only = store
            .read(|tx| stored(tx, "99000001", today, today))
            .unwrap();
        assert_eq!(stored_only[&today].messages, 3);
        store.close();
    }
}
