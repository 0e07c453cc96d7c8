//! Acknowledgements: how an appender learns that its records are durable.
//!
//! The writer publishes one number, the durable LSN; a ticket is done when the durable LSN
//! reaches its last LSN. Waiters (blocked threads and async tasks alike) register with the LSN
//! they need, and only those a publication covers are woken: no thundering herd when many
//! appenders wait on different batches.
//!
//! Waking a thread costs several microseconds (more in a VM, where it is an inter-processor
//! interrupt), and a batch may cover hundreds of waiting threads. So the writer wakes only
//! [`WAKE_FANOUT`] blocked threads itself and each woken thread wakes up to `WAKE_FANOUT` more
//! before it returns: the wake-ups spread over all cores as a tree, and the writer goes back to
//! the disk at once. A thread that leaves early (spurious wake-up) also helps once, and its
//! queued wake-up is skipped, so the tree cannot die out while threads still sleep. Async wakers
//! are cheap (they enqueue a task) and a task may never be polled again, so the writer wakes
//! those directly.

use std::future::Future;
use std::io;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread::{self, Thread};

use parking_lot::Mutex;

use crate::{Error, Lsn};

/// The durable watermark and everyone waiting on it.
pub(crate) struct Progress {
    durable: AtomicU64,
    /// Length of `ProgressState::to_wake`, readable without the lock.
    to_wake_len: AtomicUsize,
    state: Mutex<ProgressState>,
}

struct ProgressState {
    durable: Lsn,
    failure: Option<Failure>,
    stopped: bool,
    waiters: Vec<Waiter>,
    /// Blocked threads (and the id of the wait they were in) whose records are durable but
    /// that nobody has woken yet.
    to_wake: Vec<(Arc<ThreadSlot>, u64)>,
}

struct Waiter {
    lsn: Lsn,
    id: u64,
    target: Target,
}

enum Target {
    /// A thread blocked in [`Ticket::wait`]; it wakes others in turn (see the module docs).
    Thread(Arc<ThreadSlot>),
    /// An async task.
    Task(Waker),
}

/// One per thread, reused by all its waits.
struct ThreadSlot {
    thread: Thread,
    /// Id of the wait the thread is blocked in, 0 when it is not waiting. A queued wake-up for
    /// an older wait is stale: the thread already left (woken spuriously) and helped then.
    waiting_for: AtomicU64,
}

thread_local! {
    static THREAD_SLOT: Arc<ThreadSlot> =
        Arc::new(ThreadSlot { thread: thread::current(), waiting_for: AtomicU64::new(0) });
}

/// The first write or sync failure; it poisons the log.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// Tickets with LSNs up to here were in the failing batch and get the I/O error; later
    /// ones get [`Error::Poisoned`].
    pub(crate) batch_end: Lsn,
    pub(crate) op: &'static str,
    pub(crate) path: PathBuf,
    pub(crate) kind: io::ErrorKind,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(error: &Error, batch_end: Lsn) -> Failure {
        match error {
            Error::Io { op, path, source } => Failure {
                batch_end,
                op,
                path: path.clone(),
                kind: source.kind(),
                message: source.to_string(),
            },
            other => Failure {
                batch_end,
                op: "write",
                path: PathBuf::new(),
                kind: io::ErrorKind::Other,
                message: other.to_string(),
            },
        }
    }

    /// A copy of the I/O error for one more waiter (`io::Error` is not `Clone`).
    pub(crate) fn to_error(&self) -> Error {
        Error::io(
            self.op,
            self.path.clone(),
            io::Error::new(self.kind, self.message.clone()),
        )
    }
}

static NEXT_WAITER_ID: AtomicU64 = AtomicU64::new(1);

/// How many blocked threads each waker (the writer, then every woken thread) wakes.
const WAKE_FANOUT: usize = 2;

impl Progress {
    pub(crate) fn new(durable: Lsn) -> Progress {
        Progress {
            durable: AtomicU64::new(durable),
            to_wake_len: AtomicUsize::new(0),
            state: Mutex::new(ProgressState {
                durable,
                failure: None,
                stopped: false,
                waiters: Vec::new(),
                to_wake: Vec::new(),
            }),
        }
    }

    /// Every LSN up to this one is durable (at the configured level).
    pub(crate) fn durable(&self) -> Lsn {
        self.durable.load(Ordering::Acquire)
    }

    /// Advances the durable LSN to `lsn` and wakes (directly or through the tree) the waiters
    /// it covers.
    pub(crate) fn publish(&self, lsn: Lsn) {
        let mut tasks = Vec::new();
        let threads = {
            let mut state = self.state.lock();
            if lsn <= state.durable {
                return;
            }
            state.durable = lsn;
            self.durable.store(lsn, Ordering::Release);
            let ProgressState {
                waiters, to_wake, ..
            } = &mut *state;
            let mut i = 0;
            while i < waiters.len() {
                if waiters[i].lsn > lsn {
                    i += 1;
                    continue;
                }
                let waiter = waiters.swap_remove(i);
                match waiter.target {
                    Target::Thread(slot) => to_wake.push((slot, waiter.id)),
                    Target::Task(waker) => tasks.push(waker),
                }
            }
            self.take_to_wake(&mut state)
        };
        // Wake outside the lock so that woken threads do not immediately block on it.
        for slot in threads {
            slot.thread.unpark();
        }
        for waker in tasks {
            waker.wake();
        }
    }

    /// Takes up to [`WAKE_FANOUT`] threads still blocked in the wait they were queued for.
    fn take_to_wake(&self, state: &mut ProgressState) -> Vec<Arc<ThreadSlot>> {
        let mut woken = Vec::with_capacity(WAKE_FANOUT);
        while woken.len() < WAKE_FANOUT {
            let Some((slot, id)) = state.to_wake.pop() else {
                break;
            };
            if slot.waiting_for.load(Ordering::Acquire) == id {
                woken.push(slot);
            }
        }
        self.to_wake_len
            .store(state.to_wake.len(), Ordering::Release);
        woken
    }

    /// Called by a thread whose ticket is done: wakes the next few blocked threads. Every
    /// thread that leaves `wait` calls this once, and each queued thread it wakes will call it
    /// in turn, so every queued thread is woken even if some leave early (spurious wake-ups).
    fn help_wake(&self) {
        if self.to_wake_len.load(Ordering::Acquire) == 0 {
            return;
        }
        let threads = self.take_to_wake(&mut self.state.lock());
        for slot in threads {
            slot.thread.unpark();
        }
    }

    /// Records the first failure and wakes every waiter: none of them can succeed any more.
    pub(crate) fn fail(&self, failure: Failure) {
        self.wake_all(|state| {
            state.failure.get_or_insert(failure);
        });
    }

    /// The writer is gone: wake every waiter.
    pub(crate) fn stop(&self) {
        self.wake_all(|state| state.stopped = true);
    }

    fn wake_all(&self, update: impl FnOnce(&mut ProgressState)) {
        let (waiters, to_wake) = {
            let mut state = self.state.lock();
            update(&mut state);
            self.to_wake_len.store(0, Ordering::Release);
            (
                std::mem::take(&mut state.waiters),
                std::mem::take(&mut state.to_wake),
            )
        };
        for waiter in waiters {
            match waiter.target {
                Target::Thread(slot) => slot.thread.unpark(),
                Target::Task(waker) => waker.wake(),
            }
        }
        for (slot, _) in to_wake {
            slot.thread.unpark();
        }
    }

    pub(crate) fn is_failed(&self) -> bool {
        self.state.lock().failure.is_some()
    }

    /// The outcome for a ticket covering `lsns`, or `Pending` after registering `target`
    /// (replacing an earlier registration with the same `id`).
    fn poll(
        &self,
        lsns: &RangeInclusive<Lsn>,
        id: u64,
        target: impl FnOnce() -> Target,
    ) -> Poll<Result<RangeInclusive<Lsn>, Error>> {
        if self.durable() >= *lsns.end() {
            return Poll::Ready(Ok(lsns.clone()));
        }
        let mut state = self.state.lock();
        if state.durable >= *lsns.end() {
            return Poll::Ready(Ok(lsns.clone()));
        }
        if let Some(failure) = &state.failure {
            let error = if *lsns.start() <= failure.batch_end {
                failure.to_error()
            } else {
                Error::Poisoned
            };
            return Poll::Ready(Err(error));
        }
        if state.stopped {
            return Poll::Ready(Err(Error::Closed));
        }
        match state.waiters.iter_mut().find(|w| w.id == id) {
            Some(existing) => existing.target = target(),
            None => state.waiters.push(Waiter {
                lsn: *lsns.end(),
                id,
                target: target(),
            }),
        }
        Poll::Pending
    }

    fn forget(&self, id: u64) {
        self.state.lock().waiters.retain(|w| w.id != id);
    }
}

/// A submitted batch: its LSNs are known at once, its durability later.
#[must_use = "a ticket does nothing unless waited on; dropping it does not cancel the append"]
pub struct Ticket {
    progress: Arc<Progress>,
    lsns: RangeInclusive<Lsn>,
    acknowledged: bool,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("lsns", &self.lsns).finish()
    }
}

impl Ticket {
    pub(crate) fn new(
        progress: Arc<Progress>,
        lsns: RangeInclusive<Lsn>,
        acknowledged: bool,
    ) -> Ticket {
        Ticket {
            progress,
            lsns,
            acknowledged,
        }
    }

    /// The LSNs assigned to the batch, first to last.
    pub fn lsns(&self) -> RangeInclusive<Lsn> {
        self.lsns.clone()
    }

    /// Blocks until the batch is durable at the log's durability level.
    ///
    /// # Errors
    /// The I/O error if the batch's own write or fdatasync failed, [`Error::Poisoned`] if an
    /// earlier one did, [`Error::Closed`] if the log shut down first.
    pub fn wait(self) -> Result<RangeInclusive<Lsn>, Error> {
        if self.acknowledged {
            return Ok(self.lsns);
        }
        let id = NEXT_WAITER_ID.fetch_add(1, Ordering::Relaxed);
        let slot = THREAD_SLOT.with(Arc::clone);
        slot.waiting_for.store(id, Ordering::Release);
        loop {
            match self
                .progress
                .poll(&self.lsns, id, || Target::Thread(slot.clone()))
            {
                Poll::Ready(result) => {
                    slot.waiting_for.store(0, Ordering::Release);
                    self.progress.help_wake();
                    return result;
                }
                // A spurious unpark just polls again.
                Poll::Pending => thread::park(),
            }
        }
    }

    /// Waits without blocking a thread; works with any executor (no runtime is required).
    ///
    /// # Errors
    /// As [`Ticket::wait`].
    pub fn wait_async(self) -> WaitFuture {
        WaitFuture {
            ticket: self,
            id: NEXT_WAITER_ID.fetch_add(1, Ordering::Relaxed),
            registered: false,
        }
    }
}

/// The future returned by [`Ticket::wait_async`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct WaitFuture {
    ticket: Ticket,
    id: u64,
    registered: bool,
}

impl Future for WaitFuture {
    type Output = Result<RangeInclusive<Lsn>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.ticket.acknowledged {
            return Poll::Ready(Ok(this.ticket.lsns.clone()));
        }
        let poll = this.ticket.progress.poll(&this.ticket.lsns, this.id, || {
            Target::Task(cx.waker().clone())
        });
        this.registered = poll.is_pending();
        poll
    }
}

impl Drop for WaitFuture {
    fn drop(&mut self) {
        if self.registered {
            self.ticket.progress.forget(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_blocked_thread_is_woken_despite_spurious_wakeups() {
        let progress = Arc::new(Progress::new(0));
        for round in 0..20u64 {
            let base = round * 24;
            let (done, finished) = mpsc::channel();
            let waiters: Vec<_> = (1..=24u64)
                .map(|i| {
                    let (progress, done) = (progress.clone(), done.clone());
                    thread::spawn(move || {
                        let lsn = base + i;
                        let result = Ticket::new(progress, lsn..=lsn, false).wait();
                        done.send(result.map(|r| *r.end())).unwrap();
                    })
                })
                .collect();
            let threads: Vec<Thread> = waiters.iter().map(|h| h.thread().clone()).collect();
            // Spurious unparks while the durable LSN advances in steps, so that some threads
            // leave before their queued wake-up is taken (stale entries).
            for step in 1..=6u64 {
                for (i, t) in threads.iter().enumerate() {
                    if (i as u64 + step + round).is_multiple_of(3) {
                        t.unpark();
                    }
                }
                progress.publish(base + step * 4);
                thread::sleep(Duration::from_micros(200));
            }
            let mut lsns: Vec<u64> = (0..24)
                .map(|_| {
                    finished
                        .recv_timeout(Duration::from_secs(60))
                        .expect("a waiter was never woken")
                        .unwrap()
                })
                .collect();
            lsns.sort_unstable();
            assert_eq!(lsns, (base + 1..=base + 24).collect::<Vec<_>>());
            for h in waiters {
                h.join().unwrap();
            }
        }
    }

    #[test]
    fn queued_wake_ups_of_threads_that_already_left_are_skipped() {
        let progress = Progress::new(0);
        let slots: Vec<Arc<ThreadSlot>> = (1..=6u64)
            .map(|id| {
                Arc::new(ThreadSlot {
                    thread: thread::current(),
                    waiting_for: AtomicU64::new(id),
                })
            })
            .collect();
        for (i, slot) in slots.iter().enumerate() {
            let lsn = i as u64 + 1;
            assert!(
                progress
                    .poll(&(lsn..=lsn), lsn, || Target::Thread(slot.clone()))
                    .is_pending()
            );
        }
        // Four of the six leave on their own (as after a spurious wake-up) before being woken.
        for slot in &slots[1..5] {
            slot.waiting_for.store(0, Ordering::Release);
        }
        let mut state = progress.state.lock();
        state.durable = 6;
        let waiters = std::mem::take(&mut state.waiters);
        state.to_wake = waiters
            .into_iter()
            .map(|w| match w.target {
                Target::Thread(slot) => (slot, w.id),
                Target::Task(_) => unreachable!(),
            })
            .collect();
        // Only the two still waiting are taken: a stale entry must not use up a wake-up slot, or
        // the wake-up tree could die out with threads still asleep.
        let woken = progress.take_to_wake(&mut state);
        let ids: Vec<u64> = woken
            .iter()
            .map(|s| s.waiting_for.load(Ordering::Acquire))
            .collect();
        assert_eq!(ids, vec![6, 1]);
        assert!(state.to_wake.is_empty());
    }

    #[test]
    fn failures_reach_every_waiter_with_the_right_error() {
        let progress = Arc::new(Progress::new(4));
        let waiters: Vec<_> = [5u64, 6, 9]
            .into_iter()
            .map(|lsn| {
                let progress = progress.clone();
                thread::spawn(move || Ticket::new(progress, lsn..=lsn, false).wait())
            })
            .collect();
        thread::sleep(Duration::from_millis(20));
        let error = Error::io(
            "fdatasync",
            PathBuf::from("x.wal"),
            io::Error::other("boom"),
        );
        progress.fail(Failure::new(&error, 6));
        let results: Vec<_> = waiters.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(matches!(
            &results[0],
            Err(Error::Io {
                op: "fdatasync",
                ..
            })
        ));
        assert!(matches!(
            &results[1],
            Err(Error::Io {
                op: "fdatasync",
                ..
            })
        ));
        assert!(matches!(&results[2], Err(Error::Poisoned)));
        // Already durable tickets still succeed.
        assert_eq!(Ticket::new(progress, 3..=4, false).wait().unwrap(), 3..=4);
    }
}
