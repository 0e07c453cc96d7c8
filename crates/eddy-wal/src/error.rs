//! The crate's one error type.
//!
//! Corruption errors carry the file, the byte offset and both checksums so that an operator can
//! find the damage with a hex dump; I/O errors carry the operation and the path.

use std::io;
use std::path::PathBuf;

use crate::Lsn;

/// Everything that can go wrong in the write-ahead log.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call failed.
    #[error("WAL I/O error: {op} {}: {source}", path.display())]
    Io {
        /// The operation that failed (`"fdatasync"`, `"write"`, `"create"`, ...).
        op: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A segment holds bytes that no crash of this log can have produced; the log refuses to open
    /// (or a replay stops) rather than skip them.
    #[error(
        "corrupt WAL segment {} at byte offset {offset}: {reason} \
         (stored crc32c {expected_crc:#010x}, computed {actual_crc:#010x})",
        file.display()
    )]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the damaged header or frame from the start of the file.
        offset: u64,
        /// The checksum stored in the file (equal to `actual_crc` when the checksum is fine but
        /// the content is inconsistent, e.g. an LSN gap).
        expected_crc: u32,
        /// The checksum computed over the bytes actually present.
        actual_crc: u32,
        /// What is wrong.
        reason: CorruptReason,
    },
    /// Another `Wal` (in this process or another one) owns the directory.
    #[error("WAL directory {} is locked by another open log", path.display())]
    Locked {
        /// The `LOCK` file.
        path: PathBuf,
    },
    /// An earlier write or fdatasync failed. The log accepts no more appends until it is
    /// reopened, because the kernel may have dropped the dirty pages of the failed write.
    #[error("the WAL is poisoned by an earlier I/O failure; reopen it to recover")]
    Poisoned,
    /// A segment was written by a format version this build cannot read.
    #[error("WAL segment {} has format version {version}; this build reads version {supported}", file.display())]
    UnsupportedVersion {
        /// The segment file.
        file: PathBuf,
        /// The version byte found.
        version: u8,
        /// The version this build writes and reads.
        supported: u8,
    },
    /// A record or batch does not fit the on-disk length fields.
    #[error("WAL record or batch of {bytes} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Size of the rejected record or batch body.
        bytes: u64,
        /// The largest accepted size.
        max: u64,
    },
    /// `submit`/`append_batch` was called with no record.
    #[error("empty WAL batch: a batch needs at least one record")]
    EmptyBatch,
    /// The configuration cannot work.
    #[error("invalid WAL configuration: {reason}")]
    InvalidConfig {
        /// Which setting is wrong and why.
        reason: &'static str,
    },
    /// The log has been closed (or its writer thread is gone).
    #[error("the WAL is closed")]
    Closed,
}

/// Why a segment is considered corrupt.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorruptReason {
    /// The stored checksum does not match the bytes.
    #[error("checksum mismatch")]
    ChecksumMismatch,
    /// A frame or header runs past the end of a segment that is not the log's tail, so the
    /// bytes cannot be a torn write.
    #[error("truncated: {needed} bytes needed, {available} present")]
    Truncated {
        /// Bytes the header or frame claims.
        needed: u64,
        /// Bytes present in the file from `offset` on.
        available: u64,
    },
    /// A damaged frame in the last segment is followed by a valid frame, so it is not a torn
    /// tail: truncating it would drop the later, possibly acknowledged, frame.
    #[error("damaged frame followed by a valid frame at offset {valid_frame_offset}")]
    DamageBeforeValidFrame {
        /// Where the valid frame starts.
        valid_frame_offset: u64,
    },
    /// The segment header does not start with the WAL magic.
    #[error("bad segment magic")]
    BadMagic,
    /// The frame's checksum is fine but its records do not exactly fill its body.
    #[error("malformed record layout inside a checksummed frame")]
    BadRecordLayout,
    /// LSNs are not contiguous: a gap, a repeat or a step backwards.
    #[error("LSN discontinuity: expected LSN {expected}, found {found}")]
    LsnMismatch {
        /// The LSN that should come next.
        expected: Lsn,
        /// The LSN found.
        found: Lsn,
    },
    /// The segment's header names a different first LSN than its file name.
    #[error("segment header says first LSN {header_lsn} but the file name says {name_lsn}")]
    NameMismatch {
        /// LSN in the file name.
        name_lsn: Lsn,
        /// LSN in the header.
        header_lsn: Lsn,
    },
    /// Records that were durable are missing (the file ended early during a replay).
    #[error("segment ends before LSN {expected}, which was durable")]
    MissingRecords {
        /// The first missing LSN.
        expected: Lsn,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: PathBuf, source: io::Error) -> Self {
        Error::Io { op, path, source }
    }

    pub(crate) fn corrupt(
        file: PathBuf,
        offset: u64,
        crcs: (u32, u32),
        reason: CorruptReason,
    ) -> Self {
        Error::Corrupt {
            file,
            offset,
            expected_crc: crcs.0,
            actual_crc: crcs.1,
            reason,
        }
    }
}
