//! The writer thread: the only code that appends to segment files.
//!
//! Appenders push sealed frames into a byte-bounded queue and go to sleep; the writer takes the
//! whole queue at once, appends it with one vectored write per segment, issues one fdatasync for
//! the lot (at the `Fsync` level) and publishes the new durable LSN, waking exactly the
//! appenders it covers. Everything that arrived while the previous batch was being synced forms
//! the next batch, so the batch size adapts to the load with no timer.
//!
//! Any write or sync failure poisons the log: the writer never retries (after a failed
//! fdatasync the kernel may have dropped the dirty pages, so a retry could "succeed" without the
//! data) and fails every later item without touching the disk.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::recovery::{SegmentMeta, create_segment};
use crate::segment::{SEGMENT_HEADER_LEN, segment_name};
use crate::storage::StorageFile;
use crate::ticket::Failure;
use crate::wal::Shared;
use crate::{Durability, Error, Lsn};

/// How long the writer busy-waits for more work before sleeping.
const WRITER_SPIN: Duration = Duration::from_micros(50);

/// How many times the writer yields, at most, for acknowledged appenders to come back.
const CATCH_UP_YIELDS: usize = 8;

/// One entry of the queue.
pub(crate) enum Item {
    /// A sealed frame holding the records `last_lsn - count + 1 ..= last_lsn`.
    Frame { bytes: Vec<u8>, last_lsn: Lsn },
    /// Close the active segment (if it holds a record) and start a new one, then reply.
    Rotate(mpsc::Sender<Result<(), Error>>),
    /// fdatasync every record written before it, then reply.
    Sync(mpsc::Sender<Result<(), Error>>),
}

impl Item {
    fn queued_bytes(&self) -> u64 {
        match self {
            Item::Frame { bytes, .. } => bytes.len() as u64,
            Item::Rotate(_) | Item::Sync(_) => 0,
        }
    }

    /// Where a control item's answer goes.
    fn reply(&self) -> Option<&mpsc::Sender<Result<(), Error>>> {
        match self {
            Item::Frame { .. } => None,
            Item::Rotate(reply) | Item::Sync(reply) => Some(reply),
        }
    }
}

/// The answer to a control item: the error is consumed by the writer (it poisons the log),
/// so the caller gets a copy.
fn answer_of(result: &Result<(), Error>) -> Result<(), Error> {
    match result {
        Ok(()) => Ok(()),
        Err(Error::Io { op, path, source }) => Err(Error::io(
            op,
            path.clone(),
            std::io::Error::new(source.kind(), source.to_string()),
        )),
        Err(_) => Err(Error::Poisoned),
    }
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    file: Box<dyn StorageFile>,
    active_first: Lsn,
    active_bytes: u64,
    /// Last LSN handed to the OS.
    written: Lsn,
    /// Last LSN made durable by fdatasync.
    synced: Lsn,
    batch: Vec<Item>,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        file: Box<dyn StorageFile>,
        active: SegmentMeta,
        next_lsn: Lsn,
    ) -> Writer {
        Writer {
            shared,
            file,
            active_first: active.first_lsn,
            active_bytes: active.bytes,
            written: next_lsn - 1,
            synced: next_lsn - 1,
            batch: Vec::new(),
        }
    }

    /// The thread body: runs until the log is closed and the queue drained.
    pub(crate) fn run(mut self) -> Result<(), Error> {
        let result = self.run_loop();
        self.shared.progress.stop();
        result
    }

    fn run_loop(&mut self) -> Result<(), Error> {
        loop {
            self.spin_for_work();
            let poisoned = {
                let mut queue = self.shared.queue.lock();
                while queue.items.is_empty() && !queue.closing {
                    queue.writer_waiting = true;
                    self.shared.work.wait(&mut queue);
                    queue.writer_waiting = false;
                }
                std::mem::swap(&mut queue.items, &mut self.batch);
                self.shared.queued_items.store(0, Ordering::Relaxed);
                queue.poisoned
            };
            if self.batch.is_empty() {
                return self.finish(poisoned);
            }
            let batch_end = self
                .batch
                .iter()
                .fold(self.written, |end, item| match item {
                    Item::Frame { last_lsn, .. } => end.max(*last_lsn),
                    Item::Rotate(_) | Item::Sync(_) => end,
                });
            let queued: u64 = self.batch.iter().map(Item::queued_bytes).sum();
            let frames = self
                .batch
                .iter()
                .filter(|i| matches!(i, Item::Frame { .. }))
                .count();
            let batch = std::mem::take(&mut self.batch);
            let mut result = if poisoned {
                Err(Error::Poisoned)
            } else {
                self.write_items(&batch)
            };
            self.batch = batch;
            if result.is_err() {
                for item in &self.batch {
                    if let Some(reply) = item.reply() {
                        // The receiver may have had its answer already; a second one is ignored.
                        let _ = reply.send(Err(Error::Poisoned));
                    }
                }
            }
            // The bytes are in the kernel (or dropped): free the queue space before the sync so
            // that appenders can fill the next batch meanwhile.
            self.batch.clear();
            self.release(queued);
            if result.is_ok() && self.shared.config.durability == Durability::Fsync {
                result = self.sync();
                if result.is_ok() && frames > 1 {
                    self.let_appenders_catch_up(frames);
                }
            }
            if let Err(error) = result
                && !poisoned
            {
                self.poison(&error, batch_end);
            }
        }
    }

    /// Busy-waits briefly for the next item before the writer goes to sleep on the condition
    /// variable. An appender that just got its acknowledgement usually submits again within
    /// microseconds; catching that without a futex sleep and wake-up saves one thread hand-off
    /// per append (tens of microseconds in a VM). Bounded, so an idle log costs nothing.
    fn spin_for_work(&self) {
        let start = Instant::now();
        let mut spins = 0u32;
        while self.shared.queued_items.load(Ordering::Relaxed) == 0 {
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(64) && start.elapsed() >= WRITER_SPIN {
                return;
            }
        }
    }

    /// After acknowledging a batch of `frames` appenders, gives the woken ones the CPU for a
    /// moment so that those who append again join the next batch instead of the one after it
    /// (otherwise concurrent appenders split into two half-size groups that alternate). Yields
    /// cost nothing when nobody else is runnable, so a lone appender is never delayed.
    fn let_appenders_catch_up(&self, frames: usize) {
        for _ in 0..CATCH_UP_YIELDS {
            if self.shared.queued_items.load(Ordering::Relaxed) >= frames {
                return;
            }
            std::thread::yield_now();
        }
    }

    /// Writes the batch, rotating segments as needed; at the `Flush` and `None` levels publishes
    /// what was written.
    fn write_items(&mut self, batch: &[Item]) -> Result<(), Error> {
        let max = self.shared.config.segment_bytes_max;
        let mut slices: Vec<&[u8]> = Vec::with_capacity(batch.len());
        let mut slices_last = self.written;
        for item in batch {
            match item {
                Item::Frame { bytes, last_lsn } => {
                    let len = bytes.len() as u64;
                    // A frame never straddles segments; a frame larger than the limit goes alone
                    // into a fresh segment.
                    if self.active_bytes > SEGMENT_HEADER_LEN as u64
                        && self.active_bytes + len > max
                    {
                        self.append(&mut slices, slices_last)?;
                        self.roll()?;
                    }
                    slices.push(bytes);
                    self.active_bytes += len;
                    slices_last = *last_lsn;
                }
                Item::Rotate(reply) => {
                    let result = self.append(&mut slices, slices_last).and_then(|()| {
                        if self.written >= self.active_first {
                            self.roll()
                        } else {
                            Ok(())
                        }
                    });
                    let _ = reply.send(answer_of(&result));
                    result?;
                }
                Item::Sync(reply) => {
                    let result = self
                        .append(&mut slices, slices_last)
                        .and_then(|()| self.sync());
                    let _ = reply.send(answer_of(&result));
                    result?;
                }
            }
        }
        self.append(&mut slices, slices_last)
    }

    /// Appends the pending frames (holding LSNs up to `last`) with one vectored write.
    fn append(&mut self, slices: &mut Vec<&[u8]>, last: Lsn) -> Result<(), Error> {
        if slices.is_empty() {
            return Ok(());
        }
        let path = || self.shared.storage.path(&segment_name(self.active_first));
        self.file
            .append(slices)
            .map_err(|e| Error::io("write", path(), e))?;
        slices.clear();
        let counters = &self.shared.counters;
        counters
            .records_written
            .fetch_add(last - self.written, Ordering::Relaxed);
        self.written = last;
        self.shared
            .active_bytes
            .store(self.active_bytes, Ordering::Relaxed);
        if self.shared.config.durability != Durability::Fsync {
            self.shared.progress.publish(self.written);
        }
        Ok(())
    }

    /// fdatasyncs the active segment if anything is unsynced, then publishes.
    fn sync(&mut self) -> Result<(), Error> {
        if self.synced < self.written {
            let path = || self.shared.storage.path(&segment_name(self.active_first));
            self.file
                .sync_data()
                .map_err(|e| Error::io("fdatasync", path(), e))?;
            self.shared.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            self.shared
                .counters
                .records_synced
                .fetch_add(self.written - self.synced, Ordering::Relaxed);
            self.synced = self.written;
        }
        self.shared.progress.publish(self.written);
        Ok(())
    }

    /// Closes the active segment and starts the next one at `written + 1`.
    fn roll(&mut self) -> Result<(), Error> {
        // Whatever the durability level, a segment is complete on disk before a newer one
        // exists: recovery only accepts a torn tail in the newest segment.
        self.sync()?;
        let first = self.written + 1;
        let file = create_segment(&*self.shared.storage, first)?;
        self.shared.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.shared
            .counters
            .dir_syncs
            .fetch_add(1, Ordering::Relaxed);
        {
            let mut segments = self.shared.segments.lock();
            if let Some(closed) = segments.last_mut() {
                closed.bytes = self.active_bytes;
            }
            segments.push(SegmentMeta {
                first_lsn: first,
                bytes: SEGMENT_HEADER_LEN as u64,
            });
            self.file = file;
            self.active_first = first;
            self.active_bytes = SEGMENT_HEADER_LEN as u64;
            self.shared
                .active_bytes
                .store(self.active_bytes, Ordering::Relaxed);
        }
        Ok(())
    }

    fn release(&self, bytes: u64) {
        let mut queue = self.shared.queue.lock();
        queue.bytes -= bytes;
        if queue.blocked > 0 {
            self.shared.space.notify_all();
        }
    }

    fn poison(&self, error: &Error, batch_end: Lsn) {
        tracing::error!(%error, batch_end, "WAL: write failed; the log is poisoned until reopened");
        self.shared.poison(Failure::new(error, batch_end));
    }

    /// Final sync on close, whatever the durability level.
    fn finish(&mut self, poisoned: bool) -> Result<(), Error> {
        if poisoned || self.shared.progress.is_failed() {
            return Err(Error::Poisoned);
        }
        let result = self.sync();
        if let Err(error) = &result {
            self.poison(error, self.written);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Read};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};
    use std::thread;
    use std::time::Duration;

    use crate::segment::parse_segment_name;
    use crate::storage::{Storage, StorageFile};
    use crate::test_util::{all, open, payload, tiny};
    use crate::{Durability, Error, SimStorage, Wal, WalConfig};

    #[test]
    fn tiny_segments_rotate_on_every_frame_and_replay_in_order() {
        let storage = SimStorage::new();
        let wal = open(&storage, tiny(40));
        for i in 0..50u64 {
            assert_eq!(wal.append(i as u8, payload(i, 10)).unwrap(), i + 1);
        }
        // Header (24) + one 35-byte frame exceeds 40 bytes only with a second frame: one frame
        // per segment.
        let firsts: Vec<u64> = storage
            .file_names()
            .iter()
            .filter_map(|n| parse_segment_name(n))
            .collect();
        assert_eq!(firsts, (1..=50).collect::<Vec<_>>());
        let records = all(&wal);
        assert_eq!(records.len(), 50);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(
                (r.lsn, r.kind, &r.payload),
                (i as u64 + 1, i as u8, &payload(i as u64, 10))
            );
        }
        let stats = wal.stats();
        assert_eq!(
            (
                stats.segments,
                stats.last_lsn,
                stats.durable_lsn,
                stats.records_appended
            ),
            (50, 50, 50, 50)
        );
    }

    #[test]
    fn a_frame_larger_than_a_segment_goes_alone() {
        let storage = SimStorage::new();
        let wal = open(&storage, tiny(200));
        wal.append(1, vec![1; 10]).unwrap();
        wal.append(2, vec![2; 1000]).unwrap();
        wal.append(3, vec![3; 10]).unwrap();
        let names = storage.file_names();
        assert_eq!(
            names
                .iter()
                .filter_map(|n| parse_segment_name(n))
                .collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(storage.read(&names[1]).unwrap().len(), 24 + 20 + 5 + 1000);
    }

    #[test]
    fn concurrent_appenders_get_contiguous_lsns_and_their_records_back() {
        let storage = SimStorage::new();
        let wal = Arc::new(open(&storage, tiny(2048)));
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let wal = wal.clone();
                thread::spawn(move || {
                    (0..100u64)
                        .map(|i| (wal.append(t, payload(i, 20 + t as usize)).unwrap(), i))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut expected = Vec::new();
        for (t, handle) in threads.into_iter().enumerate() {
            for (lsn, i) in handle.join().unwrap() {
                expected.push((lsn, t as u8, payload(i, 20 + t)));
            }
        }
        expected.sort();
        let lsns: Vec<u64> = expected.iter().map(|e| e.0).collect();
        assert_eq!(lsns, (1..=800).collect::<Vec<_>>());
        let got: Vec<_> = all(&wal)
            .into_iter()
            .map(|r| (r.lsn, r.kind, r.payload))
            .collect();
        assert_eq!(got, expected);
        let stats = wal.stats();
        assert!(stats.records_per_fsync >= 1.0, "{stats:?}");
        assert!(stats.segments > 5, "{stats:?}");
    }

    #[test]
    fn submit_assigns_lsns_in_call_order_and_batches_contiguously() {
        let storage = SimStorage::new();
        let wal = open(&storage, tiny(100));
        let a = wal.submit(vec![(1, vec![1])]).unwrap();
        let b = wal.submit((0..5).map(|i| (2, vec![i])).collect()).unwrap();
        let c = wal.submit(vec![(3, vec![3])]).unwrap();
        assert_eq!((a.lsns(), b.lsns(), c.lsns()), (1..=1, 2..=6, 7..=7));
        assert_eq!(wal.next_lsn(), 8);
        assert_eq!(c.wait().unwrap(), 7..=7);
        assert_eq!(b.wait().unwrap(), 2..=6);
        assert_eq!(a.wait().unwrap(), 1..=1);
        assert!(matches!(wal.submit(vec![]), Err(Error::EmptyBatch)));
    }

    /// A gate in front of a storage's appends, to make the writer slow on purpose.
    #[derive(Debug, Default)]
    struct Gate {
        closed: AtomicBool,
        /// Appends that found the gate closed and waited (the writer is inside a write).
        held: AtomicUsize,
    }

    impl Gate {
        fn close(&self) {
            self.closed.store(true, Ordering::SeqCst);
        }
        fn open(&self) {
            self.closed.store(false, Ordering::SeqCst);
        }
        /// Waits until the writer is held at the gate.
        fn wait_until_held(&self, count: usize) {
            wait_until(|| self.held.load(Ordering::SeqCst) >= count);
        }
    }

    /// A storage whose appends block while its gate is closed.
    #[derive(Debug)]
    struct Gated {
        inner: SimStorage,
        gate: Arc<Gate>,
    }

    struct GatedFile {
        inner: Box<dyn StorageFile>,
        gate: Arc<Gate>,
    }

    impl Storage for Gated {
        fn path(&self, name: &str) -> PathBuf {
            self.inner.path(name)
        }
        fn list(&self) -> io::Result<Vec<String>> {
            self.inner.list()
        }
        fn create(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
            Ok(Box::new(GatedFile {
                inner: self.inner.create(name)?,
                gate: self.gate.clone(),
            }))
        }
        fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
            Ok(Box::new(GatedFile {
                inner: self.inner.open(name)?,
                gate: self.gate.clone(),
            }))
        }
        fn open_read(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
            self.inner.open_read(name)
        }
        fn remove(&self, name: &str) -> io::Result<()> {
            self.inner.remove(name)
        }
        fn sync_dir(&self) -> io::Result<()> {
            self.inner.sync_dir()
        }
    }

    impl StorageFile for GatedFile {
        fn size(&self) -> io::Result<u64> {
            self.inner.size()
        }
        fn append(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
            if self.gate.closed.load(Ordering::SeqCst) {
                self.gate.held.fetch_add(1, Ordering::SeqCst);
                while self.gate.closed.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            self.inner.append(bufs)
        }
        fn set_len(&mut self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn sync_data(&mut self) -> io::Result<()> {
            self.inner.sync_data()
        }
    }

    fn gated(config: WalConfig) -> (Arc<Wal>, Arc<Gate>, SimStorage) {
        let gate = Arc::new(Gate::default());
        let inner = SimStorage::new();
        let storage = Arc::new(Gated {
            inner: inner.clone(),
            gate: gate.clone(),
        });
        let wal = Arc::new(Wal::open_with_storage(storage, config).unwrap());
        (wal, gate, inner)
    }

    /// Waits until `condition` holds. The condition does not depend on timing; the generous
    /// limit only turns a deadlock into a failure instead of a hung test run.
    #[track_caller]
    fn wait_until(condition: impl Fn() -> bool) {
        let start = std::time::Instant::now();
        while !condition() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the awaited condition never held (deadlock?)"
            );
            thread::yield_now();
        }
    }

    #[test]
    fn appenders_arriving_during_a_write_share_one_fdatasync() {
        let (wal, gate, storage) = gated(tiny(1 << 20));
        gate.close();
        // The first append takes the writer into a write that the gate holds.
        let first = {
            let wal = wal.clone();
            thread::spawn(move || wal.append(0, payload(0, 16)).unwrap())
        };
        gate.wait_until_held(1);
        // Meanwhile 16 threads append one record each and block, and a batch of 4 is submitted.
        let appenders: Vec<_> = (1..=16u64)
            .map(|i| {
                let wal = wal.clone();
                thread::spawn(move || wal.append(1, payload(i, 16)).unwrap())
            })
            .collect();
        wait_until(|| wal.queued_items() == 16);
        let batch = wal
            .submit((0..4).map(|i| (2, payload(100 + i, 8))).collect())
            .unwrap();
        assert_eq!(batch.lsns(), 18..=21);
        let syncs_before = storage.sync_points();
        gate.open();
        assert_eq!(first.join().unwrap(), 1);
        let mut lsns: Vec<u64> = appenders.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(batch.wait().unwrap(), 18..=21);
        lsns.sort_unstable();
        assert_eq!(lsns, (2..=17).collect::<Vec<_>>());
        // One fdatasync for the first record, one for the 20 records queued behind it.
        assert_eq!(storage.sync_points() - syncs_before, 2);
        let stats = wal.stats();
        assert_eq!((stats.fsyncs, stats.durable_lsn), (2, 21), "{stats:?}");
        assert_eq!(stats.records_per_fsync, 10.5, "{stats:?}");
        assert_eq!(all(&wal).len(), 21);
    }

    #[test]
    fn a_full_queue_blocks_appenders_until_the_writer_catches_up() {
        let config = WalConfig {
            segment_bytes_max: 1 << 20,
            durability: Durability::Fsync,
            queue_bytes_max: 100,
        };
        let (wal, gate, _) = gated(config);
        gate.close();
        // The writer takes the first frame and is held writing it; that frame's bytes stay
        // counted until the write returns. Each frame is 20 + 5 + 5 = 30 bytes: with the held
        // one, three fit in 100, the fourth must wait.
        let held = wal.submit(vec![(0, vec![0; 5])]).unwrap();
        gate.wait_until_held(1);
        let tickets: Vec<_> = (1..3)
            .map(|i| wal.submit(vec![(0, vec![i; 5])]).unwrap())
            .collect();
        let (done, finished) = mpsc::channel();
        let blocked = {
            let wal = wal.clone();
            thread::spawn(move || {
                let ticket = wal.submit(vec![(0, vec![9; 5])]).unwrap();
                done.send(()).unwrap();
                ticket.wait().unwrap()
            })
        };
        wait_until(|| wal.blocked_appenders() == 1);
        assert!(finished.try_recv().is_err(), "the fourth submit must block");
        assert_eq!(wal.queued_items(), 2);
        gate.open();
        finished.recv().unwrap();
        assert_eq!(blocked.join().unwrap(), 4..=4);
        held.wait().unwrap();
        for t in tickets {
            t.wait().unwrap();
        }
        // A record larger than the whole bound is admitted once the queue is empty.
        assert_eq!(wal.append(0, vec![0; 1000]).unwrap(), 5);
    }

    #[test]
    fn flush_level_acknowledges_without_fdatasync() {
        let storage = SimStorage::new();
        let config = WalConfig {
            durability: Durability::Flush,
            ..tiny(1 << 20)
        };
        let wal = open(&storage, config);
        let syncs_before = storage.sync_points();
        for i in 0..20 {
            wal.append(0, payload(i, 8)).unwrap();
        }
        assert_eq!(
            storage.sync_points(),
            syncs_before,
            "Flush must not fdatasync per append"
        );
        assert_eq!(wal.durable_lsn(), 20);
        assert_eq!(all(&wal).len(), 20);
        // Nothing was synced, so a power cut loses them; a clean close syncs.
        assert_eq!(all(&open(&storage.crash(), tiny(1 << 20))).len(), 0);
        wal.close().unwrap();
        assert_eq!(all(&open(&storage.crash(), tiny(1 << 20))).len(), 20);
    }

    #[test]
    fn sync_makes_earlier_records_durable_at_every_level() {
        for durability in [Durability::Flush, Durability::None, Durability::Fsync] {
            let storage = SimStorage::new();
            let wal = open(
                &storage,
                WalConfig {
                    durability,
                    ..tiny(1 << 20)
                },
            );
            for i in 0..20 {
                wal.append(0, payload(i, 8)).unwrap();
            }
            wal.sync().unwrap();
            wal.append(0, payload(20, 8)).unwrap();
            let survived = all(&open(&storage.crash(), tiny(1 << 20))).len();
            match durability {
                // The record after the sync was only written (or only queued).
                Durability::Fsync => assert_eq!(survived, 21),
                _ => assert_eq!(survived, 20, "{durability:?}"),
            }
        }
    }

    #[test]
    fn recovery_makes_the_log_it_found_durable() {
        let storage = SimStorage::new();
        let config = WalConfig {
            durability: Durability::Flush,
            ..tiny(1 << 20)
        };
        let wal = open(&storage, config.clone());
        for i in 0..10 {
            wal.append(0, payload(i, 8)).unwrap();
        }
        // A process crash: the written bytes survive in the page cache, unsynced.
        let restarted = SimStorage::new();
        for name in storage.file_names() {
            let mut file = restarted.create(&name).unwrap();
            file.append(&[&storage.read(&name).unwrap()]).unwrap();
        }
        restarted.sync_dir().unwrap();
        drop(wal);
        let reopened = open(&restarted, config);
        assert_eq!(all(&reopened).len(), 10);
        // What the restart replayed (and may have checkpointed) survives a power cut now.
        assert_eq!(all(&open(&restarted.crash(), tiny(1 << 20))).len(), 10);
        drop(reopened);
    }

    #[test]
    fn none_level_acknowledges_at_once_and_close_makes_it_durable() {
        let storage = SimStorage::new();
        let config = WalConfig {
            durability: Durability::None,
            ..tiny(64)
        };
        let wal = open(&storage, config);
        let tickets: Vec<_> = (0..30)
            .map(|i| wal.submit(vec![(0, payload(i, 8))]).unwrap())
            .collect();
        for (i, t) in tickets.into_iter().enumerate() {
            assert_eq!(t.wait().unwrap(), i as u64 + 1..=i as u64 + 1);
        }
        wal.close().unwrap();
        let records = all(&open(&storage.crash(), tiny(64)));
        assert_eq!(
            records.iter().map(|r| r.lsn).collect::<Vec<_>>(),
            (1..=30).collect::<Vec<_>>()
        );
    }

    #[test]
    fn explicit_rotate_starts_a_segment_only_when_the_active_one_has_records() {
        let storage = SimStorage::new();
        let wal = open(&storage, tiny(1 << 20));
        wal.rotate().unwrap();
        assert_eq!(storage.file_names(), vec!["00000000000000000001.wal"]);
        wal.append(0, vec![1]).unwrap();
        wal.rotate().unwrap();
        wal.rotate().unwrap();
        assert_eq!(
            storage.file_names(),
            vec!["00000000000000000001.wal", "00000000000000000002.wal"]
        );
        assert_eq!(wal.next_lsn(), 2);
        drop(wal);
        // The empty newest segment still tells the next LSN after a restart.
        let wal = open(&storage.crash(), tiny(1 << 20));
        assert_eq!(wal.next_lsn(), 2);
        assert_eq!(wal.append(0, vec![2]).unwrap(), 2);
    }

    #[test]
    fn async_appenders_are_woken_by_the_writer_without_blocking_a_thread() {
        use std::future::Future;
        use std::pin::Pin;
        use std::task::{Context, Poll, Wake, Waker};

        /// A waker that counts its wake-ups, so the test can see each task being woken.
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }

        let (wal, gate, _) = gated(tiny(256));
        gate.close();
        let held = wal.submit(vec![(0, payload(0, 16))]).unwrap();
        gate.wait_until_held(1);
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        // Ten tasks submit and poll their acknowledgement while the writer is held: all pending.
        let mut futures: Vec<_> = (1..=10)
            .map(|i| Box::pin(wal.submit(vec![(0, payload(i, 16))]).unwrap().wait_async()))
            .collect();
        for f in &mut futures {
            assert!(Pin::new(f).poll(&mut cx).is_pending());
        }
        gate.open();
        // The writer itself wakes every registered task once its records are durable.
        wait_until(|| woken.0.load(Ordering::SeqCst) >= 10);
        let results: Vec<_> = futures
            .iter_mut()
            .map(|f| match Pin::new(f).poll(&mut cx) {
                Poll::Ready(result) => result.unwrap(),
                Poll::Pending => panic!("woken but not ready"),
            })
            .collect();
        assert_eq!(results, (2..=11).map(|l| l..=l).collect::<Vec<_>>());
        assert_eq!(held.wait().unwrap(), 1..=1);
        assert_eq!(wal.durable_lsn(), 11);
    }
}
