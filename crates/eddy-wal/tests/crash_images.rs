//! Power cuts at every sync point of a concurrent workload (SimStorage).
//!
//! For each cut point `n`, a fresh workload of several threads (single appends and batches) runs
//! on a `SimStorage` armed to lose power at sync point `n`. The crash image it leaves is opened
//! and must hold: every acknowledged record, in order, with its LSN and payload; nothing but
//! submitted records; no batch in part. The loop stops at the first `n` the workload never
//! reaches.

// Test helpers unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::thread;

use eddy_wal::{Durability, Lsn, Record, SimStorage, Wal, WalConfig};

struct Submitted {
    lsns: RangeInclusive<Lsn>,
    records: Vec<(u8, Vec<u8>)>,
    acked: bool,
}

#[derive(Clone, Copy)]
struct Workload {
    threads: u64,
    ops_per_thread: u64,
    segment_bytes_max: u64,
    torn: bool,
    /// Varies the torn images between runs of the same workload.
    seed: u64,
}

fn config(segment_bytes_max: u64) -> WalConfig {
    WalConfig {
        segment_bytes_max,
        durability: Durability::Fsync,
        queue_bytes_max: 4096,
    }
}

/// Deterministic payloads, distinct per thread and operation.
fn records(thread: u64, op: u64) -> Vec<(u8, Vec<u8>)> {
    let n = if op.is_multiple_of(3) {
        1 + (thread + op) % 5
    } else {
        1
    };
    (0..n)
        .map(|j| {
            (
                thread as u8,
                format!(
                    "t{thread}-op{op}-r{j}-{}",
                    "x".repeat(((op * 7 + j) % 40) as usize)
                )
                .into_bytes(),
            )
        })
        .collect()
}

fn run(storage: &SimStorage, w: Workload) -> Vec<Submitted> {
    let Ok(wal) = Wal::open_with_storage(Arc::new(storage.clone()), config(w.segment_bytes_max))
    else {
        // Power was cut while creating the first segment.
        return Vec::new();
    };
    let wal = Arc::new(wal);
    let log = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..w.threads)
        .map(|t| {
            let (wal, log) = (wal.clone(), log.clone());
            thread::spawn(move || {
                for op in 0..w.ops_per_thread {
                    let batch = records(t, op);
                    let Ok(ticket) = wal.submit(batch.clone()) else {
                        return;
                    };
                    let index = {
                        let mut log = log.lock().unwrap();
                        log.push(Submitted {
                            lsns: ticket.lsns(),
                            records: batch,
                            acked: false,
                        });
                        log.len() - 1
                    };
                    let ok = ticket.wait().is_ok();
                    log.lock().unwrap()[index].acked = ok;
                    if !ok {
                        return;
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    drop(wal);
    Arc::try_unwrap(log).ok().unwrap().into_inner().unwrap()
}

/// Opens the crash image and checks it against what was submitted and acknowledged. Returns
/// how many durable-but-unacknowledged records it held.
fn check(image: &SimStorage, submitted: &[Submitted], w: Workload, cut: u64) -> usize {
    let wal = Wal::open_with_storage(Arc::new(image.clone()), config(w.segment_bytes_max))
        .unwrap_or_else(|e| panic!("cut {cut}: the crash image must open: {e}"));
    let records: Vec<Record> = wal.replay(0).unwrap().collect::<Result<_, _>>().unwrap();
    let durable = records.len() as u64;
    let by_lsn: HashMap<Lsn, &(u8, Vec<u8>)> = submitted
        .iter()
        .flat_map(|s| s.lsns.clone().zip(s.records.iter()))
        .collect();
    for (i, record) in records.iter().enumerate() {
        assert_eq!(
            record.lsn,
            i as u64 + 1,
            "cut {cut}: LSNs must be contiguous from 1"
        );
        let expected = by_lsn
            .get(&record.lsn)
            .unwrap_or_else(|| panic!("cut {cut}: LSN {} was never submitted", record.lsn));
        assert_eq!(
            (record.kind, &record.payload),
            (expected.0, &expected.1),
            "cut {cut}: LSN {}",
            record.lsn
        );
    }
    let mut unacked = 0;
    for s in submitted {
        let (start, end) = (*s.lsns.start(), *s.lsns.end());
        assert!(
            !(start <= durable && durable < end),
            "cut {cut}: batch {start}..={end} is split by the crash (durable up to {durable})"
        );
        if s.acked {
            assert!(
                end <= durable,
                "cut {cut}: acknowledged batch {start}..={end} lost (durable up to {durable})"
            );
        } else if end <= durable {
            unacked += s.records.len();
        }
    }
    // The recovered log continues where the image ends.
    assert_eq!(wal.next_lsn(), durable + 1, "cut {cut}");
    assert_eq!(
        wal.append(7, b"after".to_vec()).unwrap(),
        durable + 1,
        "cut {cut}"
    );
    // ... and the new record reads back right behind the recovered ones (a torn tail left in
    // place would sit between them), now and after a restart.
    let expect_all = |wal: &Wal, when: &str| {
        let after: Vec<Record> = wal
            .replay(0)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("cut {cut}: replay {when}: {e}"));
        assert_eq!(after.len() as u64, durable + 1, "cut {cut}: {when}");
        assert_eq!(&after[..records.len()], &records[..], "cut {cut}: {when}");
        assert_eq!(after[records.len()].payload, b"after", "cut {cut}: {when}");
    };
    expect_all(&wal, "after the first append");
    wal.close().unwrap();
    let wal = Wal::open_with_storage(Arc::new(image.crash()), config(w.segment_bytes_max))
        .unwrap_or_else(|e| panic!("cut {cut}: reopening the recovered log: {e}"));
    expect_all(&wal, "after a restart");
    unacked
}

/// Runs the workload once per sync point; returns the number of cut points exercised.
fn cut_everywhere(w: Workload) -> u64 {
    let mut cut = 1;
    let mut unacked_present = 0;
    loop {
        let storage = SimStorage::new();
        storage.crash_at_sync(cut, w.torn.then_some(w.seed + cut * 7919));
        let submitted = run(&storage, w);
        let Some(image) = storage.take_crash_image() else {
            assert!(
                submitted.iter().all(|s| s.acked),
                "without a crash everything is acknowledged"
            );
            break;
        };
        unacked_present += check(&image, &submitted, w, cut);
        cut += 1;
    }
    eprintln!(
        "{} cut points, {unacked_present} durable-but-unacknowledged records seen",
        cut - 1
    );
    cut - 1
}

/// At least this many cut points, as the issue demands. How many sync points a workload has
/// depends on how its appends happen to be grouped, so workloads are repeated until it is met.
const MIN_CUTS: u64 = 500;

#[test]
fn every_acknowledged_record_survives_a_power_cut_at_every_sync_point() {
    let workloads = [
        Workload {
            threads: 4,
            ops_per_thread: 40,
            segment_bytes_max: 512,
            torn: false,
            seed: 0,
        },
        Workload {
            threads: 4,
            ops_per_thread: 40,
            segment_bytes_max: 512,
            torn: true,
            seed: 0,
        },
        Workload {
            threads: 6,
            ops_per_thread: 25,
            segment_bytes_max: 200,
            torn: true,
            seed: 0,
        },
        Workload {
            threads: 2,
            ops_per_thread: 60,
            segment_bytes_max: 4096,
            torn: true,
            seed: 0,
        },
    ];
    let mut cuts: u64 = workloads.into_iter().map(cut_everywhere).sum();
    let mut round = 1;
    while cuts < MIN_CUTS {
        cuts += cut_everywhere(Workload {
            threads: 3,
            ops_per_thread: 30,
            segment_bytes_max: 300,
            torn: true,
            seed: round * 1_000_003,
        });
        round += 1;
    }
    eprintln!("{cuts} cut points in all");
}
