//! Acknowledgements: how an appender learns that its records are durable.
//!
//! The writer publishes one number, the durable LSN; a ticket is done when the durable LSN
//! reaches its last LSN. Waiters (blocked threads and async tasks alike) register a `Waker`
//! with their LSN, and only those a publication covers are woken: no thundering herd when many
//! appenders wait on different batches.
//!
//! Waking a thread costs several microseconds (more in a VM, where it is an inter-processor
//! interrupt), and a batch may cover hundreds of waiting threads. So the writer wakes only
//! [`WAKE_FANOUT`] blocked threads itself and each woken thread wakes up to `WAKE_FANOUT` more
//! before it returns: the wake-ups spread over all cores as a tree, and the writer goes back to
//! the disk at once. Async wakers are cheap (they enqueue a task) and a task may never be polled
//! again, so the writer wakes those directly.

use std::future::Future;
use std::io;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
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
    /// Blocked threads whose records are durable but that nobody has woken yet.
    to_wake: Vec<Waker>,
}

struct Waiter {
    lsn: Lsn,
    id: u64,
    waker: Waker,
    /// A blocked thread, which will wake others in turn (see the module docs).
    thread: bool,
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

thread_local! {
    /// This thread's waker for [`Ticket::wait`], built once.
    static THREAD_WAKER: Waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
}

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
        let mut woken = Vec::new();
        {
            let mut state = self.state.lock();
            if lsn <= state.durable {
                return;
            }
            state.durable = lsn;
            self.durable.store(lsn, Ordering::Release);
            let ProgressState {
                waiters, to_wake, ..
            } = &mut *state;
            waiters.retain_mut(|w| {
                if w.lsn > lsn {
                    return true;
                }
                let waker = std::mem::replace(&mut w.waker, Waker::noop().clone());
                if w.thread {
                    to_wake.push(waker)
                } else {
                    woken.push(waker)
                }
                false
            });
            self.take_to_wake(&mut state, &mut woken);
        }
        // Wake outside the lock so that woken threads do not immediately block on it.
        for waker in woken {
            waker.wake();
        }
    }

    /// Moves up to [`WAKE_FANOUT`] blocked threads from `to_wake` into `woken`.
    fn take_to_wake(&self, state: &mut ProgressState, woken: &mut Vec<Waker>) {
        let keep = state.to_wake.len().saturating_sub(WAKE_FANOUT);
        woken.extend(state.to_wake.drain(keep..));
        self.to_wake_len
            .store(state.to_wake.len(), Ordering::Release);
    }

    /// Called by a thread that found its ticket done: wakes the next few blocked threads.
    fn help_wake(&self) {
        if self.to_wake_len.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut woken = Vec::with_capacity(WAKE_FANOUT);
        self.take_to_wake(&mut self.state.lock(), &mut woken);
        for waker in woken {
            waker.wake();
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
        for waker in waiters.into_iter().map(|w| w.waker).chain(to_wake) {
            waker.wake();
        }
    }

    pub(crate) fn is_failed(&self) -> bool {
        self.state.lock().failure.is_some()
    }

    /// The outcome for a ticket covering `lsns`, or `Pending` after registering `waker`
    /// (replacing an earlier registration with the same `id`).
    fn poll(
        &self,
        lsns: &RangeInclusive<Lsn>,
        id: u64,
        thread: bool,
        waker: impl FnOnce() -> Waker,
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
            Some(existing) => existing.waker = waker(),
            None => state.waiters.push(Waiter {
                lsn: *lsns.end(),
                id,
                waker: waker(),
                thread,
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

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
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
        loop {
            match self
                .progress
                .poll(&self.lsns, id, true, || THREAD_WAKER.with(Waker::clone))
            {
                Poll::Ready(result) => {
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
        let poll = this
            .ticket
            .progress
            .poll(&this.ticket.lsns, this.id, false, || cx.waker().clone());
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
