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

use crate::recovery::{SegmentMeta, create_segment};
use crate::segment::{SEGMENT_HEADER_LEN, segment_name};
use crate::storage::StorageFile;
use crate::ticket::Failure;
use crate::wal::Shared;
use crate::{Durability, Error, Lsn};

/// One entry of the queue.
pub(crate) enum Item {
    /// A sealed frame holding the records `last_lsn - count + 1 ..= last_lsn`.
    Frame { bytes: Vec<u8>, last_lsn: Lsn },
    /// Close the active segment (if it holds a record) and start a new one, then reply.
    Rotate(mpsc::Sender<Result<(), Error>>),
}

impl Item {
    fn queued_bytes(&self) -> u64 {
        match self {
            Item::Frame { bytes, .. } => bytes.len() as u64,
            Item::Rotate(_) => 0,
        }
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
            let poisoned = {
                let mut queue = self.shared.queue.lock();
                while queue.items.is_empty() && !queue.closing {
                    queue.writer_waiting = true;
                    self.shared.work.wait(&mut queue);
                    queue.writer_waiting = false;
                }
                std::mem::swap(&mut queue.items, &mut self.batch);
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
                    Item::Rotate(_) => end,
                });
            let queued: u64 = self.batch.iter().map(Item::queued_bytes).sum();
            let batch = std::mem::take(&mut self.batch);
            let mut result = if poisoned {
                Err(Error::Poisoned)
            } else {
                self.write_items(&batch)
            };
            self.batch = batch;
            if result.is_err() {
                for item in &self.batch {
                    if let Item::Rotate(reply) = item {
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
            }
            if let Err(error) = result
                && !poisoned
            {
                self.poison(&error, batch_end);
            }
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
                    let answer = match &result {
                        Ok(()) => Ok(()),
                        Err(Error::Io { op, path, source }) => Err(Error::io(
                            op,
                            path.clone(),
                            std::io::Error::new(source.kind(), source.to_string()),
                        )),
                        Err(_) => Err(Error::Poisoned),
                    };
                    let _ = reply.send(answer);
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
