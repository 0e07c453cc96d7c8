//! [`Wal`]: the public handle, the bounded queue, and the operations that do not append.

use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use parking_lot::{Condvar, Mutex};

use crate::frame::EncodedFrame;
use crate::reader::Replay;
use crate::recovery::{self, SegmentMeta};
use crate::segment::segment_name;
use crate::storage::{FsStorage, Storage};
use crate::ticket::{Failure, Progress, Ticket};
use crate::writer::{Item, Writer};
use crate::{Durability, Error, Lsn, WalConfig, WalStats};

/// State shared by the handle, the writer thread and the appenders.
pub(crate) struct Shared {
    pub(crate) config: WalConfig,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) queue: Mutex<Queue>,
    /// Signalled when the queue gains an item (or the log closes); the writer waits on it.
    pub(crate) work: Condvar,
    /// Signalled when queue space is freed; blocked appenders wait on it.
    pub(crate) space: Condvar,
    pub(crate) progress: Arc<Progress>,
    /// Oldest first; the last one is the active segment.
    pub(crate) segments: Mutex<Vec<SegmentMeta>>,
    pub(crate) active_bytes: AtomicU64,
    /// Number of items in the queue; lets the writer poll for work without taking the lock.
    pub(crate) queued_items: AtomicUsize,
    pub(crate) counters: Counters,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) fsyncs: AtomicU64,
    pub(crate) dir_syncs: AtomicU64,
    pub(crate) records_written: AtomicU64,
    pub(crate) records_synced: AtomicU64,
}

pub(crate) struct Queue {
    pub(crate) items: Vec<Item>,
    /// Bytes of frames admitted and not yet written.
    pub(crate) bytes: u64,
    pub(crate) next_lsn: Lsn,
    /// Admission tickets, so that blocked appenders are admitted first come, first served and a
    /// large record cannot be starved by a stream of small ones.
    pub(crate) admit_issued: u64,
    pub(crate) admit_next: u64,
    pub(crate) blocked: u32,
    pub(crate) writer_waiting: bool,
    pub(crate) closing: bool,
    pub(crate) poisoned: bool,
}

impl Shared {
    /// Poisons the log: no more appends, every waiter fails.
    pub(crate) fn poison(&self, failure: Failure) {
        self.queue.lock().poisoned = true;
        self.space.notify_all();
        self.progress.fail(failure);
    }
}

/// A segmented write-ahead log with group commit. `Send + Sync`: share it behind an `Arc`.
///
/// See the crate documentation for the guarantees and `docs/wal.md` for the design.
pub struct Wal {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<Result<(), Error>>>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("storage", &self.shared.storage)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Wal {
    /// Opens (creating it if missing) the log in directory `dir`, locks it, and recovers.
    ///
    /// # Errors
    /// [`Error::Locked`] if another log owns the directory, [`Error::Corrupt`] or
    /// [`Error::UnsupportedVersion`] if recovery finds damage it must not repair,
    /// [`Error::Io`] for I/O failures, [`Error::InvalidConfig`].
    pub fn open(dir: impl AsRef<Path>, config: WalConfig) -> Result<Wal, Error> {
        let storage = FsStorage::open(dir)?;
        Wal::open_with_storage(Arc::new(storage), config)
    }

    /// Opens the log kept in `storage` (e.g. a [`SimStorage`](crate::SimStorage) in tests).
    ///
    /// # Errors
    /// As [`Wal::open`], except locking, which is the storage's business.
    pub fn open_with_storage(storage: Arc<dyn Storage>, config: WalConfig) -> Result<Wal, Error> {
        config.validate()?;
        let recovered = recovery::recover(&*storage)?;
        let active = recovered.active_meta;
        let durable = recovered.next_lsn - 1;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: Vec::new(),
                bytes: 0,
                next_lsn: recovered.next_lsn,
                admit_issued: 0,
                admit_next: 0,
                blocked: 0,
                writer_waiting: false,
                closing: false,
                poisoned: false,
            }),
            work: Condvar::new(),
            space: Condvar::new(),
            progress: Arc::new(Progress::new(durable)),
            segments: Mutex::new(recovered.segments),
            active_bytes: AtomicU64::new(active.bytes),
            queued_items: AtomicUsize::new(0),
            counters: Counters::default(),
            config,
            storage,
        });
        let writer = Writer::new(shared.clone(), recovered.active, active, recovered.next_lsn);
        let handle = thread::Builder::new()
            .name("eddy-wal-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| Error::io("spawn writer thread", shared.storage.path(""), e))?;
        Ok(Wal {
            shared,
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Enqueues an atomic batch and returns at once with its LSNs, blocking only while the queue
    /// is full. LSNs are contiguous and assigned in the order `submit` calls return: if one
    /// returns before another is called, the first one's LSNs are lower. After a crash the
    /// batch is either entirely present or entirely absent.
    ///
    /// # Errors
    /// [`Error::EmptyBatch`], [`Error::RecordTooLarge`] (the batch body exceeds 4 GiB),
    /// [`Error::Poisoned`], [`Error::Closed`].
    pub fn submit(&self, records: Vec<(u8, Vec<u8>)>) -> Result<Ticket, Error> {
        // Copy and checksum outside the lock; only the LSN stamp happens inside.
        let frame = EncodedFrame::encode(&records)?;
        drop(records);
        // A waiting admission always admits (or fails).
        match self.enqueue(frame, true)? {
            Some(ticket) => Ok(ticket),
            None => Err(Error::Closed),
        }
    }

    /// As [`Wal::submit`], but never blocks: `Ok(None)` (and nothing is submitted) when the
    /// queue has no room for the batch right now or other appenders are already waiting for
    /// room. For callers that must not block a thread, such as an async task.
    ///
    /// # Errors
    /// As [`Wal::submit`].
    pub fn try_submit(&self, records: &[(u8, Vec<u8>)]) -> Result<Option<Ticket>, Error> {
        let frame = EncodedFrame::encode(records)?;
        self.enqueue(frame, false)
    }

    /// Admits a frame into the queue and stamps its LSNs; `None` when `wait` is false and the
    /// frame cannot be admitted at once.
    fn enqueue(&self, frame: EncodedFrame, wait: bool) -> Result<Option<Ticket>, Error> {
        let len = frame.len() as u64;
        let count = u64::from(frame.count());
        let max = self.shared.config.queue_bytes_max;
        let mut queue = self.shared.queue.lock();
        let check = |queue: &Queue| {
            if queue.poisoned {
                Err(Error::Poisoned)
            } else if queue.closing {
                Err(Error::Closed)
            } else {
                Ok(())
            }
        };
        check(&queue)?;
        let room = |queue: &Queue| queue.bytes == 0 || queue.bytes + len <= max;
        if !wait && (queue.admit_next != queue.admit_issued || !room(&queue)) {
            return Ok(None);
        }
        let turn = queue.admit_issued;
        queue.admit_issued += 1;
        // A record larger than the whole bound is admitted once the queue is empty, so it cannot
        // wait forever.
        while !(queue.admit_next == turn && room(&queue)) {
            queue.blocked += 1;
            self.shared.space.wait(&mut queue);
            queue.blocked -= 1;
            // Poisoning and closing wake everyone and end admission for good, so abandoning our
            // turn here cannot strand a later appender.
            check(&queue)?;
        }
        queue.admit_next += 1;
        if queue.blocked > 0 {
            self.shared.space.notify_all();
        }
        let first = queue.next_lsn;
        let last = first + count - 1;
        queue.next_lsn = last + 1;
        queue.bytes += len;
        queue.items.push(Item::Frame {
            bytes: frame.seal(first),
            last_lsn: last,
        });
        self.shared
            .queued_items
            .store(queue.items.len(), Ordering::Relaxed);
        let wake_writer = queue.writer_waiting;
        drop(queue);
        if wake_writer {
            self.shared.work.notify_one();
        }
        let acknowledged = self.shared.config.durability == Durability::None;
        Ok(Some(Ticket::new(
            self.shared.progress.clone(),
            first..=last,
            acknowledged,
        )))
    }

    /// Appends one record and waits until it is durable; returns its LSN.
    ///
    /// # Errors
    /// As [`Wal::submit`] and [`Ticket::wait`].
    pub fn append(&self, kind: u8, payload: Vec<u8>) -> Result<Lsn, Error> {
        let frame = EncodedFrame::encode(&[(kind, payload.as_slice())])?;
        drop(payload);
        match self.enqueue(frame, true)? {
            Some(ticket) => Ok(*ticket.wait()?.start()),
            None => Err(Error::Closed),
        }
    }

    /// Appends an atomic batch and waits until it is durable; returns its LSNs.
    ///
    /// # Errors
    /// As [`Wal::submit`] and [`Ticket::wait`].
    pub fn append_batch(&self, records: Vec<(u8, Vec<u8>)>) -> Result<RangeInclusive<Lsn>, Error> {
        self.submit(records)?.wait()
    }

    /// Every LSN up to this one is durable at the configured level (at `Flush` and `None`: handed
    /// to the OS). 0 when nothing is.
    pub fn durable_lsn(&self) -> Lsn {
        self.shared.progress.durable()
    }

    /// The LSN the next submitted record will get.
    pub fn next_lsn(&self) -> Lsn {
        self.shared.queue.lock().next_lsn
    }

    /// Reads every record with `lsn >= from_lsn` that was durable when `replay` was called, in
    /// LSN order, from the segment files. Records below the oldest kept segment (truncated) are
    /// not returned. The segments are opened now, so a concurrent `truncate_before` cannot pull
    /// them from under the iterator.
    ///
    /// # Errors
    /// [`Error::Io`] if a segment cannot be opened; the iterator yields [`Error::Corrupt`] or
    /// [`Error::Io`] (and then ends) if a segment cannot be read back.
    pub fn replay(&self, from_lsn: Lsn) -> Result<Replay, Error> {
        let limit = self.durable_lsn();
        let segments = self.shared.segments.lock();
        Replay::open(&*self.shared.storage, &segments, from_lsn, limit)
    }

    /// Deletes every segment whose records all have LSNs below `lsn`, oldest first, never the
    /// active one. Returns how many were removed.
    ///
    /// # Errors
    /// [`Error::Io`] if a removal or the directory fsync fails; a failed directory fsync also
    /// poisons the log.
    pub fn truncate_before(&self, lsn: Lsn) -> Result<usize, Error> {
        let storage = &*self.shared.storage;
        let mut segments = self.shared.segments.lock();
        let mut removed = 0;
        while segments.len() > 1 && segments[1].first_lsn <= lsn {
            let name = segment_name(segments[0].first_lsn);
            storage
                .remove(&name)
                .map_err(|e| Error::io("remove", storage.path(&name), e))?;
            segments.remove(0);
            removed += 1;
            // IMPORTANT: make each removal durable before the next one. Un-synced removals may
            // persist in any order, and a crash that kept an older segment but lost a newer one
            // would leave an LSN gap that recovery refuses.
            if let Err(e) = storage.sync_dir() {
                let error = Error::io("fsync directory", storage.path(""), e);
                self.shared.poison(Failure::new(&error, self.durable_lsn()));
                return Err(error);
            }
            self.shared
                .counters
                .dir_syncs
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(removed)
    }

    /// Closes the active segment (if it holds any record) and starts a new one. Records
    /// submitted before the call go to the old segment.
    ///
    /// # Errors
    /// [`Error::Io`] if syncing the old segment or creating the new one fails (the log is then
    /// poisoned), [`Error::Poisoned`], [`Error::Closed`].
    pub fn rotate(&self) -> Result<(), Error> {
        self.control(Item::Rotate)
    }

    /// Makes every record submitted before the call durable (fdatasync), whatever the
    /// durability level. Under [`Durability::Flush`] and [`Durability::None`], a caller that
    /// is about to record an LSN somewhere durable (a checkpoint) calls this first, so that
    /// a power cut can never leave the log ending below an LSN recorded elsewhere (the log
    /// would then hand that LSN out again).
    ///
    /// # Errors
    /// [`Error::Io`] if the write or the fdatasync fails (the log is then poisoned),
    /// [`Error::Poisoned`], [`Error::Closed`].
    pub fn sync(&self) -> Result<(), Error> {
        self.control(Item::Sync)
    }

    /// Queues a control item behind every record submitted so far and waits for its answer.
    fn control(&self, item: fn(mpsc::Sender<Result<(), Error>>) -> Item) -> Result<(), Error> {
        let (reply, answer) = mpsc::channel();
        {
            let mut queue = self.shared.queue.lock();
            if queue.poisoned {
                return Err(Error::Poisoned);
            }
            if queue.closing {
                return Err(Error::Closed);
            }
            queue.items.push(item(reply));
            self.shared
                .queued_items
                .store(queue.items.len(), Ordering::Relaxed);
        }
        self.shared.work.notify_one();
        answer.recv().map_err(|_| Error::Closed)?
    }

    /// The segment files, oldest first: `(first LSN, bytes)`; the last one is active.
    pub fn segments(&self) -> Vec<(Lsn, u64)> {
        let segments = self.shared.segments.lock();
        let active = self.shared.active_bytes.load(Ordering::Relaxed);
        let last = segments.len().saturating_sub(1);
        segments
            .iter()
            .enumerate()
            .map(|(i, s)| (s.first_lsn, if i == last { active } else { s.bytes }))
            .collect()
    }

    /// Counters and sizes, for monitoring and benchmarks.
    pub fn stats(&self) -> WalStats {
        let next_lsn = self.next_lsn();
        let (segments, bytes, first_lsn) = {
            let segments = self.shared.segments.lock();
            let closed: u64 = segments[..segments.len() - 1].iter().map(|s| s.bytes).sum();
            let active = self.shared.active_bytes.load(Ordering::Relaxed);
            (
                segments.len() as u64,
                closed + active,
                segments.first().map_or(next_lsn, |s| s.first_lsn),
            )
        };
        let c = &self.shared.counters;
        let fsyncs = c.fsyncs.load(Ordering::Relaxed);
        let records_synced = c.records_synced.load(Ordering::Relaxed);
        WalStats {
            segments,
            bytes,
            first_lsn,
            last_lsn: next_lsn - 1,
            durable_lsn: self.durable_lsn(),
            fsyncs,
            dir_syncs: c.dir_syncs.load(Ordering::Relaxed),
            records_appended: c.records_written.load(Ordering::Relaxed),
            records_per_fsync: if fsyncs == 0 {
                0.0
            } else {
                records_synced as f64 / fsyncs as f64
            },
        }
    }

    /// Drains the queue, syncs (at every durability level), and stops the writer thread.
    ///
    /// # Errors
    /// The error of the final sync, or [`Error::Poisoned`] if the log was poisoned.
    pub fn close(self) -> Result<(), Error> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<(), Error> {
        let Some(handle) = self.writer.lock().take() else {
            return Ok(());
        };
        self.shared.queue.lock().closing = true;
        self.shared.work.notify_one();
        self.shared.space.notify_all();
        handle.join().unwrap_or(Err(Error::Closed))
    }
}

#[cfg(test)]
impl Wal {
    /// Items in the queue that the writer has not taken yet.
    pub(crate) fn queued_items(&self) -> usize {
        self.shared.queue.lock().items.len()
    }

    /// Appenders blocked in `submit` because the queue is full.
    pub(crate) fn blocked_appenders(&self) -> u32 {
        self.shared.queue.lock().blocked
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::warn!(%error, "WAL: closing on drop failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::segment::{SEGMENT_HEADER_LEN, parse_segment_name, segment_name};
    use crate::test_util::{all, open, payload, tiny};
    use crate::{SimStorage, WalStats};

    fn segment_files(storage: &SimStorage) -> Vec<u64> {
        storage
            .file_names()
            .iter()
            .filter_map(|n| parse_segment_name(n))
            .collect()
    }

    fn bytes_on_disk(storage: &SimStorage) -> u64 {
        storage
            .file_names()
            .iter()
            .filter(|n| parse_segment_name(n).is_some())
            .map(|n| storage.read(n).unwrap().len() as u64)
            .sum()
    }

    #[test]
    fn try_submit_declines_instead_of_waiting_for_room() {
        let storage = SimStorage::new();
        let wal = open(&storage, tiny(1 << 20));
        let max = wal.shared.config.queue_bytes_max;
        let record = || vec![(0u8, payload(1, 10))];
        // A full queue: the blocking submit would wait; try_submit declines and submits nothing.
        wal.shared.queue.lock().bytes = max;
        assert!(wal.try_submit(&record()).unwrap().is_none());
        assert_eq!(wal.next_lsn(), 1);
        // Room, but an appender already waits for its turn: it must not be overtaken.
        {
            let mut queue = wal.shared.queue.lock();
            queue.bytes = 0;
            queue.admit_issued += 1;
        }
        assert!(wal.try_submit(&record()).unwrap().is_none());
        wal.shared.queue.lock().admit_issued -= 1;
        // Otherwise it submits like `submit`, and the ticket completes.
        let ticket = wal.try_submit(&record()).unwrap().expect("admitted");
        assert_eq!(ticket.wait().unwrap(), 1..=1);
        assert_eq!(wal.submit(record()).unwrap().wait().unwrap(), 2..=2);
    }

    #[test]
    fn stats_count_segments_bytes_lsns_and_fsyncs() {
        let storage = SimStorage::new();
        let wal = open(&storage, tiny(1 << 20));
        let header = SEGMENT_HEADER_LEN as u64;
        assert_eq!(
            wal.stats(),
            WalStats {
                segments: 1,
                bytes: header,
                first_lsn: 1,
                ..WalStats::default()
            }
        );
        // Ten single appends, one after the other: one fdatasync each. A frame of one 10-byte
        // record is 20 + 5 + 10 bytes.
        for i in 0..10 {
            wal.append(0, payload(i, 10)).unwrap();
        }
        let stats = wal.stats();
        assert_eq!(
            (stats.segments, stats.bytes, stats.first_lsn, stats.last_lsn),
            (1, header + 10 * 35, 1, 10)
        );
        assert_eq!(
            (stats.durable_lsn, stats.fsyncs, stats.dir_syncs),
            (10, 10, 0)
        );
        assert_eq!((stats.records_appended, stats.records_per_fsync), (10, 1.0));
        // A batch of ten: one frame, one fdatasync.
        wal.append_batch((0..10).map(|i| (1, payload(i, 10))).collect())
            .unwrap();
        let stats = wal.stats();
        assert_eq!(stats.bytes, header + 10 * 35 + 20 + 10 * 15);
        assert_eq!((stats.fsyncs, stats.records_per_fsync), (11, 20.0 / 11.0));
        // A rotation fdatasyncs the new segment's header and fsyncs the directory.
        wal.rotate().unwrap();
        let stats = wal.stats();
        assert_eq!((stats.segments, stats.fsyncs, stats.dir_syncs), (2, 12, 1));
        assert_eq!(stats.bytes, bytes_on_disk(&storage));
        wal.append(0, payload(21, 10)).unwrap();
        // Truncation moves the first LSN; the last and durable LSNs stay.
        assert_eq!(wal.truncate_before(21).unwrap(), 1);
        let stats = wal.stats();
        assert_eq!(
            (
                stats.segments,
                stats.first_lsn,
                stats.last_lsn,
                stats.durable_lsn
            ),
            (1, 21, 21, 21)
        );
        assert_eq!(stats.dir_syncs, 2);
        assert_eq!(stats.bytes, header + 35);
        assert_eq!(stats.bytes, bytes_on_disk(&storage));
    }

    #[test]
    fn truncation_removes_whole_old_segments_durably_and_never_the_active_one() {
        let storage = SimStorage::new();
        // 24 + 3 frames of 35 bytes per segment.
        let wal = open(&storage, tiny(24 + 3 * 35));
        for i in 0..12 {
            wal.append(0, payload(i, 10)).unwrap();
        }
        assert_eq!(segment_files(&storage), vec![1, 4, 7, 10]);
        // LSN 5 is in segment 4: only segment 1 is entirely below it.
        assert_eq!(wal.truncate_before(5).unwrap(), 1);
        assert_eq!(segment_files(&storage), vec![4, 7, 10]);
        // The removal is durable when truncate_before returns: a power cut does not bring the
        // segment back.
        assert_eq!(segment_files(&storage.crash()), vec![4, 7, 10]);
        assert_eq!(wal.truncate_before(5).unwrap(), 0);
        // Segment 4 holds LSNs 4..=6: it goes only once all three are below the point.
        assert_eq!(wal.truncate_before(6).unwrap(), 0);
        assert_eq!(wal.truncate_before(7).unwrap(), 1);
        assert_eq!(segment_files(&storage.crash()), vec![7, 10]);
        // Everything is below LSN 100, but the active segment stays.
        assert_eq!(wal.truncate_before(100).unwrap(), 1);
        assert_eq!(segment_files(&storage.crash()), vec![10]);
        assert_eq!(
            all(&wal).iter().map(|r| r.lsn).collect::<Vec<_>>(),
            vec![10, 11, 12]
        );
        drop(wal);
        let wal = open(&storage.crash(), tiny(24 + 3 * 35));
        assert_eq!((wal.stats().first_lsn, wal.next_lsn()), (10, 13));
        assert!(storage.read(&segment_name(10)).is_some());
    }
}
