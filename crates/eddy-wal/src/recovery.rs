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
    HeaderFault, SEGMENT_HEADER_LEN, check_header_lsn, decode_header, encode_header, header_crc,
    parse_segment_name, segment_name,
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
    /// What is known of the active segment (the last of `segments`).
    pub(crate) active_meta: SegmentMeta,
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
    let Some((&newest, older)) = firsts.split_last() else {
        let active = create_segment(storage, 1)?;
        let meta = SegmentMeta {
            first_lsn: 1,
            bytes: SEGMENT_HEADER_LEN as u64,
        };
        return Ok(Recovered {
            segments: vec![meta],
            active,
            active_meta: meta,
            next_lsn: 1,
        });
    };
    let mut segments = Vec::with_capacity(firsts.len());
    let mut expected: Option<Lsn> = None;
    for &first_lsn in older {
        let scan = scan_segment(storage, first_lsn, expected, false)?;
        segments.push(SegmentMeta {
            first_lsn,
            bytes: scan.valid_len,
        });
        expected = Some(scan.next_lsn);
    }
    let scan = scan_segment(storage, newest, expected, true)?;
    let mut last = SegmentMeta {
        first_lsn: newest,
        bytes: scan.valid_len,
    };
    let next_lsn = scan.next_lsn;
    let name = segment_name(last.first_lsn);
    let path = storage.path(&name);
    let mut active = storage
        .open(&name)
        .map_err(|e| Error::io("open", path.clone(), e))?;
    match scan.repair {
        None => {}
        Some(Repair::Truncate { offset, damage }) => {
            tracing::warn!(file = %path.display(), offset, ?damage, "WAL: truncating a torn tail at the last valid frame");
            // The cut must be durable (synced below) before new frames land behind it, or a
            // crash could resurrect the torn bytes between two valid frames.
            active
                .set_len(offset)
                .map_err(|e| Error::io("truncate", path.clone(), e))?;
        }
        Some(Repair::RewriteHeader) => {
            tracing::warn!(file = %path.display(), "WAL: rewriting the torn header of an empty last segment");
            active
                .set_len(0)
                .map_err(|e| Error::io("truncate", path.clone(), e))?;
            active
                .append(&[&encode_header(last.first_lsn)])
                .map_err(|e| Error::io("write", path.clone(), e))?;
            last.bytes = SEGMENT_HEADER_LEN as u64;
        }
    }
    // IMPORTANT: what recovery returns as the log is durable. Under the `flush` and `none`
    // levels a process crash leaves written but unsynced records in the page cache; the
    // engine replays them into checkpoints, and a later power cut must not take them back
    // (the log would then end below a checkpoint and hand its LSNs out again).
    active
        .sync_data()
        .map_err(|e| Error::io("fdatasync", path, e))?;
    segments.push(last);
    Ok(Recovered {
        segments,
        active,
        active_meta: last,
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
    let check_first = || {
        let expected = expected.unwrap_or(first_lsn.max(1));
        if expected == first_lsn {
            return Ok(());
        }
        let crc = header_crc(&header[..got]);
        Err(Error::corrupt(
            path.clone(),
            0,
            (crc, crc),
            CorruptReason::LsnMismatch {
                expected,
                found: first_lsn,
            },
        ))
    };
    match decode_header(&header[..got]) {
        Ok(header_lsn) => {
            check_header_lsn(&path, first_lsn, header_lsn, &header)?;
            check_first()?;
        }
        Err(fault @ HeaderFault::Version(_)) => return Err(fault.into_error(path)),
        // A torn creation: the header never fully reached the disk and nothing follows it.
        Err(_) if is_last && rest_is_zero(&mut reader).map_err(read_error)? => {
            check_first()?;
            return Ok(Scan {
                next_lsn: first_lsn,
                valid_len: 0,
                repair: Some(Repair::RewriteHeader),
            });
        }
        Err(fault) => return Err(fault.into_error(path)),
    }
    let stream = FrameStream::new(reader, SEGMENT_HEADER_LEN as u64);
    scan_frames(storage, &name, stream, first_lsn, is_last)
}

/// Verifies the frames of a segment whose header was verified.
fn scan_frames(
    storage: &dyn Storage,
    name: &str,
    mut stream: FrameStream<impl Read>,
    first_lsn: Lsn,
    is_last: bool,
) -> Result<Scan, Error> {
    let path = storage.path(name);
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
            Err(ReadFault::Io(e)) => return Err(Error::io("read", path, e)),
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
                let tail = read_from(storage, name, offset)
                    .map_err(|e| Error::io("read", path.clone(), e))?;
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
                let repair = Some(Repair::Truncate { offset, damage });
                return Ok(Scan {
                    next_lsn: next,
                    valid_len: offset,
                    repair,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::test_util::{all, open, payload, tiny};
    use crate::{SimStorage, Wal};

    /// A closed log of `n` records (12-byte payloads, frames of 37 bytes) in segments of at
    /// most `segment_bytes_max` bytes.
    fn log(n: u64, segment_bytes_max: u64) -> SimStorage {
        let storage = SimStorage::new();
        let wal = open(&storage, tiny(segment_bytes_max));
        for i in 0..n {
            wal.append(1, payload(i, 12)).unwrap();
        }
        wal.close().unwrap();
        storage
    }

    fn try_open(storage: &SimStorage) -> Result<Wal, Error> {
        Wal::open_with_storage(Arc::new(storage.clone()), tiny(1 << 20))
    }

    fn segments(storage: &SimStorage) -> Vec<String> {
        storage
            .file_names()
            .into_iter()
            .filter(|n| parse_segment_name(n).is_some())
            .collect()
    }

    const FRAME: usize = 37;

    #[test]
    fn torn_tails_of_the_last_segment_are_cut_at_the_last_valid_frame() {
        let base = log(10, 1 << 20);
        let name = segment_name(1);
        let bytes = base.read(&name).unwrap();
        assert_eq!(bytes.len(), SEGMENT_HEADER_LEN + 10 * FRAME);
        let end_of_8 = SEGMENT_HEADER_LEN + 8 * FRAME;
        let mut bad_crc_then_zeros = bytes[..SEGMENT_HEADER_LEN + 9 * FRAME].to_vec();
        bad_crc_then_zeros[end_of_8 + 25] ^= 0x40;
        bad_crc_then_zeros.extend([0u8; 500]);
        let cases = [
            ("partial frame header", bytes[..end_of_8 + 7].to_vec()),
            ("partial frame body", bytes[..end_of_8 + FRAME - 1].to_vec()),
            (
                "bad checksum on the final frame, then zeros",
                bad_crc_then_zeros,
            ),
            (
                "zeros after the last valid frame",
                [&bytes[..end_of_8], &[0u8; 100][..]].concat(),
            ),
        ];
        for (what, damaged) in cases {
            let storage = base.crash();
            storage.replace(&name, damaged);
            let wal = try_open(&storage).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                all(&wal).iter().map(|r| r.lsn).collect::<Vec<_>>(),
                (1..=8).collect::<Vec<_>>(),
                "{what}"
            );
            assert_eq!(wal.next_lsn(), 9, "{what}");
            // The cut is durable: a crash right after opening keeps it.
            assert_eq!(
                storage.read_durable(&name).unwrap().len(),
                end_of_8,
                "{what}"
            );
            assert_eq!(wal.append(1, payload(99, 3)).unwrap(), 9, "{what}");
        }
    }

    #[test]
    fn a_damaged_frame_followed_by_a_valid_one_refuses_to_open() {
        let storage = log(10, 1 << 20);
        let name = segment_name(1);
        let mut bytes = storage.read(&name).unwrap();
        let offset = SEGMENT_HEADER_LEN + 4 * FRAME;
        bytes[offset + 30] ^= 1;
        storage.replace(&name, bytes.clone());
        match try_open(&storage) {
            Err(Error::Corrupt {
                file,
                offset: at,
                reason,
                expected_crc,
                actual_crc,
            }) => {
                assert_eq!(file, storage.path(&name));
                assert_eq!(at, offset as u64);
                assert_eq!(
                    reason,
                    CorruptReason::DamageBeforeValidFrame {
                        valid_frame_offset: (offset + FRAME) as u64
                    }
                );
                assert_ne!(expected_crc, actual_crc);
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        // Nothing was repaired or deleted.
        assert_eq!(storage.read(&name).unwrap(), bytes);
    }

    #[test]
    fn damage_in_an_older_segment_refuses_to_open_naming_file_and_offset() {
        let storage = log(20, 24 + 3 * FRAME as u64);
        let names = segments(&storage);
        assert!(names.len() >= 5, "{names:?}");
        let victim = &names[1];
        let mut bytes = storage.read(victim).unwrap();
        // Cut the last frame of an older segment short: not a torn tail, since newer segments exist.
        bytes.truncate(bytes.len() - 3);
        storage.replace(victim, bytes.clone());
        let err = try_open(&storage).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, Error::Corrupt { offset, reason: CorruptReason::Truncated { .. }, .. } if offset == (SEGMENT_HEADER_LEN + 2 * FRAME) as u64),
            "{err:?}"
        );
        assert!(
            message.contains(victim)
                && message.contains(&format!("offset {}", SEGMENT_HEADER_LEN + 2 * FRAME)),
            "{message}"
        );
        assert_eq!(storage.read(victim).unwrap(), bytes);
        assert_eq!(segments(&storage), names);
    }

    #[test]
    fn a_missing_middle_segment_is_an_lsn_gap() {
        let storage = log(20, 24 + 3 * FRAME as u64);
        let names = segments(&storage);
        storage.remove(&names[2]).unwrap();
        let err = try_open(&storage).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { file, offset: 0, reason: CorruptReason::LsnMismatch { expected: 7, found: 10 }, .. } if file == &storage.path(&names[3])),
            "{err:?}"
        );
    }

    #[test]
    fn checksum_valid_frames_with_an_lsn_gap_or_step_back_refuse_to_open() {
        use crate::frame::EncodedFrame;
        let frame = |lsn: Lsn| {
            EncodedFrame::encode(&[(0u8, vec![7u8; 3])])
                .unwrap()
                .seal(lsn)
        };
        for (second, third) in [(2, 4), (2, 2), (2, 1)] {
            let storage = SimStorage::new();
            let bytes = [
                encode_header(1).to_vec(),
                frame(1),
                frame(second),
                frame(third),
            ]
            .concat();
            storage.replace(&segment_name(1), bytes);
            let err = try_open(&storage).unwrap_err();
            let offset = (SEGMENT_HEADER_LEN + 2 * 28) as u64;
            assert!(
                matches!(&err, Error::Corrupt { offset: o, reason: CorruptReason::LsnMismatch { expected: 3, found }, .. } if *o == offset && *found == third),
                "{second}, {third}: {err:?}"
            );
        }
    }

    #[test]
    fn header_name_mismatch_and_unknown_version_refuse_to_open() {
        let storage = log(3, 1 << 20);
        let bytes = storage.read(&segment_name(1)).unwrap();
        let renamed = storage.crash();
        renamed.remove(&segment_name(1)).unwrap();
        renamed.replace(&segment_name(5), bytes.clone());
        assert!(matches!(
            try_open(&renamed),
            Err(Error::Corrupt {
                reason: CorruptReason::NameMismatch {
                    name_lsn: 5,
                    header_lsn: 1
                },
                ..
            })
        ));

        let mut newer = bytes;
        newer[7] = 9;
        storage.replace(&segment_name(1), newer);
        assert!(matches!(
            try_open(&storage),
            Err(Error::UnsupportedVersion {
                version: 9,
                supported: 1,
                ..
            })
        ));
    }

    #[test]
    fn a_torn_header_of_the_newest_segment_is_rewritten_from_its_name() {
        for torn in [vec![], b"eddywal\x01\x07".to_vec(), vec![0u8; 4096]] {
            let storage = log(5, 24 + 2 * FRAME as u64);
            storage.replace(&segment_name(6), torn.clone());
            let wal = try_open(&storage).unwrap_or_else(|e| panic!("{torn:?}: {e}"));
            assert_eq!(wal.next_lsn(), 6);
            assert_eq!(all(&wal).len(), 5);
            assert_eq!(wal.append(0, vec![1]).unwrap(), 6);
            wal.close().unwrap();
            assert_eq!(all(&try_open(&storage.crash()).unwrap()).len(), 6);
        }
        // The same damage in an older segment is corruption.
        let storage = log(5, 24 + 2 * FRAME as u64);
        storage.replace(&segment_name(3), vec![0u8; 30]);
        assert!(matches!(
            try_open(&storage),
            Err(Error::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn the_newest_segment_keeps_the_lsn_after_everything_older_is_truncated() {
        let storage = SimStorage::new();
        let wal = open(&storage, tiny(1 << 20));
        for i in 0..5 {
            wal.append(0, payload(i, 4)).unwrap();
        }
        wal.rotate().unwrap();
        assert_eq!(wal.truncate_before(100).unwrap(), 1);
        drop(wal);
        assert_eq!(segments(&storage), vec![segment_name(6)]);
        let wal = try_open(&storage.crash()).unwrap();
        assert_eq!((wal.next_lsn(), wal.durable_lsn()), (6, 5));
        assert!(all(&wal).is_empty());
        assert_eq!(wal.append(0, vec![]).unwrap(), 6);
    }
}
