//! Segment files: naming and the versioned header.
//!
//! A segment is named after the LSN of its first record (`<20 digits>.wal`), so that the newest
//! segment tells the next LSN even when it holds no record, and sorting names sorts the log.
//!
//! ```text
//! offset  size  field
//!      0     7  magic      b"eddywal"
//!      7     1  version    1 (0 is never written: a zeroed header is a torn one)
//!      8     8  first_lsn  u64 LE, equal to the LSN in the file name
//!     16     4  reserved   zero
//!     20     4  crc32c     over bytes [0, 20)
//! ```

use std::path::{Path, PathBuf};

use crate::error::CorruptReason;
use crate::{Error, Lsn};

/// Bytes of the segment header.
pub(crate) const SEGMENT_HEADER_LEN: usize = 24;
/// First bytes of every segment.
pub(crate) const MAGIC: [u8; 7] = *b"eddywal";
/// The format version this build writes and reads.
pub(crate) const VERSION: u8 = 1;
const SUFFIX: &str = ".wal";

/// The file name of the segment whose first record has `first_lsn`.
pub(crate) fn segment_name(first_lsn: Lsn) -> String {
    format!("{first_lsn:020}{SUFFIX}")
}

/// The first LSN encoded in a segment file name, or `None` for any other file.
pub(crate) fn parse_segment_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header of a segment whose first record has `first_lsn`.
pub(crate) fn encode_header(first_lsn: Lsn) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[0..7].copy_from_slice(&MAGIC);
    header[7] = VERSION;
    header[8..16].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32c::crc32c(&header[..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Why a header could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderFault {
    /// Fewer than [`SEGMENT_HEADER_LEN`] bytes.
    Short { available: u64 },
    /// Not a WAL segment (or a torn header).
    BadMagic { stored_crc: u32, actual_crc: u32 },
    /// Written by another format version.
    Version(u8),
    /// The checksum does not match.
    Checksum { stored_crc: u32, actual_crc: u32 },
}

impl HeaderFault {
    /// The error that reports this fault in the header of `file`.
    pub(crate) fn into_error(self, file: PathBuf) -> Error {
        let (crcs, reason) = match self {
            HeaderFault::Version(version) => {
                return Error::UnsupportedVersion {
                    file,
                    version,
                    supported: VERSION,
                };
            }
            HeaderFault::Short { available } => (
                (0, 0),
                CorruptReason::Truncated {
                    needed: SEGMENT_HEADER_LEN as u64,
                    available,
                },
            ),
            HeaderFault::BadMagic {
                stored_crc,
                actual_crc,
            } => ((stored_crc, actual_crc), CorruptReason::BadMagic),
            HeaderFault::Checksum {
                stored_crc,
                actual_crc,
            } => ((stored_crc, actual_crc), CorruptReason::ChecksumMismatch),
        };
        Error::corrupt(file, 0, crcs, reason)
    }
}

/// Checks that a decoded header agrees with the file name.
pub(crate) fn check_header_lsn(
    file: &Path,
    name_lsn: Lsn,
    header_lsn: Lsn,
    header: &[u8],
) -> Result<(), Error> {
    if name_lsn == header_lsn {
        return Ok(());
    }
    let crc = header_crc(header);
    Err(Error::corrupt(
        file.to_path_buf(),
        0,
        (crc, crc),
        CorruptReason::NameMismatch {
            name_lsn,
            header_lsn,
        },
    ))
}

/// The checksum stored in a (possibly short) header, 0 if absent.
pub(crate) fn header_crc(header: &[u8]) -> u32 {
    header
        .get(20..24)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decodes a header, returning its first LSN.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<Lsn, HeaderFault> {
    let Some(header) = bytes.get(..SEGMENT_HEADER_LEN) else {
        return Err(HeaderFault::Short {
            available: bytes.len() as u64,
        });
    };
    let stored_crc = u32::from_le_bytes([header[20], header[21], header[22], header[23]]);
    let actual_crc = crc32c::crc32c(&header[..20]);
    if header[0..7] != MAGIC {
        return Err(HeaderFault::BadMagic {
            stored_crc,
            actual_crc,
        });
    }
    // A different non-zero version may lay out the rest differently: report it before judging
    // the checksum, so that a newer log is refused with the right message.
    if header[7] != VERSION && header[7] != 0 {
        return Err(HeaderFault::Version(header[7]));
    }
    if stored_crc != actual_crc {
        return Err(HeaderFault::Checksum {
            stored_crc,
            actual_crc,
        });
    }
    let mut lsn = [0u8; 8];
    lsn.copy_from_slice(&header[8..16]);
    Ok(u64::from_le_bytes(lsn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_lsn() {
        assert_eq!(segment_name(1), "00000000000000000001.wal");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        let mut names = [segment_name(100), segment_name(9), segment_name(10)];
        names.sort();
        assert_eq!(names.map(|n| parse_segment_name(&n).unwrap()), [9, 10, 100]);
        for bad in [
            "LOCK",
            "1.wal",
            "0000000000000000000a.wal",
            "00000000000000000001.wal.tmp",
            "99999999999999999999.wal",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_round_trip_and_damage() {
        let header = encode_header(12345);
        assert_eq!(decode_header(&header), Ok(12345));
        assert_eq!(
            decode_header(&header[..10]),
            Err(HeaderFault::Short { available: 10 })
        );
        for bit in 0..SEGMENT_HEADER_LEN * 8 {
            let mut damaged = header;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_header(&damaged).is_err(), "bit {bit}");
        }
        let mut newer = header;
        newer[7] = 2;
        assert_eq!(decode_header(&newer), Err(HeaderFault::Version(2)));
        assert!(matches!(
            decode_header(&[0u8; SEGMENT_HEADER_LEN]),
            Err(HeaderFault::BadMagic { .. })
        ));
    }
}
