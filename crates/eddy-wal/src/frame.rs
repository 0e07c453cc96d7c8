//! Frames: the unit of atomicity on disk.
//!
//! A frame holds one submitted batch (one record or many). Its CRC32C covers the whole frame
//! except the checksum field itself, so a frame is either entirely valid or detected as
//! damaged: a batch is all-or-nothing after a crash. The checksum runs over the body first and
//! the header fields last, so that an appender can checksum its body before it knows its LSN
//! and stamp the LSN later at the cost of 16 bytes of CRC.
//!
//! ```text
//! offset  size  field
//!      0     4  crc32c       CRC-32C of body ‖ bytes [4, 20)
//!      4     4  body_len     u32 LE, bytes after the 20-byte header
//!      8     8  first_lsn    u64 LE, LSN of the first record; the others follow contiguously
//!     16     4  record_count u32 LE, >= 1
//!     20     …  body         record_count × { kind u8, payload_len u32 LE, payload }
//! ```

use std::io::{self, Read};
use std::ops::Range;

use crate::{Error, Lsn};

/// Bytes of the frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 20;
/// Bytes of the per-record header inside a frame body.
pub(crate) const RECORD_HEADER_LEN: usize = 5;
/// Largest body a frame can describe (the `body_len` field is a u32).
pub(crate) const BODY_LEN_MAX: u64 = u32::MAX as u64;

/// A frame built by an appender before it enters the queue.
///
/// Encoding (copying the payloads and checksumming them) happens on the appender's thread,
/// outside any lock; only [`EncodedFrame::seal`], which writes the LSN and extends the body's
/// checksum over the 16 header bytes, runs under the queue lock.
#[derive(Debug)]
pub(crate) struct EncodedFrame {
    bytes: Vec<u8>,
    body_crc: u32,
    count: u32,
}

impl EncodedFrame {
    /// Encodes `records` into a frame whose LSN is not yet known.
    ///
    /// # Errors
    /// [`Error::EmptyBatch`] for no record, [`Error::RecordTooLarge`] when the body does not fit
    /// a u32 length.
    pub(crate) fn encode<P: AsRef<[u8]>>(records: &[(u8, P)]) -> Result<Self, Error> {
        if records.is_empty() {
            return Err(Error::EmptyBatch);
        }
        let body_len: u64 = records
            .iter()
            .map(|(_, p)| RECORD_HEADER_LEN as u64 + p.as_ref().len() as u64)
            .sum();
        let count = u32::try_from(records.len()).map_err(|_| Error::RecordTooLarge {
            bytes: body_len,
            max: BODY_LEN_MAX,
        })?;
        if body_len > BODY_LEN_MAX {
            return Err(Error::RecordTooLarge {
                bytes: body_len,
                max: BODY_LEN_MAX,
            });
        }
        let total = FRAME_HEADER_LEN
            + usize::try_from(body_len).map_err(|_| Error::RecordTooLarge {
                bytes: body_len,
                max: BODY_LEN_MAX,
            })?;
        let mut bytes = Vec::with_capacity(total);
        bytes.resize(FRAME_HEADER_LEN, 0);
        for (kind, payload) in records {
            let payload = payload.as_ref();
            bytes.push(*kind);
            // Fits: the sum of all payloads is <= u32::MAX.
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(payload);
        }
        debug_assert_eq!(bytes.len(), total);
        let body_crc = crc32c::crc32c(&bytes[FRAME_HEADER_LEN..]);
        bytes[4..8].copy_from_slice(&(body_len as u32).to_le_bytes());
        bytes[16..20].copy_from_slice(&count.to_le_bytes());
        Ok(EncodedFrame {
            bytes,
            body_crc,
            count,
        })
    }

    /// Number of records in the frame.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// Frame size on disk.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Stamps the first LSN and the checksum; the frame is then ready to be written.
    pub(crate) fn seal(mut self, first_lsn: Lsn) -> Vec<u8> {
        self.bytes[8..16].copy_from_slice(&first_lsn.to_le_bytes());
        let crc = crc32c::crc32c_append(self.body_crc, &self.bytes[4..FRAME_HEADER_LEN]);
        self.bytes[0..4].copy_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(
            crc,
            frame_crc(
                &self.bytes[..FRAME_HEADER_LEN],
                &self.bytes[FRAME_HEADER_LEN..]
            )
        );
        self.bytes
    }
}

/// The decoded fixed-size header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) crc: u32,
    pub(crate) body_len: u32,
    pub(crate) first_lsn: Lsn,
    pub(crate) count: u32,
}

impl FrameHeader {
    pub(crate) fn parse(bytes: &[u8; FRAME_HEADER_LEN]) -> Self {
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut lsn = [0u8; 8];
        lsn.copy_from_slice(&bytes[8..16]);
        FrameHeader {
            crc: u32_at(0),
            body_len: u32_at(4),
            first_lsn: u64::from_le_bytes(lsn),
            count: u32_at(16),
        }
    }

    /// Frame size on disk.
    pub(crate) fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + u64::from(self.body_len)
    }

    /// LSN of the last record (saturating: only meaningful once the frame is verified).
    pub(crate) fn last_lsn(&self) -> Lsn {
        self.first_lsn
            .saturating_add(u64::from(self.count).saturating_sub(1))
    }
}

/// The checksum of a frame given its 20 header bytes and its body.
pub(crate) fn frame_crc(header: &[u8], body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(body), &header[4..FRAME_HEADER_LEN])
}

/// Checks that `body` holds exactly `count` records and returns each record's kind and payload
/// range. `None` when the layout is inconsistent.
pub(crate) fn split_body(body: &[u8], count: u32) -> Option<Vec<(u8, Range<usize>)>> {
    let mut out = Vec::with_capacity(count.min(1 << 16) as usize);
    let mut at = 0usize;
    for _ in 0..count {
        let header = body.get(at..at + RECORD_HEADER_LEN)?;
        let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let start = at + RECORD_HEADER_LEN;
        let end = start.checked_add(len)?;
        if end > body.len() {
            return None;
        }
        out.push((header[0], start..end));
        at = end;
    }
    (count >= 1 && at == body.len()).then_some(out)
}

/// Damage that looks like what a crash in the middle of a write leaves behind. Whether it *is*
/// a torn tail is for the caller to decide (only the log's last segment may have one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Damage {
    /// Fewer than 20 bytes (but more than zero) remain.
    ShortHeader { available: u64 },
    /// The header claims more bytes than the file holds.
    ShortBody {
        needed: u64,
        available: u64,
        stored_crc: u32,
        actual_crc: u32,
    },
    /// The checksum does not match.
    Checksum { stored_crc: u32, actual_crc: u32 },
}

/// What went wrong reading a frame.
#[derive(Debug)]
pub(crate) enum ReadFault {
    Io(io::Error),
    /// Possibly a torn write; see [`Damage`].
    Damaged {
        offset: u64,
        damage: Damage,
    },
    /// The checksum is right but the records do not fill the body exactly (or the count is 0):
    /// never produced by a crash, always corruption.
    Layout {
        offset: u64,
        crc: u32,
    },
}

/// A verified frame as returned by [`FrameStream::next_frame`]; its body is in the stream's
/// buffer until the next call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameInfo {
    pub(crate) offset: u64,
    pub(crate) header: FrameHeader,
}

/// Reads frames one after the other from a byte stream, verifying each.
pub(crate) struct FrameStream<R> {
    reader: R,
    offset: u64,
    body: Vec<u8>,
}

impl<R: Read> FrameStream<R> {
    /// `offset` is the position of `reader` in the file (for error reports).
    pub(crate) fn new(reader: R, offset: u64) -> Self {
        FrameStream {
            reader,
            offset,
            body: Vec::new(),
        }
    }

    /// File offset of the next frame.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Body of the frame last returned by `next_frame`.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    /// Reads and verifies the next frame; `Ok(None)` at a clean end of file.
    pub(crate) fn next_frame(&mut self) -> Result<Option<FrameInfo>, ReadFault> {
        let offset = self.offset;
        let mut header_bytes = [0u8; FRAME_HEADER_LEN];
        let got = read_full(&mut self.reader, &mut header_bytes).map_err(ReadFault::Io)?;
        if got == 0 {
            return Ok(None);
        }
        if got < FRAME_HEADER_LEN {
            return Err(ReadFault::Damaged {
                offset,
                damage: Damage::ShortHeader {
                    available: got as u64,
                },
            });
        }
        let header = FrameHeader::parse(&header_bytes);
        self.body.clear();
        // `take` + `read_to_end` grows the buffer only as bytes arrive, so a garbage length
        // cannot make us allocate gigabytes.
        (&mut self.reader)
            .take(u64::from(header.body_len))
            .read_to_end(&mut self.body)
            .map_err(ReadFault::Io)?;
        let actual_crc = frame_crc(&header_bytes, &self.body);
        if self.body.len() < header.body_len as usize {
            let available = (FRAME_HEADER_LEN + self.body.len()) as u64;
            let damage = Damage::ShortBody {
                needed: header.frame_len(),
                available,
                stored_crc: header.crc,
                actual_crc,
            };
            return Err(ReadFault::Damaged { offset, damage });
        }
        if actual_crc != header.crc {
            return Err(ReadFault::Damaged {
                offset,
                damage: Damage::Checksum {
                    stored_crc: header.crc,
                    actual_crc,
                },
            });
        }
        if header.count == 0 || split_body(&self.body, header.count).is_none() {
            return Err(ReadFault::Layout {
                offset,
                crc: header.crc,
            });
        }
        self.offset += header.frame_len();
        Ok(Some(FrameInfo { offset, header }))
    }
}

/// Finds the first position at or after `from` in `bytes` where a complete, checksum-valid,
/// well-formed frame starts and `accept(first_lsn, position)` holds. Used to tell a torn tail
/// (nothing valid follows the damage) from corruption in the middle of the last segment.
pub(crate) fn find_valid_frame(
    bytes: &[u8],
    from: usize,
    accept: impl Fn(Lsn, usize) -> bool,
) -> Option<usize> {
    let last_start = bytes
        .len()
        .checked_sub(FRAME_HEADER_LEN + RECORD_HEADER_LEN)?;
    (from..=last_start).find(|&at| {
        let mut header_bytes = [0u8; FRAME_HEADER_LEN];
        header_bytes.copy_from_slice(&bytes[at..at + FRAME_HEADER_LEN]);
        let header = FrameHeader::parse(&header_bytes);
        let body_start = at + FRAME_HEADER_LEN;
        let body_len = header.body_len as usize;
        // Cheap plausibility checks first: most garbage fails them without a checksum.
        if header.count == 0
            || body_len < RECORD_HEADER_LEN * header.count as usize
            || body_len > bytes.len() - body_start
            || !accept(header.first_lsn, at)
        {
            return false;
        }
        let body = &bytes[body_start..body_start + body_len];
        frame_crc(&header_bytes, body) == header.crc && split_body(body, header.count).is_some()
    })
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
pub(crate) fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first_lsn: Lsn, records: &[(u8, &[u8])]) -> Vec<u8> {
        let owned: Vec<(u8, Vec<u8>)> = records.iter().map(|(k, p)| (*k, p.to_vec())).collect();
        EncodedFrame::encode(&owned).unwrap().seal(first_lsn)
    }

    #[test]
    fn round_trip_single_and_batch() {
        let mut bytes = frame(7, &[(1, b"hello")]);
        bytes.extend(frame(8, &[(2, b""), (3, b"abc"), (4, &[0u8; 300])]));
        let mut stream = FrameStream::new(&bytes[..], 0);
        let first = stream.next_frame().unwrap().unwrap();
        assert_eq!(
            (first.offset, first.header.first_lsn, first.header.count),
            (0, 7, 1)
        );
        let recs = split_body(stream.body(), 1).unwrap();
        assert_eq!(recs[0].0, 1);
        assert_eq!(&stream.body()[recs[0].1.clone()], b"hello");
        let second = stream.next_frame().unwrap().unwrap();
        assert_eq!(
            (second.offset, second.header.first_lsn, second.header.count),
            (30, 8, 3)
        );
        assert_eq!(second.header.last_lsn(), 10);
        let recs = split_body(stream.body(), 3).unwrap();
        assert_eq!(
            recs.iter().map(|r| (r.0, r.1.len())).collect::<Vec<_>>(),
            vec![(2, 0), (3, 3), (4, 300)]
        );
        assert!(stream.next_frame().unwrap().is_none());
    }

    #[test]
    fn empty_batch_is_rejected() {
        assert!(matches!(
            EncodedFrame::encode::<Vec<u8>>(&[]),
            Err(Error::EmptyBatch)
        ));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = frame(42, &[(9, b"some payload"), (1, b"x")]);
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            let result = FrameStream::new(&damaged[..], 0).next_frame();
            assert!(
                matches!(result, Err(ReadFault::Damaged { offset: 0, .. })),
                "bit {bit}: {result:?}"
            );
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let bytes = frame(1, &[(9, b"some payload")]);
        for cut in 1..bytes.len() {
            let result = FrameStream::new(&bytes[..cut], 0).next_frame();
            assert!(
                matches!(result, Err(ReadFault::Damaged { offset: 0, .. })),
                "cut {cut}: {result:?}"
            );
        }
    }

    #[test]
    fn layout_errors_are_not_damage() {
        // A correctly checksummed frame whose records do not fill the body: build it by hand.
        let mut bytes = frame(1, &[(9, b"abc")]);
        bytes[16..20].copy_from_slice(&2u32.to_le_bytes());
        let crc = frame_crc(&bytes[..FRAME_HEADER_LEN], &bytes[FRAME_HEADER_LEN..]);
        bytes[0..4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            FrameStream::new(&bytes[..], 0).next_frame(),
            Err(ReadFault::Layout { offset: 0, .. })
        ));
    }

    #[test]
    fn find_valid_frame_skips_garbage_and_zeros() {
        let mut bytes = vec![0u8; 64];
        bytes.extend([0xAB; 13]);
        let at = bytes.len();
        bytes.extend(frame(5, &[(1, b"payload")]));
        bytes.extend([0u8; 40]);
        let any = |_: Lsn, _: usize| true;
        assert_eq!(find_valid_frame(&bytes, 0, any), Some(at));
        assert_eq!(find_valid_frame(&bytes, at + 1, any), None);
        assert_eq!(find_valid_frame(&bytes, 0, |lsn, _| lsn != 5), None);
        assert_eq!(find_valid_frame(&[0u8; 4096], 0, any), None);
    }
}
