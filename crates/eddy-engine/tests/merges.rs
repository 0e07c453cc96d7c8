//! Background merges and the view searches see: a merge's result is published at once (so
//! the merged-away segments, and the pages the merge read from them, are released), and never
//! ahead of the commit it builds on.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eddy_engine::{
    Engine, EngineConfig, Error, MergeStrategy, Method, PayloadFormat, SearchRequest,
};

fn config() -> EngineConfig {
    let mut config = EngineConfig {
        merge_strategy: MergeStrategy::Manual,
        ..EngineConfig::default()
    };
    config.segments.writer_memory_bytes = 15_000_000;
    config
}

/// Adds or replaces `docs` (JSON objects) in index `m`, as one write.
fn replace(engine: &Engine, docs: impl Iterator<Item = String>) {
    let payload = format!("[{}]", docs.collect::<Vec<_>>().join(","));
    engine
        .add_documents(
            "m",
            payload.as_bytes(),
            PayloadFormat::Json,
            Method::Replace,
            None,
        )
        .unwrap();
}

/// Batch `i`: 50 documents that all contain `common`.
fn write_batch(engine: &Engine, i: usize) {
    replace(
        engine,
        (0..50).map(|k| format!(r#"{{"id":"{i}-{k}","text":"common word{k} batch{i}"}}"#)),
    );
}

/// Every document matching `common`, once each; panics on a duplicate.
fn all_ids(engine: &Engine) -> usize {
    let found = engine
        .search(
            "m",
            &SearchRequest {
                q: Some("common".into()),
                limit: 1000,
                ..SearchRequest::default()
            },
        )
        .unwrap();
    let mut ids: Vec<String> = found.hits.into_iter().map(|h| h.id).collect();
    let hits = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), hits, "a document appears twice");
    assert_eq!(found.total as usize, hits);
    hits
}

/// Segments in the index's last Tantivy commit (`meta.json`), whatever the view holds.
fn committed_segments(data: &Path) -> usize {
    let indexes: Vec<_> = std::fs::read_dir(data.join("indexes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(indexes.len(), 1);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(indexes[0].join("meta.json")).unwrap()).unwrap();
    meta["segments"].as_array().unwrap().len()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn merged_segments_leave_the_view_without_waiting_for_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    // Eight flushes, eight alike segments: Tantivy merges them in the background.
    for i in 0..8 {
        write_batch(&engine, i);
        engine.flush().unwrap();
    }
    // No write and no flush from here on: the merged segment must still replace the eight
    // in what searches see.
    wait_until("the view holds the merged segment", || {
        engine.index_stats("m", false).unwrap().segments == 1
    });
    assert_eq!(all_ids(&engine), 400);
}

#[test]
fn a_merge_never_publishes_a_commit_whose_flush_failed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config();
    // The eighth flush fails after its commit, before publishing its view (as a crash there
    // would): the engine is poisoned and the batch stays in a memtable of the view.
    let syncs = Arc::new(AtomicU64::new(0));
    let seen = syncs.clone();
    config.failpoint = Some(Arc::new(move |name| {
        if name == "flush.after_dir_sync" && seen.fetch_add(1, Ordering::SeqCst) == 7 {
            return Err(Error::Corrupt(format!("failpoint {name}")));
        }
        Ok(())
    }));
    let engine = Engine::open(dir.path(), config).unwrap();
    for i in 0..8 {
        write_batch(&engine, i);
        let flushed = engine.flush();
        assert_eq!(flushed.is_err(), i == 7, "flush {i}: {flushed:?}");
    }
    assert!(engine.poisoned().is_some());
    assert_eq!(all_ids(&engine), 400);
    // Tantivy merges the eight committed segments, the failed flush's among them. A view
    // on that merge would show the last batch twice: from the segment and from the memtable.
    wait_until("Tantivy merged", || committed_segments(dir.path()) == 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(all_ids(&engine), 400);
    assert_eq!(engine.index_stats("m", false).unwrap().segments, 7);
}

/// Round `round` replaces the same 50 documents; the text names the round.
fn write_round(engine: &Engine, round: usize) {
    replace(
        engine,
        (0..50).map(|k| format!(r#"{{"id":"{k}","text":"common round{round}"}}"#)),
    );
}

/// Every match of `common`, once each, all from `round`.
fn assert_only_round(engine: &Engine, round: usize) {
    assert_eq!(all_ids(engine), 50);
    let found = engine
        .search(
            "m",
            &SearchRequest {
                q: Some(format!("round{round}")),
                limit: 1000,
                ..SearchRequest::default()
            },
        )
        .unwrap();
    assert_eq!(found.total, 50, "every document holds its last version");
}

#[test]
fn one_flush_of_many_memtables_keeps_only_the_newest_versions() {
    // Each memtable replaces the previous one's documents, and one flush writes all of them:
    // twenty-four segments adopted in a row, so Tantivy starts merges (and applies queued
    // deletes) while later segments are still being adopted. Every older version must be
    // deleted whatever segment holds it and whenever that segment was adopted.
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    for round in 0..24 {
        write_round(&engine, round);
        engine.freeze_all();
    }
    engine.flush().unwrap();
    assert_only_round(&engine, 23);
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    assert_only_round(&engine, 23);
    for round in 24..48 {
        write_round(&engine, round);
        engine.freeze_all();
    }
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    assert_only_round(&engine, 47);
}

/// Round `round` writes the 50 documents of group `round / 2`: each group is written by two
/// rounds in a row and never again.
fn write_pair_round(engine: &Engine, round: usize) {
    let group = round / 2;
    replace(
        engine,
        (0..50).map(|k| format!(r#"{{"id":"{group}-{k}","text":"common round{round}"}}"#)),
    );
}

/// Every group holds its second version only, once.
fn assert_second_versions(engine: &Engine, rounds: usize) {
    let (docs, total) = engine.documents("m", 0, 100_000, None).unwrap();
    assert_eq!(
        (docs.len(), total as usize),
        (rounds / 2 * 50, rounds / 2 * 50)
    );
    for doc in docs {
        let group: usize = doc["id"]
            .as_str()
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            doc["text"],
            format!("common round{}", group * 2 + 1),
            "{doc:?}"
        );
    }
}

#[test]
fn overlapping_flushes_commit_in_order() {
    // A writer writes every group of documents twice in a row, in small memtables, while the
    // flusher and three more threads flush all the time: flushes write their segments side
    // by side and must still commit oldest first, or where a group's two versions fall in
    // two memtables, the first would come back beside the second.
    let dir = tempfile::tempdir().unwrap();
    let config = || EngineConfig {
        merge_strategy: MergeStrategy::Immediate,
        write_buffer_bytes: 24 << 10,
        idle_freeze: Duration::from_millis(2),
        ..config()
    };
    // Every other flush dawdles once its segments are written, so that later flushes
    // overtake it there.
    let written = Arc::new(AtomicU64::new(0));
    let mut slow = config();
    slow.failpoint = Some(Arc::new(move |name| {
        if name == "flush.segments_written"
            && written.fetch_add(1, Ordering::Relaxed).is_multiple_of(2)
        {
            std::thread::sleep(Duration::from_millis(3));
        }
        Ok(())
    }));
    let engine = Arc::new(Engine::open(dir.path(), slow).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flushers: Vec<_> = (0..3)
        .map(|_| {
            let (engine, stop) = (engine.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    engine.flush().unwrap();
                }
            })
        })
        .collect();
    let rounds = 240;
    for round in 0..rounds {
        write_pair_round(&engine, round);
    }
    stop.store(true, Ordering::Relaxed);
    for f in flushers {
        f.join().unwrap();
    }
    assert!(engine.poisoned().is_none());
    assert_second_versions(&engine, rounds);
    engine.flush().unwrap();
    assert_second_versions(&engine, rounds);
    drop(engine);
    let engine = Engine::open(dir.path(), config()).unwrap();
    assert_second_versions(&engine, rounds);
}

#[test]
fn a_big_memtable_is_written_as_several_segments_side_by_side() {
    // The flush shares the documents out among its threads: with 4 threads and 22,000
    // documents, the first memtable's 20,000 become four segments of consecutive documents
    // and the second memtable's 2,000 (fewer than a share) one. The second memtable replaces
    // documents of two of the pieces (9,000..11,000), so its deletes must reach both.
    let dir = tempfile::tempdir().unwrap();
    let mut config = config();
    config.segments.writer_threads = 4;
    let engine = Engine::open(dir.path(), config.clone()).unwrap();
    let batch = |version: &str, ids: std::ops::Range<usize>| {
        replace(
            &engine,
            ids.map(|k| format!(r#"{{"id":"{k}","text":"common {version}"}}"#)),
        );
    };
    batch("first", 0..20_000);
    engine.freeze_all();
    batch("second", 9_000..11_000);
    engine.flush().unwrap();
    let check = |engine: &Engine| {
        let count = |q: &str| {
            engine
                .search(
                    "m",
                    &SearchRequest {
                        q: Some(q.into()),
                        limit: 1,
                        ..SearchRequest::default()
                    },
                )
                .unwrap()
                .total
        };
        assert_eq!(count("common"), 20_000);
        assert_eq!(count("first"), 18_000);
        assert_eq!(count("second"), 2_000);
        let (docs, total) = engine.documents("m", 0, 100_000, None).unwrap();
        assert_eq!((docs.len(), total), (20_000, 20_000));
    };
    assert_eq!(engine.index_stats("m", false).unwrap().segments, 5);
    check(&engine);
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), config).unwrap();
    check(&engine);
}
