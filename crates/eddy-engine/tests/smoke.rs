//! End-to-end behaviour of the engine API on a real directory.

#![allow(clippy::unwrap_used)]

use eddy_engine::{
    Engine, EngineConfig, MergeStrategy, Method, PayloadFormat, SearchRequest, TaskStatus,
};

fn manual() -> EngineConfig {
    EngineConfig {
        merge_strategy: MergeStrategy::Manual,
        ..EngineConfig::default()
    }
}

fn ids(engine: &Engine, q: &str) -> Vec<String> {
    let r = engine
        .search(
            "movies",
            &SearchRequest {
                q: Some(q.into()),
                limit: 100,
                ..SearchRequest::default()
            },
        )
        .unwrap();
    r.hits.into_iter().map(|h| h.id).collect()
}

#[test]
fn write_search_flush_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path(), manual()).unwrap();
        let t = engine
            .add_documents(
                "movies",
                br#"[{"id":1,"title":"Star Wars"},{"id":2,"title":"Star Trek"},{"id":3,"title":"Wall-E"}]"#,
                PayloadFormat::Json,
                Method::Replace,
                None,
            )
            .unwrap();
        assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
        assert_eq!(ids(&engine, "star"), vec!["1", "2"]);
        assert_eq!(ids(&engine, "wars"), vec!["1"]);
        engine.flush().unwrap();
        assert_eq!(ids(&engine, "wars"), vec!["1"]);
        // An update in the memtable shadows the segment version.
        engine
            .add_documents(
                "movies",
                br#"{"id":1,"title":"Empire"}"#,
                PayloadFormat::Json,
                Method::Replace,
                None,
            )
            .unwrap();
        assert_eq!(ids(&engine, "wars"), Vec::<String>::new());
        assert_eq!(ids(&engine, "empire"), vec!["1"]);
        assert_eq!(ids(&engine, "star"), vec!["2"]);
        engine
            .delete_documents("movies", vec![serde_json::json!(2)])
            .unwrap();
        assert_eq!(ids(&engine, "star"), Vec::<String>::new());
        // Typo and prefix.
        assert_eq!(ids(&engine, "empyre"), vec!["1"]);
        assert_eq!(ids(&engine, "emp"), vec!["1"]);
    }
    // Reopen without a clean close: the memtable writes come back from the log.
    let engine = Engine::open(dir.path(), manual()).unwrap();
    assert!(
        engine.recovery().records_replayed >= 2,
        "{:?}",
        engine.recovery()
    );
    assert_eq!(ids(&engine, "empire"), vec!["1"]);
    assert_eq!(ids(&engine, "star"), Vec::<String>::new());
    assert_eq!(ids(&engine, "wall"), vec!["3"]);
    let stats = engine.index_stats("movies", true).unwrap();
    assert_eq!(stats.number_of_documents, 2);
    assert_eq!(
        engine.document("movies", "3", None).unwrap()["title"],
        "Wall-E"
    );
    assert!(engine.document("movies", "2", None).is_err());
}

#[test]
fn missing_id_is_a_failed_task_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), manual()).unwrap();
    engine
        .add_documents(
            "movies",
            br#"[{"id":1,"title":"a"}]"#,
            PayloadFormat::Json,
            Method::Replace,
            None,
        )
        .unwrap();
    let t = engine
        .add_documents(
            "movies",
            br#"[{"id":2,"title":"b"},{"title":"c"}]"#,
            PayloadFormat::Json,
            Method::Replace,
            None,
        )
        .unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    assert_eq!(t.error.unwrap().code, "missing_document_id");
    assert_eq!(
        engine
            .index_stats("movies", false)
            .unwrap()
            .number_of_documents,
        1
    );
    assert!(
        engine
            .add_documents("movies", b"[{", PayloadFormat::Json, Method::Replace, None)
            .is_err()
    );
}

#[test]
fn index_stats_follow_memtables_flushes_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        EngineConfig {
            wal_segment_bytes: 4096,
            ..manual()
        },
    )
    .unwrap();
    for i in 0..40 {
        let doc = format!(r#"[{{"id":{i},"title":"title number {i} with some padding text"}}]"#);
        engine
            .add_documents(
                "movies",
                doc.as_bytes(),
                PayloadFormat::Json,
                Method::Replace,
                None,
            )
            .unwrap();
    }
    let before = engine.index_stats("movies", false).unwrap();
    assert_eq!(before.number_of_documents, 40);
    assert!(before.active_memtable_bytes > 0);
    assert_eq!(before.memtable_bytes, before.active_memtable_bytes);
    assert_eq!(before.frozen_memtables, 0);
    assert_eq!(before.segments, 0);
    assert_eq!(before.checkpoint, 0);
    assert!(before.last_flush_at.is_none());
    // Nothing is flushed: the index needs every segment of the log (which rotated).
    let wal = engine.wal_stats();
    assert!(wal.segments > 2, "{wal:?}");
    assert_eq!(before.wal_segments, wal.segments);
    assert_eq!(before.wal_bytes, wal.bytes);

    engine.freeze_all();
    let frozen = engine.index_stats("movies", false).unwrap();
    assert_eq!(frozen.frozen_memtables, 1);
    assert_eq!(frozen.active_memtable_bytes, 0);
    assert!(frozen.memtable_bytes > 0);

    engine.flush().unwrap();
    let after = engine.index_stats("movies", false).unwrap();
    assert_eq!(after.number_of_documents, 40);
    assert_eq!(after.frozen_memtables, 0);
    assert_eq!(after.memtable_bytes, 0);
    assert!(after.segments >= 1);
    assert!(after.checkpoint >= 40);
    assert!(after.last_flush_at.is_some() && after.last_flush_duration.is_some());
    // The flush let the log go: only the active segment is still needed.
    assert!(after.wal_segments <= 1, "{after:?}");
    assert!(after.wal_segments < before.wal_segments);
}

/// Segment documents hidden by newer versions in a memtable, in numbers large enough that the
/// search decodes the segment's primary keys into a table (search::pk_table) instead of
/// looking each one up: exactly the updated documents are hidden, on both paths.
#[test]
fn many_updates_of_flushed_documents_hide_exactly_the_old_versions() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), manual()).unwrap();
    let n = 3000;
    let docs = |word: &str, ids: &mut dyn Iterator<Item = usize>| -> Vec<u8> {
        ids.map(|i| format!(r#"{{"id":"k{i:05}","title":"{word} common"}}"#))
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes()
    };
    let t = engine
        .add_documents(
            "movies",
            &docs("old", &mut (0..n)),
            PayloadFormat::Ndjson,
            Method::Replace,
            None,
        )
        .unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
    engine.flush().unwrap();
    assert_eq!(engine.index_stats("movies", false).unwrap().segments, 1);
    // Every third document gets a new version, in the memtable.
    let t = engine
        .add_documents(
            "movies",
            &docs("new", &mut (0..n).step_by(3)),
            PayloadFormat::Ndjson,
            Method::Replace,
            None,
        )
        .unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
    let total = |q: &str| {
        engine
            .search(
                "movies",
                &SearchRequest {
                    q: Some(q.into()),
                    limit: 5,
                    ..SearchRequest::default()
                },
            )
            .unwrap()
            .total
    };
    // Several rounds: the first lookups go to the column, later ones to the table.
    for _ in 0..3 {
        assert_eq!(total("common"), n as u64);
        assert_eq!(total("new"), n.div_ceil(3) as u64);
        assert_eq!(total("old"), (n - n.div_ceil(3)) as u64);
    }
    let ids = |q: &str| -> Vec<String> {
        engine
            .search(
                "movies",
                &SearchRequest {
                    q: Some(q.into()),
                    limit: n,
                    ..SearchRequest::default()
                },
            )
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect()
    };
    let mut old = ids("old");
    old.sort();
    let expected: Vec<String> = (0..n)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("k{i:05}"))
        .collect();
    assert_eq!(old, expected);
}
