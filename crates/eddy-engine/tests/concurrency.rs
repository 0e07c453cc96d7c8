//! Read-your-writes under concurrency (W2): writers search for what they just wrote while the
//! flusher freezes and flushes memtables constantly.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use eddy_engine::{Engine, EngineConfig, MergeStrategy, Method, PayloadFormat, SearchRequest};

#[test]
fn every_write_is_visible_to_the_writer_at_once() {
    let writers: u64 = 4;
    let per_writer: u64 = std::env::var("EDDY_RYW_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
        / writers;
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig {
        merge_strategy: MergeStrategy::Immediate,
        write_buffer_bytes: 48 << 10,
        idle_freeze: Duration::from_millis(20),
        ..EngineConfig::default()
    };
    config.segments.writer_memory_bytes = 15_000_000;
    let engine = Arc::new(Engine::open(dir.path(), config).unwrap());
    engine.create_index("ryw", Some("id".into())).unwrap();
    let misses = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let engine = engine.clone();
            let misses = misses.clone();
            std::thread::spawn(move || {
                for i in 0..per_writer {
                    let token = format!("w{w}n{i}");
                    let doc = format!(r#"{{"id":"{token}","text":"{token} shared words"}}"#);
                    let task = engine
                        .add_documents(
                            "ryw",
                            doc.as_bytes(),
                            PayloadFormat::Json,
                            Method::Replace,
                            None,
                        )
                        .unwrap();
                    assert_eq!(task.status, eddy_engine::TaskStatus::Succeeded);
                    // A quoted word matches exactly: no typo or prefix expansion.
                    let found = engine
                        .search(
                            "ryw",
                            &SearchRequest {
                                q: Some(format!("\"{token}\"")),
                                limit: 5,
                                ..SearchRequest::default()
                            },
                        )
                        .unwrap();
                    if found.total != 1 || found.hits[0].id != token {
                        misses.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        misses.load(Ordering::Relaxed),
        0,
        "writes not visible at ack"
    );
    let stats = engine.index_stats("ryw", false).unwrap();
    assert_eq!(stats.number_of_documents, writers * per_writer);
    // The flusher really ran during the test: segments exist.
    assert!(stats.segments > 0 || stats.checkpoint > 0, "{stats:?}");
}

/// Writers that load a new index in parallel: their first batches are queued before the index
/// exists, and the drain analyzes them side by side (`Inner::analyze_queued`). Every document
/// must come out with its own terms and content, whichever thread analyzed it.
#[test]
fn parallel_first_batches_to_a_new_index_keep_their_own_documents() {
    let writers = 6u64;
    let per_batch = 150u64;
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path(), EngineConfig::default()).unwrap());
    for round in 0..4 {
        let uid = format!("fresh{round}");
        let barrier = Arc::new(std::sync::Barrier::new(writers as usize));
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (engine, barrier, uid) = (engine.clone(), barrier.clone(), uid.clone());
                std::thread::spawn(move || {
                    let docs: Vec<String> = (0..per_batch)
                        .map(|i| {
                            format!(r#"{{"id":"w{w}d{i}","text":"tok{w}x{i} common","w":{w}}}"#)
                        })
                        .collect();
                    let payload = format!("[{}]", docs.join(","));
                    barrier.wait();
                    let task = engine
                        .add_documents(
                            &uid,
                            payload.as_bytes(),
                            PayloadFormat::Json,
                            Method::Replace,
                            Some("id".into()),
                        )
                        .unwrap();
                    assert_eq!(task.status, eddy_engine::TaskStatus::Succeeded);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let stats = engine.index_stats(&uid, false).unwrap();
        assert_eq!(stats.number_of_documents, writers * per_batch);
        for w in 0..writers {
            for i in (0..per_batch).step_by(7) {
                let found = engine
                    .search(
                        &uid,
                        &SearchRequest {
                            q: Some(format!("\"tok{w}x{i}\"")),
                            limit: 5,
                            ..SearchRequest::default()
                        },
                    )
                    .unwrap();
                assert_eq!(found.total, 1, "round {round} writer {w} doc {i}");
                let hit = &found.hits[0];
                assert_eq!(hit.id, format!("w{w}d{i}"));
                assert_eq!(hit.document["w"], serde_json::json!(w));
                // And by id: the key maps to this document.
                let doc = engine.document(&uid, &format!("w{w}d{i}"), None).unwrap();
                assert_eq!(doc["text"], serde_json::json!(format!("tok{w}x{i} common")));
            }
        }
    }
}
