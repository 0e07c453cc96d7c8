//! A memtable's term dictionary is an FST plus the terms that arrived since the FST was last
//! built, which searches walk in a sorted map. While writes come in, the FST is rebuilt
//! geometrically; once they pause, the recent terms are folded in, so that the searches of a
//! quiet spell walk FSTs only.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use eddy_engine::{Engine, EngineConfig, Method, PayloadFormat, SearchRequest};

#[test]
fn a_quiet_memtable_folds_its_recent_terms_into_its_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        EngineConfig {
            // Never due while busy, so only the pause can seal.
            seal_min_terms: usize::MAX,
            seal_idle: Duration::from_millis(500),
            // The documents stay in the memtable.
            idle_freeze: Duration::from_secs(3600),
            max_memtable_age: Duration::from_secs(3600),
            ..EngineConfig::default()
        },
    )
    .unwrap();
    let docs: Vec<String> = (0..300)
        .map(|i| format!(r#"{{"id":{i},"text":"shared distinct{i}word"}}"#))
        .collect();
    let payload = format!("[{}]", docs.join(","));
    engine
        .add_documents(
            "s",
            payload.as_bytes(),
            PayloadFormat::Json,
            Method::Replace,
            None,
        )
        .unwrap();
    let unsealed = || engine.index_stats("s", false).unwrap().unsealed_terms;
    assert!(unsealed() >= 301, "the new terms start outside the FST");
    let started = Instant::now();
    while unsealed() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} terms still unsealed after the writes stopped",
            unsealed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every term is still found, exactly and with a typo (near terms match too).
    for (q, id) in [("distinct17word", "17"), ("distinct299wrd", "299")] {
        let found = engine
            .search(
                "s",
                &SearchRequest {
                    q: Some(q.into()),
                    ..SearchRequest::default()
                },
            )
            .unwrap();
        assert!(found.hits.iter().any(|h| h.id == id), "{q}: {id} not found");
    }
}
