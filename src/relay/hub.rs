//! The hub: which devices are connected right now, and the live push to them.
//!
//! Each open stream registers its device and gets a [`Slot`]: a bounded queue and two
//! signals, in one small allocation (idle streams are most streams). When an item is
//! durably committed, the committer thread hands it to the hub, which offers it to
//! every connected recipient without waiting. The mailbox stays the source of
//! truth: a device whose queue is full is marked *lagged* and re-reads its mailbox,
//! so a slow device never slows the relay and never misses anything.

use super::local::{Groups, Local};
use crate::metrics;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Items a connection may have queued before it is marked lagged.
const QUEUE: usize = 512;

/// An item's frame rendered once for all recipients, before its seq is known:
/// `p0 ‖ seq ‖ p1 ‖ sealed key ‖ p2`.
#[derive(Debug)]
pub struct Rendered {
    p0: String,
    p1: String,
    p2: String,
}

impl Rendered {
    /// Split `frame_json`, rendered with seq 0 and [`SEALED_PLACEHOLDER`] as the sealed
    /// key. The seq is the first `"seq":0` of every frame that carries one.
    pub fn new(frame_json: String) -> Rendered {
        let (p0, rest) = match frame_json.split_once("\"seq\":0") {
            Some((a, b)) => (format!("{a}\"seq\":"), b.to_string()),
            None => (String::new(), frame_json.clone()),
        };
        let (p1, p2) = match rest.split_once(SEALED_PLACEHOLDER) {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => (rest, String::new()),
        };
        Rendered { p0, p1, p2 }
    }
}

/// A committed item ready to push: its seq, its rendered frame and its recipients.
#[derive(Debug)]
pub struct Prepared {
    pub seq: u64,
    pub server_time: u64,
    frame: Rendered,
    /// Each recipient device and its sealed key (empty for events).
    pub recipients: Vec<(String, String)>,
}

impl Prepared {
    pub fn new(
        seq: u64,
        server_time: u64,
        frame: Rendered,
        recipients: Vec<(String, String)>,
    ) -> Prepared {
        Prepared {
            seq,
            server_time,
            frame,
            recipients,
        }
    }

    /// The frame for recipient number `i`.
    pub fn frame_for(&self, i: usize) -> String {
        let sealed = self
            .recipients
            .get(i)
            .map(|(_, s)| s.as_str())
            .unwrap_or("");
        let f = &self.frame;
        let mut s = String::with_capacity(f.p0.len() + 20 + f.p1.len() + sealed.len() + f.p2.len());
        s.push_str(&f.p0);
        if !f.p0.is_empty() {
            s.push_str(&self.seq.to_string());
        }
        s.push_str(&f.p1);
        s.push_str(sealed);
        s.push_str(&f.p2);
        s
    }
}

/// Stands in for the sealed key while a delivery frame is rendered once for everyone.
/// It cannot occur elsewhere in a frame: ids are restricted and payloads are base64.
pub const SEALED_PLACEHOLDER: &str = "@@sealed@@";

/// One live push: an item and which of its recipients this device is.
pub struct Push {
    pub item: Arc<Prepared>,
    pub index: u32,
}

/// What the hub and one open stream share.
#[derive(Default)]
pub struct Slot {
    /// Live pushes not yet taken by the stream (at most [`QUEUE`]).
    queue: Mutex<VecDeque<Push>>,
    /// Rings when the queue gets an item.
    pushed: Notify,
    /// Set when a push found the queue full: the stream re-reads its mailbox.
    pub lagged: AtomicBool,
    /// Rings when the stream must re-check its account, or whether it is still the
    /// device's current stream.
    pub recheck: Notify,
}

/// A queue that held more than this many items is freed once empty again, so a
/// burst's memory does not stay with an idle stream.
const KEEP_QUEUE: usize = 16;

impl Slot {
    /// Queue `push`, or mark the stream lagged if its queue is full (never blocks).
    fn offer(&self, push: Push) {
        let mut queue = lock(&self.queue);
        if queue.len() >= QUEUE {
            drop(queue);
            self.lagged.store(true, Ordering::Release);
        } else {
            queue.push_back(push);
            drop(queue);
            self.pushed.notify_one();
        }
    }

    /// The next live push, once there is one.
    pub async fn next(&self) -> Push {
        loop {
            // Taken before looking, so a push in between is not missed (`notify_one`
            // keeps a permit when nobody waits yet).
            let pushed = self.pushed.notified();
            if let Some(p) = self.pop() {
                return p;
            }
            pushed.await;
        }
    }

    /// The next live push if one is queued already (never waits).
    pub fn pop(&self) -> Option<Push> {
        let mut queue = lock(&self.queue);
        let p = queue.pop_front();
        if queue.is_empty() && queue.capacity() > KEEP_QUEUE {
            *queue = VecDeque::new();
        }
        p
    }
}

struct Conn {
    id: u64,
    user_id: String,
    slot: Arc<Slot>,
    /// The dispatcher of the thread the stream runs on, if it has one.
    local: Option<Local>,
}

/// What a stream gets when it registers.
pub struct Registration {
    pub id: u64,
    pub slot: Arc<Slot>,
    transport: &'static str,
}

#[derive(Default)]
pub struct Hub {
    conns: Mutex<HashMap<String, Conn>>,
    next_id: AtomicU64,
    /// Set once the appliance is stopping.
    closing: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    /// Register `device_id`'s stream. A previous stream of the same device is told to
    /// re-check, finds it is no longer current, and closes.
    pub fn register(
        &self,
        device_id: &str,
        user_id: &str,
        transport: &'static str,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = Arc::new(Slot::default());
        let old = lock(&self.conns).insert(
            device_id.to_string(),
            Conn {
                id,
                user_id: user_id.to_string(),
                slot: slot.clone(),
                local: Local::current(),
            },
        );
        if let Some(old) = old {
            old.slot.recheck.notify_one();
        }
        metrics::relay::CONNECTED
            .with_label_values(&[transport])
            .inc();
        Registration {
            id,
            slot,
            transport,
        }
    }

    /// Whether registration `id` is still the device's current stream.
    pub fn is_current(&self, device_id: &str, id: u64) -> bool {
        lock(&self.conns).get(device_id).is_some_and(|c| c.id == id)
    }

    pub fn unregister(&self, device_id: &str, reg: &Registration) {
        let mut conns = lock(&self.conns);
        if conns.get(device_id).is_some_and(|c| c.id == reg.id) {
            conns.remove(device_id);
        }
        metrics::relay::CONNECTED
            .with_label_values(&[reg.transport])
            .dec();
    }

    /// Offer committed items, in order, to their connected recipients (never blocks).
    /// Each stream's offers are made on its own thread, all of a thread's in one go
    /// ([`Local`]).
    pub fn push_all(&self, items: impl IntoIterator<Item = Arc<Prepared>>) {
        let mut groups: Groups<(Arc<Slot>, Push)> = Groups::default();
        {
            let conns = lock(&self.conns);
            for item in items {
                for (i, (device, _)) in item.recipients.iter().enumerate() {
                    if let Some(c) = conns.get(device) {
                        let push = Push {
                            item: item.clone(),
                            index: i as u32,
                        };
                        if let Some((slot, push)) =
                            groups.add(c.local.as_ref(), (c.slot.clone(), push))
                        {
                            slot.offer(push);
                        }
                    }
                }
            }
        }
        groups.dispatch(|(slot, push)| slot.offer(push));
    }

    /// Ask the streams of `user_id` to re-check their account (suspension, revocation).
    pub fn recheck_user(&self, user_id: &str) {
        for c in lock(&self.conns).values().filter(|c| c.user_id == user_id) {
            c.slot.recheck.notify_one();
        }
    }

    /// The appliance is stopping: every stream stops reading, answers the sends it
    /// has in flight and closes; a stream that registers from now on closes as soon
    /// as it is ready.
    pub fn close_all(&self) {
        self.closing.store(true, Ordering::Release);
        self.recheck_all();
    }

    /// Whether the appliance is stopping ([`Hub::close_all`]).
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Ask every stream to re-check (policy or directory changed).
    pub fn recheck_all(&self) {
        for c in lock(&self.conns).values() {
            c.slot.recheck.notify_one();
        }
    }
}
