//! [`Replay`]: reading records back from the segment files.
//!
//! A replay reads the files, never the in-memory queue, so what it returns is what a restart
//! would find. It stops at the durable LSN captured when it was created, which also keeps it
//! from reading a frame the writer is still appending.

use std::collections::VecDeque;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use crate::error::CorruptReason;
use crate::frame::{Damage, FrameStream, ReadFault, read_full, split_body};
use crate::recovery::SegmentMeta;
use crate::segment::{
    SEGMENT_HEADER_LEN, check_header_lsn, decode_header, header_crc, segment_name,
};
use crate::storage::Storage;
use crate::{Error, Lsn, Record};

const READ_BUFFER_BYTES: usize = 128 * 1024;

type SegmentStream = FrameStream<BufReader<Box<dyn Read + Send>>>;

/// Iterator over durable records in LSN order; see [`Wal::replay`](crate::Wal::replay).
///
/// After yielding an error it ends.
pub struct Replay {
    pending: VecDeque<PendingSegment>,
    current: Option<(PathBuf, SegmentStream)>,
    /// LSN of the next record in the files.
    next_lsn: Lsn,
    from: Lsn,
    limit: Lsn,
    buffered: VecDeque<Record>,
    done: bool,
}

struct PendingSegment {
    first_lsn: Lsn,
    path: PathBuf,
    reader: Box<dyn Read + Send>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("next_lsn", &self.next_lsn)
            .field("from", &self.from)
            .field("limit", &self.limit)
            .finish()
    }
}

impl Replay {
    /// Opens every segment that may hold records in `from..=limit`.
    pub(crate) fn open(
        storage: &dyn Storage,
        segments: &[SegmentMeta],
        from: Lsn,
        limit: Lsn,
    ) -> Result<Replay, Error> {
        let from = from.max(1);
        // The last segment starting at or before `from` holds it; if `from` is below the
        // oldest segment (truncated), start at the oldest.
        let start = segments
            .iter()
            .rposition(|s| s.first_lsn <= from)
            .unwrap_or(0);
        let mut pending = VecDeque::new();
        for segment in &segments[start..] {
            if segment.first_lsn > limit {
                break;
            }
            let name = segment_name(segment.first_lsn);
            let path = storage.path(&name);
            let reader = storage
                .open_read(&name)
                .map_err(|e| Error::io("open", path.clone(), e))?;
            pending.push_back(PendingSegment {
                first_lsn: segment.first_lsn,
                path,
                reader,
            });
        }
        let next_lsn = pending.front().map_or(limit + 1, |s| s.first_lsn);
        Ok(Replay {
            pending,
            current: None,
            next_lsn,
            from,
            limit,
            buffered: VecDeque::new(),
            done: false,
        })
    }

    /// Reads the next frame (or segment header) into `buffered`.
    fn advance(&mut self) -> Result<(), Error> {
        let Some((path, stream)) = &mut self.current else {
            return self.open_next_segment();
        };
        match stream.next_frame() {
            Ok(Some(frame)) => {
                let crcs = (frame.header.crc, frame.header.crc);
                if frame.header.first_lsn != self.next_lsn {
                    let reason = CorruptReason::LsnMismatch {
                        expected: self.next_lsn,
                        found: frame.header.first_lsn,
                    };
                    return Err(Error::corrupt(path.clone(), frame.offset, crcs, reason));
                }
                let first = frame.header.first_lsn;
                self.next_lsn = first + u64::from(frame.header.count);
                if frame.header.last_lsn() < self.from {
                    return Ok(());
                }
                let body = stream.body();
                let records =
                    split_body(body, frame.header.count).expect("FrameStream verified the layout");
                for (lsn, (kind, range)) in (first..).zip(records) {
                    if lsn >= self.from && lsn <= self.limit {
                        self.buffered.push_back(Record {
                            lsn,
                            kind,
                            payload: body[range].to_vec(),
                        });
                    }
                }
                Ok(())
            }
            Ok(None) => {
                self.current = None;
                Ok(())
            }
            Err(ReadFault::Io(e)) => Err(Error::io("read", path.clone(), e)),
            Err(ReadFault::Layout { offset, crc }) => Err(Error::corrupt(
                path.clone(),
                offset,
                (crc, crc),
                CorruptReason::BadRecordLayout,
            )),
            Err(ReadFault::Damaged { offset, damage }) => {
                let (crcs, reason) = match damage {
                    Damage::ShortHeader { .. } | Damage::ShortBody { .. } => (
                        (0, 0),
                        CorruptReason::MissingRecords {
                            expected: self.next_lsn,
                        },
                    ),
                    Damage::Checksum {
                        stored_crc,
                        actual_crc,
                    } => ((stored_crc, actual_crc), CorruptReason::ChecksumMismatch),
                };
                Err(Error::corrupt(path.clone(), offset, crcs, reason))
            }
        }
    }

    fn open_next_segment(&mut self) -> Result<(), Error> {
        let Some(segment) = self.pending.pop_front() else {
            let path = PathBuf::from(segment_name(self.next_lsn));
            return Err(Error::corrupt(
                path,
                0,
                (0, 0),
                CorruptReason::MissingRecords {
                    expected: self.next_lsn,
                },
            ));
        };
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, segment.reader);
        let mut header = [0u8; SEGMENT_HEADER_LEN];
        let got = read_full(&mut reader, &mut header)
            .map_err(|e| Error::io("read", segment.path.clone(), e))?;
        let header = &header[..got];
        let header_lsn =
            decode_header(header).map_err(|fault| fault.into_error(segment.path.clone()))?;
        check_header_lsn(&segment.path, segment.first_lsn, header_lsn, header)?;
        if segment.first_lsn != self.next_lsn {
            let crc = header_crc(header);
            let reason = CorruptReason::LsnMismatch {
                expected: self.next_lsn,
                found: segment.first_lsn,
            };
            return Err(Error::corrupt(segment.path, 0, (crc, crc), reason));
        }
        self.current = Some((
            segment.path,
            FrameStream::new(reader, SEGMENT_HEADER_LEN as u64),
        ));
        Ok(())
    }
}

impl Iterator for Replay {
    type Item = Result<Record, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.buffered.pop_front() {
                return Some(Ok(record));
            }
            if self.done || self.next_lsn > self.limit {
                self.done = true;
                return None;
            }
            if let Err(error) = self.advance() {
                self.done = true;
                return Some(Err(error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::segment::{SEGMENT_HEADER_LEN, segment_name};
    use crate::test_util::{all, open, payload, tiny};
    use crate::{CorruptReason, Error, SimStorage};

    fn lsns(replay: crate::Replay) -> Vec<u64> {
        replay.map(|r| r.unwrap().lsn).collect()
    }

    #[test]
    fn replay_starts_anywhere_across_segments() {
        let storage = SimStorage::new();
        let wal = open(&storage, tiny(100));
        for i in 0..10 {
            wal.append_batch(
                (0..3)
                    .map(|j| (j, payload(i * 3 + u64::from(j), 7)))
                    .collect(),
            )
            .unwrap();
        }
        assert!(storage.file_names().len() > 5);
        for from in 0..=32 {
            let expected: Vec<u64> = (from.max(1)..=30).collect();
            assert_eq!(lsns(wal.replay(from).unwrap()), expected, "from {from}");
        }
        let records = all(&wal);
        assert!(records.iter().all(|r| r.payload == payload(r.lsn - 1, 7) && u64::from(r.kind) == (r.lsn - 1) % 3));
    }

    #[test]
    fn replay_returns_what_was_durable_when_it_was_called() {
        let storage = SimStorage::new();
        let wal = open(&storage, tiny(100));
        for i in 0..5 {
            wal.append(0, payload(i, 5)).unwrap();
        }
        let replay = wal.replay(0).unwrap();
        for i in 5..10 {
            wal.append(0, payload(i, 5)).unwrap();
        }
        assert_eq!(lsns(replay), vec![1, 2, 3, 4, 5]);
        assert_eq!(lsns(wal.replay(3).unwrap()), (3..=10).collect::<Vec<_>>());
    }

    #[test]
    fn replay_survives_a_concurrent_truncation() {
        let storage = SimStorage::new();
        let wal = open(&storage, tiny(100));
        for i in 0..20 {
            wal.append(0, payload(i, 5)).unwrap();
        }
        let replay = wal.replay(0).unwrap();
        assert!(wal.truncate_before(15).unwrap() > 3);
        assert_eq!(lsns(replay), (1..=20).collect::<Vec<_>>());
        let after = lsns(wal.replay(0).unwrap());
        assert!(
            after.first().is_some_and(|&f| f > 1 && f <= 15),
            "{after:?}"
        );
        assert_eq!(after.last(), Some(&20));
    }

    #[test]
    fn replay_reports_damage_and_stops() {
        let storage = SimStorage::new();
        let wal = open(&storage, tiny(1 << 20));
        for i in 0..4 {
            wal.append(0, payload(i, 5)).unwrap();
        }
        let name = segment_name(1);
        let mut bytes = storage.read(&name).unwrap();
        bytes[SEGMENT_HEADER_LEN + 30 + 22] ^= 0xFF;
        storage.replace(&name, bytes);
        let mut replay = wal.replay(0).unwrap();
        assert_eq!(replay.next().unwrap().unwrap().lsn, 1);
        match replay.next() {
            Some(Err(Error::Corrupt {
                offset,
                reason: CorruptReason::ChecksumMismatch,
                ..
            })) => {
                assert_eq!(offset, (SEGMENT_HEADER_LEN + 30) as u64);
            }
            other => panic!("expected a checksum error, got {other:?}"),
        }
        assert!(replay.next().is_none());
    }
}
