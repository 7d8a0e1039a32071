//! Work handed to the thread a stream runs on.
//!
//! Device streams run on the HTTPS workers' single-threaded runtimes; commits finish on
//! the committer thread and the relay's writer. Waking a stream's task from another
//! thread costs a system call each time (the runtime's driver is unparked through its
//! eventfd), and a commit wakes hundreds of streams: at 50,000 deliveries a second that
//! was 34,000 `write` calls a second. Instead, each worker thread runs one dispatcher
//! task; the committer groups a commit's live pushes and the writer groups its answers
//! by the thread of the stream they are for, and hands each thread its group in one
//! message. The dispatcher then wakes the streams from their own thread, which costs
//! no system call.
//!
//! A [`Local`] exists only for threads of current-thread runtimes, where a task stays on
//! the thread it was spawned on; elsewhere (the multi-threaded runtime, tests) work is
//! done where it is produced, exactly as before.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc;

/// Work for one thread.
pub type Task = Box<dyn FnOnce() + Send>;

/// The dispatcher of one worker thread.
#[derive(Clone)]
pub struct Local {
    id: u64,
    tx: mpsc::UnboundedSender<Task>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: RefCell<Option<Local>> = const { RefCell::new(None) };
}

impl Local {
    /// The dispatcher of the calling thread, started on first use; `None` unless called
    /// from inside a current-thread runtime.
    pub fn current() -> Option<Local> {
        let handle = Handle::try_current().ok()?;
        if handle.runtime_flavor() != RuntimeFlavor::CurrentThread {
            return None;
        }
        CURRENT.with(|cell| {
            let mut cell = cell.borrow_mut();
            if let Some(l) = cell.as_ref().filter(|l| !l.tx.is_closed()) {
                return Some(l.clone());
            }
            let (tx, mut rx) = mpsc::unbounded_channel::<Task>();
            handle.spawn(async move {
                while let Some(task) = rx.recv().await {
                    task();
                }
            });
            let l = Local {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                tx,
            };
            *cell = Some(l.clone());
            Some(l)
        })
    }

    /// Run `task` on this dispatcher's thread; if that thread's runtime has stopped,
    /// run it here and now.
    pub fn run(&self, task: Task) {
        if let Err(mpsc::error::SendError(task)) = self.tx.send(task) {
            task();
        }
    }
}

/// Work grouped by the thread it is for: `T`s for streams with a dispatcher are
/// gathered per dispatcher; the rest are handed back to be done at once.
pub struct Groups<T> {
    groups: Vec<(Local, Vec<T>)>,
}

impl<T> Default for Groups<T> {
    fn default() -> Groups<T> {
        Groups { groups: Vec::new() }
    }
}

impl<T: Send + 'static> Groups<T> {
    /// Add `item` for `local`'s thread, or return it when there is no dispatcher.
    pub fn add(&mut self, local: Option<&Local>, item: T) -> Option<T> {
        let Some(local) = local else {
            return Some(item);
        };
        // A handful of worker threads: a linear search is the fastest map.
        match self.groups.iter_mut().find(|(l, _)| l.id == local.id) {
            Some((_, items)) => items.push(item),
            None => self.groups.push((local.clone(), vec![item])),
        }
        None
    }

    /// Hand every group to its thread, where `each` is applied to its items in order.
    pub fn dispatch(self, each: fn(T)) {
        for (local, items) in self.groups {
            local.run(Box::new(move || items.into_iter().for_each(each)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::Mutex;

    #[test]
    fn no_dispatcher_outside_a_current_thread_runtime() {
        assert!(Local::current().is_none(), "no runtime at all");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        assert!(rt.block_on(async { Local::current() }).is_none());
    }

    #[test]
    fn work_runs_on_the_dispatchers_thread_in_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (local, thread) =
            rt.block_on(async { (Local::current().unwrap(), std::thread::current().id()) });
        let seen: Arc<Mutex<Vec<(u32, std::thread::ThreadId)>>> = Arc::default();
        let from_elsewhere = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut groups = Groups::default();
                for i in 0..3u32 {
                    assert!(groups.add(Some(&local), (i, seen.clone())).is_none());
                }
                assert!(
                    groups.add(None, (9, seen.clone())).is_some(),
                    "no dispatcher"
                );
                groups.dispatch(|(i, seen)| {
                    seen.lock().unwrap().push((i, std::thread::current().id()))
                });
            })
        };
        from_elsewhere.join().unwrap();
        rt.block_on(async {
            for _ in 0..100 {
                if seen.lock().unwrap().len() == 3 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        });
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, vec![(0, thread), (1, thread), (2, thread)]);
    }

    #[test]
    fn work_for_a_stopped_runtime_runs_where_it_is_handed_over() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let local = rt.block_on(async { Local::current().unwrap() });
        drop(rt);
        let ran = Arc::new(Mutex::new(false));
        let r = ran.clone();
        local.run(Box::new(move || *r.lock().unwrap() = true));
        assert!(*ran.lock().unwrap());
    }
}
