//! Recovery on real files: torn tails at every byte offset, bit flips in the middle of the log,
//! and the directory lock.

// Test helpers unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;

use eddy_wal::{CorruptReason, Durability, Error, Record, Wal, WalConfig};

const HEADER: u64 = 24;
const FRAME_OVERHEAD: u64 = 20 + 5;

fn config(segment_bytes_max: u64) -> WalConfig {
    WalConfig {
        segment_bytes_max,
        durability: Durability::Fsync,
        queue_bytes_max: 1 << 20,
    }
}

fn payload(lsn: u64) -> Vec<u8> {
    let len = (lsn * 37 % 97) as usize;
    (0..len).map(|i| (lsn as usize * 13 + i) as u8).collect()
}

/// Writes `n` single-record frames; returns the segment files, oldest first.
fn build(dir: &Path, n: u64, segment_bytes_max: u64) -> Vec<PathBuf> {
    let wal = Wal::open(dir, config(segment_bytes_max)).unwrap();
    for lsn in 1..=n {
        assert_eq!(wal.append((lsn % 5) as u8, payload(lsn)).unwrap(), lsn);
    }
    wal.close().unwrap();
    let mut segments: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    segments
}

fn replay_all(wal: &Wal) -> Vec<Record> {
    wal.replay(0).unwrap().collect::<Result<_, _>>().unwrap()
}

/// (first LSN of the segment, end offset of each frame in it, LSN of each frame).
fn frame_ends(first_lsn: u64, count: u64) -> Vec<(u64, u64)> {
    let mut at = HEADER;
    (first_lsn..first_lsn + count)
        .map(|lsn| {
            at += FRAME_OVERHEAD + payload(lsn).len() as u64;
            (at, lsn)
        })
        .collect()
}

#[test]
fn a_torn_tail_at_every_offset_of_the_last_4_kib_recovers_exactly_the_complete_records() {
    let base = tempfile::tempdir().unwrap();
    let segments = build(base.path(), 300, 1 << 20);
    assert_eq!(segments.len(), 1);
    let original = fs::read(&segments[0]).unwrap();
    let ends = frame_ends(1, 300);
    assert_eq!(ends.last().unwrap().0, original.len() as u64);
    let len = original.len();
    assert!(len > 4096 + HEADER as usize);
    // Every reopen that repairs a tail fdatasyncs: two directories in parallel halve the wait.
    let workers = 2;
    thread::scope(|scope| {
        for worker in 0..workers {
            let (original, ends, name) = (&original, &ends, segments[0].file_name().unwrap());
            scope.spawn(move || {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join(name);
                for cut in (len - 4096..=len).filter(|cut| cut % workers == worker) {
                    check_cut(dir.path(), &path, original, ends, cut);
                }
            });
        }
    });
}

/// Writes `original` cut at `cut` as the only segment, opens, and checks the recovered log.
fn check_cut(dir: &Path, path: &Path, original: &[u8], ends: &[(u64, u64)], cut: usize) {
    let mut damaged = original[..cut].to_vec();
    if cut.is_multiple_of(7) {
        // Also a tail the file system extended with zeros that were never written.
        damaged.resize(original.len(), 0);
    }
    fs::write(path, &damaged).unwrap();
    let wal = Wal::open(dir, config(1 << 20)).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
    // A frame is complete if its bytes survived (zero padding can restore trailing zero bytes
    // of a payload, which makes that frame whole again).
    let complete = ends
        .iter()
        .take_while(|(end, _)| damaged.get(..*end as usize) == Some(&original[..*end as usize]))
        .count();
    let records = replay_all(&wal);
    assert_eq!(records.len(), complete, "cut at {cut}");
    assert!(
        records
            .iter()
            .all(|r| r.payload == payload(r.lsn) && u64::from(r.kind) == r.lsn % 5),
        "cut at {cut}"
    );
    assert_eq!(wal.next_lsn(), complete as u64 + 1, "cut at {cut}");
    drop(wal);
    // Recovery cut the file exactly at the last complete frame.
    let expected_len = complete.checked_sub(1).map_or(HEADER, |last| ends[last].0);
    assert_eq!(
        fs::metadata(path).unwrap().len(),
        expected_len,
        "cut at {cut}"
    );
}

fn expect_corrupt_at(dir: &Path, file: &Path, offset: u64, what: &str) -> CorruptReason {
    match Wal::open(dir, config(2048)) {
        Err(error @ Error::Corrupt { .. }) => {
            let message = error.to_string();
            let Error::Corrupt {
                file: f,
                offset: o,
                reason,
                ..
            } = error
            else {
                unreachable!()
            };
            assert_eq!((f.as_path(), o), (file, offset), "{what}");
            assert!(
                message.contains(&file.display().to_string())
                    && message.contains(&format!("offset {offset}")),
                "{what}: {message}"
            );
            reason
        }
        other => panic!("{what}: expected a corruption error, got {other:?}"),
    }
}

#[test]
fn every_bit_flip_of_a_frame_in_the_middle_of_the_log_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let segments = build(dir.path(), 120, 2048);
    assert!(segments.len() >= 3, "{segments:?}");
    let first_lsn = |p: &Path| {
        p.file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    // A frame in the middle of an older segment, and one in the middle of the newest segment
    // (followed by valid frames, so not a torn tail either).
    for (path, next_first) in [
        (&segments[1], first_lsn(&segments[2])),
        (segments.last().unwrap(), 121),
    ] {
        let original = fs::read(path).unwrap();
        let first = first_lsn(path);
        let ends = frame_ends(first, next_first - first);
        assert!(ends.len() >= 3);
        let (start, end) = (ends[ends.len() / 2 - 1].0, ends[ends.len() / 2].0);
        for bit in start * 8..end * 8 {
            let mut damaged = original.clone();
            damaged[(bit / 8) as usize] ^= 1 << (bit % 8);
            fs::write(path, &damaged).unwrap();
            let what = format!("{} bit {bit}", path.display());
            let reason = expect_corrupt_at(dir.path(), path, start, &what);
            if path == segments.last().unwrap() {
                assert_eq!(
                    reason,
                    CorruptReason::DamageBeforeValidFrame {
                        valid_frame_offset: end
                    },
                    "{what}"
                );
            }
            // The damaged file was neither repaired nor removed.
            assert_eq!(fs::read(path).unwrap(), damaged, "{what}");
        }
        fs::write(path, &original).unwrap();
    }
    assert_eq!(
        replay_all(&Wal::open(dir.path(), config(2048)).unwrap()).len(),
        120
    );
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/wal");
    let wal = Wal::open(&nested, WalConfig::default()).unwrap();
    match Wal::open(&nested, WalConfig::default()) {
        Err(Error::Locked { path }) => assert_eq!(path, nested.join("LOCK")),
        other => panic!("expected Error::Locked, got {other:?}"),
    }
    wal.append(1, b"x".to_vec()).unwrap();
    drop(wal);
    let wal = Wal::open(&nested, WalConfig::default()).unwrap();
    assert_eq!(wal.next_lsn(), 2);
}
