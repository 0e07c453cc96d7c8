//! Memory budget (M1) and bad input.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use eddy_engine::{
    Code, Engine, EngineConfig, Error, MergeStrategy, Method, PayloadFormat, TaskStatus,
};

#[test]
fn writers_get_overloaded_within_the_bound_and_memory_stays_in_budget() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 256 << 10;
    let wait = Duration::from_millis(300);
    let config = EngineConfig {
        // A stalled flusher: nothing is ever flushed on its own.
        merge_strategy: MergeStrategy::Manual,
        memory_budget_bytes: budget,
        overload_wait: wait,
        write_buffer_bytes: 64 << 10,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir.path(), config).unwrap();
    let mut overloaded = None;
    let mut largest_op = 0;
    for i in 0..10_000 {
        let docs: Vec<String> = (0..20)
            .map(|k| format!(r#"{{"id":"{i}-{k}","text":"some words {i} {k} to fill memory"}}"#))
            .collect();
        let payload = format!("[{}]", docs.join(","));
        largest_op = largest_op.max(payload.len() * 4 + 4096);
        let started = Instant::now();
        match engine.add_documents(
            "m",
            payload.as_bytes(),
            PayloadFormat::Json,
            Method::Replace,
            None,
        ) {
            Ok(task) => assert_eq!(task.status, TaskStatus::Succeeded),
            Err(Error::Overloaded { retry_after }) => {
                overloaded = Some((started.elapsed(), retry_after));
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
        let (in_use, limit) = engine.memory();
        assert!(
            in_use <= limit + largest_op,
            "memory {in_use} over budget {limit}"
        );
    }
    let (waited, retry_after) = overloaded.expect("never overloaded");
    // The writer waited for the bound, not forever.
    assert!(waited >= wait, "gave up after {waited:?}");
    assert!(waited < wait + Duration::from_secs(20), "waited {waited:?}");
    assert!(retry_after > Duration::ZERO);
    assert_eq!(
        Error::Overloaded { retry_after }.code(),
        Code::TooManyRequests
    );
    // Flushing frees memory and writes are accepted again.
    engine.flush().unwrap();
    let t = engine
        .add_documents(
            "m",
            br#"{"id":"after","text":"x"}"#,
            PayloadFormat::Json,
            Method::Replace,
            None,
        )
        .unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded);
    assert!(engine.memory().0 < budget);
}

#[test]
fn bad_input_is_a_typed_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        EngineConfig {
            merge_strategy: MergeStrategy::Manual,
            ..EngineConfig::default()
        },
    )
    .unwrap();
    engine
        .add_documents(
            "b",
            br#"[{"id": 1, "t": "ok"}]"#,
            PayloadFormat::Json,
            Method::Replace,
            None,
        )
        .unwrap();
    let lsn_before = engine.wal_stats().last_lsn;

    // Syntax errors are answered at once and never reach the log.
    for (payload, code) in [
        (&br#"[{"id": 2"#[..], Code::MalformedPayload),
        (&b"[1, 2]"[..], Code::MalformedPayload),
        (&b"\"text\""[..], Code::MalformedPayload),
        (&b""[..], Code::MissingPayload),
    ] {
        let err = engine
            .add_documents("b", payload, PayloadFormat::Json, Method::Replace, None)
            .unwrap_err();
        assert_eq!(err.code(), code, "{err}");
    }
    assert_eq!(
        engine.wal_stats().last_lsn,
        lsn_before,
        "a malformed payload was logged"
    );
    assert!(
        engine
            .add_documents(
                "bad uid!",
                b"{}",
                PayloadFormat::Json,
                Method::Replace,
                None
            )
            .is_err()
    );

    // Document errors fail the task, atomically: nothing of the batch is indexed.
    let long_id = "x".repeat(512);
    for (payload, code) in [
        (
            r#"[{"id": 3}, {"t": "no id"}]"#.to_string(),
            "missing_document_id",
        ),
        (
            r#"[{"id": 3}, {"id": "has space"}]"#.to_string(),
            "invalid_document_id",
        ),
        (
            format!(r#"[{{"id": 3}}, {{"id": "{long_id}"}}]"#),
            "invalid_document_id",
        ),
        (
            r#"[{"id": 3}, {"id": 1.5}]"#.to_string(),
            "invalid_document_id",
        ),
        (
            r#"[{"id": 3}, {"id": [1, 2]}]"#.to_string(),
            "invalid_document_id",
        ),
    ] {
        let task = engine
            .add_documents(
                "b",
                payload.as_bytes(),
                PayloadFormat::Json,
                Method::Replace,
                None,
            )
            .unwrap();
        assert_eq!(task.status, TaskStatus::Failed, "{payload}");
        assert_eq!(task.error.as_ref().unwrap().code, code, "{payload}");
        assert_eq!(engine.task(task.uid).unwrap().status, TaskStatus::Failed);
    }
    assert_eq!(
        engine.index_stats("b", false).unwrap().number_of_documents,
        1
    );
    assert!(engine.document("b", "3", None).is_err());
    // The same errors survive a restart unchanged.
    drop(engine);
    let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    assert_eq!(
        engine.index_stats("b", false).unwrap().number_of_documents,
        1
    );
}
