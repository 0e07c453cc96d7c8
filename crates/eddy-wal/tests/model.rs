//! Random operation sequences against an in-memory model (proptest).
//!
//! The model is the list of every record ever appended plus the highest truncation point. After
//! every operation the log, replayed from 0, must be a suffix of the model that ends with the
//! last record and starts no later than the truncation point; replays from other LSNs must
//! match the model's filter. Reopen and power cut (with torn writes) are among the operations:
//! at the `Fsync` level every acknowledged record survives both.

// Test helpers unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use eddy_wal::{Durability, Lsn, Record, SimStorage, Wal, WalConfig};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append {
        kind: u8,
        len: usize,
    },
    Batch {
        count: usize,
        len: usize,
    },
    Rotate,
    /// Truncate before `last_lsn + 1 - back` (clamped at 0).
    Truncate {
        back: u64,
    },
    Reopen,
    Crash {
        seed: u64,
    },
    Replay {
        from: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), 0usize..80).prop_map(|(kind, len)| Op::Append { kind, len }),
        3 => (1usize..12, 0usize..40).prop_map(|(count, len)| Op::Batch { count, len }),
        1 => Just(Op::Rotate),
        1 => (0u64..30).prop_map(|back| Op::Truncate { back }),
        1 => Just(Op::Reopen),
        1 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
        1 => (0u64..60).prop_map(|from| Op::Replay { from }),
    ]
}

fn payload(lsn: Lsn, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (lsn as usize).wrapping_mul(131).wrapping_add(i) as u8)
        .collect()
}

struct Model {
    records: Vec<Record>,
    /// Every record at or above this LSN must still be in the log.
    floor: Lsn,
    /// No record was appended since the last rotation, so the active segment is empty.
    active_empty: bool,
}

fn replay(wal: &Wal, from: Lsn) -> Vec<Record> {
    wal.replay(from).unwrap().collect::<Result<_, _>>().unwrap()
}

fn check(wal: &Wal, model: &Model) -> Result<(), TestCaseError> {
    let got = replay(wal, 0);
    let n = model.records.len();
    prop_assert!(got.len() <= n);
    prop_assert_eq!(
        &got[..],
        &model.records[n - got.len()..],
        "the log must be a suffix of the model"
    );
    let must_keep = model
        .records
        .iter()
        .filter(|r| r.lsn >= model.floor)
        .count();
    prop_assert!(
        got.len() >= must_keep,
        "records at or above the truncation point {} were lost",
        model.floor
    );
    prop_assert_eq!(wal.next_lsn(), n as u64 + 1);
    prop_assert_eq!(wal.durable_lsn(), n as u64);
    Ok(())
}

fn run(segment_bytes_max: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let config = WalConfig {
        segment_bytes_max,
        durability: Durability::Fsync,
        queue_bytes_max: 1 << 16,
    };
    let mut storage = SimStorage::new();
    let open =
        |s: &SimStorage| Wal::open_with_storage(Arc::new(s.clone()), config.clone()).unwrap();
    let mut wal = open(&storage);
    let mut model = Model {
        records: Vec::new(),
        floor: 0,
        active_empty: true,
    };
    for op in ops {
        let next = model.records.len() as u64 + 1;
        match op {
            Op::Append { kind, len } => {
                let lsn = wal.append(kind, payload(next, len)).unwrap();
                prop_assert_eq!(lsn, next);
                model.records.push(Record {
                    lsn,
                    kind,
                    payload: payload(next, len),
                });
                model.active_empty = false;
            }
            Op::Batch { count, len } => {
                let records: Vec<(u8, Vec<u8>)> = (0..count as u64)
                    .map(|i| ((i % 7) as u8, payload(next + i, len + i as usize)))
                    .collect();
                let lsns = wal.append_batch(records.clone()).unwrap();
                prop_assert_eq!(lsns.clone(), next..=next + count as u64 - 1);
                model
                    .records
                    .extend(lsns.zip(records).map(|(lsn, (kind, payload))| Record {
                        lsn,
                        kind,
                        payload,
                    }));
                model.active_empty = false;
            }
            Op::Rotate => {
                wal.rotate().unwrap();
                model.active_empty = true;
            }
            Op::Truncate { back } => {
                let lsn = next.saturating_sub(back);
                let before = wal.stats().segments;
                let removed = wal.truncate_before(lsn).unwrap();
                prop_assert_eq!(wal.stats().segments, before - removed as u64);
                model.floor = model.floor.max(lsn);
                if lsn == next && model.active_empty {
                    // Every record is below the point and none is in the active segment.
                    prop_assert!(replay(&wal, 0).is_empty());
                }
            }
            Op::Reopen => {
                wal.close().unwrap();
                wal = open(&storage);
            }
            Op::Crash { seed } => {
                let image = storage.crash_torn(seed);
                drop(wal);
                storage = image;
                wal = open(&storage);
            }
            Op::Replay { from } => {
                let expected: Vec<&Record> =
                    model.records.iter().filter(|r| r.lsn >= from).collect();
                let got = replay(&wal, from);
                // Truncation may have removed some of the oldest.
                prop_assert!(got.len() <= expected.len());
                prop_assert_eq!(
                    got.iter().collect::<Vec<_>>(),
                    expected[expected.len() - got.len()..].to_vec()
                );
            }
        }
        check(&wal, &model)?;
    }
    wal.close().unwrap();
    let reopened = open(&storage);
    check(&reopened, &model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_log_matches_the_model(segment_bytes_max in 40u64..600, ops in proptest::collection::vec(op(), 1..60)) {
        run(segment_bytes_max, ops)?;
    }
}
