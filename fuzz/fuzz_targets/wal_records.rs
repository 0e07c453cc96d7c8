//! The log's record decoder, through its public surface: a valid log is written with
//! records taken from the input, then corrupted at positions the input chooses, then
//! reopened and replayed. Opening either fails with an error or replays records that decode;
//! without corruption every record comes back intact. The engine's operation decoder also
//! reads the raw input.

#![no_main]

use std::sync::Arc;

use eddy_wal::{SimStorage, Wal, WalConfig};
use libfuzzer_sys::fuzz_target;

fn config() -> WalConfig {
    WalConfig {
        segment_bytes_max: 512,
        ..WalConfig::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = eddy_engine::ops::decode(data);
    let Some((&corruptions, rest)) = data.split_first() else {
        return;
    };
    let corruptions = usize::from(corruptions % 4);
    if rest.len() < corruptions * 5 {
        return;
    }
    let (edits, payload) = rest.split_at(corruptions * 5);
    let records: Vec<(u8, Vec<u8>)> = payload
        .split(|b| *b == b'\n')
        .take(32)
        .map(|r| (r.first().copied().unwrap_or(0), r.to_vec()))
        .collect();

    let storage = SimStorage::new();
    let Ok(wal) = Wal::open_with_storage(Arc::new(storage.clone()), config()) else {
        return;
    };
    for (kind, record) in &records {
        if wal.append(*kind, record.clone()).is_err() {
            return;
        }
    }
    if wal.close().is_err() {
        return;
    }
    let names = storage.file_names();
    for edit in edits.chunks(5) {
        let at = u32::from_le_bytes([edit[0], edit[1], edit[2], edit[3]]) as usize;
        let Some(name) = names.get(at % names.len().max(1)) else {
            continue;
        };
        let Some(mut bytes) = storage.read(name) else {
            continue;
        };
        if bytes.is_empty() {
            continue;
        }
        let i = at % bytes.len();
        if edit[4] == 0 {
            bytes.truncate(i);
        } else {
            bytes[i] ^= edit[4];
        }
        storage.replace(name, bytes);
    }
    let Ok(wal) = Wal::open_with_storage(Arc::new(storage.clone()), config()) else {
        assert!(corruptions > 0, "an intact log must open");
        return;
    };
    let Ok(replay) = wal.replay(0) else {
        return;
    };
    let mut seen = Vec::new();
    for record in replay {
        match record {
            Ok(r) => {
                let _ = eddy_engine::ops::decode(&r.payload);
                seen.push((r.kind, r.payload));
            }
            Err(_) => break,
        }
    }
    if corruptions == 0 {
        assert_eq!(seen, records, "an intact log replays every record");
    }
});
