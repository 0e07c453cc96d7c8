//! Live rebuild: a settings change that alters indexing re-indexes every document at the
//! settings operation's LSN; searches see the old or the new index, never a mix; writes
//! made meanwhile are all there afterwards; a replay after a crash rebuilds the same.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use eddy_engine::{
    Engine, EngineConfig, MergeStrategy, Method, PayloadFormat, SearchRequest, TaskStatus,
};
use serde_json::{Value, json};

fn manual() -> EngineConfig {
    EngineConfig {
        merge_strategy: MergeStrategy::Manual,
        ..EngineConfig::default()
    }
}

fn total(engine: &Engine, q: &str) -> u64 {
    engine
        .search(
            "r",
            &SearchRequest {
                q: Some(q.into()),
                limit: 0,
                ..SearchRequest::default()
            },
        )
        .unwrap()
        .total
}

fn settings(engine: &Engine, v: Value) {
    let Value::Object(patch) = v else {
        unreachable!()
    };
    let t = engine.update_settings("r", patch).unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
}

fn add(engine: &Engine, docs: &[Value]) {
    let t = engine
        .add_documents(
            "r",
            &serde_json::to_vec(docs).unwrap(),
            PayloadFormat::Json,
            Method::Replace,
            Some("id".into()),
        )
        .unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
}

#[test]
fn tokenization_settings_rebuild_every_layer_and_survive_replay() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path(), manual()).unwrap();
        add(&engine, &[json!({"id": 1, "t": "foozzbar mail@box"})]);
        engine.flush().unwrap();
        add(&engine, &[json!({"id": 2, "t": "quxzzbar other@box"})]);
        assert_eq!(total(&engine, "\"bar\""), 0);
        assert_eq!(total(&engine, "\"mail\""), 1);
        settings(
            &engine,
            json!({"separatorTokens": ["zz"], "nonSeparatorTokens": ["@"]}),
        );
        assert_eq!(total(&engine, "\"bar\""), 2);
        assert_eq!(total(&engine, "\"mail\""), 0);
        assert_eq!(total(&engine, "\"mail@box\""), 1);
        // A document written after the change is analyzed the new way.
        add(&engine, &[json!({"id": 3, "t": "xzzbar"})]);
        assert_eq!(total(&engine, "\"bar\""), 3);
        engine.flush().unwrap();
        assert_eq!(total(&engine, "\"bar\""), 3);
        assert_eq!(total(&engine, "\"mail@box\""), 1);
        // Insertion order is kept.
        let ids: Vec<String> = engine
            .search("r", &SearchRequest::default())
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect();
        assert_eq!(ids, ["1", "2", "3"]);
        // Back to the defaults, not flushed: the replay must rebuild again.
        settings(
            &engine,
            json!({"separatorTokens": null, "nonSeparatorTokens": null}),
        );
        assert_eq!(total(&engine, "\"bar\""), 0);
        assert_eq!(total(&engine, "\"mail\""), 1);
    }
    let engine = Engine::open(dir.path(), manual()).unwrap();
    assert_eq!(total(&engine, "\"bar\""), 0);
    assert_eq!(total(&engine, "\"mail\""), 1);
    assert_eq!(total(&engine, ""), 3);
}

#[test]
fn searches_never_see_half_a_rebuild_and_concurrent_writes_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path(), manual()).unwrap());
    const N: u64 = 20_000;
    let docs: Vec<Value> = (0..N)
        .map(|i| json!({"id": i, "t": format!("word{}zzbar", i % 50)}))
        .collect();
    for chunk in docs.chunks(5_000) {
        add(&engine, chunk);
    }
    engine.flush().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let observed_mixed = Arc::new(AtomicU64::new(0));
    let searches = Arc::new(AtomicU64::new(0));
    let searcher = {
        let (engine, stop, mixed, searches) = (
            engine.clone(),
            stop.clone(),
            observed_mixed.clone(),
            searches.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // Before: no document has the word `bar`; after: all N of the first batch.
                let n = total(&engine, "\"bar\"");
                if n != 0 && n < N {
                    mixed.fetch_add(1, Ordering::Relaxed);
                }
                searches.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let writer = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            for i in 0..50u64 {
                add(&engine, &[json!({"id": N + i, "t": "extra"})]);
            }
        })
    };
    settings(&engine, json!({"separatorTokens": ["zz"]}));
    writer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    searcher.join().unwrap();
    assert!(searches.load(Ordering::Relaxed) > 0);
    assert_eq!(observed_mixed.load(Ordering::Relaxed), 0);
    assert_eq!(total(&engine, "\"bar\""), N);
    assert_eq!(total(&engine, "extra"), 50);
    assert_eq!(total(&engine, ""), N + 50);
}
