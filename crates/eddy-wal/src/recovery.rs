//! Opening a log: scan every segment, repair a torn tail, refuse anything else.
//!
//! Policy (see docs/wal.md for the crash-case argument):
//! - Only the *last* segment may end in a torn write. Damage there (a short or zeroed header, a
//!   frame running past the end of the file, a frame with a bad checksum) is cut off at the last
//!   valid frame — unless a valid frame follows the damage, which no crash of this log produces.
//! - Anything else — damage in an older segment, a checksummed frame with a bad layout, an LSN
//!   gap or step backwards between frames or segments, a header that disagrees with its file
//!   name — refuses to open with [`Error::Corrupt`]. Nothing is skipped and no file is deleted.

use std::io::{self, BufReader, Read};
use std::path::PathBuf;

use crate::error::CorruptReason;
use crate::frame::{
    Damage, FRAME_HEADER_LEN, FrameStream, RECORD_HEADER_LEN, ReadFault, find_valid_frame,
    read_full,
};
use crate::segment::{
    HeaderFault, SEGMENT_HEADER_LEN, VERSION, decode_header, encode_header, parse_segment_name,
    segment_name,
};
use crate::storage::{Storage, StorageFile};
use crate::{Error, Lsn};

/// What the log knows about one segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub(crate) first_lsn: Lsn,
    /// Size in bytes (for the active segment, as of when it was closed or opened).
    pub(crate) bytes: u64,
}

/// The state a log resumes from.
pub(crate) struct Recovered {
    /// Oldest first; the last one is the active segment.
    pub(crate) segments: Vec<SegmentMeta>,
    /// The active segment, open for appending.
    pub(crate) active: Box<dyn StorageFile>,
    pub(crate) next_lsn: Lsn,
}

const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Creates segment `first_lsn` holding only its header, durably (one fdatasync of the file, one
/// fsync of the directory), and returns it open for appending.
pub(crate) fn create_segment(
    storage: &dyn Storage,
    first_lsn: Lsn,
) -> Result<Box<dyn StorageFile>, Error> {
    let name = segment_name(first_lsn);
    let path = storage.path(&name);
    let mut file = storage
        .create(&name)
        .map_err(|e| Error::io("create", path.clone(), e))?;
    file.append(&[&encode_header(first_lsn)])
        .map_err(|e| Error::io("write", path.clone(), e))?;
    // The header first, then the directory entry: a crash in between leaves either no file or
    // a file whose header is complete, never an entry pointing at nothing recoverable.
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", path, e))?;
    // IMPORTANT: records in this segment will be acknowledged as durable; that is only true
    // once the file's directory entry is durable too, or a crash could drop the whole file.
    storage
        .sync_dir()
        .map_err(|e| Error::io("fsync directory", storage.path(""), e))?;
    Ok(file)
}

/// Scans the log in `storage`, repairs a torn tail, and returns where to resume.
pub(crate) fn recover(storage: &dyn Storage) -> Result<Recovered, Error> {
    let names = storage
        .list()
        .map_err(|e| Error::io("list", storage.path(""), e))?;
    let mut firsts: Vec<Lsn> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    firsts.sort_unstable();
    if firsts.is_empty() {
        let active = create_segment(storage, 1)?;
        let segments = vec![SegmentMeta {
            first_lsn: 1,
            bytes: SEGMENT_HEADER_LEN as u64,
        }];
        return Ok(Recovered {
            segments,
            active,
            next_lsn: 1,
        });
    }
    let mut segments = Vec::with_capacity(firsts.len());
    let mut expected: Option<Lsn> = None;
    let mut repair = None;
    for (i, &first_lsn) in firsts.iter().enumerate() {
        let is_last = i + 1 == firsts.len();
        let scan = scan_segment(storage, first_lsn, expected, is_last)?;
        segments.push(SegmentMeta {
            first_lsn,
            bytes: scan.valid_len,
        });
        expected = Some(scan.next_lsn);
        repair = scan.repair;
    }
    let last = *segments.last().expect("at least one segment was scanned");
    let name = segment_name(last.first_lsn);
    let path = storage.path(&name);
    let mut active = storage
        .open(&name)
        .map_err(|e| Error::io("open", path.clone(), e))?;
    match repair {
        None => {}
        Some(Repair::Truncate { offset, damage }) => {
            tracing::warn!(file = %path.display(), offset, ?damage, "WAL: truncating a torn tail at the last valid frame");
            active
                .set_len(offset)
                .map_err(|e| Error::io("truncate", path.clone(), e))?;
            // The cut must be durable before new frames land behind it, or a crash could
            // resurrect the torn bytes between two valid frames.
            active
                .sync_data()
                .map_err(|e| Error::io("fdatasync", path, e))?;
        }
        Some(Repair::RewriteHeader) => {
            tracing::warn!(file = %path.display(), "WAL: rewriting the torn header of an empty last segment");
            active
                .set_len(0)
                .map_err(|e| Error::io("truncate", path.clone(), e))?;
            active
                .append(&[&encode_header(last.first_lsn)])
                .map_err(|e| Error::io("write", path.clone(), e))?;
            active
                .sync_data()
                .map_err(|e| Error::io("fdatasync", path, e))?;
            if let Some(meta) = segments.last_mut() {
                meta.bytes = SEGMENT_HEADER_LEN as u64;
            }
        }
    }
    let next_lsn = expected.expect("at least one segment was scanned");
    Ok(Recovered {
        segments,
        active,
        next_lsn,
    })
}

#[derive(Debug)]
enum Repair {
    /// Cut the file at `offset`, the end of the last valid frame.
    Truncate { offset: u64, damage: Damage },
    /// The header itself is torn and nothing follows it: rewrite it from the file name.
    RewriteHeader,
}

struct Scan {
    next_lsn: Lsn,
    valid_len: u64,
    repair: Option<Repair>,
}

/// Verifies one segment. `expected` is the LSN its first record must have (`None` for the
/// oldest segment).
fn scan_segment(
    storage: &dyn Storage,
    first_lsn: Lsn,
    expected: Option<Lsn>,
    is_last: bool,
) -> Result<Scan, Error> {
    let name = segment_name(first_lsn);
    let path = storage.path(&name);
    let read_error = |e: io::Error| Error::io("read", path.clone(), e);
    let file = storage
        .open_read(&name)
        .map_err(|e| Error::io("open", path.clone(), e))?;
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    let got = read_full(&mut reader, &mut header).map_err(read_error)?;
    let header_crc = u32::from_le_bytes([header[20], header[21], header[22], header[23]]);
    let check_first = |found: Lsn| match expected {
        Some(expected) if expected != found => Err(Error::corrupt(
            path.clone(),
            0,
            (header_crc, header_crc),
            CorruptReason::LsnMismatch { expected, found },
        )),
        None if found == 0 => Err(Error::corrupt(
            path.clone(),
            0,
            (header_crc, header_crc),
            CorruptReason::LsnMismatch { expected: 1, found },
        )),
        _ => Ok(()),
    };
    match decode_header(&header[..got]) {
        Ok(header_lsn) if header_lsn != first_lsn => {
            let reason = CorruptReason::NameMismatch {
                name_lsn: first_lsn,
                header_lsn,
            };
            return Err(Error::corrupt(path, 0, (header_crc, header_crc), reason));
        }
        Ok(_) => check_first(first_lsn)?,
        Err(HeaderFault::Version(version)) => {
            return Err(Error::UnsupportedVersion {
                file: path,
                version,
                supported: VERSION,
            });
        }
        Err(fault) => {
            if is_last && rest_is_zero(&mut reader).map_err(read_error)? {
                check_first(first_lsn)?;
                return Ok(Scan {
                    next_lsn: first_lsn,
                    valid_len: 0,
                    repair: Some(Repair::RewriteHeader),
                });
            }
            let (crcs, reason) = match fault {
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
                HeaderFault::Version(_) => unreachable!("handled above"),
            };
            return Err(Error::corrupt(path, 0, crcs, reason));
        }
    }

    let mut stream = FrameStream::new(reader, SEGMENT_HEADER_LEN as u64);
    let mut next = first_lsn;
    loop {
        match stream.next_frame() {
            Ok(None) => {
                return Ok(Scan {
                    next_lsn: next,
                    valid_len: stream.offset(),
                    repair: None,
                });
            }
            Ok(Some(frame)) => {
                let crcs = (frame.header.crc, frame.header.crc);
                if frame.header.first_lsn != next {
                    let reason = CorruptReason::LsnMismatch {
                        expected: next,
                        found: frame.header.first_lsn,
                    };
                    return Err(Error::corrupt(path, frame.offset, crcs, reason));
                }
                next = match next.checked_add(u64::from(frame.header.count)) {
                    Some(next) => next,
                    None => {
                        return Err(Error::corrupt(
                            path,
                            frame.offset,
                            crcs,
                            CorruptReason::BadRecordLayout,
                        ));
                    }
                };
            }
            Err(ReadFault::Io(e)) => return Err(read_error(e)),
            Err(ReadFault::Layout { offset, crc }) => {
                return Err(Error::corrupt(
                    path,
                    offset,
                    (crc, crc),
                    CorruptReason::BadRecordLayout,
                ));
            }
            Err(ReadFault::Damaged { offset, damage }) => {
                if !is_last {
                    return Err(damage_error(path, offset, &damage, None));
                }
                // Only a valid frame *after* the damage tells corruption from a torn tail. It must
                // carry a later LSN that the bytes in between could have held (each record takes
                // at least one record header), which keeps a valid frame image embedded in a
                // payload from being mistaken for one.
                let tail = read_from(storage, &name, offset).map_err(read_error)?;
                let plausible = |lsn: Lsn, at: usize| {
                    lsn > next && lsn - next <= (at / RECORD_HEADER_LEN) as u64
                };
                if let Some(at) = find_valid_frame(&tail, 1, plausible) {
                    return Err(damage_error(
                        path,
                        offset,
                        &damage,
                        Some(offset + at as u64),
                    ));
                }
                return Ok(Scan {
                    next_lsn: next,
                    valid_len: offset,
                    repair: Some(Repair::Truncate { offset, damage }),
                });
            }
        }
    }
}

fn damage_error(
    path: PathBuf,
    offset: u64,
    damage: &Damage,
    valid_frame_after: Option<u64>,
) -> Error {
    let (crcs, reason) = match *damage {
        Damage::ShortHeader { available } => (
            (0, 0),
            CorruptReason::Truncated {
                needed: FRAME_HEADER_LEN as u64,
                available,
            },
        ),
        Damage::ShortBody {
            needed,
            available,
            stored_crc,
            actual_crc,
        } => (
            (stored_crc, actual_crc),
            CorruptReason::Truncated { needed, available },
        ),
        Damage::Checksum {
            stored_crc,
            actual_crc,
        } => ((stored_crc, actual_crc), CorruptReason::ChecksumMismatch),
    };
    let reason = match valid_frame_after {
        Some(valid_frame_offset) => CorruptReason::DamageBeforeValidFrame { valid_frame_offset },
        None => reason,
    };
    Error::corrupt(path, offset, crcs, reason)
}

/// Whether every remaining byte of `reader` is zero.
fn rest_is_zero(reader: &mut impl Read) -> io::Result<bool> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = read_full(reader, &mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// The bytes of `name` from `offset` to its end.
fn read_from(storage: &dyn Storage, name: &str, offset: u64) -> io::Result<Vec<u8>> {
    let mut reader = storage.open_read(name)?;
    let skipped = io::copy(&mut (&mut reader).take(offset), &mut io::sink())?;
    if skipped != offset {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "segment shrank during recovery",
        ));
    }
    let mut tail = Vec::new();
    reader.read_to_end(&mut tail)?;
    Ok(tail)
}
