//! Fail-stop: an injected write or fdatasync failure fails its batch, poisons the log (no retry,
//! no later acknowledgement), leaves durable records readable, and a reopen recovers.

// Test helpers unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use eddy_wal::{Durability, Error, Record, SimStorage, Wal, WalConfig};

fn config() -> WalConfig {
    WalConfig {
        segment_bytes_max: 300,
        durability: Durability::Fsync,
        queue_bytes_max: 1 << 16,
    }
}

fn open(storage: &SimStorage) -> Wal {
    Wal::open_with_storage(Arc::new(storage.clone()), config()).unwrap()
}

fn replay(wal: &Wal) -> Vec<Record> {
    wal.replay(0).unwrap().collect::<Result<_, _>>().unwrap()
}

fn payload(i: u64) -> Vec<u8> {
    format!("record-{i}").into_bytes()
}

#[test]
fn an_fdatasync_failure_poisons_the_log_and_a_reopen_recovers() {
    let storage = SimStorage::new();
    let wal = open(&storage);
    for i in 1..=10 {
        assert_eq!(wal.append(0, payload(i)).unwrap(), i);
    }
    let syncs = storage.sync_points();
    storage.fail_sync_at(syncs + 1);
    match wal.append(0, payload(11)) {
        Err(Error::Io {
            op: "fdatasync", ..
        }) => {}
        other => panic!("expected the fdatasync error, got {other:?}"),
    }
    // The fault was one-shot: a retry would now "succeed" on the storage, but the log must not
    // retry or accept anything.
    assert!(matches!(wal.append(0, payload(12)), Err(Error::Poisoned)));
    assert!(matches!(
        wal.submit(vec![(0, payload(12))]),
        Err(Error::Poisoned)
    ));
    assert!(matches!(
        wal.append_batch(vec![(0, payload(12)), (0, payload(13))]),
        Err(Error::Poisoned)
    ));
    assert!(matches!(wal.rotate(), Err(Error::Poisoned)));
    assert_eq!(
        storage.sync_points(),
        syncs + 1,
        "a poisoned log must not touch the disk"
    );
    // Durable records are still readable; the failed one is not durable.
    assert_eq!(wal.durable_lsn(), 10);
    assert_eq!(
        replay(&wal).iter().map(|r| r.lsn).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert!(matches!(wal.close(), Err(Error::Poisoned)));

    // A power cut now loses the un-synced record; a reopen recovers the durable ones.
    let wal = open(&storage.crash());
    assert_eq!(
        replay(&wal)
            .iter()
            .map(|r| r.payload.clone())
            .collect::<Vec<_>>(),
        (1..=10).map(payload).collect::<Vec<_>>()
    );
    assert_eq!(wal.append(0, payload(11)).unwrap(), 11);
    drop(wal);

    // Without a power cut the written-but-unsynced record may be found again: it was never
    // acknowledged, so either way is correct, but the first ten must be there.
    let wal = open(&storage);
    let records = replay(&wal);
    assert!(records.len() == 10 || records.len() == 11);
    assert!(records.iter().all(|r| r.payload == payload(r.lsn)));
}

#[test]
fn a_failed_write_poisons_and_its_partial_frame_is_cut_on_reopen() {
    let storage = SimStorage::new();
    let wal = open(&storage);
    for i in 1..=5 {
        wal.append(1, payload(i)).unwrap();
    }
    storage.fail_write_at(storage.writes() + 1);
    match wal.append(1, payload(6)) {
        Err(Error::Io {
            op: "write", path, ..
        }) => assert!(path.to_string_lossy().ends_with(".wal")),
        other => panic!("expected the write error, got {other:?}"),
    }
    assert!(matches!(wal.append(1, payload(7)), Err(Error::Poisoned)));
    assert_eq!(replay(&wal).len(), 5);
    drop(wal);
    // Half a frame was written: the reopen sees a torn tail and cuts it.
    let wal = open(&storage);
    assert_eq!(replay(&wal).len(), 5);
    assert_eq!(wal.append(1, payload(6)).unwrap(), 6);
}

#[test]
fn no_append_succeeds_after_a_failure_under_concurrency() {
    let storage = SimStorage::new();
    let wal = Arc::new(open(&storage));
    for i in 1..=3 {
        wal.append(0, payload(i)).unwrap();
    }
    storage.fail_sync_at(storage.sync_points() + 5);
    let failed = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..6)
        .map(|t| {
            let (wal, failed) = (wal.clone(), failed.clone());
            thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..200 {
                    let seen_failure = failed.load(Ordering::SeqCst);
                    match wal.append(t, payload(i)) {
                        Ok(lsn) => {
                            assert!(
                                !seen_failure,
                                "an append that started after a failure succeeded"
                            );
                            acked.push(lsn);
                        }
                        Err(Error::Io { .. } | Error::Poisoned) => {
                            failed.store(true, Ordering::SeqCst)
                        }
                        Err(other) => panic!("unexpected error {other:?}"),
                    }
                }
                acked
            })
        })
        .collect();
    let mut acked: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    acked.sort_unstable();
    assert!(failed.load(Ordering::SeqCst));
    let durable = wal.durable_lsn();
    assert!(acked.iter().all(|&lsn| lsn <= durable));
    // Everything acknowledged is in the durable image.
    let recovered: Vec<u64> = replay(&open(&storage.crash()))
        .iter()
        .map(|r| r.lsn)
        .collect();
    assert!(acked.iter().all(|lsn| recovered.binary_search(lsn).is_ok()));
    assert_eq!(recovered, (1..=durable).collect::<Vec<_>>());
}

#[test]
fn a_directory_fsync_failure_while_rotating_poisons_the_log() {
    let storage = SimStorage::new();
    let wal = open(&storage);
    wal.append(0, payload(1)).unwrap();
    // Rotation = fdatasync of the old segment (nothing unsynced: skipped), fdatasync of the new
    // header, fsync of the directory: make the directory fsync fail.
    storage.fail_sync_at(storage.sync_points() + 2);
    assert!(matches!(
        wal.rotate(),
        Err(Error::Io {
            op: "fsync directory",
            ..
        })
    ));
    assert!(matches!(wal.append(0, payload(2)), Err(Error::Poisoned)));
    drop(wal);
    let wal = open(&storage.crash());
    assert_eq!(replay(&wal).len(), 1);
    assert_eq!(wal.append(0, payload(2)).unwrap(), 2);
}
