//! eddy's segmented write-ahead log with group commit.
//!
//! The log owns one directory of segment files (`<first LSN, 20 digits>.wal`). It guarantees:
//!
//! - **Durability (W1).** At the default [`Durability::Fsync`] level an append returns only
//!   after its record was written and fdatasynced, and the directory entry of its segment was
//!   fsynced. Concurrent appends share one fdatasync (group commit, by a dedicated writer
//!   thread).
//! - **Order (W3).** LSNs are global, start at 1, strictly increasing and contiguous, and
//!   survive restarts and truncation.
//! - **Atomic batches.** A batch is one checksummed frame: after a crash it is entirely present
//!   or entirely absent.
//! - **Recovery (C1, C3).** [`Wal::open`] cuts a torn tail of the newest segment at the last
//!   valid frame and refuses to open, naming file, offset and checksums, on any other damage.
//! - **Fail-stop (C2).** A failed write or fdatasync poisons the log: no retry, no further
//!   acknowledgement, replay still works, reopening recovers.
//! - **Bounded memory (M1).** The queue of unwritten records is bounded in bytes; appenders
//!   block while it is full.
//!
//! Layers, each in its own module: `frame` (byte format of a batch), `segment` (file naming and
//! header), `storage` (the file-system trait, [`FsStorage`], and [`SimStorage`] with feature
//! `sim`), `recovery` (opening), `writer` (the group-commit thread), `ticket` (acknowledgements),
//! `reader` ([`Replay`]), `wal` ([`Wal`], the queue). The byte format and the crash argument are
//! in `docs/wal.md`.

#![forbid(unsafe_code)]

mod error;
mod frame;
mod reader;
mod recovery;
mod segment;
#[cfg(any(test, feature = "sim"))]
mod sim;
mod storage;
mod ticket;
mod wal;
mod writer;

use std::fmt;
use std::str::FromStr;

pub use error::{CorruptReason, Error};
pub use reader::Replay;
#[cfg(any(test, feature = "sim"))]
pub use sim::SimStorage;
pub use storage::{FsStorage, LOCK_FILE, Storage, StorageFile};
pub use ticket::{Ticket, WaitFuture};
pub use wal::Wal;

/// Log sequence number: global, starting at 1, strictly increasing. 0 means "none".
pub type Lsn = u64;

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// After write(2) and fdatasync: survives power loss. The default.
    #[default]
    Fsync,
    /// After write(2) only: survives a process crash, not power loss.
    Flush,
    /// At once, before the write: a process crash can lose acknowledged records.
    None,
}

impl Durability {
    /// The configuration name: `"fsync"`, `"flush"` or `"none"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Fsync => "fsync",
            Durability::Flush => "flush",
            Durability::None => "none",
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A durability name that is not `fsync`, `flush` or `none`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown WAL durability {0:?}: expected \"fsync\", \"flush\" or \"none\"")]
pub struct ParseDurabilityError(pub String);

impl FromStr for Durability {
    type Err = ParseDurabilityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fsync" => Ok(Durability::Fsync),
            "flush" => Ok(Durability::Flush),
            "none" => Ok(Durability::None),
            other => Err(ParseDurabilityError(other.to_string())),
        }
    }
}

/// Settings of a [`Wal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// A segment is closed once the next frame would make it larger than this (a single larger
    /// frame goes alone into a segment). Default 64 MiB.
    pub segment_bytes_max: u64,
    /// When appends are acknowledged. Default [`Durability::Fsync`].
    pub durability: Durability,
    /// Bytes of records submitted but not yet written that the queue holds before appenders
    /// block. Default 64 MiB.
    pub queue_bytes_max: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes_max: 64 << 20,
            durability: Durability::Fsync,
            queue_bytes_max: 64 << 20,
        }
    }
}

impl WalConfig {
    fn validate(&self) -> Result<(), Error> {
        if self.segment_bytes_max == 0 {
            return Err(Error::InvalidConfig {
                reason: "segment_bytes_max must be at least 1",
            });
        }
        if self.queue_bytes_max == 0 {
            return Err(Error::InvalidConfig {
                reason: "queue_bytes_max must be at least 1",
            });
        }
        Ok(())
    }
}

/// One record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its log sequence number.
    pub lsn: Lsn,
    /// Caller-defined record type.
    pub kind: u8,
    /// Caller-defined content.
    pub payload: Vec<u8>,
}

/// A snapshot of the log's counters; see [`Wal::stats`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WalStats {
    /// Segment files, the active one included.
    pub segments: u64,
    /// Bytes in all segment files.
    pub bytes: u64,
    /// Lowest LSN the log can still hold (first LSN of the oldest segment).
    pub first_lsn: Lsn,
    /// Last LSN assigned (0 if none ever was).
    pub last_lsn: Lsn,
    /// Every LSN up to this one is durable at the configured level.
    pub durable_lsn: Lsn,
    /// fdatasync calls on segment files since open.
    pub fsyncs: u64,
    /// fsync calls on the directory since open.
    pub dir_syncs: u64,
    /// Records written to segment files since open.
    pub records_appended: u64,
    /// Records made durable per fdatasync since open (the group-commit factor).
    pub records_per_fsync: f64,
}

// The engine shares a `Wal` between threads and moves tickets, their futures and replays
// between them: keep those properties from regressing silently.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<Wal>();
    send_sync::<Error>();
    send::<Ticket>();
    send::<WaitFuture>();
    send::<Replay>();
};

#[cfg(test)]
mod test_util {
    use std::sync::Arc;

    use crate::{Durability, Record, SimStorage, Wal, WalConfig};

    /// Tiny segments so that rotation happens constantly.
    pub(crate) fn tiny(segment_bytes_max: u64) -> WalConfig {
        WalConfig {
            segment_bytes_max,
            durability: Durability::Fsync,
            queue_bytes_max: 1 << 20,
        }
    }

    pub(crate) fn open(storage: &SimStorage, config: WalConfig) -> Wal {
        Wal::open_with_storage(Arc::new(storage.clone()), config).unwrap()
    }

    pub(crate) fn all(wal: &Wal) -> Vec<Record> {
        wal.replay(0)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    pub(crate) fn payload(lsn_hint: u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (lsn_hint as usize * 31 + i) as u8)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Durability, ParseDurabilityError, WalConfig};

    #[test]
    fn durability_levels_parse_from_their_config_names_and_fsync_is_the_default() {
        for level in [Durability::Fsync, Durability::Flush, Durability::None] {
            assert_eq!(level.as_str().parse::<Durability>(), Ok(level));
            assert_eq!(level.to_string(), level.as_str());
        }
        assert_eq!(
            "FSYNC".parse::<Durability>(),
            Err(ParseDurabilityError("FSYNC".into()))
        );
        assert_eq!(Durability::default(), Durability::Fsync);
        let config = WalConfig::default();
        assert_eq!(
            (config.durability, config.segment_bytes_max),
            (Durability::Fsync, 64 << 20)
        );
    }
}
